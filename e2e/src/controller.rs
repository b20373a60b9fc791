//! Process harness for the real `switchboard-controller` binary in directory mode: free ports,
//! log capture, readiness polling, restart on the same ports, kill on drop.
//!
//! By default the gRPC port speaks TLS (a [`TestPki`] of its own) and data planes authenticate
//! with a shared bearer token (`--dataplane-token-file`), so every directory-mode test runs the
//! secured channel; [`Controller::start_plaintext`] runs the explicitly named plaintext mode.
//! Data planes get the matching flags from [`Controller::dataplane_args`] (or
//! [`Controller::start_dataplane`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use bytes::Bytes;
use http::Method;

use crate::client;
use crate::harness::{
    Gateway, POLL_INTERVAL, START_TIMEOUT, binary_path, free_port, log_path, metric_sum, tail,
};
use crate::pki::{SERVER_NAME, TestPki};

/// Name of the controller binary.
pub const CONTROLLER_BIN: &str = "switchboard-controller";

/// How the gRPC port of a directory-mode controller is secured.
#[derive(Debug)]
pub enum Security {
    /// TLS with the certificate of `pki`; data planes send the token in `token_file`.
    Tls {
        /// The certificate authority and server certificate.
        pki: TestPki,
        /// The shared bearer token (`--dataplane-token-file`).
        token_file: PathBuf,
    },
    /// `--grpc-insecure-plaintext`.
    Plaintext,
}

impl Security {
    /// TLS with fresh test material and a random shared token.
    pub fn tls() -> Security {
        let pki = TestPki::new("ctl");
        let token_file = pki.dir().join("dataplane-token");
        let token = format!("e2e-{:016x}{:016x}", rand_u64(), rand_u64());
        std::fs::write(&token_file, token).expect("write token file");
        Security::Tls { pki, token_file }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// A running controller (`--source dir:PATH`); killed on drop.
#[derive(Debug)]
pub struct Controller {
    child: Option<Child>,
    dir: PathBuf,
    grpc_port: u16,
    admin_port: u16,
    log: PathBuf,
    security: Security,
}

impl Controller {
    /// Starts a controller on the YAML folder `dir` and waits until `/readyz` answers 200 (a
    /// snapshot was rendered). Panics (showing the log) when it exits or is not ready in time.
    pub async fn start(dir: &Path) -> Controller {
        Self::start_with(dir, Security::tls()).await
    }

    /// Like [`Controller::start`] with `--grpc-insecure-plaintext`.
    pub async fn start_plaintext(dir: &Path) -> Controller {
        Self::start_with(dir, Security::Plaintext).await
    }

    /// Like [`Controller::start`] secured as `security` says.
    pub async fn start_with(dir: &Path, security: Security) -> Controller {
        let mut controller = Self::not_started_with(dir, security);
        controller.spawn();
        controller.wait_ready().await;
        controller
    }

    /// A controller that is not running yet, with its ports chosen; [`Controller::restart`]
    /// starts it. Lets a test start data planes before the controller exists.
    pub fn not_started(dir: &Path) -> Controller {
        Self::not_started_with(dir, Security::tls())
    }

    fn not_started_with(dir: &Path, security: Security) -> Controller {
        Controller {
            child: None,
            dir: dir.to_path_buf(),
            grpc_port: free_port(),
            admin_port: free_port(),
            log: log_path(),
            security,
        }
    }

    /// How the gRPC port is secured.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// The test PKI (TLS mode only).
    pub fn pki(&self) -> Option<&TestPki> {
        match &self.security {
            Security::Tls { pki, .. } => Some(pki),
            Security::Plaintext => None,
        }
    }

    /// The shared token data planes send (TLS mode only).
    pub fn dataplane_token(&self) -> Option<String> {
        match &self.security {
            Security::Tls { token_file, .. } => std::fs::read_to_string(token_file).ok(),
            Security::Plaintext => None,
        }
    }

    /// The flags a data plane needs to follow this controller: the URL, and the CA, server
    /// name and token file (TLS), or `--controller-insecure-plaintext`.
    pub fn dataplane_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        match &self.security {
            Security::Tls { pki, token_file } => {
                args.extend([
                    "--controller-ca".to_string(),
                    pki.ca().display().to_string(),
                    "--controller-server-name".to_string(),
                    SERVER_NAME.to_string(),
                    "--controller-token-file".to_string(),
                    token_file.display().to_string(),
                ]);
            }
            Security::Plaintext => args.push("--controller-insecure-plaintext".to_string()),
        }
        args
    }

    /// Starts a data plane following this controller with extra environment variables and
    /// arguments; with `wait_ready`, waits until it serves a snapshot.
    pub async fn start_dataplane(
        &self,
        envs: &[(&str, &str)],
        args: &[&str],
        wait_ready: bool,
    ) -> Gateway {
        let mut all: Vec<String> = self.dataplane_args();
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Gateway::start_cluster(&self.grpc_url(), envs, &all, wait_ready).await
    }

    fn spawn(&mut self) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open controller log file");
        let mut cmd = Command::new(binary_path(CONTROLLER_BIN));
        match &self.security {
            Security::Tls { pki, token_file } => {
                cmd.arg("--grpc-tls-cert")
                    .arg(pki.cert())
                    .arg("--grpc-tls-key")
                    .arg(pki.key())
                    .arg("--dataplane-token-file")
                    .arg(token_file);
            }
            Security::Plaintext => {
                cmd.arg("--grpc-insecure-plaintext");
            }
        }
        let child = cmd
            .arg("--source")
            .arg(format!("dir:{}", self.dir.display()))
            .arg("--grpc-listen")
            .arg(format!("127.0.0.1:{}", self.grpc_port))
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", self.admin_port))
            .arg("--poll-interval")
            .arg("100ms")
            .arg("--keepalive")
            .arg("2s")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {CONTROLLER_BIN}: {e}"));
        self.child = Some(child);
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("{}/readyz", self.admin_url());
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "controller exited with {status} before becoming ready; log {}:\n{}",
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
            assert!(
                Instant::now() < deadline,
                "controller not ready ({url}) within {START_TIMEOUT:?}; log {}:\n{}",
                self.log.display(),
                tail(&self.log)
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Kills the process at once (SIGKILL: no stream is closed cleanly).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM (graceful: streams are closed cleanly) and returns whether
    /// it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        // The shell's builtin `kill`: present wherever `sh` is, no unsafe signal code here.
        let sent = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", child.id()))
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            let _ = child.kill();
        }
        child.wait().is_ok_and(|s| s.success())
    }

