//! The propagation benchmark (`bench-propagation`, `bench/run --propagation`):
//! how long a configuration change takes from the file write until every
//! connected data plane serves it.
//!
//! The controller runs in directory mode on a folder of this run's own
//! ([`crate::propagation_config`]) with a short poll interval. N simulated
//! data planes (tonic clients in this process) send a Hello, ACK every
//! snapshot and report the time each version arrived. Every round rewrites
//! the YAML atomically (write a hidden file, rename it over the config) and
//! waits until all N clients have received and ACKed the new version. With
//! `--real-dataplane`, one more row does the same with one real
//! `switchboard-dataplane` process, detected through its `/readyz`.
//!
//! Rounds are paced by a pause that shifts by a fraction of the poll interval
//! every round, so the write lands at evenly spread points of the
//! controller's poll cycle (the poll wait is part of what is measured).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use switchboard_proto as pb;
use switchboard_proto::snapshot_service_client::SnapshotServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use crate::procs::{self, Proc};
use crate::propagation_config;
use crate::propagation_report::{self, Round, Row};

/// A round that has not reached every data plane after this long fails.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

/// How the benchmark runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folder with the release binaries (switchboard-controller, switchboard-dataplane).
    pub bin_dir: PathBuf,
    /// Repository root (for the commit in the report).
    pub repo: PathBuf,
    /// Folder for the config folders and logs.
    pub work_dir: PathBuf,
    /// The numbers of simulated data planes, one row each.
    pub connections: Vec<usize>,
    /// Measured rounds per row.
    pub rounds: usize,
    /// Unmeasured rounds before them.
    pub warmup: usize,
    /// The controller's `--poll-interval`.
    pub poll_interval: Duration,
    /// Also measure one real data-plane process.
    pub real_dataplane: bool,
    /// Try to raise the scheduling priority (root only).
    pub priority: bool,
}

/// One snapshot received by one simulated data plane.
#[derive(Debug)]
struct Arrival {
    client: usize,
    version: String,
    at: Instant,
}

/// A controller process on a config folder of its own.
struct Controller {
    proc: Proc,
    grpc: SocketAddr,
    dir: PathBuf,
    round: usize,
}

