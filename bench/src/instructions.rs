//! Instructions per request, counted by callgrind (`bench/run --instructions`;
//! the IO is [`crate::instructions_run`]).
//!
//! Timed runs on a shared 2-vCPU VM move by about a microsecond per request
//! between rounds, more than most single changes to the request path save.
//! Callgrind counts the user-space instructions a process executes, the same
//! number on every run of the same binary and requests: a change of a few
//! hundred instructions per request shows. It does not see the kernel (the
//! socket writes and wake-ups, half of the gateway's CPU in the timed runs)
//! nor the cost of an instruction (cache misses, a `rep movsb` counted per
//! byte), so it complements the timed benchmark and does not replace it.

use std::fmt::Write as _;

/// The instruction count (`Ir`) of a callgrind dump: its `totals:` line, or
/// `summary:` in older formats. `None` when the dump has neither.
pub fn total_instructions(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|counts| counts.split_whitespace().next())
        .and_then(|ir| ir.parse().ok())
}

/// The counts of one scenario, per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Scenario name, as in the load tables.
    pub scenario: String,
    /// The bare proxy's instructions per request.
    pub bare: u64,
    /// The gateway's instructions per request.
    pub gateway: u64,
}

/// `total` instructions over `requests` requests, rounded to the nearest.
pub fn per_request(total: u64, requests: u64) -> u64 {
    if requests == 0 {
        return 0;
    }
    (total + requests / 2) / requests
}

/// The markdown table of `rows` under `header` (the run's
/// [`crate::run_info::header_lines`]), with what was counted.
pub fn render(rows: &[Row], requests: u64, header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Instructions per request (callgrind)\n");
    out.push_str(header);
    let _ = writeln!(
        out,
        "- counted: {requests} requests per scenario on one kept-alive connection, after a \
         warm-up; user-space instructions of the whole process (every thread), not the kernel's\n"
    );
    out.push_str("| scenario | bare proxy | gateway | gateway − bare | gw/bare |\n");
    out.push_str("|---|---:|---:|---:|---:|\n");
    for r in rows {
        let ratio = if r.bare == 0 {
            "–".to_owned()
        } else {
            format!("{:.2}×", r.gateway as f64 / r.bare as f64)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:+} | {ratio} |",
            r.scenario,
            r.bare,
            r.gateway,
            r.gateway as i64 - r.bare as i64
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_read_from_either_line() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\nfn=main\n1 5\ntotals: 459902741\n";
        assert_eq!(total_instructions(dump), Some(459_902_741));
        assert_eq!(
            total_instructions("events: Ir\nsummary: 1234 5\n"),
            Some(1234)
        );
        assert_eq!(total_instructions("events: Ir\nfn=main\n1 5\n"), None);
        assert_eq!(total_instructions("totals: many\n"), None);
    }

    #[test]
    fn counts_are_per_request_rounded() {
        assert_eq!(per_request(459_902_741, 4299), 106_979);
        assert_eq!(per_request(7, 2), 4);
        assert_eq!(per_request(5, 0), 0);
    }

    #[test]
    fn the_table_has_one_row_per_scenario() {
        let rows = [
            Row {
                scenario: "chat, same format, JWT".into(),
                bare: 37_200,
                gateway: 106_979,
            },
            Row {
                scenario: "empty".into(),
                bare: 0,
                gateway: 10,
            },
        ];
        let table = render(&rows, 2000, "- commit: abc1234\n");
        assert!(table.contains("- commit: abc1234\n- counted: 2000 requests"));
        assert!(table.contains("| chat, same format, JWT | 37200 | 106979 | +69779 | 2.88× |"));
        assert!(table.contains("| empty | 0 | 10 | +10 | – |"));
    }
}
