//! Keep-alives on streams the gateway holds (issue 16, defect 5), through the real binary with the
//! requests real agents send. The mocks hold their streams until the test has seen the bytes it
//! waits for ([`Behaviour::HeldStream`], released by the test), so nothing depends on timing:
//!
//! - waiting for a first token: Claude Code gets `event: ping` while the upstream is silent;
//! - a translated stream silent mid-answer: `event: ping` for Claude Code on a GPT model, an SSE
//!   comment for Codex and OpenCode on a Claude model;
//! - the upstream's own keep-alives reach the client (as the client's kind of keep-alive).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{Value, json};
use switchboard_e2e::agents::{
    CLAUDE_CODE_PATH, claude_code_body, claude_code_headers, codex_body, codex_headers,
    opencode_body, opencode_headers,
};
use switchboard_e2e::client::{parse_sse, try_send};
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::stack::{
    ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV,
};
use switchboard_e2e::wire::Flavor;
use switchboard_e2e::{Behaviour, Gateway, MockUpstream, write_config};

/// Longest wait for the next bytes of a stream.
const WAIT: Duration = Duration::from_secs(20);

const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

struct Setup {
    openai: MockUpstream,
    anthropic: MockUpstream,
    gateway: Gateway,
    _dir: PathBuf,
}

/// `gpt-4.1` on an OpenAI mock, `claude-sonnet-4` on an Anthropic mock; the gateway sends a
/// keep-alive after `interval` of silence.
async fn setup(interval: &str) -> Setup {
    let openai = MockUpstream::start(Flavor::OpenAI).await;
    let anthropic = MockUpstream::start(Flavor::Anthropic).await;
    let config = ConfigBuilder::new()
        .backend(
            "openai",
            backend_spec(Flavor::OpenAI, &openai.url(), OPENAI_KEY_ENV, &["gpt-4.1"]),
        )
        .backend(
            "anthropic",
            backend_spec(
                Flavor::Anthropic,
                &anthropic.url(),
                ANTHROPIC_KEY_ENV,
                &["claude-sonnet-4"],
            ),
        )
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "auth": {"apiKeys": [{"name": "dev", "env": CLIENT_KEY_ENV}]},
                "rules": [rule(&["gpt-*"], &["openai"]), rule(&["claude-*"], &["anthropic"])]
            }),
        );
    let dir = switchboard_e2e::harness::temp_dir("keepalive");
    let path = write_config(&dir, &config.to_yaml());
    let gateway = Gateway::start_with_args(
        &path,
        &[
            (OPENAI_KEY_ENV, OPENAI_KEY),
            (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
            (CLIENT_KEY_ENV, CLIENT_KEY),
        ],
        &["--stream-keepalive-interval", interval],
    )
    .await;
    Setup {
        openai,
        anthropic,
        gateway,
        _dir: dir,
    }
}

/// A client stream being read.
struct Stream {
    body: Incoming,
    raw: String,
}

impl Stream {
    async fn open(s: &Setup, path: &str, headers: &[(&str, &str)], body: &Value) -> Stream {
        let mut all = vec![
            ("content-type", "application/json"),
            ("accept", "text/event-stream"),
        ];
        all.extend_from_slice(headers);
        let url = format!("{}{path}", s.gateway.base_url());
        let (status, head, body) =
            try_send(Method::POST, &url, &all, Bytes::from(body.to_string()))
                .await
                .unwrap_or_else(|e| panic!("POST {path}: {e:#}"));
        assert_eq!(status, 200, "{path}");
        assert_eq!(head["content-type"], "text/event-stream");
        Stream {
            body,
            raw: String::new(),
        }
    }

    /// Reads until the bytes received after offset `from` contain `needle`; returns where it starts.
    async fn until(&mut self, from: usize, needle: &str) -> usize {
        loop {
            if let Some(at) = self.raw.get(from..).and_then(|r| r.find(needle)) {
                return from + at;
            }
            match tokio::time::timeout(WAIT, self.body.frame()).await {
                Err(_) => panic!("no {needle:?} within {WAIT:?}; got: {}", self.raw),
                Ok(None) => panic!("stream ended without {needle:?}: {}", self.raw),
                Ok(Some(Err(e))) => panic!("stream failed ({e}) without {needle:?}: {}", self.raw),
                Ok(Some(Ok(frame))) => {
                    if let Some(d) = frame.data_ref() {
                        self.raw.push_str(&String::from_utf8_lossy(d));
                    }
                }
            }
        }
    }

    /// Reads to the end of the stream.
    async fn rest(mut self) -> String {
        let bytes = tokio::time::timeout(WAIT, self.body.collect())
            .await
            .expect("the stream ends")
            .expect("the stream does not fail")
            .to_bytes();
        self.raw.push_str(&String::from_utf8_lossy(&bytes));
        self.raw
    }
}

