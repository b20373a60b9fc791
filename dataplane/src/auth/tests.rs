//! Authenticator scenarios: where credentials are read from, which method
//! checks them, open routes and configuration errors.

use http::{HeaderMap, HeaderValue};
use jsonwebtoken::Algorithm;

use super::jwks::tests::FakeFetcher;
use super::test_support::*;
use super::*;

fn store() -> JwksStore {
    JwksStore::new(FakeFetcher::failing())
}

fn keys() -> Vec<pb::ApiKey> {
    vec![pb::ApiKey {
        name: "ci-bot".into(),
        value: "sk-test-key-1".into(),
    }]
}

fn auth(jwt: Option<pb::JwtAuth>, api_keys: Vec<pb::ApiKey>) -> Authenticator {
    Authenticator::from_config(&pb::ClientAuth { jwt, api_keys }, &store()).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn token() -> String {
    sign(Algorithm::RS256, Some("rsa-1"), &claims())
}

#[tokio::test]
async fn open_route_is_anonymous_whatever_is_sent() {
    let a = auth(None, vec![]);
    assert!(a.is_open());
    for h in [
        headers(&[]),
        headers(&[("authorization", "Bearer garbage")]),
    ] {
        let id = a.authenticate(&h).await.unwrap();
        assert_eq!(&*id.subject, "anonymous");
        assert_eq!(id.method, AuthMethod::Anonymous);
    }
}

#[tokio::test]
async fn missing_credentials() {
    let a = auth(Some(inline_jwt()), keys());
    assert_eq!(
        a.authenticate(&headers(&[])).await.err(),
        Some(AuthError::Missing)
    );
    let blank = headers(&[("authorization", "Bearer "), ("x-api-key", "  ")]);
    assert_eq!(a.authenticate(&blank).await.err(), Some(AuthError::Missing));
}

#[tokio::test]
async fn jwt_from_authorization_bearer() {
    let a = auth(Some(inline_jwt()), vec![]);
    let id = a
        .authenticate(&headers(&[(
            "authorization",
            &format!("Bearer {}", token()),
        )]))
        .await
        .unwrap();
    assert_eq!(&*id.subject, "alice");
    let id = a
        .authenticate(&headers(&[(
            "authorization",
            &format!("bearer  {}", token()),
        )]))
        .await
        .unwrap();
    assert_eq!(&*id.subject, "alice");
}

#[tokio::test]
async fn jwt_from_x_api_key() {
    let a = auth(Some(inline_jwt()), vec![]);
    let id = a
        .authenticate(&headers(&[("x-api-key", &token())]))
        .await
        .unwrap();
    assert_eq!(id.method, AuthMethod::Jwt);
}

#[tokio::test]
async fn jwt_from_the_configured_header() {
    let a = auth(
        Some(pb::JwtAuth {
            token_header: "X-Gateway-Token".into(),
            ..inline_jwt()
        }),
        vec![],
    );
    let id = a
        .authenticate(&headers(&[("x-gateway-token", &token())]))
        .await
        .unwrap();
    assert_eq!(&*id.subject, "alice");
    let id = a
        .authenticate(&headers(&[(
            "x-gateway-token",
            &format!("Bearer {}", token()),
        )]))
        .await
        .unwrap();
    assert_eq!(&*id.subject, "alice");
}

#[tokio::test]
async fn authorization_wins_over_x_api_key_wins_over_token_header() {
    let a = auth(
        Some(pb::JwtAuth {
            token_header: "x-token".into(),
            ..inline_jwt()
        }),
        keys(),
    );
    let h = headers(&[
        ("authorization", "Bearer sk-test-key-1"),
        ("x-api-key", &token()),
        ("x-token", "nope"),
    ]);
    assert_eq!(&*a.authenticate(&h).await.unwrap().subject, "ci-bot");
    let h = headers(&[("x-api-key", "sk-test-key-1"), ("x-token", &token())]);
    assert_eq!(&*a.authenticate(&h).await.unwrap().subject, "ci-bot");
    let h = headers(&[("x-api-key", "wrong"), ("x-token", &token())]);
    assert_eq!(
        a.authenticate(&h).await.err(),
        Some(AuthError::InvalidApiKey)
    );
}

#[tokio::test]
async fn non_bearer_authorization_is_skipped() {
    let a = auth(None, keys());
    let h = headers(&[
        ("authorization", "Basic dXNlcjpwYXNz"),
        ("x-api-key", "sk-test-key-1"),
    ]);
    assert_eq!(&*a.authenticate(&h).await.unwrap().subject, "ci-bot");
    let h = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
    assert_eq!(a.authenticate(&h).await.err(), Some(AuthError::Missing));
}

#[tokio::test]
async fn api_key_match_and_mismatch() {
    let a = auth(None, keys());
    let id = a
        .authenticate(&headers(&[("x-api-key", "sk-test-key-1")]))
        .await
        .unwrap();
    assert_eq!((&*id.subject, id.method), ("ci-bot", AuthMethod::ApiKey));
    let id = a
        .authenticate(&headers(&[("authorization", "Bearer sk-test-key-1")]))
        .await
        .unwrap();
    assert_eq!(&*id.subject, "ci-bot");
    let e = a
        .authenticate(&headers(&[("x-api-key", "sk-test-key-2")]))
        .await
        .unwrap_err();
    assert_eq!(e, AuthError::InvalidApiKey);
    assert!(!e.to_string().contains("sk-test"));
    // A JWT is not an API key on a route without JWT settings.
    let e = a
        .authenticate(&headers(&[("x-api-key", &token())]))
        .await
        .err();
    assert_eq!(e, Some(AuthError::InvalidApiKey));
}

#[tokio::test]
async fn both_methods_dispatch_on_shape() {
    let a = auth(Some(inline_jwt()), keys());
    let jwt = a
        .authenticate(&headers(&[(
            "authorization",
            &format!("Bearer {}", token()),
        )]))
        .await
        .unwrap();
    assert_eq!(jwt.method, AuthMethod::Jwt);
    let key = a
        .authenticate(&headers(&[("authorization", "Bearer sk-test-key-1")]))
        .await
        .unwrap();
    assert_eq!(key.method, AuthMethod::ApiKey);
    let expired = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", serde_json::json!(now() - 600)),
    );
    let e = a
        .authenticate(&headers(&[("x-api-key", &expired)]))
        .await
        .err();
    assert_eq!(e, Some(AuthError::Expired));
}

