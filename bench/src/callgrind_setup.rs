//! What the runs under callgrind share ([`crate::function_order_run`],
//! [`crate::instructions_run`]): the benchmark's mock with a gateway
//! configuration in front of it, the credentials, and `callgrind_control`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::gateway_config::{self, Upstreams};
use crate::procs::{self, Proc};

/// Where a run under callgrind reads and writes (options of its command
/// line).
#[derive(Debug, Clone, clap::Args)]
pub struct Folders {
    /// Folder with the release binaries (bench-mock, bench-bare-proxy,
    /// switchboard-dataplane).
    #[arg(long)]
    pub bin_dir: PathBuf,
    /// Repository root (for the JWT fixture keys and the commit).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Folder for the configuration, logs and callgrind's files.
    #[arg(long, default_value = "target/bench")]
    pub work_dir: PathBuf,
}

/// The API key the gateway's `/key` route accepts in these runs.
pub const API_KEY: &str = "sk-gw-bench-0123456789";

/// The benchmark's mock, listening, and the gateway configuration for it.
pub struct MockedConfig {
    /// The mock (stopped when dropped).
    pub mock: Proc,
    /// Its port on 127.0.0.1.
    pub mock_port: u16,
    /// The gateway configuration file, every backend on the mock.
    pub config: PathBuf,
    /// A JWT the configuration's `/` route accepts.
    pub token: String,
}

/// Starts `bench-mock` from the binaries' folder (50 events per stream, no
/// pacing) and writes the gateway configuration for it to
/// `<work_dir>/<prefix>-gateway.yaml`; the JWT is signed with the e2e
/// fixture key of the repository.
pub fn start(folders: &Folders, prefix: &str) -> anyhow::Result<MockedConfig> {
    let Folders {
        bin_dir,
        repo,
        work_dir,
    } = folders;
    std::fs::create_dir_all(work_dir)?;
    let fixtures = repo.join("e2e/fixtures");
    let jwks = std::fs::read_to_string(fixtures.join("jwks.json"))
        .context("reading e2e/fixtures/jwks.json")?;
    let token = gateway_config::mint_token(&std::fs::read(fixtures.join("rsa_private.pem"))?)?;
    let mock_port = procs::free_port()?;
    let mut mock = procs::spawn(
        "bench-mock",
        &bin_dir.join("bench-mock"),
        &[
            format!("--listen=127.0.0.1:{mock_port}"),
            "--chunks=50".into(),
        ],
        &[],
        None,
        &work_dir.join(format!("{prefix}-mock.log")),
    )?;
    procs::wait_listening(&mut mock, local(mock_port), Duration::from_secs(10))?;
    let config = work_dir.join(format!("{prefix}-gateway.yaml"));
    let upstreams = Upstreams {
        fast: mock_port,
        paced: mock_port,
    };
    std::fs::write(&config, gateway_config::render(upstreams, &jwks))?;
    Ok(MockedConfig {
        mock,
        mock_port,
        config,
        token,
    })
}

/// `port` on 127.0.0.1.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Runs `callgrind_control` with `args`; fails with its error output.
pub fn callgrind_control(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("callgrind_control")
        .args(args)
        .output()
        .context("running callgrind_control (Debian's valgrind package)")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
