//! AITeams against a real API server: a team in a namespace of its own,
//! referenced by a platform route in another namespace; its limits enforced
//! on a real data plane, its conditions, and its live usage in
//! `status.usage` and in the columns of `kubectl get aiteams`. A route whose
//! team reference does not resolve stays served, with `ResolvedRefs=False`.
//! With two controller replicas, each with a data plane of its own, the
//! status shows the sum of both data planes' usage.
//!
//! Run like the rest of the Kubernetes suite (see `kubernetes.rs`); skipped
//! without a cluster unless `SWITCHBOARD_TEST_REQUIRE_KUBE=1`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_e2e::kube::{Cluster, KubeController, KubeControllerOptions, WAIT};
use switchboard_e2e::kube_scenario::{list, wait_reason};
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Gateway, post_json, wait_until};

fn platform(ns: &str, team_ns: &str, extra_refs: &[Value]) -> Vec<Value> {
    let mut refs = vec![json!({"name": "payments", "namespace": team_ns})];
    refs.extend_from_slice(extra_refs);
    vec![
        json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
               "metadata": {"name": "mock", "namespace": ns},
               "spec": {"provider": "Mock", "mock": {"reply": "hello from the team's route"}}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys", "namespace": ns},
               "stringData": {"admin": "sb-admin"}}),
        json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
        "metadata": {"name": "main", "namespace": ns},
        "spec": {
            "auth": {"apiKeys": [{"name": "admin", "secretRef": {"name": "keys", "key": "admin"}}]},
            "rules": [{"backends": [{"name": "mock"}]}],
            "pricing": [{"model": "*", "input": 1000, "output": 1000}],
            "teams": {"teamRefs": refs},
        }}),
    ]
}

fn team(ns: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AITeam",
               "metadata": {"name": "payments", "namespace": ns},
               "spec": {"tier": "standard", "requestsPerMinute": 2,
                        "budget": {"usd": 100, "period": "week"},
                        "apiKeys": [{"name": "ci", "secretRef": {"name": "payments-keys", "key": "ci"}}]}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payments-keys", "namespace": ns},
               "stringData": {"ci": "sb-payments-ci"}}),
    ]
}

