//! Counts the instructions per request of the bare proxy and the gateway
//! under callgrind (`bench/run --instructions`; the pure part is
//! [`crate::instructions`]).
//!
//! Each process runs under `valgrind --tool=callgrind` in front of the
//! benchmark's mock, with the benchmark's configuration. Per scenario: a
//! warm-up on one kept-alive connection, callgrind's counters set to zero,
//! the counted requests on the same connection, a dump; the dump's total
//! over the requests is the count per request.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::bodies;
use crate::callgrind_setup::{self, API_KEY, Folders, callgrind_control, local};
use crate::gateway_config::{API_KEY_ENV, MODEL_ANTHROPIC, MODEL_OPENAI, PROVIDER_KEY_ENV};
use crate::instructions::{Row, per_request, render, total_instructions};
use crate::procs::{self, Proc};

/// Options of a count (the command line of `bench-instructions`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bench-instructions",
    about = "Counts the instructions per request of the bare proxy and the gateway under callgrind"
)]
pub struct Options {
    /// Where the run reads and writes.
    #[command(flatten)]
    pub folders: Folders,
    /// Requests counted per scenario.
    #[arg(long, default_value_t = 2000)]
    pub requests: u64,
    /// Requests sent before counting, per scenario.
    #[arg(long, default_value_t = 200)]
    pub warmup: u64,
}

/// One scenario: what is sent, as in the timed benchmark.
struct Scenario {
    name: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// Counts every scenario for both processes; returns the markdown table
/// (also written to `instructions.md` in the work folder).
pub fn run(opts: &Options) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let setup = callgrind_setup::start(&opts.folders, "instructions")?;
    let mock_port = setup.mock_port;
    let config = &setup.config;
    let scenarios = scenarios(&setup.token, API_KEY)?;

    let port = procs::free_port()?;
    let bare_args = vec![
        format!("--listen=127.0.0.1:{port}"),
        format!("--upstream=127.0.0.1:{mock_port}"),
    ];
    let bare = count(
        opts,
        &rt,
        "bench-bare-proxy",
        &bare_args,
        &[],
        port,
        &scenarios,
    )?;
    let port = procs::free_port()?;
    let admin = procs::free_port()?;
    let gateway_args = vec![
        "--config".to_owned(),
        config.to_string_lossy().into_owned(),
        format!("--listen=127.0.0.1:{port}"),
        format!("--admin-listen=127.0.0.1:{admin}"),
        "--reload-interval=3600s".into(),
        "--log-format=json".into(),
    ];
    let gateway = count(
        opts,
        &rt,
        "switchboard-dataplane",
        &gateway_args,
        &[
            (API_KEY_ENV, API_KEY),
            (PROVIDER_KEY_ENV, "sk-bench-provider"),
        ],
        port,
        &scenarios,
    )?;
    let rows: Vec<Row> = scenarios
        .iter()
        .zip(bare.into_iter().zip(gateway))
        .map(|(s, (bare, gateway))| Row {
            scenario: s.name.to_owned(),
            bare,
            gateway,
        })
        .collect();
    let table = render(
        &rows,
        opts.requests,
        &crate::run_info::header_lines(&opts.folders.repo),
    );
    std::fs::write(opts.folders.work_dir.join("instructions.md"), &table)?;
    Ok(table)
}

fn scenarios(token: &str, api_key: &str) -> anyhow::Result<Vec<Scenario>> {
    let jwt = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    let mut anthropic = jwt.clone();
    anthropic.push(("anthropic-version".to_owned(), "2023-06-01".to_owned()));
    let key = vec![("authorization".to_owned(), format!("Bearer {api_key}"))];
    let body = |v: serde_json::Value| serde_json::to_vec(&v).map(Bytes::from);
    Ok(vec![
        Scenario {
            name: "chat, same format, JWT",
            path: "/v1/chat/completions",
            headers: jwt.clone(),
            body: body(bodies::chat(MODEL_OPENAI))?,
        },
        Scenario {
            name: "chat, same format, API key",
            path: "/key/v1/chat/completions",
            headers: key,
            body: body(bodies::chat(MODEL_OPENAI))?,
        },
        Scenario {
            name: "chat, OpenAI → Anthropic, JWT",
            path: "/v1/chat/completions",
            headers: jwt.clone(),
            body: body(bodies::chat(MODEL_ANTHROPIC))?,
        },
        Scenario {
            name: "messages stream, 50 deltas, JWT",
            path: "/v1/messages",
            headers: anthropic,
            body: body(bodies::messages_stream(MODEL_ANTHROPIC))?,
        },
        Scenario {
            name: "chat, 100 KiB history, JWT",
            path: "/v1/chat/completions",
            headers: jwt,
            body: body(bodies::chat_with_history(MODEL_OPENAI, 100 * 1024))?,
        },
    ])
}

