//! Status, leadership and recovery against a real API server (see `kubernetes.rs` for how to
//! run the suite): status is written only when its meaning changes and Event notes never go
//! stale; a new leader starts from the live objects; `Programmed` counts the data planes of
//! every replica and the leader hands over under traffic; watches resume quickly after the API
//! server restarts.
//!
//! Every controller runs under a ServiceAccount bound only to the documented RBAC.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_e2e::kube::{Cluster, KubeController, KubeControllerOptions, WAIT};
use switchboard_e2e::kube_scenario::{
    OwnCluster, chat, events, kubeconfig_via, list, mock_backend, resource_versions, route,
};
use switchboard_e2e::tcp_proxy::TcpProxy;
use switchboard_e2e::wait_until;

/// Short leases, so a handover takes seconds.
fn fast_lease() -> Vec<String> {
    [
        "--lease-duration",
        "4s",
        "--lease-renew-deadline",
        "3s",
        "--lease-retry-period",
        "500ms",
    ]
    .map(String::from)
    .to_vec()
}

fn options(ns: &str, identity: &str) -> KubeControllerOptions {
    KubeControllerOptions {
        namespaces: vec![ns.to_string()],
        identity: Some(identity.to_string()),
        args: fast_lease(),
        ..Default::default()
    }
}

