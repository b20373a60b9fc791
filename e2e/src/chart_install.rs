//! Installing the charts into a test cluster: the CRD chart once per process, the application
//! chart into a namespace that enforces the restricted Pod Security Standard, a Pod made from a
//! Deployment's stored template (for admission checks), and copies of the chart's roles with one
//! grant taken away (for proving each grant is needed).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::chart::{Helm, app_chart, crds_chart, objects};
use crate::chart_rbac::{Grant, rules_without};
use crate::kube::Cluster;
use crate::local_pod::pod_from_deployment;

/// Installs (or takes over) the CRDs with the switchboard-crds chart, once per test process.
pub fn install_crds(helm: &Helm, cluster: &Cluster) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let ns = format!("switchboard-crds-{}", std::process::id());
        let chart = crds_chart().display().to_string();
        // --take-ownership: another suite may have applied the same CRDs with kubectl.
        helm.run(
            &[
                "upgrade",
                "--install",
                "switchboard-crds",
                &chart,
                "-n",
                &ns,
                "--create-namespace",
                "--take-ownership",
            ],
            Some(cluster.kubeconfig()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        cluster.must(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/aibackends.switchboard.dev",
                "crd/airoutes.switchboard.dev",
                "crd/aiteams.switchboard.dev",
            ],
            None,
        );
    });
}

/// A fresh namespace enforcing the restricted Pod Security Standard.
pub fn restricted_namespace(cluster: &Cluster, prefix: &str) -> String {
    let ns = cluster.namespace(prefix);
    cluster.must(
        &[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
    ns
}

/// `helm install|upgrade RELEASE helm/switchboard -n NS` with values; the release's objects.
pub fn helm_app(
    helm: &Helm,
    cluster: &Cluster,
    verb: &str,
    ns: &str,
    values: &[PathBuf],
    sets: &[String],
) -> Vec<Value> {
    let chart = app_chart().display().to_string();
    let mut args = vec![verb.to_string(), "sb".into(), chart, "-n".into(), ns.into()];
    for v in values {
        args.extend(["-f".into(), v.display().to_string()]);
    }
    for s in sets {
        args.extend(["--set".into(), s.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    helm.run(&args, Some(cluster.kubeconfig()))
        .unwrap_or_else(|e| panic!("{e}"));
    let manifest = helm
        .run(
            &["get", "manifest", "sb", "-n", ns],
            Some(cluster.kubeconfig()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    objects(&manifest)
}

/// A Pod (`<name>-probe`) made from Deployment `name`'s template as the server stored it.
pub fn pod_from_template(cluster: &Cluster, ns: &str, name: &str) -> Value {
    let d: Value = serde_json::from_str(
        &cluster.must(&["get", "deployment", name, "-n", ns, "-o", "json"], None),
    )
    .expect("deployment JSON");
    pod_from_deployment(&d, &format!("{name}-probe"))
}

/// Copies of the chart's controller roles without `grant`, bound to ServiceAccount `sa` in `ns`;
/// Roles of the watched namespace `apps` go to `probe_apps` instead.
pub fn bind_roles_without(
    cluster: &Cluster,
    roles: &[&Value],
    grant: &Grant,
    apps: &str,
    probe_apps: &str,
    ns: &str,
    sa: &str,
) {
    let mut items = Vec::new();
    for role in roles {
        let kind = role["kind"].as_str().unwrap_or_default();
        let name = format!(
            "{sa}-{}",
            role["metadata"]["name"].as_str().unwrap_or_default()
        );
        let name = format!("{ns}-{name}");
        let role_ns = match role["metadata"]["namespace"].as_str() {
            Some(n) if n == apps => Some(probe_apps),
            other => other,
        };
        let mut meta = json!({"name": name});
        if let Some(n) = role_ns {
            meta["namespace"] = json!(n);
        }
        items.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                          "rules": rules_without(&role["rules"], grant)}),
        );
        let binding_kind = if kind == "Role" {
            "RoleBinding"
        } else {
            "ClusterRoleBinding"
        };
        items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding_kind, "metadata": meta,
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                          "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}));
    }
    cluster.must(&["create", "serviceaccount", sa, "-n", ns], None);
    cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
}
