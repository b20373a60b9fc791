//! Who receives snapshots in Kubernetes mode, against a real API server: data planes prove
//! who they are with a ServiceAccount token (audience `switchboard-controller`) that the
//! controller checks with TokenReview; only the authorised ServiceAccount's tokens get
//! snapshots, and nobody else's ACK or NACK reaches status or Events. Tokens come from
//! `kubectl create token`. Runs like `kubernetes.rs` (skips without a cluster unless
//! `SWITCHBOARD_TEST_REQUIRE_KUBE=1`).

use serde_json::json;
use std::time::Duration;
use switchboard_e2e::kube::{
    Cluster, DATAPLANE_AUDIENCE, DATAPLANE_SERVICE_ACCOUNT, KubeController, KubeControllerOptions,
    WAIT, rbac_fixture,
};
use switchboard_e2e::pki::SERVER_NAME;
use switchboard_e2e::probe::{INJECTED_NACK, Outcome, Probe};
use switchboard_e2e::{harness::metric_sum, wait_until};

fn resources(ns: &str) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
         "metadata": {"name": "echo", "namespace": ns},
         "spec": {"provider": "Mock", "mock": {"reply": "hi"}}},
        {"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
         "metadata": {"name": "main", "namespace": ns},
         "spec": {"pathPrefix": "/", "rules": [{"models": ["*"], "backends": [{"name": "echo"}]}]}},
    ]})
    .to_string()
}

struct Setup {
    cluster: Cluster,
    ns: String,
    controller: KubeController,
    version: String,
}

async fn setup(prefix: &str) -> Option<Setup> {
    let cluster = Cluster::get()?;
    cluster.install_crds();
    let ns = cluster.namespace(prefix);
    cluster.apply(&resources(&ns));
    let controller = KubeController::start(
        &cluster,
        &KubeControllerOptions {
            namespaces: vec![ns.clone()],
            ..Default::default()
        },
    );
    cluster.wait_for(&ns, "condition=Accepted=True", &["airoute/main"], || {
        controller.log_tail()
    });
    let version = controller.served_version().await;
    Some(Setup {
        cluster,
        ns,
        controller,
        version,
    })
}

impl Setup {
    fn probe(&self, token: Option<String>, node_id: &str) -> Probe {
        Probe {
            url: self.controller.grpc_url(),
            ca: Some(self.controller.pki().ca()),
            server_name: Some(SERVER_NAME.into()),
            token,
            node_id: node_id.into(),
            version: self.version.clone(),
        }
    }

    fn token(&self, sa: &str, audience: &str, extra: &[&str]) -> String {
        self.cluster.create_token(&self.ns, sa, audience, extra)
    }
}

