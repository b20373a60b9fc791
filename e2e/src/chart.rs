//! Helm chart test support: the `helm` binary (Helm v4, installed by `scripts/test`), rendering a
//! chart into objects, the paths of the charts in the repository, and the checks every rendered
//! install must pass (restricted pod security, no RBAC wildcard, graceful termination).
//!
//! Tests that need Helm fail when it is missing, unless `SWITCHBOARD_SKIP_HELM=1` says to skip
//! them (never honoured in CI: `scripts/test` refuses it when `CI` is set).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Environment variable naming the `helm` binary (`scripts/test` sets it).
pub const HELM_ENV: &str = "SWITCHBOARD_HELM";
/// Set to `1` to skip the Helm tests on a machine without Helm (never in CI).
pub const SKIP_ENV: &str = "SWITCHBOARD_SKIP_HELM";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The application chart's folder.
pub fn app_chart() -> PathBuf {
    repo_root().join("helm/switchboard")
}

/// The CRD chart's folder.
pub fn crds_chart() -> PathBuf {
    repo_root().join("helm/switchboard-crds")
}

/// The Helm binary.
#[derive(Clone, Debug)]
pub struct Helm {
    bin: PathBuf,
}

impl Helm {
    /// `$SWITCHBOARD_HELM`, else `helm` on `PATH`. Without one: `None` when
    /// `SWITCHBOARD_SKIP_HELM=1` (the caller prints that it skips), else a panic saying how to
    /// install it.
    pub fn get() -> Option<Helm> {
        let bin = std::env::var_os(HELM_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("helm"));
        let works = Command::new(&bin)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Some(Helm { bin });
        }
        if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
            println!("skipping: no helm ({HELM_ENV} unset and none on PATH) and {SKIP_ENV}=1");
            return None;
        }
        panic!(
            "helm not found ({} does not run): run scripts/test (it installs Helm v4 into .tools/ \
             and sets {HELM_ENV}), or set {SKIP_ENV}=1 to skip the chart tests on this machine",
            bin.display()
        );
    }

    /// Runs `helm args` (as the cluster admin of `kubeconfig`, if any); its stdout, or its stderr
    /// as the error.
    pub fn run(&self, args: &[&str], kubeconfig: Option<&Path>) -> Result<String, String> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).stdin(Stdio::null());
        if let Some(k) = kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        let out = cmd.output().map_err(|e| format!("cannot run helm: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "helm {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `helm template RELEASE CHART -n NAMESPACE` with values files and `--set` pairs.
    pub fn template(
        &self,
        chart: &Path,
        release: &str,
        namespace: &str,
        values: &[&Path],
        sets: &[&str],
    ) -> Result<String, String> {
        let chart = chart.display().to_string();
        let mut args = vec!["template", release, chart.as_str(), "-n", namespace];
        let values: Vec<String> = values.iter().map(|p| p.display().to_string()).collect();
        for v in &values {
            args.extend(["-f", v.as_str()]);
        }
        for s in sets {
            args.extend(["--set", s]);
        }
        self.run(&args, None)
    }
}

/// The objects of a multi-document YAML stream (empty documents left out).
pub fn objects(yaml: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|doc| {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"));
            (!value.is_null()).then_some(value)
        })
        .collect()
}

/// The objects of `kind`.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The one object of `kind` named `name`; panics when there is none.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered chart"))
}

/// The `--flag=value` arguments of a Deployment's first container, as (flag, value) pairs in
/// order (`value` empty for a bare `--flag`).
pub fn container_args(deployment: &Value) -> Vec<(String, String)> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| match a.split_once('=') {
            Some((f, v)) => (f.to_string(), v.to_string()),
            None => (a.to_string(), String::new()),
        })
        .collect()
}

/// The value of `--flag` among a Deployment's arguments; panics when it is absent.
pub fn arg(deployment: &Value, flag: &str) -> String {
    container_args(deployment)
        .into_iter()
        .find(|(f, _)| f == flag)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{flag} is not among the arguments of {deployment}"))
}

/// The restricted Pod Security Standard, as the chart must meet it (the cluster test also has
/// the API server's admission check each pod template).
pub fn assert_restricted(deployment: &Value) {
    let name = &deployment["metadata"]["name"];
    let pod = &deployment["spec"]["template"]["spec"];
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true, "{name}: runAsNonRoot");
    assert_eq!(psc["runAsUser"], 65532, "{name}: runAsUser");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod[key].is_null(), "{name}: {key}");
    }
    for c in pod["containers"].as_array().expect("containers") {
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["runAsNonRoot"], true, "{name}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{name}"
        );
        assert!(
            sc["capabilities"]["add"].is_null(),
            "{name}: adds capabilities"
        );
        assert!(sc["privileged"].is_null(), "{name}: privileged");
        assert!(
            c["resources"]["requests"]["cpu"].is_string(),
            "{name}: cpu request"
        );
        assert!(
            c["resources"]["requests"]["memory"].is_string(),
            "{name}: memory request"
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
    }
    for v in pod["volumes"].as_array().into_iter().flatten() {
        let kind = v
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "name"))
            .cloned()
            .unwrap_or_default();
        assert!(
            ["secret", "projected", "emptyDir", "configMap"].contains(&kind.as_str()),
            "{name}: volume type {kind} is not allowed by the restricted standard"
        );
    }
}

