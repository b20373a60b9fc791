//! AWS Signature Version 4 for requests to non-S3 services (Bedrock, STS).
//!
//! [`sign`] adds `host`, `x-amz-date`, `x-amz-security-token` (temporary
//! credentials) and `authorization` to a request whose body is known:
//!
//! ```text
//! canonical request = METHOD \n canonical URI \n canonical query \n
//!                     canonical headers \n signed headers \n hex(sha256(body))
//! string to sign    = AWS4-HMAC-SHA256 \n amz-date \n scope \n hex(sha256(canonical request))
//! scope             = yyyymmdd/region/service/aws4_request
//! signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service), "aws4_request")
//! authorization     = AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=a;b;c, Signature=hex
//! ```
//!
//! The canonical URI is the path exactly as sent, URI-encoded again (every
//! byte but `A-Za-z0-9-_.~/` becomes `%XX`): a model id sent as
//! `us.anthropic.claude-v1%3A0` is signed as `…%253A0` (double encoding, as
//! botocore and the `aws-sigv4` crate do for every service but S3). Signed
//! headers: `host`, `x-amz-*` and `content-type` — headers a proxy between
//! us and AWS does not rewrite. Verified against botocore's `SigV4Auth`
//! (`testdata/sigv4.json`, made by `testdata/gen_sigv4.py`).

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use super::time::amz_date;

