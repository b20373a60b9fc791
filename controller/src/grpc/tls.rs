//! TLS for the snapshot server (`--grpc-tls-cert`, `--grpc-tls-key`).
//!
//! The server certificate is served through a [`CertReloader`], a rustls
//! certificate resolver: before each handshake the two files are checked
//! (size, modification time, inode: a `stat` each, so a Kubernetes Secret
//! volume's symlink swap is noticed too) and, when either changed, read and
//! checked again. A pair that does not load (unreadable, not PEM, a key that
//! does not match the certificate, e.g. while only one of the two files was
//! replaced) is logged and the last good pair keeps serving; a rotated
//! certificate therefore takes effect on the next connection without a
//! restart. Established connections keep the certificate they started with.
//!
//! Handshakes run concurrently, each bounded by [`HANDSHAKE_TIMEOUT`], at
//! most [`MAX_HANDSHAKES`] at once, in tasks owned by [`accept_loop`]; only
//! established TLS connections reach the gRPC server. ALPN offers `h2` only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::metrics::{Metrics, ReloadLabels};

/// Longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait in the
/// listen backlog.
pub const MAX_HANDSHAKES: usize = 256;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{path}: no PEM certificate ({reason})")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file holds no usable PEM private key.
    #[error("{path}: no PEM private key ({reason})")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key does not belong to the certificate, or is of an unsupported type.
    #[error("the key in {key} cannot serve the certificate in {cert}: {source}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// rustls refused the server configuration.
    #[error("TLS server configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The crypto provider of every TLS connection of the controller.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first) and its PEM private key and
/// checks that they belong together. The key may be RSA or ECDSA, in
/// PKCS#8 (`PRIVATE KEY`, what `openssl req -newkey` writes), PKCS#1
/// (`RSA PRIVATE KEY`, Helm's `genSignedCert`) or SEC1 (`EC PRIVATE KEY`,
/// cert-manager's ECDSA default; a leading `EC PARAMETERS` block is
/// skipped); an encrypted key is refused with that reason.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_path_buf(),
            reason: "the file holds no CERTIFICATE block".into(),
        });
    }
    if is_encrypted_pem(&key_pem) {
        return Err(TlsError::Key {
            path: key.to_path_buf(),
            reason: "the key is encrypted with a passphrase; give the unencrypted key (e.g. \
                     `openssl pkey -in KEY -out tls.key`)"
                .into(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        reason: match e {
            pem::Error::NoItemsFound => "the file holds no PRIVATE KEY block".into(),
            e => e.to_string(),
        },
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

/// Whether a PEM key file holds an encrypted key: PKCS#8 `ENCRYPTED PRIVATE KEY`, or a legacy
/// OpenSSL key with a `Proc-Type: 4,ENCRYPTED` header.
fn is_encrypted_pem(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    device: u64,
}

fn stamp(path: &Path) -> Result<Stamp, TlsError> {
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    let (inode, device) = {
        use std::os::unix::fs::MetadataExt as _;
        (meta.ino(), meta.dev())
    };
    #[cfg(not(unix))]
    let (inode, device) = (0, 0);
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
        device,
    })
}

/// The outcome of [`CertReloader::reload_if_changed`].
#[derive(Debug)]
pub enum Reload {
    /// Neither file changed since the last check.
    Unchanged,
    /// A new pair loaded and serves from now on.
    Reloaded,
    /// The files changed but do not load; the last good pair keeps serving.
    Failed(TlsError),
}

/// The server certificate, reloaded from its files when they change; the
/// rustls certificate resolver of the snapshot server.
pub struct CertReloader {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// The stamps of the last files looked at (loaded or not).
    seen: Mutex<Option<(Stamp, Stamp)>>,
}

impl std::fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertReloader")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CertReloader {
    /// Loads the pair once; fails when it does not load (the controller
    /// then refuses to start).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let provider = provider();
        let stamps = (stamp(cert)?, stamp(key)?);
        let loaded = load_certified_key(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: ArcSwap::from_pointee(loaded),
            seen: Mutex::new(Some(stamps)),
        })
    }

    /// The pair that serves now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Loads the files again if either changed since the last check. A pair
    /// that does not load is reported once per change; the last good one
    /// keeps serving.
    pub fn reload_if_changed(&self) -> Reload {
        let stamps = match (stamp(&self.cert), stamp(&self.key)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => return Reload::Failed(e),
        };
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.as_ref() == Some(&stamps) {
                return Reload::Unchanged;
            }
            *seen = Some(stamps);
        }
        match load_certified_key(&self.cert, &self.key, &self.provider) {
            Ok(pair) => {
                self.current.store(Arc::new(pair));
                Reload::Reloaded
            }
            Err(e) => Reload::Failed(e),
        }
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server side of TLS: the reloading certificate and the acceptor.
#[derive(Clone)]
pub struct ServerTls {
    reloader: Arc<CertReloader>,
    acceptor: TlsAcceptor,
}

impl ServerTls {
    /// Loads `cert` and `key` (failing when they do not load) and builds the
    /// rustls server configuration: TLS 1.2 and 1.3, no client
    /// certificates, ALPN `h2`.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let reloader = Arc::new(CertReloader::load(cert, key)?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(reloader.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            reloader,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The certificate resolver.
    pub fn reloader(&self) -> &Arc<CertReloader> {
        &self.reloader
    }

    /// Checks the files (off the runtime threads) and logs and counts what
    /// a change did.
    async fn refresh(&self, metrics: &Metrics) {
        let reloader = self.reloader.clone();
        let outcome = tokio::task::spawn_blocking(move || reloader.reload_if_changed()).await;
        let result = match outcome {
            Ok(Reload::Unchanged) => return,
            Ok(Reload::Reloaded) => {
                tracing::info!(cert = %self.reloader.cert.display(), "gRPC TLS certificate reloaded");
                "ok"
            }
            Ok(Reload::Failed(e)) => {
                tracing::warn!(error = %e, "gRPC TLS certificate not reloaded; the last good one keeps serving");
                "error"
            }
            Err(e) => {
                tracing::warn!(error = %e, "gRPC TLS certificate check panicked");
                "error"
            }
        };
        metrics
            .tls_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }
}

/// An established TLS connection, or why accepting failed.
pub type Accepted = Result<TlsStream<TcpStream>, std::io::Error>;

/// Accepts connections on `listener`, runs their TLS handshakes
/// concurrently and sends each established connection to `out`. Returns
/// when `out` is closed (the server stopped).
pub async fn accept_loop(
    listener: TcpListener,
    tls: ServerTls,
    metrics: Arc<Metrics>,
    out: mpsc::Sender<Accepted>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        if handshakes.len() >= MAX_HANDSHAKES {
            handshakes.join_next().await;
            continue;
        }
        tokio::select! {
            () = out.closed() => return,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let (tls, metrics, out) = (tls.clone(), metrics.clone(), out.clone());
                    handshakes.spawn(async move {
                        tls.refresh(&metrics).await;
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                let _ = out.send(Ok(stream)).await;
                            }
                            Ok(Err(e)) => {
                                metrics.tls_handshake_failures.inc();
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            }
                            Err(_) => {
                                metrics.tls_handshake_failures.inc();
                                tracing::debug!(%peer, "TLS handshake timed out");
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly
                    // instead of spinning on the error.
                    tracing::warn!(error = %e, "accepting a gRPC connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
