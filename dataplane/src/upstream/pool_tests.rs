//! The pool against real servers on loopback (HTTP/1.1 in the clear, HTTP/2
//! by ALPN over TLS), and the idle list's rules on their own.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Barrier;

use super::{IdleList, SendError};
use crate::upstream::Transport;
use crate::upstream::http::{ClientCache, HttpTransport};

/// What the test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    target: String,
    host: Option<String>,
}

/// A server on loopback that counts connections and records requests.
/// Paths: `/ok`; `/close` (answers with `connection: close`); `/big` (a
/// 1 MiB body in 64 chunks); `/gather` (answers once `gather` requests
/// have arrived).
struct TestServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    async fn start(tls: Option<tokio_rustls::TlsAcceptor>, gather: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let barrier = Arc::new(Barrier::new(gather.max(1)));
        let (count, record) = (accepted.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let (record, barrier, tls) = (record.clone(), barrier.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (record, barrier) = (record.clone(), barrier.clone());
                        async move { Ok::<_, Infallible>(answer(req, &record, &barrier).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        Some(tls) => {
                            let Ok(stream) = tls.accept(tcp).await else {
                                return;
                            };
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        None => builder.serve_connection(TokioIo::new(tcp), service).await,
                    };
                });
            }
        });
        Self {
            addr,
            accepted,
            seen,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn answer(
    req: Request<Incoming>,
    seen: &Mutex<Vec<Seen>>,
    barrier: &Barrier,
) -> Response<TestBody> {
    seen.lock().unwrap().push(Seen {
        version: req.version(),
        target: req.uri().to_string(),
        host: req
            .headers()
            .get(http::header::HOST)
            .map(|h| h.to_str().unwrap().to_owned()),
    });
    let path = req.uri().path().to_owned();
    let _ = req.into_body().collect().await;
    let full = |text: &'static str| Full::new(Bytes::from_static(text.as_bytes())).boxed();
    match path.as_str() {
        "/close" => Response::builder()
            .header(http::header::CONNECTION, "close")
            .body(full("closing"))
            .unwrap(),
        "/big" => {
            let chunks = (0..64)
                .map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 16 * 1024]))));
            Response::new(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        }
        "/gather" => {
            barrier.wait().await;
            Response::new(full("gathered"))
        }
        _ => Response::new(full("ok")),
    }
}

fn transport() -> HttpTransport {
    transport_trusting(crate::upstream::tls::client_config())
}

