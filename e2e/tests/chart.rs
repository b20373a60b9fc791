//! The Helm charts without a cluster: `helm lint` and `helm template` with default and maximal
//! values, values that break the schema refused with a message, the rendered objects' security
//! and wiring, the generated files kept current (`manifests/install.yaml`, the README's values
//! table), and the Grafana dashboard's queries checked against `docs/metrics.md`.
//!
//! Needs Helm v4 (`scripts/test` installs it and sets `SWITCHBOARD_HELM`); fails without it
//! unless `SWITCHBOARD_SKIP_HELM=1`. `SWITCHBOARD_UPDATE_GOLDEN=1` rewrites the generated files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use switchboard_e2e::chart::{
    Helm, app_chart, arg, assert_graceful, assert_identity_wiring, assert_no_wildcards,
    assert_restricted, container_args, crds_chart, find, objects, of_kind, repo_root, seconds,
};
use switchboard_e2e::chart_values::{value_rows, values_table, with_table};
use switchboard_e2e::dashboard::{check_query, dashboard_queries, documented_metrics};

const NS: &str = "switchboard-system";
const RELEASE: &str = "switchboard";

fn ci_values(name: &str) -> PathBuf {
    app_chart().join("ci").join(name)
}

fn render(helm: &Helm, values: &[&Path], sets: &[&str]) -> Vec<Value> {
    objects(
        &helm
            .template(&app_chart(), RELEASE, NS, values, sets)
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn updating() -> bool {
    std::env::var_os("SWITCHBOARD_UPDATE_GOLDEN").is_some()
}

/// Compares a generated file with the committed one, or rewrites it.
fn golden(path: &Path, generated: &str) {
    if updating() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create folder");
        }
        std::fs::write(path, generated).expect("write generated file");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date: run `SWITCHBOARD_UPDATE_GOLDEN=1 cargo test -p switchboard-e2e --test chart` and commit the result",
        path.display()
    );
}

