//! A parsed JSON Web Key Set: the verification keys of one issuer, ready to
//! use, indexed by `kid`.
//!
//! Parsing is pure. Keys the gateway must never verify with are dropped
//! here: symmetric (`oct`) keys, encryption keys (`use: enc`), curves other
//! than P-256/P-384/Ed25519, and keys whose `alg` contradicts their type. A
//! key that fails to parse is skipped so one odd key cannot take down the
//! others; a set with no usable key at all is an error.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};

/// One verification key and the algorithms it may verify.
pub(crate) struct VerifyKey {
    /// The parsed key.
    pub key: DecodingKey,
    /// Algorithms this key accepts (its JWK `alg` if set, else its type's family).
    pub algorithms: &'static [Algorithm],
    /// The JWK's `alg`, when it names one.
    pub pinned: Option<Algorithm>,
}

impl VerifyKey {
    /// True when a token signed with `alg` may be verified with this key.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        match self.pinned {
            Some(p) => p == alg,
            None => self.algorithms.contains(&alg),
        }
    }
}

/// Keys by `kid`, plus the keys without one.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    unnamed: Vec<Arc<VerifyKey>>,
}

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const ES256: &[Algorithm] = &[Algorithm::ES256];
const ES384: &[Algorithm] = &[Algorithm::ES384];
const EDDSA: &[Algorithm] = &[Algorithm::EdDSA];

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    pub fn parse(json: &[u8]) -> Result<KeySet, String> {
        let doc: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| "JWKS has no \"keys\" array".to_string())?;
        let mut set = KeySet::default();
        for raw in keys {
            let Some((kid, key)) = parse_key(raw) else {
                continue;
            };
            let key = Arc::new(key);
            match kid {
                Some(kid) => {
                    set.by_kid.entry(kid).or_insert(key);
                }
                None => set.unnamed.push(key),
            }
        }
        if set.is_empty() {
            return Err("JWKS holds no usable signature verification key".to_string());
        }
        Ok(set)
    }

    /// True when the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.unnamed.is_empty()
    }

    /// The key a token names. A token without `kid` may use the set's only
    /// key that accepts its algorithm; with several candidates it is refused.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None => {
                let mut candidates = self
                    .by_kid
                    .values()
                    .chain(self.unnamed.iter())
                    .filter(|k| k.accepts(alg));
                let first = candidates.next()?;
                candidates.next().is_none().then(|| first.clone())
            }
        }
    }
}

/// One JWK as a usable verification key, or `None` when it must be skipped.
fn parse_key(raw: &serde_json::Value) -> Option<(Option<String>, VerifyKey)> {
    if raw
        .get("use")
        .and_then(|u| u.as_str())
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
    let (algorithms, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            (RSA_ALGS, DecodingKey::from_rsa_components(&p.n, &p.e).ok()?)
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let algs = match p.curve {
                EllipticCurve::P256 => ES256,
                EllipticCurve::P384 => ES384,
                _ => return None,
            };
            (algs, DecodingKey::from_ec_components(&p.x, &p.y).ok()?)
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            if p.curve != EllipticCurve::Ed25519 {
                return None;
            }
            (EDDSA, DecodingKey::from_ed_components(&p.x).ok()?)
        }
        // Symmetric keys and unknown key types never verify client tokens.
        _ => return None,
    };
    let pinned = match jwk.common.key_algorithm {
        None => None,
        Some(a) => {
            let alg = Algorithm::from_str(&a.to_string()).ok()?;
            if !algorithms.contains(&alg) {
                return None;
            }
            Some(alg)
        }
    };
    Some((
        jwk.common.key_id.clone(),
        VerifyKey {
            key,
            algorithms,
            pinned,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = include_str!("testdata/jwks.json");

    #[test]
    fn parses_rsa_ec_and_ed_keys_by_kid() {
        let set = KeySet::parse(JWKS.as_bytes()).unwrap();
        assert!(set.find(Some("rsa-1"), Algorithm::RS256).is_some());
        assert!(set.find(Some("ec-1"), Algorithm::ES256).is_some());
        assert!(set.find(Some("ed-1"), Algorithm::EdDSA).is_some());
        assert!(set.find(Some("nope"), Algorithm::RS256).is_none());
    }

    #[test]
    fn pinned_alg_restricts_the_key() {
        let set = KeySet::parse(JWKS.as_bytes()).unwrap();
        let rsa = set.find(Some("rsa-1"), Algorithm::RS256).unwrap();
        assert!(rsa.accepts(Algorithm::RS256));
        assert!(!rsa.accepts(Algorithm::PS256));
        assert!(!rsa.accepts(Algorithm::ES256));
        let noalg = KeySet::parse(include_bytes!("testdata/jwks_rsa_noalg.json")).unwrap();
        let rsa = noalg.find(Some("rsa-noalg"), Algorithm::PS384).unwrap();
        assert!(rsa.accepts(Algorithm::PS384) && rsa.accepts(Algorithm::RS512));
        assert!(!rsa.accepts(Algorithm::ES256) && !rsa.accepts(Algorithm::HS256));
    }

    #[test]
    fn kidless_token_uses_the_only_matching_key() {
        let set = KeySet::parse(JWKS.as_bytes()).unwrap();
        assert!(set.find(None, Algorithm::ES256).is_some());
        assert!(set.find(None, Algorithm::ES384).is_none());
    }

    #[test]
    fn symmetric_and_encryption_keys_are_dropped() {
        let doc = r#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}
        ]}"#;
        assert!(KeySet::parse(doc.as_bytes()).is_err());
    }

    #[test]
    fn alg_contradicting_kty_drops_the_key() {
        let doc: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let mut ec = doc["keys"][1].clone();
        ec["alg"] = "RS256".into();
        let doc = serde_json::json!({ "keys": [ec] }).to_string();
        assert!(KeySet::parse(doc.as_bytes()).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(KeySet::parse(b"not json").is_err());
        assert!(KeySet::parse(b"{}").is_err());
        assert!(KeySet::parse(br#"{"keys":[]}"#).is_err());
    }
}
