//! The Helm charts against a real API server (`../shared/k8s/test-cluster`, started by
//! `scripts/test`): both charts install and the server accepts every object; the pod templates
//! pass the restricted Pod Security admission; an upgrade keeps the TLS material.
//!
//! Then the real controller runs as a local process under a kubeconfig for **the chart's own
//! ServiceAccount**, with every argument and mounted file of the chart's Deployment: the TLS
//! Secret's `tls.crt`/`tls.key`, the data planes' audience and ServiceAccount. A data plane
//! follows it with every argument, environment variable and file of the chart's data-plane
//! Deployment: it trusts only the Secret's `ca.crt`, checks the controller Service's name in the
//! certificate (dialling 127.0.0.1), presents a projected token of the chart's ServiceAccount
//! bound to its pod, and names that pod (`POD_NAME`) in its Hello. A route applied with
//! `kubectl apply` is served over that channel. [`tls_identity_step`] first proves who else is
//! refused on it. Finally each permission the chart grants (TokenReview `create` included) is
//! taken away in turn, and the controller must be refused exactly it: the chart's RBAC is
//! enough, and every verb in it is needed.

use std::process::Command;

use std::path::PathBuf;

use serde_json::{Value, json};
use switchboard_e2e::chart::{Helm, app_chart, objects, repo_root};
use switchboard_e2e::chart_install::{
    bind_roles_without, helm_app, install_crds, pod_from_template, restricted_namespace,
};
use switchboard_e2e::chart_rbac::{forbidden_text, grants};
use switchboard_e2e::chart_scenario::{Outcome, Scenario, apply_resources};
use switchboard_e2e::harness::{Gateway, metric_sum};
use switchboard_e2e::kube::{Cluster, KubeController, KubeControllerOptions, WAIT};
use switchboard_e2e::local_pod::LocalPod;
use switchboard_e2e::pki::TestPki;
use switchboard_e2e::probe::{self, INJECTED_NACK, Probe};
use switchboard_e2e::wait_until;

fn helm_and_cluster() -> Option<(Helm, Cluster)> {
    let cluster = Cluster::get()?;
    let helm = Helm::get()?;
    Some((helm, cluster))
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn both_charts_install_and_the_server_accepts_every_object() {
    let Some((helm, cluster)) = helm_and_cluster() else {
        return;
    };
    install_crds(&helm, &cluster);
    for values in [vec![], vec![app_chart().join("ci/cluster-values.yaml")]] {
        let ns = restricted_namespace(&cluster, "sb-install");
        let objs = helm_app(&helm, &cluster, "install", &ns, &values, &[]);
        assert!(objs.len() >= 15, "{} objects", objs.len());
        // Every object of the release is stored by the server.
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objs}).to_string();
        let found = cluster.must(&["get", "-f", "-", "-o", "name"], Some(&list));
        assert_eq!(found.lines().count(), objs.len(), "{found}");

        // Admission checks Pods, not Deployments: each pod template, as a Pod, passes the
        // namespace's restricted enforcement (server-side dry run); a changed one does not.
        for name in ["sb-controller", "sb-dataplane"] {
            let pod = pod_from_template(&cluster, &ns, name);
            cluster.must(
                &["create", "--dry-run=server", "-f", "-"],
                Some(&pod.to_string()),
            );
            let mut bad = pod.clone();
            bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                json!(true);
            let err = cluster
                .kubectl(
                    &["create", "--dry-run=server", "-f", "-"],
                    Some(&bad.to_string()),
                )
                .expect_err("a privilege-escalating pod must be refused");
            assert!(
                err.contains("violates PodSecurity \"restricted:latest\""),
                "{err}"
            );
        }

        // An upgrade keeps the generated certificate (lookup), so data planes keep trusting it.
        let crt = |c: &Cluster| {
            c.must(
                &[
                    "get",
                    "secret",
                    "sb-controller-tls",
                    "-n",
                    &ns,
                    "-o",
                    "jsonpath={.data.tls\\.crt}",
                ],
                None,
            )
        };
        let before = crt(&cluster);
        helm_app(
            &helm,
            &cluster,
            "upgrade",
            &ns,
            &values,
            &["dataplane.replicas=3".into()],
        );
        assert_eq!(
            crt(&cluster),
            before,
            "helm upgrade regenerated the TLS Secret"
        );
    }

    // manifests/install.yaml (both charts with default values) is accepted as it is.
    let manifest = std::fs::read_to_string(repo_root().join("manifests/install.yaml"))
        .expect("manifests/install.yaml");
    let applied = cluster.must(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&manifest),
    );
    assert_eq!(
        applied.lines().count(),
        objects(&manifest).len(),
        "{applied}"
    );
}

