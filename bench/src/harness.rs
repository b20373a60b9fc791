//! One benchmark run: start the mocks, the bare proxy and the gateway, run
//! every scenario against direct, bare proxy and gateway in alternation after
//! a warm-up, and render the results as markdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;

use crate::bodies;
use crate::client;
use crate::gateway_config::{
    self, API_KEY_ENV, MODEL_ANTHROPIC, MODEL_OPENAI, MODEL_PACED, PROVIDER_KEY_ENV, Upstreams,
};
use crate::goals::{GoalInputs, check_goals};
use crate::procs::{self, Proc};
use crate::procstat;
use crate::report::{self, LoadOutcome, LoadRow, LoadStats, MemoryReport, StreamTiming, Target};
use crate::stats::median;
use crate::wrk::{self, RequestShape, WrkResult, WrkRun};

/// Command-line options of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Short run for development (about two minutes).
    pub quick: bool,
    /// Folder with the release binaries.
    pub bin_dir: PathBuf,
    /// Repository root (for the JWT fixture keys).
    pub repo: PathBuf,
    /// Folder for configs, scripts, logs and the result file.
    pub work_dir: PathBuf,
    /// Pin the load generator and the process under test to separate CPUs.
    pub pin: bool,
    /// Run at the highest scheduling priority (see [`procs::raise_priority`]).
    pub priority: bool,
}

/// How long and how often each measurement runs.
#[derive(Debug, Clone)]
struct Plan {
    warmup: Duration,
    run: Duration,
    rounds: usize,
    concurrencies: Vec<usize>,
    ttfb_warmup: usize,
    ttfb_count: usize,
    streams: usize,
    streams_run: Duration,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                warmup: Duration::from_secs(1),
                run: Duration::from_secs(3),
                rounds: 1,
                concurrencies: vec![16],
                ttfb_warmup: 50,
                ttfb_count: 300,
                streams: 1000,
                streams_run: Duration::from_secs(4),
            }
        } else {
            Self {
                warmup: Duration::from_secs(2),
                run: Duration::from_secs(5),
                rounds: 3,
                concurrencies: vec![1, 16, 64],
                ttfb_warmup: 100,
                ttfb_count: 1000,
                streams: 1000,
                streams_run: Duration::from_secs(8),
            }
        }
    }
}

/// One running side of the comparison.
struct Side {
    target: Target,
    addr: SocketAddr,
    /// The process whose CPU is charged to this side's requests.
    pid: u32,
}

/// The processes of a run.
struct Stack {
    sides: [Side; 3],
    bare_paced: SocketAddr,
    bare_paced_pid: u32,
    gateway_pid: u32,
    bare_pid: u32,
    gen_cpu: Option<usize>,
    _procs: Vec<Proc>,
}

/// One load scenario.
struct Scenario {
    name: String,
    concurrency: usize,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Value,
    /// Skip unless the gateway answers 2xx to one request first.
    probe: Option<&'static str>,
}

