//! The goals, checked against one run's results.

use crate::report::{
    GoalCheck, LoadOutcome, LoadRow, LoadStats, MemoryReport, StreamTiming, added_p50,
};

/// What the goals are checked against.
#[derive(Debug, Clone, Copy)]
pub struct GoalInputs<'a> {
    /// Same-format chat with JWT at concurrency 16.
    pub passthrough: Option<&'a LoadRow>,
    /// Same-format chat with JWT at concurrency 64 (full runs only).
    pub passthrough_64: Option<&'a LoadRow>,
    /// Same-format chat with JWT and 100 KiB of history at concurrency 16.
    pub history: Option<&'a LoadRow>,
    /// OpenAI → Anthropic chat with JWT at concurrency 16.
    pub translation: Option<&'a LoadRow>,
    /// Streamed Anthropic messages under load.
    pub streaming: Option<&'a LoadRow>,
    /// Time to first byte: (bare, gateway).
    pub ttfb: Option<(StreamTiming, StreamTiming)>,
    /// Memory.
    pub memory: &'a MemoryReport,
}

fn measured(row: Option<&LoadRow>) -> Option<(&LoadStats, &LoadStats, &LoadStats)> {
    match row.map(|r| &r.outcome) {
        Some(LoadOutcome::Measured {
            direct,
            bare,
            gateway,
        }) => Some((direct, bare, gateway)),
        _ => None,
    }
}

fn check(
    goal: &str,
    value: Option<f64>,
    show: impl Fn(f64) -> String,
    ok: impl Fn(f64) -> bool,
) -> GoalCheck {
    GoalCheck {
        goal: goal.to_owned(),
        measured: value.map_or_else(|| "–".to_owned(), &show),
        met: value.map(ok),
    }
}

/// The gateway's RPS over the bare proxy's.
fn rps_vs_bare(row: Option<&LoadRow>) -> Option<f64> {
    measured(row).map(|(_, b, g)| g.rps / b.rps)
}

/// The gateway's CPU per request over the bare proxy's.
fn cpu_vs_bare(row: Option<&LoadRow>) -> Option<f64> {
    let (_, b, g) = measured(row)?;
    Some(g.cpu_per_request?.as_secs_f64() / b.cpu_per_request?.as_secs_f64())
}