async fn chat(g: &Gateway, key: &str) -> (u16, Value) {
    let url = format!("{}/v1/chat/completions", g.base_url());
    let auth = format!("Bearer {key}");
    let (status, _, body) = post_json(
        &url,
        &[("authorization", auth.as_str())],
        &chat_body("claude-sonnet-4", false),
    )
    .await;
    (
        status.as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// Waits until at least `margin` seconds are left in the current UTC minute.
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

#[tokio::test]
async fn an_aiteams_limits_are_enforced_and_its_usage_shows_in_kubectl() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let platform_ns = cluster.namespace("aiteam-platform");
    let team_ns = cluster.namespace("aiteam-payments");
    let mut items = platform(&platform_ns, &team_ns, &[]);
    items.extend(team(&team_ns));
    cluster.apply(&list(items));

    let controller = KubeController::start(
        &cluster,
        &KubeControllerOptions {
            namespaces: vec![platform_ns.clone(), team_ns.clone()],
            args: vec!["--usage-status-interval".into(), "500ms".into()],
            ..Default::default()
        },
    );
    let log = || format!("controller log:\n{}", controller.log_tail());
    cluster.wait_for(
        &team_ns,
        "condition=Accepted=True",
        &["aiteam/payments"],
        log,
    );
    cluster.wait_for(
        &team_ns,
        "condition=ResolvedRefs=True",
        &["aiteam/payments"],
        log,
    );
    cluster.wait_for(
        &platform_ns,
        "condition=ResolvedRefs=True",
        &["airoute/main"],
        log,
    );

    let gateway = controller
        .start_dataplane(&["--usage-report-interval", "200ms"], true)
        .await;
    cluster.wait_for(
        &team_ns,
        "condition=Programmed=True",
        &["aiteam/payments"],
        log,
    );
    let programmed = cluster.condition(&team_ns, "aiteam/payments", "Programmed", "message");
    assert!(
        programmed.ends_with(&format!("served by AIRoute {platform_ns}/main")),
        "{programmed}"
    );

    // The team's limit (2 a minute) holds on the data plane.
    early_in_a_minute(40).await;
    for _ in 0..2 {
        let (status, body) = chat(&gateway, "sb-payments-ci").await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = chat(&gateway, "sb-payments-ci").await;
    assert_eq!(status, 429, "{body}");

    // The usage reaches the status within a few seconds (a watch, not a sleep).
    for (field, value) in [("requestsThisMinute", "3"), ("refusalsToday", "1")] {
        cluster.wait_for(
            &team_ns,
            &format!("jsonpath={{.status.usage.{field}}}={value}"),
            &["aiteam/payments"],
            log,
        );
    }
    let usage: Value = serde_json::from_str(&cluster.must(
        &[
            "get",
            "-n",
            &team_ns,
            "aiteam/payments",
            "-o",
            "jsonpath={.status.usage}",
        ],
        None,
    ))
    .unwrap();
    assert!(usage["tokensToday"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["spentUSD"].as_f64().unwrap() > 0.0, "{usage}");
    assert_eq!(usage["period"], "week");
    assert_eq!(usage["dataPlanes"], 1);
    assert!(usage["lastSeen"].is_string(), "{usage}");

    // `kubectl get aiteams` prints it in its columns.
    let table = cluster.must(&["get", "aiteams", "-n", &team_ns], None);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TIER",
            "REQ/MIN",
            "TOKENS TODAY",
            "USD",
            "REFUSED",
            "LAST SEEN",
            "PROGRAMMED",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["payments", "standard", "3"], "{table}");
    assert_eq!(row[3], usage["tokensToday"].to_string(), "{table}");
    assert_eq!(row[5], "1", "{table}");
    assert_eq!(row[7], "True", "{table}");

    // Usage is written under its own field manager, conditions under the controller's.
    let managers = cluster.must(
        &[
            "get",
            "-n",
            &team_ns,
            "aiteam/payments",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
        None,
    );
    let managers: Vec<&str> = managers.split_whitespace().collect();
    assert!(
        managers.contains(&"switchboard-controller-usage")
            && managers.contains(&"switchboard-controller"),
        "{managers:?}"
    );

    // A reference to a team that does not exist: the route stays served and says so.
    let ghost = json!({"name": "ghost", "namespace": team_ns});
    cluster.apply(&list(platform(&platform_ns, &team_ns, &[ghost])));
    wait_reason(
        &cluster,
        &platform_ns,
        "airoute/main",
        "ResolvedRefs",
        "TeamNotFound",
        log,
    );
    assert_eq!(
        cluster.condition(&platform_ns, "airoute/main", "Accepted", "status"),
        "True"
    );
    let (status, body) = chat(&gateway, "sb-admin").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "hello from the team's route"
    );
    let log = controller.log();
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}

/// An AITeam's tokens today as one data plane counted them (its admin `/usage`).
async fn tokens_on(g: &Gateway) -> u64 {
    let (_, _, body) = switchboard_e2e::get(&format!("{}/usage", g.admin_url()), &[]).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tokensToday"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn usage_from_data_planes_on_two_controller_replicas_is_summed_in_the_status() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let platform_ns = cluster.namespace("aiteam-sum-platform");
    let team_ns = cluster.namespace("aiteam-sum-payments");
    let mut items = platform(&platform_ns, &team_ns, &[]);
    items.extend(team(&team_ns));
    cluster.apply(&list(items));

    // Two replicas sharing one Lease, each with a data plane of its own: the
    // leader sums what both replicas' data planes report.
    let options = |identity: &str| KubeControllerOptions {
        namespaces: vec![platform_ns.clone(), team_ns.clone()],
        identity: Some(format!("{platform_ns}-{identity}")),
        args: [
            "--usage-status-interval",
            "500ms",
            "--lease-duration",
            "4s",
            "--lease-renew-deadline",
            "3s",
            "--lease-retry-period",
            "500ms",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let a = KubeController::start(&cluster, &options("a"));
    let b = KubeController::start(&cluster, &options("b"));
    let log = || format!("A:\n{}\nB:\n{}", a.log_tail(), b.log_tail());
    let report = ["--usage-report-interval", "200ms"];
    let dp_a = a.start_dataplane(&report, true).await;
    let dp_b = b.start_dataplane(&report, true).await;
    cluster.wait_for(
        &team_ns,
        "condition=Programmed=True",
        &["aiteam/payments"],
        log,
    );

    // The route's default tier is explicit in the stored object and its status.
    let stored = cluster.must(
        &[
            "get",
            "-n",
            &platform_ns,
            "airoute/main",
            "-o",
            "jsonpath={.spec.teams.defaultTier}",
        ],
        None,
    );
    assert_eq!(stored, "sandbox");
    let accepted = cluster.condition(&platform_ns, "airoute/main", "Accepted", "message");
    assert!(
        accepted.ends_with(
            "callers that map to no team get the default tier sandbox (20 requests per minute, 100000 tokens per day, each caller on its own)"
        ),
        "{accepted}"
    );

    // Each data plane counts the team's 2 a minute on its own (memory store):
    // three requests on each, the third refused.
    early_in_a_minute(40).await;
    for g in [&dp_a, &dp_b] {
        for i in 0..3 {
            let (status, body) = chat(g, "sb-payments-ci").await;
            assert_eq!(status, if i < 2 { 200 } else { 429 }, "{body}");
        }
    }
    for (field, value) in [
        ("dataPlanes", "2"),
        ("requestsThisMinute", "6"),
        ("refusalsToday", "2"),
    ] {
        cluster.wait_for(
            &team_ns,
            &format!("jsonpath={{.status.usage.{field}}}={value}"),
            &["aiteam/payments"],
            log,
        );
    }
    // Tokens are charged as each answer ends: the status converges on the sum.
    wait_until(WAIT, "status.usage.tokensToday is the sum", || async {
        let (on_a, on_b) = (tokens_on(&dp_a).await, tokens_on(&dp_b).await);
        let shown = cluster.must(
            &[
                "get",
                "-n",
                &team_ns,
                "aiteam/payments",
                "-o",
                "jsonpath={.status.usage.tokensToday}",
            ],
            None,
        );
        on_a > 0 && on_b > 0 && shown.trim() == (on_a + on_b).to_string()
    })
    .await;
}
