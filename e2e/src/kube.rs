//! Kubernetes test support: the cluster the Kubernetes suite runs against (`KUBECONFIG`, in CI
//! the real API server that `scripts/test` starts from `../shared/k8s/test-cluster`), `kubectl`,
//! a fresh namespace per test, ServiceAccount kubeconfigs (`token-for`) and the real
//! `switchboard-controller --source kube` as a local process, by default under a ServiceAccount
//! bound only to the RBAC `docs/controller-kubernetes.md` grants (`e2e/fixtures/controller-rbac.yaml`).
//!
//! A [`KubeController`] serves gRPC over TLS (a [`TestPki`] of its own) and authorises the
//! ServiceAccount [`DATAPLANE_SERVICE_ACCOUNT`] in its Lease namespace; it creates that account
//! and a token for it (audience [`DATAPLANE_AUDIENCE`], from `kubectl create token`), and
//! [`KubeController::start_dataplane`] passes the CA, server name and token file, so tests
//! that only need a connected data plane do not see any of it. A test that brings its own TLS
//! and identity flags (the chart's) sets [`KubeControllerOptions::tls_from_args`] instead: then
//! the harness adds none of them, and the harness's own data-plane helpers are unavailable.
//!
//! When `SWITCHBOARD_TEST_REQUIRE_KUBE=1` (CI sets it), [`Cluster::get`] panics if no cluster
//! answers, so the suite fails instead of skipping. Namespaces are never deleted by the tests:
//! on the test API server deletion never finishes (there is no namespace controller), and
//! names are unique per test, so runs never collide.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::harness::{Gateway, binary_path, free_port, log_path, tail};
use crate::pki::{SERVER_NAME, TestPki};

/// The ServiceAccount a [`KubeController`] authorises (in its Lease namespace).
pub const DATAPLANE_SERVICE_ACCOUNT: &str = "switchboard-dataplane";
/// The audience of data-plane tokens (the controller's default).
pub const DATAPLANE_AUDIENCE: &str = "switchboard-controller";

/// How long a test waits for a condition in the cluster.
pub const WAIT: Duration = Duration::from_secs(60);

/// A reachable cluster.
#[derive(Clone, Debug)]
pub struct Cluster {
    kubeconfig: PathBuf,
    /// The test cluster's DIR (for `token-for`), when known.
    dir: Option<PathBuf>,
}

/// Namespace of the controller's ServiceAccount in the suite.
pub const CONTROLLER_SA_NAMESPACE: &str = "switchboard-e2e-system";
/// Name of the controller's ServiceAccount in the suite.
pub const CONTROLLER_SA: &str = "switchboard-controller";

