//! The gateway's own certificate authority for proxy mode: loaded from PEM
//! files (a mounted Secret), created by `switchboard-dataplane proxy-ca
//! create`, and the short-lived leaf certificates it mints per host.
//!
//! Leaves are ECDSA P-256, valid from an hour before they are minted (clock
//! skew) for [`LEAF_LIFETIME`], with the host as their only subject
//! alternative name, `serverAuth` only, and are served with the CA
//! certificate after them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::ProxyError;

/// How long a minted leaf certificate is valid.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How far before `now` a leaf's validity starts (clients with a slow clock).
const BACKDATE: Duration = Duration::from_secs(3600);
/// Validity of a CA made by [`create`].
pub const CA_LIFETIME: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// A CA certificate and its key, ready to sign leaves.
pub struct ProxyCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    /// SHA-256 of the CA certificate (hex), for logs.
    fingerprint: String,
}

impl std::fmt::Debug for ProxyCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyCa")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl ProxyCa {
    /// Reads the CA certificate and its PKCS#8 private key from PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, ProxyError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| ProxyError::CaFile {
                path: p.display().to_string(),
                message: e.to_string(),
            })
        };
        Self::from_pem(&read(cert)?, &read(key)?, SystemTime::now())
    }

    /// The CA from PEM text. The certificate must be a CA (`basicConstraints
    /// CA:TRUE`), valid at `now`, and match the key.
    pub fn from_pem(cert_pem: &str, key_pem: &str, now: SystemTime) -> Result<Self, ProxyError> {
        let bad = |m: &str| ProxyError::Ca(m.to_owned());
        let pem = rustls::pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| bad("the CA certificate file holds no PEM CERTIFICATE"))?;
        let ca_der: CertificateDer<'static> = pem;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| ProxyError::Ca(format!("the CA key cannot be read ({e}); use an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY)")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&ca_der)
            .map_err(|_| bad("the CA certificate does not parse as X.509"))?;
        if !parsed.is_ca() {
            return Err(bad(
                "the certificate is not a CA (basicConstraints CA:TRUE is missing)",
            ));
        }
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(bad("the CA key does not belong to the CA certificate"));
        }
        let secs = unix_secs(now);
        let validity = parsed.validity();
        if secs < validity.not_before.timestamp() || secs > validity.not_after.timestamp() {
            return Err(bad(
                "the CA certificate is not valid now (expired or not yet valid)",
            ));
        }
        drop(parsed);
        let issuer = Issuer::from_ca_cert_der(&ca_der, key)
            .map_err(|e| ProxyError::Ca(format!("the CA certificate cannot issue: {e}")))?;
        Ok(Self {
            issuer,
            fingerprint: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&ca_der)),
            ca_der,
        })
    }

    /// SHA-256 of the CA certificate, hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The CA certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Mints a leaf for `host` (a DNS name or an IP literal), valid from
    /// an hour before `now` for [`LEAF_LIFETIME`].
    pub fn mint(&self, host: &str, now: SystemTime) -> Result<Arc<CertifiedKey>, ProxyError> {
        let fail = |e: rcgen::Error| ProxyError::Mint(format!("{host}: {e}"));
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(fail)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.not_before = offset(now.checked_sub(BACKDATE).unwrap_or(now));
        params.not_after = offset(now + LEAF_LIFETIME);
        params.serial_number = Some(random_serial());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(fail)?;
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::ring::sign::any_supported_type(&private)
            .map_err(|e| ProxyError::Mint(format!("{host}: {e}")))?;
        Ok(Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signer,
        )))
    }
}

/// A new CA: certificate and key, PEM.
pub struct CreatedCa {
    /// The CA certificate (what clients trust).
    pub cert_pem: String,
    /// Its private key, PKCS#8 (keep secret).
    pub key_pem: String,
}

/// Creates a CA (ECDSA P-256) named `common_name`, valid from `now` for
/// [`CA_LIFETIME`], that may sign server certificates only (path length 0).
pub fn create(common_name: &str, now: SystemTime) -> Result<CreatedCa, ProxyError> {
    let fail = |e: rcgen::Error| ProxyError::Ca(e.to_string());
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Switchboard");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = offset(now.checked_sub(BACKDATE).unwrap_or(now));
    params.not_after = offset(now + CA_LIFETIME);
    params.serial_number = Some(random_serial());
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok(CreatedCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes a new CA into `dir` as `ca.crt` and `ca.key` (mode 0600),
/// refusing to replace existing files.
pub fn create_files(dir: &Path, common_name: &str) -> Result<(), ProxyError> {
    let created = create(common_name, SystemTime::now())?;
    let io = |p: &Path, e: std::io::Error| ProxyError::CaFile {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let cert = dir.join("ca.crt");
    let key = dir.join("ca.key");
    for p in [&cert, &key] {
        if p.exists() {
            return Err(ProxyError::CaFile {
                path: p.display().to_string(),
                message: "already exists; remove it or choose another --out-dir".into(),
            });
        }
    }
    write_new(&key, created.key_pem.as_bytes(), 0o600).map_err(|e| io(&key, e))?;
    write_new(&cert, created.cert_pem.as_bytes(), 0o644).map_err(|e| io(&cert, e))?;
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)?.write_all(bytes)
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix_secs(t))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A random positive 16-byte serial number.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        *b = fastrand::u8(..);
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{ServerName, UnixTime};

    fn verify(
        ca: &ProxyCa,
        leaf: &CertifiedKey,
        name: &str,
        at: SystemTime,
    ) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.certificate().clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &leaf.cert[1..],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap()),
            )
            .map(|_| ())
    }

    #[test]
    fn a_created_ca_mints_leaves_clients_verify_for_their_host_only() {
        let now = SystemTime::now();
        let created = create("test CA", now).unwrap();
        let ca = ProxyCa::from_pem(&created.cert_pem, &created.key_pem, now).unwrap();
        let leaf = ca.mint("api.openai.com", now).unwrap();
        assert_eq!(leaf.cert.len(), 2, "leaf then CA");
        verify(&ca, &leaf, "api.openai.com", now).unwrap();
        assert!(verify(&ca, &leaf, "api.anthropic.com", now).is_err());
        assert!(
            verify(
                &ca,
                &leaf,
                "api.openai.com",
                now + LEAF_LIFETIME + Duration::from_secs(60)
            )
            .is_err(),
            "short-lived"
        );
        let ip = ca.mint("127.0.0.1", now).unwrap();
        verify(&ca, &ip, "127.0.0.1", now).unwrap();
    }

    #[test]
    fn a_ca_with_the_wrong_key_or_no_ca_flag_is_refused() {
        let now = SystemTime::now();
        let a = create("a", now).unwrap();
        let b = create("b", now).unwrap();
        let err = ProxyCa::from_pem(&a.cert_pem, &b.key_pem, now).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["x.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let err = ProxyCa::from_pem(&leaf.pem(), &key.serialize_pem(), now).unwrap_err();
        assert!(err.to_string().contains("not a CA"), "{err}");
        let err = ProxyCa::from_pem(&a.cert_pem, &a.key_pem, now + CA_LIFETIME * 2).unwrap_err();
        assert!(err.to_string().contains("not valid now"), "{err}");
        assert!(ProxyCa::from_pem("nothing", &a.key_pem, now).is_err());
    }

    #[test]
    fn created_files_are_private_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("sb-proxy-ca-{}", fastrand::u64(..)));
        create_files(&dir, "files").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        ProxyCa::load(&dir.join("ca.crt"), &dir.join("ca.key")).unwrap();
        assert!(create_files(&dir, "again").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
