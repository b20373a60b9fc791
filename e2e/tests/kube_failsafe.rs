//! The controller fails closed, against a real API server (see `kubernetes.rs` for how to run
//! the suite): a refused edit keeps the last accepted version of that one object (also across a
//! controller restart), a route that cannot be rebuilt answers 503 instead of falling through,
//! an object that does not decode blocks nothing (a CRD upgraded before the controller),
//! conflicting claims go to the oldest route, the claim policy is enforced, and the first
//! snapshot waits for every referenced Secret.
//!
//! Every controller runs under a ServiceAccount bound only to the documented RBAC. Waits are
//! watches (`kubectl wait`) or polled conditions; each test has namespaces of its own.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::kube::{Cluster, KubeController, KubeControllerOptions, WAIT};
use switchboard_e2e::kube_scenario::{
    api_key_auth, api_server_port, chat, events, kubeconfig_via, list, messages, mock_backend,
    route, secret, wait_reason,
};
use switchboard_e2e::tcp_proxy::TcpProxy;
use switchboard_e2e::wait_until;

fn options(namespaces: &[&str]) -> KubeControllerOptions {
    KubeControllerOptions {
        namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn merged(a: Value, b: Value) -> Value {
    let mut out = a;
    if let (Some(o), Value::Object(b)) = (out.as_object_mut(), b) {
        o.extend(b);
    }
    out
}

fn patch(cluster: &Cluster, ns: &str, object: &str, json_patch: Value) {
    cluster.must(
        &[
            "patch",
            "-n",
            ns,
            object,
            "--type=json",
            "-p",
            &json_patch.to_string(),
        ],
        None,
    );
}

#[tokio::test]
async fn a_refused_edit_keeps_the_last_accepted_route_and_traffic_never_falls_through() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("lastgood");
    let host = "team.example.com";
    let guarded = merged(
        api_key_auth("team-keys"),
        json!({"guards": {"blockedPatterns": [{"pattern": "secret-[0-9]+"}]}}),
    );
    cluster.apply(&list(vec![
        mock_backend(&ns, "llm", "from the team route"),
        mock_backend(&ns, "open", "from the open catch-all"),
        secret(&ns, "team-keys", "team-key-1"),
        route(&ns, "team", &[host], "/", "llm", guarded),
        route(&ns, "catch-all", &[], "/", "open", json!({})),
    ]));
    let mut controller = KubeController::start(&cluster, &options(&[&ns]));
    // The data plane reaches the controller through a proxy, as through a Service, so it
    // follows the controller across the restart below.
    let service = TcpProxy::start(&[controller.grpc_port()]).await;
    let gateway = controller
        .start_dataplane_at(&service.url(), &[], true)
        .await;
    let log = |c: &KubeController| format!("controller log:\n{}", c.log_tail());
    cluster.wait_for(
        &ns,
        "condition=Programmed=True",
        &["airoute/team", "airoute/catch-all"],
        || log(&controller),
    );
    assert_eq!(
        chat(&gateway, host, "/", Some("team-key-1")).await.text(),
        "from the team route"
    );
    assert_eq!(chat(&gateway, host, "/", None).await.status, 401);
    assert_eq!(
        chat(&gateway, "other.example.com", "/", None).await.text(),
        "from the open catch-all"
    );

    // Generation 2 has a regex that does not compile: refused, generation 1 keeps serving.
    patch(
        &cluster,
        &ns,
        "airoute/team",
        json!([{"op": "replace", "path": "/spec/guards/blockedPatterns/0/pattern", "value": "(unclosed"}]),
    );
    cluster.wait_for(&ns, "condition=Accepted=False", &["airoute/team"], || {
        log(&controller)
    });
    wait_reason(
        &cluster,
        &ns,
        "airoute/team",
        "Programmed",
        "ServingLastAccepted",
        || log(&controller),
    );
    let programmed = cluster.condition(&ns, "airoute/team", "Programmed", "message");
    assert!(
        programmed.contains("generation 2 is refused")
            && programmed.contains("serve generation 1, the last accepted"),
        "{programmed}"
    );
    let accepted = cluster.condition(&ns, "airoute/team", "Accepted", "message");
    assert!(
        accepted.contains("spec.guards.blockedPatterns[0].pattern"),
        "{accepted}"
    );
    assert_eq!(
        cluster.must(
            &[
                "get",
                "-n",
                &ns,
                "airoute/team",
                "-o",
                "jsonpath={.status.lastAccepted.generation}"
            ],
            None
        ),
        "1"
    );
    assert_eq!(
        chat(&gateway, host, "/", None).await.status,
        401,
        "the host's requests never reach the open catch-all"
    );
    assert_eq!(
        chat(&gateway, host, "/", Some("team-key-1")).await.text(),
        "from the team route"
    );

    // A restarted controller renders exactly the same snapshot from the objects' status.
    let served = gateway.config_version().await.expect("a version");
    controller.kill();
    let controller = KubeController::start(&cluster, &options(&[&ns]));
    service.set_upstreams(&[controller.grpc_port()]);
    service.cut();
    wait_until(WAIT, "the restarted controller renders", || async {
        controller
            .metric_sum(
                "switchboard_controller_snapshot_info",
                &[("version", &served)],
            )
            .await
            == 1.0
    })
    .await;
    wait_until(
        WAIT,
        "the data plane follows the new controller",
        || async {
            controller
                .metric_sum("switchboard_controller_connected_dataplanes", &[])
                .await
                == 1.0
        },
    )
    .await;
    assert_eq!(
        gateway.config_version().await.as_deref(),
        Some(served.as_str())
    );
    assert_eq!(chat(&gateway, host, "/", None).await.status, 401);

    // The Secret is deleted: the last accepted version cannot be rebuilt. The route becomes a
    // placeholder answering 503 in the client's dialect; the catch-all still never serves it.
    cluster.must(&["delete", "secret", "-n", &ns, "team-keys"], None);
    wait_reason(
        &cluster,
        &ns,
        "airoute/team",
        "Programmed",
        "Unavailable",
        || log(&controller),
    );
    let why = cluster.condition(&ns, "airoute/team", "Programmed", "message");
    assert!(why.contains("Secret \"team-keys\" not found"), "{why}");
    wait_until(WAIT, "the placeholder answers 503", || async {
        chat(&gateway, host, "/", Some("team-key-1")).await.status == 503
    })
    .await;
    let openai = chat(&gateway, host, "/", None).await;
    assert_eq!(openai.status, 503);
    let message = openai.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{ns}/team is unavailable")),
        "{}",
        openai.body
    );
    let anthropic = messages(&gateway, host, "/").await;
    assert_eq!(anthropic.status, 503);
    assert_eq!(anthropic.body["type"], "error", "{}", anthropic.body);
    assert_eq!(
        chat(&gateway, "other.example.com", "/", None).await.text(),
        "from the open catch-all"
    );

    // A route never accepted is simply absent (its host falls to the catch-all, as before it
    // existed), and says so.
    cluster.apply(&list(vec![route(
        &ns,
        "fresh",
        &["fresh.example.com"],
        "/",
        "llm",
        json!({"guards": {"blockedPatterns": [{"pattern": "(bad"}]}}),
    )]));
    wait_reason(
        &cluster,
        &ns,
        "airoute/fresh",
        "Programmed",
        "Invalid",
        || log(&controller),
    );
    let never = cluster.condition(&ns, "airoute/fresh", "Programmed", "message");
    assert!(
        never.contains("no generation of it was ever accepted"),
        "{never}"
    );
    assert_eq!(
        chat(&gateway, "fresh.example.com", "/", None).await.text(),
        "from the open catch-all"
    );
    assert!(
        !controller.log().contains('\u{1b}') && !gateway.log().contains('\u{1b}'),
        "no ANSI colour codes in log files"
    );
}

