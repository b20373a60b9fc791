//! The accept stage through real loopback sockets: connection caps, the
//! first-byte and idle timeouts on every protocol, and the keep-alive
//! contract of requests answered before their body was read.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ConnLimits, REFUSAL, serve};
use crate::pipeline::testing::{CLIENT_KEY, Harness, backend, route};

/// Longest a test waits for the server to act (real time, generous).
const PATIENCE: Duration = Duration::from_secs(20);

fn harness() -> Harness {
    Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary"]),
    ])
}

/// Serves the traffic pipeline on a loopback port with `limits`.
async fn start(h: &Harness, limits: ConnLimits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        limits,
        h.state.clone(),
        |s, r: Request<Incoming>, peer| {
            crate::pipeline::handle_from(s, r.map(crate::pipeline::request_body), Some(peer))
        },
        std::future::pending(),
        Duration::from_secs(1),
    ));
    addr
}

fn quick(listener: &'static str) -> ConnLimits {
    ConnLimits {
        listener,
        max_connections: 100,
        first_byte_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_secs(30),
    }
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .ok();
    out
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let h = harness();
    let addr = start(&h, quick("traffic")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(read_to_close(&mut s).await.is_empty());
    let m = h.metrics();
    assert_eq!(
        crate::pipeline::testing::metric(
            &m,
            "switchboard_connections_closed_total",
            &[("reason", "first_byte_timeout")]
        ),
        1.0,
        "{m}"
    );
}

#[tokio::test]
async fn a_stalled_protocol_detection_is_closed() {
    let h = harness();
    let addr = start(&h, quick("traffic")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The start of the HTTP/2 preface: the server cannot tell the protocol yet.
    s.write_all(b"PRI * HT").await.unwrap();
    read_to_close(&mut s).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let h = harness();
    let addr = start(&h, quick("traffic")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut s).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn an_idle_h2c_connection_is_closed() {
    let h = harness();
    let addr = start(&h, quick("traffic")).await;
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), io)
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let resp = sender
        .send_request(Request::get("http://x/").body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp.into_body().collect().await);
    // No stream open any more: the server sends GOAWAY and the connection ends.
    tokio::time::timeout(PATIENCE, conn)
        .await
        .expect("the server ends an idle HTTP/2 connection")
        .unwrap()
        .ok();
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_503_while_the_admin_port_answers() {
    let h = harness();
    let traffic = start(
        &h,
        ConnLimits {
            max_connections: 2,
            first_byte_timeout: PATIENCE * 3,
            idle_timeout: PATIENCE * 3,
            ..quick("traffic")
        },
    )
    .await;
    let admin = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            listener,
            ConnLimits::admin(),
            h.state.clone(),
            |s, r, _peer| super::handle_admin(s, r),
            std::future::pending(),
            Duration::from_secs(1),
        ));
        addr
    };
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(traffic).await.unwrap());
    }
    // Both slots are taken once the server has accepted them.
    while crate::pipeline::testing::metric(
        &h.metrics(),
        "switchboard_connections_open",
        &[("listener", "traffic")],
    ) < 2.0
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut third = TcpStream::connect(traffic).await.unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut third).await;
    assert_eq!(answer, REFUSAL, "{}", String::from_utf8_lossy(&answer));
    let mut probe = TcpStream::connect(admin).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let health = read_to_close(&mut probe).await;
    assert!(
        String::from_utf8_lossy(&health).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&health)
    );
    assert_eq!(
        crate::pipeline::testing::metric(
            &h.metrics(),
            "switchboard_connections_refused_total",
            &[("listener", "traffic")]
        ),
        1.0
    );
    drop(held);
}

#[test]
fn the_refusal_declares_its_length() {
    let text = std::str::from_utf8(REFUSAL).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
}

