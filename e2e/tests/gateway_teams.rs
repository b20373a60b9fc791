//! Teams through the real binary: per-team rate limits, token quotas and
//! budgets, refusals in both dialects with `Retry-After` and
//! `x-ratelimit-*` headers, the metrics each refusal increments, streamed
//! usage charged, and limits shared by two processes through Redis.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::ConfigBuilder;
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::{chat_body, messages_body};
use switchboard_e2e::{Gateway, JwtIssuer, post_json, post_stream, wait_until, write_config};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
const WAIT: Duration = Duration::from_secs(10);

const KEYS: &[(&str, &str, &str)] = &[
    ("alpha", "SB_E2E_ALPHA_KEY", "sb-alpha-key"),
    ("beta", "SB_E2E_BETA_KEY", "sb-beta-key"),
    ("gamma", "SB_E2E_GAMMA_KEY", "sb-gamma-key"),
    ("stranger", "SB_E2E_STRANGER_KEY", "sb-stranger-key"),
];

fn env() -> Vec<(&'static str, &'static str)> {
    KEYS.iter().map(|(_, env, value)| (*env, *value)).collect()
}

fn key(name: &str) -> String {
    let (_, _, v) = KEYS.iter().find(|(n, _, _)| *n == name).expect("known key");
    format!("Bearer {v}")
}

/// A route on the built-in mock provider with teams `alpha` (sandbox),
/// `beta` (a tiny daily budget at $1 per token), `gamma` (1 token per day).
fn route(teams: Value) -> Value {
    json!({
        "pathPrefix": "/",
        "auth": {"apiKeys": KEYS.iter().map(|(n, env, _)| json!({"name": n, "env": env})).collect::<Vec<_>>()},
        "rules": [{"backends": [{"name": "mock"}]}],
        "pricing": [{"model": "pricey", "input": 1_000_000.0, "output": 1_000_000.0}],
        "teams": teams,
    })
}

fn standard_teams() -> Value {
    json!({
        "teams": [
            {"name": "alpha", "tier": "sandbox", "apiKeys": ["alpha"]},
            {"name": "beta", "tier": "enterprise", "budget": {"usd": 1, "period": "day"}, "apiKeys": ["beta"]},
            {"name": "gamma", "tier": "standard", "tokensPerDay": 1, "apiKeys": ["gamma"]}
        ]
    })
}

fn config(route_spec: Value) -> String {
    ConfigBuilder::new()
        .backend("mock", json!({"provider": "Mock"}))
        .route("main", route_spec)
        .to_yaml()
}

async fn start(route_spec: Value, args: &[&str]) -> (Gateway, PathBuf) {
    let dir = temp_dir("teams");
    let path = write_config(&dir, &config(route_spec));
    (Gateway::start_with_args(&path, &env(), args).await, dir)
}

fn url(g: &Gateway, path: &str) -> String {
    format!("{}{path}", g.base_url())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} missing in {h:?}"))
}

/// Waits until at least `margin` seconds are left in the current UTC minute,
/// so a test counting requests per minute does not straddle two windows.
async fn early_in_a_minute(margin: u64) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if 60 - secs < margin {
        tokio::time::sleep(Duration::from_secs(60 - secs)).await;
    }
}

fn assert_openai_error(body: &Bytes, kind: &str, code: Option<&str>) -> Value {
    let v = json_body(body);
    assert_eq!(v["error"]["type"], kind, "{v}");
    if let Some(code) = code {
        assert_eq!(v["error"]["code"], code, "{v}");
    }
    v
}

fn assert_anthropic_error(body: &Bytes, kind: &str) -> Value {
    let v = json_body(body);
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    v
}

/// The text without ANSI colour sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn metric(g: &Gateway, name: &str, labels: &[(&str, &str)]) -> f64 {
    g.metric_sum(name, labels).await
}

/// A refusal is counted for the team and in the gateway-wide rejection counter.
async fn assert_refusals_counted(g: &Gateway, team: &str, reason: &str, expected: f64) {
    let team_labels = [("team", team), ("reason", reason)];
    assert_eq!(
        metric(g, "switchboard_team_rejections_total", &team_labels).await,
        expected,
        "team {team}, reason {reason}"
    );
    assert_eq!(
        metric(g, "switchboard_rejections_total", &[("reason", reason)]).await,
        expected,
        "reason {reason}"
    );
}

