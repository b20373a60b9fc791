//! Translation memory is bounded by the body's size (issue 12, item 1): a 30 MB body of a million
//! one-character messages, translated for a backend of the other format (Messages → OpenAI, Chat →
//! Anthropic, Responses → Anthropic), raises the gateway process's peak resident memory by at most
//! 4× the body (it took 1.7 GB when the body was translated as one `serde_json::Value` tree).
//!
//! Measured on the real process: the peak resident set (`VmHWM` in `/proc/PID/status`) is reset
//! (`/proc/PID/clear_refs`) before each request and read after it. Linux only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::{ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV};
use switchboard_e2e::{Flavor, Gateway, post_raw, write_config};

/// Messages in the big body.
const MESSAGES: usize = 1_000_000;

/// A minimal upstream: reads every request body whole (counting its bytes) and answers a short
/// completion in the format of the path. Unlike the mock providers it never parses the body, so
/// the test process stays small.
async fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let counter = counter.clone();
                    async move {
                        let anthropic = req.uri().path().ends_with("/messages");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        counter.fetch_add(body.len(), Ordering::SeqCst);
                        let answer = if anthropic {
                            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                                "usage": {"input_tokens": 1, "output_tokens": 1}})
                        } else {
                            json!({"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                        };
                        let mut resp = Response::new(Full::new(Bytes::from(answer.to_string())));
                        resp.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, received)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Resets the peak RSS, sends `body` to `path`, and returns (status, peak RSS growth in bytes).
async fn peak_growth(gateway: &Gateway, path: &str, body: Bytes) -> (u16, u64) {
    let pid = gateway.pid();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");
    let before = status_kib(pid, "VmRSS:") * 1024;
    let (status, _, answer) = post_raw(
        &format!("{}{path}", gateway.base_url()),
        &[("anthropic-version", "2023-06-01")],
        body,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let peak = status_kib(pid, "VmHWM:") * 1024;
    (status.as_u16(), peak.saturating_sub(before))
}

#[tokio::test]
async fn translating_a_body_of_a_million_tiny_messages_stays_within_4x_its_size() {
    if !std::path::Path::new("/proc/self/clear_refs").exists() {
        panic!("this test measures memory through /proc (Linux)");
    }
    let (openai, openai_bytes) = counting_upstream().await;
    let (anthropic, anthropic_bytes) = counting_upstream().await;
    let config = ConfigBuilder::new()
        .backend(
            "openai",
            backend_spec(
                Flavor::OpenAI,
                &format!("http://{openai}"),
                OPENAI_KEY_ENV,
                &["gpt-test"],
            ),
        )
        .backend(
            "anthropic",
            backend_spec(
                Flavor::Anthropic,
                &format!("http://{anthropic}"),
                ANTHROPIC_KEY_ENV,
                &["claude-test"],
            ),
        )
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "rules": [rule(&["gpt-*"], &["openai"]), rule(&["claude-*"], &["anthropic"])],
                "maxRequestBodyBytes": 64 << 20,
            }),
        );
    let dir = temp_dir("memory");
    let gateway = Gateway::start(
        &write_config(&dir, &config.to_yaml()),
        &[
            (OPENAI_KEY_ENV, OPENAI_KEY),
            (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
        ],
    )
    .await;

    // Warm up (pools, lazily built state) with a small translated request of each kind.
    let small_messages =
        r#"{"model":"gpt-test","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
    let small_chat = r#"{"model":"claude-test","messages":[{"role":"user","content":"x"}]}"#;
    peak_growth(
        &gateway,
        "/v1/messages",
        Bytes::from_static(small_messages.as_bytes()),
    )
    .await;
    peak_growth(
        &gateway,
        "/v1/chat/completions",
        Bytes::from_static(small_chat.as_bytes()),
    )
    .await;

    for (path, model, upstream_bytes) in [
        ("/v1/messages", "gpt-test", &openai_bytes),
        ("/v1/chat/completions", "claude-test", &anthropic_bytes),
        ("/v1/responses", "claude-test", &anthropic_bytes),
    ] {
        let list = if path == "/v1/responses" {
            "input"
        } else {
            "messages"
        };
        let mut body = String::with_capacity(MESSAGES * 31 + 100);
        body.push_str(&format!(r#"{{"model":"{model}","max_tokens":5,"{list}":["#));
        for i in 0..MESSAGES {
            if i > 0 {
                body.push(',');
            }
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            body.push_str(&format!(r#"{{"role":"{role}","content":"x"}}"#));
        }
        body.push_str("]}");
        let size = body.len() as u64;
        assert!(size > 30_000_000, "{size}");
        let sent_before = upstream_bytes.load(Ordering::SeqCst);
        let (_, growth) = peak_growth(&gateway, path, Bytes::from(body)).await;
        let forwarded = upstream_bytes.load(Ordering::SeqCst) - sent_before;
        assert!(
            forwarded as u64 > size / 2,
            "{path}: the translated body reached the upstream ({forwarded} bytes)"
        );
        assert!(
            growth <= 4 * size,
            "{path}: peak memory grew by {} MiB for a {} MiB body (limit 4x)",
            growth >> 20,
            size >> 20
        );
        eprintln!(
            "{path}: {} MiB body, peak RSS growth {} MiB ({:.2}x)",
            size >> 20,
            growth >> 20,
            growth as f64 / size as f64
        );
    }
}