#[test]
fn charts_lint_with_default_and_maximal_values() {
    let Some(helm) = Helm::get() else { return };
    let crds = crds_chart().display().to_string();
    let app = app_chart().display().to_string();
    helm.run(&["lint", "--strict", &crds], None)
        .unwrap_or_else(|e| panic!("{e}"));
    helm.run(&["lint", "--strict", &app], None)
        .unwrap_or_else(|e| panic!("{e}"));
    for values in ["maximal-values.yaml", "cluster-values.yaml"] {
        let f = ci_values(values).display().to_string();
        helm.run(&["lint", "--strict", &app, "-f", &f], None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn default_values_render_a_restricted_least_privilege_install() {
    let Some(helm) = Helm::get() else { return };
    let objects = render(&helm, &[], &[]);
    let expected: BTreeSet<String> = [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds(&objects), expected);

    let controller = find(&objects, "Deployment", "switchboard-controller");
    let dataplane = find(&objects, "Deployment", "switchboard-dataplane");
    assert_eq!(
        controller["spec"]["replicas"], 2,
        "two controllers (leader election)"
    );
    for d in [controller, dataplane] {
        assert_restricted(d);
        let spread = &d["spec"]["template"]["spec"]["topologySpreadConstraints"];
        assert_eq!(
            spread.as_array().map(Vec::len),
            Some(2),
            "spread over nodes and zones"
        );
    }
    assert_graceful(dataplane);
    let controller_grace = controller["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(controller_grace > seconds(&arg(controller, "--shutdown-grace")));

    // Watches only the release namespace; Secrets are never readable cluster-wide.
    let watched: Vec<String> = container_args(controller)
        .into_iter()
        .filter(|(f, _)| f == "--namespace")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(watched, [NS]);
    assert_no_wildcards(&objects);
    for role in of_kind(&objects, "ClusterRole") {
        assert!(
            !role["rules"].to_string().contains("secrets"),
            "a ClusterRole grants Secrets in namespaced mode: {role}"
        );
    }

    // The controller's TLS Secret (generated), all of it mounted by the controller, only ca.crt
    // by the data planes.
    let tls = find(&objects, "Secret", "switchboard-controller-tls");
    assert_eq!(tls["type"], "kubernetes.io/tls");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(
            tls["data"][key].as_str().is_some_and(|v| v.len() > 100),
            "{key}"
        );
    }
    let secret_volume = |d: &Value| -> Value {
        d["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["secret"]["secretName"] == "switchboard-controller-tls")
            .cloned()
            .unwrap_or_else(|| panic!("no TLS volume in {}", d["metadata"]["name"]))
    };
    assert!(secret_volume(controller)["secret"]["items"].is_null());
    assert_eq!(
        secret_volume(dataplane)["secret"]["items"],
        serde_json::json!([{"key": "ca.crt", "path": "ca.crt"}])
    );
    assert_eq!(
        arg(controller, "--grpc-tls-cert"),
        "/etc/switchboard/tls/tls.crt"
    );
    assert_eq!(
        arg(controller, "--grpc-tls-key"),
        "/etc/switchboard/tls/tls.key"
    );
    assert_eq!(
        arg(dataplane, "--controller-ca"),
        "/etc/switchboard/controller-ca/ca.crt"
    );

    // Identity: the data plane presents a projected token for the controller's audience, from
    // the ServiceAccount the controller trusts; it mounts no API token.
    let dp_pod = &dataplane["spec"]["template"]["spec"];
    assert_eq!(dp_pod["automountServiceAccountToken"], false);
    let token = dp_pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find_map(|v| v["projected"]["sources"][0].get("serviceAccountToken"))
        .expect("projected token volume");
    assert_eq!(token["audience"], arg(controller, "--dataplane-audience"));
    assert_eq!(token["audience"], "switchboard-controller");
    assert_eq!(token["expirationSeconds"], 3600);
    assert_eq!(
        arg(dataplane, "--controller-token-file"),
        format!(
            "/var/run/secrets/switchboard/{}",
            token["path"].as_str().unwrap_or_default()
        )
    );
    assert_eq!(
        arg(controller, "--dataplane-service-account"),
        format!(
            "{NS}/{}",
            dp_pod["serviceAccountName"].as_str().unwrap_or_default()
        )
    );
    assert!(
        of_kind(&objects, "Role")
            .iter()
            .chain(of_kind(&objects, "ClusterRole").iter())
            .all(|r| !r["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .contains("dataplane")),
        "the data plane has no RBAC"
    );

    // The data plane dials the controller Service by the name in the certificate.
    let service = find(&objects, "Service", "switchboard-controller");
    let grpc_port = &service["spec"]["ports"][0];
    assert_eq!(grpc_port["name"], "grpc");
    assert_eq!(
        arg(dataplane, "--controller"),
        format!(
            "https://switchboard-controller.{NS}.svc:{}",
            grpc_port["port"]
        )
    );
    assert!(arg(dataplane, "--snapshot-cache").starts_with("/var/cache/switchboard/"));

    // Data-plane Service: traffic and admin.
    let dp_service = find(&objects, "Service", "switchboard-dataplane");
    let ports: Vec<(&str, u64)> = dp_service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["port"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(ports, [("http", 8787), ("admin", 15021)]);

    // The dashboard, with the sidecar label, is the repository's JSON.
    let dashboard = find(&objects, "ConfigMap", "switchboard-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(
        dashboard["data"]["switchboard.json"]
            .as_str()
            .expect("dashboard data"),
    )
    .expect("dashboard JSON");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(app_chart().join("dashboards/switchboard.json"))
            .expect("dashboard file"),
    )
    .expect("dashboard file JSON");
    assert_eq!(shipped, file);
}

#[test]
fn maximal_values_render_every_optional_object() {
    let Some(helm) = Helm::get() else { return };
    let objects = render(&helm, &[&ci_values("maximal-values.yaml")], &[]);
    for kind in [
        "HorizontalPodAutoscaler",
        "Ingress",
        "HTTPRoute",
        "ServiceMonitor",
        "NetworkPolicy",
        "Certificate",
        "Issuer",
        "PodDisruptionBudget",
    ] {
        assert!(kinds(&objects).contains(kind), "no {kind}");
    }
    assert!(
        !kinds(&objects).contains("Secret"),
        "cert-manager writes the Secret"
    );
    let controller = find(&objects, "Deployment", "gw-controller");
    let dataplane = find(&objects, "Deployment", "gw-dataplane");
    for d in [controller, dataplane] {
        assert_restricted(d);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example.com/switchboard@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
    }
    assert_graceful(dataplane);
    assert!(
        dataplane["spec"]["replicas"].is_null(),
        "the HPA owns replicas"
    );
    // extra controller args come last, after the chart's own
    let args = container_args(controller);
    assert_eq!(args[args.len() - 2].0, "--lease-duration");
    assert_eq!(args[args.len() - 1].0, "--lease-renew-deadline");
    // one Role per watched namespace, plus the Lease Role
    let role_namespaces: BTreeSet<&str> = of_kind(&objects, "Role")
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(role_namespaces, BTreeSet::from(["team-a", "team-b", NS]));
    assert_no_wildcards(&objects);
    // the certificate names the host the data planes dial, and writes the Secret they mount
    let cert = find(&objects, "Certificate", "gw-controller");
    assert_eq!(cert["spec"]["secretName"], "gw-grpc-tls");
    let host = arg(dataplane, "--controller");
    let host = host
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or_default();
    assert!(
        cert["spec"]["dnsNames"]
            .as_array()
            .expect("dnsNames")
            .iter()
            .any(|n| n == host),
        "{host} not in {}",
        cert["spec"]["dnsNames"]
    );
    assert!(
        arg(dataplane, "--controller").ends_with(":19978"),
        "the Service's gRPC port"
    );
    let env = &dataplane["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env.to_string().contains("SWITCHBOARD_REDIS_URL"));
    assert_eq!(
        find(&objects, "ConfigMap", "gw-dashboard")["metadata"]["namespace"],
        "monitoring"
    );
}

#[test]
fn every_render_wires_tls_and_identity_the_way_the_binaries_need() {
    let Some(helm) = Helm::get() else { return };
    let maximal = ci_values("maximal-values.yaml");
    let cluster = ci_values("cluster-values.yaml");
    let renders: [(&str, Vec<&Path>, &[&str]); 6] = [
        ("default", vec![], &[]),
        ("maximal", vec![maximal.as_path()], &[]),
        ("cluster", vec![cluster.as_path()], &[]),
        (
            "all namespaces",
            vec![],
            &["controller.watchAllNamespaces=true"],
        ),
        (
            "existing Secret",
            vec![],
            &["tls.mode=secret", "tls.secretName=mine"],
        ),
        ("cert-manager", vec![], &["tls.mode=certManager"]),
    ];
    for (what, values, sets) in renders {
        let objects = render(&helm, &values, sets);
        let deployment = |suffix: &str| {
            of_kind(&objects, "Deployment")
                .into_iter()
                .find(|d| {
                    d["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.ends_with(suffix))
                })
                .unwrap_or_else(|| panic!("{what}: no {suffix} Deployment"))
        };
        let (controller, dataplane) = (deployment("-controller"), deployment("-dataplane"));
        println!("checking the {what} render");
        assert_identity_wiring(NS, controller, dataplane);
    }

    // Helm's genSignedCert (tls.mode=helm) writes an RSA key in PKCS#1: the controller loads it
    // (controller/src/grpc/tls/tests.rs has a test per format).
    use base64::Engine as _;
    let objects = render(&helm, &[], &[]);
    let tls = find(&objects, "Secret", "switchboard-controller-tls");
    let key = base64::engine::general_purpose::STANDARD
        .decode(tls["data"]["tls.key"].as_str().unwrap_or_default())
        .expect("base64 key");
    assert!(
        String::from_utf8_lossy(&key).starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "the chart's generated key is not PKCS#1 any more: update the controller's format tests"
    );
}

#[test]
fn watch_all_namespaces_uses_a_cluster_role_and_no_namespace_flags() {
    let Some(helm) = Helm::get() else { return };
    let objects = render(&helm, &[], &["controller.watchAllNamespaces=true"]);
    let controller = find(&objects, "Deployment", "switchboard-controller");
    assert!(
        container_args(controller)
            .iter()
            .all(|(f, _)| f != "--namespace")
    );
    let watch_role = find(
        &objects,
        "ClusterRole",
        "switchboard-system-switchboard-controller",
    );
    assert!(watch_role["rules"].to_string().contains("secrets"));
    // only the Lease Role remains namespaced
    let roles: Vec<&str> = of_kind(&objects, "Role")
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["switchboard-controller-lease"]);
    assert_no_wildcards(&objects);
}

#[test]
fn pod_monitors_and_an_existing_secret_are_options_too() {
    let Some(helm) = Helm::get() else { return };
    let objects = render(
        &helm,
        &[],
        &[
            "metrics.podMonitor.enabled=true",
            "tls.mode=secret",
            "dataplane.preStopSleepSeconds=0",
        ],
    );
    assert_eq!(of_kind(&objects, "PodMonitor").len(), 2);
    assert!(
        of_kind(&objects, "Secret").is_empty(),
        "mode secret renders no Secret"
    );
    let dataplane = find(&objects, "Deployment", "switchboard-dataplane");
    assert!(
        dataplane["spec"]["template"]["spec"]["containers"][0]["lifecycle"].is_null(),
        "no preStop hook when the sleep is 0"
    );
    assert_graceful(dataplane);
    assert!(
        dataplane["spec"]["template"]["spec"]["volumes"]
            .to_string()
            .contains("\"secretName\":\"switchboard-controller-tls\"")
    );
}

#[test]
fn proxy_mode_adds_its_listener_ca_and_ports_and_is_off_by_default() {
    let Some(helm) = Helm::get() else { return };
    let off = render(&helm, &[], &["networkPolicy.enabled=true"]);
    let dataplane = find(&off, "Deployment", "switchboard-dataplane");
    assert!(
        container_args(dataplane)
            .iter()
            .all(|(f, _)| !f.starts_with("--proxy")),
        "proxy mode is off by default"
    );
    assert!(!off.iter().any(|o| o.to_string().contains("proxy-ca")));

    let objects = render(
        &helm,
        &[],
        &[
            "dataplane.proxy.enabled=true",
            "dataplane.proxy.caSecret=switchboard-proxy-ca",
            "dataplane.proxy.interceptHosts={api.openai.com,*.githubcopilot.com}",
            "dataplane.proxy.otherHosts=refuse",
            "dataplane.proxy.tunnelPorts={443,8443}",
            "dataplane.proxy.maxConnections=500",
            "dataplane.proxy.servicePort=3128",
            "networkPolicy.enabled=true",
        ],
    );
    let dataplane = find(&objects, "Deployment", "switchboard-dataplane");
    assert_restricted(dataplane);
    assert_eq!(arg(dataplane, "--proxy-listen"), "0.0.0.0:8080");
    assert_eq!(
        arg(dataplane, "--proxy-ca-cert"),
        "/etc/switchboard/proxy-ca/tls.crt"
    );
    assert_eq!(
        arg(dataplane, "--proxy-ca-key"),
        "/etc/switchboard/proxy-ca/tls.key"
    );
    assert_eq!(
        arg(dataplane, "--proxy-intercept"),
        "api.openai.com,*.githubcopilot.com"
    );
    assert_eq!(arg(dataplane, "--proxy-other-hosts"), "refuse");
    assert_eq!(arg(dataplane, "--proxy-tunnel-ports"), "443,8443");
    assert_eq!(arg(dataplane, "--proxy-auth"), "required");
    assert_eq!(arg(dataplane, "--proxy-max-connections"), "500");
    let pod = &dataplane["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "proxy")
        .expect("a proxy container port");
    assert_eq!(port["containerPort"], 8080);
    // The CA comes from the kubernetes.io/tls Secret, mounted read-only where the flags point.
    let mount = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == "proxy-ca")
        .expect("the CA is mounted");
    assert_eq!(mount["mountPath"], "/etc/switchboard/proxy-ca");
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "proxy-ca")
        .expect("a CA volume");
    assert_eq!(volume["secret"]["secretName"], "switchboard-proxy-ca");
    assert_eq!(volume["secret"]["defaultMode"], 0o440);
    let keys: Vec<&str> = volume["secret"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(keys, ["tls.crt", "tls.key"]);
    let service = find(&objects, "Service", "switchboard-dataplane");
    let proxy_port = service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "proxy")
        .expect("a proxy Service port");
    assert_eq!(proxy_port["port"], 3128);
    assert_eq!(proxy_port["targetPort"], "proxy");
    // The NetworkPolicy admits `trafficFrom` to the proxy port too.
    let policy = find(&objects, "NetworkPolicy", "switchboard-dataplane");
    assert!(
        policy["spec"]["ingress"][0]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .any(|p| p["port"] == "proxy"),
        "{policy}"
    );
    assert_no_wildcards(&objects);
}

#[test]
fn values_that_break_the_schema_are_refused_with_a_message() {
    let Some(helm) = Helm::get() else { return };
    let dir = repo_root().join("e2e/tests/fixtures/chart/bad-values");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("bad-values fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "fixtures in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} must start with `# expect: `", file.display()));
        let err = helm
            .template(&app_chart(), RELEASE, NS, &[&file], &[])
            .expect_err(&format!("{} was accepted", file.display()));
        assert!(
            err.contains(expect),
            "{}: expected {expect:?} in:\n{err}",
            file.display()
        );
    }
}

#[test]
fn crds_chart_renders_the_generated_crds() {
    let Some(helm) = Helm::get() else { return };
    let render = |sets: &[&str]| {
        objects(
            &helm
                .template(&crds_chart(), "switchboard-crds", NS, &[], sets)
                .unwrap_or_else(|e| panic!("{e}")),
        )
    };
    let rendered = render(&[]);
    let generated = switchboard_api::crd::crd_files();
    assert_eq!(rendered.len(), generated.len());
    for (name, yaml) in generated {
        let mut expected: Value = serde_yaml::from_str(&yaml).expect("CRD YAML");
        let crd = rendered
            .iter()
            .find(|o| o["metadata"]["name"] == expected["metadata"]["name"])
            .unwrap_or_else(|| panic!("{name} is not rendered"));
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/component"],
            "crds"
        );
        expected["metadata"] = crd["metadata"].clone();
        assert_eq!(crd, &expected, "{name} differs from the generated CRD");
    }
    let unkept = render(&["keep=false"]);
    assert!(
        unkept
            .iter()
            .all(|c| c["metadata"]["annotations"].is_null())
    );
}

/// `manifests/install.yaml`: both charts rendered with default values, plus the namespace.
fn install_yaml(helm: &Helm) -> String {
    let crds = helm
        .template(&crds_chart(), "switchboard-crds", NS, &[], &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let app = helm
        .template(&app_chart(), RELEASE, NS, &[], &["tls.mode=secret"])
        .unwrap_or_else(|e| panic!("{e}"));
    format!(
        "# Switchboard install manifest: the switchboard-crds and switchboard Helm charts rendered with
# their default values (release \"switchboard\", namespace {NS}), except tls.mode=secret: a
# static file cannot carry a generated private key, so create the Secret
# switchboard-controller-tls first (docs/install.md shows how). Apply with
#   kubectl apply --server-side -f manifests/install.yaml
# Generated: SWITCHBOARD_UPDATE_GOLDEN=1 cargo test -p switchboard-e2e --test chart. Do not edit.
---
apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
{crds}{app}"
    )
}

#[test]
fn install_manifest_is_the_default_render() {
    let Some(helm) = Helm::get() else { return };
    let generated = install_yaml(&helm);
    let parsed = objects(&generated);
    assert!(
        parsed
            .iter()
            .any(|o| o["kind"] == "CustomResourceDefinition")
    );
    assert!(
        parsed.iter().all(|o| o["kind"] != "Secret"),
        "no key material"
    );
    golden(&repo_root().join("manifests/install.yaml"), &generated);
}

#[test]
fn readme_values_table_documents_every_value() {
    let values = std::fs::read_to_string(app_chart().join("values.yaml")).expect("values.yaml");
    let rows = value_rows(&values).unwrap_or_else(|p| panic!("values.yaml: {}", p.join("\n")));
    // every documented key is declared, with a description, in the schema
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(app_chart().join("values.schema.json")).expect("schema"),
    )
    .expect("schema JSON");
    for row in &rows {
        let node = row
            .key
            .split('.')
            .try_fold(&schema, |s, k| s["properties"].get(k))
            .unwrap_or_else(|| panic!("{} is not in values.schema.json", row.key));
        assert!(
            node["description"].is_string(),
            "{}: no description in the schema",
            row.key
        );
    }
    let readme_path = app_chart().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("chart README");
    let updated = with_table(&readme, &values_table(&rows)).unwrap_or_else(|e| panic!("{e}"));
    golden(&readme_path, &updated);
}

#[test]
fn dashboard_queries_use_documented_metrics_and_labels() {
    let docs = documented_metrics(
        &std::fs::read_to_string(repo_root().join("docs/metrics.md")).expect("docs/metrics.md"),
    );
    assert!(
        docs.len() > 20,
        "metrics read from docs/metrics.md: {docs:?}"
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(app_chart().join("dashboards/switchboard.json"))
            .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (place, query) in &queries {
        for p in check_query(query, &docs) {
            problems.push(format!("{place}: {p}\n    {query}"));
        }
        for name in docs.keys() {
            if query.contains(name.as_str()) {
                used.insert(name.as_str());
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // What the dashboard must show (issue #11).
    for needed in [
        "switchboard_requests_total",
        "switchboard_rejections_total",
        "switchboard_request_duration_seconds",
        "switchboard_time_to_first_token_seconds",
        "switchboard_team_tokens_total",
        "switchboard_team_cost_usd_total",
        "switchboard_team_rejections_total",
        "switchboard_failovers_total",
        "switchboard_circuit_breaker_state",
        "switchboard_snapshot_info",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
    assert_eq!(dashboard["uid"], "switchboard-overview");
}
