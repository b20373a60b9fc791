//! Static API keys.
//!
//! Only SHA-256 digests of the configured keys are kept. A presented key is
//! hashed and compared with every digest in constant time, so neither the
//! comparison nor which key matched leaks through timing.

use sha2::{Digest, Sha256};
use switchboard_proto as pb;

use super::{AuthConfigError, AuthError, Identity};

/// The API keys of one route.
#[derive(Default)]
pub(crate) struct ApiKeys {
    keys: Vec<(String, [u8; 32])>,
}

impl ApiKeys {
    /// Validates and hashes the configured keys.
    pub fn from_config(keys: &[pb::ApiKey]) -> Result<Self, AuthConfigError> {
        let mut out = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            if k.name.is_empty() || k.value.is_empty() {
                return Err(AuthConfigError::EmptyApiKey(i));
            }
            out.push((k.name.clone(), digest(k.value.as_bytes())));
        }
        Ok(Self { keys: out })
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The identity of the key `presented`, if it is one of this route's.
    pub fn verify(&self, presented: &str) -> Result<Identity, AuthError> {
        let d = digest(presented.as_bytes());
        let mut matched: Option<&str> = None;
        // Every digest is compared; no early exit.
        for (name, expected) in &self.keys {
            if constant_time_eq(&d, expected) && matched.is_none() {
                matched = Some(name);
            }
        }
        matched
            .map(Identity::api_key)
            .ok_or(AuthError::InvalidApiKey)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares two digests without branching on their content.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn keys() -> ApiKeys {
        ApiKeys::from_config(&[
            pb::ApiKey {
                name: "ci".into(),
                value: "sk-ci-123".into(),
            },
            pb::ApiKey {
                name: "alice".into(),
                value: "sk-alice-456".into(),
            },
        ])
        .unwrap()
    }

    #[test]
    fn matching_key_names_the_subject() {
        let id = keys().verify("sk-alice-456").unwrap();
        assert_eq!(&*id.subject, "alice");
        assert_eq!(id.method, AuthMethod::ApiKey);
        assert!(id.forward_headers.is_empty());
    }

    #[test]
    fn mismatch_is_rejected() {
        assert_eq!(
            keys().verify("sk-alice-457").err(),
            Some(AuthError::InvalidApiKey)
        );
        assert_eq!(keys().verify("").err(), Some(AuthError::InvalidApiKey));
    }

    #[test]
    fn empty_name_or_value_is_a_config_error() {
        let e = ApiKeys::from_config(&[pb::ApiKey {
            name: "x".into(),
            value: String::new(),
        }])
        .err();
        assert_eq!(e, Some(AuthConfigError::EmptyApiKey(0)));
    }

    #[test]
    fn constant_time_eq_compares_all_bytes() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
    }
}
