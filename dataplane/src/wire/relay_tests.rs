//! Tests of [`super::Relay`]: golden upstream captures and every way a
//! stream can end.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::tests_support::{CAPTURES, capture_path};
use super::*;
use crate::testing::golden::in_pieces;

type Summaries = Arc<Mutex<Vec<RelaySummary>>>;

fn recorder() -> (Summaries, OnFinish) {
    let seen: Summaries = Arc::default();
    let s = seen.clone();
    (
        seen,
        Box::new(move |summary| s.lock().unwrap().push(summary)),
    )
}

type ChanItem = Result<Frame<Bytes>, std::io::Error>;

/// A body fed through a channel, like a network body arriving in pieces.
fn channel_body() -> (
    mpsc::UnboundedSender<ChanItem>,
    StreamBody<impl futures_util::Stream<Item = ChanItem> + Send + 'static>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<ChanItem>();
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (tx, StreamBody::new(stream))
}

async fn next_data<B>(relay: &mut Relay<B>) -> Option<Bytes>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let frame = relay.frame().await?.expect("relay bodies do not fail");
    Some(frame.into_data().expect("data frame"))
}

async fn collect<B>(mut relay: Relay<B>) -> Vec<u8>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut out = Vec::new();
    while let Some(d) = next_data(&mut relay).await {
        out.extend_from_slice(&d);
    }
    out
}

fn only(seen: &Summaries) -> RelaySummary {
    let all = seen.lock().unwrap();
    assert_eq!(all.len(), 1, "on_finish runs exactly once");
    all[0].clone()
}

fn dialect_of_capture(name: &str) -> Dialect {
    if name.starts_with("anthropic") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAI
    }
}

fn summary_json(s: &RelaySummary) -> Value {
    json!({
        "usage": s.usage,
        "stop_reason": s.stop_reason,
        "outcome": s.outcome.label(),
        "malformed_events": s.malformed_events,
        "bytes": s.bytes,
    })
}

#[tokio::test]
async fn golden_captures() {
    for name in CAPTURES {
        let input = std::fs::read(capture_path(name)).unwrap();
        let dialect = dialect_of_capture(name);
        for size in [1, 7, 64, input.len()] {
            let (seen, on_finish) = recorder();
            let relay = Relay::new(
                in_pieces(&input, size),
                dialect,
                Duration::from_secs(60),
                on_finish,
            );
            let out = collect(relay).await;
            assert_eq!(
                out, input,
                "{name}: passthrough is byte-identical (chunk size {size})"
            );
            let got = summary_json(&only(&seen));
            let expected_path = capture_path(name).with_extension("expected.json");
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(
                    &expected_path,
                    serde_json::to_string_pretty(&got).unwrap() + "\n",
                )
                .unwrap();
            }
            let expected: Value =
                serde_json::from_slice(&std::fs::read(&expected_path).unwrap()).unwrap();
            assert_eq!(got, expected, "{name} (chunk size {size})");
        }
    }
}

