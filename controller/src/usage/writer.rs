//! Writes each AITeam's `status.usage` (Kubernetes mode, Lease holder
//! only): every interval it sums the records of every replica (its own
//! ledger, and the other replicas' unexpired view Leases) and applies the
//! usage of each AITeam whose usage changed, with server-side apply under
//! its own field manager ([`FIELD_MANAGER`]), so it never touches the
//! conditions the status writer owns, and the other way round.
//!
//! A team with nothing counted in a current window shows zeros (and keeps
//! its `lastSeen`); its period is its budget's, `month` without a budget.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use switchboard_api::v1alpha1::{API_VERSION, TeamUsageStatus};
use switchboard_api::{Inventory, ObjectKind};
use tokio::sync::watch;

use super::{SharedLedger, UsageRecord, aggregate, now_ms};
use crate::kube::views::{self, ViewConfig};
use crate::pipeline::Rendered;
use crate::status::writer::api_resource;

/// The server-side apply field manager of `status.usage`.
pub const FIELD_MANAGER: &str = "switchboard-controller-usage";

/// (namespace, name) of an AITeam.
type TeamKey = (String, String);

/// The usage to write: every AITeam of `inv` whose usage (from `totals`,
/// by `namespace/name`) differs from what `previous` says it has now.
pub fn plan(
    inv: &Inventory,
    totals: &BTreeMap<String, TeamUsageStatus>,
    previous: impl Fn(&TeamKey) -> Option<TeamUsageStatus>,
) -> Vec<(TeamKey, TeamUsageStatus)> {
    let mut out = Vec::new();
    for (ns, name, team) in inv.teams() {
        let key = (ns.to_string(), name.to_string());
        let before = previous(&key);
        let mut usage = totals
            .get(&format!("{ns}/{name}"))
            .cloned()
            .unwrap_or_default();
        if usage.period.is_empty() {
            usage.period = team
                .spec
                .budget
                .as_ref()
                .and_then(|b| b.period.clone())
                .unwrap_or_else(|| "month".to_string());
        }
        if usage.last_seen.is_none() {
            usage.last_seen = before.as_ref().and_then(|b| b.last_seen.clone());
        }
        if before.as_ref() != Some(&usage) {
            out.push((key, usage));
        }
    }
    out
}

/// Usage records in the other replicas' unexpired view Leases.
pub fn other_replicas(leases: &[Lease], identity: &str, now: Timestamp) -> Vec<UsageRecord> {
    leases
        .iter()
        .filter(|l| {
            l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(identity)
                && views::expiry(l).is_some_and(|t| t > now)
        })
        .flat_map(views::usage_records)
        .collect()
}

