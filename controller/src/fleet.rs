//! [`Fleet`]: the data planes connected to this replica and the version each
//! one runs. The gRPC server writes it; the status writer and the metrics
//! read it through [`Fleet::subscribe`].
//!
//! A data plane is keyed by the id it sends in its Hello. When it reconnects
//! before its old stream is noticed as closed, the new stream owns the entry
//! and the old stream's disconnect does not remove it.
//!
//! The fleet also holds the data planes' usage reports ([`Fleet::usage`]):
//! a data plane that leaves keeps its counts there until their windows end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use switchboard_proto::ResourceError;
use tokio::sync::watch;

/// A snapshot a data plane rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NackInfo {
    /// The rejected version.
    pub version: String,
    /// Why, per resource.
    pub errors: Vec<ResourceError>,
}

/// What one connected data plane runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataPlaneState {
    /// The version it last acknowledged (or announced in its Hello).
    pub acked_version: Option<String>,
    /// Its last NACK, cleared by its next ACK.
    pub nack: Option<NackInfo>,
}

/// Every connected data plane, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetView {
    /// Data planes by the id of their Hello.
    pub dataplanes: BTreeMap<String, DataPlaneState>,
}

/// The registry of connected data planes; cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    view: Arc<watch::Sender<FleetView>>,
    /// Which stream owns each id (never held across an await).
    owners: Arc<Mutex<BTreeMap<String, u64>>>,
    next_stream: Arc<std::sync::atomic::AtomicU64>,
    usage: crate::usage::SharedLedger,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

/// Proof that a stream registered a data plane; pass it back on every update.
#[derive(Debug)]
pub struct Registration {
    id: String,
    stream: u64,
}