/// The controller and data-plane pods of release `sb` in `ns`, materialised locally.
fn chart_pods(cluster: &Cluster, ns: &str) -> (LocalPod, LocalPod) {
    let controller = LocalPod::materialize(
        cluster,
        ns,
        "sb-controller",
        "controller",
        "sb-controller-0",
    );
    let dataplane =
        LocalPod::materialize(cluster, ns, "sb-dataplane", "dataplane", "sb-dataplane-0");
    assert_eq!(controller.binary, "switchboard-controller");
    assert_eq!(dataplane.binary, "switchboard-dataplane");
    (controller, dataplane)
}

/// Starts the controller with every argument of the chart's pod (`--namespace` values replaced
/// by `watch`, if any), TLS and identity flags included, under `kubeconfig`.
fn start_controller(
    cluster: &Cluster,
    lease_ns: &str,
    pod: &LocalPod,
    kubeconfig: PathBuf,
    identity: &str,
    watch: Option<&str>,
) -> KubeController {
    let args = pod
        .args
        .iter()
        .map(|a| match (a.strip_prefix("--namespace="), watch) {
            (Some(_), Some(ns)) => format!("--namespace={ns}"),
            _ => a.clone(),
        })
        .collect();
    KubeController::start(
        cluster,
        &KubeControllerOptions {
            lease_namespace: Some(lease_ns.to_string()),
            identity: Some(identity.to_string()),
            kubeconfig: Some(kubeconfig),
            args,
            tls_from_args: true,
            ..Default::default()
        },
    )
}

/// The host the chart's data plane dials (`<service>.<namespace>.svc`).
fn controller_host(dataplane_pod: &LocalPod) -> String {
    let url = dataplane_pod.arg("--controller").expect("--controller");
    url.trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The chart's data plane as a fresh pod (empty `emptyDir`s) with every argument and the
/// environment of the chart, following the local controller: it dials 127.0.0.1 and checks the
/// chart's Service name in the certificate (`--controller-server-name`), as in the cluster it
/// dials that name. `replace` swaps the value of some of the chart's flags.
async fn start_dataplane(
    pod: &LocalPod,
    controller: &KubeController,
    replace: &[(&str, String)],
) -> Gateway {
    pod.reset_empty_dirs();
    let mut skip = vec!["--controller"];
    skip.extend(replace.iter().map(|(flag, _)| *flag));
    let mut args = pod.args_without(&skip);
    args.extend(
        replace
            .iter()
            .map(|(flag, value)| format!("{flag}={value}")),
    );
    args.push(format!("--controller-server-name={}", controller_host(pod)));
    let envs: Vec<(&str, &str)> = pod
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Gateway::start_cluster(&controller.grpc_url(), &envs, &args, false).await
}

fn env<'a>(pod: &'a LocalPod, name: &str) -> &'a str {
    pod.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the pod has no {name} in its environment"))
}

/// Every status and Event in `ns`, as text.
fn statuses_and_events(cluster: &Cluster, ns: &str) -> String {
    cluster.must(
        &[
            "get",
            "-n",
            ns,
            "aibackends,airoutes,events.events.k8s.io",
            "-o",
            "json",
        ],
        None,
    )
}