/// Every goal of the issue, in its order.
pub fn check_goals(inputs: &GoalInputs<'_>) -> Vec<GoalCheck> {
    let pass = measured(inputs.passthrough);
    let added_ratio = pass.and_then(|(d, b, g)| {
        let bare = added_p50(b, d);
        (bare > 0.0).then(|| added_p50(g, d) / bare)
    });
    let rps_ratio = rps_vs_bare(inputs.passthrough);
    let cpu_ratio = cpu_vs_bare(inputs.passthrough);
    let rps_ratio_64 = rps_vs_bare(inputs.passthrough_64);
    let cpu_ratio_64 = cpu_vs_bare(inputs.passthrough_64);
    let history_ratio = rps_vs_bare(inputs.history);
    let stream_ratio = rps_vs_bare(inputs.streaming);
    let ttfb_gap = inputs
        .ttfb
        .map(|(b, g)| (g.ttfb_p50.as_secs_f64() - b.ttfb_p50.as_secs_f64()) * 1e3);
    let translation_ratio = match (pass, measured(inputs.translation)) {
        (Some((_, _, p)), Some((_, _, t))) => Some(t.rps / p.rps),
        _ => None,
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let m = inputs.memory;
    let times = |x: f64| format!("{x:.2}×");
    vec![
        check(
            "JWT passthrough, c=16: added p50 ≤ 2× bare proxy's",
            added_ratio,
            times,
            |x| x <= 2.0,
        ),
        check(
            "JWT passthrough, c=16: RPS ≥ 0.70× bare proxy's",
            rps_ratio,
            times,
            |x| x >= 0.7,
        ),
        check(
            "JWT passthrough, c=16: CPU/request ≤ 1.6× bare proxy's",
            cpu_ratio,
            times,
            |x| x <= 1.6,
        ),
        check(
            "JWT passthrough, c=64: RPS ≥ 0.70× bare proxy's",
            rps_ratio_64,
            times,
            |x| x >= 0.7,
        ),
        check(
            "JWT passthrough, c=64: CPU/request ≤ 1.6× bare proxy's",
            cpu_ratio_64,
            times,
            |x| x <= 1.6,
        ),
        check(
            "100 KiB history, c=16: RPS ≥ 0.80× bare proxy's",
            history_ratio,
            times,
            |x| x >= 0.8,
        ),
        check(
            "streaming (50 events), c=16: RPS ≥ 0.90× bare proxy's",
            stream_ratio,
            times,
            |x| x >= 0.9,
        ),
        check(
            "streaming: TTFB p50 within 0.1 ms of bare proxy's",
            ttfb_gap,
            |x| format!("{x:+.3} ms"),
            |x| x <= 0.1,
        ),
        check(
            "translation: RPS ≥ 0.90× same-format passthrough",
            translation_ratio,
            times,
            |x| x >= 0.9,
        ),
        check(
            "idle RSS < 10 MiB",
            (m.gateway_idle_kib > 0).then(|| mib(m.gateway_idle_kib)),
            |x| format!("{x:.1} MiB"),
            |x| x < 10.0,
        ),
        check(
            &format!("{} concurrent streams < 100 MiB", m.streams),
            (m.gateway_streams_kib > 0).then(|| mib(m.gateway_streams_kib)),
            |x| format!("{x:.1} MiB"),
            |x| x < 100.0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(bare_rps: f64, gw_rps: f64) -> LoadRow {
        row_at(16, bare_rps, gw_rps)
    }

    fn row_at(concurrency: usize, bare_rps: f64, gw_rps: f64) -> LoadRow {
        let s = |rps: f64, p50: u64, cpu: Option<u64>| LoadStats {
            rps,
            p50: Duration::from_micros(p50),
            p99: Duration::from_micros(p50 * 2),
            cpu_per_request: cpu.map(Duration::from_micros),
            errors: 0,
        };
        LoadRow {
            scenario: "x".into(),
            concurrency,
            outcome: LoadOutcome::Measured {
                direct: s(50_000.0, 100, None),
                bare: s(bare_rps, 200, Some(20)),
                gateway: s(gw_rps, 400, Some(40)),
            },
        }
    }

    #[test]
    fn ratios_against_the_thresholds() {
        let pass = row(40_000.0, 30_000.0);
        let memory = MemoryReport {
            gateway_idle_kib: 8 * 1024,
            gateway_streams_kib: 200 * 1024,
            streams: 1000,
            ..Default::default()
        };
        let goals = check_goals(&GoalInputs {
            passthrough: Some(&pass),
            passthrough_64: None,
            history: None,
            translation: None,
            streaming: None,
            ttfb: None,
            memory: &memory,
        });
        let met: Vec<Option<bool>> = goals.iter().map(|g| g.met).collect();
        // added p50 3×, RPS 0.75×, CPU 2×, no c=64, no history, no streaming, no ttfb,
        // no translation, idle ok, streams too big
        assert_eq!(
            met,
            vec![
                Some(false),
                Some(true),
                Some(false),
                None,
                None,
                None,
                None,
                None,
                None,
                Some(true),
                Some(false)
            ]
        );
        assert_eq!(goals[0].measured, "3.00×");
    }

    /// The c=64 passthrough and the 100 KiB history rows have goals of their own.
    #[test]
    fn concurrency_64_and_history_goals() {
        let pass = row(40_000.0, 30_000.0);
        let pass_64 = row_at(64, 50_000.0, 30_000.0);
        let history = row(10_000.0, 8_500.0);
        let memory = MemoryReport::default();
        let goals = check_goals(&GoalInputs {
            passthrough: Some(&pass),
            passthrough_64: Some(&pass_64),
            history: Some(&history),
            translation: None,
            streaming: None,
            ttfb: None,
            memory: &memory,
        });
        let by_name = |name: &str| {
            goals
                .iter()
                .find(|g| g.goal.starts_with(name))
                .unwrap_or_else(|| panic!("no goal {name}"))
        };
        let rps_64 = by_name("JWT passthrough, c=64: RPS");
        assert_eq!(
            (rps_64.measured.as_str(), rps_64.met),
            ("0.60×", Some(false))
        );
        let cpu_64 = by_name("JWT passthrough, c=64: CPU");
        assert_eq!(
            (cpu_64.measured.as_str(), cpu_64.met),
            ("2.00×", Some(false))
        );
        let hist = by_name("100 KiB history");
        assert_eq!((hist.measured.as_str(), hist.met), ("0.85×", Some(true)));
    }
}
