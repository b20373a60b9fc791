//! AITeams in standalone mode, through the real binary: the same YAML as in a
//! cluster (an AITeam in a namespace of its own, its API key in a Secret
//! there, a route referencing it), its limits enforced, its guards run, and
//! its live usage on the admin port's `/usage`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_e2e::client::{get_json, json_body};
use switchboard_e2e::harness::{temp_dir, write_file_atomic};
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Gateway, post_json};

/// A platform route whose callers must belong to an AITeam.
const PLATFORM: &str = include_str!("fixtures/aiteams/platform.yaml");

/// The AITeam (2 requests a minute) in a namespace of its own, its API key in a Secret there.
const TEAM: &str = include_str!("fixtures/aiteams/team-a.yaml");

/// Waits until at least `margin` seconds are left in the current UTC minute,
/// so requests counted per minute do not straddle two windows.
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

async fn chat(g: &Gateway, key: &str, text: &str) -> (u16, Value) {
    let url = format!("{}/v1/chat/completions", g.base_url());
    let auth = format!("Bearer {key}");
    let mut body = chat_body("claude-sonnet-4", false);
    body["messages"] = json!([{"role": "user", "content": text}]);
    let (status, _, bytes) = post_json(&url, &[("authorization", auth.as_str())], &body).await;
    (status.as_u16(), json_body(&bytes))
}

async fn usage(g: &Gateway) -> Value {
    get_json(&format!("{}/usage", g.admin_url())).await
}

#[tokio::test]
async fn an_aiteam_in_its_own_file_limits_its_callers_and_shows_its_usage() {
    let dir = temp_dir("aiteams");
    write_file_atomic(&dir.join("platform.yaml"), PLATFORM);
    write_file_atomic(&dir.join("team-a.yaml"), TEAM);
    early_in_a_minute(20).await;
    let g = Gateway::start(&dir, &[]).await;

    for _ in 0..2 {
        let (status, body) = chat(&g, "sb-payments-ci", "hello").await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = chat(&g, "sb-payments-ci", "hello").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate limit of 2 requests per minute exceeded (3 this minute); resets at "),
        "{body}"
    );
    // The route's own key belongs to no team, and the route refuses such callers.
    let (status, _) = chat(&g, "sb-admin", "hello").await;
    assert_eq!(status, 403);

    let u = usage(&g).await;
    let teams = u["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 1, "{u}");
    let t = &teams[0];
    assert_eq!(t["team"], "team-a/payments");
    assert_eq!(t["requestsThisMinute"], 3, "{u}");
    assert_eq!(t["refusalsToday"], 1, "{u}");
    assert!(t["tokensToday"].as_u64().unwrap() > 0, "{u}");
    assert_eq!(t["period"], "month");
    assert!(t["lastSeenUnixMs"].as_u64().unwrap() > 0);
    // The metrics name the team by namespace and name.
    let ok = g
        .metric_sum(
            "switchboard_team_requests_total",
            &[("team", "team-a/payments"), ("status", "200")],
        )
        .await;
    assert_eq!(ok, 2.0);
}

#[tokio::test]
async fn the_aiteams_example_serves_its_teams_and_runs_their_guards() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aiteams.yaml");
    let g = Gateway::start(&example, &[]).await;
    let (status, body) = chat(&g, "sb-payments-ci", "hello").await;
    assert_eq!(status, 200, "{body}");
    // The payments team's own guard, after the route's.
    let (status, body) = chat(&g, "sb-payments-ci", "my card number is 4111").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        "card numbers must not be sent to models"
    );
    // The research team has no such guard.
    let (status, body) = chat(&g, "sb-research-notebook", "my card number is 4111").await;
    assert_eq!(status, 200, "{body}");
    // The platform key is in no team: refused (refuseUnknown).
    let (status, _) = chat(&g, "sb-platform-admin", "hello").await;
    assert_eq!(status, 403);
    let teams: Vec<String> = usage(&g).await["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(teams, ["team-payments/payments", "team-research/research"]);
}
