//! Statistics and the markdown table of the propagation benchmark
//! (`bench-propagation`): per connection count, how long a configuration
//! change took from the file write until every data plane had it.

use std::time::Duration;

use crate::stats::percentile;

/// One measured change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// From the write to the first data plane that received (and ACKed) the
    /// new version: the controller's poll wait, read, render and one send.
    pub first: Duration,
    /// From the write to the last data plane that received (and ACKed) it.
    pub last: Duration,
}

impl Round {
    /// From the first data plane to the last: the fan-out of one rendered
    /// snapshot to every stream.
    pub fn spread(&self) -> Duration {
        self.last.saturating_sub(self.first)
    }
}

/// The rounds measured with one kind and number of data planes.
#[derive(Debug, Clone)]
pub struct Row {
    /// What the data planes were, e.g. `simulated` or `real process`.
    pub kind: String,
    /// How many data planes were connected.
    pub connections: usize,
    /// The measured rounds (warm-up excluded).
    pub rounds: Vec<Round>,
}

/// p50, p99 and max of some samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
}

/// Summarizes `samples`; all zero when empty.
pub fn summarize(samples: &[Duration]) -> Summary {
    Summary {
        p50: percentile(samples, 50.0),
        p99: percentile(samples, 99.0),
        max: samples.iter().copied().max().unwrap_or_default(),
    }
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The markdown table: per row, write → all (p50/p99/max), write → first
/// (p50) and first → last (p50/p99/max), in milliseconds.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| data planes | kind | rounds | write → all p50 | p99 | max | write → first p50 | first → last p50 | p99 | max |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let last: Vec<Duration> = row.rounds.iter().map(|r| r.last).collect();
        let first: Vec<Duration> = row.rounds.iter().map(|r| r.first).collect();
        let spread: Vec<Duration> = row.rounds.iter().map(Round::spread).collect();
        let (all, first, spread) = (summarize(&last), summarize(&first), summarize(&spread));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.connections,
            row.kind,
            row.rounds.len(),
            ms(all.p50),
            ms(all.p99),
            ms(all.max),
            ms(first.p50),
            ms(spread.p50),
            ms(spread.p99),
            ms(spread.max),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(first: u64, last: u64) -> Round {
        Round {
            first: Duration::from_millis(first),
            last: Duration::from_millis(last),
        }
    }

    #[test]
    fn summaries_use_nearest_rank_and_max() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        let s = summarize(&samples);
        assert_eq!(s.p50, Duration::from_millis(100));
        assert_eq!(s.p99, Duration::from_millis(198));
        assert_eq!(s.max, Duration::from_millis(200));
        assert_eq!(summarize(&[]).max, Duration::ZERO);
    }

    #[test]
    fn spread_never_underflows() {
        assert_eq!(round(10, 14).spread(), Duration::from_millis(4));
        assert_eq!(round(10, 10).spread(), Duration::ZERO);
    }

    #[test]
    fn table_has_one_line_per_row_in_milliseconds() {
        let rows = [
            Row {
                kind: "simulated".into(),
                connections: 10,
                rounds: vec![round(20, 22), round(30, 34), round(40, 41)],
            },
            Row {
                kind: "real process".into(),
                connections: 1,
                rounds: vec![],
            },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert_eq!(
            lines[2],
            "| 10 | simulated | 3 | 34.0 | 41.0 | 41.0 | 30.0 | 2.0 | 4.0 | 4.0 |"
        );
        assert!(
            lines[3].starts_with("| 1 | real process | 0 | 0.0 |"),
            "{t}"
        );
    }
}
