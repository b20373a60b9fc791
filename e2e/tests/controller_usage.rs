//! AITeam usage reaches the controller when a data plane stops, through the real binaries
//! (`switchboard-controller --source dir:PATH`, `switchboard-dataplane --controller URL`): after
//! its listeners drained, a stopping data plane reports its usage one last time.

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::client::get_json;
use switchboard_e2e::harness::{temp_dir, write_file_atomic};
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Controller, Gateway, post_json, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// A platform route whose callers must belong to an AITeam.
const PLATFORM: &str = include_str!("fixtures/aiteams/platform.yaml");

/// The AITeam (2 requests a minute) in a namespace of its own, its API key in a Secret there.
const TEAM: &str = include_str!("fixtures/aiteams/team-a.yaml");

async fn chat(g: &Gateway) -> u16 {
    let url = format!("{}/v1/chat/completions", g.base_url());
    let mut body = chat_body("claude-sonnet-4", false);
    body["messages"] = json!([{"role": "user", "content": "hello"}]);
    let (status, _, _) =
        post_json(&url, &[("authorization", "Bearer sb-payments-ci")], &body).await;
    status.as_u16()
}

#[tokio::test]
async fn a_stopping_data_plane_reports_the_usage_it_had_not_reported_yet() {
    let dir = temp_dir("usage-at-stop");
    write_file_atomic(&dir.join("platform.yaml"), PLATFORM);
    write_file_atomic(&dir.join("team-a.yaml"), TEAM);
    let controller = Controller::start(&dir).await;
    // Reports every hour: on its own only the report at connect (before any request) goes out.
    let mut gateway = controller
        .start_dataplane(&[], &["--usage-report-interval", "1h"], true)
        .await;
    // Within the team's two requests a minute.
    for _ in 0..2 {
        assert_eq!(chat(&gateway).await, 200);
    }
    let local = get_json(&format!("{}/usage", gateway.admin_url())).await;
    let tokens = &local["teams"][0]["tokensToday"];
    assert!(tokens.as_u64().is_some_and(|t| t > 0), "{local}");
    let reported = format!("{}/usage", controller.admin_url());
    assert!(
        get_json(&reported).await["teams"]["team-a/payments"].is_null(),
        "nothing reported before the stop"
    );

    assert!(gateway.terminate().await.success(), "a clean exit");
    wait_until(
        WAIT,
        "the controller counts the stopped data plane's usage",
        || async {
            get_json(&reported).await["teams"]["team-a/payments"]["tokensToday"] == *tokens
        },
    )
    .await;
}
