//! Building blocks of the Kubernetes suite's scenarios: AIBackend, AIRoute and Secret objects as
//! JSON, requests through a data plane with a host and a key, and waits on conditions.

use serde_json::{Value, json};

use crate::harness::Gateway;
use crate::kube::Cluster;
use crate::stack::{chat_body, messages_body};

/// A Mock AIBackend answering `reply`.
pub fn mock_backend(ns: &str, name: &str, reply: &str) -> Value {
    json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"provider": "Mock", "mock": {"reply": reply}}})
}

/// An AIRoute on `prefix` (and `hosts`) sending every model to `backend`; `extra` is merged
/// into its spec (e.g. `auth`, `guards`).
pub fn route(
    ns: &str,
    name: &str,
    hosts: &[&str],
    prefix: &str,
    backend: &str,
    extra: Value,
) -> Value {
    let mut spec = json!({"pathPrefix": prefix, "hostnames": hosts,
                          "rules": [{"models": ["*"], "backends": [{"name": backend}]}]});
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// `auth` for a route accepting the key in Secret `secret` (key `apiKey`).
pub fn api_key_auth(secret: &str) -> Value {
    json!({"auth": {"apiKeys": [{"name": "team", "secretRef": {"name": secret}}]}})
}

/// A Secret holding `apiKey: value`.
pub fn secret(ns: &str, name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
           "stringData": {"apiKey": value}})
}

/// A `kind: List` of `items`, for one `kubectl apply`.
pub fn list(items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// A reply through `gateway`: status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Null` when not JSON).
    pub body: Value,
}

impl Reply {
    /// The assistant text of a successful Chat Completions answer.
    pub fn text(&self) -> &str {
        self.body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
    }
}