/// The CRDs of `crds/` as a newer release might ship them: a provider this controller does not
/// know, and route weights without an upper bound.
fn upgraded_crds() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let read = |f: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        serde_yaml::from_str(&text).unwrap()
    };
    let mut backends = read("aibackends.switchboard.dev.yaml");
    let spec =
        &mut backends["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    spec["properties"]["provider"]["enum"]
        .as_array_mut()
        .expect("a provider enum")
        .push(json!("FutureProvider"));
    let mut routes = read("airoutes.switchboard.dev.yaml");
    let rules = &mut routes["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["rules"];
    relax(rules);
    list(vec![backends, routes])
}

/// Removes bounds on every `weight` and every CEL rule under `schema`.
fn relax(schema: &mut Value) {
    if let Some(o) = schema.as_object_mut() {
        o.remove("x-kubernetes-validations");
        if let Some(Value::Object(props)) = o.get_mut("properties")
            && let Some(Value::Object(w)) = props.get_mut("weight")
        {
            for k in ["maximum", "minimum", "format", "exclusiveMaximum"] {
                w.remove(k);
            }
        }
        for v in o.values_mut() {
            relax(v);
        }
    } else if let Some(a) = schema.as_array_mut() {
        a.iter_mut().for_each(relax);
    }
}

#[tokio::test]
async fn objects_that_do_not_decode_block_nothing_after_a_crd_upgrade() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    // The CRDs are upgraded before the controller (a newer release's schema).
    cluster.must(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&upgraded_crds()),
    );
    let ns = cluster.namespace("decode");
    let marker = "reply-marker-7f3a";
    let huge = json!({"rules": [{"models": ["*"], "backends": [{"name": "echo", "weight": 4_294_967_296_u64}]}]});
    let mut big = route(&ns, "big", &[], "/big", "echo", json!({}));
    big["spec"]["rules"] = huge["rules"].clone();
    cluster.apply(&list(vec![
        mock_backend(&ns, "echo", marker),
        route(&ns, "main", &[], "/", "echo", json!({})),
        json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
               "metadata": {"name": "future", "namespace": ns},
               "spec": {"provider": "FutureProvider"}}),
        big,
    ]));
    let controller = KubeController::start(&cluster, &options(&[&ns]));
    let log = || format!("controller log:\n{}", controller.log_tail());
    // A fresh controller renders (the data plane becomes ready) and serves everything else.
    let gateway = controller.start_dataplane(&[], true).await;
    cluster.wait_for(&ns, "condition=Programmed=True", &["airoute/main"], log);
    assert_eq!(chat(&gateway, "any", "/", None).await.text(), marker);

    cluster.wait_for(
        &ns,
        "condition=Accepted=False",
        &["aibackend/future", "airoute/big"],
        log,
    );
    let future = cluster.condition(&ns, "aibackend/future", "Accepted", "message");
    assert!(
        future.starts_with(
            "the object cannot be decoded: spec.provider: unknown variant `FutureProvider`"
        ),
        "{future}"
    );
    let big = cluster.condition(&ns, "airoute/big", "Accepted", "message");
    assert!(
        big.contains("spec.rules[0].backends[0].weight") && big.contains("4294967296"),
        "{big}"
    );
    assert_eq!(
        cluster.condition(&ns, "airoute/big", "ResolvedRefs", "status"),
        "Unknown"
    );
    assert_eq!(
        cluster.condition(&ns, "airoute/big", "Programmed", "reason"),
        "Invalid"
    );

    // A running controller: an accepted route edited into an undecodable one keeps serving
    // its last accepted generation, and other changes of the kind still flow.
    let mut main = route(&ns, "main", &[], "/", "echo", json!({}));
    main["spec"]["rules"] = huge["rules"].clone();
    cluster.apply(&list(vec![main]));
    wait_reason(
        &cluster,
        &ns,
        "airoute/main",
        "Programmed",
        "ServingLastAccepted",
        log,
    );
    assert_eq!(chat(&gateway, "any", "/", None).await.text(), marker);
    cluster.apply(&list(vec![mock_backend(&ns, "echo", "changed")]));
    wait_until(WAIT, "the backend change is served", || async {
        chat(&gateway, "any", "/", None).await.text() == "changed"
    })
    .await;
    let text = controller.log();
    assert!(
        !text.contains(marker),
        "object bodies are never logged:\n{}",
        controller.log_tail()
    );
}

