//! Profiles the gateway under callgrind and writes the function order it is
//! linked with (`bench/run --function-order`; the pure part is
//! [`crate::function_order`]).
//!
//! The gateway runs on the benchmark's configuration and mock. Callgrind
//! dumps its counts once the gateway listens (start-up), then again when it
//! exits after `GET /` and one request of each benchmark scenario (the
//! request paths).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;

use crate::bodies;
use crate::callgrind_setup::{self, API_KEY, Folders, callgrind_control, local};
use crate::client;
use crate::function_order::{linker_script, order, self_costs};
use crate::gateway_config::{API_KEY_ENV, MODEL_ANTHROPIC, MODEL_OPENAI, PROVIDER_KEY_ENV};
use crate::procs;

/// Options of a profile run (the command line of `bench-function-order`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bench-function-order",
    about = "Writes dataplane/link/functions.ld from a callgrind profile"
)]
/// The data plane in the binaries' folder must be built with
/// `SWITCHBOARD_FUNCTION_ORDER=off`, so that every function is in `.text`,
/// where callgrind looks for them.
pub struct Options {
    /// Where the run reads and writes.
    #[command(flatten)]
    pub folders: Folders,
    /// The linker script to write.
    #[arg(long, default_value = "dataplane/link/functions.ld")]
    pub output: PathBuf,
    /// Read the callgrind files of the previous run in the work folder
    /// instead of running the gateway again.
    #[arg(long)]
    pub reuse_profile: bool,
}

/// Runs the profile and writes the linker script; returns how many
/// functions it orders.
pub fn run(opts: &Options) -> anyhow::Result<usize> {
    let out_file = opts.folders.work_dir.join("callgrind.out");
    if !opts.reuse_profile {
        profile(opts, &out_file)?;
    }
    let object = "switchboard-dataplane";
    let read = |file: &Path| {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    };
    let startup = self_costs(&read(&out_file.with_extension("out.1"))?, object);
    let on_requests = self_costs(&read(&out_file)?, object);
    if startup.is_empty() || on_requests.is_empty() {
        bail!(
            "callgrind saw no function of {object}: was it built with \
             SWITCHBOARD_FUNCTION_ORDER=off and v0 symbol names?"
        );
    }
    let patterns = order(&on_requests, &startup);
    let source = format!(
        "From {} functions that ran at start-up and {} on the benchmark's requests.",
        startup.len(),
        on_requests.len()
    );
    std::fs::write(&opts.output, linker_script(&patterns, &source))
        .with_context(|| format!("writing {}", opts.output.display()))?;
    Ok(patterns.len())
}

/// Runs the gateway under callgrind: start-up's counts in `out_file.1`, the
/// requests' in `out_file`.
fn profile(opts: &Options, out_file: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let setup = callgrind_setup::start(&opts.folders, "order")?;
    let (config, token, api_key) = (&setup.config, &setup.token, API_KEY);
    for old in [out_file.to_owned(), out_file.with_extension("out.1")] {
        let _ = std::fs::remove_file(old);
    }
    let gateway_bin = opts.folders.bin_dir.join("switchboard-dataplane");
    let port = procs::free_port()?;
    let admin = procs::free_port()?;
    let args = [
        "--tool=callgrind".to_owned(),
        "--demangle=no".into(),
        "--dump-instr=no".into(),
        "--compress-strings=no".into(),
        "--compress-pos=no".into(),
        format!("--callgrind-out-file={}", out_file.display()),
        gateway_bin.to_string_lossy().into_owned(),
        "--config".into(),
        config.to_string_lossy().into_owned(),
        format!("--listen=127.0.0.1:{port}"),
        format!("--admin-listen=127.0.0.1:{admin}"),
        "--reload-interval=3600s".into(),
        "--log-format=json".into(),
    ];
    let mut gateway = procs::spawn(
        "switchboard-dataplane (callgrind)",
        Path::new("valgrind"),
        &args,
        &[
            (API_KEY_ENV, api_key),
            (PROVIDER_KEY_ENV, "sk-bench-provider"),
        ],
        None,
        &opts.folders.work_dir.join("order-gateway.log"),
    )?;
    procs::wait_listening(&mut gateway, local(port), Duration::from_secs(120))?;
    let pid = gateway.pid().to_string();
    // Start-up's counts go to `callgrind.out.1`; the counters start again.
    callgrind_control(&["--dump=startup", &pid])?;

    let jwt = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    let mut anthropic = jwt.clone();
    anthropic.push(("anthropic-version".to_owned(), "2023-06-01".to_owned()));
    let key = vec![("authorization".to_owned(), format!("Bearer {api_key}"))];
    let requests = [
        ("/v1/chat/completions", &jwt, bodies::chat(MODEL_OPENAI)),
        ("/key/v1/chat/completions", &key, bodies::chat(MODEL_OPENAI)),
        ("/v1/chat/completions", &jwt, bodies::chat(MODEL_ANTHROPIC)),
        (
            "/v1/messages",
            &anthropic,
            bodies::messages_stream(MODEL_ANTHROPIC),
        ),
        (
            "/v1/chat/completions",
            &jwt,
            bodies::chat_stream(MODEL_ANTHROPIC),
        ),
        (
            "/v1/chat/completions",
            &jwt,
            bodies::chat_with_history(MODEL_OPENAI, 100 * 1024),
        ),
    ];
    // What load balancers ask.
    let status = rt.block_on(client::send_once(
        local(port),
        http::Method::GET,
        "/",
        &[],
        Bytes::new(),
    ))?;
    anyhow::ensure!(status.is_success(), "GET / answered {status}");
    for (path, headers, body) in requests {
        let body = Bytes::from(serde_json::to_vec(&body)?);
        let status = rt.block_on(client::probe(local(port), path, headers, body))?;
        anyhow::ensure!(status.is_success(), "{path} answered {status}");
    }

    // A graceful stop: callgrind writes the request paths' counts at exit.
    let stopped = Command::new("kill").args(["-TERM", &pid]).status()?;
    anyhow::ensure!(stopped.success(), "could not stop the gateway ({pid})");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out_file.exists() || gateway.check_running().is_ok() {
        if Instant::now() > deadline {
            bail!("the gateway under callgrind did not exit within 60 s");
        }
        // Waiting on an external process: there is nothing to await.
        std::thread::sleep(Duration::from_millis(100));
    }

    Ok(())
}
