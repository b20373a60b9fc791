//! Helpers shared by the auth tests: signing tokens with the fixture keys
//! and building configurations.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard_proto as pb;
use switchboard_proto::jwt_auth::Keys;

pub(crate) const JWKS: &str = include_str!("testdata/jwks.json");
pub(crate) const RSA_PRIVATE: &[u8] = include_bytes!("testdata/rsa_private.pem");
pub(crate) const RSA_PUBLIC: &[u8] = include_bytes!("testdata/rsa_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("testdata/ec_private.pem");
const ED_PRIVATE: &[u8] = include_bytes!("testdata/ed_private.pem");

pub(crate) const ISS: &str = "https://idp.example.com";
pub(crate) const AUD: &str = "switchboard";

/// Seconds since the epoch (the clock `jsonwebtoken` validates with).
pub(crate) fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Valid claims for the test issuer and audience, expiring in 5 minutes.
pub(crate) fn claims() -> Value {
    json!({ "iss": ISS, "aud": AUD, "sub": "alice", "exp": now() + 300, "email": "alice@example.com" })
}

/// `claims()` with `key` set to `value` (or removed when `value` is null).
pub(crate) fn claims_with(key: &str, value: Value) -> Value {
    let mut c = claims();
    let obj = c.as_object_mut().unwrap();
    if value.is_null() {
        obj.remove(key);
    } else {
        obj.insert(key.to_string(), value);
    }
    c
}

/// A token signed with the fixture key of `alg`'s family.
pub(crate) fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
        AlgorithmFamily::Hmac => EncodingKey::from_secret(RSA_PUBLIC),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A token assembled by hand (for headers `jsonwebtoken` refuses to write).
pub(crate) fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let enc = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.{}",
        enc(header.to_string().as_bytes()),
        enc(claims.to_string().as_bytes()),
        enc(signature)
    )
}

/// JWT settings for the test issuer with the fixture JWKS inline.
pub(crate) fn inline_jwt() -> pb::JwtAuth {
    pb::JwtAuth {
        issuer: ISS.into(),
        audiences: vec![AUD.into()],
        keys: Some(Keys::InlineJwks(JWKS.into())),
        ..Default::default()
    }
}

/// JWT settings for the test issuer with a remote JWKS.
pub(crate) fn remote_jwt(uri: &str) -> pb::JwtAuth {
    pb::JwtAuth {
        keys: Some(Keys::JwksUri(uri.into())),
        ..inline_jwt()
    }
}
