//! The JWT issuer: tokens verify against the served JWKS; the broken kinds do not.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};
use switchboard_e2e::JwtIssuer;
use switchboard_e2e::client::json_body;
use switchboard_e2e::jwt_issuer::{EC_PRIVATE_PEM, RSA_PRIVATE_PEM};

async fn fetch_jwks(issuer: &JwtIssuer) -> JwkSet {
    let (status, _, body) = switchboard_e2e::get(&issuer.jwks_uri(), &[]).await;
    assert_eq!(status, 200);
    serde_json::from_value(json_body(&body)).unwrap()
}

fn verify(
    jwks: &JwkSet,
    token: &str,
    issuer: &JwtIssuer,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = decode_header(token)?;
    let kid = header.kid.unwrap_or_default();
    let jwk = jwks
        .find(&kid)
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer.issuer()]);
    validation.set_audience(&[issuer.audience()]);
    Ok(decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

#[tokio::test]
async fn tokens_verify_against_the_served_jwks() {
    let issuer = JwtIssuer::start().await;
    let jwks = fetch_jwks(&issuer).await;
    assert_eq!(issuer.jwks_fetches(), 1);

    let claims = verify(
        &jwks,
        &issuer.mint(json!({"sub": "alice", "team": "red"})),
        &issuer,
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["team"], "red");
    assert_eq!(claims["iss"], issuer.issuer());
    assert_eq!(claims["aud"], "switchboard-e2e");

    let token = issuer.mint_es256(json!({}));
    assert_eq!(decode_header(&token).unwrap().alg, Algorithm::ES256);
    assert_eq!(verify(&jwks, &token, &issuer).unwrap()["sub"], "e2e-user");

    let expired = verify(&jwks, &issuer.mint_expired(json!({})), &issuer).unwrap_err();
    assert_eq!(
        expired.kind(),
        &jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );

    let token = issuer.mint_unknown_key(json!({}));
    assert!(verify(&jwks, &token, &issuer).is_err());
    // Even with a known kid the rogue key's signature must not verify.
    let rsa = jwks.find("e2e-rsa").unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[issuer.audience()]);
    assert!(decode::<Value>(&token, &DecodingKey::from_jwk(rsa).unwrap(), &validation).is_err());
}

#[test]
fn committed_jwks_matches_the_private_keys() {
    let jwks: JwkSet = serde_json::from_str(switchboard_e2e::jwt_issuer::JWKS_JSON).unwrap();
    let rsa = Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    let ec = Jwk::from_encoding_key(
        &EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap(),
        Algorithm::ES256,
    )
    .unwrap();
    assert_eq!(jwks.find("e2e-rsa").unwrap().algorithm, rsa.algorithm);
    assert_eq!(jwks.find("e2e-ec").unwrap().algorithm, ec.algorithm);
}

#[tokio::test]
async fn mint_endpoint_serves_tokens_to_other_processes() {
    let issuer = JwtIssuer::start().await;
    let (status, _, body) = switchboard_e2e::post_json(
        &issuer.mint_uri(),
        &[],
        &json!({"kind": "es256", "claims": {"sub": "bob"}}),
    )
    .await;
    assert_eq!(status, 200);
    let token = String::from_utf8(body.to_vec()).unwrap();
    let jwks = fetch_jwks(&issuer).await;
    assert_eq!(verify(&jwks, &token, &issuer).unwrap()["sub"], "bob");
}