#[tokio::test]
async fn the_21st_request_in_a_minute_of_a_sandbox_team_is_refused_in_both_dialects() {
    let (g, _dir) = start(route(standard_teams()), &[]).await;
    // `/config` shows what callers without a team get: the default tier.
    let (_, _, body) = switchboard_e2e::get(&format!("{}/config", g.admin_url()), &[]).await;
    assert_eq!(
        json_body(&body)["routes"][0]["unmappedCallers"],
        json!({"refused": false, "defaultTier": "sandbox", "requestsPerMinute": 20, "tokensPerDay": 100_000})
    );
    early_in_a_minute(20).await;
    let auth = key("alpha");
    let h = [("authorization", auth.as_str())];
    for i in 1..=20u64 {
        let (status, headers, body) = if i % 2 == 0 {
            post_json(&url(&g, CHAT), &h, &chat_body("gpt-4o", false)).await
        } else {
            post_json(
                &url(&g, MESSAGES),
                &h,
                &messages_body("claude-sonnet-4", false),
            )
            .await
        };
        assert_eq!(
            status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(header(&headers, "x-ratelimit-limit-requests"), "20");
        assert_eq!(
            header(&headers, "x-ratelimit-remaining-requests"),
            (20 - i).to_string()
        );
        assert!(header(&headers, "x-ratelimit-reset-requests").ends_with('s'));
        assert_eq!(header(&headers, "x-ratelimit-limit-tokens"), "100000");
    }
    let (status, headers, body) = post_json(&url(&g, CHAT), &h, &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 429);
    let v = assert_openai_error(&body, "rate_limit_error", Some("rate_limit_exceeded"));
    let message = v["error"]["message"].as_str().unwrap();
    let retry: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Whose limit, its size, and when it resets (the next minute).
    assert!(
        message.starts_with(
            "team alpha: rate limit of 20 requests per minute exceeded (21 this minute); resets at "
        ) && message.contains(":00Z (in "),
        "{message}"
    );
    assert!(headers.get("x-should-retry").is_none());
    assert!(
        headers.get("anthropic-ratelimit-requests-limit").is_none(),
        "OpenAI clients get OpenAI's headers only"
    );
    assert_eq!(header(&headers, "x-ratelimit-remaining-requests"), "0");
    assert_eq!(header(&headers, "x-ratelimit-limit-requests"), "20");

    let (status, headers, body) = post_json(
        &url(&g, MESSAGES),
        &h,
        &messages_body("claude-sonnet-4", false),
    )
    .await;
    assert_eq!(status, 429);
    let v = assert_anthropic_error(&body, "rate_limit_error");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "team alpha: rate limit of 20 requests per minute exceeded (22 this minute); resets at "
        ),
        "{message}"
    );
    assert!(header(&headers, "retry-after").parse::<u64>().is_ok());
    // Anthropic's headers beside OpenAI's: the reset is the next minute, RFC 3339.
    assert_eq!(header(&headers, "anthropic-ratelimit-requests-limit"), "20");
    assert_eq!(
        header(&headers, "anthropic-ratelimit-requests-remaining"),
        "0"
    );
    let reset = header(&headers, "anthropic-ratelimit-requests-reset");
    assert!(reset.ends_with(":00Z") && reset.len() == 20, "{reset}");
    assert!(
        message.contains(&format!("resets at {reset} (in ")),
        "{message}"
    );

    assert_refusals_counted(&g, "alpha", "rate_limit_requests", 2.0).await;
    assert_eq!(
        metric(
            &g,
            "switchboard_team_remaining_requests",
            &[("team", "alpha")]
        )
        .await,
        0.0
    );
    assert_eq!(
        metric(
            &g,
            "switchboard_team_requests_total",
            &[("team", "alpha"), ("status", "200")]
        )
        .await,
        20.0
    );
    // Access-log lines name the team, for answered and refused requests
    // (written by the gateway's log writer thread, shortly after).
    let line = |log: &str, what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains("team=\"alpha\""))
            .count()
    };
    wait_until(Duration::from_secs(5), "22 access-log lines", || async {
        let log = strip_ansi(&g.log());
        line(&log, "request finished") + line(&log, "rate_limit_requests") >= 22
    })
    .await;
    let log = strip_ansi(&g.log());
    assert_eq!(line(&log, "request finished"), 20, "{log}");
    assert_eq!(line(&log, "rate_limit_requests"), 2, "{log}");
    // Another team is not affected.
    let auth = key("gamma");
    let (status, _, _) = post_json(
        &url(&g, CHAT),
        &[("authorization", auth.as_str())],
        &chat_body("gpt-4o", false),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_team_over_budget_is_refused_until_the_period_ends() {
    let (g, _dir) = start(route(standard_teams()), &[]).await;
    let auth = key("beta");
    let h = [("authorization", auth.as_str())];
    // At $1 per token, one answer spends the whole $1 budget.
    let (status, headers, body) = post_json(&url(&g, CHAT), &h, &chat_body("pricey", false)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers.get("x-ratelimit-limit-requests").is_none(),
        "enterprise has no request limit"
    );
    let usage = json_body(&body)["usage"].clone();
    let tokens =
        usage["prompt_tokens"].as_f64().unwrap() + usage["completion_tokens"].as_f64().unwrap();
    wait_until(WAIT, "budget spent", || async {
        metric(
            &g,
            "switchboard_team_budget_remaining_usd",
            &[("team", "beta")],
        )
        .await
            == 0.0
    })
    .await;
    assert_eq!(
        metric(
            &g,
            "switchboard_team_cost_usd_total",
            &[("team", "beta"), ("model", "pricey")]
        )
        .await,
        tokens
    );

    let (status, headers, body) = post_json(&url(&g, CHAT), &h, &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 429);
    let v = assert_openai_error(&body, "rate_limit_error", Some("insufficient_quota"));
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("team beta: budget of $1.00 per day exhausted ($")
            && message.contains(" spent); resets at ")
            && message.contains("T00:00:00Z (in "),
        "{message}"
    );
    let retry: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    // A wait past a minute: agents stop instead of retrying.
    if retry > 60 {
        assert_eq!(header(&headers, "x-should-retry"), "false");
    }

    let (status, _, body) = post_json(
        &url(&g, MESSAGES),
        &h,
        &messages_body("claude-sonnet-4", false),
    )
    .await;
    assert_eq!(status, 429);
    assert_anthropic_error(&body, "rate_limit_error");
    assert_refusals_counted(&g, "beta", "budget_exceeded", 2.0).await;
}

