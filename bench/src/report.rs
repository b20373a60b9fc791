//! The results as markdown tables: load scenarios (RPS, latency, latency
//! added over direct, CPU per request, gateway/bare ratios), streaming time
//! to first byte, memory, and the goals. Pure formatting.

use std::fmt::Write as _;
use std::time::Duration;

/// Which process answered the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The mock upstream itself.
    Direct,
    /// The bare passthrough proxy in front of the mock.
    Bare,
    /// The Switchboard data plane in front of the mock.
    Gateway,
}

impl Target {
    /// Column label.
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Bare => "bare proxy",
            Target::Gateway => "gateway",
        }
    }
}

/// Aggregated measurements of one target in one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadStats {
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// CPU time of the process under test per request (none for direct).
    pub cpu_per_request: Option<Duration>,
    /// Failed or non-2xx requests.
    pub errors: u64,
}

/// One load scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadRow {
    /// What was sent.
    pub scenario: String,
    /// Requests in flight.
    pub concurrency: usize,
    /// Measurements, or why the scenario was skipped.
    pub outcome: LoadOutcome,
}

/// The result of a load scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOutcome {
    /// All three targets were measured.
    Measured {
        /// Load generator straight to the mock.
        direct: LoadStats,
        /// Through the bare proxy.
        bare: LoadStats,
        /// Through the gateway.
        gateway: LoadStats,
    },
    /// Not run, with the reason.
    Skipped(String),
}

/// Time to first byte and total time of streamed answers, per target.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamTiming {
    /// Median time from request sent to the first body byte.
    pub ttfb_p50: Duration,
    /// 99th percentile of the same.
    pub ttfb_p99: Duration,
    /// Median time to the end of the stream.
    pub total_p50: Duration,
    /// 99th percentile of the same.
    pub total_p99: Duration,
}

/// Memory of the processes under test.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemoryReport {
    /// Gateway RSS after start and one request, KiB.
    pub gateway_idle_kib: u64,
    /// Gateway peak RSS over the whole run (VmHWM), KiB.
    pub gateway_peak_kib: u64,
    /// Highest gateway RSS seen while the open-streams scenario ran, KiB.
    pub gateway_streams_kib: u64,
    /// Bare proxy RSS after start, KiB.
    pub bare_idle_kib: u64,
    /// Highest bare-proxy RSS seen while the open-streams scenario ran, KiB.
    pub bare_streams_kib: u64,
    /// Streams held open.
    pub streams: usize,
    /// Streams that failed during that scenario (through the gateway).
    pub stream_errors: u64,
}

/// A goal from the issue and how the run measured it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalCheck {
    /// The goal in words.
    pub goal: String,
    /// What was measured, in words.
    pub measured: String,
    /// Met, missed, or not measurable in this run.
    pub met: Option<bool>,
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn signed_ms(later: Duration, earlier: Duration) -> String {
    format!(
        "{:+.3}",
        (later.as_secs_f64() - earlier.as_secs_f64()) * 1e3
    )
}

fn us(d: Option<Duration>) -> String {
    d.map_or_else(
        || "–".to_owned(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e6),
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `a / b` formatted as `1.23×`, or `n/a` when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}×", a / b)
    } else {
        "n/a".to_owned()
    }
}

/// Latency `stats` adds over `direct` at p50, in seconds (may be negative: noise).
pub fn added_p50(stats: &LoadStats, direct: &LoadStats) -> f64 {
    stats.p50.as_secs_f64() - direct.p50.as_secs_f64()
}

/// The load table.
pub fn load_table(rows: &[LoadRow]) -> String {
    let mut out = String::from(
        "| scenario | c | target | RPS | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU µs/req | gw/bare added p50 | gw/bare RPS | gw/bare CPU |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        match &row.outcome {
            LoadOutcome::Skipped(reason) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | – | skipped: {reason} | | | | | | | | |",
                    row.scenario, row.concurrency
                );
            }
            LoadOutcome::Measured {
                direct,
                bare,
                gateway,
            } => {
                for (target, s) in [
                    (Target::Direct, direct),
                    (Target::Bare, bare),
                    (Target::Gateway, gateway),
                ] {
                    let (added50, added99) = if target == Target::Direct {
                        ("–".to_owned(), "–".to_owned())
                    } else {
                        (signed_ms(s.p50, direct.p50), signed_ms(s.p99, direct.p99))
                    };
                    let ratios = if target == Target::Gateway {
                        let cpu = match (gateway.cpu_per_request, bare.cpu_per_request) {
                            (Some(g), Some(b)) => ratio(g.as_secs_f64(), b.as_secs_f64()),
                            _ => "n/a".to_owned(),
                        };
                        format!(
                            "{} | {} | {}",
                            ratio(added_p50(gateway, direct), added_p50(bare, direct)),
                            ratio(gateway.rps, bare.rps),
                            cpu
                        )
                    } else {
                        " | | ".to_owned()
                    };
                    let errors = if s.errors > 0 {
                        format!(" ({} errors)", s.errors)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {:.0}{errors} | {} | {} | {added50} | {added99} | {} | {ratios} |",
                        row.scenario,
                        row.concurrency,
                        target.label(),
                        s.rps,
                        ms(s.p50),
                        ms(s.p99),
                        us(s.cpu_per_request),
                    );
                }
            }
        }
    }
    out
}

