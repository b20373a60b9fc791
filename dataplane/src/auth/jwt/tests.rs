//! JWT verification scenarios, one per test, with the fixture keys.

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::*;
use crate::auth::jwks::tests::FakeFetcher;
use crate::auth::test_support::*;

fn store() -> JwksStore {
    JwksStore::new(FakeFetcher::failing())
}

fn verifier(cfg: &pb::JwtAuth) -> JwtVerifier {
    JwtVerifier::from_config(cfg, &store()).unwrap()
}

async fn check(cfg: &pb::JwtAuth, token: &str) -> Result<Identity, AuthError> {
    verifier(cfg).verify(token).await
}

#[tokio::test]
async fn valid_rs256_token() {
    let id = check(
        &inline_jwt(),
        &sign(Algorithm::RS256, Some("rsa-1"), &claims()),
    )
    .await
    .unwrap();
    assert_eq!(&*id.subject, "alice");
    assert_eq!(id.method, AuthMethod::Jwt);
    assert_eq!(id.claims.unwrap()["email"], "alice@example.com");
}

#[tokio::test]
async fn valid_es256_and_eddsa_tokens() {
    assert!(
        check(
            &inline_jwt(),
            &sign(Algorithm::ES256, Some("ec-1"), &claims())
        )
        .await
        .is_ok()
    );
    assert!(
        check(
            &inline_jwt(),
            &sign(Algorithm::EdDSA, Some("ed-1"), &claims())
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn every_rsa_algorithm_with_a_key_without_alg() {
    let cfg = pb::JwtAuth {
        keys: Some(Keys::InlineJwks(
            include_str!("../testdata/jwks_rsa_noalg.json").into(),
        )),
        ..inline_jwt()
    };
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        assert!(
            check(&cfg, &sign(alg, Some("rsa-noalg"), &claims()))
                .await
                .is_ok(),
            "{alg:?}"
        );
    }
}

#[tokio::test]
async fn token_without_kid_uses_the_only_key_for_its_algorithm() {
    assert!(
        check(&inline_jwt(), &sign(Algorithm::ES256, None, &claims()))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn expired_token() {
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", json!(now() - 600)),
    );
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::Expired)
    );
}

#[tokio::test]
async fn missing_exp_is_rejected() {
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", Value::Null),
    );
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::Malformed("token has no exp claim"))
    );
}

#[tokio::test]
async fn nbf_in_future() {
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("nbf", json!(now() + 600)),
    );
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::NotYetValid)
    );
}

#[tokio::test]
async fn default_leeway_is_30_seconds() {
    let slightly_expired = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", json!(now() - 10)),
    );
    assert!(check(&inline_jwt(), &slightly_expired).await.is_ok());
    let slightly_early = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("nbf", json!(now() + 10)),
    );
    assert!(check(&inline_jwt(), &slightly_early).await.is_ok());
    let too_old = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", json!(now() - 45)),
    );
    assert_eq!(
        check(&inline_jwt(), &too_old).await.err(),
        Some(AuthError::Expired)
    );
}

#[tokio::test]
async fn configured_leeway() {
    let cfg = pb::JwtAuth {
        leeway_seconds: 2,
        ..inline_jwt()
    };
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", json!(now() - 10)),
    );
    assert_eq!(check(&cfg, &t).await.err(), Some(AuthError::Expired));
    let cfg = pb::JwtAuth {
        leeway_seconds: 120,
        ..inline_jwt()
    };
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", json!(now() - 60)),
    );
    assert!(check(&cfg, &t).await.is_ok());
}

#[tokio::test]
async fn wrong_or_missing_issuer() {
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("iss", json!("https://evil.example")),
    );
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::WrongIssuer)
    );
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("iss", Value::Null),
    );
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::WrongIssuer)
    );
}

#[tokio::test]
async fn wrong_or_missing_audience() {
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("aud", json!("someone-else")),
    );
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::WrongAudience)
    );
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("aud", Value::Null),
    );
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::WrongAudience)
    );
}

#[tokio::test]
async fn one_of_several_audiences_matches() {
    let cfg = pb::JwtAuth {
        audiences: vec!["a".into(), AUD.into()],
        ..inline_jwt()
    };
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("aud", json!(["other", AUD])),
    );
    assert!(check(&cfg, &t).await.is_ok());
}

