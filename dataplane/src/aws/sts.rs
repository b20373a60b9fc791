//! IRSA: STS `AssumeRoleWithWebIdentity`, the request and its XML answer.
//!
//! The call is unsigned (the web identity token is the credential):
//! `POST https://sts.{region}.amazonaws.com/` with the form body
//! `Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=…&RoleSessionName=…&WebIdentityToken=…`.
//! The answer's `AssumeRoleWithWebIdentityResult/Credentials` holds
//! `AccessKeyId`, `SecretAccessKey`, `SessionToken` and `Expiration`; an
//! error is `ErrorResponse/Error/{Type,Code,Message}`. Only these few
//! elements are read, with a minimal reader (no XML dependency): text of
//! the first element with a name inside another, entities decoded.

use bytes::Bytes;
use http::{Method, Request, Uri, header};

use super::credentials::{Credentials, Secret};
use super::time::parse_iso8601;

/// The STS API version of the call.
pub const VERSION: &str = "2011-06-15";

/// Regional STS endpoint (`AWS_ENDPOINT_URL_STS` overrides it).
pub fn default_endpoint(region: &str) -> String {
    if region.is_empty() {
        "https://sts.amazonaws.com".into()
    } else {
        format!("https://sts.{region}.amazonaws.com")
    }
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `AssumeRoleWithWebIdentity` request.
pub fn request(
    endpoint: &Uri,
    role_arn: &str,
    session_name: &str,
    token: &Secret,
) -> Result<Request<Bytes>, http::Error> {
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version={VERSION}&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
        form_encode(role_arn),
        form_encode(session_name),
        form_encode(token.expose()),
    );
    Request::builder()
        .method(Method::POST)
        .uri(endpoint.clone())
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(header::ACCEPT, "text/xml")
        .body(Bytes::from(body))
}

/// Decodes the five predefined entities and numeric character references.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The content of the first `<name>…</name>` element in `xml` (attributes
/// allowed on the start tag).
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    loop {
        let start = from + xml[from..].find(&format!("<{name}"))?;
        let after = &xml[start + 1 + name.len()..];
        match after.chars().next() {
            Some('>') | Some(' ') | Some('\t') | Some('\n') | Some('\r') => {
                let open_end = start + 1 + name.len() + after.find('>')? + 1;
                let close = xml[open_end..].find(&format!("</{name}>"))?;
                return Some(&xml[open_end..open_end + close]);
            }
            _ => from = start + 1,
        }
    }
}

fn text(xml: &str, name: &str) -> Option<String> {
    element(xml, name).map(|t| unescape(t.trim()))
}

/// Why STS gave no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// STS answered with an error document.
    #[error("STS refused AssumeRoleWithWebIdentity: {code}: {message}")]
    Refused {
        /// `Error/Code`, e.g. `InvalidIdentityToken`, `AccessDenied`.
        code: String,
        /// `Error/Message`.
        message: String,
    },
    /// The answer is not what STS sends.
    #[error("unexpected STS answer: {0}")]
    Malformed(String),
}

/// Reads an STS answer (status and body).
pub fn parse_response(status: u16, body: &[u8]) -> Result<Credentials, StsError> {
    let xml = String::from_utf8_lossy(body);
    if let Some(error) = element(&xml, "Error") {
        return Err(StsError::Refused {
            code: text(error, "Code").unwrap_or_else(|| "Unknown".into()),
            message: text(error, "Message").unwrap_or_default(),
        });
    }
    if !(200..300).contains(&status) {
        return Err(StsError::Malformed(format!(
            "HTTP {status} without an error document"
        )));
    }
    let creds = element(&xml, "Credentials")
        .ok_or_else(|| StsError::Malformed("no Credentials element".into()))?;
    let field = |name: &str| {
        text(creds, name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StsError::Malformed(format!("no {name}")))
    };
    let expiration = field("Expiration")?;
    let expires_at = parse_iso8601(&expiration)
        .ok_or_else(|| StsError::Malformed(format!("Expiration {expiration:?} is not a date")))?;
    let mut c = Credentials::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("SessionToken")?),
    );
    c.expires_at = Some(expires_at);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The answer as documented for AssumeRoleWithWebIdentity.
    const OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ai:switchboard</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/bedrock/switchboard</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:switchboard</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE/a&amp;b</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn reads_credentials() {
        let c = parse_response(200, OK.as_bytes()).unwrap();
        assert_eq!(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
        assert_eq!(
            c.secret_access_key.expose(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
        );
        assert_eq!(
            c.session_token.as_ref().unwrap().expose(),
            "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE/a&b"
        );
        // 2014-10-24T23:00:23Z
        assert_eq!(
            c.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_414_191_623))
        );
    }

    #[test]
    fn reads_errors() {
        let body = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token &lt;expired&gt;</Message></Error>
  <RequestId>x</RequestId></ErrorResponse>"#;
        assert_eq!(
            parse_response(400, body.as_bytes()),
            Err(StsError::Refused {
                code: "InvalidIdentityToken".into(),
                message: "Token <expired>".into()
            })
        );
        assert!(matches!(
            parse_response(503, b"<html>busy</html>"),
            Err(StsError::Malformed(_))
        ));
        let missing = OK
            .replace("<SessionToken>", "<X>")
            .replace("</SessionToken>", "</X>");
        assert!(matches!(
            parse_response(200, missing.as_bytes()),
            Err(StsError::Malformed(m)) if m.contains("SessionToken")
        ));
    }

    #[test]
    fn element_names_are_matched_whole() {
        let xml = "<CredentialsX>no</CredentialsX><Credentials a=\"1\">yes</Credentials>";
        assert_eq!(element(xml, "Credentials"), Some("yes"));
        assert_eq!(unescape("a&#65;&#x42;&unknown;&"), "aAB&unknown;&");
    }

    #[test]
    fn request_is_a_form_post() {
        let uri: Uri = "https://sts.us-east-1.amazonaws.com".parse().unwrap();
        let req = request(
            &uri,
            "arn:aws:iam::123456789012:role/bedrock",
            "switchboard-1",
            &Secret::new("eyJ.a+b/c="),
        )
        .unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            std::str::from_utf8(req.body()).unwrap(),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbedrock&RoleSessionName=switchboard-1&WebIdentityToken=eyJ.a%2Bb%2Fc%3D"
        );
    }
}