#[tokio::test]
async fn only_the_authorised_service_account_gets_snapshots_and_reaches_status() {
    let Some(s) = setup("snapauth").await else {
        return;
    };
    assert_eq!(s.controller.dataplane_namespace(), s.ns);
    s.cluster.service_account(&s.ns, "intruder");

    let cases = [
        ("no token", None, tonic::Code::Unauthenticated),
        (
            "not a token",
            Some("eyJhbGciOiJub25lIn0.e30.x".to_string()),
            tonic::Code::Unauthenticated,
        ),
        (
            "the authorised account, wrong audience",
            Some(s.token(DATAPLANE_SERVICE_ACCOUNT, "some-other-audience", &[])),
            tonic::Code::Unauthenticated,
        ),
        (
            "the authorised account, the API server's audience",
            Some(s.token(
                DATAPLANE_SERVICE_ACCOUNT,
                "https://kubernetes.default.svc.cluster.local",
                &[],
            )),
            tonic::Code::Unauthenticated,
        ),
        (
            "another account, right audience",
            Some(s.token("intruder", DATAPLANE_AUDIENCE, &[])),
            tonic::Code::PermissionDenied,
        ),
    ];
    for (what, token, code) in &cases {
        let outcome = s.probe(token.clone(), "intruder-0").run(WAIT).await;
        assert!(
            matches!(&outcome, Outcome::Refused(c, _) if c == code),
            "{what}: {outcome:?}\n{}",
            s.controller.log_tail()
        );
    }
    // Nothing they sent reached the fleet: no ACK, no NACK, no data plane, so the route is
    // still waiting for one, and no Event quotes the injected NACK.
    let m = s.controller.metrics().await;
    assert_eq!(
        metric_sum(&m, "switchboard_controller_acks_total", &[]),
        0.0
    );
    assert_eq!(
        metric_sum(&m, "switchboard_controller_nacks_total", &[]),
        0.0
    );
    assert_eq!(
        metric_sum(&m, "switchboard_controller_connected_dataplanes", &[]),
        0.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "switchboard_controller_dataplane_auth_total",
            &[("result", "unauthenticated")]
        ),
        4.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "switchboard_controller_dataplane_auth_total",
            &[("result", "permission_denied")]
        ),
        1.0
    );
    s.cluster.wait_for(
        &s.ns,
        "condition=Programmed=Unknown",
        &["airoute/main"],
        || s.controller.log_tail(),
    );
    let events = s.cluster.must(
        &["get", "events.events.k8s.io", "-n", &s.ns, "-o", "json"],
        None,
    );
    assert!(!events.contains(INJECTED_NACK), "{events}");
    let log = s.controller.log();
    for (_, token, _) in &cases {
        if let Some(t) = token {
            assert!(!log.contains(t.as_str()), "a token reached the log");
        }
    }

    // A real data plane with an intruder's token file is refused and never ready.
    let intruder = s.controller.pki().dir().join("intruder-token");
    std::fs::write(&intruder, s.token("intruder", DATAPLANE_AUDIENCE, &[])).unwrap();
    let refused = s
        .controller
        .start_dataplane_with_token(&intruder, &[], false)
        .await;
    wait_until(WAIT, "the intruder data plane logs the refusal", || async {
        refused.log().contains("PermissionDenied")
    })
    .await;
    assert_eq!(refused.readyz().await.unwrap().0, 503);

    // The authorised data plane, over TLS with its token: snapshots, status, traffic.
    let gateway = s.controller.start_dataplane(&[], true).await;
    assert_eq!(gateway.config_version().await, Some(s.version.clone()));
    s.cluster.wait_for(
        &s.ns,
        "condition=Programmed=True",
        &["airoute/main", "aibackend/echo"],
        || s.controller.log_tail(),
    );
    assert_eq!(
        s.controller
            .metric_sum("switchboard_controller_connected_dataplanes", &[])
            .await,
        1.0,
        "only the authorised data plane is connected"
    );
}

#[tokio::test]
async fn a_token_bound_to_a_pod_must_name_that_pod() {
    let Some(s) = setup("snapauth-pod").await else {
        return;
    };
    // The API server stores (never runs) the pod, so tokens can be bound to it.
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gateway-0", "namespace": s.ns},
        "spec": {"serviceAccountName": DATAPLANE_SERVICE_ACCOUNT,
                 "containers": [{"name": "dataplane", "image": "switchboard-dataplane"}]}});
    s.cluster.apply(&pod.to_string());
    let bound = s.token(
        DATAPLANE_SERVICE_ACCOUNT,
        DATAPLANE_AUDIENCE,
        &[
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "gateway-0",
        ],
    );

    let outcome = s.probe(Some(bound.clone()), "gateway-1").run(WAIT).await;
    assert!(
        matches!(&outcome, Outcome::Refused(tonic::Code::PermissionDenied, m) if m.contains("gateway-0")),
        "{outcome:?}"
    );
    assert_eq!(
        s.controller
            .metric_sum("switchboard_controller_acks_total", &[])
            .await,
        0.0
    );
    let outcome = s.probe(Some(bound), "gateway-0").run(WAIT).await;
    assert_eq!(outcome, Outcome::Snapshot(s.version.clone()));
}

/// Checking data-plane tokens needs `create tokenreviews` (docs/controller-kubernetes.md's
/// RBAC): a controller without it stops at startup naming the permission, instead of refusing
/// every data plane later. (With it, every other test here is served under exactly that RBAC;
/// a TokenReview that fails for another reason is answered UNAVAILABLE and not cached: the
/// controller's unit tests.)
#[tokio::test]
async fn token_reviews_need_the_documented_rbac() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    cluster.install_crds();
    let ns = cluster.namespace("snapauth-rbac");
    let fixture = rbac_fixture();
    let without = fixture
        .split("\n---\n")
        .filter(|doc| !doc.contains("tokenreviews"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert!(
        fixture.contains("resources: [tokenreviews]")
            && !without.contains("resources: [tokenreviews]")
    );
    let kubeconfig = cluster.controller_kubeconfig_with(
        &without,
        "-no-tokenreviews",
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
        "the controller runs without being able to check tokens: {status:?}\n{}",
        controller.log_tail()
    );
    let log = controller.log();
    assert!(
        log.contains("create tokenreviews (authentication.k8s.io) in all namespaces"),
        "{log}"
    );
}
