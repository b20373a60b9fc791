//! Session attribution (issue 16, defect 7) through the real binary: the session ids Claude Code,
//! Codex and OpenCode send are in the JSON access log, and the admin port's `/sessions` reports
//! per-session token counts per team (the heaviest first, bounded by `--sessions-per-team`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::agents::{
    CLAUDE_CODE_PATH, CLAUDE_CODE_SESSION, CODEX_SESSION, claude_code_body, claude_code_headers,
    codex_body, codex_headers, opencode_body, opencode_headers,
};
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::stack::{ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV};
use switchboard_e2e::wire::Flavor;
use switchboard_e2e::{
    Behaviour, Gateway, MockUpstream, get, post_stream, wait_until, write_config,
};

const PAYMENTS_KEY_ENV: &str = "SWITCHBOARD_E2E_PAYMENTS_KEY";
const SEARCH_KEY_ENV: &str = "SWITCHBOARD_E2E_SEARCH_KEY";
/// The agents' request shapes carry `sb-client-key-e2e`: team `payments`.
const PAYMENTS_KEY: &str = "sb-client-key-e2e";
const SEARCH_KEY: &str = "sb-search-key-e2e";

struct Setup {
    _openai: MockUpstream,
    _anthropic: MockUpstream,
    gateway: Gateway,
    _dir: PathBuf,
}

/// Every answer reports 100 input and 10 output tokens.
async fn setup(args: &[&str]) -> Setup {
    let openai = MockUpstream::start(Flavor::OpenAI).await;
    let anthropic = MockUpstream::start(Flavor::Anthropic).await;
    let usage = Behaviour::OkWithUsage {
        text: "ok".into(),
        input: 100,
        output: 10,
        cached: 0,
    };
    openai.set_default(usage.clone());
    anthropic.set_default(usage);
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
                "auth": {"apiKeys": [
                    {"name": "payments", "env": PAYMENTS_KEY_ENV},
                    {"name": "search", "env": SEARCH_KEY_ENV}
                ]},
                "teams": {"teams": [
                    {"name": "payments", "apiKeys": ["payments"]},
                    {"name": "search", "apiKeys": ["search"]}
                ]},
                "rules": [rule(&["gpt-*"], &["openai"]), rule(&["claude-*"], &["anthropic"])]
            }),
        );
    let dir = switchboard_e2e::harness::temp_dir("sessions");
    let path = write_config(&dir, &config.to_yaml());
    let mut all = vec!["--log-format", "json"];
    all.extend_from_slice(args);
    let gateway = Gateway::start_with_args(
        &path,
        &[
            (OPENAI_KEY_ENV, OPENAI_KEY),
            (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
            (PAYMENTS_KEY_ENV, PAYMENTS_KEY),
            (SEARCH_KEY_ENV, SEARCH_KEY),
        ],
        &all,
    )
    .await;
    Setup {
        _openai: openai,
        _anthropic: anthropic,
        gateway,
        _dir: dir,
    }
}

async fn stream(s: &Setup, path: &str, headers: &[(&str, &str)], body: &Value) {
    let (status, _, events) =
        post_stream(&format!("{}{path}", s.gateway.base_url()), headers, body).await;
    assert_eq!(status, 200, "{path}: {events:?}");
}

/// The access-log lines (JSON) of finished requests.
fn access_lines(g: &Gateway) -> Vec<Value> {
    g.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "request finished")
        .collect()
}

async fn sessions(g: &Gateway, query: &str) -> Value {
    let (status, _, body) = get(&format!("{}/sessions{query}", g.admin_url()), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    json_body(&body)
}

fn session_ids(team: &Value) -> Vec<&str> {
    team["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn agent_sessions_are_logged_and_counted_per_team() {
    let s = setup(&[]).await;
    // Claude Code twice (payments), Codex once (payments), OpenCode once (search).
    for _ in 0..2 {
        stream(
            &s,
            CLAUDE_CODE_PATH,
            &claude_code_headers(),
            &claude_code_body("claude-sonnet-4"),
        )
        .await;
    }
    stream(
        &s,
        "/v1/responses",
        &codex_headers(),
        &codex_body("gpt-4.1"),
    )
    .await;
    let mut opencode = opencode_headers();
    let search = format!("Bearer {SEARCH_KEY}");
    opencode[0] = ("authorization", search.as_str());
    stream(
        &s,
        "/v1/chat/completions",
        &opencode,
        &opencode_body("gpt-4.1"),
    )
    .await;

    // The access log: one line per request, with its session.
    wait_until(Duration::from_secs(10), "four access-log lines", || async {
        access_lines(&s.gateway).len() >= 4
    })
    .await;
    let lines = access_lines(&s.gateway);
    let logged: Vec<&str> = lines
        .iter()
        .map(|l| l["session"].as_str().unwrap())
        .collect();
    assert_eq!(
        logged,
        [
            CLAUDE_CODE_SESSION,
            CLAUDE_CODE_SESSION,
            CODEX_SESSION,
            "ses_e2e"
        ],
        "{lines:?}"
    );

    // Per-session counts, per team, heaviest first.
    let report = sessions(&s.gateway, "").await;
    assert_eq!(report["window_seconds"], 3600);
    let teams = report["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 2, "{report}");
    assert_eq!(teams[0]["team"], "payments");
    assert_eq!(session_ids(&teams[0]), [CLAUDE_CODE_SESSION, CODEX_SESSION]);
    let claude = &teams[0]["sessions"][0];
    assert_eq!(claude["client"], "claude-code");
    assert_eq!(claude["requests"], 2);
    assert_eq!(claude["input_tokens"], 200);
    assert_eq!(claude["output_tokens"], 20);
    assert_eq!(teams[0]["sessions"][1]["client"], "codex");
    assert_eq!(teams[1]["team"], "search");
    assert_eq!(session_ids(&teams[1]), ["ses_e2e"]);
    assert_eq!(teams[1]["sessions"][0]["client"], "opencode");

    // One team, the heaviest session only.
    let report = sessions(&s.gateway, "?team=payments&limit=1").await;
    let teams = report["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 1);
    assert_eq!(session_ids(&teams[0]), [CLAUDE_CODE_SESSION]);
    let (status, _, _) = get(&format!("{}/sessions?limit=0", s.gateway.admin_url()), &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_new_session_takes_the_place_of_the_lightest_when_a_team_is_full() {
    let s = setup(&["--sessions-per-team", "2"]).await;
    let mut headers = claude_code_headers();
    for (session, requests) in [("heavy", 3), ("medium", 2), ("light", 1)] {
        let at = headers
            .iter()
            .position(|(n, _)| *n == "x-claude-code-session-id")
            .unwrap();
        headers[at].1 = session;
        for _ in 0..requests {
            stream(
                &s,
                CLAUDE_CODE_PATH,
                &headers,
                &claude_code_body("claude-sonnet-4"),
            )
            .await;
        }
    }
    wait_until(Duration::from_secs(10), "six access-log lines", || async {
        access_lines(&s.gateway).len() >= 6
    })
    .await;
    let report = sessions(&s.gateway, "").await;
    assert_eq!(report["sessions_per_team"], 2);
    // "light" replaced "medium" (the lightest at the time), then stayed lighter than "heavy".
    assert_eq!(
        session_ids(&report["teams"][0]),
        ["heavy", "light"],
        "{report}"
    );
}