fn lease(cluster: &Cluster, ns: &str) -> Value {
    let text = cluster
        .kubectl(
            &[
                "get",
                "lease",
                "-n",
                ns,
                "switchboard-controller",
                "-o",
                "json",
            ],
            None,
        )
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The data-plane view Lease of replica `identity`, if it exists.
fn view(cluster: &Cluster, ns: &str, identity: &str) -> Option<Value> {
    let name = format!("switchboard-controller-view-{identity}");
    let text = cluster
        .kubectl(&["get", "lease", "-n", ns, &name, "-o", "json"], None)
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// The note of the newest `Programmed` Event about the AIRoute `name` (empty when none).
fn newest_programmed_note(events: &[Value], name: &str) -> String {
    let mut programmed: Vec<&Value> = events
        .iter()
        .filter(|e| e["regarding"]["name"] == name && e["reason"] == "Programmed")
        .collect();
    programmed.sort_by_key(|e| {
        e["series"]["lastObservedTime"]
            .as_str()
            .or(e["eventTime"].as_str())
            .unwrap_or_default()
            .to_string()
    });
    programmed
        .last()
        .and_then(|e| e["note"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn holder(cluster: &Cluster, ns: &str) -> String {
    lease(cluster, ns)["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn wait_holder(cluster: &Cluster, ns: &str, identity: &str) {
    wait_until(WAIT, &format!("{identity} holds the Lease"), || async {
        holder(cluster, ns) == identity
    })
    .await;
}

/// Waits until `object`'s `Programmed` condition describes generation `generation` and is True.
fn wait_programmed(
    cluster: &Cluster,
    ns: &str,
    object: &str,
    generation: i64,
    log: impl Fn() -> String,
) {
    let observed = format!(
        "jsonpath={{.status.conditions[?(@.type==\"Programmed\")].observedGeneration}}={generation}"
    );
    cluster.wait_for(ns, &observed, &[object], &log);
    cluster.wait_for(ns, "condition=Programmed=True", &[object], &log);
}

#[tokio::test]
async fn status_is_written_only_when_its_meaning_changes() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("writes");
    let mut objects = vec![mock_backend(&ns, "echo", "hi")];
    for i in 0..40 {
        objects.push(route(
            &ns,
            &format!("r{i}"),
            &[],
            &format!("/r{i}"),
            "echo",
            json!({}),
        ));
    }
    cluster.apply(&list(objects));
    let controller = KubeController::start(&cluster, &options(&ns, &format!("{ns}-a")));
    let log = || format!("controller log:\n{}", controller.log_tail());
    let _gateway = controller.start_dataplane(&[], true).await;
    cluster.wait_for(
        &ns,
        "condition=Programmed=True",
        &["airoutes", "--all"],
        log,
    );
    cluster.wait_for(&ns, "condition=Programmed=True", &["aibackend/echo"], log);
    let before = resource_versions(&cluster, &ns);
    let writes_before = controller
        .metric_sum("switchboard_controller_status_writes_total", &[])
        .await;

    // Five one-object changes, each waited for until every data plane runs it.
    const CHANGES: i64 = 5;
    for i in 1..=CHANGES {
        cluster.must(
            &[
                "patch",
                "-n",
                &ns,
                "airoute/r0",
                "--type=merge",
                "-p",
                &json!({"spec": {"maxRequestBodyBytes": 1_000_000 + i}}).to_string(),
            ],
            None,
        );
        wait_programmed(&cluster, &ns, "airoute/r0", 1 + i, log);
    }
    let after = resource_versions(&cluster, &ns);
    let rewritten: Vec<&String> = before
        .iter()
        .filter(|(k, rv)| k.as_str() != "AIRoute/r0" && after.get(*k) != Some(*rv))
        .map(|(k, _)| k)
        .collect();
    assert!(
        rewritten.is_empty(),
        "objects that did not change were rewritten: {rewritten:?}"
    );
    let writes = controller
        .metric_sum("switchboard_controller_status_writes_total", &[])
        .await
        - writes_before;
    println!("status writes for {CHANGES} one-object changes among 41 objects: {writes}");
    assert!(
        writes >= CHANGES as f64 && writes <= 2.0 * CHANGES as f64,
        "{writes} status writes for {CHANGES} one-object changes"
    );

    // Event notes describe what they were recorded for; no Event for routine Pending states.
    let all = events(&cluster, &ns);
    assert!(
        !all.iter().any(|e| e["reason"] == "Pending"),
        "no Pending Events"
    );
    assert!(
        !all.iter().any(|e| e["type"] == "Warning"),
        "no Warning Events for routine changes"
    );
    // The Event of a transition is recorded after the status that makes it (a write of its
    // own): the condition seen above does not mean the Event is there yet.
    let expected = format!(
        "Programmed is True: 1 of 1 connected data planes run generation {}",
        1 + CHANGES
    );
    let mut latest = String::new();
    let deadline = Instant::now() + WAIT;
    while latest != expected && Instant::now() < deadline {
        latest = newest_programmed_note(&events(&cluster, &ns), "r0");
        if latest != expected {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        latest, expected,
        "the newest note is about the newest generation"
    );
    assert_eq!(
        cluster.condition(&ns, "aibackend/echo", "ResolvedRefs", "message"),
        "the spec references no AIBackend, AITeam or Secret"
    );
}

#[tokio::test]
async fn a_new_leader_starts_from_the_live_objects() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("takeover");
    cluster.apply(&list(vec![
        mock_backend(&ns, "echo", "hi"),
        route(&ns, "main", &[], "/", "echo", json!({})),
    ]));
    let a_id = format!("{ns}-a");
    let b_id = format!("{ns}-b");
    let mut a = KubeController::start(&cluster, &options(&ns, &a_id));
    wait_holder(&cluster, &ns, &a_id).await;
    cluster.wait_for(
        &ns,
        "condition=Accepted=True",
        &["airoute/main", "aibackend/echo"],
        || format!("controller log:\n{}", a.log_tail()),
    );
    // B starts with the statuses A wrote, then follows.
    let b = KubeController::start(&cluster, &options(&ns, &b_id));
    let log = || format!("controller log:\n{}", b.log_tail());
    wait_until(WAIT, "B rendered", || async {
        b.metric_sum("switchboard_controller_renders_total", &[])
            .await
            > 0.0
    })
    .await;
    let transitions = lease(&cluster, &ns)["spec"]["leaseTransitions"]
        .as_i64()
        .unwrap_or(0);

    // Someone changes the status in the cluster while A leads (A does not look).
    cluster.must(
        &[
            "patch",
            "-n",
            &ns,
            "airoute/main",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Accepted","status":"False","reason":"Tampered","message":"not true","lastTransitionTime":"2020-01-01T00:00:00Z"}]}}"#,
        ],
        None,
    );
    // A shuts down gracefully and releases the Lease (and withdraws its data-plane view); B
    // takes over and corrects the status.
    a.terminate();
    assert!(
        view(&cluster, &ns, &a_id).is_none(),
        "a replica that shuts down deletes its view\n{}",
        a.log()
    );
    wait_holder(&cluster, &ns, &b_id).await;
    cluster.wait_for(&ns, "condition=Accepted=True", &["airoute/main"], log);
    assert_eq!(
        cluster.condition(&ns, "airoute/main", "Programmed", "reason"),
        "NoDataPlanes"
    );
    assert_eq!(
        lease(&cluster, &ns)["spec"]["leaseTransitions"].as_i64(),
        Some(transitions + 1),
        "taking over a released Lease is a transition"
    );
}

#[tokio::test]
async fn the_leader_hands_over_under_traffic_and_programmed_counts_every_replica() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("handover");
    cluster.apply(&list(vec![
        mock_backend(&ns, "echo", "v1"),
        route(&ns, "main", &[], "/", "echo", json!({})),
    ]));
    let a_id = format!("{ns}-a");
    let b_id = format!("{ns}-b");
    let mut a = KubeController::start(&cluster, &options(&ns, &a_id));
    wait_holder(&cluster, &ns, &a_id).await;
    let b = KubeController::start(&cluster, &options(&ns, &b_id));
    let log = || format!("B:\n{}", b.log_tail());
    // Two "Services": data plane 1 lands on A, data plane 2 on B; each fails over to the other.
    let to_a = TcpProxy::start(&[a.grpc_port(), b.grpc_port()]).await;
    let to_b = TcpProxy::start(&[b.grpc_port(), a.grpc_port()]).await;
    let dp1 = b.start_dataplane_at(&to_a.url(), &[], true).await;
    let dp2 = b.start_dataplane_at(&to_b.url(), &[], true).await;
    let everywhere = "jsonpath={.status.conditions[?(@.type==\"Programmed\")].message}=2 of 2 connected data planes run generation 1";
    cluster.wait_for(&ns, everywhere, &["airoute/main", "aibackend/echo"], || {
        format!("A:\n{}\n{}", a.log_tail(), log())
    });

    // Traffic through both data planes, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(AtomicU32::new(0));
    let (s, f, n) = (stop.clone(), failures.clone(), sent.clone());
    let (dp1_url, dp2_url) = (dp1.base_url(), dp2.base_url());
    let traffic = tokio::spawn(async move {
        let mut last_error = None;
        while !s.load(Ordering::Relaxed) {
            for url in [&dp1_url, &dp2_url] {
                let (status, _, body) = switchboard_e2e::post_json(
                    &format!("{url}/v1/chat/completions"),
                    &[],
                    &switchboard_e2e::stack::chat_body("m", false),
                )
                .await;
                n.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    f.fetch_add(1, Ordering::Relaxed);
                    last_error = Some(format!("{status}: {}", String::from_utf8_lossy(&body)));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last_error
    });

    // The leader dies without a word.
    a.kill();
    wait_holder(&cluster, &ns, &b_id).await;
    wait_until(WAIT, "data plane 1 reconnects to B", || async {
        b.metric_sum("switchboard_controller_connected_dataplanes", &[])
            .await
            == 2.0
    })
    .await;
    // A change after the handover: served by both, and its status written by B alone.
    cluster.apply(&list(vec![mock_backend(&ns, "echo", "v2")]));
    wait_until(WAIT, "both data planes serve the change", || async {
        chat(&dp1, "any", "/", None).await.text() == "v2"
            && chat(&dp2, "any", "/", None).await.text() == "v2"
    })
    .await;
    let now_everywhere = "jsonpath={.status.conditions[?(@.type==\"Programmed\")].message}=2 of 2 connected data planes run generation 2";
    cluster.wait_for(&ns, now_everywhere, &["aibackend/echo"], log);
    stop.store(true, Ordering::Relaxed);
    let last_error = traffic.await.unwrap();
    // The view of the replica that died without a word is deleted by the leader once expired
    // for four lease durations.
    assert!(view(&cluster, &ns, &b_id).is_some());
    wait_until(WAIT, "the dead replica's view is deleted", || async {
        view(&cluster, &ns, &a_id).is_none()
    })
    .await;
    let total = sent.load(Ordering::Relaxed);
    println!(
        "requests during the handover: {total}, failed: {}",
        failures.load(Ordering::Relaxed)
    );
    assert!(total > 0);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "no request failed during the handover; last error: {last_error:?}"
    );
}

#[tokio::test]
async fn watches_resume_quickly_after_the_api_server_restarts() {
    if Cluster::get().is_none() {
        return;
    }
    let Some(own) = OwnCluster::start("restart") else {
        return;
    };
    let cluster = &own.cluster;
    cluster.apply_crds();
    let ns = cluster.namespace("restart");
    cluster.apply(&list(vec![
        mock_backend(&ns, "echo", "before"),
        route(&ns, "main", &[], "/", "echo", json!({})),
    ]));
    // The controller reaches the API server through a proxy that follows it to its new port.
    let api = TcpProxy::start(&[own.port()]).await;
    let account = cluster.controller_kubeconfig(std::slice::from_ref(&ns), &ns);
    let mut opts = options(&ns, &format!("{ns}-a"));
    opts.kubeconfig = Some(kubeconfig_via(&account, api.port()));
    let controller = KubeController::start(cluster, &opts);
    let gateway = controller.start_dataplane(&[], true).await;
    assert_eq!(chat(&gateway, "any", "/", None).await.text(), "before");

    own.down();
    api.cut();
    own.up();
    api.set_upstreams(&[own.port()]);
    let back = Instant::now();
    cluster.apply(&list(vec![mock_backend(&ns, "echo", "after")]));
    wait_until(
        WAIT,
        "the change made after the restart is served",
        || async { chat(&gateway, "any", "/", None).await.text() == "after" },
    )
    .await;
    let took = back.elapsed();
    println!("API server back → change served: {took:?}");
    // Failed watches are retried at most 2 s apart; 10 s leaves room for a loaded machine.
    assert!(
        took < Duration::from_secs(10),
        "watches resumed {took:?} after the API server came back\n{}",
        controller.log_tail()
    );
    cluster.wait_for(
        &ns,
        "condition=Programmed=True",
        &["aibackend/echo"],
        || controller.log_tail(),
    );
}