/// Writes `status.usage` of the AITeams every `interval` while `leader` is
/// true. Returns when the pipeline goes away.
pub async fn run(
    client: Client,
    ledger: SharedLedger,
    cfg: ViewConfig,
    rendered: watch::Receiver<Arc<Rendered>>,
    leader: watch::Receiver<bool>,
    interval: Duration,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let selector = ListParams::default().labels(&format!("{}={}", views::VIEW_LABEL, cfg.group));
    // What this replica wrote while leading, by team and uid.
    let mut written: BTreeMap<TeamKey, (Option<String>, TeamUsageStatus)> = BTreeMap::new();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if rendered.has_changed().is_err() {
            return;
        }
        if !*leader.borrow() {
            written.clear();
            continue;
        }
        let inv = rendered.borrow().inventory.clone();
        if inv.teams().next().is_none() {
            continue;
        }
        let now = now_ms();
        let mut records = ledger.records(now);
        match leases.list(&selector).await {
            Ok(list) => {
                records.extend(other_replicas(&list.items, &cfg.identity, Timestamp::now()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the other replicas' usage failed; retrying");
                continue;
            }
        }
        let totals = aggregate(&records, now);
        let uid = |key: &TeamKey| {
            inv.team(&key.0, &key.1)
                .and_then(|t| t.metadata.uid.clone())
        };
        let writes = plan(&inv, &totals, |key| match written.get(key) {
            Some((u, usage)) if *u == uid(key) => Some(usage.clone()),
            _ => inv
                .team(&key.0, &key.1)
                .and_then(|t| t.status.as_ref()?.usage.clone()),
        });
        for (key, usage) in writes {
            match apply(&client, &key, &usage).await {
                Ok(()) => {
                    written.insert(key.clone(), (uid(&key), usage));
                }
                Err(e) => {
                    tracing::warn!(team = %format!("{}/{}", key.0, key.1), error = %e, "writing an AITeam's usage failed");
                }
            }
        }
        written.retain(|key, _| inv.team(&key.0, &key.1).is_some());
    }
}

async fn apply(
    client: &Client,
    key: &TeamKey,
    usage: &TeamUsageStatus,
) -> Result<(), ::kube::Error> {
    let patch = Patch::Apply(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "AITeam",
        "status": { "usage": usage },
    }));
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &key.0, &api_resource(ObjectKind::Team));
    match api.patch_status(&key.1, &params, &patch).await {
        Ok(_) => Ok(()),
        // Deleted meanwhile.
        Err(::kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use switchboard_api::parse_documents;

    use super::*;

    fn inventory() -> Inventory {
        let yaml = "apiVersion: switchboard.dev/v1alpha1\nkind: AITeam\nmetadata: {name: a, namespace: ns}\nspec: {budget: {usd: 5, period: week}}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: AITeam\nmetadata: {name: b, namespace: ns}\nspec: {}\n";
        let mut inv = Inventory::default();
        inv.extend(parse_documents(yaml, "t.yaml").unwrap())
            .unwrap();
        inv
    }

    #[test]
    fn every_team_gets_its_usage_or_zeros_once() {
        let inv = inventory();
        let totals = BTreeMap::from([(
            "ns/a".to_string(),
            TeamUsageStatus {
                requests_this_minute: 3,
                period: "week".into(),
                last_seen: super::super::time(5_000),
                data_planes: 1,
                ..Default::default()
            },
        )]);
        let writes = plan(&inv, &totals, |_| None);
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0].1.requests_this_minute, 3);
        let b = &writes[1].1;
        assert_eq!((b.requests_this_minute, b.period.as_str()), (0, "month"));
        // Nothing changed: nothing to write.
        let before: BTreeMap<_, _> = writes.into_iter().collect();
        assert!(plan(&inv, &totals, |k| before.get(k).cloned()).is_empty());
    }

    #[test]
    fn other_replicas_count_while_their_view_is_valid_and_never_the_own() {
        use crate::fleet::FleetView;
        use crate::usage::UsageRecord;
        let cfg = |identity: &str| ViewConfig {
            namespace: "sys".into(),
            group: "switchboard-controller".into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
        };
        let records = |node: &str| {
            vec![UsageRecord {
                node: node.into(),
                instance: format!("{node}-i"),
                sequence: 1,
                live: true,
                teams: Vec::new(),
            }]
        };
        let at = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
        let view = FleetView::default();
        let leases = [
            views::view_lease(&cfg("a"), &view, &records("dp-a"), None, at(0)),
            views::view_lease(&cfg("b"), &view, &records("dp-b"), None, at(0)),
            views::view_lease(&cfg("c"), &view, &records("dp-c"), None, at(-20)),
        ];
        let nodes: Vec<String> = other_replicas(&leases, "a", at(5))
            .into_iter()
            .map(|r| r.node)
            .collect();
        assert_eq!(
            nodes,
            ["dp-b"],
            "its own view is read from memory, c expired"
        );
    }

    #[test]
    fn a_team_seen_before_keeps_its_last_seen_when_its_windows_end() {
        let inv = inventory();
        let seen = TeamUsageStatus {
            tokens_today: 10,
            period: "week".into(),
            last_seen: super::super::time(5_000),
            data_planes: 1,
            ..Default::default()
        };
        let writes = plan(&inv, &BTreeMap::new(), |k| {
            (k.1 == "a").then(|| seen.clone())
        });
        let a = writes.iter().find(|(k, _)| k.1 == "a").unwrap();
        assert_eq!(a.1.tokens_today, 0);
        assert_eq!(a.1.period, "week", "the budget's period");
        assert_eq!(a.1.last_seen, seen.last_seen);
        assert_eq!(a.1.data_planes, 0);
    }
}