/// The TLS and identity contract on the chart's own material, with `controller` running with
/// the chart's flags and no data plane connected yet: the material is what the data planes
/// need and no more, and every peer that is not the chart's data plane gets nothing and cannot
/// change status (the authorised data plane is the scenario's, afterwards).
async fn tls_identity_step(
    cluster: &Cluster,
    ns: &str,
    apps: &str,
    controller: &KubeController,
    controller_pod: &LocalPod,
    dataplane_pod: &LocalPod,
) {
    // The serving certificate is signed by the CA the data planes get, for the name they dial.
    let ca = dataplane_pod
        .mount("/etc/switchboard/controller-ca")
        .join("ca.crt");
    let crt = controller_pod
        .arg("--grpc-tls-cert")
        .expect("--grpc-tls-cert");
    let ca_s = ca.display().to_string();
    assert!(openssl(&["verify", "-CAfile", &ca_s, &crt]).contains(": OK"));
    let sans = openssl(&["x509", "-in", &crt, "-noout", "-ext", "subjectAltName"]);
    let host = controller_host(dataplane_pod);
    assert!(
        sans.contains(&format!("DNS:{host}")),
        "{host} not in {sans}"
    );
    assert!(
        !dataplane_pod
            .mount("/etc/switchboard/controller-ca")
            .join("tls.key")
            .exists(),
        "the data plane must not get the controller's key"
    );

    // The data plane's projected token authenticates as its ServiceAccount for the controller's
    // audience, bound to the pod its Hello names (POD_NAME), and the controller's ServiceAccount
    // may check it (TokenReview).
    let token_file = dataplane_pod
        .arg("--controller-token-file")
        .expect("--controller-token-file");
    let token = std::fs::read_to_string(&token_file).expect("projected token");
    let token = token.trim();
    let controller_kubeconfig = cluster.token_for(ns, &controller_pod.service_account);
    let review = |audience: &str| -> Value {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                          "spec": {"token": token, "audiences": [audience]}});
        let out = switchboard_e2e::kube::kubectl_as(
            &controller_kubeconfig,
            &["create", "--validate=false", "-o", "json", "-f", "-"],
            Some(&body.to_string()),
        )
        .unwrap_or_else(|e| {
            panic!("the controller's ServiceAccount cannot create TokenReviews: {e}")
        });
        serde_json::from_str(&out).expect("TokenReview JSON")
    };
    let audience = controller_pod
        .arg("--dataplane-audience")
        .expect("--dataplane-audience");
    let ok = review(&audience);
    assert_eq!(ok["status"]["authenticated"], true, "{}", ok["status"]);
    let dataplane_sa = controller_pod
        .arg("--dataplane-service-account")
        .expect("--dataplane-service-account");
    assert_eq!(
        dataplane_sa,
        format!("{ns}/{}", dataplane_pod.service_account)
    );
    assert_eq!(
        ok["status"]["user"]["username"],
        format!("system:serviceaccount:{}", dataplane_sa.replace('/', ":"))
    );
    let node_id = env(dataplane_pod, "POD_NAME");
    assert_eq!(
        ok["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!([node_id]),
        "the token is bound to the pod whose name the data plane sends"
    );

    // Peers that must get nothing. Each probe sends a Hello, an ACK and a NACK at once.
    let version = controller.served_version().await;
    let honest = Probe {
        url: controller.grpc_url(),
        ca: Some(ca.clone()),
        server_name: Some(host.clone()),
        token: Some(token.to_string()),
        node_id: node_id.to_string(),
        version,
    };
    let other_ca = TestPki::new("chart-other-ca");
    cluster.service_account(ns, "sb-intruder");
    let intruder_token = cluster.create_token(ns, "sb-intruder", &audience, &[]);
    let bound = format!("--bound-object-name={node_id}");
    let wrong_audience = cluster.create_token(
        ns,
        &dataplane_pod.service_account,
        "some-other-audience",
        &["--bound-object-kind=Pod", &bound],
    );
    let trusting_other_ca = Probe {
        ca: Some(other_ca.ca()),
        ..honest.clone()
    };
    let outcome = trusting_other_ca.run(WAIT).await;
    assert!(
        matches!(&outcome, probe::Outcome::Failed(e) if e.contains("UnknownIssuer")),
        "a peer trusting another CA: {outcome:?}"
    );
    let refusals = [
        (
            "another ServiceAccount's token, the chart's audience",
            Probe {
                token: Some(intruder_token.clone()),
                ..honest.clone()
            },
            tonic::Code::PermissionDenied,
            "is not authorised",
        ),
        (
            "the chart's ServiceAccount, another audience",
            Probe {
                token: Some(wrong_audience.clone()),
                ..honest.clone()
            },
            tonic::Code::Unauthenticated,
            "audience",
        ),
        (
            "the chart's token, another pod's name",
            Probe {
                node_id: "sb-dataplane-1".into(),
                ..honest.clone()
            },
            tonic::Code::PermissionDenied,
            node_id,
        ),
    ];
    for (what, probe, code, reason) in &refusals {
        let outcome = probe.run(WAIT).await;
        assert!(
            matches!(&outcome, probe::Outcome::Refused(c, m) if c == code && m.contains(reason)),
            "{what}: {outcome:?}\n{}",
            controller.log_tail()
        );
    }

    // Real data planes with the chart's arguments, but trusting another CA or presenting
    // another ServiceAccount's token: refused, never ready.
    let intruder_file = other_ca.dir().join("intruder-token");
    std::fs::write(&intruder_file, &intruder_token).expect("write the intruder's token");
    for (what, replace, logged) in [
        (
            "another CA",
            ("--controller-ca", other_ca.ca().display().to_string()),
            "UnknownIssuer",
        ),
        (
            "another ServiceAccount's token",
            (
                "--controller-token-file",
                intruder_file.display().to_string(),
            ),
            "PermissionDenied",
        ),
    ] {
        let refused = start_dataplane(dataplane_pod, controller, &[replace]).await;
        wait_until(
            WAIT,
            &format!("a data plane with {what} is refused"),
            || async { refused.log().contains(logged) },
        )
        .await;
        assert_eq!(
            refused.readyz().await.map(|(s, _)| s),
            Some(503),
            "a data plane with {what} got a snapshot:\n{}",
            refused.log()
        );
    }

    // Nothing they sent reached the fleet or status: no ACK, no NACK, no connected data plane,
    // the route still waits for one, and no status or Event quotes the injected NACK.
    let m = controller.metrics().await;
    for name in [
        "switchboard_controller_acks_total",
        "switchboard_controller_nacks_total",
        "switchboard_controller_connected_dataplanes",
    ] {
        assert_eq!(metric_sum(&m, name, &[]), 0.0, "{name}");
    }
    let auth = |result: &str| {
        metric_sum(
            &m,
            "switchboard_controller_dataplane_auth_total",
            &[("result", result)],
        )
    };
    assert!(auth("permission_denied") >= 3.0, "{m}");
    assert!(auth("unauthenticated") >= 1.0, "{m}");
    assert!(
        metric_sum(
            &m,
            "switchboard_controller_tls_handshake_failures_total",
            &[]
        ) >= 2.0,
        "{m}"
    );
    cluster.wait_for(
        apps,
        "condition=Programmed=Unknown",
        &["airoute/main"],
        || controller.log_tail(),
    );
    let seen = statuses_and_events(cluster, apps);
    assert!(!seen.contains(INJECTED_NACK), "{seen}");
    let log = controller.log();
    for t in [token, intruder_token.as_str(), wrong_audience.as_str()] {
        assert!(!log.contains(t), "a token reached the controller's log");
    }
}

