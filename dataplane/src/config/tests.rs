//! Applying configurations: a configuration that would leave no route is
//! refused (item 8 of issue 12), and a refused configuration changes no live
//! state (item 9).

use std::sync::Arc;

use http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use switchboard_proto as pb;

use super::apply_snapshot;
use crate::pipeline::testing::{Harness, backend, chat, route, snapshot};

fn docs() -> Vec<serde_json::Value> {
    vec![
        backend("primary", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary"]),
    ]
}

async fn readyz(h: &Harness) -> (u16, String) {
    let resp =
        crate::server::handle_admin(h.state.clone(), Request::get("/readyz").body(()).unwrap())
            .await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_configuration_without_routes_is_refused_and_the_last_good_one_serves() {
    let h = Harness::new(&docs());
    let served = h.state.store.version();
    for empty in [
        pb::Snapshot {
            version: "empty".into(),
            ..Default::default()
        },
        snapshot(&[backend("primary", "OpenAI", &["gpt-test"])]),
    ] {
        let problems = apply_snapshot(&h.state, &empty).expect_err("refused");
        assert!(problems[0].message.contains("no AIRoute"), "{problems:?}");
        assert_eq!(h.state.store.version(), served);
    }
    let (status, _, _) = h
        .post("/v1/chat/completions", &chat("gpt-test", false))
        .await;
    assert_eq!(status, 200, "the last good configuration keeps serving");
    assert_eq!(readyz(&h).await.0, 200);
    assert!(
        h.metrics()
            .contains("switchboard_config_rejections_total 2")
    );
}

#[tokio::test]
async fn with_the_flag_an_empty_configuration_applies_and_readyz_says_no_routes() {
    let h = Harness::with(&docs(), |s| s.allow_empty_config = true);
    let empty = snapshot(&[backend("primary", "OpenAI", &["gpt-test"])]);
    assert_eq!(apply_snapshot(&h.state, &empty), Ok(true));
    let (status, body) = readyz(&h).await;
    assert_eq!(status, 503);
    assert!(body.contains("has no routes"), "{body}");
}

#[tokio::test]
async fn a_refused_configuration_leaves_circuit_breakers_untouched() {
    let mut primary = backend("primary", "OpenAI", &["gpt-test"]);
    primary["spec"]["ejection"] = json!({"consecutiveFailures": 3});
    let h = Harness::new(&[
        primary.clone(),
        backend("other", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary", "other"]),
    ]);
    let breakers = &h.state.shared.breakers;
    let live = breakers.get("default/primary").unwrap();
    assert_eq!(live.settings().consecutive_failures, 3);
    // A new configuration that changes the ejection settings, drops a
    // backend and cannot build (the credential is missing).
    primary["spec"]["ejection"] = json!({"consecutiveFailures": 9});
    primary["spec"]["credentials"] = json!({"env": "NOT_SET_ANYWHERE"});
    let mut bad = snapshot(&[primary, route(&["gpt-*"], &["primary"])]);
    bad.version = "bad".into();
    assert!(apply_snapshot(&h.state, &bad).is_err());
    assert_eq!(
        live.settings().consecutive_failures,
        3,
        "settings unchanged"
    );
    assert!(breakers.get("default/other").is_some(), "members unchanged");
    assert!(Arc::ptr_eq(
        &breakers.get("default/primary").unwrap(),
        &live
    ));
}