impl Registration {
    /// The data plane's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Self {
        Self {
            view: Arc::new(watch::Sender::new(FleetView::default())),
            owners: Arc::new(Mutex::new(BTreeMap::new())),
            next_stream: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            usage: crate::usage::SharedLedger::default(),
        }
    }

    /// The usage reports of the data planes (connected or gone).
    pub fn usage(&self) -> &crate::usage::SharedLedger {
        &self.usage
    }

    /// Records a usage report of the data plane of `reg`.
    pub fn report_usage(&self, reg: &Registration, report: switchboard_proto::UsageReport) {
        self.usage.record(&reg.id, report);
    }

    /// Receives the current view and every change.
    pub fn subscribe(&self) -> watch::Receiver<FleetView> {
        self.view.subscribe()
    }

    /// The current view.
    pub fn view(&self) -> FleetView {
        self.view.borrow().clone()
    }

    /// Number of connected data planes.
    pub fn len(&self) -> usize {
        self.view.borrow().dataplanes.len()
    }

    /// Whether no data plane is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a data plane that said hello, serving `serving_version`
    /// (empty: none). Replaces any earlier stream with the same id.
    pub fn connect(&self, id: &str, serving_version: &str) -> Registration {
        let stream = self
            .next_stream
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut owners) = self.owners.lock() {
            owners.insert(id.to_string(), stream);
        }
        let acked = (!serving_version.is_empty()).then(|| serving_version.to_string());
        self.view.send_modify(|v| {
            v.dataplanes.insert(
                id.to_string(),
                DataPlaneState {
                    acked_version: acked,
                    nack: None,
                },
            );
        });
        Registration {
            id: id.to_string(),
            stream,
        }
    }

    fn owns(&self, reg: &Registration) -> bool {
        self.owners
            .lock()
            .map(|o| o.get(&reg.id) == Some(&reg.stream))
            .unwrap_or(false)
    }

    /// Records an ACK of `version`; clears the last NACK.
    pub fn ack(&self, reg: &Registration, version: &str) {
        if !self.owns(reg) {
            return;
        }
        self.view.send_if_modified(|v| {
            let Some(state) = v.dataplanes.get_mut(&reg.id) else {
                return false;
            };
            let next = DataPlaneState {
                acked_version: Some(version.to_string()),
                nack: None,
            };
            let modified = *state != next;
            *state = next;
            modified
        });
    }

    /// Records a NACK of `version`; the acknowledged version stays.
    pub fn nack(&self, reg: &Registration, version: &str, errors: Vec<ResourceError>) {
        if !self.owns(reg) {
            return;
        }
        self.view.send_if_modified(|v| {
            let Some(state) = v.dataplanes.get_mut(&reg.id) else {
                return false;
            };
            let nack = Some(NackInfo {
                version: version.to_string(),
                errors,
            });
            let modified = state.nack != nack;
            state.nack = nack;
            modified
        });
    }

    /// Removes the data plane, unless a newer stream took its id over.
    pub fn disconnect(&self, reg: Registration) {
        let owned = match self.owners.lock() {
            Ok(mut owners) => {
                let owned = owners.get(&reg.id) == Some(&reg.stream);
                if owned {
                    owners.remove(&reg.id);
                }
                owned
            }
            Err(_) => false,
        };
        if owned {
            self.usage.departed(&reg.id);
            self.view.send_modify(|v| {
                v.dataplanes.remove(&reg.id);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(resource: &str) -> ResourceError {
        ResourceError {
            resource: resource.into(),
            message: "bad".into(),
        }
    }

    #[test]
    fn hello_ack_nack_disconnect() {
        let fleet = Fleet::new();
        let rx = fleet.subscribe();
        let a = fleet.connect("a", "");
        let b = fleet.connect("b", "v0");
        assert_eq!(fleet.len(), 2);
        assert_eq!(rx.borrow().dataplanes["a"].acked_version, None);
        assert_eq!(
            rx.borrow().dataplanes["b"].acked_version.as_deref(),
            Some("v0")
        );

        fleet.ack(&a, "v1");
        fleet.nack(&b, "v1", vec![err("AIBackend/default/x")]);
        let view = fleet.view();
        assert_eq!(view.dataplanes["a"].acked_version.as_deref(), Some("v1"));
        let b_state = &view.dataplanes["b"];
        assert_eq!(
            b_state.acked_version.as_deref(),
            Some("v0"),
            "a NACK keeps the last good version"
        );
        assert_eq!(b_state.nack.as_ref().unwrap().version, "v1");
        assert_eq!(
            b_state.nack.as_ref().unwrap().errors,
            vec![err("AIBackend/default/x")]
        );

        fleet.ack(&b, "v2");
        assert_eq!(
            fleet.view().dataplanes["b"].nack,
            None,
            "an ACK clears the NACK"
        );

        fleet.disconnect(a);
        assert_eq!(
            fleet.view().dataplanes.keys().collect::<Vec<_>>(),
            vec!["b"]
        );
    }

    #[test]
    fn a_reconnect_owns_the_id() {
        let fleet = Fleet::new();
        let old = fleet.connect("a", "");
        let new = fleet.connect("a", "v1");
        fleet.ack(&old, "stale");
        assert_eq!(
            fleet.view().dataplanes["a"].acked_version.as_deref(),
            Some("v1")
        );
        fleet.disconnect(old);
        assert_eq!(
            fleet.len(),
            1,
            "the old stream's end does not remove the new one"
        );
        fleet.disconnect(new);
        assert!(fleet.is_empty());
    }

    #[test]
    fn unchanged_ack_does_not_notify() {
        let fleet = Fleet::new();
        let a = fleet.connect("a", "");
        fleet.ack(&a, "v1");
        let mut rx = fleet.subscribe();
        rx.mark_unchanged();
        fleet.ack(&a, "v1");
        assert!(!rx.has_changed().unwrap());
        fleet.ack(&a, "v2");
        assert!(rx.has_changed().unwrap());
    }

    fn report(instance: &str, requests: u64) -> switchboard_proto::UsageReport {
        switchboard_proto::UsageReport {
            instance: instance.into(),
            sequence: 1,
            teams: vec![switchboard_proto::TeamUsage {
                team: "ns/t".into(),
                requests,
                minute_end_unix_ms: u64::MAX,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn usage_reports_outlive_their_stream_and_a_reconnect_keeps_them_live() {
        let fleet = Fleet::new();
        let old = fleet.connect("a", "");
        fleet.report_usage(&old, report("i1", 3));
        let new = fleet.connect("a", "");
        // The old stream ends after the new one took over: the report stays live.
        fleet.disconnect(old);
        let records = fleet.usage().records(0);
        assert_eq!(records.len(), 1);
        assert!(records[0].live);
        // The data plane leaves: its counts still count, as departed.
        fleet.disconnect(new);
        let records = fleet.usage().records(0);
        assert!(!records[0].live);
        assert_eq!(records[0].teams[0].requests, 3);
    }
}
