//! Refusals designed for agents, through the whole pipeline: every limit
//! kind × every client dialect answers 429 with `Retry-After` (the exact
//! seconds to the next window, or to the period's reset), the rate-limit
//! headers of the dialect, and a message naming whose limit, which one, its
//! size and when it resets. The clock is fixed at 2026-12-07T20:47:48Z: 12 s
//! to the next minute, 3h12m12s to the next UTC day, 24d3h12m12s to the
//! next month.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::ClientAddr;
use super::testing::{CLIENT_KEY, Harness, backend, read};
use crate::limits::{FailMode, Limiter, MemoryStore, WallClock};

/// 2026-12-07T20:47:48Z.
const NOW_MS: u64 = 1_796_676_468_000;

/// The limits of one case: the route's `teams` and `tiers` fields.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Requests,
    Tokens,
    Budget,
    ClientIp,
}

impl Kind {
    /// Requests admitted before the refused one (each uses up what it can).
    fn admitted(self) -> usize {
        match self {
            Kind::Requests | Kind::ClientIp => 2,
            Kind::Tokens | Kind::Budget => 1,
        }
    }

    fn route(self) -> Value {
        let (tier, teams) = match self {
            Kind::Requests => (
                json!({"name": "t", "requestsPerMinute": 2, "tokensPerDay": 1_000_000}),
                json!({"teams": [{"name": "payments", "tier": "t", "apiKeys": ["test"]}]}),
            ),
            Kind::Tokens => (
                json!({"name": "t", "requestsPerMinute": 100, "tokensPerDay": 5}),
                json!({"teams": [{"name": "payments", "tier": "t", "apiKeys": ["test"]}]}),
            ),
            Kind::Budget => (
                json!({"name": "t", "requestsPerMinute": 0, "tokensPerDay": 0}),
                json!({"teams": [{"name": "payments", "tier": "t", "apiKeys": ["test"],
                                  "budget": {"usd": 0.01, "period": "month"}}]}),
            ),
            Kind::ClientIp => (
                json!({"name": "t", "requestsPerMinute": 0, "tokensPerDay": 0}),
                json!({"teams": [{"name": "payments", "tier": "t", "apiKeys": ["test"]}],
                       "clientIpRequestsPerMinute": 2}),
            ),
        };
        json!({
            "apiVersion": "switchboard.dev/v1alpha1",
            "kind": "AIRoute",
            "metadata": {"name": "main"},
            "spec": {
                "pathPrefix": "/",
                "auth": {"apiKeys": [{"name": "test", "secretRef": {"name": "keys", "key": "client"}}]},
                "rules": [{"models": ["claude-*"], "backends": [{"name": "up"}]}],
                "teams": teams,
                "tiers": [tier],
                "pricing": [{"model": "claude-sonnet-4", "input": 10000, "output": 10000}],
            }
        })
    }
}

/// A client of one dialect.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    OpenAi,
    Anthropic,
    Bedrock,
}

impl Client {
    fn request(self) -> Request<Full<Bytes>> {
        let (path, body) = match self {
            Client::OpenAi => (
                "/v1/chat/completions",
                json!({"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "hi"}]}),
            ),
            Client::Anthropic => (
                "/v1/messages",
                json!({"model": "claude-sonnet-4", "max_tokens": 64,
                       "messages": [{"role": "user", "content": "hi"}]}),
            ),
            Client::Bedrock => (
                "/model/claude-sonnet-4/invoke",
                json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                       "messages": [{"role": "user", "content": "hi"}]}),
            ),
        };
        let mut req = Request::post(path)
            .header("x-api-key", CLIENT_KEY)
            .header("content-type", "application/json");
        if self == Client::Anthropic {
            req = req.header("anthropic-version", "2023-06-01");
        }
        let mut req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        req.extensions_mut()
            .insert(ClientAddr("10.0.0.7:40000".parse().unwrap()));
        req
    }

    /// The refusal's message and error type in this dialect's error body.
    fn error(self, body: &[u8], headers: &HeaderMap) -> (String, String, Option<String>) {
        let v: Value = serde_json::from_slice(body).unwrap();
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        match self {
            Client::OpenAi => (
                s("/error/message").unwrap(),
                s("/error/type").unwrap(),
                s("/error/code"),
            ),
            Client::Anthropic => {
                assert_eq!(v["type"], "error", "{v}");
                (
                    s("/error/message").unwrap(),
                    s("/error/type").unwrap(),
                    None,
                )
            }
            Client::Bedrock => (
                s("/message").unwrap(),
                headers["x-amzn-errortype"].to_str().unwrap().to_owned(),
                None,
            ),
        }
    }
}