/// No `*` anywhere in the rules of the chart's Roles and ClusterRoles.
pub fn assert_no_wildcards(objects: &[Value]) {
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
    {
        for rule in role["rules"].as_array().expect("rules") {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                for item in rule[field].as_array().into_iter().flatten() {
                    assert!(
                        !item.as_str().unwrap_or_default().contains('*'),
                        "{} {} grants a wildcard in {field}: {rule}",
                        role["kind"],
                        role["metadata"]["name"]
                    );
                }
            }
        }
    }
}

/// Seconds of a `--flag=30s` value.
pub fn seconds(value: &str) -> u64 {
    value
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a number of seconds: {value}"))
}

/// The data plane's grace period is longer than its preStop sleep plus its drain.
pub fn assert_graceful(dataplane: &Value) {
    let pod = &dataplane["spec"]["template"]["spec"];
    let drain = seconds(&arg(dataplane, "--shutdown-grace"));
    let pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(
        grace > pre_stop + drain,
        "terminationGracePeriodSeconds {grace} is not longer than preStop {pre_stop}s + drain {drain}s"
    );
}

/// The first container of a Deployment's pod template.
fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// The volume a container mounts at the folder holding `file`, with that mount; panics when
/// none does.
fn volume_of<'a>(deployment: &'a Value, file: &str) -> (&'a Value, &'a Value) {
    let name = &deployment["metadata"]["name"];
    let mount = container(deployment)["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["mountPath"].as_str().is_some_and(|p| {
                p == file || file.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
            })
        })
        .unwrap_or_else(|| panic!("{name}: nothing is mounted where {file} is"));
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("{name}: no volume {}", mount["name"]));
    (volume, mount)
}

/// The controller ↔ data-plane TLS and identity wiring that the binaries rely on (see
/// docs/controller-kubernetes.md), for a render in `namespace`:
/// - the data plane's node id is its pod's name (`POD_NAME` from the downward API, once, and no
///   `--node-id`): its projected token is bound to the pod and the controller compares the two;
/// - its token is a projected ServiceAccount token for the controller's `--dataplane-audience`,
///   at the data plane's default path `/var/run/secrets/switchboard/token`, of the ServiceAccount
///   the controller's `--dataplane-service-account` names;
/// - the controller's `--grpc-tls-cert`/`--grpc-tls-key` and the data plane's `--controller-ca`
///   come from one Secret, mounted as volumes (only `ca.crt` for the data plane);
/// - no mount of either uses `subPath` (such files never see a rotated Secret or a refreshed
///   token), and every Secret and token mount is read-only.
pub fn assert_identity_wiring(namespace: &str, controller: &Value, dataplane: &Value) {
    for d in [controller, dataplane] {
        for m in container(d)["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(
                m["subPath"].is_null() && m["subPathExpr"].is_null(),
                "{}: {} is mounted with subPath and would never be updated",
                d["metadata"]["name"],
                m["mountPath"]
            );
            let volume = d["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == m["name"])
                .expect("mounted volume");
            if volume.get("secret").is_some() || volume.get("projected").is_some() {
                assert_eq!(m["readOnly"], true, "{}: {m}", d["metadata"]["name"]);
            }
        }
    }

    let dp = container(dataplane);
    let pod_name: Vec<&Value> = dp["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["name"] == "POD_NAME")
        .collect();
    assert_eq!(pod_name.len(), 1, "POD_NAME once in {}", dp["env"]);
    assert_eq!(
        pod_name[0]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
        "POD_NAME comes from the downward API"
    );
    assert!(
        container_args(dataplane)
            .iter()
            .all(|(f, _)| f != "--node-id"),
        "--node-id would replace the pod name the token is bound to"
    );

    let token_file = arg(dataplane, "--controller-token-file");
    assert_eq!(token_file, "/var/run/secrets/switchboard/token");
    let (volume, mount) = volume_of(dataplane, &token_file);
    let source = volume["projected"]["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| s.get("serviceAccountToken"))
        .unwrap_or_else(|| panic!("{token_file} is not a projected token: {volume}"));
    assert_eq!(
        format!(
            "{}/{}",
            mount["mountPath"].as_str().unwrap_or_default(),
            source["path"].as_str().unwrap_or_default()
        ),
        token_file
    );
    assert_eq!(source["audience"], arg(controller, "--dataplane-audience"));
    assert_eq!(
        arg(controller, "--dataplane-service-account"),
        format!(
            "{namespace}/{}",
            dataplane["spec"]["template"]["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or_default()
        )
    );

    let (cert, _) = volume_of(controller, &arg(controller, "--grpc-tls-cert"));
    let (key, _) = volume_of(controller, &arg(controller, "--grpc-tls-key"));
    let (ca, _) = volume_of(dataplane, &arg(dataplane, "--controller-ca"));
    let secret = cert["secret"]["secretName"].as_str().unwrap_or_else(|| {
        panic!("the controller's certificate is not from a Secret volume: {cert}")
    });
    assert_eq!(key["secret"]["secretName"], secret);
    assert_eq!(
        ca["secret"]["secretName"], secret,
        "the data plane trusts that Secret's CA"
    );
    assert_eq!(
        ca["secret"]["items"],
        serde_json::json!([{"key": "ca.crt", "path": "ca.crt"}]),
        "the data plane gets the CA only"
    );
}