#[tokio::test]
async fn streamed_usage_is_charged_to_the_team_and_exhausts_its_token_quota() {
    let (g, _dir) = start(route(standard_teams()), &[]).await;
    let auth = key("gamma");
    let h = [("authorization", auth.as_str())];
    let (status, headers, events) =
        post_stream(&url(&g, CHAT), &h, &chat_body("gpt-4o", true)).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-ratelimit-limit-tokens"), "1");
    assert_eq!(header(&headers, "x-ratelimit-remaining-tokens"), "1");
    let usage = events
        .iter()
        .filter_map(|e| e.json())
        .find_map(|v| v.get("usage").filter(|u| u.is_object()).cloned());
    let usage = usage.expect("the stream reports usage");
    let (input, output) = (
        usage["prompt_tokens"].as_f64().unwrap(),
        usage["completion_tokens"].as_f64().unwrap(),
    );
    wait_until(WAIT, "streamed tokens charged", || async {
        metric(
            &g,
            "switchboard_team_tokens_total",
            &[("team", "gamma"), ("kind", "output")],
        )
        .await
            == output
    })
    .await;
    assert_eq!(
        metric(
            &g,
            "switchboard_team_tokens_total",
            &[("team", "gamma"), ("kind", "input")]
        )
        .await,
        input
    );
    wait_until(WAIT, "remaining tokens 0", || async {
        metric(
            &g,
            "switchboard_team_remaining_tokens",
            &[("team", "gamma")],
        )
        .await
            == 0.0
    })
    .await;

    let (status, headers, body) = post_json(
        &url(&g, MESSAGES),
        &h,
        &messages_body("claude-sonnet-4", true),
    )
    .await;
    assert_eq!(status, 429);
    let v = assert_anthropic_error(&body, "rate_limit_error");
    let expected = format!(
        "team gamma: token quota of 1 token per day exhausted ({} used); resets at ",
        input + output
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.contains("T00:00:00Z (in "), "{message}");
    assert_eq!(header(&headers, "x-ratelimit-remaining-tokens"), "0");
    assert_eq!(header(&headers, "anthropic-ratelimit-tokens-limit"), "1");
    assert_eq!(
        header(&headers, "anthropic-ratelimit-tokens-remaining"),
        "0"
    );
    assert!(header(&headers, "anthropic-ratelimit-tokens-reset").ends_with("T00:00:00Z"));
    assert!(header(&headers, "retry-after").parse::<u64>().unwrap() <= 86_400);
    let (status, _, body) = post_json(&url(&g, CHAT), &h, &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 429);
    assert_openai_error(&body, "rate_limit_error", Some("rate_limit_exceeded"));
    assert_refusals_counted(&g, "gamma", "rate_limit_tokens", 2.0).await;
}

