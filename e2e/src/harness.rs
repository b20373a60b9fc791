//! Process harness for the real `switchboard-dataplane` binary: free ports, log capture, readiness
//! polling, kill on drop; plus atomic config writes and condition polling.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;

use crate::client;

/// Name of the gateway binary.
pub const GATEWAY_BIN: &str = "switchboard-dataplane";
/// Environment variable naming the directory holding the binaries.
pub const BIN_DIR_ENV: &str = "SWITCHBOARD_BIN_DIR";
/// How long the gateway may take to become ready (or to exit, for broken configs).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between polls in [`wait_until`] and readiness checks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

static LOG_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Directory holding the workspace binaries: `$SWITCHBOARD_BIN_DIR`, else the parent of the
/// directory of the running test executable (`target/debug/deps/..`), else that directory itself.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// Path of a workspace binary; panics with instructions when it is missing.
pub fn binary_path(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "binary {} not found; build it first (`cargo build -p switchboard-dataplane -p switchboard-controller -p switchboard-e2e`) \
         or set {BIN_DIR_ENV} to the directory that contains it",
        path.display()
    );
    path
}

/// Lowest port [`free_port`] hands out.
const PORT_RANGE_START: u16 = 20_000;
/// One past the highest port [`free_port`] hands out; below Linux's default ephemeral range
/// (32768–60999), which outgoing connections draw their source ports from.
const PORT_RANGE_END: u16 = 32_000;

/// Picks a free TCP port on 127.0.0.1 for a process the test starts.
///
/// The port is released before the process binds it, so another socket could take it in
/// between. Ports are therefore drawn at random from below the kernel's ephemeral range: the
/// many outgoing test connections (whose source ports come from that range) can never take
/// them. A port is handed out at most once per test process (two tests starting processes at
/// the same moment would otherwise draw the same port now and then: a few hundred draws from
/// 12,000 ports collide more often than not), and it is checked by binding it once.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static HANDED_OUT: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for attempt in 0u64..10_000 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(attempt);
        let span = u64::from(PORT_RANGE_END - PORT_RANGE_START);
        let port = PORT_RANGE_START + u16::try_from(hasher.finish() % span).unwrap_or(0);
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind for free port");
    listener.local_addr().expect("local addr").port()
}

pub(crate) fn log_path() -> PathBuf {
    let n = LOG_COUNTER.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!(
        "switchboard-e2e-gateway-{}-{n}.log",
        std::process::id()
    ))
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A running gateway process; killed on drop.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    port: u16,
    admin_port: u16,
    log: PathBuf,
}

fn command(config_path: &Path, port: u16, admin_port: u16, envs: &[(&str, &str)]) -> Command {
    command_with_source(
        &[OsStr::new("--config"), config_path.as_os_str()],
        port,
        admin_port,
        envs,
    )
}

fn command_with_source(
    source: &[&OsStr],
    port: u16,
    admin_port: u16,
    envs: &[(&str, &str)],
) -> Command {
    let mut cmd = Command::new(binary_path(GATEWAY_BIN));
    cmd.args(source)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{admin_port}"))
        .arg("--reload-interval")
        .arg("200ms")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
        )
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

impl Gateway {
    /// Starts the gateway on `config_path` (file or directory) with extra environment variables,
    /// and waits until `/readyz` answers 200. Panics (showing the log) when it exits or is not ready
    /// within [`START_TIMEOUT`].
    pub async fn start(config_path: &Path, envs: &[(&str, &str)]) -> Gateway {
        Self::start_with_args(config_path, envs, &[]).await
    }