fn start_stack(opts: &Options, token_jwks: &str, api_key: &str) -> anyhow::Result<Stack> {
    let (gen_cpu, sut_cpu) = if opts.pin {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let bin = |name: &str| opts.bin_dir.join(name);
    let log = |name: &str| opts.work_dir.join(format!("{name}.log"));
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let mut procs = Vec::new();

    let fast = procs::free_port()?;
    let mut mock_fast = procs::spawn(
        "bench-mock",
        &bin("bench-mock"),
        &[format!("--listen=127.0.0.1:{fast}"), "--chunks=50".into()],
        &[],
        gen_cpu,
        &log("mock"),
    )?;
    procs::wait_listening(&mut mock_fast, local(fast), Duration::from_secs(10))?;
    let paced = procs::free_port()?;
    let mut mock_paced = procs::spawn(
        "bench-mock (paced)",
        &bin("bench-mock"),
        &[
            format!("--listen=127.0.0.1:{paced}"),
            "--chunks=50".into(),
            "--chunk-delay-ms=20".into(),
        ],
        &[],
        gen_cpu,
        &log("mock-paced"),
    )?;
    procs::wait_listening(&mut mock_paced, local(paced), Duration::from_secs(10))?;

    let bare = procs::free_port()?;
    let mut bare_proc = procs::spawn(
        "bench-bare-proxy",
        &bin("bench-bare-proxy"),
        &[
            format!("--listen=127.0.0.1:{bare}"),
            format!("--upstream=127.0.0.1:{fast}"),
        ],
        &[],
        sut_cpu,
        &log("bare"),
    )?;
    procs::wait_listening(&mut bare_proc, local(bare), Duration::from_secs(10))?;
    let bare_paced = procs::free_port()?;
    let mut bare_paced_proc = procs::spawn(
        "bench-bare-proxy (paced)",
        &bin("bench-bare-proxy"),
        &[
            format!("--listen=127.0.0.1:{bare_paced}"),
            format!("--upstream=127.0.0.1:{paced}"),
        ],
        &[],
        sut_cpu,
        &log("bare-paced"),
    )?;
    procs::wait_listening(
        &mut bare_paced_proc,
        local(bare_paced),
        Duration::from_secs(10),
    )?;

    let config = opts.work_dir.join("gateway.yaml");
    std::fs::write(
        &config,
        gateway_config::render(Upstreams { fast, paced }, token_jwks),
    )?;
    let gw = procs::free_port()?;
    let admin = procs::free_port()?;
    let mut gateway = procs::spawn(
        "switchboard-dataplane",
        &bin("switchboard-dataplane"),
        &[
            "--config".into(),
            config.to_string_lossy().into_owned(),
            format!("--listen=127.0.0.1:{gw}"),
            format!("--admin-listen=127.0.0.1:{admin}"),
            "--reload-interval=3600s".into(),
            // The production log format: one JSON access-log line per request.
            "--log-format=json".into(),
        ],
        &[
            (API_KEY_ENV, api_key),
            (PROVIDER_KEY_ENV, "sk-bench-provider"),
        ],
        sut_cpu,
        &log("gateway"),
    )?;
    procs::wait_listening(&mut gateway, local(gw), Duration::from_secs(20))?;

    let (fast_pid, bare_pid, bare_paced_pid, gateway_pid) = (
        mock_fast.pid(),
        bare_proc.pid(),
        bare_paced_proc.pid(),
        gateway.pid(),
    );
    procs.extend([mock_fast, mock_paced, bare_proc, bare_paced_proc, gateway]);
    Ok(Stack {
        sides: [
            Side {
                target: Target::Direct,
                addr: local(fast),
                pid: fast_pid,
            },
            Side {
                target: Target::Bare,
                addr: local(bare),
                pid: bare_pid,
            },
            Side {
                target: Target::Gateway,
                addr: local(gw),
                pid: gateway_pid,
            },
        ],
        bare_paced: local(bare_paced),
        bare_paced_pid,
        gateway_pid,
        bare_pid,
        gen_cpu,
        _procs: procs,
    })
}

fn write_shape(
    work_dir: &Path,
    id: usize,
    path: &str,
    headers: &[(String, String)],
    body: &Value,
) -> anyhow::Result<PathBuf> {
    let body_file = work_dir.join(format!("body-{id}.json"));
    std::fs::write(&body_file, serde_json::to_vec(body)?)?;
    let script = work_dir.join(format!("script-{id}.lua"));
    let shape = RequestShape {
        path: path.to_owned(),
        headers: headers.to_vec(),
        body_file,
    };
    std::fs::write(&script, wrk::lua_script(&shape))?;
    Ok(script)
}

fn wrk_once(
    stack: &Stack,
    addr: SocketAddr,
    script: &Path,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<WrkResult> {
    let url = format!("http://{addr}");
    wrk::run(&WrkRun {
        base_url: &url,
        script,
        connections,
        duration,
        cpu: stack.gen_cpu,
    })
}

fn run_load(
    rt: &tokio::runtime::Runtime,
    stack: &Stack,
    plan: &Plan,
    work_dir: &Path,
    id: usize,
    s: &Scenario,
) -> anyhow::Result<LoadRow> {
    eprintln!("bench: {} (c={})", s.name, s.concurrency);
    let row = |outcome| LoadRow {
        scenario: s.name.clone(),
        concurrency: s.concurrency,
        outcome,
    };
    if let Some(why) = s.probe {
        let body = Bytes::from(serde_json::to_vec(&s.body)?);
        let status = rt.block_on(client::probe(stack.sides[2].addr, s.path, &s.headers, body))?;
        if !status.is_success() {
            return Ok(row(LoadOutcome::Skipped(format!(
                "gateway answered {status} ({why})"
            ))));
        }
    }
    let script = write_shape(work_dir, id, s.path, &s.headers, &s.body)?;
    for side in &stack.sides {
        wrk_once(stack, side.addr, &script, s.concurrency, plan.warmup)?;
    }
    let mut results: [Vec<WrkResult>; 3] = Default::default();
    let mut ticks = [0u64; 3];
    for _ in 0..plan.rounds {
        for (i, side) in stack.sides.iter().enumerate() {
            let before = procstat::sample(side.pid)?.cpu_ticks;
            let r = wrk_once(stack, side.addr, &script, s.concurrency, plan.run)?;
            ticks[i] += procstat::sample(side.pid)?.cpu_ticks.saturating_sub(before);
            results[i].push(r);
        }
    }
    let tps = procstat::clock_ticks_per_second();
    let stats: Vec<LoadStats> = (0..3)
        .map(|i| {
            let rs = &results[i];
            let requests: u64 = rs.iter().map(|r| r.requests).sum();
            let secs = |f: fn(&WrkResult) -> Duration| {
                Duration::from_secs_f64(median(
                    &rs.iter().map(|r| f(r).as_secs_f64()).collect::<Vec<_>>(),
                ))
            };
            LoadStats {
                rps: median(&rs.iter().map(WrkResult::rps).collect::<Vec<_>>()),
                p50: secs(|r| r.p50),
                p99: secs(|r| r.p99),
                cpu_per_request: (requests > 0).then(|| {
                    procstat::ticks_to_duration(ticks[i], tps)
                        / u32::try_from(requests).unwrap_or(u32::MAX)
                }),
                errors: rs.iter().map(|r| r.socket_errors + r.non_2xx).sum(),
            }
        })
        .collect();
    Ok(row(LoadOutcome::Measured {
        direct: stats[0],
        bare: stats[1],
        gateway: stats[2],
    }))
}

fn run_ttfb(
    rt: &tokio::runtime::Runtime,
    stack: &Stack,
    plan: &Plan,
    headers: &[(String, String)],
) -> anyhow::Result<Vec<(Target, StreamTiming)>> {
    eprintln!("bench: streaming time to first byte");
    let body = Bytes::from(serde_json::to_vec(&bodies::messages_stream(
        MODEL_ANTHROPIC,
    ))?);
    let mut rounds: [Vec<StreamTiming>; 3] = Default::default();
    for _ in 0..plan.rounds {
        for (i, side) in stack.sides.iter().enumerate() {
            let t = rt.block_on(client::measure_stream(
                side.addr,
                "/v1/messages",
                headers,
                body.clone(),
                plan.ttfb_warmup,
                plan.ttfb_count,
            ))?;
            rounds[i].push(t);
        }
    }
    let med = |ts: &[StreamTiming], f: fn(&StreamTiming) -> Duration| {
        Duration::from_secs_f64(median(
            &ts.iter().map(|t| f(t).as_secs_f64()).collect::<Vec<_>>(),
        ))
    };
    Ok(stack
        .sides
        .iter()
        .zip(rounds.iter())
        .map(|(side, ts)| {
            (
                side.target,
                StreamTiming {
                    ttfb_p50: med(ts, |t| t.ttfb_p50),
                    ttfb_p99: med(ts, |t| t.ttfb_p99),
                    total_p50: med(ts, |t| t.total_p50),
                    total_p99: med(ts, |t| t.total_p99),
                },
            )
        })
        .collect())
}

/// Time to first byte and total time of the same Chat Completions stream
/// through the gateway: passthrough to the OpenAI-format mock, then
/// translated from the Anthropic-format mock (medians over the rounds).
fn run_translated_ttfb(
    rt: &tokio::runtime::Runtime,
    stack: &Stack,
    plan: &Plan,
    headers: &[(String, String)],
) -> anyhow::Result<(StreamTiming, StreamTiming)> {
    eprintln!("bench: translated stream time to first byte");
    let gateway = stack
        .sides
        .iter()
        .find(|s| s.target == Target::Gateway)
        .map(|s| s.addr)
        .context("no gateway side")?;
    let mut rounds: [Vec<StreamTiming>; 2] = Default::default();
    for _ in 0..plan.rounds {
        for (i, model) in [MODEL_OPENAI, MODEL_ANTHROPIC].into_iter().enumerate() {
            let body = Bytes::from(serde_json::to_vec(&bodies::chat_stream(model))?);
            rounds[i].push(rt.block_on(client::measure_stream(
                gateway,
                "/v1/chat/completions",
                headers,
                body,
                plan.ttfb_warmup,
                plan.ttfb_count,
            ))?);
        }
    }
    let med = |ts: &[StreamTiming], f: fn(&StreamTiming) -> Duration| {
        Duration::from_secs_f64(median(
            &ts.iter().map(|t| f(t).as_secs_f64()).collect::<Vec<_>>(),
        ))
    };
    let summary = |ts: &[StreamTiming]| StreamTiming {
        ttfb_p50: med(ts, |t| t.ttfb_p50),
        ttfb_p99: med(ts, |t| t.ttfb_p99),
        total_p50: med(ts, |t| t.total_p50),
        total_p99: med(ts, |t| t.total_p99),
    };
    Ok((summary(&rounds[0]), summary(&rounds[1])))
}

/// Runs wrk against `addr` while sampling the RSS of `pid`; returns the highest RSS and wrk's result.
fn held_streams(
    stack: &Stack,
    addr: SocketAddr,
    pid: u32,
    script: &Path,
    streams: usize,
    run: Duration,
) -> anyhow::Result<(u64, WrkResult)> {
    std::thread::scope(|scope| {
        let load = scope.spawn(|| wrk_once(stack, addr, script, streams, run));
        let mut peak = 0;
        while !load.is_finished() {
            peak = peak.max(procstat::sample(pid)?.rss_kib);
            // Sampling an external process at a fixed rate.
            std::thread::sleep(Duration::from_millis(50));
        }
        let result = load
            .join()
            .map_err(|_| anyhow::anyhow!("wrk thread panicked"))??;
        Ok((peak, result))
    })
}

fn run_memory(
    stack: &Stack,
    plan: &Plan,
    work_dir: &Path,
    headers: &[(String, String)],
    idle: (u64, u64),
) -> anyhow::Result<MemoryReport> {
    eprintln!("bench: {} concurrent open streams", plan.streams);
    let script = write_shape(
        work_dir,
        999,
        "/v1/messages",
        headers,
        &bodies::messages_stream(MODEL_PACED),
    )?;
    let (bare_streams, _) = held_streams(
        stack,
        stack.bare_paced,
        stack.bare_paced_pid,
        &script,
        plan.streams,
        plan.streams_run,
    )?;
    let (gw_streams, r) = held_streams(
        stack,
        stack.sides[2].addr,
        stack.gateway_pid,
        &script,
        plan.streams,
        plan.streams_run,
    )?;
    Ok(MemoryReport {
        gateway_idle_kib: idle.0,
        // VmHWM is synced from per-thread counters lazily; never report it below a sample.
        gateway_peak_kib: procstat::sample(stack.gateway_pid)?
            .peak_rss_kib
            .max(gw_streams),
        gateway_streams_kib: gw_streams,
        bare_idle_kib: idle.1,
        bare_streams_kib: bare_streams,
        streams: plan.streams,
        stream_errors: r.socket_errors + r.non_2xx,
    })
}

fn header(opts: &Options, prioritized: bool) -> String {
    let common = crate::run_info::header_lines(&opts.repo);
    let pin = if opts.pin {
        "wrk, the mocks and the harness on CPU 0; the process under test (bare proxy or gateway) on CPU 1"
    } else {
        "not pinned"
    };
    let priority = if prioritized {
        "nice -20, autogroup nice -20"
    } else {
        "normal"
    };
    format!(
        "{common}- mode: {}\n- pinning: {pin}\n- scheduling priority: {priority}\n",
        if opts.quick {
            "quick (`bench/run --quick`)"
        } else {
            "full (`bench/run`)"
        },
    )
}

/// Runs every scenario and returns the markdown report.
pub fn run(opts: &Options) -> anyhow::Result<String> {
    std::fs::create_dir_all(&opts.work_dir)?;
    let prioritized = opts.priority && procs::raise_priority();
    if opts.priority && !prioritized {
        eprintln!(
            "bench: could not raise the scheduling priority (not root?); results are more exposed to other load"
        );
    }
    // Before pinning: the CPU count is read from this process's affinity.
    let header = header(opts, prioritized);
    if opts.pin {
        procs::pin_self(0)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let plan = Plan::new(opts.quick);
    let fixtures = opts.repo.join("e2e/fixtures");
    let jwks = std::fs::read_to_string(fixtures.join("jwks.json"))
        .context("reading e2e/fixtures/jwks.json")?;
    let pem = std::fs::read(fixtures.join("rsa_private.pem"))
        .context("reading e2e/fixtures/rsa_private.pem")?;
    let token = gateway_config::mint_token(&pem)?;
    let api_key = "sk-gw-bench-0123456789";
    let stack = start_stack(opts, &jwks, api_key)?;

    let jwt = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    let mut anthropic = jwt.clone();
    anthropic.push(("anthropic-version".to_owned(), "2023-06-01".to_owned()));

    // Idle memory: after start and one request through each proxy.
    let chat = Bytes::from(serde_json::to_vec(&bodies::chat(MODEL_OPENAI))?);
    for addr in [stack.sides[1].addr, stack.sides[2].addr] {
        let status = rt.block_on(client::probe(
            addr,
            "/v1/chat/completions",
            &jwt,
            chat.clone(),
        ))?;
        anyhow::ensure!(
            status.is_success(),
            "probe through {addr} answered {status}; see {}",
            opts.work_dir.display()
        );
    }
    let idle = (
        procstat::sample(stack.gateway_pid)?.rss_kib,
        procstat::sample(stack.bare_pid)?.rss_kib,
    );

    let mut scenarios = Vec::new();
    for &c in &plan.concurrencies {
        scenarios.push(Scenario {
            name: "chat, same format, JWT".into(),
            concurrency: c,
            path: "/v1/chat/completions",
            headers: jwt.clone(),
            body: bodies::chat(MODEL_OPENAI),
            probe: None,
        });
    }
    scenarios.push(Scenario {
        name: "chat, same format, API key".into(),
        concurrency: 16,
        path: "/key/v1/chat/completions",
        headers: vec![("authorization".to_owned(), format!("Bearer {api_key}"))],
        body: bodies::chat(MODEL_OPENAI),
        probe: None,
    });
    for &c in &plan.concurrencies {
        scenarios.push(Scenario {
            name: "chat, OpenAI → Anthropic, JWT".into(),
            concurrency: c,
            path: "/v1/chat/completions",
            headers: jwt.clone(),
            body: bodies::chat(MODEL_ANTHROPIC),
            probe: Some("no OpenAI → Anthropic translation yet"),
        });
    }
    scenarios.push(Scenario {
        name: "messages stream, 50 deltas, JWT".into(),
        concurrency: 16,
        path: "/v1/messages",
        headers: anthropic.clone(),
        body: bodies::messages_stream(MODEL_ANTHROPIC),
        probe: None,
    });
    scenarios.push(Scenario {
        name: "chat, 100 KiB history, JWT".into(),
        concurrency: 16,
        path: "/v1/chat/completions",
        headers: jwt.clone(),
        body: bodies::chat_with_history(MODEL_OPENAI, 100 * 1024),
        probe: None,
    });

    let mut rows = Vec::new();
    for (id, s) in scenarios.iter().enumerate() {
        rows.push(run_load(&rt, &stack, &plan, &opts.work_dir, id, s)?);
    }
    let ttfb = run_ttfb(&rt, &stack, &plan, &anthropic)?;
    let (passthrough_stream, translated_stream) = run_translated_ttfb(&rt, &stack, &plan, &jwt)?;
    let memory = run_memory(&stack, &plan, &opts.work_dir, &anthropic, idle)?;

    let find_at = |name: &str, concurrency: usize| {
        rows.iter()
            .find(|r| r.scenario.starts_with(name) && r.concurrency == concurrency)
    };
    let find = |name: &str| find_at(name, 16);
    let timing = |t: Target| ttfb.iter().find(|(x, _)| *x == t).map(|(_, s)| *s);
    let goals = check_goals(&GoalInputs {
        passthrough: find("chat, same format, JWT"),
        passthrough_64: find_at("chat, same format, JWT", 64),
        history: find("chat, 100 KiB history"),
        translation: find("chat, OpenAI → Anthropic"),
        streaming: find("messages stream"),
        ttfb: timing(Target::Bare).zip(timing(Target::Gateway)),
        memory: &memory,
    });

    Ok(format!(
        "{}\n### Load\n\n{}\n### Streaming: time to first byte (one request at a time)\n\n{}\n### Translated streaming (one request at a time)\n\n{}\n### Memory\n\n{}\n### Goals\n\n{}",
        header,
        report::load_table(&rows),
        report::stream_table("messages stream, 50 deltas", &ttfb),
        report::translated_stream_table(passthrough_stream, translated_stream),
        report::memory_table(&memory),
        report::goals_table(&goals),
    ))
}