fn transport_trusting(tls: rustls::ClientConfig) -> HttpTransport {
    let cache = ClientCache::new(Arc::new(tls));
    HttpTransport::new(cache.connections(Duration::from_secs(5)))
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri(url)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

async fn send_text(t: &HttpTransport, req: Request<Full<Bytes>>) -> (u16, String) {
    let resp = t.send(req).await.expect("a response");
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("the whole body")
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `n` requests to `url` sent at once, each from its own task; their answers.
async fn at_once(t: &Arc<HttpTransport>, url: &str, n: usize) -> Vec<(u16, String)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (t, url) = (t.clone(), url.to_owned());
            tokio::spawn(async move { send_text(&t, get(&url)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn sequential_requests_reuse_one_http1_connection_with_host_and_origin_form() {
    let server = TestServer::start(None, 1).await;
    let t = transport();
    for _ in 0..5 {
        let (status, body) = send_text(&t, get(&format!("http://{}/ok?x=1", server.addr))).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    assert_eq!(server.accepted(), 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 5);
    for s in seen {
        assert_eq!(s.version, Version::HTTP_11);
        assert_eq!(s.target, "/ok?x=1");
        assert_eq!(s.host.as_deref(), Some(server.addr.to_string().as_str()));
    }
}

#[tokio::test]
async fn a_host_header_the_request_carries_is_kept() {
    let server = TestServer::start(None, 1).await;
    let mut req = get(&format!("http://{}/ok", server.addr));
    req.headers_mut()
        .insert(http::header::HOST, "signed.example".parse().unwrap());
    let (status, _) = send_text(&transport(), req).await;
    assert_eq!(status, 200);
    assert_eq!(server.seen()[0].host.as_deref(), Some("signed.example"));
}

#[tokio::test]
async fn a_streamed_answer_returns_its_connection_once_read_to_the_end() {
    let server = TestServer::start(None, 1).await;
    let t = transport();
    let (status, body) = send_text(&t, get(&format!("http://{}/big", server.addr))).await;
    assert_eq!((status, body.len()), (200, 1 << 20));
    let (status, _) = send_text(&t, get(&format!("http://{}/ok", server.addr))).await;
    assert_eq!(status, 200);
    assert_eq!(server.accepted(), 1, "the connection was reused");
}

#[tokio::test]
async fn an_answer_dropped_before_its_end_does_not_return_its_connection() {
    let server = TestServer::start(None, 1).await;
    let t = transport();
    let resp = t
        .send(get(&format!("http://{}/big", server.addr)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    let (status, body) = send_text(&t, get(&format!("http://{}/ok", server.addr))).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn a_connection_the_server_closes_is_not_reused() {
    let server = TestServer::start(None, 1).await;
    let t = transport();
    let (status, body) = send_text(&t, get(&format!("http://{}/close", server.addr))).await;
    assert_eq!((status, body.as_str()), (200, "closing"));
    let (status, _) = send_text(&t, get(&format!("http://{}/ok", server.addr))).await;
    assert_eq!(status, 200);
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn concurrent_requests_open_connections_that_all_go_back_idle() {
    let server = TestServer::start(None, 4).await;
    let t = Arc::new(transport());
    let url = format!("http://{}/gather", server.addr);
    for answer in at_once(&t, &url, 4).await {
        assert_eq!(answer, (200, "gathered".to_owned()));
    }
    assert_eq!(
        server.accepted(),
        4,
        "four requests at once need four connections"
    );
    // All four went back idle: four more at once reuse them.
    for answer in at_once(&t, &url, 4).await {
        assert_eq!(answer.0, 200);
    }
    assert_eq!(server.accepted(), 4);
}

/// A raw HTTP/1.1 server: each connection answers `answered` requests with
/// `ok`, then reads one more request head (if `read_last`) and closes without
/// answering. Returns the address, the connections and the requests seen.
async fn raw_server(
    answered: usize,
    read_last: bool,
) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (conns, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, r) = (conns.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                for _ in 0..answered {
                    if !read_request(&mut tcp, &mut buf).await {
                        return;
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    let _ = tcp
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                }
                if read_last && read_request(&mut tcp, &mut buf).await {
                    r.fetch_add(1, Ordering::SeqCst);
                }
                // Closed without `connection: close`.
            });
        }
    });
    (addr, conns, requests)
}

/// Reads one request (head and the test's 2-byte body); false at EOF.
async fn read_request(tcp: &mut tokio::net::TcpStream, buf: &mut [u8]) -> bool {
    let mut got = Vec::new();
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
            && got.len() >= end + 4 + 2
        {
            return true;
        }
        match tcp.read(buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn an_idle_connection_the_server_dropped_is_replaced() {
    // Each connection answers one request and then closes, as a server
    // whose keep-alive timeout passed would.
    let (addr, conns, requests) = raw_server(1, false).await;
    let t = transport();
    for _ in 0..3 {
        let (status, body) = send_text(&t, get(&format!("http://{addr}/"))).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert_eq!(conns.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_request_written_before_the_connection_closed_is_not_sent_again() {
    let (addr, conns, requests) = raw_server(1, true).await;
    let t = transport();
    let (status, _) = send_text(&t, get(&format!("http://{addr}/"))).await;
    assert_eq!(status, 200);
    let second = t.send(get(&format!("http://{addr}/"))).await;
    assert!(
        matches!(second, Err(SendError::Failed(_))),
        "{:?}",
        second.map(|r| r.status())
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "the second request was read once"
    );
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = transport().send(get(&format!("http://{addr}/"))).await;
    assert!(
        matches!(out, Err(SendError::Connect(_))),
        "{:?}",
        out.map(|r| r.status())
    );
}

#[tokio::test]
async fn one_transport_reaches_two_origins() {
    let (a, b) = (
        TestServer::start(None, 1).await,
        TestServer::start(None, 1).await,
    );
    let t = transport();
    for _ in 0..2 {
        for server in [&a, &b] {
            let (status, _) = send_text(&t, get(&format!("http://{}/ok", server.addr))).await;
            assert_eq!(status, 200);
        }
    }
    assert_eq!((a.accepted(), b.accepted()), (1, 1));
    assert_eq!((a.seen().len(), b.seen().len()), (2, 2));
}

/// A TLS acceptor offering HTTP/2 and HTTP/1.1 for `localhost`, and a
/// client configuration trusting it.
fn tls_pair() -> (tokio_rustls::TlsAcceptor, rustls::ClientConfig) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(issued.signing_key.serialize_der().into());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![issued.cert.der().clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(issued.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (tokio_rustls::TlsAcceptor::from(Arc::new(server)), client)
}

#[tokio::test]
async fn http2_chosen_by_alpn_carries_concurrent_requests_on_one_connection() {
    let (acceptor, client) = tls_pair();
    let server = TestServer::start(Some(acceptor), 8).await;
    let t = Arc::new(transport_trusting(client));
    let url = format!("https://localhost:{}/ok", server.addr.port());
    // The first request makes the connection; then eight at once share it.
    assert_eq!(send_text(&t, get(&url)).await, (200, "ok".to_owned()));
    let gather = format!("https://localhost:{}/gather", server.addr.port());
    for answer in at_once(&t, &gather, 8).await {
        assert_eq!(answer, (200, "gathered".to_owned()));
    }
    assert_eq!(server.accepted(), 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 9);
    assert!(
        seen.iter().all(|s| s.version == Version::HTTP_2),
        "{seen:?}"
    );
}

#[tokio::test]
async fn https_without_h2_falls_back_to_http1() {
    let (acceptor, client) = tls_pair();
    let acceptor = {
        // The same certificate, offering HTTP/1.1 only.
        let mut config = (**acceptor.config()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    };
    let server = TestServer::start(Some(acceptor), 1).await;
    let t = transport_trusting(client);
    let url = format!("https://localhost:{}/ok", server.addr.port());
    for _ in 0..2 {
        assert_eq!(send_text(&t, get(&url)).await.0, 200);
    }
    assert_eq!(server.accepted(), 1);
    let seen = server.seen();
    assert!(
        seen.iter()
            .all(|s| s.version == Version::HTTP_11 && s.target == "/ok"),
        "{seen:?}"
    );
    assert_eq!(
        seen[0].host.as_deref(),
        Some(format!("localhost:{}", server.addr.port()).as_str())
    );
}

#[test]
fn the_idle_list_hands_out_the_most_recent_first() {
    let t0 = Instant::now();
    let mut idle = IdleList::new(4, Duration::from_secs(90));
    idle.push("a", t0);
    idle.push("b", t0 + Duration::from_secs(1));
    assert_eq!(idle.pop(t0 + Duration::from_secs(2)), Some("b"));
    assert_eq!(idle.pop(t0 + Duration::from_secs(2)), Some("a"));
    assert_eq!(idle.pop(t0 + Duration::from_secs(2)), None);
}

#[test]
fn the_idle_list_drops_what_waited_too_long() {
    let t0 = Instant::now();
    let mut idle = IdleList::new(4, Duration::from_secs(90));
    idle.push("old", t0);
    idle.push("older-than-timeout-too", t0 + Duration::from_secs(5));
    // At t0 + 100 s both waited longer than 90 s.
    assert_eq!(idle.pop(t0 + Duration::from_secs(100)), None);
    assert!(idle.is_empty());
    idle.push("fresh", t0 + Duration::from_secs(100));
    // Exactly at the timeout it is still usable.
    assert_eq!(idle.pop(t0 + Duration::from_secs(190)), Some("fresh"));
}

#[test]
fn a_full_idle_list_drops_its_oldest() {
    let t0 = Instant::now();
    let mut idle = IdleList::new(2, Duration::from_secs(90));
    idle.push(1, t0);
    idle.push(2, t0);
    idle.push(3, t0);
    assert_eq!(idle.len(), 2);
    assert_eq!(idle.pop(t0), Some(3));
    assert_eq!(idle.pop(t0), Some(2));
    assert_eq!(idle.pop(t0), None);
    let mut none = IdleList::new(0, Duration::from_secs(90));
    none.push(1, t0);
    assert!(none.is_empty());
}
