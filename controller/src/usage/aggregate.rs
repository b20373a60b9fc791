//! Pure aggregation of usage records (of every replica) into each AITeam's
//! `status.usage`.
//!
//! Records of one instance can arrive twice (a data plane that reconnected
//! to another replica is in both replicas' ledgers): the one with the
//! highest sequence counts. Counts whose window ended by `now` count 0. The
//! spend sums the records of the period seen most recently (a team whose
//! budget period just changed shows the new period only).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchboard_api::v1alpha1::TeamUsageStatus;

use super::ledger::{TeamRecord, UsageRecord};

/// Each team's usage summed over `records` at `now_ms`, by AITeam id
/// (`namespace/name`).
pub fn aggregate<'a>(
    records: impl IntoIterator<Item = &'a UsageRecord>,
    now_ms: u64,
) -> BTreeMap<String, TeamUsageStatus> {
    // One record per instance: the highest sequence, then a live one.
    let mut latest: BTreeMap<&str, &UsageRecord> = BTreeMap::new();
    for r in records {
        let newer = latest
            .get(r.instance.as_str())
            .is_none_or(|cur| (r.sequence, r.live) > (cur.sequence, cur.live));
        if newer {
            latest.insert(&r.instance, r);
        }
    }
    let mut by_team: BTreeMap<&str, Vec<&TeamRecord>> = BTreeMap::new();
    for r in latest.values() {
        for t in &r.teams {
            by_team.entry(&t.team).or_default().push(t);
        }
    }
    by_team
        .into_iter()
        .map(|(team, records)| (team.to_string(), sum(&records, now_ms)))
        .collect()
}

fn sum(records: &[&TeamRecord], now: u64) -> TeamUsageStatus {
    let period = records
        .iter()
        .filter(|t| now < t.period_end)
        .max_by_key(|t| t.last_seen)
        .map(|t| t.period.clone());
    let mut out = TeamUsageStatus::default();
    let mut micro_usd: u64 = 0;
    let mut last_seen = 0;
    for t in records {
        let mut counted = false;
        if now < t.minute_end && t.requests > 0 {
            out.requests_this_minute += t.requests;
            counted = true;
        }
        if now < t.day_end && (t.tokens > 0 || t.refusals > 0) {
            out.tokens_today += t.tokens;
            out.refusals_today += t.refusals;
            counted = true;
        }
        if now < t.period_end && Some(&t.period) == period.as_ref() && t.micro_usd > 0 {
            micro_usd = micro_usd.saturating_add(t.micro_usd);
            counted = true;
        }
        if counted {
            out.data_planes += 1;
        }
        last_seen = last_seen.max(t.last_seen);
    }
    out.spent_usd = micro_usd as f64 / 1e6;
    out.period = period.unwrap_or_default();
    out.last_seen = time(last_seen);
    out
}

/// Unix ms as a Kubernetes time, truncated to the second (0: none).
pub fn time(unix_ms: u64) -> Option<Time> {
    if unix_ms == 0 {
        return None;
    }
    let secs = i64::try_from(unix_ms / 1000).ok()?;
    Timestamp::from_second(secs).ok().map(Time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(instance: &str, sequence: u64, live: bool, teams: Vec<TeamRecord>) -> UsageRecord {
        UsageRecord {
            node: format!("node-{instance}"),
            instance: instance.into(),
            sequence,
            live,
            teams,
        }
    }

    fn team(name: &str, requests: u64, tokens: u64, micro_usd: u64, seen: u64) -> TeamRecord {
        TeamRecord {
            team: name.into(),
            requests,
            minute_end: 60_000,
            tokens,
            refusals: 1,
            day_end: 86_400_000,
            micro_usd,
            period_end: 2_000_000_000,
            period: "month".into(),
            last_seen: seen,
        }
    }

    #[test]
    fn sums_instances_and_counts_each_once() {
        let a = rec("a", 3, true, vec![team("ns/t", 2, 100, 1_500_000, 5_000)]);
        let a_stale = rec("a", 2, false, vec![team("ns/t", 1, 50, 0, 4_000)]);
        let b = rec("b", 1, false, vec![team("ns/t", 3, 20, 250_000, 9_000)]);
        let out = aggregate([&a_stale, &a, &b], 30_000);
        let t = &out["ns/t"];
        assert_eq!(t.requests_this_minute, 5);
        assert_eq!(t.tokens_today, 120);
        assert_eq!(t.refusals_today, 2);
        assert_eq!(t.spent_usd, 1.75);
        assert_eq!(t.period, "month");
        assert_eq!(t.data_planes, 2);
        assert_eq!(t.last_seen, time(9_000));
    }

    #[test]
    fn ended_windows_count_zero() {
        let a = rec("a", 1, true, vec![team("ns/t", 2, 100, 7, 5_000)]);
        let t = &aggregate([&a], 60_000)["ns/t"];
        assert_eq!((t.requests_this_minute, t.tokens_today), (0, 100));
        let t = &aggregate([&a], 86_400_000)["ns/t"];
        assert_eq!(
            (t.tokens_today, t.refusals_today, t.spent_usd),
            (0, 0, 7e-6)
        );
        assert_eq!(t.data_planes, 1);
    }

    #[test]
    fn the_most_recent_period_wins_after_a_period_change() {
        let mut old = team("ns/t", 0, 0, 5_000_000, 1_000);
        old.refusals = 0;
        let mut new = team("ns/t", 0, 0, 1_000_000, 2_000);
        new.period = "day".into();
        let a = rec("a", 1, false, vec![old]);
        let b = rec("b", 1, true, vec![new]);
        let t = &aggregate([&a, &b], 30_000)["ns/t"];
        assert_eq!((t.period.as_str(), t.spent_usd), ("day", 1.0));
    }
}