#[tokio::test]
async fn jwt_only_route_reports_non_jwt_as_malformed() {
    let a = auth(Some(inline_jwt()), vec![]);
    let e = a
        .authenticate(&headers(&[("x-api-key", "sk-test-key-1")]))
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Malformed(_)), "{e:?}");
}

#[tokio::test]
async fn non_text_header_is_malformed() {
    let a = auth(None, keys());
    let mut h = HeaderMap::new();
    h.insert("x-api-key", HeaderValue::from_bytes(b"\xffkey").unwrap());
    assert!(matches!(
        a.authenticate(&h).await,
        Err(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn forwarded_claims_reach_the_identity() {
    let cfg = pb::JwtAuth {
        forward_claims: vec![pb::ClaimHeader {
            claim: "sub".into(),
            header: "x-user".into(),
        }],
        ..inline_jwt()
    };
    let a = auth(Some(cfg), vec![]);
    assert_eq!(a.forwarded_header_names(), ["x-user"]);
    let id = a
        .authenticate(&headers(&[(
            "authorization",
            &format!("Bearer {}", token()),
        )]))
        .await
        .unwrap();
    assert_eq!(
        id.forward_headers,
        [(
            http::HeaderName::from_static("x-user"),
            HeaderValue::from_static("alice")
        )]
    );
}

#[tokio::test]
async fn keys_unavailable_surfaces_for_remote_jwks() {
    let a = auth(Some(remote_jwt("https://idp.example.com/jwks")), vec![]);
    let e = a
        .authenticate(&headers(&[(
            "authorization",
            &format!("Bearer {}", token()),
        )]))
        .await
        .unwrap_err();
    assert!(e.is_unavailable());
}

#[test]
fn config_errors() {
    let build = |jwt: Option<pb::JwtAuth>, api_keys| {
        Authenticator::from_config(&pb::ClientAuth { jwt, api_keys }, &store()).err()
    };
    let bad_header = pb::JwtAuth {
        token_header: "bad header".into(),
        ..inline_jwt()
    };
    assert_eq!(
        build(Some(bad_header), vec![]),
        Some(AuthConfigError::InvalidHeaderName("bad header".into()))
    );
    assert_eq!(
        build(Some(pb::JwtAuth::default()), vec![]),
        Some(AuthConfigError::MissingIssuer)
    );
    let empty_key = vec![pb::ApiKey {
        name: String::new(),
        value: "v".into(),
    }];
    assert_eq!(
        build(None, empty_key),
        Some(AuthConfigError::EmptyApiKey(0))
    );
}

#[test]
fn jwt_shape() {
    assert!(looks_like_jwt(&token()));
    assert!(looks_like_jwt("a.b.c"));
    assert!(!looks_like_jwt("sk-ant-api03-abc"));
    assert!(!looks_like_jwt("a.b"));
    assert!(!looks_like_jwt("a..c"));
    assert!(!looks_like_jwt("a.b.c.d"));
    assert!(!looks_like_jwt("a.b+.c"));
}

#[test]
fn authenticate_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let a = auth(None, keys());
    let h = HeaderMap::new();
    assert_send(&a.authenticate(&h));
}

#[test]
fn shared_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authenticator>();
    assert_send_sync::<JwksStore>();
    assert_send_sync::<HttpJwksFetcher>();
    assert_send_sync::<Identity>();
}

#[test]
fn header_text_accepts_exactly_what_to_str_accepts() {
    // Every byte, alone and at each position of a block boundary.
    for b in 0..=255u8 {
        for len in [1, 31, 32, 33, 64, 300] {
            let mut bytes = vec![b'a'; len];
            bytes[len - 1] = b;
            let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            assert_eq!(
                header_text(&value),
                value.to_str().ok(),
                "byte {b:#x} at {len}"
            );
        }
    }
    let mut rng = fastrand::Rng::with_seed(17);
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..rng.usize(0..400))
            .map(|_| match rng.u8(0..10) {
                0 => rng.u8(..),
                _ => rng.u8(0x21..0x7f),
            })
            .collect();
        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            continue;
        };
        assert_eq!(header_text(&value), value.to_str().ok(), "{bytes:?}");
    }
}