impl Controller {
    fn start(opts: &Options, label: &str) -> anyhow::Result<Self> {
        let dir = opts.work_dir.join(format!("propagation-{label}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("config.yaml"), propagation_config::render(0))?;
        let grpc: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
        let admin = format!("127.0.0.1:{}", procs::free_port()?);
        let args = vec![
            format!("--source=dir:{}", dir.display()),
            format!("--grpc-listen={grpc}"),
            format!("--admin-listen={admin}"),
            format!("--poll-interval={}ms", opts.poll_interval.as_millis()),
            // A local benchmark: the channel's speed, not its security, is measured.
            "--grpc-insecure-plaintext".to_owned(),
        ];
        let log = opts.work_dir.join(format!("controller-{label}.log"));
        let mut proc = procs::spawn(
            "switchboard-controller",
            &opts.bin_dir.join("switchboard-controller"),
            &args,
            &[],
            None,
            &log,
        )?;
        procs::wait_listening(&mut proc, grpc, Duration::from_secs(10))?;
        Ok(Self {
            proc,
            grpc,
            dir,
            round: 0,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Writes the next round's config atomically; returns the time of the rename.
    fn write_next(&mut self) -> anyhow::Result<Instant> {
        self.round += 1;
        let tmp = self.dir.join(".config.yaml.tmp");
        std::fs::write(&tmp, propagation_config::render(self.round))?;
        let t0 = Instant::now();
        std::fs::rename(&tmp, self.dir.join("config.yaml"))?;
        Ok(t0)
    }
}

/// The pause before round `i`: two poll intervals plus a share of one that
/// steps through the cycle.
fn pause(poll: Duration, i: usize) -> Duration {
    poll * 2 + poll.mul_f64(((i * 37) % 100) as f64 / 100.0)
}

fn message(kind: pb::data_plane_message::Kind) -> pb::DataPlaneMessage {
    pb::DataPlaneMessage { kind: Some(kind) }
}

/// One simulated data plane: Hello, then ACK and report every snapshot.
async fn client(
    url: String,
    id: usize,
    events: mpsc::UnboundedSender<Arrival>,
) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .connect()
        .await?;
    let mut grpc = SnapshotServiceClient::new(channel);
    let (tx, rx) = mpsc::channel(8);
    let hello = pb::Hello {
        node_id: format!("bench-sim-{id}"),
        serving_version: String::new(),
    };
    tx.send(message(pb::data_plane_message::Kind::Hello(hello)))
        .await?;
    let mut inbound = grpc.stream(ReceiverStream::new(rx)).await?.into_inner();
    while let Some(msg) = inbound.message().await? {
        if let Some(pb::controller_message::Kind::Snapshot(snapshot)) = msg.kind {
            let ack = pb::Ack {
                version: snapshot.version.clone(),
            };
            tx.send(message(pb::data_plane_message::Kind::Ack(ack)))
                .await?;
            let arrival = Arrival {
                client: id,
                version: snapshot.version,
                at: Instant::now(),
            };
            if events.send(arrival).is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// Waits until all `n` clients received one version other than `old`;
/// returns it and the round's timings relative to `t0`.
async fn wait_all(
    events: &mut mpsc::UnboundedReceiver<Arrival>,
    n: usize,
    old: Option<&str>,
    t0: Instant,
) -> anyhow::Result<(String, Round)> {
    let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
    let mut seen: HashMap<usize, Instant> = HashMap::new();
    let mut version: Option<String> = None;
    while seen.len() < n {
        let arrival = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| {
                anyhow!(
                    "only {}/{n} data planes got a new version within {ROUND_TIMEOUT:?}",
                    seen.len()
                )
            })?
            .context("every simulated data plane ended")?;
        if Some(arrival.version.as_str()) == old {
            continue;
        }
        match &version {
            None => version = Some(arrival.version.clone()),
            Some(v) if *v != arrival.version => {
                bail!("two new versions in one round ({v}, {})", arrival.version)
            }
            Some(_) => {}
        }
        seen.entry(arrival.client).or_insert(arrival.at);
    }
    let since = |at: &Instant| at.saturating_duration_since(t0);
    let first = seen.values().map(since).min().unwrap_or_default();
    let last = seen.values().map(since).max().unwrap_or_default();
    Ok((version.unwrap_or_default(), Round { first, last }))
}

/// Runs the rounds with `n` simulated data planes connected.
async fn simulated(ctl: &mut Controller, n: usize, opts: &Options) -> anyhow::Result<Vec<Round>> {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..n {
        let (url, events) = (ctl.url(), events_tx.clone());
        tasks.spawn(async move {
            if let Err(e) = client(url, id, events).await {
                eprintln!("bench: simulated data plane {id}: {e:#}");
            }
        });
    }
    drop(events_tx);
    let (mut current, _) = wait_all(&mut events, n, None, Instant::now())
        .await
        .context("waiting for the first snapshot")?;
    let mut rounds = Vec::with_capacity(opts.rounds);
    for i in 0..opts.warmup + opts.rounds {
        tokio::time::sleep(pause(opts.poll_interval, i)).await;
        ctl.proc.check_running()?;
        let t0 = ctl.write_next()?;
        let (version, round) = wait_all(&mut events, n, Some(&current), t0)
            .await
            .with_context(|| format!("round {i} with {n} data planes"))?;
        if i >= opts.warmup {
            rounds.push(round);
        }
        current = version;
    }
    tasks.abort_all();
    Ok(rounds)
}

/// The version in a data plane's `/readyz` answer, if it serves one.
pub fn readyz_version(response: &str) -> Option<&str> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    body.trim().rsplit_once("version ").map(|(_, v)| v.trim())
}

async fn fetch_readyz(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}

/// Polls `/readyz` every millisecond until it serves a version other than `old`.
async fn wait_serving(addr: SocketAddr, old: Option<&str>) -> anyhow::Result<String> {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        if let Ok(text) = fetch_readyz(addr).await
            && let Some(v) = readyz_version(&text)
            && Some(v) != old
        {
            return Ok(v.to_owned());
        }
        if Instant::now() > deadline {
            bail!("the data plane did not serve a new version within {ROUND_TIMEOUT:?}");
        }
        // Polling another process's admin port: there is nothing to await.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs the rounds with one real data-plane process connected.
fn real_dataplane(
    rt: &tokio::runtime::Runtime,
    ctl: &mut Controller,
    opts: &Options,
) -> anyhow::Result<Vec<Round>> {
    let admin: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
    let args = vec![
        format!("--controller={}", ctl.url()),
        "--controller-insecure-plaintext".to_owned(),
        format!("--listen=127.0.0.1:{}", procs::free_port()?),
        format!("--admin-listen={admin}"),
        "--node-id=bench-real".to_owned(),
    ];
    let mut dp = procs::spawn(
        "switchboard-dataplane",
        &opts.bin_dir.join("switchboard-dataplane"),
        &args,
        &[],
        None,
        &opts.work_dir.join("dataplane-propagation.log"),
    )?;
    procs::wait_listening(&mut dp, admin, Duration::from_secs(10))?;
    rt.block_on(async {
        let mut current = wait_serving(admin, None).await?;
        let mut rounds = Vec::with_capacity(opts.rounds);
        for i in 0..opts.warmup + opts.rounds {
            tokio::time::sleep(pause(opts.poll_interval, i)).await;
            dp.check_running()?;
            let t0 = ctl.write_next()?;
            let version = wait_serving(admin, Some(&current))
                .await
                .with_context(|| format!("round {i} with the real data plane"))?;
            let at = t0.elapsed();
            if i >= opts.warmup {
                rounds.push(Round {
                    first: at,
                    last: at,
                });
            }
            current = version;
        }
        Ok(rounds)
    })
}

fn header(opts: &Options, prioritized: bool) -> String {
    let common = crate::run_info::header_lines(&opts.repo);
    format!(
        "{common}- controller: `--source dir:` with `--poll-interval {}ms`; {} measured rounds per row after {} warm-up rounds\n\
         - scheduling priority: {}\n",
        opts.poll_interval.as_millis(),
        opts.rounds,
        opts.warmup,
        if prioritized {
            "nice -20, autogroup nice -20"
        } else {
            "normal"
        },
    )
}

/// Runs every row and returns the markdown report.
pub fn run(opts: &Options) -> anyhow::Result<String> {
    std::fs::create_dir_all(&opts.work_dir)?;
    let prioritized = opts.priority && procs::raise_priority();
    let header = header(opts, prioritized);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    if opts.real_dataplane {
        eprintln!("bench: propagation, 1 real data plane");
        let mut ctl = Controller::start(opts, "real")?;
        let rounds = real_dataplane(&rt, &mut ctl, opts)?;
        rows.push(Row {
            kind: "real process".into(),
            connections: 1,
            rounds,
        });
    }
    for &n in &opts.connections {
        eprintln!("bench: propagation, {n} simulated data planes");
        let mut ctl = Controller::start(opts, &format!("sim-{n}"))?;
        let rounds = rt.block_on(simulated(&mut ctl, n, opts))?;
        rows.push(Row {
            kind: "simulated".into(),
            connections: n,
            rounds,
        });
    }
    Ok(format!(
        "## Propagation: change written → every data plane has it\n\n{header}\n{}\n\
         Milliseconds. *write → all*: from the rename of the config file until the last data plane \
         received and ACKed the new version. *write → first*: until the first one did (includes the \
         wait for the controller's next poll, up to one poll interval). *first → last*: the fan-out of \
         one rendered snapshot to every stream. The real data plane is detected through its `/readyz` \
         (polled every millisecond), so its row means *serving*.\n",
        propagation_report::table(&rows)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_from_readyz() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\nready: source controller, version abc123\n";
        assert_eq!(readyz_version(ok), Some("abc123"));
        let not_ready = "HTTP/1.1 503 Service Unavailable\r\n\r\nno configuration applied yet\n";
        assert_eq!(readyz_version(not_ready), None);
    }

    #[test]
    fn pauses_step_through_the_poll_cycle() {
        let poll = Duration::from_millis(100);
        let pauses: Vec<Duration> = (0..100).map(|i| pause(poll, i)).collect();
        assert!(pauses.iter().all(|p| *p >= poll * 2 && *p < poll * 3));
        let mut distinct = pauses.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 100);
    }
}