fn harness(kind: Kind) -> Harness {
    Harness::with(
        &[
            backend("up", "Anthropic", &["claude-sonnet-4"]),
            kind.route(),
        ],
        |s| {
            let clock = WallClock::starting_at(NOW_MS);
            s.limiter = Arc::new(Limiter::new(
                Arc::new(MemoryStore::new(clock)),
                clock,
                FailMode::Closed,
                std::time::Duration::from_secs(1),
            ));
        },
    )
}

/// What a refusal of `kind` says: the message without the used amount
/// (which depends on the fake's usage) split around it, `Retry-After`,
/// the OpenAI code, and the rate-limit headers expected (x-ratelimit, then
/// anthropic-ratelimit).
struct Expected {
    starts: &'static str,
    ends: &'static str,
    retry_after: u64,
    code: &'static str,
    openai_headers: &'static [(&'static str, &'static str)],
    anthropic_headers: &'static [(&'static str, &'static str)],
}

fn expected(kind: Kind) -> Expected {
    match kind {
        Kind::Requests => Expected {
            starts: "team payments: rate limit of 2 requests per minute exceeded (3 this minute)",
            ends: "; resets at 2026-12-07T20:48:00Z (in 12s)",
            retry_after: 12,
            code: "rate_limit_exceeded",
            openai_headers: &[
                ("x-ratelimit-limit-requests", "2"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "12s"),
            ],
            anthropic_headers: &[
                ("anthropic-ratelimit-requests-limit", "2"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2026-12-07T20:48:00Z"),
            ],
        },
        Kind::Tokens => Expected {
            starts: "team payments: token quota of 5 tokens per day exhausted (",
            ends: " used); resets at 2026-12-08T00:00:00Z (in 3h12m)",
            retry_after: 3 * 3600 + 12 * 60 + 12,
            code: "rate_limit_exceeded",
            openai_headers: &[
                ("x-ratelimit-limit-tokens", "5"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "11532s"),
                ("x-ratelimit-limit-requests", "100"),
            ],
            anthropic_headers: &[
                ("anthropic-ratelimit-tokens-limit", "5"),
                ("anthropic-ratelimit-tokens-remaining", "0"),
                ("anthropic-ratelimit-tokens-reset", "2026-12-08T00:00:00Z"),
                ("anthropic-ratelimit-requests-limit", "100"),
                ("anthropic-ratelimit-requests-remaining", "98"),
            ],
        },
        Kind::Budget => Expected {
            starts: "team payments: budget of $0.01 per month exhausted ($",
            ends: " spent); resets at 2027-01-01T00:00:00Z (in 24d3h)",
            retry_after: 24 * 86_400 + 3 * 3600 + 12 * 60 + 12,
            code: "insufficient_quota",
            openai_headers: &[],
            anthropic_headers: &[],
        },
        Kind::ClientIp => Expected {
            starts: "client address 10.0.0.7: rate limit of 2 requests per minute exceeded (3 this minute)",
            ends: "; resets at 2026-12-07T20:48:00Z (in 12s)",
            retry_after: 12,
            code: "rate_limit_exceeded",
            openai_headers: &[],
            anthropic_headers: &[],
        },
    }
}

#[tokio::test(start_paused = true)]
async fn every_refusal_names_its_limit_size_and_reset_with_the_headers_of_the_clients_dialect() {
    for kind in [Kind::Requests, Kind::Tokens, Kind::Budget, Kind::ClientIp] {
        for client in [Client::OpenAi, Client::Anthropic, Client::Bedrock] {
            let case = format!("{kind:?} × {client:?}");
            let h = harness(kind);
            for i in 0..kind.admitted() {
                let (status, headers, body) = read(h.send(client.request()).await).await;
                assert_eq!(status, StatusCode::OK, "{case}: request {i}: {body:?}");
                // Successful answers carry the same headers as refusals.
                if kind == Kind::Requests && i == 0 {
                    assert_eq!(headers["x-ratelimit-remaining-requests"], "1", "{case}");
                    assert_eq!(
                        headers
                            .get("anthropic-ratelimit-requests-remaining")
                            .is_some(),
                        client != Client::OpenAi,
                        "{case}"
                    );
                }
                // Settled before the next request is admitted.
                assert_eq!(
                    h.state
                        .limiter
                        .flush(std::time::Duration::from_secs(5))
                        .await,
                    0
                );
            }
            let (status, headers, body) = read(h.send(client.request()).await).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{case}: {body:?}");
            let want = expected(kind);
            let (message, kind_name, code) = client.error(&body, &headers);
            assert!(
                message.starts_with(want.starts) && message.ends_with(want.ends),
                "{case}: {message}"
            );
            let retry = want.retry_after.to_string();
            assert_eq!(headers["retry-after"], retry.as_str(), "{case}");
            // Past a minute, agents are told not to retry at all.
            assert_eq!(
                headers.get("x-should-retry").map(|v| v.to_str().unwrap()),
                (want.retry_after > 60).then_some("false"),
                "{case}"
            );
            match client {
                Client::OpenAi => {
                    assert_eq!(kind_name, "rate_limit_error", "{case}");
                    assert_eq!(code.as_deref(), Some(want.code), "{case}");
                }
                Client::Anthropic => assert_eq!(kind_name, "rate_limit_error", "{case}"),
                Client::Bedrock => assert_eq!(kind_name, "ThrottlingException", "{case}"),
            }
            for (name, value) in want.openai_headers {
                assert_eq!(headers[*name], *value, "{case}: {name}");
            }
            for (name, value) in want.anthropic_headers {
                if client == Client::OpenAi {
                    assert!(!headers.contains_key(*name), "{case}: {name}");
                } else {
                    assert_eq!(headers[*name], *value, "{case}: {name}");
                }
            }
            if want.openai_headers.is_empty() {
                assert!(
                    !headers
                        .keys()
                        .any(|k| k.as_str().contains("ratelimit-requests")),
                    "{case}: {headers:?}"
                );
            }
        }
    }
}

/// A route whose callers map to no team: they get the default tier `tiny`
/// (one request per minute each).
fn unmapped_route() -> Value {
    json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "AIRoute",
        "metadata": {"name": "main"},
        "spec": {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "test", "secretRef": {"name": "keys", "key": "client"}}]},
            "rules": [{"models": ["claude-*"], "backends": [{"name": "up"}]}],
            "teams": {"defaultTier": "tiny", "teams": [{"name": "payments"}]},
            "tiers": [{"name": "tiny", "requestsPerMinute": 1, "tokensPerDay": 0}],
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_callers_first_refusal_is_logged_once_and_names_the_default_tier() {
    let (logs, _guard) = super::testing::capture_logs();
    let h = Harness::with(
        &[
            backend("up", "Anthropic", &["claude-sonnet-4"]),
            unmapped_route(),
        ],
        |s| {
            let clock = WallClock::starting_at(NOW_MS);
            s.limiter = Arc::new(Limiter::new(
                Arc::new(MemoryStore::new(clock)),
                clock,
                FailMode::Closed,
                std::time::Duration::from_secs(1),
            ));
        },
    );
    let (status, _, _) = read(h.send(Client::Anthropic.request()).await).await;
    assert_eq!(status, StatusCode::OK);
    for i in 2..7 {
        let (status, _, body) = read(h.send(Client::Anthropic.request()).await).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let (message, _, _) = Client::Anthropic.error(&body, &HeaderMap::new());
        assert_eq!(
            message,
            format!(
                "caller test (no team; default tier tiny): rate limit of 1 request per minute exceeded ({i} this minute); resets at 2026-12-07T20:48:00Z (in 12s)"
            )
        );
    }
    let firsts: Vec<Value> = logs
        .lines()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("first refusal"))
        })
        .collect();
    assert_eq!(firsts.len(), 1, "{firsts:?}");
    let line = &firsts[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["caller"], "test");
    assert_eq!(line["tier"], "tiny");
    assert_eq!(line["reason"], "rate_limit_requests");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("default tier (spec.teams.defaultTier)"),
        "{line}"
    );
    // The next minute: refused again, not logged again.
    tokio::time::advance(std::time::Duration::from_secs(12)).await;
    let (status, _, _) = read(h.send(Client::Anthropic.request()).await).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = read(h.send(Client::Anthropic.request()).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let count = logs
        .lines()
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("first refusal"))
        })
        .count();
    assert_eq!(count, 1);
}