#[tokio::test]
async fn jwt_claims_map_to_teams_and_unknown_callers_are_refused_when_configured() {
    let issuer = JwtIssuer::start().await;
    let spec = json!({
        "pathPrefix": "/",
        "auth": {"jwt": {"issuer": issuer.issuer(), "audiences": [issuer.audience()], "jwksUri": issuer.jwks_uri()}},
        "rules": [{"backends": [{"name": "mock"}]}],
        "tiers": [{"name": "tiny", "requestsPerMinute": 3}],
        "teams": {
            "claim": "groups",
            "mapping": {"grp-payments": "payments"},
            "refuseUnknown": true,
            "teams": [{"name": "payments", "tier": "tiny"}]
        }
    });
    let (g, _dir) = start(spec, &[]).await;
    let (_, _, body) = switchboard_e2e::get(&format!("{}/config", g.admin_url()), &[]).await;
    assert_eq!(
        json_body(&body)["routes"][0]["unmappedCallers"],
        json!({"refused": true})
    );
    let member = format!(
        "Bearer {}",
        issuer.mint(json!({"sub": "svc", "groups": ["eng", "grp-payments"]}))
    );
    let (status, headers, _) = post_json(
        &url(&g, CHAT),
        &[("authorization", member.as_str())],
        &chat_body("gpt-4o", false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-ratelimit-limit-requests"), "3");

    let stranger = format!(
        "Bearer {}",
        issuer.mint(json!({"sub": "other", "groups": ["eng"]}))
    );
    let h = [("authorization", stranger.as_str())];
    let (status, headers, body) = post_json(&url(&g, CHAT), &h, &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 403);
    assert_openai_error(&body, "permission_error", None);
    assert!(headers.get("retry-after").is_none());
    let (status, _, body) = post_json(
        &url(&g, MESSAGES),
        &h,
        &messages_body("claude-sonnet-4", false),
    )
    .await;
    assert_eq!(status, 403);
    assert_anthropic_error(&body, "permission_error");
    assert_refusals_counted(&g, "unknown", "unknown_team", 2.0).await;
    // Only configured teams (and `unknown`) appear as label values.
    let text = g.metrics().await;
    assert!(!text.contains("team=\"other\""), "{text}");
}

#[tokio::test]
async fn an_unreachable_counter_store_fails_open_or_closed_as_configured() {
    let spec = route(standard_teams());
    let dead = [
        "--redis-url",
        "redis://127.0.0.1:1/",
        "--limits-timeout",
        "300ms",
    ];
    let (open, _d1) = start(
        spec.clone(),
        &[&dead[..], &["--limits-fail-mode", "open"]].concat(),
    )
    .await;
    let auth = key("alpha");
    let h = [("authorization", auth.as_str())];
    let (status, headers, _) = post_json(&url(&open, CHAT), &h, &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 200);
    assert!(
        headers.get("x-ratelimit-limit-requests").is_none(),
        "limits were not checked"
    );
    assert_eq!(
        metric(
            &open,
            "switchboard_limiter_store_errors_total",
            &[("store", "redis"), ("mode", "open")]
        )
        .await,
        1.0
    );
    wait_until(
        Duration::from_secs(5),
        "a log line says the request was admitted unchecked",
        || async { open.log().contains("fail open") },
    )
    .await;

    let (closed, _d2) = start(
        spec,
        &[&dead[..], &["--limits-fail-mode", "closed"]].concat(),
    )
    .await;
    let (status, headers, body) =
        post_json(&url(&closed, CHAT), &h, &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 503);
    assert_openai_error(&body, "server_error", None);
    assert_eq!(header(&headers, "retry-after"), "1");
    let (status, _, body) = post_json(
        &url(&closed, MESSAGES),
        &h,
        &messages_body("claude-sonnet-4", false),
    )
    .await;
    assert_eq!(status, 503);
    assert_anthropic_error(&body, "overloaded_error");
    let labels = [("store", "redis"), ("mode", "closed")];
    assert_eq!(
        metric(&closed, "switchboard_limiter_store_errors_total", &labels).await,
        2.0
    );
    assert_eq!(
        metric(
            &closed,
            "switchboard_rejections_total",
            &[("reason", "limiter_unavailable")]
        )
        .await,
        2.0
    );
}

/// The Redis URL from `scripts/test`; skipped with a message outside it, a failure in CI.
fn redis_url() -> Option<String> {
    match std::env::var("SWITCHBOARD_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none()
                    && std::env::var_os("SWITCHBOARD_TEST_REQUIRE_REDIS").is_none(),
                "SWITCHBOARD_TEST_REDIS_URL is not set: scripts/test starts redis-server for this test"
            );
            eprintln!("skipped: SWITCHBOARD_TEST_REDIS_URL is not set (run scripts/test)");
            None
        }
    }
}

