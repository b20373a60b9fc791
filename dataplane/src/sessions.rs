//! Session attribution (issue 16, defect 7): which agent session a request
//! belongs to, and bounded per-session token counts.
//!
//! Coding agents name their session in a header: Claude Code
//! `x-claude-code-session-id`, Codex `session-id` (the same UUID as its
//! `thread-id` and `x-client-request-id`), OpenCode `x-session-id`.
//! [`Session::from_headers`] takes the first of these that is a plausible id
//! (1–128 characters of `A-Z a-z 0-9 - _ . :`; anything else is ignored, so
//! a client cannot write arbitrary text into logs). The id goes into the
//! access log and the request's trace span; it is never a metric label.
//!
//! [`SessionTable`] keeps per-session counts (requests and tokens by kind)
//! per route and team, bounded twice:
//! - **per team**: at most `capacity` sessions in a window; a new session
//!   arriving when the team's table is full replaces the session with the
//!   fewest tokens (the heavy sessions stay; a replaced session that comes
//!   back starts from zero);
//! - **in time**: tumbling windows of `window` (default 1 h); the table
//!   answers for the current and the previous window together, so a report
//!   covers between one and two windows, and older counts are gone.
//!
//! The admin port serves the heaviest sessions per team
//! (`GET /sessions`, see [`SessionTable::report`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::wire::usage::Usage;

/// Default sessions kept per team and window.
pub const DEFAULT_CAPACITY: usize = 256;
/// Default window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);
/// Longest session id recorded.
pub const MAX_ID_LEN: usize = 128;

/// The headers a session id is read from, first match wins, with the
/// client each belongs to.
/// (Constant `HeaderName`s: a lookup by `&str` parses the name first.)
static HEADERS: [(HeaderName, &str); 3] = [
    (
        HeaderName::from_static("x-claude-code-session-id"),
        "claude-code",
    ),
    (HeaderName::from_static("session-id"), "codex"),
    (HeaderName::from_static("x-session-id"), "opencode"),
];

/// A request's session: its id, the client that named it, and where its
/// usage is counted.
#[derive(Clone)]
pub struct Session {
    /// The session id as the client sent it.
    pub id: Arc<str>,
    /// `claude-code`, `codex` or `opencode` (from the header).
    pub client: &'static str,
    table: Arc<SessionTable>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session named by the request's headers, counted in `table`.
    pub fn from_headers(headers: &HeaderMap, table: &Arc<SessionTable>) -> Option<Self> {
        HEADERS.iter().find_map(|(name, client)| {
            let value = headers.get(name)?.to_str().ok()?.trim();
            valid_id(value).then(|| Session {
                id: Arc::from(value),
                client,
                table: table.clone(),
            })
        })
    }

    /// Counts one finished request of this session.
    pub fn record(&self, route: &str, team: &str, usage: Option<&Usage>) {
        self.table.record(
            route,
            team,
            &self.id,
            self.client,
            usage.copied().unwrap_or_default(),
            Instant::now(),
        );
    }
}

/// Whether `id` is recorded (see the module docs).
fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// What one session used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// The client that named the session.
    pub client: &'static str,
    /// Requests finished.
    pub requests: u64,
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// When its first counted request finished.
    pub first_seen: Option<Instant>,
    /// When its last counted request finished.
    pub last_seen: Option<Instant>,
}

