//! Kubernetes mode end to end, against a real API server: the CRDs from `crds/`, the real
//! `switchboard-controller --source kube` and a real data plane connected to it.
//!
//! `scripts/test` starts a real kube-apiserver (`../shared/k8s/test-cluster`) and sets
//! `SWITCHBOARD_TEST_REQUIRE_KUBE=1`, so in CI this suite fails instead of skipping when no
//! cluster answers. By hand:
//!
//! ```text
//! eval "$(../shared/k8s/test-cluster start /tmp/cluster)"
//! cargo test -p switchboard-e2e --test kubernetes
//! ```
//!
//! Every wait is a watch (`kubectl wait --for=condition=...`) or an awaited condition, never
//! a fixed sleep. Each test works in a fresh namespace of its own.

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::kube::{Cluster, KubeController, KubeControllerOptions, WAIT, rbac_fixture};
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Gateway, post_json, wait_until};

fn resources(ns: &str, reply: &str) -> String {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
         "metadata": {"name": "echo", "namespace": ns},
         "spec": {"provider": "Mock", "mock": {"reply": reply}}},
        {"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
         "metadata": {"name": "main", "namespace": ns},
         "spec": {"pathPrefix": "/", "rules": [{"models": ["*"], "backends": [{"name": "echo"}]}]}},
    ]});
    list.to_string()
}

async fn ask(gateway: &Gateway) -> Result<String, String> {
    let url = format!("{}/v1/chat/completions", gateway.base_url());
    let (status, _, body) = post_json(&url, &[], &chat_body("any-model", false)).await;
    if status != 200 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    let json = switchboard_e2e::client::json_body(&body);
    Ok(json["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[tokio::test]
async fn controller_reconciles_a_real_cluster() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("reconcile");

    // Resources first, then the controller: its first snapshot serves them.
    cluster.apply(&resources(&ns, "hello from the cluster"));
    let controller = KubeController::start(
        &cluster,
        &KubeControllerOptions {
            namespaces: vec![ns.clone()],
            ..Default::default()
        },
    );
    let wait_for = |condition: &str, objects: &[&str]| {
        cluster.wait_for(&ns, condition, objects, || {
            format!("controller log:\n{}", controller.log_tail())
        })
    };
    wait_for(
        "condition=Accepted=True",
        &["aibackend/echo", "airoute/main"],
    );
    wait_for("condition=Programmed=Unknown", &["airoute/main"]);

    // A data plane connects: both objects become Programmed, and traffic flows.
    let gateway = controller.start_dataplane(&[], true).await;
    wait_for(
        "condition=Programmed=True",
        &["aibackend/echo", "airoute/main"],
    );
    assert!(
        cluster
            .condition(&ns, "airoute/main", "Programmed", "message")
            .starts_with("1 of 1 connected data planes")
    );
    assert_eq!(ask(&gateway).await.as_deref(), Ok("hello from the cluster"));

    // An update reaches the data plane.
    cluster.apply(&resources(&ns, "updated"));
    wait_until(WAIT, "the data plane serves the update", || async {
        ask(&gateway).await.as_deref() == Ok("updated")
    })
    .await;

    // A bad edit the schema cannot see (a Secret that does not exist; what the schema can see,
    // `kubectl apply` refuses: kubernetes_validation.rs): the status names the field at fault,
    // the backend's last accepted generation keeps serving, and the route using it keeps working.
    cluster.must(
        &[
            "patch",
            "-n",
            &ns,
            "aibackend/echo",
            "--type=merge",
            "-p",
            r#"{"spec":{"credentials":{"secretRef":{"name":"missing"}}}}"#,
        ],
        None,
    );
    wait_for("condition=ResolvedRefs=False", &["aibackend/echo"]);
    let message = cluster.condition(&ns, "aibackend/echo", "ResolvedRefs", "message");
    assert!(
        message.contains("spec.credentials.secretRef.name"),
        "{message}"
    );
    wait_for(
        "jsonpath={.status.conditions[?(@.type==\"Programmed\")].reason}=ServingLastAccepted",
        &["aibackend/echo"],
    );
    let programmed = cluster.condition(&ns, "aibackend/echo", "Programmed", "message");
    assert!(
        programmed.contains("serve generation 2, the last accepted"),
        "{programmed}"
    );
    assert_eq!(
        cluster.condition(&ns, "airoute/main", "ResolvedRefs", "status"),
        "True"
    );
    assert_eq!(ask(&gateway).await.as_deref(), Ok("updated"));
    let events = cluster.must(&["get", "events", "-n", &ns, "-o", "name"], None);
    assert!(
        !events.trim().is_empty(),
        "transitions are recorded as Events"
    );
    // Everything above ran under the documented RBAC only, without a refusal.
    let log = controller.log();
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}

/// The controller checks its RBAC at startup: without a permission the docs grant, it stops at
/// once and names what is missing (instead of retrying a watch or a write forever).
#[tokio::test]
async fn a_missing_permission_stops_the_controller_naming_it() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("rbac");
    let without_event_patch = rbac_fixture().replace("verbs: [create, patch]", "verbs: [create]");
    assert_ne!(without_event_patch, rbac_fixture());
    let kubeconfig = cluster.controller_kubeconfig_with(
        &without_event_patch,
        "-no-event-patch",
        std::slice::from_ref(&ns),
        &ns,
    );
    let mut controller = KubeController::start(
        &cluster,
        &KubeControllerOptions {
            namespaces: vec![ns.clone()],
            kubeconfig: Some(kubeconfig),
            ..Default::default()
        },
    );
    let status = controller.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the controller keeps running without a permission it needs: {status:?}\n{}",
        controller.log_tail()
    );
    let log = controller.log();
    assert!(
        log.contains(&format!("patch events (events.k8s.io) in namespace {ns}")),
        "{log}"
    );
}

/// Tests in one process set up the controller's RBAC in parallel, and the first setup of a
/// ServiceAccount creates cluster-wide objects (ClusterRoles, ClusterRoleBindings) that every
/// test shares: sixteen threads setting up the same fresh account at once must all succeed.
/// (A client-side `kubectl apply` reads, then creates: all but one lost with `AlreadyExists`.)
#[test]
fn parallel_rbac_setups_of_one_account_all_succeed() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let suffix = format!("-parallel-{}", std::process::id());
    let fixture = rbac_fixture();
    let kubeconfigs = std::thread::scope(|scope| {
        let setups: Vec<_> = (0..16)
            .map(|_| {
                scope
                    .spawn(|| cluster.controller_kubeconfig_with(&fixture, &suffix, &[], "default"))
            })
            .collect();
        setups
            .into_iter()
            .map(|setup| setup.join().expect("an RBAC setup failed"))
            .collect::<Vec<_>>()
    });
    assert!(kubeconfigs.windows(2).all(|w| w[0] == w[1]));
    let binding = format!("switchboard-controller-tokenreviews{suffix}-e2e");
    let roles = cluster.must(
        &[
            "get",
            "clusterrolebinding",
            &binding,
            "-o",
            "jsonpath={.roleRef.name}",
        ],
        None,
    );
    assert_eq!(
        roles,
        format!("switchboard-controller-tokenreviews{suffix}")
    );
}