#[tokio::test]
async fn two_gateways_sharing_redis_enforce_one_team_limit_exactly() {
    let Some(redis) = redis_url() else { return };
    // A team name unique to this run, so reruns within a minute do not share counters.
    let team = format!(
        "shared-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    let spec = route(json!({
        "teams": [{"name": team, "requestsPerMinute": 10, "tokensPerDay": 0, "apiKeys": ["alpha"]}]
    }));
    let args = [
        "--redis-url",
        redis.as_str(),
        "--limits-fail-mode",
        "closed",
    ];
    let (a, _d1) = start(spec.clone(), &args).await;
    let (b, _d2) = start(spec, &args).await;
    early_in_a_minute(20).await;
    let auth = key("alpha");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let target = url(if i % 2 == 0 { &a } else { &b }, CHAT);
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let (status, _, _) = post_json(
                &target,
                &[("authorization", auth.as_str())],
                &chat_body("gpt-4o", false),
            )
            .await;
            status.as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        6,
        "{statuses:?}"
    );
    let labels = [("team", team.as_str()), ("reason", "rate_limit_requests")];
    let refused = metric(&a, "switchboard_team_rejections_total", &labels).await
        + metric(&b, "switchboard_team_rejections_total", &labels).await;
    assert_eq!(refused, 6.0);
}

