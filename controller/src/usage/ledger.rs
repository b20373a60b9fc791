//! [`Ledger`]: the latest usage report of every data plane process
//! (instance) connected to this replica, and of those that left while
//! their windows last; [`UsageRecord`]s are also what a replica publishes
//! in its view Lease for the leader.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use switchboard_proto as pb;

/// Most instances kept after they left (the most recently seen are kept).
pub const MAX_DEPARTED: usize = 64;

/// One team's counts in one instance, with the end of each window (Unix
/// ms). Short field names: views carry one per team per data plane.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamRecord {
    /// `namespace/name` of the AITeam.
    #[serde(rename = "t")]
    pub team: String,
    /// Requests in the minute ending at `minute_end`.
    #[serde(rename = "r", default)]
    pub requests: u64,
    /// End of the minute.
    #[serde(rename = "re", default)]
    pub minute_end: u64,
    /// Tokens in the day ending at `day_end`.
    #[serde(rename = "k", default)]
    pub tokens: u64,
    /// Refusals in the day ending at `day_end`.
    #[serde(rename = "x", default)]
    pub refusals: u64,
    /// End of the day.
    #[serde(rename = "de", default)]
    pub day_end: u64,
    /// Spend (micro-USD) in the period ending at `period_end`.
    #[serde(rename = "u", default)]
    pub micro_usd: u64,
    /// End of the period.
    #[serde(rename = "pe", default)]
    pub period_end: u64,
    /// `day`, `week` or `month`.
    #[serde(rename = "p", default)]
    pub period: String,
    /// Last request seen (Unix ms).
    #[serde(rename = "s", default)]
    pub last_seen: u64,
}

impl TeamRecord {
    /// Whether every window of the record ended by `now_ms`.
    pub fn ended(&self, now_ms: u64) -> bool {
        now_ms >= self.minute_end && now_ms >= self.day_end && now_ms >= self.period_end
    }
}

impl From<pb::TeamUsage> for TeamRecord {
    fn from(t: pb::TeamUsage) -> Self {
        Self {
            team: t.team,
            requests: t.requests,
            minute_end: t.minute_end_unix_ms,
            tokens: t.tokens,
            refusals: t.refusals,
            day_end: t.day_end_unix_ms,
            micro_usd: t.micro_usd,
            period_end: t.period_end_unix_ms,
            period: t.period,
            last_seen: t.last_seen_unix_ms,
        }
    }
}

/// The latest report of one data plane process.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRecord {
    /// The data plane's node id.
    #[serde(rename = "n")]
    pub node: String,
    /// The process's instance id.
    #[serde(rename = "i")]
    pub instance: String,
    /// The report's sequence number (the highest wins a duplicate).
    #[serde(rename = "q", default)]
    pub sequence: u64,
    /// Whether its stream is open (on this replica).
    #[serde(rename = "l", default)]
    pub live: bool,
    /// Its teams.
    #[serde(rename = "t", default)]
    pub teams: Vec<TeamRecord>,
}

/// The latest report of every instance that reported to this replica, by
/// (node, instance).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    records: BTreeMap<(String, String), UsageRecord>,
}

impl Ledger {
    /// Records `report` from data plane `node`: it replaces the same
    /// instance's earlier report (unless that one is newer). Another
    /// instance of the same node has ended (the process restarted): it is
    /// kept as departed.
    pub fn record(&mut self, node: &str, report: pb::UsageReport) {
        for ((n, i), r) in self.records.iter_mut() {
            if n == node && *i != report.instance {
                r.live = false;
            }
        }
        let key = (node.to_string(), report.instance.clone());
        if self
            .records
            .get(&key)
            .is_some_and(|r| r.sequence > report.sequence)
        {
            return;
        }
        self.records.insert(
            key,
            UsageRecord {
                node: node.to_string(),
                instance: report.instance,
                sequence: report.sequence,
                live: true,
                teams: report.teams.into_iter().map(TeamRecord::from).collect(),
            },
        );
    }

    /// Marks every instance of `node` as departed (its stream ended); its
    /// counts still count until their windows end.
    pub fn departed(&mut self, node: &str) {
        for ((n, _), r) in self.records.iter_mut() {
            if n == node {
                r.live = false;
            }
        }
    }