/// The text of an Anthropic stream, and its event names.
fn anthropic_text(raw: &str) -> (String, Vec<String>) {
    let events = parse_sse(raw);
    let text = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| {
            v.pointer("/delta/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    (text, events.into_iter().filter_map(|e| e.event).collect())
}

#[tokio::test]
async fn claude_code_waiting_for_a_first_token_hears_pings() {
    let s = setup("200ms").await;
    // message_start and the upstream's ping, then nothing until released.
    s.anthropic.set_default(Behaviour::HeldStream {
        after_events: 2,
        ping: false,
    });
    let mut stream = Stream::open(
        &s,
        CLAUDE_CODE_PATH,
        &claude_code_headers(),
        &claude_code_body("claude-sonnet-4"),
    )
    .await;
    let first = stream.until(0, PING).await;
    assert_eq!(first, 0, "a ping is the first thing the client hears");
    stream.until(first + PING.len(), PING).await;
    s.anthropic.release();
    let raw = stream.rest().await;
    let (text, names) = anthropic_text(&raw);
    assert_eq!(text, switchboard_e2e::behaviour::DEFAULT_TEXT);
    assert_eq!(names.iter().filter(|n| *n == "message_start").count(), 1);
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
}

#[tokio::test]
async fn translated_streams_silent_mid_answer_get_the_clients_keep_alive() {
    let s = setup("200ms").await;
    // Claude Code on a GPT model: the role chunk and the first delta, then silence.
    s.openai.set_default(Behaviour::HeldStream {
        after_events: 2,
        ping: false,
    });
    let mut stream = Stream::open(
        &s,
        CLAUDE_CODE_PATH,
        &claude_code_headers(),
        &claude_code_body("gpt-4.1"),
    )
    .await;
    let delta = stream.until(0, "event: content_block_delta").await;
    stream.until(delta, PING).await;
    s.openai.release();
    let raw = stream.rest().await;
    let (text, names) = anthropic_text(&raw);
    assert_eq!(text, switchboard_e2e::behaviour::DEFAULT_TEXT);
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));

    // Codex and OpenCode on a Claude model: message_start, ping, the first block, then silence.
    for (path, headers, body, first_text) in [
        (
            "/v1/responses",
            codex_headers(),
            codex_body("claude-sonnet-4"),
            "\"delta\":\"Hello\"",
        ),
        (
            "/v1/chat/completions",
            opencode_headers(),
            opencode_body("claude-sonnet-4"),
            "\"content\":\"Hello\"",
        ),
    ] {
        s.anthropic.set_default(Behaviour::HeldStream {
            after_events: 4,
            ping: false,
        });
        let mut stream = Stream::open(&s, path, &headers, &body).await;
        let content = stream.until(0, first_text).await;
        stream.until(content, ": keep-alive\n\n").await;
        s.anthropic.release();
        let raw = stream.rest().await;
        assert!(
            raw.contains("response.completed") || raw.ends_with("data: [DONE]\n\n"),
            "{path}: {raw}"
        );
    }
}

#[tokio::test]
async fn the_upstreams_own_keep_alives_reach_the_client() {
    // The gateway's own keep-alives would come after an hour: every one seen is the upstream's.
    let s = setup("1h").await;
    // Same format: Anthropic's ping, after the first text delta, as it is.
    s.anthropic.set_default(Behaviour::HeldStream {
        after_events: 4,
        ping: true,
    });
    let mut stream = Stream::open(
        &s,
        CLAUDE_CODE_PATH,
        &claude_code_headers(),
        &claude_code_body("claude-sonnet-4"),
    )
    .await;
    let delta = stream.until(0, "event: content_block_delta").await;
    stream.until(delta, PING).await;
    s.anthropic.release();
    assert_eq!(
        anthropic_text(&stream.rest().await).0,
        switchboard_e2e::behaviour::DEFAULT_TEXT
    );

    // Translated: OpenAI's comment reaches Claude Code as a ping.
    s.openai.set_default(Behaviour::HeldStream {
        after_events: 2,
        ping: true,
    });
    let mut stream = Stream::open(
        &s,
        CLAUDE_CODE_PATH,
        &claude_code_headers(),
        &claude_code_body("gpt-4.1"),
    )
    .await;
    let delta = stream.until(0, "event: content_block_delta").await;
    stream.until(delta, PING).await;
    s.openai.release();
    let raw = stream.rest().await;
    assert!(
        !raw.contains("\n: ") && !raw.starts_with(": "),
        "no comment for Claude Code: {raw}"
    );

    // Translated: Anthropic's ping reaches OpenCode as a comment.
    s.anthropic.set_default(Behaviour::HeldStream {
        after_events: 4,
        ping: true,
    });
    let mut stream = Stream::open(
        &s,
        "/v1/chat/completions",
        &opencode_headers(),
        &opencode_body("claude-sonnet-4"),
    )
    .await;
    let content = stream.until(0, "\"content\":\"Hello\"").await;
    stream.until(content, ": keepalive\n\n").await;
    s.anthropic.release();
    assert!(stream.rest().await.ends_with("data: [DONE]\n\n"));
}
