//! [`StatusWriter`]: applies computed statuses to the cluster with
//! server-side apply (field manager [`FIELD_MANAGER`]), only when they
//! changed (compared without timestamps), and records an Event for every
//! condition transition.
//!
//! Loop safety: a status write changes neither `metadata.generation` nor
//! labels or annotations, so the source ignores it (no new inventory is
//! pushed); and a pass that computes what was last written writes nothing.
//! Only the Lease holder calls [`StatusWriter::sync`] (see [`run`]).
//! On gaining leadership the writer forgets what it wrote and compares with
//! the statuses in the inventory (which the source keeps fresh without
//! pushing), so a status written by a previous leader is not rewritten.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, Patch, PatchParams};
use ::kube::runtime::events::{Event, EventType, Recorder, Reporter};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchboard_api::conditions::status;
use switchboard_api::v1alpha1::{API_VERSION, ResourceStatus};
use switchboard_api::{AIBackend, AIRoute, ObjectKind};
use tokio::sync::watch;

use super::compute::{compute_all, kind_name, same_ignoring_time};
use super::history::{ObjectKey, VersionHistory};
use super::inputs::StatusInputs;
use crate::fleet::FleetView;
use crate::pipeline::Rendered;

/// The server-side apply field manager of every status write.
pub const FIELD_MANAGER: &str = "switchboard-controller";

/// A status write failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not be reached.
    #[error("writing status of {resource}: {source}")]
    Write {
        /// `Kind namespace/name`.
        resource: String,
        /// The client error.
        #[source]
        source: ::kube::Error,
    },
}

impl Error {
    /// A low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Write { .. } => "status_write",
        }
    }
}

/// What one [`StatusWriter::sync`] pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Objects whose status was applied.
    pub written: usize,
    /// Objects whose status was already up to date.
    pub unchanged: usize,
    /// Events recorded.
    pub events: usize,
}

/// The last status this writer applied to one object (by uid, so a
/// re-created object with the same name starts afresh).
#[derive(Clone, Debug)]
struct Written {
    uid: Option<String>,
    status: ResourceStatus,
}

/// Computes and applies statuses; remembers what it wrote.
pub struct StatusWriter {
    client: Client,
    recorder: Recorder,
    history: VersionHistory,
    written: BTreeMap<ObjectKey, Written>,
}

