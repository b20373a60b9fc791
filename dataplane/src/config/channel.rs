//! How the data plane reaches the controller: TLS and its identity.
//!
//! Snapshots carry provider keys, so the channel is TLS (`https://`) unless
//! plaintext is asked for by name (`http://` together with
//! `--controller-insecure-plaintext`, for local use; no token is sent then).
//!
//! Over TLS the controller's certificate is verified against
//! `--controller-ca` (a PEM bundle; only those CAs are trusted) or, without
//! it, against the system's roots; `--controller-server-name` overrides the
//! name checked (by default the URL's host). The CA file and the token file
//! (`--controller-token-file`, sent as `authorization: Bearer`) are read on
//! every connection attempt, so rotated files take effect at the next
//! reconnect. A token file that is missing or empty sends no token; the
//! controller then refuses the stream if it requires one.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// Where the projected ServiceAccount token is mounted by default.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/switchboard/token";

/// Why the channel settings cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelError {
    /// The flags contradict each other or the URL.
    #[error("{0}")]
    Flags(String),
    /// The CA bundle cannot be used.
    #[error("--controller-ca {path}: {reason}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// How to connect to the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerTransport {
    /// TLS, with a bearer token.
    Tls {
        /// CA bundle verifying the controller; `None`: the system's roots.
        ca: Option<PathBuf>,
        /// Name the certificate must carry; `None`: the URL's host.
        server_name: Option<String>,
        /// The token sent as `authorization: Bearer`.
        token_file: PathBuf,
    },
    /// Plaintext, no token (`--controller-insecure-plaintext`).
    InsecurePlaintext,
}

impl ControllerTransport {
    /// Checks the flags against the controller URL's scheme.
    pub fn from_flags(
        url: &str,
        ca: Option<PathBuf>,
        token_file: Option<PathBuf>,
        server_name: Option<String>,
        insecure_plaintext: bool,
    ) -> Result<Self, ChannelError> {
        let flags = |s: String| Err(ChannelError::Flags(s));
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("https") => {
                if insecure_plaintext {
                    return flags(format!(
                        "--controller-insecure-plaintext contradicts the https:// controller URL {url}"
                    ));
                }
                Ok(Self::Tls {
                    ca,
                    server_name,
                    token_file: token_file.unwrap_or_else(|| PathBuf::from(DEFAULT_TOKEN_FILE)),
                })
            }
            Some("http") => {
                if !insecure_plaintext {
                    return flags(format!(
                        "the controller URL {url} is plaintext: snapshots carry provider keys, so use https:// (TLS), or add --controller-insecure-plaintext for local use"
                    ));
                }
                if ca.is_some() || server_name.is_some() || token_file.is_some() {
                    return flags(
                        "--controller-ca, --controller-server-name and --controller-token-file need an https:// controller URL (a plaintext channel sends no token)".into(),
                    );
                }
                Ok(Self::InsecurePlaintext)
            }
            _ => flags(format!(
                "the controller URL {url:?} must start with https:// (or http:// with --controller-insecure-plaintext)"
            )),
        }
    }

    /// Applies TLS to `endpoint` (reading the CA bundle now) and returns the
    /// `authorization` value to send, if any (reading the token file now).
    pub fn prepare(
        &self,
        endpoint: Endpoint,
    ) -> Result<(Endpoint, Option<MetadataValue<tonic::metadata::Ascii>>), ChannelError> {
        let Self::Tls {
            ca,
            server_name,
            token_file,
        } = self
        else {
            return Ok((endpoint, None));
        };
        let mut tls = match ca {
            Some(path) => ClientTlsConfig::new().ca_certificate(read_ca(path)?),
            None => ClientTlsConfig::new().trust_anchors(system_anchors().iter().cloned()),
        };
        if let Some(name) = server_name {
            tls = tls.domain_name(name.clone());
        }
        let endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| ChannelError::Flags(format!("TLS settings: {e}")))?;
        Ok((endpoint, bearer(token_file)))
    }
}

