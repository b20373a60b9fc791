//! In-process harness for pipeline tests: a whole [`AppState`] built from
//! resource documents, every backend answered by one [`FakeUpstream`], and
//! requests sent straight to [`super::handle`] (no sockets; use
//! `#[tokio::test(start_paused = true)]` so timeouts elapse at once).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::auth::JwksStore;
use crate::limits::{FailMode, Limiter, MemoryStore, WallClock};
use crate::metrics::Metrics;
use crate::response::ResponseBody;
use crate::routing::BreakerRegistry;
use crate::runtime::{RuntimeConfig, SharedState};
use crate::state::AppState;
use crate::store::ConfigStore;
use crate::upstream::Upstreams;
use crate::upstream::fake::FakeUpstream;

/// The client key of [`route`] specs made by [`Harness`] helpers.
pub const CLIENT_KEY: &str = "sk-client-test";

/// A data plane in a test.
pub struct Harness {
    /// The shared state requests run against.
    pub state: Arc<AppState>,
    /// The fake every backend talks to.
    pub upstream: FakeUpstream,
}

/// An AIBackend document at `http://{name}` (the fake's host) serving `models`.
pub fn backend(name: &str, provider: &str, models: &[&str]) -> Value {
    json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "AIBackend",
        "metadata": {"name": name},
        "spec": {
            "provider": provider,
            "endpoint": format!("http://{name}"),
            "credentials": {"secretRef": {"name": "keys", "key": "provider"}},
            "models": models.iter().map(|m| json!({"name": m})).collect::<Vec<_>>(),
        }
    })
}

/// An AIRoute document at `/` with an API key, sending `models` to
/// `backends` in priority order.
pub fn route(models: &[&str], backends: &[&str]) -> Value {
    json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "AIRoute",
        "metadata": {"name": "main"},
        "spec": {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "test", "secretRef": {"name": "keys", "key": "client"}}]},
            "rules": [{
                "models": models,
                "backends": backends.iter().enumerate()
                    .map(|(i, b)| json!({"name": b, "priority": i}))
                    .collect::<Vec<_>>(),
            }],
            "retry": {"backoff": "10ms"},
        }
    })
}

/// The Secret holding the provider key and the client key.
fn keys() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "keys"},
        "stringData": {"provider": "sk-provider-test", "client": CLIENT_KEY},
    })
}

/// Renders resource documents (plus the keys Secret) into a snapshot.
pub fn snapshot(docs: &[Value]) -> switchboard_proto::Snapshot {
    let text: String = docs
        .iter()
        .chain(std::iter::once(&keys()))
        .map(|d| format!("---\n{d}\n"))
        .collect();
    let mut inventory = switchboard_api::Inventory::default();
    inventory
        .extend(switchboard_api::parse_documents(&text, "test").expect("documents parse"))
        .expect("documents are consistent");
    switchboard_api::render(&inventory).expect("documents render")
}

impl Harness {
    /// A data plane serving `docs`.
    pub fn new(docs: &[Value]) -> Self {
        Self::with_bounds(docs, crate::bounds::Bounds::default())
    }

    /// A data plane serving `docs` with these body bounds.
    pub fn with_bounds(docs: &[Value], bounds: crate::bounds::Bounds) -> Self {
        Self::with(docs, |s| s.bounds = bounds)
    }

    /// A data plane serving `docs`, its state edited by `edit` first.
    pub fn with(docs: &[Value], edit: impl FnOnce(&mut AppState)) -> Self {
        let upstream = FakeUpstream::new();
        let clock = WallClock::system();
        let limiter = Limiter::new(
            Arc::new(MemoryStore::new(clock)),
            clock,
            FailMode::Open,
            std::time::Duration::from_millis(250),
        );
        let mut state = AppState {
            store: ConfigStore::default(),
            metrics: Arc::new(Metrics::new()),
            shared: SharedState {
                upstreams: Upstreams::fixed(Arc::new(upstream.clone())),
                breakers: BreakerRegistry::default(),
                jwks: JwksStore::new(Arc::new(crate::auth::HttpJwksFetcher::new(Arc::new(
                    crate::upstream::tls::client_config(),
                )))),
            },
            limiter: Arc::new(limiter),
            usage: Arc::new(crate::teams::UsageBook::new(clock)),
            first_refusals: Default::default(),
            bounds: crate::bounds::Bounds::default(),
            allow_empty_config: false,
            stream_keepalive: super::keepalive::DEFAULT_INTERVAL,
            sessions: Arc::new(crate::sessions::SessionTable::default()),
            cut: Arc::default(),
        };
        edit(&mut state);
        let h = Self {
            state: Arc::new(state),
            upstream,
        };
        h.apply(docs);
        h
    }