#[tokio::test]
async fn conflicting_claims_go_to_the_oldest_route() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    // The newcomer's namespace sorts first: namespace/name order alone would let it win.
    let owner = cluster.namespace("zowner");
    let newcomer = cluster.namespace("anew");
    let host = "shared.example.com";
    cluster.apply(&list(vec![
        mock_backend(&owner, "llm", "owner"),
        secret(&owner, "keys", "owner-key"),
        route(&owner, "api", &[host], "/team", "llm", api_key_auth("keys")),
    ]));
    let controller = KubeController::start(&cluster, &options(&[&owner, &newcomer]));
    let log = || format!("controller log:\n{}", controller.log_tail());
    let gateway = controller.start_dataplane(&[], true).await;
    cluster.wait_for(&owner, "condition=Programmed=True", &["airoute/api"], log);

    // A newer route in another namespace claims the same host and prefix, without auth.
    cluster.apply(&list(vec![
        mock_backend(&newcomer, "llm", "newcomer"),
        route(&newcomer, "api", &[host], "/team/", "llm", json!({})),
    ]));
    wait_reason(
        &cluster,
        &newcomer,
        "airoute/api",
        "Accepted",
        "Conflicted",
        log,
    );
    let why = cluster.condition(&newcomer, "airoute/api", "Accepted", "message");
    assert!(
        why.contains(&format!(
            "host \"{host}\" and path prefix \"/team\" is already claimed by AIRoute {owner}/api"
        )),
        "{why}"
    );
    assert_eq!(
        cluster.condition(&newcomer, "airoute/api", "Programmed", "reason"),
        "Conflicted"
    );
    assert_eq!(
        cluster.condition(&owner, "airoute/api", "Accepted", "status"),
        "True"
    );
    assert_eq!(
        chat(&gateway, host, "/team", None).await.status,
        401,
        "the owner's authentication still guards its prefix"
    );
    assert_eq!(
        chat(&gateway, host, "/team", Some("owner-key"))
            .await
            .text(),
        "owner"
    );

    // The owner goes: the claim passes to the newcomer.
    cluster.must(&["delete", "airoute", "-n", &owner, "api"], None);
    cluster.wait_for(&newcomer, "condition=Accepted=True", &["airoute/api"], log);
    wait_until(WAIT, "the newcomer serves the prefix", || async {
        chat(&gateway, host, "/team", None).await.text() == "newcomer"
    })
    .await;
}