#[tokio::test]
async fn the_client_ip_limit_applies_across_teams_in_both_dialects() {
    let mut teams = standard_teams();
    teams["clientIpRequestsPerMinute"] = json!(3);
    let (g, _dir) = start(route(teams), &[]).await;
    early_in_a_minute(10).await;
    for name in ["alpha", "beta", "gamma"] {
        let auth = key(name);
        let (status, _, _) = post_json(
            &url(&g, CHAT),
            &[("authorization", auth.as_str())],
            &chat_body("gpt-4o", false),
        )
        .await;
        assert_eq!(status, 200, "{name}");
    }
    let auth = key("stranger");
    let h = [("authorization", auth.as_str())];
    let (status, headers, body) = post_json(&url(&g, CHAT), &h, &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 429);
    let v = assert_openai_error(&body, "rate_limit_error", Some("rate_limit_exceeded"));
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "client address 127.0.0.1: rate limit of 3 requests per minute exceeded (4 this minute); resets at "
        ),
        "{message}"
    );
    assert!(header(&headers, "retry-after").parse::<u64>().unwrap() <= 60);
    let (status, _, body) = post_json(
        &url(&g, MESSAGES),
        &h,
        &messages_body("claude-sonnet-4", false),
    )
    .await;
    assert_eq!(status, 429);
    assert_anthropic_error(&body, "rate_limit_error");
    assert_refusals_counted(&g, "unknown", "rate_limit_client_ip", 2.0).await;
}

#[tokio::test]
async fn usage_seen_before_a_client_disconnect_is_charged() {
    use http_body_util::BodyExt;
    use switchboard_e2e::config::backend_spec;
    use switchboard_e2e::stack::{ANTHROPIC_KEY, ANTHROPIC_KEY_ENV};
    use switchboard_e2e::{Behaviour, Flavor, MockUpstream};

    let upstream = MockUpstream::start(Flavor::Anthropic).await;
    // message_start (with input usage) and a few deltas, then the upstream stalls.
    upstream.set_default(Behaviour::StallStream { after_events: 4 });
    let mut spec = route(standard_teams());
    spec["rules"] = json!([{"backends": [{"name": "anthropic"}]}]);
    let yaml = ConfigBuilder::new()
        .backend(
            "anthropic",
            backend_spec(
                Flavor::Anthropic,
                &upstream.url(),
                ANTHROPIC_KEY_ENV,
                &["claude-test"],
            ),
        )
        .route("main", spec)
        .to_yaml();
    let dir = temp_dir("teams-disconnect");
    let path = write_config(&dir, &yaml);
    let mut envs = env();
    envs.push((ANTHROPIC_KEY_ENV, ANTHROPIC_KEY));
    let g = Gateway::start(&path, &envs).await;

    let auth = key("alpha");
    let body = Bytes::from(messages_body("claude-test", true).to_string());
    let (status, _, mut incoming) = switchboard_e2e::client::try_send(
        http::Method::POST,
        &url(&g, MESSAGES),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let first = tokio::time::timeout(WAIT, incoming.frame())
        .await
        .expect("first frame in time");
    assert!(first.is_some_and(|f| f.is_ok()));
    drop(incoming);
    wait_until(
        WAIT,
        "input tokens charged after the disconnect",
        || async {
            metric(
                &g,
                "switchboard_team_tokens_total",
                &[("team", "alpha"), ("kind", "input")],
            )
            .await
                > 0.0
        },
    )
    .await;
    let input = metric(
        &g,
        "switchboard_team_tokens_total",
        &[("team", "alpha"), ("kind", "input")],
    )
    .await;
    wait_until(WAIT, "the day's token count includes them", || async {
        metric(
            &g,
            "switchboard_team_remaining_tokens",
            &[("team", "alpha")],
        )
        .await
            <= 100_000.0 - input
    })
    .await;
}

#[tokio::test]
async fn errors_after_admission_carry_the_rate_limit_headers() {
    let mut spec = route(standard_teams());
    spec["rules"] = json!([{"models": ["gpt-*"], "backends": [{"name": "mock"}]}]);
    let (g, _dir) = start(spec, &[]).await;
    let auth = key("alpha");
    let (status, headers, body) = post_json(
        &url(&g, MESSAGES),
        &[("authorization", auth.as_str())],
        &messages_body("claude-unrouted", false),
    )
    .await;
    assert_eq!(status, 404);
    assert_anthropic_error(&body, "not_found_error");
    assert_eq!(header(&headers, "x-ratelimit-limit-requests"), "20");
    assert!(
        header(&headers, "x-ratelimit-remaining-requests")
            .parse::<u64>()
            .unwrap()
            < 20
    );
    assert_eq!(header(&headers, "x-ratelimit-limit-tokens"), "100000");
}