/// The streaming time-to-first-byte table.
pub fn stream_table(scenario: &str, rows: &[(Target, StreamTiming)]) -> String {
    let mut out = String::from(
        "| scenario | target | TTFB p50 ms | TTFB p99 ms | total p50 ms | total p99 ms | added TTFB p50 ms |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    let direct = rows
        .iter()
        .find(|(t, _)| *t == Target::Direct)
        .map(|(_, s)| *s);
    for (target, s) in rows {
        let added = match direct {
            Some(d) if *target != Target::Direct => signed_ms(s.ttfb_p50, d.ttfb_p50),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {scenario} | {} | {} | {} | {} | {} | {added} |",
            target.label(),
            ms(s.ttfb_p50),
            ms(s.ttfb_p99),
            ms(s.total_p50),
            ms(s.total_p99)
        );
    }
    out
}

/// The table comparing a translated stream with a same-format one through the
/// gateway: the same Chat Completions stream request, once for a model on an
/// OpenAI-format backend (passthrough) and once for a model on an
/// Anthropic-format backend (translated event by event).
pub fn translated_stream_table(passthrough: StreamTiming, translated: StreamTiming) -> String {
    let mut out = String::from(
        "| gateway, chat stream | TTFB p50 ms | TTFB p99 ms | total p50 ms | total p99 ms | added TTFB p50 ms |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (label, s, added) in [
        ("passthrough (OpenAI backend)", passthrough, "–".to_owned()),
        (
            "translated (Anthropic backend)",
            translated,
            signed_ms(translated.ttfb_p50, passthrough.ttfb_p50),
        ),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {added} |",
            ms(s.ttfb_p50),
            ms(s.ttfb_p99),
            ms(s.total_p50),
            ms(s.total_p99)
        );
    }
    out
}

/// The memory table.
pub fn memory_table(m: &MemoryReport) -> String {
    let mut out = String::from(
        "| process | idle RSS | RSS with open streams | peak RSS (whole run) |\n|---|---:|---:|---:|\n",
    );
    let _ = writeln!(
        out,
        "| bare proxy | {} | {} | – |",
        mib(m.bare_idle_kib),
        mib(m.bare_streams_kib)
    );
    let _ = writeln!(
        out,
        "| gateway | {} | {} | {} |",
        mib(m.gateway_idle_kib),
        mib(m.gateway_streams_kib),
        mib(m.gateway_peak_kib)
    );
    let _ = writeln!(
        out,
        "\n{} concurrent streams held open{}.",
        m.streams,
        if m.stream_errors > 0 {
            format!(" ({} failed)", m.stream_errors)
        } else {
            String::new()
        }
    );
    out
}

/// The goals table.
pub fn goals_table(goals: &[GoalCheck]) -> String {
    let mut out = String::from("| goal | measured | met |\n|---|---|---|\n");
    for g in goals {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {} | {} | {met} |", g.goal, g.measured);
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn translated_stream_table_shows_the_added_time_to_first_byte() {
        let t = |ttfb_ms: u64| StreamTiming {
            ttfb_p50: Duration::from_millis(ttfb_ms),
            ttfb_p99: Duration::from_millis(ttfb_ms * 2),
            total_p50: Duration::from_millis(ttfb_ms * 10),
            total_p99: Duration::from_millis(ttfb_ms * 20),
        };
        let table = translated_stream_table(t(1), t(3));
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 4, "{table}");
        assert!(
            rows[2].starts_with("| passthrough (OpenAI backend) |"),
            "{table}"
        );
        assert!(
            rows[3].starts_with("| translated (Anthropic backend) |"),
            "{table}"
        );
        assert!(
            rows[3].ends_with(&format!(
                "| {} |",
                signed_ms(Duration::from_millis(3), Duration::from_millis(1))
            )),
            "{table}"
        );
    }
    use super::*;

    fn stats(rps: f64, p50_us: u64, cpu_us: Option<u64>) -> LoadStats {
        LoadStats {
            rps,
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p50_us * 3),
            cpu_per_request: cpu_us.map(Duration::from_micros),
            errors: 0,
        }
    }

    #[test]
    fn load_table_has_ratios_on_the_gateway_line() {
        let rows = vec![
            LoadRow {
                scenario: "chat".into(),
                concurrency: 16,
                outcome: LoadOutcome::Measured {
                    direct: stats(50000.0, 100, None),
                    bare: stats(40000.0, 200, Some(20)),
                    gateway: stats(30000.0, 300, Some(30)),
                },
            },
            LoadRow {
                scenario: "translate".into(),
                concurrency: 16,
                outcome: LoadOutcome::Skipped("gateway answered 400".into()),
            },
        ];
        let table = load_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[4],
            "| chat | 16 | gateway | 30000 | 0.300 | 0.900 | +0.200 | +0.600 | 30.0 | 2.00× | 0.75× | 1.50× |"
        );
        assert!(lines[2].starts_with("| chat | 16 | direct | 50000 | 0.100 | 0.300 | – | – | – |"));
        assert!(lines[5].contains("skipped: gateway answered 400"));
    }

    #[test]
    fn ratio_of_non_positive_is_not_available() {
        assert_eq!(ratio(1.0, 0.0), "n/a");
        assert_eq!(ratio(1.0, -1.0), "n/a");
        assert_eq!(ratio(3.0, 2.0), "1.50×");
    }

    #[test]
    fn stream_and_goal_tables() {
        let t = StreamTiming {
            ttfb_p50: Duration::from_micros(500),
            ..StreamTiming::default()
        };
        let table = stream_table("stream", &[(Target::Direct, t), (Target::Gateway, t)]);
        assert!(table.contains("| stream | gateway | 0.500 | 0.000 | 0.000 | 0.000 | +0.000 |"));
        let goals = goals_table(&[GoalCheck {
            goal: "g".into(),
            measured: "m".into(),
            met: Some(false),
        }]);
        assert!(goals.contains("| g | m | **no** |"));
    }
}