    /// Forgets the teams whose windows ended by `now_ms`, departed
    /// instances left with none, and the departed instances beyond
    /// [`MAX_DEPARTED`] (those seen longest ago first).
    pub fn prune(&mut self, now_ms: u64) {
        for r in self.records.values_mut() {
            r.teams.retain(|t| !t.ended(now_ms));
        }
        self.records.retain(|_, r| r.live || !r.teams.is_empty());
        let mut departed: Vec<((String, String), u64)> = self
            .records
            .iter()
            .filter(|(_, r)| !r.live)
            .map(|(k, r)| {
                let seen = r.teams.iter().map(|t| t.last_seen).max().unwrap_or(0);
                (k.clone(), seen)
            })
            .collect();
        if departed.len() > MAX_DEPARTED {
            departed.sort_by_key(|(_, seen)| std::cmp::Reverse(*seen));
            for (key, _) in departed.into_iter().skip(MAX_DEPARTED) {
                self.records.remove(&key);
            }
        }
    }

    /// Every record, sorted by (node, instance).
    pub fn records(&self) -> Vec<UsageRecord> {
        self.records.values().cloned().collect()
    }
}

/// A [`Ledger`] shared by the gRPC streams, the view publisher and the
/// usage writer; cheap to clone. The lock is never held across an await.
#[derive(Clone, Debug, Default)]
pub struct SharedLedger(Arc<Mutex<Ledger>>);

impl SharedLedger {
    fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        let mut ledger = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut ledger)
    }

    /// See [`Ledger::record`].
    pub fn record(&self, node: &str, report: pb::UsageReport) {
        self.with(|l| l.record(node, report));
    }

    /// See [`Ledger::departed`].
    pub fn departed(&self, node: &str) {
        self.with(|l| l.departed(node));
    }

    /// The records after pruning at `now_ms`.
    pub fn records(&self, now_ms: u64) -> Vec<UsageRecord> {
        self.with(|l| {
            l.prune(now_ms);
            l.records()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(instance: &str, sequence: u64, requests: u64) -> pb::UsageReport {
        pb::UsageReport {
            instance: instance.into(),
            sequence,
            teams: vec![pb::TeamUsage {
                team: "ns/a".into(),
                requests,
                minute_end_unix_ms: 60_000,
                tokens: 10,
                day_end_unix_ms: 86_400_000,
                period_end_unix_ms: 86_400_000,
                period: "day".into(),
                last_seen_unix_ms: 1_000,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn the_newest_report_of_an_instance_wins() {
        let mut l = Ledger::default();
        l.record("dp-1", report("i1", 2, 5));
        l.record("dp-1", report("i1", 1, 3));
        assert_eq!(
            l.records()[0].teams[0].requests,
            5,
            "an older report is ignored"
        );
        l.record("dp-1", report("i1", 3, 7));
        assert_eq!(l.records()[0].teams[0].requests, 7);
        assert_eq!(l.records().len(), 1);
    }

    #[test]
    fn a_restarted_process_keeps_the_old_instance_until_its_windows_end() {
        let mut l = Ledger::default();
        l.record("dp-1", report("old", 9, 5));
        l.record("dp-1", report("new", 1, 1));
        let r = l.records();
        assert_eq!(r.len(), 2);
        assert!(!r.iter().find(|r| r.instance == "old").unwrap().live);
        // The minute ended: the day's tokens still count.
        l.prune(60_000);
        assert_eq!(l.records().len(), 2);
        // Every window ended: the departed instance goes, the live one stays (empty).
        l.prune(86_400_000);
        let r = l.records();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].instance.as_str(), r[0].teams.len()), ("new", 0));
    }

    #[test]
    fn departed_instances_are_bounded() {
        let mut l = Ledger::default();
        for i in 0..(MAX_DEPARTED + 10) {
            let mut r = report(&format!("i{i}"), 1, 1);
            r.teams[0].last_seen_unix_ms = i as u64;
            l.record(&format!("dp-{i}"), r);
            l.departed(&format!("dp-{i}"));
        }
        l.prune(0);
        let kept = l.records();
        assert_eq!(kept.len(), MAX_DEPARTED);
        assert!(
            kept.iter().all(|r| r.teams[0].last_seen >= 10),
            "the most recently seen are kept"
        );
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut l = Ledger::default();
        l.record("dp-1", report("i1", 1, 5));
        let text = serde_json::to_string(&l.records()).unwrap();
        let back: Vec<UsageRecord> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, l.records());
    }
}