/// The RBAC fixture: the two ClusterRoles the docs grant the controller.
pub fn rbac_fixture() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/controller-rbac.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `kubectl args` under `kubeconfig` (with `stdin` piped in, if any); its stdout, or its
/// stderr as the error.
pub fn kubectl_as(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
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

/// Whether the suite must run (CI): `SWITCHBOARD_TEST_REQUIRE_KUBE=1`.
pub fn required() -> bool {
    std::env::var("SWITCHBOARD_TEST_REQUIRE_KUBE").is_ok_and(|v| v == "1")
}

impl Cluster {
    /// The cluster of `KUBECONFIG` when its API server answers `/readyz`. Without one: `None`
    /// (the caller prints that it skips), or a panic when [`required`].
    pub fn get() -> Option<Cluster> {
        let why = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            None => "KUBECONFIG is not set".to_string(),
            Some(path) => {
                let kubeconfig = PathBuf::from(path);
                match kubectl_as(
                    &kubeconfig,
                    &["--request-timeout=5s", "get", "--raw", "/readyz"],
                    None,
                ) {
                    Ok(_) => {
                        let dir = std::env::var_os("TEST_CLUSTER_DIR").map(PathBuf::from);
                        return Some(Cluster { kubeconfig, dir });
                    }
                    Err(e) => e,
                }
            }
        };
        if required() {
            panic!("SWITCHBOARD_TEST_REQUIRE_KUBE=1 but no cluster is reachable: {why}");
        }
        println!("skipping: no cluster reachable: {why}");
        None
    }

    /// The cluster of an admin `kubeconfig` made by the test cluster in `dir`.
    pub fn at(kubeconfig: PathBuf, dir: PathBuf) -> Cluster {
        Cluster {
            kubeconfig,
            dir: Some(dir),
        }
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `kubectl args` as the cluster admin.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        kubectl_as(&self.kubeconfig, args, stdin)
    }

    /// `kubectl args` as the cluster admin; panics with kubectl's error.
    pub fn must(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.kubectl(args, stdin).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kubectl apply -f -` of `yaml` (JSON is YAML too).
    pub fn apply(&self, yaml: &str) -> String {
        self.must(&["apply", "-f", "-"], Some(yaml))
    }

    /// Server-side apply of `yaml` with `--force-conflicts`: one idempotent PATCH per object,
    /// for objects that tests running in parallel share (cluster-wide RBAC). A client-side
    /// `apply` reads and then creates, so two parallel first applies race to `AlreadyExists`.
    pub fn apply_shared(&self, yaml: &str) -> String {
        self.must(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=switchboard-e2e",
                "-f",
                "-",
            ],
            Some(yaml),
        )
    }

    /// Applies the CRDs from `crds/` (once per test process) and waits until they are served.
    pub fn install_crds(&self) {
        static DONE: OnceLock<()> = OnceLock::new();
        DONE.get_or_init(|| self.apply_crds());
    }

    /// Applies the CRDs from `crds/` now and waits until they are served.
    pub fn apply_crds(&self) {
        {
            let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
            self.must(
                &[
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "-f",
                    &crds.display().to_string(),
                ],
                None,
            );
            self.must(
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
        }
    }

    /// A kubeconfig for the controller's ServiceAccount, bound only to the documented RBAC
    /// (`e2e/fixtures/controller-rbac.yaml`): the objects role in each of `namespaces` (with a
    /// ClusterRoleBinding when empty: every namespace) and the Lease role in `lease_namespace`.
    pub fn controller_kubeconfig(&self, namespaces: &[String], lease_namespace: &str) -> PathBuf {
        self.controller_kubeconfig_with(&rbac_fixture(), "", namespaces, lease_namespace)
    }

    /// Like [`Cluster::controller_kubeconfig`] with other ClusterRoles (`roles`, named as in the
    /// fixture) for a ServiceAccount of its own: every name gets `suffix`, so a test that takes
    /// a permission away never changes what the other tests run with.
    pub fn controller_kubeconfig_with(
        &self,
        roles: &str,
        suffix: &str,
        namespaces: &[String],
        lease_namespace: &str,
    ) -> PathBuf {
        let objects_role = format!("switchboard-controller{suffix}");
        let leases_role = format!("switchboard-controller-leases{suffix}");
        let tokenreviews_role = format!("switchboard-controller-tokenreviews{suffix}");
        let account = format!("{CONTROLLER_SA}{suffix}");
        let roles = roles
            .replace(
                "name: switchboard-controller-tokenreviews\n",
                &format!("name: {tokenreviews_role}\n"),
            )
            .replace(
                "name: switchboard-controller-leases\n",
                &format!("name: {leases_role}\n"),
            )
            .replace(
                "name: switchboard-controller\n",
                &format!("name: {objects_role}\n"),
            );
        self.apply_shared(&roles);
        // One token per cluster, account and process: `token-for` rewrites the file, which a
        // controller starting in a parallel test could read half-written.
        type Tokens = Vec<((PathBuf, String), PathBuf)>;
        static TOKENS: std::sync::Mutex<Tokens> = std::sync::Mutex::new(Vec::new());
        let kubeconfig = {
            let mut tokens = TOKENS.lock().unwrap();
            let key = (self.kubeconfig.clone(), account.clone());
            match tokens.iter().find(|(k, _)| k == &key) {
                Some((_, path)) => path.clone(),
                None => {
                    let path = self.token_for(CONTROLLER_SA_NAMESPACE, &account);
                    tokens.push((key, path.clone()));
                    path
                }
            }
        };
        let subject = serde_json::json!([{"kind": "ServiceAccount", "name": account,
                                          "namespace": CONTROLLER_SA_NAMESPACE}]);
        let binding = |kind: &str, name: &str, ns: Option<&str>, role: &str| {
            let mut meta = serde_json::json!({ "name": name });
            if let Some(ns) = ns {
                meta["namespace"] = serde_json::json!(ns);
            }
            serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": subject})
        };
        let mut items = Vec::new();
        if namespaces.is_empty() {
            let name = format!("{objects_role}-e2e");
            items.push(binding("ClusterRoleBinding", &name, None, &objects_role));
        }
        for ns in namespaces {
            items.push(binding(
                "RoleBinding",
                &objects_role,
                Some(ns),
                &objects_role,
            ));
        }
        items.push(binding(
            "RoleBinding",
            &leases_role,
            Some(lease_namespace),
            &leases_role,
        ));
        // A role the caller left out (a test taking a permission away) is not bound.
        if roles.contains(&format!("name: {tokenreviews_role}\n")) {
            let name = format!("{tokenreviews_role}-e2e");
            items.push(binding(
                "ClusterRoleBinding",
                &name,
                None,
                &tokenreviews_role,
            ));
        }
        self.apply_shared(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
        );
        kubeconfig
    }

    /// Creates a namespace no other test (or run) uses: `<prefix>-<pid>-<n>`.
    pub fn namespace(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let ns = format!("{prefix}-{}-{n}", std::process::id());
        self.must(&["create", "namespace", &ns], None);
        ns
    }

    /// A kubeconfig that authenticates as ServiceAccount `namespace/name` (created if needed),
    /// made by the test cluster's `token-for`. Needs `TEST_CLUSTER_DIR` (set by
    /// `test-cluster start`); panics without it.
    pub fn token_for(&self, namespace: &str, name: &str) -> PathBuf {
        let dir = self
            .dir
            .clone()
            .expect("TEST_CLUSTER_DIR is set by ../shared/k8s/test-cluster start");
        let out = Command::new(Path::new(&dir).join("token-for"))
            .args([namespace, name])
            .output()
            .expect("run token-for");
        assert!(
            out.status.success(),
            "token-for {namespace} {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// Creates ServiceAccount `namespace/name` unless it exists.
    pub fn service_account(&self, namespace: &str, name: &str) {
        let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace}});
        self.apply(&sa.to_string());
    }

    /// A token of ServiceAccount `namespace/name` for `audience` (`kubectl create token`,
    /// valid for an hour); `extra` adds flags such as `--bound-object-kind`.
    pub fn create_token(
        &self,
        namespace: &str,
        name: &str,
        audience: &str,
        extra: &[&str],
    ) -> String {
        let mut args = vec![
            "create",
            "token",
            name,
            "-n",
            namespace,
            "--audience",
            audience,
            "--duration",
            "1h",
        ];
        args.extend_from_slice(extra);
        self.must(&args, None).trim().to_string()
    }

    /// The `message` of condition `type_` of `object` (`kind/name`) in `ns`.
    pub fn condition(&self, ns: &str, object: &str, type_: &str, field: &str) -> String {
        let path = format!("jsonpath={{.status.conditions[?(@.type==\"{type_}\")].{field}}}");
        self.must(&["get", "-n", ns, object, "-o", &path], None)
    }

    /// Waits (a watch, through `kubectl wait`) until every one of `objects` in `ns` meets
    /// `condition` (e.g. `condition=Accepted=True`); panics with the objects and `context`.
    pub fn wait_for(
        &self,
        ns: &str,
        condition: &str,
        objects: &[&str],
        context: impl Fn() -> String,
    ) {
        let timeout = format!("--timeout={}s", WAIT.as_secs());
        let mut args = vec!["wait", "-n", ns, "--for", condition, &timeout];
        args.extend_from_slice(objects);
        if let Err(e) = self.kubectl(&args, None) {
            let status = self.kubectl(
                &["get", "-n", ns, "aibackends,airoutes,aiteams", "-o", "yaml"],
                None,
            );
            panic!("{e}\nobjects: {status:?}\n{}", context());
        }
    }
}

/// The TLS material and data-plane token of the controllers of one Lease namespace: every
/// replica (and a restarted controller) serves the same certificate, so a data plane behind a
/// proxy follows them all.
#[derive(Debug)]
pub struct ChannelSecurity {
    pki: TestPki,
    token_file: PathBuf,
    namespace: String,
}

impl ChannelSecurity {
    /// The material of `namespace` on `cluster`, made on first use: a test CA and certificate,
    /// the ServiceAccount [`DATAPLANE_SERVICE_ACCOUNT`] and a token for it.
    fn for_namespace(cluster: &Cluster, namespace: &str) -> Arc<ChannelSecurity> {
        type Made = Vec<((PathBuf, String), Arc<ChannelSecurity>)>;
        static MADE: Mutex<Made> = Mutex::new(Vec::new());
        let key = (cluster.kubeconfig().to_path_buf(), namespace.to_string());
        let mut made = MADE.lock().unwrap();
        if let Some((_, security)) = made.iter().find(|(k, _)| k == &key) {
            return security.clone();
        }
        let pki = TestPki::new("kube-ctl");
        cluster.service_account(namespace, DATAPLANE_SERVICE_ACCOUNT);
        let token = cluster.create_token(
            namespace,
            DATAPLANE_SERVICE_ACCOUNT,
            DATAPLANE_AUDIENCE,
            &[],
        );
        let token_file = pki.dir().join("dataplane-token");
        std::fs::write(&token_file, token).expect("write the data-plane token");
        let security = Arc::new(ChannelSecurity {
            pki,
            token_file,
            namespace: namespace.to_string(),
        });
        made.push((key, security.clone()));
        security
    }
}

/// Options of a [`KubeController`].
#[derive(Clone, Debug, Default)]
pub struct KubeControllerOptions {
    /// Namespaces to watch (`--namespace`); empty: all.
    pub namespaces: Vec<String>,
    /// Namespace of the Lease; defaults to the first watched namespace.
    pub lease_namespace: Option<String>,
    /// `--identity`; defaults to `e2e-controller-<n>`.
    pub identity: Option<String>,
    /// Kubeconfig the controller runs under; defaults to the controller's ServiceAccount bound
    /// only to the documented RBAC ([`Cluster::controller_kubeconfig`]).
    pub kubeconfig: Option<PathBuf>,
    /// More arguments.
    pub args: Vec<String>,
    /// `args` carry the TLS and data-plane identity flags (`--grpc-tls-cert`, `--grpc-tls-key`,
    /// `--dataplane-service-account`, ...), e.g. a chart's: the harness then adds no test CA,
    /// certificate, ServiceAccount or token of its own, and [`KubeController::pki`] and the
    /// `start_dataplane*` helpers panic. Without it, `args` must not carry those flags.
    pub tls_from_args: bool,
}

/// The flags a [`KubeController`] sets itself unless [`KubeControllerOptions::tls_from_args`].
const HARNESS_TLS_FLAGS: &[&str] = &[
    "--grpc-tls-cert",
    "--grpc-tls-key",
    "--grpc-insecure-plaintext",
    "--dataplane-service-account",
    "--dataplane-audience",
    "--dataplane-token-file",
];

/// The real `switchboard-controller --source kube` as a local process; killed on drop.
#[derive(Debug)]
pub struct KubeController {
    child: Child,
    grpc_port: u16,
    admin_port: u16,
    log: PathBuf,
    /// `None` with [`KubeControllerOptions::tls_from_args`].
    security: Option<Arc<ChannelSecurity>>,
    identity: String,
}

impl KubeController {
    /// Starts a controller on `cluster` with `options`. Does not wait for anything.
    pub fn start(cluster: &Cluster, options: &KubeControllerOptions) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let grpc_port = free_port();
        let admin_port = free_port();
        let log = log_path();
        let file = std::fs::File::create(&log).expect("create controller log");
        let identity = options
            .identity
            .clone()
            .unwrap_or_else(|| format!("e2e-controller-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let mut cmd = Command::new(binary_path("switchboard-controller"));
        cmd.args(["--source", "kube"]);
        for ns in &options.namespaces {
            cmd.args(["--namespace", ns]);
        }
        let lease_ns = options
            .lease_namespace
            .clone()
            .or_else(|| options.namespaces.first().cloned())
            .unwrap_or_else(|| "default".to_string());
        // TLS and data-plane identity, shared by every controller of this Lease namespace (the
        // replicas of one installation, a restarted controller): one test CA and certificate,
        // and a token of the authorised ServiceAccount for data planes started through
        // `start_dataplane`; or none of it when the arguments bring their own.
        let security = if options.tls_from_args {
            None
        } else {
            if let Some(flag) = options
                .args
                .iter()
                .find(|a| HARNESS_TLS_FLAGS.contains(&a.split('=').next().unwrap_or_default()))
            {
                panic!("{flag} is set by KubeController: pass tls_from_args to set it yourself");
            }
            let security = ChannelSecurity::for_namespace(cluster, &lease_ns);
            cmd.arg("--grpc-tls-cert")
                .arg(security.pki.cert())
                .arg("--grpc-tls-key")
                .arg(security.pki.key())
                .args([
                    "--dataplane-service-account",
                    &format!("{lease_ns}/{DATAPLANE_SERVICE_ACCOUNT}"),
                ]);
            Some(security)
        };
        let kubeconfig = options
            .kubeconfig
            .clone()
            .unwrap_or_else(|| cluster.controller_kubeconfig(&options.namespaces, &lease_ns));
        cmd.args(["--lease-namespace", &lease_ns, "--identity", &identity])
            .args(["--grpc-listen", &format!("127.0.0.1:{grpc_port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .args(&options.args)
            .env("KUBECONFIG", &kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file);
        let child = cmd.spawn().expect("spawn switchboard-controller");
        Self {
            child,
            grpc_port,
            admin_port,
            log,
            security,
            identity,
        }
    }

    /// Its `--identity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The sum of metric `name` with `labels` on its admin port (0 when absent or unreachable).
    pub async fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        crate::harness::metric_sum(&self.metrics().await, name, labels)
    }

    fn security(&self) -> &ChannelSecurity {
        self.security.as_deref().expect(
            "this controller runs with the TLS and identity flags of its args (tls_from_args): \
             the test knows its CA and data-plane token",
        )
    }

    /// The gRPC address as a URL (`https://127.0.0.1:PORT`).
    pub fn grpc_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.grpc_port)
    }

    /// The TLS material of the gRPC port.
    pub fn pki(&self) -> &TestPki {
        &self.security().pki
    }

    /// The namespace of the authorised data-plane ServiceAccount (the Lease namespace).
    pub fn dataplane_namespace(&self) -> &str {
        &self.security().namespace
    }

    /// The file holding the authorised data-plane token.
    pub fn dataplane_token_file(&self) -> &Path {
        &self.security().token_file
    }

    /// The flags a data plane needs to follow this controller, except `--controller` and the
    /// token file: the CA and the server name.
    pub fn dataplane_tls_args(&self) -> Vec<String> {
        vec![
            "--controller-ca".into(),
            self.pki().ca().display().to_string(),
            "--controller-server-name".into(),
            SERVER_NAME.into(),
        ]
    }

    /// The gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// The admin address as a URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// Starts a data plane following this controller, with extra arguments; with `wait_ready`,
    /// waits until it serves a snapshot. Tests start data planes only through this, so the
    /// connection settings (TLS, identity) live in one place.
    pub async fn start_dataplane(&self, args: &[&str], wait_ready: bool) -> Gateway {
        self.start_dataplane_at(&self.grpc_url(), args, wait_ready)
            .await
    }

    /// Starts a data plane following the controller(s) at `url` (e.g. a [`crate::tcp_proxy`]
    /// in front of several replicas of this Lease namespace, as a Service is), like
    /// [`KubeController::start_dataplane`].
    pub async fn start_dataplane_at(&self, url: &str, args: &[&str], wait_ready: bool) -> Gateway {
        self.start_dataplane_with_token_at(url, self.dataplane_token_file(), args, wait_ready)
            .await
    }

    /// Like [`KubeController::start_dataplane`] with the token in `token_file`.
    pub async fn start_dataplane_with_token(
        &self,
        token_file: &Path,
        args: &[&str],
        wait_ready: bool,
    ) -> Gateway {
        self.start_dataplane_with_token_at(&self.grpc_url(), token_file, args, wait_ready)
            .await
    }

    async fn start_dataplane_with_token_at(
        &self,
        url: &str,
        token_file: &Path,
        args: &[&str],
        wait_ready: bool,
    ) -> Gateway {
        let mut all = self.dataplane_tls_args();
        all.extend([
            "--controller-token-file".into(),
            token_file.display().to_string(),
        ]);
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Gateway::start_cluster(url, &[], &all, wait_ready).await
    }

    /// The text of its `/metrics` (empty while the admin port does not answer).
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.admin_url());
        match crate::client::try_request(http::Method::GET, &url, &[], bytes::Bytes::new()).await {
            Ok((_, _, body)) => String::from_utf8_lossy(&body).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// The snapshot version it serves, once it has rendered one (waits up to [`WAIT`]).
    pub async fn served_version(&self) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let version = self.metrics().await.lines().find_map(|l| {
                let rest = l.strip_prefix("switchboard_controller_snapshot_info{version=\"")?;
                rest.split_once('"').map(|(v, _)| v.to_string())
            });
            if let Some(v) = version {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the controller rendered no snapshot within {WAIT:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for panic messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Sends SIGTERM and waits (up to 10 s, then SIGKILL) for the process to end.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KubeController {
    fn drop(&mut self) {
        self.kill();
        // Kept only for a failing test (its messages name it): a passing run leaves nothing
        // behind.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