impl StatusWriter {
    /// A writer using `client`, recording Events as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            recorder,
            history: VersionHistory::default(),
            written: BTreeMap::new(),
        }
    }

    /// Records the version rendered from `inputs`, if any (call for every
    /// pipeline output, leader or not).
    pub fn record_version(&mut self, inputs: &StatusInputs) {
        if let Some(v) = &inputs.rendered_version {
            self.history.record(v, inputs.served_generations());
        }
    }

    /// Forgets what was written, so the next pass compares against the
    /// statuses seen in the inventory (call when leadership is gained).
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// One pass: computes every object's status and applies those that
    /// changed. Every object is tried; the first error is returned after.
    pub async fn sync(&mut self, inputs: &StatusInputs, now: Time) -> Result<SyncReport, Error> {
        self.record_version(inputs);
        let inv = &inputs.inventory;
        // Objects gone from the inventory are forgotten.
        self.written.retain(|key, _| match key.0 {
            ObjectKind::Backend => inv.backend(&key.1, &key.2).is_some(),
            ObjectKind::Route => inv.route(&key.1, &key.2).is_some(),
            ObjectKind::Secret => false,
        });
        let known: BTreeMap<ObjectKey, (Option<String>, Option<ResourceStatus>)> = inv
            .backends()
            .map(|(ns, n, b)| {
                (
                    (ObjectKind::Backend, ns.to_string(), n.to_string()),
                    (b.metadata.uid.clone(), b.status.clone()),
                )
            })
            .chain(inv.routes().map(|(ns, n, r)| {
                (
                    (ObjectKind::Route, ns.to_string(), n.to_string()),
                    (r.metadata.uid.clone(), r.status.clone()),
                )
            }))
            .collect();
        let previous = |key: &ObjectKey| -> Option<&ResourceStatus> {
            let (uid, seen) = known.get(key)?;
            match self.written.get(key) {
                Some(w) if &w.uid == uid => Some(&w.status),
                _ => seen.as_ref(),
            }
        };
        let desired = compute_all(inputs, &self.history, previous, &now);
        let before: BTreeMap<ObjectKey, Option<ResourceStatus>> = desired
            .keys()
            .map(|k| (k.clone(), previous(k).cloned()))
            .collect();

        let mut report = SyncReport::default();
        let mut first_error = None;
        for (key, status) in desired {
            let old = before.get(&key).cloned().flatten();
            if old.as_ref().is_some_and(|o| same_ignoring_time(o, &status)) {
                report.unchanged += 1;
                continue;
            }
            let uid = known.get(&key).and_then(|(uid, _)| uid.clone());
            match self.apply(&key, &status).await {
                Ok(()) => {
                    report.written += 1;
                    report.events += self
                        .publish_transitions(&key, uid.clone(), old.as_ref(), &status)
                        .await;
                    self.written.insert(key, Written { uid, status });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "status write failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn apply(&self, key: &ObjectKey, status: &ResourceStatus) -> Result<(), Error> {
        let (kind, ns, name) = key;
        let kind = kind_name(*kind);
        let patch = Patch::Apply(serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": kind,
            "status": status,
        }));
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let result = match key.0 {
            ObjectKind::Route => Api::<AIRoute>::namespaced(self.client.clone(), ns)
                .patch_status(name, &params, &patch)
                .await
                .map(drop),
            _ => Api::<AIBackend>::namespaced(self.client.clone(), ns)
                .patch_status(name, &params, &patch)
                .await
                .map(drop),
        };
        match result {
            // Deleted since the inventory was taken: nothing to do.
            Err(::kube::Error::Api(e)) if e.code == 404 => Ok(()),
            other => other.map_err(|source| Error::Write {
                resource: format!("{kind} {ns}/{name}"),
                source,
            }),
        }
    }

    /// Records one Event per condition whose status or reason changed.
    async fn publish_transitions(
        &self,
        key: &ObjectKey,
        uid: Option<String>,
        old: Option<&ResourceStatus>,
        new: &ResourceStatus,
    ) -> usize {
        let (kind, ns, name) = key;
        let reference = ObjectReference {
            api_version: Some(API_VERSION.to_string()),
            kind: Some(kind_name(*kind).to_string()),
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid,
            ..Default::default()
        };
        let mut published = 0;
        for c in &new.conditions {
            let before = old.and_then(|o| o.conditions.iter().find(|b| b.type_ == c.type_));
            if before.is_some_and(|b| b.status == c.status && b.reason == c.reason) {
                continue;
            }
            let event = Event {
                type_: if c.status == status::FALSE {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: c.reason.clone(),
                note: Some(truncate(
                    &format!("{} is {}: {}", c.type_, c.status, c.message),
                    1000,
                )),
                action: c.type_.clone(),
                secondary: None,
            };
            match self.recorder.publish(&event, &reference).await {
                Ok(()) => published += 1,
                Err(e) => tracing::warn!(error = %e, "recording an event failed"),
            }
        }
        published
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Runs a status pass whenever the pipeline's output or the fleet changes,
/// while `leader` is true; records rendered versions either way. A failed
/// pass is retried with backoff. Returns when the pipeline or the Lease
/// task goes away.
pub async fn run(
    mut writer: StatusWriter,
    mut rendered: watch::Receiver<Arc<Rendered>>,
    mut fleet: watch::Receiver<FleetView>,
    mut leader: watch::Receiver<bool>,
) {
    const FIRST_RETRY: Duration = Duration::from_millis(500);
    let mut retry_in = FIRST_RETRY;
    let mut failed = false;
    loop {
        let inputs =
            StatusInputs::from_parts(&rendered.borrow_and_update(), &fleet.borrow_and_update());
        if *leader.borrow_and_update() {
            match writer.sync(&inputs, Time(Timestamp::now())).await {
                Ok(r) => {
                    if r.written > 0 {
                        tracing::info!(written = r.written, events = r.events, "status updated");
                    }
                    failed = false;
                    retry_in = FIRST_RETRY;
                }
                Err(_) => failed = true,
            }
        } else {
            writer.record_version(&inputs);
        }
        let retry = async {
            if failed {
                tokio::time::sleep(retry_in).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            changed = rendered.changed() => if changed.is_err() { return },
            changed = fleet.changed() => if changed.is_err() { return },
            changed = leader.changed() => {
                if changed.is_err() { return }
                if *leader.borrow() { writer.forget() }
            }
            () = retry => retry_in = (retry_in * 2).min(Duration::from_secs(30)),
        }
    }
}

#[cfg(test)]
mod tests;
