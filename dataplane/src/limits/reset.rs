//! When a limit resets, in the forms refusals show it: an RFC 3339 UTC
//! instant (`2026-12-08T00:00:00Z`, the form of Anthropic's
//! `anthropic-ratelimit-*-reset` headers) and a short duration (`3h12m`).

use crate::calendar::civil_from_days;

/// `unix_ms` as an RFC 3339 UTC instant with second precision, rounded up
/// (a reset is never shown earlier than it happens).
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms.div_ceil(1000);
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration in its two largest units: `45s`, `12m5s`, `3h12m`, `24d3h`
/// (`0s` for none); a zero second unit is left out (`3h`, `2m`).
pub fn in_words(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let units = [(d, "d"), (h, "h"), (m, "m"), (s, "s")];
    let Some(first) = units.iter().position(|(n, _)| *n > 0) else {
        return "0s".to_string();
    };
    let mut out = format!("{}{}", units[first].0, units[first].1);
    if let Some((n, unit)) = units.get(first + 1)
        && *n > 0
    {
        out.push_str(&format!("{n}{unit}"));
    }
    out
}

/// `resets at 2026-12-08T00:00:00Z (in 3h12m)`: a limit's reset at
/// `reset_at_ms`, `reset_secs` from now.
pub fn resets_at(reset_at_ms: u64, reset_secs: u64) -> String {
    format!(
        "resets at {} (in {})",
        rfc3339(reset_at_ms),
        in_words(reset_secs)
    )
}

/// When a refused request may be retried: seconds from now, and the
/// instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAt {
    /// Seconds from now (the `Retry-After` value).
    pub secs: u64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
}

impl RetryAt {
    /// `secs` from `now_ms`.
    pub fn after(now_ms: u64, secs: u64) -> Self {
        Self {
            secs,
            at_ms: now_ms + secs * 1000,
        }
    }

    /// `; retry after 2026-12-08T00:00:00Z (in 3h12m)`, the tail of a
    /// refusal's message.
    pub fn suffix(&self) -> String {
        format!(
            "; retry after {} (in {})",
            rfc3339(self.at_ms),
            in_words(self.secs)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_utc_rounded_up_to_the_second() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // 2026-12-08T00:00:00Z
        assert_eq!(rfc3339(1_796_688_000_000), "2026-12-08T00:00:00Z");
        assert_eq!(rfc3339(1_796_688_000_001), "2026-12-08T00:00:01Z");
        assert_eq!(rfc3339(1_796_687_999_000), "2026-12-07T23:59:59Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn durations_in_their_two_largest_units() {
        assert_eq!(in_words(0), "0s");
        assert_eq!(in_words(45), "45s");
        assert_eq!(in_words(60), "1m");
        assert_eq!(in_words(725), "12m5s");
        assert_eq!(in_words(3 * 3600 + 12 * 60 + 59), "3h12m");
        assert_eq!(in_words(3 * 3600 + 59), "3h");
        assert_eq!(in_words(24 * 86_400 + 3 * 3600 + 5), "24d3h");
        assert_eq!(
            resets_at(1_796_688_000_000, 11_520),
            "resets at 2026-12-08T00:00:00Z (in 3h12m)"
        );
    }
}