#[tokio::test]
async fn events_pass_through_as_soon_as_each_is_complete() {
    let (tx, body) = channel_body();
    let (seen, on_finish) = recorder();
    let mut relay = Relay::new(body, Dialect::OpenAI, Duration::from_secs(60), on_finish);
    let e1 = &b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}],\"usage\":null}\n\n"[..];
    let e2a =
        &b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usa"[..];
    let e2b = &b"ge\":null}\n\n"[..];
    let e3 = &b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n"[..];
    let done = &b"data: [DONE]\n\n"[..];
    let chunks = [e1, e2a, e2b, e3, done];
    // A whole event is available as soon as it was sent: nothing is held back.
    tx.send(Ok(Frame::data(Bytes::from_static(e1)))).unwrap();
    assert_eq!(next_data(&mut relay).await.unwrap(), Bytes::from_static(e1));
    // Half an event waits for its other half; then both halves go out as one.
    tx.send(Ok(Frame::data(Bytes::from_static(e2a)))).unwrap();
    tx.send(Ok(Frame::data(Bytes::from_static(e2b)))).unwrap();
    assert_eq!(next_data(&mut relay).await.unwrap(), [e2a, e2b].concat());
    for c in [e3, done] {
        tx.send(Ok(Frame::data(Bytes::from_static(c)))).unwrap();
        assert_eq!(next_data(&mut relay).await.unwrap(), Bytes::from_static(c));
        assert!(seen.lock().unwrap().is_empty());
    }
    drop(tx);
    assert!(next_data(&mut relay).await.is_none());
    let s = only(&seen);
    assert_eq!(s.outcome, RelayOutcome::Completed);
    assert_eq!(
        s.usage,
        Usage {
            input_tokens: 5,
            output_tokens: 3,
            cache_read_tokens: 4,
            cache_write_tokens: 0,
            reasoning_tokens: 0
        }
    );
    assert_eq!(s.stop_reason.as_deref(), Some("stop"));
    assert!(s.first_byte_at.is_some());
    assert_eq!(s.bytes, chunks.iter().map(|c| c.len() as u64).sum::<u64>());
    drop(relay);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "drop after the end does not report again"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_resets_on_every_frame_then_stalls() {
    let (tx, body) = channel_body();
    let (seen, on_finish) = recorder();
    let idle = Duration::from_secs(10);
    let mut relay = Relay::new(body, Dialect::Anthropic, idle, on_finish);
    let ping = Bytes::from_static(b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    for _ in 0..3 {
        tx.send(Ok(Frame::data(ping.clone()))).unwrap();
        assert_eq!(next_data(&mut relay).await.unwrap(), ping);
        tokio::time::advance(Duration::from_secs(8)).await;
    }
    tx.send(Ok(Frame::data(ping.clone()))).unwrap();
    assert_eq!(
        next_data(&mut relay).await.unwrap(),
        ping,
        "8s gaps never stall a 10s idle timeout"
    );
    let last = tokio::time::Instant::now();
    let tail = next_data(&mut relay).await.unwrap();
    assert_eq!(last.elapsed(), idle);
    let text = std::str::from_utf8(&tail).unwrap();
    assert!(text.starts_with("event: error\ndata: "), "{text}");
    assert!(
        text.contains("\"timeout_error\"") && text.contains("stalled"),
        "{text}"
    );
    assert!(next_data(&mut relay).await.is_none());
    assert_eq!(only(&seen).outcome, RelayOutcome::Stalled);
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn silence_after_terminal_event_is_completion() {
    let (tx, body) = channel_body();
    let (seen, on_finish) = recorder();
    let mut relay = Relay::new(body, Dialect::OpenAI, Duration::from_secs(5), on_finish);
    tx.send(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n"))))
        .unwrap();
    next_data(&mut relay).await.unwrap();
    assert!(
        next_data(&mut relay).await.is_none(),
        "no error event after [DONE]"
    );
    assert_eq!(only(&seen).outcome, RelayOutcome::Completed);
    drop(tx);
}

#[tokio::test]
async fn truncated_stream_gets_error_event_and_no_fake_done() {
    let input = std::fs::read(capture_path("openai_text_usage_cached")).unwrap();
    // Cut before the chunk with the finish reason: the answer is incomplete.
    let text = std::str::from_utf8(&input).unwrap();
    let cut = text.find("data: {\"id\":\"chatcmpl-Bx9a7TQ2\",\"object\":\"chat.completion.chunk\",\"created\":1754000000,\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_07871e2ad8\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]").unwrap();
    let (seen, on_finish) = recorder();
    let relay = Relay::new(
        in_pieces(&input[..cut], 50),
        Dialect::OpenAI,
        Duration::from_secs(60),
        on_finish,
    );
    let out = collect(relay).await;
    assert_eq!(&out[..cut], &input[..cut]);
    let tail = std::str::from_utf8(&out[cut..]).unwrap();
    assert!(tail.starts_with("data: {\"error\":"), "{tail}");
    assert!(!tail.contains("[DONE]"));
    let s = only(&seen);
    assert_eq!(s.outcome, RelayOutcome::Truncated);
}

#[tokio::test]
async fn a_chat_stream_complete_but_for_done_is_completed_not_truncated() {
    // Issue 12 item 11: every choice finished, usage sent, clean end, no `[DONE]`.
    let input = std::fs::read(capture_path("openai_text_usage_cached")).unwrap();
    let cut = input.len() - "data: [DONE]\n\n".len();
    let (seen, on_finish) = recorder();
    let relay = Relay::new(
        in_pieces(&input[..cut], 50),
        Dialect::OpenAI,
        Duration::from_secs(60),
        on_finish,
    );
    let out = collect(relay).await;
    assert_eq!(&out[..cut], &input[..cut]);
    let tail = std::str::from_utf8(&out[cut..]).unwrap();
    assert_eq!(
        tail, "data: [DONE]\n\n",
        "the [DONE] the client expects, no error"
    );
    let s = only(&seen);
    assert_eq!(s.outcome, RelayOutcome::Completed);
    assert_eq!(
        s.usage.cache_read_tokens, 1920,
        "usage seen before the end is kept"
    );
}

#[tokio::test]
async fn a_cut_partial_event_is_dropped_and_an_error_event_sent() {
    let input = b"event: message_start\ndata: {\"type\":\"message_st";
    let (seen, on_finish) = recorder();
    let relay = Relay::new(
        in_pieces(input, 100),
        Dialect::Anthropic,
        Duration::from_secs(60),
        on_finish,
    );
    let out = collect(relay).await;
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.starts_with("event: error\ndata: {"), "{text:?}");
    let s = only(&seen);
    assert_eq!(s.outcome, RelayOutcome::Truncated);
    assert_eq!(
        s.malformed_events, 1,
        "the cut event is counted as malformed"
    );
}

#[tokio::test]
async fn upstream_body_error_appends_error_event() {
    let (tx, body) = channel_body();
    let (seen, on_finish) = recorder();
    let mut relay = Relay::new(body, Dialect::Anthropic, Duration::from_secs(60), on_finish);
    let start = Bytes::from_static(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n");
    tx.send(Ok(Frame::data(start.clone()))).unwrap();
    assert_eq!(next_data(&mut relay).await.unwrap(), start);
    tx.send(Err(std::io::Error::other("connection reset")))
        .unwrap();
    let tail = next_data(&mut relay).await.unwrap();
    let text = std::str::from_utf8(&tail).unwrap();
    assert!(
        text.starts_with("event: error\ndata: {\"type\":\"error\""),
        "{text}"
    );
    assert!(
        !text.contains("connection reset"),
        "internal error text is not sent to clients"
    );
    assert!(next_data(&mut relay).await.is_none());
    let s = only(&seen);
    assert_eq!(s.outcome, RelayOutcome::UpstreamError);
    assert_eq!(s.usage.input_tokens, 7);
}

#[tokio::test]
async fn dropped_relay_reports_client_gone_once() {
    let (tx, body) = channel_body();
    let (seen, on_finish) = recorder();
    let mut relay = Relay::new(body, Dialect::OpenAI, Duration::from_secs(60), on_finish);
    tx.send(Ok(Frame::data(Bytes::from_static(
        b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
    ))))
    .unwrap();
    next_data(&mut relay).await.unwrap();
    drop(relay);
    let s = only(&seen);
    assert_eq!(s.outcome, RelayOutcome::ClientGone);
    assert_eq!(s.usage.output_tokens, 2);
}

#[tokio::test]
async fn malformed_events_are_counted_and_dropped() {
    let input = b"data: {\"choices\":[]}\n\ndata: not json\n\ndata: [DONE]\n\n";
    let (seen, on_finish) = recorder();
    let out = collect(Relay::new(
        in_pieces(input, 3),
        Dialect::OpenAI,
        Duration::from_secs(60),
        on_finish,
    ))
    .await;
    assert_eq!(out, b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n");
    let s = only(&seen);
    assert_eq!(s.malformed_events, 1);
    assert_eq!(s.outcome, RelayOutcome::Completed);
}

#[tokio::test]
async fn upstream_error_event_wins_over_a_later_terminal_event() {
    let input =
        b"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\ndata: [DONE]\n\n";
    let (seen, on_finish) = recorder();
    let out = collect(Relay::new(
        in_pieces(input, 5),
        Dialect::OpenAI,
        Duration::from_secs(60),
        on_finish,
    ))
    .await;
    assert_eq!(
        out, input,
        "upstream errors are passed through, nothing appended"
    );
    assert_eq!(only(&seen).outcome, RelayOutcome::UpstreamError);
}

#[tokio::test(start_paused = true)]
async fn upstream_error_then_silence_appends_nothing() {
    let (tx, body) = channel_body();
    let (seen, on_finish) = recorder();
    let mut relay = Relay::new(body, Dialect::Anthropic, Duration::from_secs(5), on_finish);
    let err = Bytes::from_static(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    tx.send(Ok(Frame::data(err.clone()))).unwrap();
    assert_eq!(next_data(&mut relay).await.unwrap(), err);
    assert!(next_data(&mut relay).await.is_none());
    assert_eq!(only(&seen).outcome, RelayOutcome::UpstreamError);
    drop(tx);
}

#[tokio::test]
async fn zero_idle_timeout_disables_stall_detection() {
    let (seen, on_finish) = recorder();
    let out = collect(Relay::new(
        in_pieces(b"data: [DONE]\n\n", 4),
        Dialect::OpenAI,
        Duration::ZERO,
        on_finish,
    ))
    .await;
    assert_eq!(out, b"data: [DONE]\n\n");
    assert_eq!(only(&seen).outcome, RelayOutcome::Completed);
}

#[test]
fn outcome_labels() {
    let labels: Vec<_> = [
        RelayOutcome::Completed,
        RelayOutcome::Truncated,
        RelayOutcome::Stalled,
        RelayOutcome::UpstreamError,
        RelayOutcome::ClientGone,
    ]
    .iter()
    .map(|o| o.label())
    .collect();
    assert_eq!(
        labels,
        [
            "completed",
            "truncated",
            "stalled",
            "upstream_error",
            "client_gone"
        ]
    );
}

/// The call sites box a relay over hyper's body and over infallible streams.
#[allow(dead_code)]
fn boxes_like_the_call_sites(
    incoming: hyper::body::Incoming,
) -> [UnsyncBoxBody<Bytes, BoxError>; 2] {
    let noop: OnFinish = Box::new(|_| {});
    let a = Relay::new(incoming, Dialect::OpenAI, Duration::from_secs(1), noop).boxed_unsync();
    let stream = futures_util::stream::iter(vec![Ok::<_, Infallible>(Frame::data(Bytes::new()))]);
    let b = Relay::new(
        StreamBody::new(stream),
        Dialect::Anthropic,
        Duration::from_secs(1),
        Box::new(|_| {}),
    )
    .boxed_unsync();
    [a, b]
}

fn translator(
    client: crate::runtime::ApiFormat,
    upstream: crate::translate::UpstreamFormat,
) -> crate::translate::Translator {
    match crate::translate::plan(client, upstream) {
        crate::translate::Plan::Translate(t) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn translated_relay_reports_the_upstreams_own_usage() {
    use crate::runtime::ApiFormat;
    use crate::translate::{Session, UpstreamFormat};
    // An Anthropic upstream capture with cache tokens, for an OpenAI client.
    let input = std::fs::read(capture_path("anthropic_tool_use_cache")).unwrap();
    let t = translator(ApiFormat::ChatCompletions, UpstreamFormat::Messages);
    let (seen, on_finish) = recorder();
    let relay = Relay::translating(
        in_pieces(&input, 5),
        Dialect::Anthropic,
        (t.stream)(Session::default()),
        Dialect::OpenAI,
        Duration::ZERO,
        on_finish,
    );
    let out = String::from_utf8(collect(relay).await).unwrap();
    assert!(
        !out.contains("event:"),
        "OpenAI client gets data-only SSE: {out}"
    );
    assert!(out.ends_with("data: [DONE]\n\n"));
    let summary = only(&seen);
    assert_eq!(summary.outcome, RelayOutcome::Completed);
    let mut direct = usage::UsageTracker::new(Dialect::Anthropic);
    let mut parser = crate::wire::sse::SseParser::default();
    for e in parser.feed(&input).into_iter().flatten() {
        direct.observe(&e);
    }
    assert_eq!(
        summary.usage,
        direct.usage(),
        "accounting sees the upstream's usage"
    );
    assert!(summary.usage.cache_read_tokens > 0 || summary.usage.cache_write_tokens > 0);
}

#[tokio::test(start_paused = true)]
async fn translated_relay_stall_is_reported_in_the_clients_dialect() {
    use crate::runtime::ApiFormat;
    use crate::translate::{Session, UpstreamFormat};
    let t = translator(ApiFormat::Messages, UpstreamFormat::ChatCompletions);
    let (tx, body) = channel_body();
    let (seen, on_finish) = recorder();
    let mut relay = Relay::translating(
        body,
        Dialect::OpenAI,
        (t.stream)(Session::default()),
        Dialect::Anthropic,
        Duration::from_secs(10),
        on_finish,
    );
    tx.send(Ok(Frame::data(Bytes::from_static(
        b"data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
    ))))
    .unwrap();
    let first = next_data(&mut relay).await.unwrap();
    assert!(first.starts_with(b"event: message_start\n"));
    let tail = next_data(&mut relay).await.unwrap();
    let text = std::str::from_utf8(&tail).unwrap();
    assert!(
        text.starts_with("event: error\ndata: ") && text.contains("timeout_error"),
        "{text}"
    );
    assert!(next_data(&mut relay).await.is_none());
    assert_eq!(only(&seen).outcome, RelayOutcome::Stalled);
    drop(tx);
}

#[tokio::test]
async fn an_upstream_keep_alive_reaches_an_anthropic_client_as_a_ping() {
    use crate::runtime::ApiFormat;
    use crate::translate::{Session, UpstreamFormat};
    let t = translator(ApiFormat::Messages, UpstreamFormat::ChatCompletions);
    let input = b": OPENROUTER PROCESSING\n\ndata: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n: keep-alive\n\ndata: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let relay = Relay::translating(
        in_pieces(input, 7),
        Dialect::OpenAI,
        (t.stream)(Session::default()),
        Dialect::Anthropic,
        Duration::ZERO,
        Box::new(|_| {}),
    );
    let out = String::from_utf8(collect(relay).await).unwrap();
    assert!(
        !out.lines().any(|l| l.starts_with(':')),
        "no comment reaches the Anthropic client: {out}"
    );
    assert_eq!(out.matches("event: ping\n").count(), 2, "{out}");
    assert!(
        out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{out}"
    );

    // A Chat client of an Anthropic upstream: its ping becomes a comment.
    let t = translator(ApiFormat::ChatCompletions, UpstreamFormat::Messages);
    let input = std::fs::read(capture_path("anthropic_tool_use_cache")).unwrap();
    let relay = Relay::translating(
        in_pieces(&input, 5),
        Dialect::Anthropic,
        (t.stream)(Session::default()),
        Dialect::OpenAI,
        Duration::ZERO,
        Box::new(|_| {}),
    );
    let out = String::from_utf8(collect(relay).await).unwrap();
    let pings = String::from_utf8_lossy(&input)
        .matches("event: ping")
        .count();
    assert!(pings > 0);
    assert_eq!(out.matches(": keepalive\n\n").count(), pings, "{out}");
}
