//! What a request is charged, labelled and logged as (issue 13): the model
//! and backend that answered, bounded labels, records that match what the
//! client got.

use serde_json::{Value, json};

use super::testing::{Harness, backend, chat, metric};
use crate::upstream::fake::{Reply, Step};
use std::time::Duration;

/// A Chat Completions answer with this usage.
pub fn chat_answer(model: &str, prompt: u64, completion: u64) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    })
}

/// A route whose one rule serves `big-model` from `primary`, then from
/// `fallback` as `small-model`; the client key is team `payments`.
pub fn fallback_route(teams: Value) -> Value {
    json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "AIRoute",
        "metadata": {"name": "main"},
        "spec": {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "test", "secretRef": {"name": "keys", "key": "client"}}]},
            "rules": [
                {"models": ["big-model"], "backends": [
                    {"name": "primary", "priority": 0},
                    {"name": "fallback", "priority": 1, "model": "small-model"},
                ]},
                {"models": ["glob-*"], "backends": [{"name": "primary"}]},
            ],
            "retry": {"backoff": "10ms"},
            "teams": teams,
            "tiers": [{"name": "metered", "requestsPerMinute": 0, "tokensPerDay": 1_000_000_000u64}],
            "pricing": [
                {"model": "big-model", "input": 100, "output": 100},
                {"model": "small-model", "input": 1, "output": 1},
            ],
        }
    })
}

/// Team `payments` (the harness's key) on tier `metered`.
pub fn payments() -> Value {
    json!({"teams": [{"name": "payments", "tier": "metered", "apiKeys": ["test"]}]})
}

fn fallback_harness() -> Harness {
    let mut primary = backend("primary", "OpenAI", &[]);
    primary["spec"]["models"] = json!([]);
    Harness::new(&[
        primary,
        backend("fallback", "OpenAI", &["small-model"]),
        fallback_route(payments()),
    ])
}

#[tokio::test(start_paused = true)]
async fn fallback_traffic_is_charged_labelled_and_logged_as_the_model_that_answered() {
    let h = fallback_harness();
    h.upstream.set_default("primary", Reply::status(500));
    h.upstream.set_default(
        "fallback",
        Reply::json(200, &chat_answer("small-model", 500_000, 500_000)),
    );
    let (status, _, body) = h
        .post("/v1/chat/completions", &chat("big-model", false))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        h.upstream.requests().last().unwrap().body["model"],
        "small-model"
    );
    let m = h.metrics();
    // 1M tokens at $1/M, not at the failed primary's $100/M.
    let cost = metric(
        &m,
        "switchboard_team_cost_usd_total",
        &[("team", "payments")],
    );
    assert!((cost - 1.0).abs() < 1e-9, "cost {cost}\n{m}");
    assert_eq!(
        metric(
            &m,
            "switchboard_team_cost_usd_total",
            &[("model", "small-model")]
        ),
        cost
    );
    assert_eq!(
        metric(
            &m,
            "switchboard_tokens_total",
            &[("model", "small-model"), ("kind", "output")]
        ),
        500_000.0
    );
    assert_eq!(
        metric(&m, "switchboard_tokens_total", &[("model", "big-model")]),
        0.0
    );
    assert_eq!(
        metric(
            &m,
            "switchboard_team_tokens_total",
            &[("model", "small-model")]
        ),
        1_000_000.0
    );
    assert_eq!(
        metric(
            &m,
            "switchboard_requests_total",
            &[
                ("requested_model", "big-model"),
                ("model", "small-model"),
                ("status", "200")
            ]
        ),
        1.0,
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("switchboard_requests_total{")
                && l.contains("model=\"small-model\"")
                && l.contains("fallback\"")),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_random_model_names_make_a_bounded_number_of_series() {
    let h = fallback_harness();
    h.upstream
        .set_default("primary", Reply::json(200, &chat_answer("whatever", 1, 1)));
    let mut rng = fastrand::Rng::with_seed(5);
    for i in 0..10_000 {
        let name: String = (0..rng.usize(1..30)).map(|_| rng.alphanumeric()).collect();
        let model = if i % 2 == 0 {
            format!("glob-{name}")
        } else {
            name
        };
        h.post("/v1/chat/completions", &chat(&model, false)).await;
    }
    // One huge name.
    h.post(
        "/v1/chat/completions",
        &chat(&format!("glob-{}", "x".repeat(900_000)), false),
    )
    .await;
    let m = h.metrics();
    let series = m.lines().filter(|l| !l.starts_with('#')).count();
    assert!(
        series < 200,
        "{series} series:\n{}",
        &m[..m.len().min(5000)]
    );
    assert!(m.len() < 100_000, "{} bytes of metrics", m.len());
    assert!(m.contains("model=\"glob-*\""), "{m}");
    assert!(m.contains("requested_model=\"glob-*\""), "{m}");
}

