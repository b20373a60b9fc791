//! The one TLS client configuration of the process.
//!
//! Roots are the system's (`rustls-native-certs`, which also honours
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`), falling back to the bundled Mozilla
//! roots when the system has none. Upstream providers, request webhooks and
//! JWKS endpoints all use this configuration, so a private CA added to the
//! system store (or named by `SSL_CERT_FILE`) is trusted everywhere at once.

use std::sync::Arc;

/// The trust roots: the system's, or the bundled Mozilla roots when the
/// system has none. (The controller channel uses them too when no
/// `--controller-ca` is given.)
pub fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// Builds the rustls client configuration with the `ring` provider.
pub fn client_config() -> rustls::ClientConfig {
    let roots = system_roots();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            // The ring provider supports the default versions; this branch is unreachable in practice.
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3 is supported by ring")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        })
}
