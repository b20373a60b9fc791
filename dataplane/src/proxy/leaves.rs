//! Leaf certificates per intercepted host, minted on first use and kept
//! until half their lifetime has passed, and the rustls certificate
//! resolver of one intercepted connection (the client's SNI must name the
//! host it asked to CONNECT to).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::ProxyError;
use super::ca::{LEAF_LIFETIME, ProxyCa};

/// Most leaves kept at once (one per intercepted host name; wildcards can
/// name many).
const MAX_LEAVES: usize = 1024;

/// Minted leaves by host name.
#[derive(Debug)]
pub struct LeafCache {
    ca: ProxyCa,
    leaves: Mutex<HashMap<String, Leaf>>,
}

#[derive(Debug, Clone)]
struct Leaf {
    key: Arc<CertifiedKey>,
    renew_at: SystemTime,
}

impl LeafCache {
    /// An empty cache minting with `ca`.
    pub fn new(ca: ProxyCa) -> Self {
        Self {
            ca,
            leaves: Mutex::new(HashMap::new()),
        }
    }

    /// The CA leaves are minted with.
    pub fn ca(&self) -> &ProxyCa {
        &self.ca
    }

    /// The leaf for `host` at `now`: the cached one until half its
    /// lifetime has passed, else a new one.
    pub fn get(&self, host: &str, now: SystemTime) -> Result<Arc<CertifiedKey>, ProxyError> {
        if let Some(leaf) = self.lock().get(host)
            && now < leaf.renew_at
        {
            return Ok(leaf.key.clone());
        }
        // Minted outside the lock; two connections racing mint twice, harmlessly.
        let key = self.ca.mint(host, now)?;
        let mut leaves = self.lock();
        if leaves.len() >= MAX_LEAVES {
            leaves.retain(|_, l| now < l.renew_at);
            if leaves.len() >= MAX_LEAVES {
                leaves.clear();
            }
        }
        leaves.insert(
            host.to_owned(),
            Leaf {
                key: key.clone(),
                renew_at: now + LEAF_LIFETIME / 2,
            },
        );
        Ok(key)
    }

    /// Leaves held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no leaf is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Leaf>> {
        self.leaves
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Picks the leaf for one intercepted connection: the SNI must equal the
/// CONNECT host (no SNI: the CONNECT host, as for IP literals); any other
/// name fails the handshake.
#[derive(Debug)]
pub struct ConnectionResolver {
    /// The cache to mint from.
    pub leaves: Arc<LeafCache>,
    /// The CONNECT target host.
    pub host: String,
}

impl ResolvesServerCert for ConnectionResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = hello.server_name()
            && super::hosts::normalize(sni) != self.host
        {
            tracing::debug!(host = %self.host, sni, "proxy: SNI differs from the CONNECT host; handshake refused");
            return None;
        }
        match self.leaves.get(&self.host, SystemTime::now()) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(host = %self.host, error = %e, "proxy: cannot mint a leaf certificate");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn leaves_are_reused_until_half_their_lifetime_then_renewed() {
        let now = SystemTime::now();
        let created = super::super::ca::create("cache", now).unwrap();
        let cache =
            LeafCache::new(ProxyCa::from_pem(&created.cert_pem, &created.key_pem, now).unwrap());
        let first = cache.get("api.openai.com", now).unwrap();
        let again = cache
            .get("api.openai.com", now + Duration::from_secs(60))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = cache.get("api.anthropic.com", now).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        let renewed = cache
            .get(
                "api.openai.com",
                now + LEAF_LIFETIME / 2 + Duration::from_secs(1),
            )
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &renewed));
        assert_eq!(cache.len(), 2);
    }
}