impl Counts {
    /// Every token, input (cached or not) and output.
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens
    }

    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.first_seen = earliest(self.first_seen, other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// (route, team).
pub type Group = (String, String);

/// One group's sessions, heaviest first.
pub type TopSessions = (Group, Vec<(Arc<str>, Counts)>);

#[derive(Default)]
struct Window {
    groups: HashMap<Group, HashMap<Arc<str>, Counts>>,
}

struct Windows {
    /// Start of the current window.
    started: Instant,
    current: Window,
    previous: Window,
}

/// Bounded per-session counts; see the module docs.
pub struct SessionTable {
    capacity: usize,
    window: Duration,
    /// For reporting times as Unix seconds.
    origin: (Instant, std::time::SystemTime),
    windows: Mutex<Windows>,
}

impl SessionTable {
    /// A table of at most `capacity` sessions per route and team and window
    /// (`0`: nothing is counted), with windows of `window`.
    pub fn new(capacity: usize, window: Duration) -> Self {
        let now = Instant::now();
        Self {
            capacity,
            window: window.max(Duration::from_secs(1)),
            origin: (now, std::time::SystemTime::now()),
            windows: Mutex::new(Windows {
                started: now,
                current: Window::default(),
                previous: Window::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves to the window holding `now`.
    fn rotate(&self, w: &mut Windows, now: Instant) {
        let elapsed = now.saturating_duration_since(w.started);
        if elapsed < self.window {
            return;
        }
        let windows = (elapsed.as_secs_f64() / self.window.as_secs_f64()).floor() as u32;
        w.previous = if windows == 1 {
            std::mem::take(&mut w.current)
        } else {
            Window::default()
        };
        w.current = Window::default();
        w.started += self.window * windows;
    }

    /// Counts one finished request of `session` on `route` for `team`.
    pub fn record(
        &self,
        route: &str,
        team: &str,
        session: &Arc<str>,
        client: &'static str,
        usage: Usage,
        now: Instant,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut w = self.lock();
        self.rotate(&mut w, now);
        let group = w
            .current
            .groups
            .entry((route.to_owned(), team.to_owned()))
            .or_default();
        if !group.contains_key(session) && group.len() >= self.capacity {
            // Full: the session with the fewest tokens makes room.
            if let Some(smallest) = group
                .iter()
                .min_by_key(|(_, c)| (c.tokens(), c.last_seen))
                .map(|(k, _)| k.clone())
            {
                group.remove(&smallest);
            }
        }
        let counts = group.entry(session.clone()).or_insert_with(|| Counts {
            client,
            first_seen: Some(now),
            ..Counts::default()
        });
        counts.add(&Counts {
            client,
            requests: 1,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            first_seen: Some(now),
            last_seen: Some(now),
        });
    }

    /// The heaviest sessions (by tokens) of each route and team over the
    /// current and previous windows, at most `limit` per team, heaviest
    /// first; only `route` / `team` when given.
    pub fn top(
        &self,
        route: Option<&str>,
        team: Option<&str>,
        limit: usize,
        now: Instant,
    ) -> Vec<TopSessions> {
        let mut w = self.lock();
        self.rotate(&mut w, now);
        let mut merged: HashMap<Group, HashMap<Arc<str>, Counts>> = HashMap::new();
        for window in [&w.previous, &w.current] {
            for (group, sessions) in &window.groups {
                if route.is_some_and(|r| r != group.0) || team.is_some_and(|t| t != group.1) {
                    continue;
                }
                let into = merged.entry(group.clone()).or_default();
                for (id, c) in sessions {
                    let entry = into.entry(id.clone()).or_insert_with(|| Counts {
                        client: c.client,
                        ..Counts::default()
                    });
                    entry.add(c);
                }
            }
        }
        drop(w);
        let mut out: Vec<_> = merged
            .into_iter()
            .map(|(group, sessions)| {
                let mut list: Vec<_> = sessions.into_iter().collect();
                list.sort_by(|a, b| b.1.tokens().cmp(&a.1.tokens()).then(a.0.cmp(&b.0)));
                list.truncate(limit);
                (group, list)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The admin report (`GET /sessions?route=&team=&limit=`), as JSON.
    pub fn report(&self, route: Option<&str>, team: Option<&str>, limit: usize) -> Value {
        let now = Instant::now();
        let unix = |at: Option<Instant>| {
            at.map(|at| {
                let since = at.saturating_duration_since(self.origin.0);
                (self.origin.1 + since)
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            })
        };
        let window_start = {
            let w = self.lock();
            w.started.checked_sub(self.window).unwrap_or(w.started)
        };
        let teams: Vec<Value> = self
            .top(route, team, limit, now)
            .into_iter()
            .map(|((route, team), sessions)| {
                json!({
                    "route": route,
                    "team": team,
                    "sessions": sessions.iter().map(|(id, c)| json!({
                        "session": &**id,
                        "client": c.client,
                        "requests": c.requests,
                        "tokens": c.tokens(),
                        "input_tokens": c.input_tokens,
                        "output_tokens": c.output_tokens,
                        "cache_read_tokens": c.cache_read_tokens,
                        "cache_write_tokens": c.cache_write_tokens,
                        "first_seen": unix(c.first_seen),
                        "last_seen": unix(c.last_seen),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "window_seconds": self.window.as_secs(),
            "since": unix(Some(window_start)),
            "sessions_per_team": self.capacity,
            "teams": teams,
        })
    }
}

impl Default for SessionTable {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY, DEFAULT_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        }
    }

    fn ids(top: &[TopSessions]) -> Vec<Vec<String>> {
        top.iter()
            .map(|(_, s)| s.iter().map(|(id, _)| id.to_string()).collect())
            .collect()
    }

    #[test]
    fn session_ids_come_from_the_agents_headers_and_must_look_like_ids() {
        let table = Arc::new(SessionTable::default());
        let mut h = HeaderMap::new();
        assert!(Session::from_headers(&h, &table).is_none());
        h.insert("x-session-id", "ses_abc".parse().unwrap());
        let s = Session::from_headers(&h, &table).unwrap();
        assert_eq!((&*s.id, s.client), ("ses_abc", "opencode"));
        h.insert("session-id", "019a-codex".parse().unwrap());
        assert_eq!(Session::from_headers(&h, &table).unwrap().client, "codex");
        h.insert(
            "x-claude-code-session-id",
            "0f7f8919-2eac-4385-a9f8-0fadf4c343ac".parse().unwrap(),
        );
        let s = Session::from_headers(&h, &table).unwrap();
        assert_eq!(
            (&*s.id, s.client),
            ("0f7f8919-2eac-4385-a9f8-0fadf4c343ac", "claude-code")
        );
        // Not an id: the next header is used.
        h.insert("x-claude-code-session-id", "a b\"c".parse().unwrap());
        assert_eq!(Session::from_headers(&h, &table).unwrap().client, "codex");
        h.insert("session-id", "x".repeat(129).parse().unwrap());
        assert_eq!(
            Session::from_headers(&h, &table).unwrap().client,
            "opencode"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn counts_add_up_per_route_team_and_session() {
        let t = SessionTable::new(8, DEFAULT_WINDOW);
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        let now = Instant::now();
        t.record("r", "payments", &a, "claude-code", usage(10, 5), now);
        t.record("r", "payments", &a, "claude-code", usage(20, 5), now);
        t.record("r", "payments", &b, "codex", usage(1, 1), now);
        t.record("r", "search", &a, "claude-code", usage(100, 0), now);
        let top = t.top(None, None, 10, now);
        assert_eq!(ids(&top), [vec!["a", "b"], vec!["a"]]);
        let (group, sessions) = &top[0];
        assert_eq!(group, &("r".to_string(), "payments".to_string()));
        assert_eq!(sessions[0].1.requests, 2);
        assert_eq!(sessions[0].1.tokens(), 40);
        assert_eq!(sessions[1].1.client, "codex");
        assert_eq!(ids(&t.top(None, Some("search"), 10, now)), [vec!["a"]]);
        assert_eq!(ids(&t.top(None, None, 1, now)), [vec!["a"], vec!["a"]]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_team_table_keeps_its_heaviest_sessions() {
        let t = SessionTable::new(3, DEFAULT_WINDOW);
        let now = Instant::now();
        for (id, tokens) in [("heavy", 1000), ("mid", 100), ("light", 1)] {
            t.record("r", "t", &id.into(), "codex", usage(tokens, 0), now);
        }
        t.record("r", "t", &"new".into(), "codex", usage(50, 0), now);
        assert_eq!(
            ids(&t.top(None, None, 10, now)),
            [vec!["heavy", "mid", "new"]]
        );
        // Another team is not affected.
        t.record("r", "u", &"other".into(), "codex", usage(1, 0), now);
        assert_eq!(t.top(None, Some("t"), 10, now)[0].1.len(), 3);
        // Nothing is counted with no capacity.
        let off = SessionTable::new(0, DEFAULT_WINDOW);
        off.record("r", "t", &"a".into(), "codex", usage(1, 0), now);
        assert!(off.top(None, None, 10, now).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn reports_cover_the_current_and_previous_window_only() {
        let t = SessionTable::new(8, Duration::from_secs(60));
        let start = Instant::now();
        let s: Arc<str> = "s".into();
        t.record("r", "t", &s, "codex", usage(1, 0), start);
        t.record(
            "r",
            "t",
            &s,
            "codex",
            usage(2, 0),
            start + Duration::from_secs(70),
        );
        let top = t.top(None, None, 10, start + Duration::from_secs(70));
        assert_eq!(top[0].1[0].1.tokens(), 3, "both windows");
        let top = t.top(None, None, 10, start + Duration::from_secs(130));
        assert_eq!(top[0].1[0].1.tokens(), 2, "the first window is gone");
        assert!(
            t.top(None, None, 10, start + Duration::from_secs(300))
                .is_empty()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_is_json_with_unix_times() {
        let t = SessionTable::new(8, DEFAULT_WINDOW);
        t.record(
            "r",
            "t",
            &"s".into(),
            "claude-code",
            usage(3, 4),
            Instant::now(),
        );
        let v = t.report(None, None, 5);
        assert_eq!(v["window_seconds"], 3600);
        assert_eq!(v["sessions_per_team"], 8);
        let s = &v["teams"][0]["sessions"][0];
        assert_eq!(s["session"], "s");
        assert_eq!(s["client"], "claude-code");
        assert_eq!(s["tokens"], 7);
        assert!(s["last_seen"].as_u64().unwrap() > 1_700_000_000);
    }
}