/// The signing algorithm name.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What a signature is made for.
#[derive(Clone, Copy, Debug)]
pub struct SigningParams<'a> {
    /// The credentials.
    pub credentials: &'a Credentials,
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Signing name of the service: `bedrock` for Bedrock Runtime, `sts`.
    pub service: &'a str,
    /// The signing time (`x-amz-date`).
    pub time: SystemTime,
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The URI has no host.
    #[error("the request URI has no host")]
    NoHost,
    /// A value could not be a header (control characters in a token).
    #[error("{0} is not a valid header value")]
    BadHeader(&'static str),
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Percent-encodes every byte but the unreserved ones (and `/` when
/// `keep_slash`), upper-case hex.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The canonical URI: the path as sent, encoded again.
pub fn canonical_uri(uri: &Uri) -> String {
    let path = uri.path();
    if path.is_empty() {
        return "/".into();
    }
    uri_encode(path, true)
}

/// The canonical query string: parameters decoded, re-encoded strictly,
/// sorted by name then value.
pub fn canonical_query(uri: &Uri) -> String {
    let Some(q) = uri.query().filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |s: &str| uri_encode(&String::from_utf8_lossy(&percent_decode(s)), false);
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether a header takes part in the signature.
fn signed(name: &str) -> bool {
    name == "host" || name == "content-type" || name.starts_with("x-amz-")
}

/// A header value trimmed with inner runs of spaces collapsed.
fn canonical_value(v: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(v.as_bytes());
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `(canonical headers, signed header names)` of the signed headers present.
fn canonical_headers(headers: &HeaderMap) -> (String, String) {
    let mut names: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|n| signed(n))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut canonical = String::new();
    for name in &names {
        let values: Vec<String> = headers.get_all(*name).iter().map(canonical_value).collect();
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    (canonical, names.join(";"))
}

/// The `Host` value for a URI: its authority without a default port.
pub fn host_header(uri: &Uri) -> Option<String> {
    let authority = uri.authority()?;
    let default = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    Some(match (authority.port_u16(), default) {
        (Some(p), Some(d)) if p == d => authority.host().to_string(),
        _ => authority.as_str().to_string(),
    })
}

/// The canonical request of a request whose `host` and `x-amz-*` headers
/// are already in `headers`.
pub fn canonical_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let (canonical, signed_names) = canonical_headers(headers);
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        canonical_uri(uri),
        canonical_query(uri),
        canonical,
        signed_names,
        sha256_hex(body)
    )
}

/// The signing key of a day, region and service.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Signs a request in place: sets `host`, `x-amz-date`,
/// `x-amz-security-token` (when the credentials have one) and
/// `authorization` (replacing any the caller sent).
pub fn sign(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    params: &SigningParams<'_>,
) -> Result<(), SignError> {
    let host = host_header(uri).ok_or(SignError::NoHost)?;
    let (date, stamp) = amz_date(params.time);
    headers.remove(http::header::AUTHORIZATION);
    headers.insert(
        http::header::HOST,
        HeaderValue::from_str(&host).map_err(|_| SignError::BadHeader("host"))?,
    );
    headers.insert(
        HeaderName::from_static("x-amz-date"),
        HeaderValue::from_str(&stamp).map_err(|_| SignError::BadHeader("x-amz-date"))?,
    );
    match &params.credentials.session_token {
        Some(token) => {
            let mut v = HeaderValue::from_str(token.expose())
                .map_err(|_| SignError::BadHeader("the session token"))?;
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-amz-security-token"), v);
        }
        None => {
            headers.remove("x-amz-security-token");
        }
    }
    let canonical = canonical_request(method, uri, headers, body);
    let scope = format!("{date}/{}/{}/aws4_request", params.region, params.service);
    let to_sign = format!(
        "{ALGORITHM}\n{stamp}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(
        params.credentials.secret_access_key.expose(),
        &date,
        params.region,
        params.service,
    );
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    let (_, signed_names) = canonical_headers(headers);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_names}, Signature={signature}",
        params.credentials.access_key_id
    );
    let mut v = HeaderValue::from_str(&authorization)
        .map_err(|_| SignError::BadHeader("the access key id"))?;
    v.set_sensitive(true);
    headers.insert(http::header::AUTHORIZATION, v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::Value;

    use super::*;

    #[test]
    fn double_encodes_the_path() {
        let uri: Uri = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke"
            .parse()
            .unwrap();
        assert_eq!(
            canonical_uri(&uri),
            "/model/us.anthropic.claude-sonnet-4-20250514-v1%253A0/invoke"
        );
        let arn: Uri = "https://h/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x/converse"
            .parse()
            .unwrap();
        assert_eq!(
            canonical_uri(&arn),
            "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123%253Ainference-profile%252Fus.x/converse"
        );
    }

    #[test]
    fn query_is_sorted_and_strictly_encoded() {
        let uri: Uri = "https://h/?b=2&a=x%20y&a=1&c".parse().unwrap();
        assert_eq!(canonical_query(&uri), "a=1&a=x%20y&b=2&c=");
    }

    #[test]
    fn host_drops_default_ports() {
        let h = |s: &str| host_header(&s.parse().unwrap()).unwrap();
        assert_eq!(h("https://a.example.com:443/x"), "a.example.com");
        assert_eq!(h("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(h("https://a.example.com/x"), "a.example.com");
    }

    /// Requests signed by botocore's `SigV4Auth` (`testdata/gen_sigv4.py`):
    /// the same credentials, time, method, URL, headers and body must give
    /// the same `Authorization` header.
    #[test]
    fn signatures_match_botocore() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws/testdata/sigv4.json");
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(cases.len() >= 4);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let creds = Credentials::new(
                case["access_key"].as_str().unwrap(),
                case["secret_key"].as_str().unwrap(),
                case["token"].as_str().map(str::to_string),
            );
            let method: Method = case["method"].as_str().unwrap().parse().unwrap();
            let uri: Uri = case["url"].as_str().unwrap().parse().unwrap();
            let mut headers = HeaderMap::new();
            for (k, v) in case["headers"].as_object().unwrap() {
                headers.insert(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
                );
            }
            let body = case["body"].as_str().unwrap().as_bytes();
            let params = SigningParams {
                credentials: &creds,
                region: case["region"].as_str().unwrap(),
                service: case["service"].as_str().unwrap(),
                time: UNIX_EPOCH + Duration::from_secs(case["time"].as_u64().unwrap()),
            };
            sign(&method, &uri, &mut headers, body, &params).unwrap();
            assert_eq!(
                headers["authorization"].to_str().unwrap(),
                case["authorization"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                headers["x-amz-date"].to_str().unwrap(),
                case["amz_date"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                headers
                    .get("x-amz-security-token")
                    .map(|v| v.to_str().unwrap()),
                case["token"].as_str(),
                "{name}"
            );
        }
    }

    #[test]
    fn signing_replaces_a_client_authorization_and_stale_token() {
        let creds = Credentials::new("AKID", "secret", None);
        let uri: Uri = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer client"));
        headers.insert("x-amz-security-token", HeaderValue::from_static("stale"));
        let params = SigningParams {
            credentials: &creds,
            region: "eu-west-1",
            service: "bedrock",
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        sign(&Method::POST, &uri, &mut headers, b"{}", &params).unwrap();
        let auth = headers["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/20231114/eu-west-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature="),
            "{auth}"
        );
        assert!(headers.get("x-amz-security-token").is_none());
        assert!(headers["authorization"].is_sensitive());
    }
}
