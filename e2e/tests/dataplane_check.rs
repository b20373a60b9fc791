//! `switchboard-dataplane check` (issue 16, the compatibility self-test) against real gateways:
//! every agent works on a route served by the built-in Mock provider (models given, or taken from
//! the route's list); a route that does not serve Claude Code's model fails only Claude Code's
//! checks, with the gateway's reason; a wrong token or an unreachable gateway fails every check.

use std::path::PathBuf;
use std::process::Output;

use serde_json::json;
use switchboard_e2e::config::ConfigBuilder;
use switchboard_e2e::harness::{binary_path, free_port, temp_dir};
use switchboard_e2e::stack::{CLIENT_KEY, CLIENT_KEY_ENV};
use switchboard_e2e::{Gateway, write_config};

/// A gateway whose route `/team-a` sends `models` (globs) to the Mock provider.
async fn gateway(models: &[&str]) -> (Gateway, PathBuf) {
    let config = ConfigBuilder::new()
        .backend(
            "mock",
            json!({"provider": "Mock", "models": [{"name": "gpt-4.1"}, {"name": "claude-sonnet-4"}]}),
        )
        .route(
            "team-a",
            json!({
                "pathPrefix": "/team-a",
                "auth": {"apiKeys": [{"name": "dev", "env": CLIENT_KEY_ENV}]},
                "rules": [{"models": models, "backends": [{"name": "mock"}]}]
            }),
        );
    let dir = temp_dir("check");
    let path = write_config(&dir, &config.to_yaml());
    (
        Gateway::start(&path, &[(CLIENT_KEY_ENV, CLIENT_KEY)]).await,
        dir,
    )
}

/// Runs the check; returns its exit code and stdout (stderr when it printed nothing).
async fn check(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    // The gateway under test answers on this runtime: wait for the child on another thread.
    let out: Output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary_path("switchboard-dataplane"))
            .arg("check")
            .args(&args)
            .env_remove("SWITCHBOARD_CHECK_TOKEN")
            .env_remove("SWITCHBOARD_CHECK_ROUTE")
            .output()
            .expect("run switchboard-dataplane check")
    })
    .await
    .expect("the check's thread");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = if stdout.is_empty() {
        String::from_utf8_lossy(&out.stderr).into_owned()
    } else {
        stdout
    };
    (out.status.code().unwrap_or(-1), text)
}

/// The table rows of `agent`.
fn rows<'a>(table: &'a str, agent: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|l| l.starts_with(agent) && (l.contains("  pass  ") || l.contains("  FAIL  ")))
        .collect()
}

#[tokio::test]
async fn every_agent_works_on_a_well_configured_route() {
    let (g, _dir) = gateway(&["*"]).await;
    let route = format!("{}/team-a", g.base_url());
    let (code, table) = check(&[
        "--route",
        &route,
        "--token",
        CLIENT_KEY,
        "--model",
        "claude-sonnet-4",
    ])
    .await;
    assert_eq!(code, 0, "{table}");
    for agent in [
        "Claude Code",
        "Codex",
        "OpenCode / OpenAI SDK",
        "Anthropic SDK",
    ] {
        let rows = rows(&table, agent);
        assert!(!rows.is_empty(), "{agent}: {table}");
        assert!(
            rows.iter().all(|r| r.contains("  pass  ")),
            "{agent}: {table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(agent) && l.ends_with("works")),
            "{table}"
        );
    }
    assert!(!table.contains("FAIL"), "{table}");

    // Without --model the route's own list names the models (a Claude one for Claude Code).
    let (code, table) = check(&["--route", &route, "--token", CLIENT_KEY]).await;
    assert_eq!(code, 0, "{table}");
    assert!(
        table.starts_with(&format!(
            "Checking {route} as each agent would (Claude Code: claude-sonnet-4, Codex: claude-sonnet-4, OpenAI SDK: claude-sonnet-4, Anthropic SDK: claude-sonnet-4)"
        )),
        "{table}"
    );
}

#[tokio::test]
async fn a_route_that_does_not_serve_claude_codes_model_fails_claude_code_only() {
    let (g, _dir) = gateway(&["gpt-*"]).await;
    let route = format!("{}/team-a", g.base_url());
    let (code, table) = check(&[
        "--route",
        &route,
        "--token",
        CLIENT_KEY,
        "--model",
        "gpt-4.1",
        "--claude-code-model",
        "claude-sonnet-4",
        "--anthropic-model",
        "gpt-4.1",
    ])
    .await;
    assert_eq!(code, 1, "{table}");
    let claude = rows(&table, "Claude Code");
    let stream = claude
        .iter()
        .find(|r| r.contains("Messages stream"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        stream.contains("FAIL")
            && stream.contains("HTTP 404 (want 200)")
            && stream.contains("claude-sonnet-4"),
        "the reason is the gateway's: {table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Claude Code") && l.ends_with("  FAILS (1 of its checks)")),
        "{table}"
    );
    for agent in ["Codex", "OpenCode / OpenAI SDK", "Anthropic SDK"] {
        assert!(
            rows(&table, agent).iter().all(|r| r.contains("  pass  ")),
            "{agent}: {table}"
        );
    }
}

#[tokio::test]
async fn a_wrong_token_or_no_gateway_fails_every_check() {
    let (g, _dir) = gateway(&["*"]).await;
    let route = format!("{}/team-a", g.base_url());
    let (code, table) = check(&[
        "--route",
        &route,
        "--token",
        "not-the-key",
        "--model",
        "gpt-4.1",
    ])
    .await;
    assert_eq!(code, 1, "{table}");
    let stream = rows(&table, "Codex")
        .into_iter()
        .find(|r| r.contains("Responses stream"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        stream.contains("FAIL") && stream.contains("HTTP 401 (want 200)"),
        "{table}"
    );

    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let (code, table) = check(&["--route", &nowhere, "--token", CLIENT_KEY, "--model", "m"]).await;
    assert_eq!(code, 1, "{table}");
    assert!(
        table
            .lines()
            .filter(|l| l.contains("  FAIL  "))
            .all(|l| l.contains("cannot reach")),
        "{table}"
    );
    assert!(!table.contains("  pass  "), "{table}");

    // Without a model and without a list to take one from, it cannot run.
    let (code, text) = check(&["--route", &nowhere, "--token", CLIENT_KEY]).await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no --model given"), "{text}");
}
