//! EKS Pod Identity (and ECS task roles): the container credentials
//! endpoint.
//!
//! The EKS Pod Identity webhook gives the pod
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials`
//! and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (a projected token, rotated:
//! it is read again for every fetch). ECS sets
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (host `169.254.170.2`). The
//! fetch is `GET <uri>` with `Authorization: <token>`; the answer is JSON
//! `{"AccessKeyId","SecretAccessKey","Token","Expiration"}`.
//!
//! As in the AWS SDKs, a plain-http full URI must point at the local host or
//! at one of the link-local agent addresses (`169.254.170.2`,
//! `169.254.170.23`, `fd00:ec2::23`): a token is never sent elsewhere in the
//! clear.

use std::net::IpAddr;

use bytes::Bytes;
use http::{Method, Request, Uri, header};
use serde::Deserialize;

use super::credentials::{Credentials, Secret};
use super::time::parse_iso8601;

/// Host of the ECS agent for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_HOST: &str = "169.254.170.2";

/// Checks that a full URI may carry the authorization token.
pub fn check_full_uri(uri: &Uri) -> Result<(), String> {
    let host = uri
        .host()
        .ok_or_else(|| "the container credentials URI has no host".to_string())?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let allowed = bare == "localhost"
                || bare.parse::<IpAddr>().is_ok_and(|ip| {
                    ip.is_loopback()
                        || ip.to_string() == "169.254.170.2"
                        || ip.to_string() == "169.254.170.23"
                        || ip.to_string() == "fd00:ec2::23"
                });
            if allowed {
                Ok(())
            } else {
                Err(format!(
                    "the container credentials URI {uri} is plain http to {host}: only the local host and the EKS/ECS agent addresses are allowed"
                ))
            }
        }
        _ => Err(format!(
            "the container credentials URI {uri} must be http or https"
        )),
    }
}

/// The credentials request.
pub fn request(uri: &Uri, token: Option<&Secret>) -> Result<Request<Bytes>, http::Error> {
    let mut b = Request::builder()
        .method(Method::GET)
        .uri(uri.clone())
        .header(header::ACCEPT, "application/json");
    if let Some(t) = token {
        let mut v = http::HeaderValue::from_str(t.expose().trim())?;
        v.set_sensitive(true);
        b = b.header(header::AUTHORIZATION, v);
    }
    b.body(Bytes::new())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

/// Reads the endpoint's answer.
pub fn parse_response(status: u16, body: &[u8]) -> Result<Credentials, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|_| {
        format!(
            "the container credentials endpoint answered HTTP {status} without JSON credentials"
        )
    })?;
    if !(200..300).contains(&status) || answer.access_key_id.is_none() {
        return Err(format!(
            "the container credentials endpoint answered HTTP {status}: {} {}",
            answer.code.unwrap_or_default(),
            answer.message.unwrap_or_default()
        ));
    }
    let (Some(id), Some(secret)) = (answer.access_key_id, answer.secret_access_key) else {
        return Err("the container credentials answer has no SecretAccessKey".into());
    };
    let mut c = Credentials::new(id, secret, answer.token);
    if let Some(e) = answer.expiration {
        c.expires_at =
            Some(parse_iso8601(&e).ok_or_else(|| {
                format!("the container credentials Expiration {e:?} is not a date")
            })?);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_the_agents_or_loopback() {
        for ok in [
            "http://169.254.170.23/v1/credentials",
            "http://169.254.170.2/v2/credentials/x",
            "http://[fd00:ec2::23]/v1/credentials",
            "http://127.0.0.1:8080/creds",
            "http://localhost/creds",
            "https://creds.example.com/x",
        ] {
            assert_eq!(check_full_uri(&ok.parse().unwrap()), Ok(()), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/creds",
            "http://creds.example.com/x",
            "ftp://127.0.0.1/x",
        ] {
            assert!(check_full_uri(&bad.parse().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_answer() {
        let body = br#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t","Token":"tok","AccountId":"123456789012","Expiration":"2026-12-06T21:30:00Z"}"#;
        let c = parse_response(200, body).unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.secret_access_key.expose(), "s3cr3t");
        assert_eq!(c.session_token.unwrap().expose(), "tok");
        assert!(c.expires_at.is_some());
        let e =
            parse_response(401, br#"{"Code":"AccessDenied","Message":"bad token"}"#).unwrap_err();
        assert!(e.contains("401") && e.contains("bad token"), "{e}");
        assert!(parse_response(200, b"<html>").is_err());
    }

    #[test]
    fn the_token_is_sent_trimmed_and_sensitive() {
        let req = request(
            &"http://169.254.170.23/v1/credentials".parse().unwrap(),
            Some(&Secret::new("abc\n")),
        )
        .unwrap();
        assert_eq!(req.headers()["authorization"], "abc");
        assert!(req.headers()["authorization"].is_sensitive());
    }
}