// ---- SSE builders ----

fn chat_chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// A Chat stream: `n` one-token deltas, the finish chunk, the usage chunk
/// (`prompt`/`completion`), `[DONE]`; each event one frame.
fn chat_stream(n: usize, prompt: u64, completion: u64) -> Vec<String> {
    let mut events = vec![chat_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    events.extend((0..n).map(|_| chat_chunk(json!({"content": "tok "}), None)));
    events.push(chat_chunk(json!({}), Some("stop")));
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}});
    events.push(format!("data: {usage}\n\n"));
    events.push("data: [DONE]\n\n".into());
    events
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A Messages stream: `input` tokens reported at the start, `n` deltas, the
/// block's end, the final `output` count, the end.
fn messages_stream(n: usize, input: u64, output: u64) -> Vec<String> {
    let mut events = vec![
        anthropic_event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null,
            "usage": {"input_tokens": input, "output_tokens": 1}}}),
        ),
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    events.extend((0..n).map(|_| {
        anthropic_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "tok "}}),
        )
    }));
    events.push(anthropic_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(anthropic_event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": output}}),
    ));
    events.push(anthropic_event(
        "message_stop",
        json!({"type": "message_stop"}),
    ));
    events
}

/// An SSE answer whose events come 2 ms apart, as a model streams them (the
/// events of a burst reach the client together, see `pipeline::coalesce`).
fn sse_reply(events: &[String]) -> Reply {
    let body = events
        .iter()
        .flat_map(|e| {
            [
                Step::Wait(Duration::from_millis(2)),
                Step::Data(bytes::Bytes::copy_from_slice(e.as_bytes())),
            ]
        })
        .collect();
    Reply::Respond {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body,
    }
}

/// One backend `up` of `provider` serving `model`, team `payments` on a tier
/// of `tokens_per_day`.
fn metered(provider: &str, model: &str, tokens_per_day: u64) -> Harness {
    let r = json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "AIRoute",
        "metadata": {"name": "main"},
        "spec": {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "test", "secretRef": {"name": "keys", "key": "client"}}]},
            "rules": [{"models": [model], "backends": [{"name": "up"}]}],
            "retry": {"backoff": "10ms"},
            "teams": {"teams": [{"name": "payments", "tier": "metered", "apiKeys": ["test"]}]},
            "tiers": [{"name": "metered", "requestsPerMinute": 0, "tokensPerDay": tokens_per_day}],
        }
    });
    Harness::new(&[backend("up", provider, &[model]), r])
}

fn team_tokens(h: &Harness) -> f64 {
    metric(
        &h.metrics(),
        "switchboard_team_tokens_total",
        &[("team", "payments")],
    )
}

/// Sends `body` to `path` and reads the answer until a frame contains
/// `until`, then hangs up; returns what was read.
async fn read_until_then_hang_up(h: &Harness, path: &str, body: &Value, until: &str) -> String {
    use http_body_util::BodyExt as _;
    let mut req = http::Request::post(path)
        .header("x-api-key", super::testing::CLIENT_KEY)
        .header("content-type", "application/json");
    if path.contains("/messages") {
        req = req.header("anthropic-version", "2023-06-01");
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let resp = h.send(req).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut read = String::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            read.push_str(&String::from_utf8_lossy(&data));
        }
        if read.contains(until) {
            break;
        }
    }
    assert!(read.contains(until), "{read}");
    drop(body);
    read
}