#[tokio::test]
async fn the_claim_policy_limits_what_each_namespace_may_claim() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let a = cluster.namespace("claim-a");
    let b = cluster.namespace("claim-b");
    let mut opts = options(&[&a, &b]);
    opts.args = vec![
        "--route-claim".into(),
        format!("{a}=*/team-a"),
        "--route-claim".into(),
        format!("{b}=b.example.com"),
    ];
    cluster.apply(&list(vec![
        mock_backend(&a, "llm", "team a"),
        mock_backend(&b, "llm", "team b"),
        route(&a, "ok", &[], "/team-a/v1", "llm", json!({})),
        route(&a, "wide", &[], "/", "llm", json!({})),
        route(&b, "own", &["b.example.com"], "/", "llm", json!({})),
        route(&b, "grab", &[], "/team-a", "llm", json!({})),
    ]));
    let controller = KubeController::start(&cluster, &opts);
    let log = || format!("controller log:\n{}", controller.log_tail());
    let gateway = controller.start_dataplane(&[], true).await;
    cluster.wait_for(&a, "condition=Programmed=True", &["airoute/ok"], log);
    cluster.wait_for(&b, "condition=Programmed=True", &["airoute/own"], log);
    wait_reason(&cluster, &a, "airoute/wide", "Accepted", "NotAllowed", log);
    wait_reason(&cluster, &b, "airoute/grab", "Accepted", "NotAllowed", log);
    let why = cluster.condition(&b, "airoute/grab", "Accepted", "message");
    assert!(
        why.contains(&format!("namespace \"{b}\" may not claim any host and path prefix \"/team-a\" (allowed: {b}=b.example.com)")),
        "{why}"
    );
    assert_eq!(
        chat(&gateway, "x", "/team-a/v1", None).await.text(),
        "team a"
    );
    assert_eq!(
        chat(&gateway, "b.example.com", "/", None).await.text(),
        "team b"
    );
    assert_eq!(
        chat(&gateway, "x", "/team-a/v2", None).await.status,
        404,
        "nobody may serve /team-a itself on any host but team a"
    );
}