    /// Starts the process again on the same folder and ports, and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }

    /// The gRPC URL data planes follow, e.g. `https://127.0.0.1:40001` (`http://` in plaintext
    /// mode).
    pub fn grpc_url(&self) -> String {
        let scheme = match self.security {
            Security::Tls { .. } => "https",
            Security::Plaintext => "http",
        };
        format!("{scheme}://127.0.0.1:{}", self.grpc_port)
    }

    /// The gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// Admin base URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// Captured output so far (across restarts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The body of `/readyz` (empty when the admin port does not answer).
    pub async fn readyz(&self) -> String {
        let url = format!("{}/readyz", self.admin_url());
        match client::try_request(Method::GET, &url, &[], Bytes::new()).await {
            Ok((_, _, body)) => String::from_utf8_lossy(&body).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// The Prometheus text from `/metrics` (empty when the admin port does not answer).
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.admin_url());
        match client::try_request(Method::GET, &url, &[], Bytes::new()).await {
            Ok((_, _, body)) => String::from_utf8_lossy(&body).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// Sum of the samples of `name` whose labels include every `labels` pair.
    pub async fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics().await, name, labels)
    }

    /// The version of the snapshot the controller serves, from `switchboard_controller_snapshot_info`.
    pub async fn snapshot_version(&self) -> Option<String> {
        let text = self.metrics().await;
        text.lines().find_map(|line| {
            let rest = line.strip_prefix("switchboard_controller_snapshot_info{version=\"")?;
            rest.split_once('"').map(|(v, _)| v.to_string())
        })
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "controller log: {}\n{}",
                self.log.display(),
                tail(&self.log)
            );
        } else {
            // Kept only for a failing test: a passing run leaves nothing behind.
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