    /// Like [`Gateway::start`] with extra command-line arguments (e.g. `["--log-format", "json"]`).
    pub async fn start_with_args(
        config_path: &Path,
        envs: &[(&str, &str)],
        args: &[&str],
    ) -> Gateway {
        let port = free_port();
        let admin_port = free_port();
        let log = log_path();
        let file = std::fs::File::create(&log).expect("create gateway log file");
        let mut cmd = command(config_path, port, admin_port, envs);
        cmd.args(args)
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GATEWAY_BIN}: {e}"));
        let mut gateway = Gateway {
            child,
            port,
            admin_port,
            log,
        };
        gateway.wait_ready().await;
        gateway
    }

    /// Like [`Gateway::start_with_args`], with the process's open-files limit (soft and hard) set
    /// to `nofile` first (`ulimit -n` in a shell that then runs the gateway).
    pub async fn start_with_nofile(
        config_path: &Path,
        envs: &[(&str, &str)],
        args: &[&str],
        nofile: u32,
    ) -> Gateway {
        let port = free_port();
        let admin_port = free_port();
        let log = log_path();
        let file = std::fs::File::create(&log).expect("create gateway log file");
        let inner = command(config_path, port, admin_port, envs);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(inner.get_program())
            .args(inner.get_args())
            .args(args)
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GATEWAY_BIN} under sh: {e}"));
        let mut gateway = Gateway {
            child,
            port,
            admin_port,
            log,
        };
        gateway.wait_ready().await;
        gateway
    }

    /// Starts the gateway in cluster mode, following the controller at `controller_url`, with
    /// extra environment variables and arguments (e.g. `["--snapshot-cache", path]`). With
    /// `wait_ready`, waits until `/readyz` answers 200 (see [`Gateway::wait_ready`]); otherwise
    /// returns once the process is spawned.
    pub async fn start_cluster(
        controller_url: &str,
        envs: &[(&str, &str)],
        args: &[&str],
        wait_ready: bool,
    ) -> Gateway {
        let port = free_port();
        let admin_port = free_port();
        let log = log_path();
        let file = std::fs::File::create(&log).expect("create gateway log file");
        let mut cmd = command_with_source(
            &[OsStr::new("--controller"), OsStr::new(controller_url)],
            port,
            admin_port,
            envs,
        );
        cmd.args(args)
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GATEWAY_BIN}: {e}"));
        let mut gateway = Gateway {
            child,
            port,
            admin_port,
            log,
        };
        if wait_ready {
            gateway.wait_ready().await;
        }
        gateway
    }

    /// Status and body of `/readyz`; `None` while the admin port does not answer.
    pub async fn readyz(&self) -> Option<(u16, String)> {
        let url = format!("{}/readyz", self.admin_url());
        let (status, _, body) = client::try_request(Method::GET, &url, &[], Bytes::new())
            .await
            .ok()?;
        Some((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
    }

    /// The version `/config` reports, if one is served.
    pub async fn config_version(&self) -> Option<String> {
        let url = format!("{}/config", self.admin_url());
        let (_, _, body) = client::try_request(Method::GET, &url, &[], Bytes::new())
            .await
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
        json["version"].as_str().map(str::to_string)
    }

    /// Waits until `/readyz` answers 200; panics (showing the log) when the process exits or is
    /// not ready within [`START_TIMEOUT`].
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("{}/readyz", self.admin_url());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "gateway exited with {status} before becoming ready; log {}:\n{}",
                    self.log.display(),
                    tail(&self.log)
                );
            }
            if let Ok((status, _, _)) =
                client::try_request(Method::GET, &url, &[], Bytes::new()).await
                && status == 200
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "gateway not ready ({url}) within {START_TIMEOUT:?}; log {}:\n{}",
                    self.log.display(),
                    tail(&self.log)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Starts the gateway on a config it must reject at startup; returns its exit status and output.
    /// Panics if it is still running (or became ready) after [`START_TIMEOUT`].
    pub async fn start_expect_failure(
        config_path: &Path,
        envs: &[(&str, &str)],
    ) -> (ExitStatus, String) {
        let port = free_port();
        let admin_port = free_port();
        let log = log_path();
        let file = std::fs::File::create(&log).expect("create gateway log file");
        let mut cmd = command(config_path, port, admin_port, envs);
        cmd.stdout(file.try_clone().expect("clone log file"))
            .stderr(file);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GATEWAY_BIN}: {e}"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                return (status, output);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gateway still running after {START_TIMEOUT:?} on a config expected to fail; log {}:\n{}",
                    log.display(),
                    tail(&log)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Traffic base URL, e.g. `http://127.0.0.1:40001`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Admin base URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the captured stdout/stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Captured output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The Prometheus text from `/metrics`.
    pub async fn metrics(&self) -> String {
        let (status, _, body) = client::get(&format!("{}/metrics", self.admin_url()), &[]).await;
        assert_eq!(
            status,
            200,
            "/metrics answered {status}; log {}",
            self.log.display()
        );
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Sum of all samples of metric `name` whose label set contains every `labels` pair
    /// (`name` must match exactly, e.g. `foo_total`, not a prefix).
    pub async fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics().await, name, labels)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the gateway with SIGTERM (graceful: it drains and writes the log lines it still
    /// buffers) and returns its exit status; panics when it is still running after
    /// [`START_TIMEOUT`].
    pub async fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not stop within {START_TIMEOUT:?} of SIGTERM"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("gateway log: {}\n{}", self.log.display(), tail(&self.log));
        } else {
            // Kept only for a failing test: a passing run leaves nothing behind.
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Sums samples of `name` in Prometheus text whose labels include all `labels` pairs.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            if all { value.parse::<f64>().ok() } else { None }
        })
        .sum()
}

/// Writes `contents` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_file_atomic(path: &Path, contents: &str) {
    let dir = path.parent().expect("config path has a parent");
    std::fs::create_dir_all(dir).expect("create config dir");
    let n = LOG_COUNTER.fetch_add(1, Ordering::SeqCst);
    let tmp = dir.join(format!(
        ".{}.tmp{n}",
        path.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("config")
    ));
    std::fs::write(&tmp, contents).expect("write temp config");
    std::fs::rename(&tmp, path).expect("rename temp config");
}

/// Writes `yaml` atomically to `dir/config.yaml` and returns that path.
pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    write_file_atomic(&path, yaml);
    path
}

/// A fresh, empty temporary directory (not removed automatically; lives under the system temp dir).
pub fn temp_dir(label: &str) -> PathBuf {
    let n = LOG_COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "switchboard-e2e-{label}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Polls `condition` every [`POLL_INTERVAL`] until it returns true; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}: {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_filters_by_name_and_labels() {
        let text = "# HELP x\nreq_total{route=\"a\",status=\"200\"} 2\nreq_total{route=\"b\",status=\"200\"} 3\nreq_total_other 9\nreq_total 1\n";
        assert_eq!(metric_sum(text, "req_total", &[]), 6.0);
        assert_eq!(metric_sum(text, "req_total", &[("route", "a")]), 2.0);
        assert_eq!(metric_sum(text, "req_total", &[("status", "500")]), 0.0);
    }

    /// Parallel tests each start a few processes: no two may be handed the same port.
    #[test]
    fn a_port_is_handed_out_once_per_process() {
        let ports: Vec<u16> = (0..1_000).map(|_| free_port()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(
            ports
                .iter()
                .all(|p| (PORT_RANGE_START..PORT_RANGE_END).contains(p))
        );
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = temp_dir("atomic");
        let path = write_config(&dir, "a: 1\n");
        write_config(&dir, "a: 2\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a: 2\n");
        let entries = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(entries, 1, "no temp files left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