#[tokio::test]
async fn the_first_snapshot_waits_for_every_referenced_secret() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("firstsync");
    cluster.apply(&list(vec![
        mock_backend(&ns, "llm", "keyed"),
        mock_backend(&ns, "other", "other"),
        secret(&ns, "keys", "key-1"),
        route(&ns, "keyed", &[], "/keyed", "llm", api_key_auth("keys")),
        route(&ns, "plain", &[], "/plain", "other", json!({})),
    ]));
    // A slow API server: the controller's connections are held back longer than any timer
    // counted from its start (this sleep is the scenario, not a wait for a condition).
    let lease_ns = ns.clone();
    let account = cluster.controller_kubeconfig(std::slice::from_ref(&ns), &lease_ns);
    let slow = TcpProxy::start(&[api_server_port(&account)]).await;
    slow.hold();
    let mut opts = options(&[&ns]);
    opts.kubeconfig = Some(kubeconfig_via(&account, slow.port()));
    let controller = KubeController::start(&cluster, &opts);
    let log = || format!("controller log:\n{}", controller.log_tail());
    tokio::time::sleep(Duration::from_secs(7)).await;
    slow.release();
    let gateway = controller.start_dataplane(&[], true).await;
    assert_eq!(
        chat(&gateway, "any", "/keyed", Some("key-1")).await.text(),
        "keyed",
        "the first snapshot has the route with its Secret"
    );
    cluster.wait_for(
        &ns,
        "condition=Programmed=True",
        &["airoute/keyed", "airoute/plain"],
        log,
    );
    assert_eq!(
        controller
            .metric_sum(
                "switchboard_controller_renders_total",
                &[("result", "partial")]
            )
            .await,
        0.0,
        "no render ever missed the Secret"
    );
    assert!(
        !events(&cluster, &ns)
            .iter()
            .any(|e| e["reason"] == "SecretNotFound"),
        "no SecretNotFound was ever reported"
    );

    // Later, a generation referencing a Secret that does not exist (yet) is refused on its
    // own: the other change in the same apply is served, the last accepted generation keeps
    // serving with the old key, and the Secret's arrival makes the new generation accepted.
    cluster.apply(&list(vec![
        route(
            &ns,
            "keyed",
            &[],
            "/keyed",
            "llm",
            api_key_auth("late-keys"),
        ),
        mock_backend(&ns, "other", "other, changed"),
    ]));
    wait_until(WAIT, "the unrelated change is served", || async {
        chat(&gateway, "any", "/plain", None).await.text() == "other, changed"
    })
    .await;
    wait_reason(
        &cluster,
        &ns,
        "airoute/keyed",
        "Programmed",
        "ServingLastAccepted",
        log,
    );
    assert_eq!(
        cluster.condition(&ns, "airoute/keyed", "ResolvedRefs", "reason"),
        "SecretNotFound"
    );
    assert_eq!(
        chat(&gateway, "any", "/keyed", Some("key-1")).await.text(),
        "keyed"
    );
    cluster.apply(&list(vec![secret(&ns, "late-keys", "key-2")]));
    cluster.wait_for(&ns, "condition=Programmed=True", &["airoute/keyed"], log);
    wait_until(WAIT, "the new key is served", || async {
        chat(&gateway, "any", "/keyed", Some("key-2")).await.text() == "keyed"
    })
    .await;
    assert_eq!(
        chat(&gateway, "any", "/keyed", Some("key-1")).await.status,
        401
    );
}