/// Reads one HTTP/1 response (head and `content-length` body).
async fn read_response(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(head);
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_401_before_the_body_keeps_the_connection_usable_or_says_close() {
    let h = harness();
    let addr = start(
        &h,
        ConnLimits {
            first_byte_timeout: PATIENCE,
            idle_timeout: PATIENCE,
            ..quick("traffic")
        },
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = format!(
        "{{\"model\":\"gpt-test\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(2000)
    );
    let (first, rest) = body.split_at(100);
    // A bad key, and only the start of the body: the gateway can answer now.
    s.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-api-key: wrong\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{first}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Give the gateway the chance to answer before the rest of the body.
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut s)).await;
    s.write_all(rest.as_bytes()).await.unwrap();
    let head = match early {
        Ok(head) => head.expect("a response"),
        Err(_) => read_response(&mut s).await.expect("a response"),
    };
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    if head.to_ascii_lowercase().contains("connection: close") {
        return; // the client knows not to reuse the connection
    }
    // Kept alive: the next request on the same connection must be served.
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let second = tokio::time::timeout(PATIENCE, read_response(&mut s))
        .await
        .expect("an answer in time");
    let second = second.expect("the connection was kept open for the next request");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[tokio::test]
async fn a_large_unread_body_closes_the_connection_explicitly() {
    let h = harness();
    let addr = start(&h, quick("traffic")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-api-key: wrong\r\ncontent-length: {}\r\n\r\n{{",
            1 << 20
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let head = tokio::time::timeout(PATIENCE, read_response(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let _ = CLIENT_KEY;
}

#[tokio::test]
async fn streams_cut_at_the_end_of_the_grace_period_are_logged_and_charged() {
    use crate::upstream::fake::{Reply, Step};
    let mut r = route(&["gpt-*"], &["primary"]);
    r["spec"]["teams"] = serde_json::json!({"teams": [{"name": "payments", "tier": "metered", "apiKeys": ["test"]}]});
    r["spec"]["tiers"] = serde_json::json!([{"name": "metered", "tokensPerDay": 1_000_000}]);
    let h = Harness::new(&[backend("primary", "OpenAI", &["gpt-test"]), r]);
    // Forty one-token deltas, then the upstream goes on thinking forever.
    let chunk = |content: &str| {
        let c = serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
        Step::Data(Bytes::from(format!("data: {c}\n\n")))
    };
    let mut body = vec![chunk("")];
    body.extend((0..40).map(|_| chunk("tok ")));
    body.push(Step::Stall);
    h.upstream.set_default(
        "primary",
        Reply::Respond {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            body,
        },
    );
    let (logs, _guard) = crate::pipeline::testing::capture_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        ConnLimits {
            first_byte_timeout: PATIENCE,
            idle_timeout: PATIENCE,
            ..quick("traffic")
        },
        h.state.clone(),
        |s, r: Request<Incoming>, peer| {
            crate::pipeline::handle_from(s, r.map(crate::pipeline::request_body), Some(peer))
        },
        async {
            let _ = stop_rx.await;
        },
        Duration::from_millis(200),
    ));
    let request = serde_json::json!({"model": "gpt-test", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let mut clients = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-api-key: {CLIENT_KEY}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{request}",
                request.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        // Wait until the forty deltas reached this client.
        let mut seen = Vec::new();
        let mut chunk = [0u8; 8192];
        while String::from_utf8_lossy(&seen).matches("tok ").count() < 40 {
            let n = tokio::time::timeout(PATIENCE, s.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed early");
            seen.extend_from_slice(&chunk[..n]);
        }
        clients.push(s);
    }
    stop_tx.send(()).unwrap();
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("serve returns after the grace period")
        .unwrap();
    assert_eq!(h.state.limiter.flush(PATIENCE).await, 0);
    let finished = logs.finished();
    assert_eq!(finished.len(), 10, "{finished:?}");
    for line in &finished {
        assert_eq!(line["outcome"], "shutdown", "{line}");
        assert!(line["output_tokens"].as_u64().unwrap() >= 40, "{line}");
    }
    let m = h.metrics();
    assert_eq!(
        crate::pipeline::testing::metric(
            &m,
            "switchboard_streams_total",
            &[("outcome", "shutdown")]
        ),
        10.0,
        "{m}"
    );
    let charged = crate::pipeline::testing::metric(
        &m,
        "switchboard_team_tokens_total",
        &[("team", "payments"), ("kind", "output")],
    );
    assert!(charged >= 400.0, "{m}");
    // The clients saw the connection close.
    for mut c in clients {
        read_to_close(&mut c).await;
    }
}
