//! Item 2 of issue 12: request bodies are read after authentication and
//! admission, within deadlines and a process-wide byte budget.

use std::time::Duration;

use serde_json::json;

use super::testing::{Harness, backend, chat, read, route};
use crate::bounds::{BodyBudget, Bounds};

fn harness(bounds: Bounds) -> Harness {
    Harness::with_bounds(
        &[
            backend("primary", "OpenAI", &["gpt-test"]),
            route(&["gpt-*"], &["primary"]),
        ],
        bounds,
    )
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_midway_is_answered_408_and_its_bytes_released() {
    let h = harness(Bounds::default());
    let started = tokio::time::Instant::now();
    let resp = tokio::time::timeout(
        Duration::from_secs(300),
        h.send_stalled_body("/v1/chat/completions", 1000, b"{\"model\":"),
    )
    .await
    .expect("the gateway gives up on a silent body");
    let (status, headers, body) = read(resp).await;
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        started.elapsed(),
        crate::bounds::DEFAULT_BODY_IDLE_TIMEOUT,
        "the idle timeout, not the client, ended it"
    );
    assert_eq!(
        headers["connection"], "close",
        "the rest of the body is never read"
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["type"], "timeout_error");
    assert_eq!(h.state.bounds.body_budget.in_use(), 0);
    assert_eq!(h.upstream.requests().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_trickling_body_hits_the_whole_body_deadline() {
    let bounds = Bounds {
        body_idle_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(30),
        ..Bounds::default()
    };
    let h = harness(bounds);
    // One byte every 5 s: never idle for 10 s, but never done either.
    let chunks = futures_util::stream::unfold(0u32, |n| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Some((
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from_static(
                b" ",
            ))),
            n + 1,
        ))
    });
    let req = http::Request::post("/v1/chat/completions")
        .header("x-api-key", super::testing::CLIENT_KEY)
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let started = tokio::time::Instant::now();
    let resp = super::handle(h.state.clone(), req.map(super::request_body)).await;
    assert_eq!(resp.status(), 408);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn limits_apply_before_the_body_is_read() {
    let mut r = route(&["gpt-*"], &["primary"]);
    r["spec"]["teams"] = json!({"defaultTier": "tiny"});
    r["spec"]["tiers"] = json!([{"name": "tiny", "requestsPerMinute": 2}]);
    let h = Harness::new(&[backend("primary", "OpenAI", &["gpt-test"]), r]);
    // Two slow bodies are admitted and wait for their body; the third is
    // refused at once, without waiting for a body that never comes.
    let h = std::sync::Arc::new(h);
    let mut slow = Vec::new();
    for _ in 0..2 {
        let h = h.clone();
        slow.push(tokio::spawn(async move {
            h.send_stalled_body("/v1/chat/completions", 1000, b"{")
                .await
                .status()
        }));
    }
    // Both were admitted once both bodies hold their bytes (no time passes here).
    while h.state.bounds.body_budget.in_use() < 2000 {
        tokio::task::yield_now().await;
    }
    let started = tokio::time::Instant::now();
    let resp = h
        .send_stalled_body("/v1/chat/completions", 1000, b"{")
        .await;
    assert_eq!(resp.status(), 429);
    // Refused without reading the body: only the bounded drain of the
    // unread body took time (it never came, so the connection closes).
    assert_eq!(started.elapsed(), crate::bounds::DRAIN_TIMEOUT);
    assert_eq!(resp.headers()["connection"], "close");
    for s in slow {
        assert_eq!(s.await.unwrap(), 408);
    }
}

#[tokio::test(start_paused = true)]
async fn bodies_beyond_the_process_budget_are_refused_with_503() {
    let h = harness(Bounds {
        body_budget: BodyBudget::new(64 << 10),
        ..Bounds::default()
    });
    let state = h.state.clone();
    let holder = tokio::spawn({
        let h_state = state.clone();
        async move {
            let body = futures_util::stream::pending::<
                Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>,
            >();
            let req = http::Request::post("/v1/chat/completions")
                .header("x-api-key", super::testing::CLIENT_KEY)
                .header("content-length", 60 << 10)
                .body(http_body_util::StreamBody::new(body))
                .unwrap();
            super::handle(h_state, req.map(super::request_body))
                .await
                .status()
        }
    });
    while state.bounds.body_budget.in_use() == 0 {
        tokio::task::yield_now().await;
    }
    // 10 KiB do not fit in the 4 KiB left.
    let mut big = chat("gpt-test", false);
    big["messages"][0]["content"] = json!("x".repeat(10 << 10));
    let (status, headers, body) = h.post("/v1/chat/completions", &big).await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["retry-after"], "1");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("busy"),
        "{v}"
    );
    // Once the stalled body gives up, its bytes are free again.
    assert_eq!(holder.await.unwrap(), 408);
    assert_eq!(state.bounds.body_budget.in_use(), 0);
    let (status, _, _) = h.post("/v1/chat/completions", &big).await;
    assert_eq!(status, 200);
}