/// The system's trust roots, loaded once.
fn system_anchors() -> &'static [TrustAnchor<'static>] {
    static ROOTS: OnceLock<Vec<TrustAnchor<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| crate::upstream::tls::system_roots().roots)
}

/// Reads and checks a PEM CA bundle.
pub fn read_ca(path: &Path) -> Result<Certificate, ChannelError> {
    let ca = |reason: String| ChannelError::Ca {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ca("no CERTIFICATE block".into()));
    }
    Ok(Certificate::from_pem(pem))
}

/// The `authorization` value for the token in `path`; `None` when there is
/// no usable token (logged without the token).
fn bearer(path: &Path) -> Option<MetadataValue<tonic::metadata::Ascii>> {
    let token = match std::fs::read_to_string(path) {
        Ok(t) => t.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "no controller token file; connecting without a token");
            return None;
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the controller token file; connecting without a token");
            return None;
        }
    };
    if token.is_empty() {
        tracing::warn!(path = %path.display(), "the controller token file is empty; connecting without a token");
        return None;
    }
    match MetadataValue::try_from(format!("Bearer {token}")) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Some(value)
        }
        Err(_) => {
            tracing::warn!(path = %path.display(), "the controller token file holds characters a header cannot carry; connecting without a token");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        url: &str,
        ca: bool,
        token: bool,
        name: bool,
        insecure: bool,
    ) -> Result<ControllerTransport, ChannelError> {
        ControllerTransport::from_flags(
            url,
            ca.then(|| PathBuf::from("/ca.crt")),
            token.then(|| PathBuf::from("/token")),
            name.then(|| "controller.test".to_string()),
            insecure,
        )
    }

    #[test]
    fn plaintext_must_be_asked_for_by_name() {
        let err = parse("http://ctl:9978", false, false, false, false).unwrap_err();
        assert!(
            err.to_string().contains("--controller-insecure-plaintext"),
            "{err}"
        );
        assert_eq!(
            parse("http://ctl:9978", false, false, false, true).unwrap(),
            ControllerTransport::InsecurePlaintext
        );
        for (ca, token, name) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            assert!(parse("http://ctl:9978", ca, token, name, true).is_err());
        }
        assert!(parse("https://ctl:9978", false, false, false, true).is_err());
        assert!(parse("ctl:9978", false, false, false, false).is_err());
        assert!(parse("ftp://ctl", false, false, false, false).is_err());
    }

    #[test]
    fn tls_defaults_to_the_projected_token() {
        assert_eq!(
            parse("https://ctl:9978", false, false, false, false).unwrap(),
            ControllerTransport::Tls {
                ca: None,
                server_name: None,
                token_file: PathBuf::from(DEFAULT_TOKEN_FILE),
            }
        );
        assert_eq!(
            parse("HTTPS://ctl:9978", true, true, true, false).unwrap(),
            ControllerTransport::Tls {
                ca: Some("/ca.crt".into()),
                server_name: Some("controller.test".into()),
                token_file: "/token".into(),
            }
        );
    }

    #[test]
    fn the_token_file_is_read_at_each_connection() {
        let dir = std::env::temp_dir().join(format!("sb-dp-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        assert!(bearer(&path).is_none(), "missing: no token");
        std::fs::write(&path, "abc.def\n").unwrap();
        let value = bearer(&path).unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer abc.def");
        assert!(value.is_sensitive());
        std::fs::write(&path, "rotated").unwrap();
        assert_eq!(bearer(&path).unwrap().to_str().unwrap(), "Bearer rotated");
        std::fs::write(&path, "  \n").unwrap();
        assert!(bearer(&path).is_none());
        std::fs::write(&path, "bad\u{7f}token").unwrap();
        assert!(bearer(&path).is_none());

        std::fs::write(&path, "not pem").unwrap();
        assert!(matches!(read_ca(&path), Err(ChannelError::Ca { .. })));
        assert!(matches!(
            read_ca(&dir.join("missing")),
            Err(ChannelError::Ca { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