#[tokio::test(start_paused = true)]
async fn a_chat_client_that_hangs_up_at_finish_reason_is_charged_the_reported_usage() {
    let h = metered("OpenAI", "gpt-test", 1_000_000);
    h.upstream
        .set_default("up", sse_reply(&chat_stream(20, 10, 990)));
    let (logs, _guard) = super::testing::capture_logs();
    read_until_then_hang_up(
        &h,
        "/v1/chat/completions",
        &chat("gpt-test", true),
        "\"stop\"",
    )
    .await;
    super::testing::eventually("the request is charged", || team_tokens(&h) > 0.0).await;
    assert_eq!(team_tokens(&h), 1000.0, "{}", h.metrics());
    let line = &logs.finished()[0];
    assert_eq!(line["outcome"], "client_gone");
    assert_eq!(line["output_tokens"], 990);
    assert_eq!(line["usage_estimated"], false);
}

#[tokio::test(start_paused = true)]
async fn a_messages_client_that_hangs_up_at_content_block_stop_is_charged_the_reported_usage() {
    let h = metered("Anthropic", "claude-x", 1_000_000);
    h.upstream
        .set_default("up", sse_reply(&messages_stream(30, 100, 900)));
    read_until_then_hang_up(
        &h,
        "/v1/messages",
        &super::testing::messages("claude-x", true),
        "content_block_stop",
    )
    .await;
    super::testing::eventually("the request is charged", || team_tokens(&h) > 0.0).await;
    assert_eq!(team_tokens(&h), 1000.0, "{}", h.metrics());
}

#[tokio::test(start_paused = true)]
async fn a_hang_up_whose_upstream_never_reports_usage_is_charged_an_estimate_never_zero() {
    let h = metered("OpenAI", "gpt-test", 1_000_000);
    // The usage chunk never comes: the upstream stalls after the finish chunk.
    let mut events = chat_stream(25, 10, 990);
    events.truncate(events.len() - 2);
    let mut reply = sse_reply(&events);
    if let Reply::Respond { body, .. } = &mut reply {
        body.push(crate::upstream::fake::Step::Stall);
    }
    h.upstream.set_default("up", reply);
    let (logs, _guard) = super::testing::capture_logs();
    read_until_then_hang_up(
        &h,
        "/v1/chat/completions",
        &chat("gpt-test", true),
        "\"stop\"",
    )
    .await;
    super::testing::eventually("the request is charged", || team_tokens(&h) > 0.0).await;
    let line = &logs.finished()[0];
    assert_eq!(line["usage_estimated"], true, "{line}");
    // At least one token per content event relayed, and the prompt's size.
    assert!(line["output_tokens"].as_u64().unwrap() >= 25, "{line}");
    assert!(line["input_tokens"].as_u64().unwrap() > 0, "{line}");
}

#[tokio::test(start_paused = true)]
async fn concurrent_streams_overshoot_the_token_quota_by_one_request_at_most() {
    // 20 concurrent 300-token answers on a 1,000 tokens/day team.
    let h = std::sync::Arc::new(metered("OpenAI", "gpt-test", 1000));
    let mut events = chat_stream(10, 10, 290);
    let mut reply = sse_reply(&events.split_off(0));
    if let Reply::Respond { body, .. } = &mut reply {
        // Every answer is still running when the others are admitted.
        body.insert(
            1,
            crate::upstream::fake::Step::Wait(std::time::Duration::from_secs(1)),
        );
    }
    h.upstream.set_default("up", reply);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut body = chat("gpt-test", true);
            body["max_tokens"] = json!(300);
            h.post("/v1/chat/completions", &body).await.0
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 200 || status == 429, "{status}");
        admitted += u32::from(status == 200);
    }
    super::testing::eventually("every answer is charged", || {
        team_tokens(&h) == f64::from(admitted) * 300.0
    })
    .await;
    assert!(
        team_tokens(&h) <= 1000.0 + 300.0,
        "{} charged",
        team_tokens(&h)
    );
    assert!(admitted >= 1, "{admitted}");
}