/// A Chat Completions request through `gateway` with `Host: host` and, if any, `key`.
pub async fn chat(gateway: &Gateway, host: &str, path_prefix: &str, key: Option<&str>) -> Reply {
    let url = format!(
        "{}{}/v1/chat/completions",
        gateway.base_url(),
        path_prefix.trim_end_matches('/')
    );
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("host", host)];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let (status, _, body) =
        crate::client::post_json(&url, &headers, &chat_body("any-model", false)).await;
    Reply {
        status: status.as_u16(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// An Anthropic Messages request through `gateway` with `Host: host`.
pub async fn messages(gateway: &Gateway, host: &str, path_prefix: &str) -> Reply {
    let url = format!(
        "{}{}/v1/messages",
        gateway.base_url(),
        path_prefix.trim_end_matches('/')
    );
    let headers = [("host", host), ("anthropic-version", "2023-06-01")];
    let (status, _, body) =
        crate::client::post_json(&url, &headers, &messages_body("any-model", false)).await;
    Reply {
        status: status.as_u16(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// Waits until condition `type_` of `object` in `ns` has `reason`.
pub fn wait_reason(
    cluster: &Cluster,
    ns: &str,
    object: &str,
    type_: &str,
    reason: &str,
    context: impl Fn() -> String,
) {
    let condition =
        format!("jsonpath={{.status.conditions[?(@.type==\"{type_}\")].reason}}={reason}");
    cluster.wait_for(ns, &condition, &[object], context);
}

/// The events of `ns` as JSON items (`events.k8s.io/v1`).
pub fn events(cluster: &Cluster, ns: &str) -> Vec<Value> {
    let text = cluster.must(
        &["get", "events.v1.events.k8s.io", "-n", ns, "-o", "json"],
        None,
    );
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The `metadata.resourceVersion` of every AIBackend and AIRoute in `ns`, by `kind/name`.
pub fn resource_versions(
    cluster: &Cluster,
    ns: &str,
) -> std::collections::BTreeMap<String, String> {
    let text = cluster.must(
        &["get", "-n", ns, "aibackends,airoutes", "-o", "json"],
        None,
    );
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                ),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// A copy of `kubeconfig` whose API server is `127.0.0.1:port` (a [`crate::tcp_proxy`] in front
/// of the real one; the certificate names 127.0.0.1, so TLS still verifies).
pub fn kubeconfig_via(kubeconfig: &std::path::Path, port: u16) -> std::path::PathBuf {
    let text = std::fs::read_to_string(kubeconfig).expect("read kubeconfig");
    let mut out = String::new();
    for line in text.lines() {
        match line.find("https://127.0.0.1:") {
            Some(i) => {
                let rest = &line[i + "https://127.0.0.1:".len()..];
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                out.push_str(&line[..i]);
                out.push_str(&format!("https://127.0.0.1:{port}"));
                out.push_str(&rest[digits..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    let path = crate::harness::temp_dir("kubeconfig").join(format!("via-{port}"));
    std::fs::write(&path, out).expect("write kubeconfig");
    path
}

/// The API server port of `kubeconfig` (`https://127.0.0.1:PORT`).
pub fn api_server_port(kubeconfig: &std::path::Path) -> u16 {
    let text = std::fs::read_to_string(kubeconfig).expect("read kubeconfig");
    let at = text
        .find("https://127.0.0.1:")
        .expect("a loopback API server")
        + "https://127.0.0.1:".len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a port")
}

/// A test cluster of its own (`../shared/k8s/test-cluster start DIR`), for a test that stops
/// and restarts the API server; stopped when dropped.
pub struct OwnCluster {
    script: std::path::PathBuf,
    dir: std::path::PathBuf,
    /// The cluster, as its admin.
    pub cluster: Cluster,
}

impl OwnCluster {
    /// The `test-cluster` script: `SWITCHBOARD_TEST_CLUSTER` (set by `scripts/test`), else
    /// `../shared/k8s/test-cluster` beside the checkout, else `/work/shared/k8s/test-cluster`.
    pub fn script() -> Option<std::path::PathBuf> {
        let beside =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/k8s/test-cluster");
        std::env::var_os("SWITCHBOARD_TEST_CLUSTER")
            .map(std::path::PathBuf::from)
            .into_iter()
            .chain([
                beside,
                std::path::PathBuf::from("/work/shared/k8s/test-cluster"),
            ])
            .find(|p| p.is_file())
    }

    /// Starts a cluster of its own (about 10 s); `None` (after printing why) without the script,
    /// a panic when the suite is required to run.
    pub fn start(label: &str) -> Option<OwnCluster> {
        let Some(script) = Self::script() else {
            assert!(
                !crate::kube::required(),
                "SWITCHBOARD_TEST_REQUIRE_KUBE=1 but no test-cluster script (set SWITCHBOARD_TEST_CLUSTER)"
            );
            println!("skipping: no test-cluster script");
            return None;
        };
        let dir = crate::harness::temp_dir(label).join("cluster");
        let own = OwnCluster {
            cluster: Cluster::at(dir.join("kubeconfig"), dir.clone()),
            script,
            dir,
        };
        own.up();
        Some(own)
    }

    /// (Re)starts its etcd and API server (the data in DIR is kept; the port changes).
    pub fn up(&self) {
        let out = std::process::Command::new(&self.script)
            .arg("start")
            .arg(&self.dir)
            .output()
            .expect("run test-cluster start");
        assert!(
            out.status.success(),
            "test-cluster start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops its API server and etcd.
    pub fn down(&self) {
        let _ = std::process::Command::new(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }

    /// The API server's current port.
    pub fn port(&self) -> u16 {
        api_server_port(self.cluster.kubeconfig())
    }
}

impl Drop for OwnCluster {
    /// Stops the cluster and, unless the test is failing (its logs are then
    /// worth keeping), deletes its folder: etcd's data and the binaries'
    /// copies take about 150 MB per cluster.
    fn drop(&mut self) {
        self.down();
        if !std::thread::panicking()
            && let Some(folder) = self.dir.parent()
        {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}
