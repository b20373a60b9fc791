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
//! `kubectl apply` is served over that channel; `tls_identity_step` (`e2e/src/chart_tls.rs`)
//! first proves who else is refused on it. Finally each permission the chart grants (TokenReview
//! `create` included) is taken away in turn, and the controller must be refused exactly it: the
//! chart's RBAC is enough, and every verb in it is needed.

use serde_json::{Value, json};
use switchboard_e2e::chart::{Helm, app_chart, objects, repo_root};
use switchboard_e2e::chart_install::{
    bind_roles_without, helm_app, install_crds, pod_from_template, restricted_namespace,
};
use switchboard_e2e::chart_rbac::{forbidden_text, grants};
use switchboard_e2e::chart_scenario::{Outcome, Scenario, apply_resources};
use switchboard_e2e::chart_tls::{
    chart_pods, start_controller, start_dataplane, statuses_and_events, tls_identity_step,
};
use switchboard_e2e::kube::Cluster;
use switchboard_e2e::probe::INJECTED_NACK;

fn helm_and_cluster() -> Option<(Helm, Cluster)> {
    let cluster = Cluster::get()?;
    let helm = Helm::get()?;
    Some((helm, cluster))
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
