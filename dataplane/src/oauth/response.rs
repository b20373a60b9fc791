//! The answer of an OAuth2 token endpoint (RFC 6749 §5), as Google's
//! (`oauth2.googleapis.com/token`, the metadata server) and Microsoft
//! Entra's (`/oauth2/v2.0/token`) send it: `{"access_token", "expires_in",
//! "token_type"}`, or an error `{"error", "error_description"}`.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::AccessToken;
use crate::aws::Secret;

/// Longest lifetime believed (a day): a bogus `expires_in` must not pin a
/// token for ever.
pub const MAX_LIFETIME: Duration = Duration::from_secs(86_400);

/// The fields of a token answer that are read.
#[derive(Deserialize)]
pub struct TokenAnswer {
    access_token: Option<String>,
    /// Seconds; Entra's v1 endpoints send it as a string.
    expires_in: Option<serde_json::Value>,
    token_type: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Entra's `AADSTS…` code at the start of an error description; never the
/// whole text (it may quote the request).
fn description_code(description: &str) -> Option<&str> {
    let word = description.split([':', ' ']).next()?.trim();
    (word.starts_with("AADSTS") && word.len() <= 16).then_some(word)
}

/// The token of a `status` answer `body` received at `now`.
pub fn parse_token_response(
    status: u16,
    body: &[u8],
    now: SystemTime,
) -> Result<AccessToken, String> {
    let answer: Option<TokenAnswer> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let detail = answer
            .and_then(|a| {
                a.error.map(
                    |e| match a.error_description.as_deref().and_then(description_code) {
                        Some(code) => format!("{e} ({code})"),
                        None => e,
                    },
                )
            })
            .unwrap_or_else(|| "no OAuth error code".into());
        return Err(format!("the token endpoint answered {status}: {detail}"));
    }
    let answer = answer.ok_or("the token answer is not JSON")?;
    if let Some(t) = answer.token_type.as_deref()
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(format!(
            "the token endpoint sent a {t:?} token, not a bearer token"
        ));
    }
    let token = answer
        .access_token
        .filter(|t| !t.trim().is_empty())
        .ok_or("the token answer has no access_token")?;
    let secs = match answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or("the token answer has no expires_in")?;
    Ok(AccessToken {
        token: Secret::new(token.trim()),
        expires_at: now + Duration::from_secs(secs).min(MAX_LIFETIME),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_and_entra_answers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t = parse_token_response(
            200,
            br#"{"access_token":"ya29.c.abc","expires_in":3599,"token_type":"Bearer"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.token.expose(), "ya29.c.abc");
        assert_eq!(t.expires_at, now + Duration::from_secs(3599));
        let t = parse_token_response(
            200,
            br#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":3599,"access_token":"eyJ0"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(3599));
        let t = parse_token_response(
            200,
            br#"{"access_token":"x","expires_in":999999999,"token_type":"Bearer"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at, now + MAX_LIFETIME, "capped");
    }

    #[test]
    fn errors_name_the_code_not_the_text() {
        let now = SystemTime::UNIX_EPOCH;
        let e = parse_token_response(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'abc'. Trace ID: 1"}"#,
            now,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "the token endpoint answered 401: invalid_client (AADSTS7000215)"
        );
        let e = parse_token_response(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
            now,
        )
        .unwrap_err();
        assert_eq!(e, "the token endpoint answered 400: invalid_grant");
        assert_eq!(
            parse_token_response(503, b"<html>", now).unwrap_err(),
            "the token endpoint answered 503: no OAuth error code"
        );
        for (body, why) in [
            (&br#"{"expires_in":3599}"#[..], "no access_token"),
            (br#"{"access_token":"x"}"#, "no expires_in"),
            (
                br#"{"access_token":"x","expires_in":1,"token_type":"mac"}"#,
                "not a bearer",
            ),
            (b"nope", "not JSON"),
        ] {
            let e = parse_token_response(200, body, now).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