/// Runs `program` under callgrind and returns its instructions per request
/// for each scenario, in order.
fn count(
    opts: &Options,
    rt: &tokio::runtime::Runtime,
    program: &str,
    program_args: &[String],
    env: &[(&str, &str)],
    port: u16,
    scenarios: &[Scenario],
) -> anyhow::Result<Vec<u64>> {
    let out_file = opts
        .folders
        .work_dir
        .join(format!("instructions-{program}.callgrind"));
    // Dumps of an earlier count would be read as this one's.
    let stale = format!("instructions-{program}.callgrind");
    for entry in std::fs::read_dir(&opts.folders.work_dir)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&stale) {
            std::fs::remove_file(entry.path())?;
        }
    }
    let mut args = vec![
        "--tool=callgrind".to_owned(),
        "--dump-instr=no".into(),
        format!("--callgrind-out-file={}", out_file.display()),
        opts.folders
            .bin_dir
            .join(program)
            .to_string_lossy()
            .into_owned(),
    ];
    args.extend_from_slice(program_args);
    let mut proc = procs::spawn(
        &format!("{program} (callgrind)"),
        Path::new("valgrind"),
        &args,
        env,
        None,
        &opts
            .folders
            .work_dir
            .join(format!("instructions-{program}.log")),
    )?;
    procs::wait_listening(&mut proc, local(port), Duration::from_secs(120))?;
    let counted = count_scenarios(opts, rt, &proc, port, &out_file, scenarios);
    let _ = Command::new("kill")
        .args(["-TERM", &proc.pid().to_string()])
        .status();
    counted
}

fn count_scenarios(
    opts: &Options,
    rt: &tokio::runtime::Runtime,
    proc: &Proc,
    port: u16,
    out_file: &Path,
    scenarios: &[Scenario],
) -> anyhow::Result<Vec<u64>> {
    let pid = proc.pid().to_string();
    let mut counts = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        rt.block_on(async {
            let mut conn = Connection::open(local(port)).await?;
            conn.send(s, opts.warmup).await?;
            callgrind_control(&["--zero", &pid])?;
            conn.send(s, opts.requests).await
        })
        .with_context(|| format!("{}: {}", proc_name(out_file), s.name))?;
        callgrind_control(&["--dump", &pid])?;
        // Dumps are numbered from 1, one per `--dump`.
        let dump = out_file.with_extension(format!("callgrind.{}", i + 1));
        let text = std::fs::read_to_string(&dump)
            .with_context(|| format!("reading {}", dump.display()))?;
        let total = total_instructions(&text)
            .with_context(|| format!("no instruction total in {}", dump.display()))?;
        counts.push(per_request(total, opts.requests));
    }
    Ok(counts)
}

fn proc_name(out_file: &Path) -> String {
    out_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One kept-alive HTTP/1.1 connection.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends `s`'s request `times` times, each read to its end; every
    /// answer must be a success.
    async fn send(&mut self, s: &Scenario, times: u64) -> anyhow::Result<()> {
        for _ in 0..times {
            let mut req = http::Request::post(s.path)
                .header("host", &self.host)
                .header("content-type", "application/json");
            for (name, value) in &s.headers {
                req = req.header(name.as_str(), value.as_str());
            }
            self.sender.ready().await?;
            let resp = self
                .sender
                .send_request(req.body(Full::new(s.body.clone()))?)
                .await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            anyhow::ensure!(status.is_success(), "answered {status}");
        }
        Ok(())
    }
}
