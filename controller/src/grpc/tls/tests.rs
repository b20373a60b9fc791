use super::*;
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt as _;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
const SERVER_NAME: &str = "switchboard-controller.test";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn leaf(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(&fixture(name)).unwrap()
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-tls-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Mounts `cert`/`key` the way a Kubernetes Secret volume does: `tls.crt` and `tls.key` are
/// symlinks into `..data`, itself a symlink to a folder per version, swapped atomically.
fn mount(dir: &Path, version: usize, cert: &[u8], key: &[u8]) {
    let data = dir.join(format!("..v{version}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), cert).unwrap();
    std::fs::write(data.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&data, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(name)).is_err() {
            std::os::unix::fs::symlink(dir.join("..data").join(name), dir.join(name)).unwrap();
        }
    }
}

fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("tls.crt"), dir.join("tls.key"))
}

fn serving(reloader: &CertReloader) -> CertificateDer<'static> {
    reloader.current().cert[0].clone()
}

#[test]
fn a_changed_pair_is_reloaded_and_a_broken_one_is_not() {
    let dir = temp_dir("reload");
    mount(&dir, 1, &fixture("a.crt"), &fixture("a.key"));
    let (cert, key) = paths(&dir);
    let reloader = CertReloader::load(&cert, &key).unwrap();
    assert_eq!(serving(&reloader), leaf("a.crt"));
    assert!(matches!(reloader.reload_if_changed(), Reload::Unchanged));

    mount(&dir, 2, &fixture("b.crt"), &fixture("b.key"));
    assert!(matches!(reloader.reload_if_changed(), Reload::Reloaded));
    assert_eq!(serving(&reloader), leaf("b.crt"), "the rotated pair serves");

    // Half a rotation (the new certificate with the old key) is refused once; b keeps serving.
    mount(&dir, 3, &fixture("a.crt"), &fixture("b.key"));
    assert!(matches!(
        reloader.reload_if_changed(),
        Reload::Failed(TlsError::Pair { .. })
    ));
    assert!(matches!(reloader.reload_if_changed(), Reload::Unchanged));
    assert_eq!(serving(&reloader), leaf("b.crt"));

    mount(&dir, 4, &fixture("a.crt"), b"not a key");
    assert!(matches!(
        reloader.reload_if_changed(),
        Reload::Failed(TlsError::Key { .. })
    ));
    assert_eq!(serving(&reloader), leaf("b.crt"));

    mount(&dir, 5, &fixture("a.crt"), &fixture("a.key"));
    assert!(matches!(reloader.reload_if_changed(), Reload::Reloaded));
    assert_eq!(serving(&reloader), leaf("a.crt"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_that_do_not_load_are_refused_at_start() {
    let dir = temp_dir("refuse");
    let (cert, key) = paths(&dir);
    assert!(matches!(
        CertReloader::load(&cert, &key),
        Err(TlsError::Read { .. })
    ));
    std::fs::write(&cert, b"").unwrap();
    std::fs::write(&key, fixture("a.key")).unwrap();
    assert!(matches!(
        CertReloader::load(&cert, &key),
        Err(TlsError::Certificate { .. })
    ));
    std::fs::write(&cert, fixture("a.crt")).unwrap();
    std::fs::write(&key, fixture("b.key")).unwrap();
    let err = CertReloader::load(&cert, &key).unwrap_err();
    assert!(matches!(err, TlsError::Pair { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn client() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(leaf("ca.crt")).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects, completes the handshake and returns the certificate the server presented.
async fn presented(addr: std::net::SocketAddr) -> CertificateDer<'static> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let stream = client().connect(name, tcp).await.unwrap();
    let (_, session) = stream.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    session.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn new_connections_get_the_rotated_certificate_and_plaintext_gets_nothing() {
    let dir = temp_dir("serve");
    mount(&dir, 1, &fixture("a.crt"), &fixture("a.key"));
    let (cert, key) = paths(&dir);
    let tls = ServerTls::load(&cert, &key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (tx, mut accepted) = mpsc::channel(4);
    let task = tokio::spawn(accept_loop(listener, tls, metrics.clone(), tx));

    assert_eq!(presented(addr).await, leaf("a.crt"));
    assert!(accepted.recv().await.unwrap().is_ok());

    mount(&dir, 2, &fixture("b.crt"), &fixture("b.key"));
    assert_eq!(
        presented(addr).await,
        leaf("b.crt"),
        "the next connection after a rotation gets the new certificate"
    );
    assert!(accepted.recv().await.unwrap().is_ok());
    let reloads = metrics
        .tls_reloads
        .get_or_create(&ReloadLabels { result: "ok" })
        .get();
    assert_eq!(reloads, 1);

    // A plaintext HTTP/2 client never reaches the gRPC server.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    while metrics.tls_handshake_failures.get() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(accepted.try_recv().is_err(), "nothing was accepted");

    drop(accepted);
    task.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Loads `cert`/`key` from the fixtures, serves them, and returns the certificate a client that
/// trusts the test CA was presented (the handshake signs with the key, so a key that loads but
/// cannot sign fails here).
async fn serve_fixture_pair(label: &str, cert: &[u8], key: &[u8]) -> CertificateDer<'static> {
    let dir = temp_dir(label);
    mount(&dir, 1, cert, key);
    let (cert, key) = paths(&dir);
    let tls = ServerTls::load(&cert, &key).unwrap_or_else(|e| panic!("{label}: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut accepted) = mpsc::channel(1);
    let task = tokio::spawn(accept_loop(listener, tls, Arc::new(Metrics::new()), tx));
    let seen = presented(addr).await;
    assert!(accepted.recv().await.unwrap().is_ok());
    drop(accepted);
    task.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    seen
}

fn pem_label(pem: &[u8]) -> String {
    String::from_utf8_lossy(pem)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_rsa_pkcs1_key_as_helm_generates_it_serves() {
    // The chart's default (tls.mode=helm): genSignedCert writes an RSA key in PKCS#1.
    let key = fixture("rsa-pkcs1.key");
    assert_eq!(pem_label(&key), "-----BEGIN RSA PRIVATE KEY-----");
    let pair = load_certified_key(
        &Path::new(FIXTURES).join("rsa-pkcs1.crt"),
        &Path::new(FIXTURES).join("rsa-pkcs1.key"),
        &provider(),
    )
    .unwrap();
    assert_eq!(pair.key.algorithm(), rustls::SignatureAlgorithm::RSA);
    let served = serve_fixture_pair("rsa-pkcs1", &fixture("rsa-pkcs1.crt"), &key).await;
    assert_eq!(served, leaf("rsa-pkcs1.crt"));
}

#[tokio::test]
async fn an_ecdsa_sec1_key_as_cert_manager_writes_it_serves() {
    // tls.mode=certManager: an ECDSA key in cert-manager's default encoding is SEC1.
    let key = fixture("ec-sec1.key");
    assert_eq!(pem_label(&key), "-----BEGIN EC PRIVATE KEY-----");
    let served = serve_fixture_pair("ec-sec1", &fixture("ec-sec1.crt"), &key).await;
    assert_eq!(served, leaf("ec-sec1.crt"));
    // `openssl ecparam -genkey` puts the curve's parameters before the key; they are skipped.
    let with_params = [
        &b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"[..],
        &key,
    ]
    .concat();
    let served = serve_fixture_pair("ec-sec1-params", &fixture("ec-sec1.crt"), &with_params).await;
    assert_eq!(served, leaf("ec-sec1.crt"));
}

#[tokio::test]
async fn a_pkcs8_key_as_the_install_docs_openssl_commands_write_it_serves() {
    // docs/install.md's `openssl req -newkey ec ...` writes PKCS#8.
    let key = fixture("a.key");
    assert_eq!(pem_label(&key), "-----BEGIN PRIVATE KEY-----");
    let served = serve_fixture_pair("pkcs8", &fixture("a.crt"), &key).await;
    assert_eq!(served, leaf("a.crt"));
}

#[test]
fn an_encrypted_key_is_refused_with_the_reason() {
    for name in ["encrypted-pkcs8.key", "encrypted-legacy.key"] {
        let err = load_certified_key(
            &Path::new(FIXTURES).join("a.crt"),
            &Path::new(FIXTURES).join(name),
            &provider(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, TlsError::Key { reason, .. } if reason.contains("encrypted")),
            "{name}: {err}"
        );
    }
}
