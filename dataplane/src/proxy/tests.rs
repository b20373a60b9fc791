//! In-process tests of the proxy listener on real loopback sockets: CONNECT
//! handling, proxy authentication, interception through the pipeline (a
//! TLS client trusting the gateway CA), byte-for-byte tunnels, and the
//! connection bounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::ca::{ProxyCa, create};
use super::{HostList, LeafCache, OtherHosts, Proxy, ProxyAuth, ProxyOptions};
use crate::pipeline::testing::{CLIENT_KEY, Harness, backend, chat, route};
use crate::server::ConnLimits;
use crate::upstream::fake::Reply;

struct Running {
    addr: SocketAddr,
    ca: rustls::pki_types::CertificateDer<'static>,
}

fn options() -> ProxyOptions {
    ProxyOptions {
        intercept: HostList::defaults(),
        other_hosts: OtherHosts::Tunnel,
        tunnel_ports: vec![443],
        auth: ProxyAuth::Required,
        limits: ConnLimits {
            listener: "proxy",
            ..ConnLimits::traffic(64)
        },
        connect_timeout: Duration::from_secs(5),
    }
}

async fn start(h: &Harness, options: ProxyOptions) -> Running {
    let now = SystemTime::now();
    let created = create("proxy test CA", now).unwrap();
    let ca = ProxyCa::from_pem(&created.cert_pem, &created.key_pem, now).unwrap();
    let ca_der = ca.certificate().clone();
    let proxy = Arc::new(Proxy {
        state: h.state.clone(),
        options,
        leaves: Arc::new(LeafCache::new(ca)),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(super::listener::serve(
        listener,
        proxy,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    Running { addr, ca: ca_der }
}

fn gateway() -> Harness {
    Harness::new(&[
        backend("openai", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["openai"]),
    ])
}

/// Sends a CONNECT and reads the answer's head; the stream is positioned after it.
async fn connect(addr: SocketAddr, target: &str, auth: Option<&str>) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = auth {
        head.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        got.push(byte[0]);
    }
    (s, String::from_utf8(got).unwrap())
}

fn bearer() -> String {
    format!("Bearer {CLIENT_KEY}")
}

#[tokio::test]
async fn a_connect_without_or_with_a_wrong_credential_is_407() {
    let h = gateway();
    let p = start(&h, options()).await;
    let (_, head) = connect(p.addr, "api.openai.com:443", None).await;
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    assert!(head.contains("proxy-authenticate: Basic"), "{head}");
    let (_, head) = connect(p.addr, "api.openai.com:443", Some("Bearer wrong")).await;
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    let (_, head) = connect(p.addr, "example.com:443", Some("Digest x")).await;
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    // Optional proxy auth still refuses a token that is sent and wrong.
    let p = start(
        &h,
        ProxyOptions {
            auth: ProxyAuth::Optional,
            ..options()
        },
    )
    .await;
    let (_, head) = connect(p.addr, "api.openai.com:443", Some("Bearer wrong")).await;
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    let text = h.metrics();
    assert_eq!(
        crate::pipeline::testing::metric(
            &text,
            "switchboard_proxy_connects_total",
            &[("outcome", "unauthenticated")]
        ),
        4.0,
        "{text}"
    );
}

#[tokio::test]
async fn non_connect_requests_and_bad_targets_are_refused() {
    let h = gateway();
    let p = start(&h, options()).await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET http://api.openai.com/ HTTP/1.1\r\nHost: api.openai.com\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    assert!(answer.contains("allow: CONNECT"), "{answer}");
    let (_, head) = connect(p.addr, "no-port", Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
}

/// TLS to `host` through an established tunnel, trusting only `ca`.
async fn tls(
    s: TcpStream,
    host: &str,
    ca: &rustls::pki_types::CertificateDer<'static>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, s)
        .await
}

#[tokio::test]
async fn an_intercepted_request_is_served_by_the_pipeline_as_the_proxy_caller() {
    let h = gateway();
    h.upstream
        .set_default("openai", Reply::ok("through the proxy"));
    let p = start(&h, options()).await;
    let (s, head) = connect(p.addr, "api.openai.com:443", Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let tls = tls(s, "api.openai.com", &p.ca)
        .await
        .expect("the minted leaf verifies");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    // The tool's own OpenAI key is in the request; the proxy token identifies the caller.
    let req = http::Request::post("/v1/chat/completions")
        .header("host", "api.openai.com")
        .header("authorization", "Bearer sk-tools-own-openai-key")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat("gpt-test", false).to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "through the proxy");
    let sent = &h.upstream.requests()[0];
    assert_eq!(sent.headers["authorization"], "Bearer sk-provider-test");
    let all = format!("{:?}", sent.headers);
    assert!(
        !all.contains("sk-tools-own-openai-key") && !all.contains(CLIENT_KEY),
        "{all}"
    );
    let text = h.metrics();
    let m = |name, labels: &[(&str, &str)]| crate::pipeline::testing::metric(&text, name, labels);
    assert_eq!(
        m(
            "switchboard_proxy_connects_total",
            &[("outcome", "intercepted")]
        ),
        1.0
    );
    assert!(
        m("switchboard_requests_total", &[("route", "default/main")]) >= 1.0,
        "{text}"
    );
}

/// One request through an intercepted tunnel to `host`, with the tool's own
/// credential header; returns the status.
async fn through_the_proxy(
    p: &Running,
    host: &str,
    path: &str,
    credential: (&str, &str),
    body: serde_json::Value,
) -> http::StatusCode {
    let (s, head) = connect(p.addr, &format!("{host}:443"), Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let tls = tls(s, host, &p.ca).await.expect("the minted leaf verifies");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header("host", host)
        .header(credential.0, credential.1)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    status
}

#[tokio::test]
async fn on_a_byok_route_the_tools_own_credential_is_the_callers_provider_key() {
    let mut r = route(&["gpt-*"], &["openai"]);
    r["spec"]["byok"] = serde_json::json!("Required");
    r["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"models": ["claude-*"], "backends": [{"name": "anthropic"}]}));
    let h = Harness::new(&[
        backend("openai", "OpenAI", &["gpt-test"]),
        backend("anthropic", "Anthropic", &["claude-test"]),
        r,
    ]);
    let p = start(&h, options()).await;
    let status = through_the_proxy(
        &p,
        "api.openai.com",
        "/v1/chat/completions",
        ("authorization", "Bearer sk-tools-own-openai-key"),
        chat("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200);
    let status = through_the_proxy(
        &p,
        "api.anthropic.com",
        "/v1/messages",
        ("x-api-key", "sk-ant-tools-own-key"),
        crate::pipeline::testing::messages("claude-test", false),
    )
    .await;
    assert_eq!(status, 200);
    // The proxy token is a gateway credential: the request is served as it
    // is, and a Required route wants a provider key it does not have.
    let status = through_the_proxy(
        &p,
        "api.openai.com",
        "/v1/chat/completions",
        ("authorization", &bearer()),
        chat("gpt-test", false),
    )
    .await;
    assert_eq!(status, 401);
    let sent = h.upstream.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].headers["authorization"],
        "Bearer sk-tools-own-openai-key"
    );
    assert_eq!(sent[1].headers["x-api-key"], "sk-ant-tools-own-key");
    let all = format!("{:?}{:?}", sent[0].headers, sent[1].headers);
    assert!(
        !all.contains(CLIENT_KEY) && !all.contains("sk-provider-test"),
        "neither the gateway token nor the backend's key went up: {all}"
    );
}

#[tokio::test]
async fn a_tls_client_asking_for_another_name_gets_no_certificate() {
    let h = gateway();
    let p = start(&h, options()).await;
    let (s, head) = connect(p.addr, "api.openai.com:443", Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(tls(s, "api.anthropic.com", &p.ca).await.is_err());
}

/// A TCP server answering every connection with `banner` then echoing.
async fn echo_server(banner: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                s.write_all(banner).await.unwrap();
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn other_hosts_are_tunnelled_byte_for_byte_to_allowed_ports_only() {
    let h = gateway();
    let port = echo_server(b"banner\n").await;
    let p = start(
        &h,
        ProxyOptions {
            tunnel_ports: vec![port],
            ..options()
        },
    )
    .await;
    let (mut s, head) = connect(p.addr, &format!("127.0.0.1:{port}"), Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let bytes: Vec<u8> = (0..=255u8).collect();
    s.write_all(&bytes).await.unwrap();
    let mut got = vec![0u8; 7 + bytes.len()];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got[..7], b"banner\n");
    assert_eq!(&got[7..], &bytes[..]);
    let (_, head) = connect(p.addr, "127.0.0.1:22", Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let p = start(
        &h,
        ProxyOptions {
            other_hosts: OtherHosts::Refuse,
            tunnel_ports: vec![port],
            ..options()
        },
    )
    .await;
    let (_, head) = connect(p.addr, &format!("127.0.0.1:{port}"), Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
}

#[tokio::test]
async fn an_idle_tunnel_is_closed() {
    let h = gateway();
    let port = echo_server(b"").await;
    let mut opts = options();
    opts.tunnel_ports = vec![port];
    opts.limits.idle_timeout = Duration::from_millis(200);
    let p = start(&h, opts).await;
    let (mut s, head) = connect(p.addr, &format!("127.0.0.1:{port}"), Some(&bearer())).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).await.unwrap(), 0, "closed by the proxy");
    let text = h.metrics();
    assert_eq!(
        crate::pipeline::testing::metric(
            &text,
            "switchboard_connections_closed_total",
            &[("listener", "proxy"), ("reason", "idle_timeout")]
        ),
        1.0
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_with_503() {
    let h = gateway();
    let mut opts = options();
    opts.limits.max_connections = 1;
    let p = start(&h, opts).await;
    let mut first = TcpStream::connect(p.addr).await.unwrap();
    // `first` holds the only slot while it sends nothing.
    let mut second = TcpStream::connect(p.addr).await.unwrap();
    let mut answer = String::new();
    second.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    first.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_first_byte_timeout() {
    let h = gateway();
    let mut opts = options();
    opts.limits.first_byte_timeout = Duration::from_millis(100);
    let p = start(&h, opts).await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).await.unwrap(), 0);
}
