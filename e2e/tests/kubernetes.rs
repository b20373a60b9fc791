//! Kubernetes mode end to end, against a real cluster: the CRDs from `crds/`, the real
//! `switchboard-controller --source kube` and a real data plane connected to it.
//!
//! Runs only when a cluster is reachable through `KUBECONFIG` (and `kubectl` is installed);
//! otherwise it prints why and passes. Run it with
//!
//! ```text
//! KUBECONFIG=~/.kube/config cargo test -p switchboard-e2e --test kubernetes
//! ```
//!
//! Every wait is a watch (`kubectl wait --for=condition=...`) or an awaited condition, never
//! a fixed sleep. Each run works in its own namespace, deleted at the end.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use switchboard_e2e::harness::{binary_path, free_port, temp_dir};
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Gateway, post_json, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// Runs `kubectl args` (with `stdin` piped in, if any); its stdout, or its stderr as the error.
fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn must(args: &[&str], stdin: Option<&str>) -> String {
    kubectl(args, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// Why no cluster can be used, or `None` when one answers.
fn no_cluster() -> Option<String> {
    if std::env::var_os("KUBECONFIG").is_none_or(|v| v.is_empty()) {
        return Some("KUBECONFIG is not set".into());
    }
    kubectl(&["--request-timeout=5s", "get", "--raw", "/readyz"], None).err()
}

/// The namespace of this run; deleted (without waiting) on drop.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

/// The controller process; killed on drop.
struct KubeController {
    child: Child,
    grpc_port: u16,
    log: PathBuf,
}

impl KubeController {
    fn start(namespace: &str, dir: &Path) -> Self {
        let grpc_port = free_port();
        let log = dir.join("controller.log");
        let file = std::fs::File::create(&log).expect("create controller log");
        let child = Command::new(binary_path("switchboard-controller"))
            .args(["--source", "kube", "--namespace", namespace])
            .args([
                "--lease-namespace",
                namespace,
                "--identity",
                "e2e-controller",
            ])
            .args(["--grpc-listen", &format!("127.0.0.1:{grpc_port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file)
            .spawn()
            .expect("spawn switchboard-controller");
        Self {
            child,
            grpc_port,
            log,
        }
    }

    fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for KubeController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (a watch, through `kubectl wait`) until `objects` have `condition`.
fn wait_for(ns: &str, condition: &str, objects: &[&str], controller: &KubeController) {
    let timeout = format!("--timeout={}s", WAIT.as_secs());
    let mut args = vec!["wait", "-n", ns, "--for", condition, &timeout];
    args.extend_from_slice(objects);
    if let Err(e) = kubectl(&args, None) {
        let status = kubectl(
            &["get", "-n", ns, "aibackends,airoutes", "-o", "yaml"],
            None,
        );
        panic!(
            "{e}\nobjects: {status:?}\ncontroller log:\n{}",
            controller.log()
        );
    }
}

/// The `message` of condition `type_` of `object`.
fn condition_message(ns: &str, object: &str, type_: &str) -> String {
    let path = format!("jsonpath={{.status.conditions[?(@.type==\"{type_}\")].message}}");
    must(&["get", "-n", ns, object, "-o", &path], None)
}

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
    if let Some(why) = no_cluster() {
        println!(
            "skipping: no cluster reachable (KUBECONFIG={}): {why}",
            std::env::var("KUBECONFIG").unwrap_or_default()
        );
        return;
    }
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    must(&["apply", "-f", &crds.display().to_string()], None);
    must(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/aibackends.switchboard.dev",
            "crd/airoutes.switchboard.dev",
        ],
        None,
    );
    let ns = Namespace(format!("switchboard-e2e-{}", std::process::id()));
    must(&["create", "namespace", &ns.0], None);
    let dir = temp_dir("kubernetes");

    // Resources first, then the controller: its first snapshot serves them.
    must(
        &["apply", "-f", "-"],
        Some(&resources(&ns.0, "hello from the cluster")),
    );
    let controller = KubeController::start(&ns.0, &dir);
    wait_for(
        &ns.0,
        "condition=Accepted=True",
        &["aibackend/echo", "airoute/main"],
        &controller,
    );
    wait_for(
        &ns.0,
        "condition=Programmed=Unknown",
        &["airoute/main"],
        &controller,
    );

    // A data plane connects: both objects become Programmed, and traffic flows.
    let gateway = Gateway::start_cluster(&controller.grpc_url(), &[], &[], true).await;
    wait_for(
        &ns.0,
        "condition=Programmed=True",
        &["aibackend/echo", "airoute/main"],
        &controller,
    );
    assert!(
        condition_message(&ns.0, "airoute/main", "Programmed")
            .starts_with("1 of 1 connected data planes")
    );
    assert_eq!(ask(&gateway).await.as_deref(), Ok("hello from the cluster"));

    // An update reaches the data plane.
    must(&["apply", "-f", "-"], Some(&resources(&ns.0, "updated")));
    wait_until(WAIT, "the data plane serves the update", || async {
        ask(&gateway).await.as_deref() == Ok("updated")
    })
    .await;

    // A bad edit: the status names the field at fault, and the route says why it is out.
    must(
        &[
            "patch",
            "-n",
            &ns.0,
            "aibackend/echo",
            "--type=merge",
            "-p",
            r#"{"spec":{"provider":"OpenAICompatible","mock":null}}"#,
        ],
        None,
    );
    wait_for(
        &ns.0,
        "condition=Accepted=False",
        &["aibackend/echo"],
        &controller,
    );
    let message = condition_message(&ns.0, "aibackend/echo", "Accepted");
    assert!(message.contains("spec.endpoint"), "{message}");
    wait_for(
        &ns.0,
        "condition=ResolvedRefs=False",
        &["airoute/main"],
        &controller,
    );
    let reason = must(
        &[
            "get",
            "-n",
            &ns.0,
            "airoute/main",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"ResolvedRefs\")].reason}",
        ],
        None,
    );
    assert_eq!(reason, "BackendNotFound");
    let events = must(&["get", "events", "-n", &ns.0, "-o", "name"], None);
    assert!(
        !events.trim().is_empty(),
        "transitions are recorded as Events"
    );
}
