//! The client-credentials grant (RFC 6749 §4.4): the request, the answer,
//! and the one HTTPS call.
//!
//! Request: `POST token_url`, `application/x-www-form-urlencoded`,
//! `grant_type=client_credentials` plus `scope` and `audience` when set; the
//! client authenticates with HTTP Basic (`client_secret_basic`, id and secret
//! form-URL-encoded first, as §2.3.1 says) or in the body
//! (`client_secret_post`). Answer: JSON with `access_token`, `token_type`
//! (`Bearer`, any case, or absent) and `expires_in` (a number, or a numeric
//! string as some providers send). Without `expires_in` the `exp` claim of a
//! JWT access token gives the lifetime. An error answer's `error` and
//! `error_description` are reported; the secret never appears in a message.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::TokenError;
use crate::config::{AuthMethod, Settings};

/// Largest token endpoint answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A token endpoint's successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    /// The access token.
    pub access_token: String,
    /// Lifetime in seconds, if known.
    pub expires_in: Option<u64>,
}

/// Form-URL-encodes `s` (RFC 6749 appendix B).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The token request's headers (besides content type) and form body.
pub fn request_parts(s: &Settings) -> (Option<String>, String) {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &s.scope {
        form.push(("scope", scope));
    }
    if let Some(audience) = &s.audience {
        form.push(("audience", audience));
    }
    let authorization = match s.auth_method {
        AuthMethod::Basic => {
            let pair = format!(
                "{}:{}",
                form_encode(&s.client_id),
                form_encode(&s.client_secret)
            );
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        }
        AuthMethod::Post => {
            form.push(("client_id", &s.client_id));
            form.push(("client_secret", &s.client_secret));
            None
        }
    };
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    (authorization, body)
}

/// Reads the token endpoint's answer.
pub fn parse_answer(status: u16, body: &[u8]) -> Result<TokenAnswer, String> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let detail = json
            .as_ref()
            .and_then(|j| {
                let error = j.get("error")?.as_str()?;
                Some(match j.get("error_description").and_then(Value::as_str) {
                    Some(d) => format!("{error}: {d}"),
                    None => error.to_string(),
                })
            })
            .unwrap_or_else(|| excerpt(body));
        return Err(format!("HTTP {status}: {detail}"));
    }
    let json = json.ok_or_else(|| format!("the answer is not JSON: {}", excerpt(body)))?;
    let access_token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no access_token")?
        .to_string();
    if let Some(kind) = json.get("token_type").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(format!("token_type `{kind}` is not Bearer"));
    }
    let expires_in = match json.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .or_else(|| jwt_lifetime(&access_token));
    Ok(TokenAnswer {
        access_token,
        expires_in,
    })
}

/// Seconds until a JWT's `exp`, if the token is a JWT with one.
fn jwt_lifetime(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()?;
    exp.checked_sub(crate::now())
}

/// A short printable excerpt of a body for error messages.
fn excerpt(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text
    }
}

fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Runs the grant against the token endpoint.
pub async fn fetch(s: &Settings) -> Result<TokenAnswer, TokenError> {
    let fail = |message: String| TokenError::Endpoint {
        url: s.token_url.clone(),
        message,
    };
    let (authorization, body) = request_parts(s);
    let mut req = Request::post(&s.token_url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("switchboard-token/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| fail(e.to_string()))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let timeout = Duration::from_secs(s.timeout_secs);
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                msg.push_str(": ");
                msg.push_str(&inner.to_string());
                source = inner.source();
            }
            msg
        })?;
        let status = resp.status().as_u16();
        let bytes = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {}s", s.timeout_secs)))?
        .map_err(fail)?;
    parse_answer(status, &bytes).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(method: AuthMethod) -> Settings {
        Settings {
            token_url: "https://idp/token".into(),
            client_id: "my client".into(),
            client_secret: "s:e/c+r&t".into(),
            scope: Some("gateway/invoke openid".into()),
            audience: None,
            auth_method: method,
            min_valid_secs: 300,
            cache_dir: None,
            timeout_secs: 10,
            force_refresh: false,
        }
    }

    #[test]
    fn basic_and_post_client_authentication() {
        let (auth, body) = request_parts(&settings(AuthMethod::Basic));
        assert_eq!(
            body,
            "grant_type=client_credentials&scope=gateway%2Finvoke+openid"
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.unwrap().strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "my+client:s%3Ae%2Fc%2Br%26t"
        );
        let (auth, body) = request_parts(&settings(AuthMethod::Post));
        assert_eq!(auth, None);
        assert_eq!(
            body,
            "grant_type=client_credentials&scope=gateway%2Finvoke+openid&client_id=my+client&client_secret=s%3Ae%2Fc%2Br%26t"
        );
    }

    #[test]
    fn answers_and_errors() {
        let ok = parse_answer(
            200,
            br#"{"access_token":"abc","token_type":"bearer","expires_in":"3600"}"#,
        );
        assert_eq!(
            ok,
            Ok(TokenAnswer {
                access_token: "abc".into(),
                expires_in: Some(3600)
            })
        );
        let exp = crate::now() + 900;
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp}}}"));
        let jwt = format!("e30.{payload}.sig");
        let from_jwt =
            parse_answer(200, format!("{{\"access_token\":\"{jwt}\"}}").as_bytes()).unwrap();
        assert!(
            from_jwt
                .expires_in
                .is_some_and(|s| (899..=900).contains(&s))
        );
        assert_eq!(
            parse_answer(
                401,
                br#"{"error":"invalid_client","error_description":"bad secret"}"#
            ),
            Err("HTTP 401: invalid_client: bad secret".into())
        );
        assert_eq!(
            parse_answer(502, b"<html>\nBad Gateway</html>"),
            Err("HTTP 502: <html>Bad Gateway</html>".into())
        );
        assert!(parse_answer(200, br#"{"access_token":"x","token_type":"mac"}"#).is_err());
        assert!(parse_answer(200, br#"{"token_type":"Bearer"}"#).is_err());
    }
}