    /// Applies `docs` as the new configuration.
    pub fn apply(&self, docs: &[Value]) {
        let snapshot = snapshot(docs);
        let cfg = RuntimeConfig::build(&snapshot, &self.state.shared, &|_| None)
            .unwrap_or_else(|p| panic!("configuration builds: {p:?}"));
        crate::config::swap(&self.state, cfg);
    }

    /// Sends a request and returns the response with its body unread.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Response<ResponseBody> {
        super::handle(self.state.clone(), req.map(super::request_body)).await
    }

    /// POSTs `body` to `path` with the client key (and `anthropic-version`
    /// on Messages paths) and reads the whole answer.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, HeaderMap, Bytes) {
        let mut req = Request::post(path)
            .header("x-api-key", CLIENT_KEY)
            .header("content-type", "application/json");
        if path.contains("/messages") {
            req = req.header("anthropic-version", "2023-06-01");
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        read(self.send(req).await).await
    }

    /// Sends a request whose body is `first`, then nothing, ever (a client
    /// that went silent mid-body); `declared` is its `content-length`.
    pub async fn send_stalled_body(
        &self,
        path: &str,
        declared: u64,
        first: &'static [u8],
    ) -> Response<ResponseBody> {
        use futures_util::StreamExt as _;
        let chunks = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
            http_body::Frame::data(Bytes::from_static(first)),
        )])
        .chain(futures_util::stream::pending());
        let body = http_body_util::StreamBody::new(chunks);
        let req = Request::post(path)
            .header("x-api-key", CLIENT_KEY)
            .header("content-type", "application/json")
            .header("content-length", declared)
            .body(body)
            .unwrap();
        super::handle(self.state.clone(), req.map(super::request_body)).await
    }

    /// POSTs raw body text to `path` with the client key (and
    /// `anthropic-version` on Messages paths) and reads the whole answer.
    pub async fn post_raw(&self, path: &str, body: String) -> (StatusCode, HeaderMap, Bytes) {
        let mut req = Request::post(path)
            .header("x-api-key", CLIENT_KEY)
            .header("content-type", "application/json");
        if path.contains("/messages") {
            req = req.header("anthropic-version", "2023-06-01");
        }
        read(
            self.send(req.body(Full::new(Bytes::from(body))).unwrap())
                .await,
        )
        .await
    }

    /// The metrics text.
    pub fn metrics(&self) -> String {
        self.state.metrics.encode()
    }
}

/// Reads a whole response.
pub async fn read(resp: Response<ResponseBody>) -> (StatusCode, HeaderMap, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (parts.status, parts.headers, bytes)
}

/// A Chat Completions request for `model`.
pub fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// A Messages request for `model`.
pub fn messages(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// The sum of a metric's samples whose labels include every `(name, value)`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The text of a Chat Completions SSE stream (content deltas joined).
pub fn chat_stream_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(t) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            out.push_str(t);
        }
    }
    out
}

/// A log sink shared with a test.
#[derive(Clone, Default)]
pub struct LogBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    /// Every line logged so far, as written.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Every line logged so far, parsed (the JSON log format).
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The access-log lines of finished requests.
    pub fn finished(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["message"] == "request finished")
            .collect()
    }
}

/// Captures this thread's log lines in the JSON format until the guard is
/// dropped (`#[tokio::test]` runs every task on the test's thread).
pub fn capture_logs() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt as _;
    undecided_global_default();
    let buf = LogBuf::default();
    let sink = buf.clone();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .event_format(crate::log_json::JsonLines)
            .with_writer(move || sink.clone()),
    );
    (buf, tracing::subscriber::set_default(subscriber))
}

/// Installs, once per test process, a global subscriber that records
/// nothing but leaves every callsite's interest undecided (`sometimes`), so
/// each event asks the thread's own subscriber.
///
/// Without it, `tracing` caches a callsite as never enabled when that
/// callsite is first reached on a thread without a subscriber while one
/// test's capturing subscriber is the only one alive (it then asks only the
/// registering thread's default): that test, and every later one, lost the
/// callsite's lines (an access line reached first by a test that does not
/// capture logs went missing whenever a filter left one capturing test).
fn undecided_global_default() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another global default (none in these tests) would do as well.
        let _ = tracing::subscriber::set_global_default(Undecided);
    });
}

/// See [`undecided_global_default`].
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Waits (yielding, then advancing the paused clock in small steps, up to a
/// minute of it) until `done` holds; panics with `what` if it never does.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for i in 0..2000 {
        if done() {
            return;
        }
        if i < 1000 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        }
    }
    panic!("never happened: {what}");
}