#[tokio::test]
async fn the_controller_runs_under_the_charts_rbac_which_is_exactly_enough() {
    let Some((helm, cluster)) = helm_and_cluster() else {
        return;
    };
    install_crds(&helm, &cluster);
    let ns = restricted_namespace(&cluster, "sb-rbac");
    let apps = cluster.namespace("sb-apps");
    let objs = helm_app(
        &helm,
        &cluster,
        "install",
        &ns,
        &[],
        &[format!("controller.watchNamespaces[0]={apps}")],
    );
    let (controller_pod, dataplane_pod) = chart_pods(&cluster, &ns);
    let lease = controller_pod.arg("--lease-name").expect("--lease-name");

    // 1. The chart's own ServiceAccount, RBAC, TLS material and identity flags: first every
    //    peer that is not the chart's data plane is refused, then the whole scenario runs with
    //    no refusal at all.
    apply_resources(&cluster, &apps);
    let controller = start_controller(
        &cluster,
        &ns,
        &controller_pod,
        cluster.token_for(&ns, &controller_pod.service_account),
        "sb-controller-0",
        None,
    );
    cluster.wait_for(
        &apps,
        "condition=Accepted=True",
        &["aibackend/echo", "airoute/main"],
        || controller.log_tail(),
    );
    tls_identity_step(
        &cluster,
        &ns,
        &apps,
        &controller,
        &controller_pod,
        &dataplane_pod,
    )
    .await;
    let scenario = Scenario {
        cluster: &cluster,
        apps: apps.clone(),
        controller: &controller,
        expect_refusal: None,
    };
    assert!(matches!(
        scenario
            .run((&ns, &lease), async || start_dataplane(
                &dataplane_pod,
                &controller,
                &[]
            )
            .await)
            .await,
        Outcome::Done
    ));
    let log = controller.log().to_lowercase();
    assert!(
        !log.contains("forbidden"),
        "refused with the chart's RBAC:\n{}",
        controller.log_tail()
    );
    // The authorised data plane's ACKs were recorded after the refused peers' messages; none of
    // those reached status or Events.
    let seen = statuses_and_events(&cluster, &apps);
    assert!(!seen.contains(INJECTED_NACK), "{seen}");
    drop(controller);

    // 2. Each grant taken away in turn (a copy of the chart's roles, bound to a fresh
    //    ServiceAccount, watching a fresh namespace): the controller is refused exactly it.
    let roles: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .collect();
    let mut checked = Vec::new();
    let all = grants(&roles);
    for g in &all {
        assert!(
            !format!("{} {} {}", g.group, g.resource, g.verb).contains('*'),
            "the chart grants a wildcard: {g}"
        );
    }
    assert!(
        all.iter()
            .any(|g| g.resource == "tokenreviews" && g.verb == "create"),
        "the chart must let the controller check data-plane tokens"
    );
    for (n, grant) in all.iter().enumerate() {
        let probe_apps = cluster.namespace("sb-probe");
        let sa = format!("probe-{n}");
        bind_roles_without(&cluster, &roles, grant, &apps, &probe_apps, &ns, &sa);
        apply_resources(&cluster, &probe_apps);
        let _ = cluster.kubectl(
            &["delete", "lease", &lease, "-n", &ns, "--ignore-not-found"],
            None,
        );
        let controller = start_controller(
            &cluster,
            &ns,
            &controller_pod,
            cluster.token_for(&ns, &sa),
            &format!("sb-controller-{sa}"),
            Some(&probe_apps),
        );
        let scenario = Scenario {
            cluster: &cluster,
            apps: probe_apps.clone(),
            controller: &controller,
            expect_refusal: Some(forbidden_text(grant)),
        };
        match scenario
            .run((&ns, &lease), async || {
                start_dataplane(&dataplane_pod, &controller, &[]).await
            })
            .await
        {
            Outcome::Refused(line) => {
                println!("without {grant}: {line}");
                checked.push(grant.to_string());
            }
            Outcome::Done => panic!(
                "the chart grants {grant}, but the controller did its whole job without it: \
                 remove it from helm/switchboard/templates/rbac.yaml\n{}",
                controller.log_tail()
            ),
        }
    }
    assert_eq!(checked.len(), all.len(), "{checked:?}");
    println!("every grant is needed: {}", checked.join(", "));

    // 3. Cluster-wide: one ClusterRole instead of Roles, objects in any namespace. (In this
    //    test, not in parallel with it: such a controller writes the status of every object.)
    let all_ns = restricted_namespace(&cluster, "sb-all");
    helm_app(
        &helm,
        &cluster,
        "install",
        &all_ns,
        &[],
        &["controller.watchAllNamespaces=true".into()],
    );
    let (controller_pod, dataplane_pod) = chart_pods(&cluster, &all_ns);
    assert!(controller_pod.arg("--namespace").is_none());
    let lease = controller_pod.arg("--lease-name").expect("--lease-name");
    let anywhere = cluster.namespace("sb-anywhere");
    apply_resources(&cluster, &anywhere);
    let controller = start_controller(
        &cluster,
        &all_ns,
        &controller_pod,
        cluster.token_for(&all_ns, &controller_pod.service_account),
        "sb-controller-0",
        None,
    );
    let scenario = Scenario {
        cluster: &cluster,
        apps: anywhere,
        controller: &controller,
        expect_refusal: None,
    };
    assert!(matches!(
        scenario
            .run((&all_ns, &lease), async || start_dataplane(
                &dataplane_pod,
                &controller,
                &[]
            )
            .await)
            .await,
        Outcome::Done
    ));
    assert!(
        !controller.log().to_lowercase().contains("forbidden"),
        "{}",
        controller.log_tail()
    );
}