#[tokio::test]
async fn no_configured_audiences_means_aud_is_not_checked() {
    let cfg = pb::JwtAuth {
        audiences: vec![],
        ..inline_jwt()
    };
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("aud", json!("anything")),
    );
    assert!(check(&cfg, &t).await.is_ok());
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("aud", Value::Null),
    );
    assert!(check(&cfg, &t).await.is_ok());
}

#[tokio::test]
async fn alg_none_is_refused() {
    for alg in ["none", "None", "NONE"] {
        let t = raw_token(&json!({"alg": alg, "kid": "rsa-1"}), &claims(), b"");
        let t = format!("{}.", t.trim_end_matches('.'));
        let e = check(&inline_jwt(), &t).await.err();
        assert!(
            matches!(
                e,
                Some(AuthError::DisallowedAlgorithm) | Some(AuthError::Malformed(_))
            ),
            "{alg}: {e:?}"
        );
    }
    let t = raw_token(&json!({"alg": "none", "kid": "rsa-1"}), &claims(), b"x");
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::DisallowedAlgorithm)
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let t = sign(Algorithm::HS256, Some("rsa-1"), &claims());
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::DisallowedAlgorithm)
    );
    let t = sign(Algorithm::HS256, None, &claims());
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::DisallowedAlgorithm)
    );
}

#[tokio::test]
async fn alg_must_match_the_key() {
    // RS256 token naming the EC key.
    let t = sign(Algorithm::RS256, Some("ec-1"), &claims());
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::DisallowedAlgorithm)
    );
    // PS256 token naming an RSA key pinned to RS256.
    let t = sign(Algorithm::PS256, Some("rsa-1"), &claims());
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::DisallowedAlgorithm)
    );
}

#[tokio::test]
async fn tampered_payload_fails_the_signature() {
    let t = sign(Algorithm::RS256, Some("rsa-1"), &claims());
    let mut parts: Vec<&str> = t.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(claims_with("sub", json!("admin")).to_string());
    parts[1] = &forged;
    assert_eq!(
        check(&inline_jwt(), &parts.join(".")).await.err(),
        Some(AuthError::InvalidSignature)
    );
}

#[tokio::test]
async fn a_cached_token_vouches_for_no_other_token() {
    let v = verifier(&inline_jwt());
    let t = sign(Algorithm::RS256, Some("rsa-1"), &claims());
    v.verify(&t).await.unwrap();
    assert_eq!(v.verified.len(), 1);
    // Its header and signature with another payload.
    let mut parts: Vec<&str> = t.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(claims_with("sub", json!("admin")).to_string());
    parts[1] = &forged;
    assert_eq!(
        v.verify(&parts.join(".")).await.err(),
        Some(AuthError::InvalidSignature)
    );
    // The token with one more character, and a prefix of it.
    assert!(v.verify(&format!("{t}A")).await.is_err());
    assert!(v.verify(&t[..t.len() - 1]).await.is_err());
    assert_eq!(v.verified.len(), 1);
}