// ---- Defect 6: records that agree with what happened ----

/// Two OpenAI backends in priority order serving `gpt-test`, team `payments`.
fn pair_metered() -> Harness {
    let r = json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "AIRoute",
        "metadata": {"name": "main"},
        "spec": {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "test", "secretRef": {"name": "keys", "key": "client"}}]},
            "rules": [{"models": ["gpt-test"], "backends": [
                {"name": "primary", "priority": 0}, {"name": "secondary", "priority": 1}]}],
            "retry": {"backoff": "10ms"},
            "teams": payments(),
            "tiers": [{"name": "metered", "requestsPerMinute": 0, "tokensPerDay": 1_000_000_000u64}],
        }
    });
    Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        backend("secondary", "OpenAI", &["gpt-test"]),
        r,
    ])
}

#[tokio::test(start_paused = true)]
async fn a_translated_answer_that_reached_the_client_as_502_is_recorded_as_502() {
    // A Messages client, an OpenAI backend whose 200 cannot be translated.
    let h = metered("OpenAI", "claude-x", 1_000_000);
    h.upstream
        .set_default("up", Reply::json(200, &json!({"choices": "not a list"})));
    let (logs, _guard) = super::testing::capture_logs();
    let (status, _, _) = h
        .post("/v1/messages", &super::testing::messages("claude-x", false))
        .await;
    assert_eq!(status, 502);
    let m = h.metrics();
    assert_eq!(
        metric(&m, "switchboard_requests_total", &[("status", "502")]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "switchboard_requests_total", &[("status", "200")]),
        0.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "switchboard_team_requests_total", &[("status", "502")]),
        1.0
    );
    assert_eq!(logs.finished()[0]["status"], 502);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_that_closes_after_its_headers_is_not_logged_as_client_gone() {
    let events = chat_stream(3, 10, 20);
    for pair in [false, true] {
        let h = if pair {
            pair_metered()
        } else {
            metered("OpenAI", "gpt-test", 1_000_000)
        };
        let first = if pair { "primary" } else { "up" };
        // Headers and one content event, then the connection breaks.
        let mut reply = sse_reply(&events[..2]);
        if let Reply::Respond { body, .. } = &mut reply {
            body.push(crate::upstream::fake::Step::Cut);
        }
        h.upstream.set_default(first, reply);
        if pair {
            h.upstream.set_default("secondary", Reply::status(503));
        }
        let (logs, _guard) = super::testing::capture_logs();
        let (status, _, body) = h
            .post("/v1/chat/completions", &chat("gpt-test", true))
            .await;
        assert_eq!(status, 200);
        assert!(
            String::from_utf8_lossy(&body).contains("error"),
            "pair {pair}"
        );
        super::testing::eventually("recorded", || !logs.finished().is_empty()).await;
        // One record, of the stream the client got (not of the failed
        // search for a continuation).
        let lines = logs.finished();
        assert_eq!(lines.len(), 1, "pair {pair}: {lines:?}");
        assert_eq!(
            lines[0]["outcome"], "upstream_error",
            "pair {pair}: {lines:?}"
        );
        assert_eq!(lines[0]["status"], 200);
        let m = h.metrics();
        assert_eq!(metric(&m, "switchboard_requests_total", &[]), 1.0, "{m}");
        // Headers and no body at all: a failed try, not a client that left.
        let h = metered("OpenAI", "gpt-test", 1_000_000);
        h.upstream.set_default(
            "up",
            Reply::Respond {
                status: 200,
                headers: vec![("content-type", "text/event-stream".into())],
                body: vec![crate::upstream::fake::Step::Cut],
            },
        );
        let (logs, _guard) = super::testing::capture_logs();
        let (status, _, _) = h
            .post("/v1/chat/completions", &chat("gpt-test", true))
            .await;
        assert!(status.is_server_error(), "{status}");
        let lines = logs.lines();
        assert!(
            lines.iter().all(|l| l["outcome"] != "client_gone"),
            "{lines:?}"
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(start_paused = true)]
async fn gzip_answers_are_charged_and_reach_the_client_decoded() {
    let h = metered("OpenAI", "gpt-test", 1_000_000);
    let answer = chat_answer("gpt-test", 100, 23);
    h.upstream.set_default(
        "up",
        Reply::Respond {
            status: 200,
            headers: vec![
                ("content-type", "application/json".into()),
                ("content-encoding", "gzip".into()),
            ],
            body: vec![crate::upstream::fake::Step::Data(bytes::Bytes::from(gzip(
                answer.to_string().as_bytes(),
            )))],
        },
    );
    let (status, headers, body) = h
        .post("/v1/chat/completions", &chat("gpt-test", false))
        .await;
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none());
    let v: Value = serde_json::from_slice(&body).expect("the client gets plain JSON");
    assert_eq!(v["usage"]["completion_tokens"], 23);
    assert_eq!(team_tokens(&h), 123.0);
    // A gzip stream too, cut anywhere.
    let h = metered("OpenAI", "gpt-test", 1_000_000);
    let packed = gzip(chat_stream(5, 10, 40).concat().as_bytes());
    let (a, b) = packed.split_at(packed.len() / 3);
    h.upstream.set_default(
        "up",
        Reply::Respond {
            status: 200,
            headers: vec![
                ("content-type", "text/event-stream".into()),
                ("content-encoding", "gzip".into()),
            ],
            body: vec![
                crate::upstream::fake::Step::Data(bytes::Bytes::copy_from_slice(a)),
                crate::upstream::fake::Step::Data(bytes::Bytes::copy_from_slice(b)),
            ],
        },
    );
    let (status, _, body) = h
        .post("/v1/chat/completions", &chat("gpt-test", true))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        super::testing::chat_stream_text(&body),
        "tok tok tok tok tok "
    );
    super::testing::eventually("charged", || team_tokens(&h) > 0.0).await;
    assert_eq!(team_tokens(&h), 50.0);
}

#[tokio::test(start_paused = true)]
async fn answers_over_8_mib_and_with_unexpected_content_types_are_charged() {
    // A same-format answer of 9 MiB.
    let h = metered("OpenAI", "gpt-test", 1_000_000);
    let mut big = chat_answer("gpt-test", 7, 3);
    big["choices"][0]["message"]["content"] = json!("x".repeat(9 << 20));
    h.upstream.set_default("up", Reply::json(200, &big));
    let (status, _, body) = h
        .post("/v1/chat/completions", &chat("gpt-test", false))
        .await;
    assert_eq!(status, 200);
    assert!(body.len() > 9 << 20);
    assert_eq!(team_tokens(&h), 10.0);
    // JSON labelled text/plain; a stream labelled application/json or in
    // another case.
    for (content_type, stream) in [
        ("text/plain", false),
        ("application/json", true),
        ("Text/Event-Stream; charset=utf-8", true),
    ] {
        let h = metered("OpenAI", "gpt-test", 1_000_000);
        let body = if stream {
            chat_stream(2, 5, 6).concat()
        } else {
            chat_answer("gpt-test", 5, 6).to_string()
        };
        h.upstream.set_default(
            "up",
            Reply::Respond {
                status: 200,
                headers: vec![("content-type", content_type.into())],
                body: vec![crate::upstream::fake::Step::Data(bytes::Bytes::from(body))],
            },
        );
        let (status, _, _) = h
            .post("/v1/chat/completions", &chat("gpt-test", stream))
            .await;
        assert_eq!(status, 200, "{content_type}");
        super::testing::eventually("charged", || team_tokens(&h) > 0.0).await;
        assert_eq!(team_tokens(&h), 11.0, "{content_type}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_streamed_request_refused_with_400_is_logged_as_a_stream() {
    let h = metered("OpenAI", "gpt-test", 1_000_000);
    h.upstream.set_default("up", Reply::status(400));
    let (logs, _guard) = super::testing::capture_logs();
    let (status, _, _) = h
        .post("/v1/chat/completions", &chat("gpt-test", true))
        .await;
    assert_eq!(status, 400);
    let lines = logs.finished();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["stream"], true, "{:?}", lines[0]);
    assert_eq!(lines[0]["status"], 400);
}