#[tokio::test]
async fn unknown_kid_with_inline_keys() {
    let t = sign(Algorithm::RS256, Some("other"), &claims());
    assert_eq!(
        check(&inline_jwt(), &t).await.err(),
        Some(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn garbage_is_malformed_and_never_echoed() {
    for t in ["abc", "a.b", "a.b.c.d", "!!!.e30.x", "e30.e30.x"] {
        let e = check(&inline_jwt(), t).await.unwrap_err();
        assert!(matches!(e, AuthError::Malformed(_)), "{t}: {e:?}");
        assert!(!e.to_string().contains(t), "{e}");
    }
}

#[tokio::test]
async fn remote_keys_are_fetched_through_the_store() {
    let f = FakeFetcher::serving(JWKS);
    let store = JwksStore::new(f.clone());
    let v = JwtVerifier::from_config(&remote_jwt("https://idp.example.com/jwks"), &store).unwrap();
    assert!(
        v.verify(&sign(Algorithm::ES256, Some("ec-1"), &claims()))
            .await
            .is_ok()
    );
    assert_eq!(f.calls(), 1);
}

#[tokio::test]
async fn remote_keys_unavailable() {
    let store = JwksStore::new(FakeFetcher::failing());
    let v = JwtVerifier::from_config(&remote_jwt("https://idp.example.com/jwks"), &store).unwrap();
    let e = v
        .verify(&sign(Algorithm::RS256, Some("rsa-1"), &claims()))
        .await
        .unwrap_err();
    assert_eq!(e, AuthError::KeysUnavailable);
    assert!(e.is_unavailable());
}

#[tokio::test]
async fn forwarded_claims_become_headers() {
    let cfg = pb::JwtAuth {
        forward_claims: vec![
            pb::ClaimHeader {
                claim: "email".into(),
                header: "X-User-Email".into(),
            },
            pb::ClaimHeader {
                claim: "groups".into(),
                header: "x-user-groups".into(),
            },
            pb::ClaimHeader {
                claim: "absent".into(),
                header: "x-absent".into(),
            },
        ],
        ..inline_jwt()
    };
    let v = verifier(&cfg);
    let names: Vec<_> = v
        .forwarded_header_names()
        .map(|h| h.as_str().to_string())
        .collect();
    assert_eq!(names, ["x-user-email", "x-user-groups", "x-absent"]);
    let t = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("groups", json!(["dev", "ops"])),
    );
    let id = v.verify(&t).await.unwrap();
    let h: Vec<(&str, &str)> = id
        .forward_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
        .collect();
    assert_eq!(
        h,
        [
            ("x-user-email", "alice@example.com"),
            ("x-user-groups", "dev,ops")
        ]
    );
}

#[tokio::test]
async fn verified_tokens_are_cached_until_exp() {
    let v = verifier(&inline_jwt());
    let t = sign(Algorithm::RS256, Some("rsa-1"), &claims());
    let first = v.verify(&t).await.unwrap();
    assert_eq!(v.verified.len(), 1);
    assert_eq!(v.verify(&t).await.unwrap(), first);
    assert_eq!(v.verified.len(), 1);
    // A token accepted only thanks to leeway is not cached.
    let late = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims_with("exp", json!(now() - 5)),
    );
    assert!(v.verify(&late).await.is_ok());
    assert_eq!(v.verified.len(), 1);
    // Failures are not cached.
    assert!(
        v.verify(&sign(
            Algorithm::RS256,
            Some("rsa-1"),
            &claims_with("iss", json!("x"))
        ))
        .await
        .is_err()
    );
    assert_eq!(v.verified.len(), 1);
}

#[test]
fn token_cache_is_bounded_and_drops_expired_entries() {
    let cache = TokenCache::default();
    for i in 0..TOKEN_CACHE_CAPACITY + 10 {
        cache.insert(&format!("token-{i}"), 1_000, Identity::anonymous(), 10);
    }
    assert!(cache.len() <= TOKEN_CACHE_CAPACITY);
    let last = format!("token-{}", TOKEN_CACHE_CAPACITY + 9);
    assert!(cache.get(&last, 999).is_some());
    assert!(cache.get(&last, 1_000).is_none(), "expired at exp");
}

#[test]
fn config_errors() {
    let s = store();
    let err = |cfg: pb::JwtAuth| JwtVerifier::from_config(&cfg, &s).err().unwrap();
    assert_eq!(
        err(pb::JwtAuth {
            issuer: String::new(),
            ..inline_jwt()
        }),
        AuthConfigError::MissingIssuer
    );
    assert_eq!(
        err(pb::JwtAuth {
            keys: None,
            ..inline_jwt()
        }),
        AuthConfigError::MissingKeys
    );
    assert!(matches!(
        err(remote_jwt("ftp://x/jwks")),
        AuthConfigError::InvalidJwksUri(_)
    ));
    assert!(matches!(
        err(remote_jwt("not a url")),
        AuthConfigError::InvalidJwksUri(_)
    ));
    let bad_inline = pb::JwtAuth {
        keys: Some(Keys::InlineJwks("{}".into())),
        ..inline_jwt()
    };
    assert!(matches!(
        err(bad_inline),
        AuthConfigError::InvalidInlineJwks(_)
    ));
    let bad_claim = pb::JwtAuth {
        forward_claims: vec![pb::ClaimHeader {
            claim: "sub".into(),
            header: "bad header".into(),
        }],
        ..inline_jwt()
    };
    assert!(matches!(
        err(bad_claim),
        AuthConfigError::InvalidHeaderName(_)
    ));
}

#[test]
fn shared_verify_future_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let v = Arc::new(verifier(&inline_jwt()));
    assert_send(async move { v.verify("x").await });
}
