//! [`StatusWriter`]: applies computed statuses to the cluster with
//! server-side apply (field manager [`FIELD_MANAGER`]), only when they
//! changed (compared without timestamps), and records an Event for every
//! condition transition that matters.
//!
//! Loop safety: a status write changes neither `metadata.generation` nor
//! labels or annotations, so the source ignores it (no new inventory is
//! pushed); and a pass that computes what was last written writes nothing.
//! Only the Lease holder calls [`StatusWriter::sync`] (see [`run`]).
//! On gaining leadership the writer lists the live objects and compares
//! with their statuses as they are now ([`StatusWriter::start_leading`]),
//! so it neither rewrites what the previous leader wrote nor misses what
//! changed while it was following.
//!
//! Events: `Warning` for the reasons that report a problem, `Normal`
//! otherwise; a transition into `Pending` (routine: a new generation on its
//! way to the data planes) records no Event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use ::kube::runtime::events::Reporter;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchboard_api::conditions::{reason, status};
use switchboard_api::v1alpha1::{API_VERSION, ResourceStatus};
use switchboard_api::{AIBackend, AIRoute, AITeam, ObjectKey, ObjectKind};
use tokio::sync::watch;

use super::compute::{compute_all, kind_name, same_ignoring_time};
use super::events::{EventRecorder, EventSpec};
use super::history::VersionHistory;
use super::inputs::StatusInputs;
use crate::fleet::FleetView;
use crate::metrics::{Metrics, StatusWriteLabels};
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
    /// Listing the live objects failed.
    #[error("listing {resource}: {source}")]
    List {
        /// The resource listed.
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
            Error::List { .. } => "status_list",
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

/// The last status known to be in the cluster for one object (by uid, so a
/// re-created object with the same name starts afresh).
#[derive(Clone, Debug)]
struct Written {
    uid: Option<String>,
    status: Option<ResourceStatus>,
}

/// The live uid and status of every object, from [`list_live`].
pub type LiveStatuses = BTreeMap<ObjectKey, (Option<String>, Option<ResourceStatus>)>;

/// Computes and applies statuses; remembers what it wrote.
pub struct StatusWriter {
    client: Client,
    recorder: EventRecorder,
    history: VersionHistory,
    written: BTreeMap<ObjectKey, Written>,
    metrics: Option<Arc<Metrics>>,
}

impl StatusWriter {
    /// A writer using `client`, recording Events as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        let recorder = EventRecorder::new(client.clone(), reporter);
        Self {
            client,
            recorder,
            history: VersionHistory::default(),
            written: BTreeMap::new(),
            metrics: None,
        }
    }

    /// Counts writes and Events in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Records the version rendered from `inputs`, if any (call for every
    /// pipeline output, leader or not).
    pub fn record_version(&mut self, inputs: &StatusInputs) {
        if let Some(v) = &inputs.rendered_version {
            self.history.record(v, inputs.served());
        }
    }

    /// Starts from the statuses in the cluster now (call when leadership is
    /// gained, with [`list_live`]).
    pub fn start_leading(&mut self, live: LiveStatuses) {
        self.written = live
            .into_iter()
            .map(|(k, (uid, status))| (k, Written { uid, status }))
            .collect();
    }

    /// Forgets what was written, so the next pass compares against the
    /// statuses seen in the inventory.
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// One pass: computes every object's status and applies those that
    /// changed. Every object is tried; the first error is returned after.
    pub async fn sync(&mut self, inputs: &StatusInputs, now: Time) -> Result<SyncReport, Error> {
        self.record_version(inputs);
        let known: BTreeMap<ObjectKey, (Option<String>, Option<ResourceStatus>)> = inputs
            .outcomes
            .keys()
            .filter_map(|k| {
                let (meta, status) = inputs.object(k)?;
                Some((k.clone(), (meta.uid.clone(), status.cloned())))
            })
            .collect();
        // Objects gone from the inventory are forgotten.
        self.written.retain(|key, _| known.contains_key(key));
        let previous = |key: &ObjectKey| -> Option<&ResourceStatus> {
            let (uid, seen) = known.get(key)?;
            match self.written.get(key) {
                Some(w) if &w.uid == uid => w.status.as_ref(),
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
            if old
                .as_ref()
                .is_some_and(|o| same_ignoring_time(key.0, o, &status))
            {
                report.unchanged += 1;
                continue;
            }
            let uid = known.get(&key).and_then(|(uid, _)| uid.clone());
            match self.apply(&key, &status).await {
                Ok(()) => {
                    report.written += 1;
                    if let Some(m) = &self.metrics {
                        m.status_writes
                            .get_or_create(&StatusWriteLabels {
                                kind: kind_name(key.0),
                            })
                            .inc();
                    }
                    report.events += self
                        .publish_transitions(&key, uid.clone(), old.as_ref(), &status)
                        .await;
                    self.written.insert(
                        key,
                        Written {
                            uid,
                            status: Some(status),
                        },
                    );
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
        // Untyped, so an object that does not decode gets its status too.
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &api_resource(key.0));
        match api.patch_status(name, &params, &patch).await {
            Ok(_) => Ok(()),
            // Deleted since the inventory was taken: nothing to do.
            Err(::kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(Error::Write {
                resource: format!("{kind} {ns}/{name}"),
                source,
            }),
        }
    }

    /// Records one Event per condition whose status or reason changed.
    async fn publish_transitions(
        &mut self,
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
            let Some(event) = event_for(c) else { continue };
            match self.recorder.publish(&event, &reference).await {
                Ok(()) => {
                    published += 1;
                    if let Some(m) = &self.metrics {
                        m.events.inc();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "recording an event failed"),
            }
        }
        published
    }
}

/// The Event for a condition that just changed (`None`: not worth one).
pub fn event_for(
    c: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition,
) -> Option<EventSpec> {
    if c.reason == reason::PENDING {
        return None;
    }
    let warning = c.status == status::FALSE
        && matches!(
            c.reason.as_str(),
            reason::INVALID
                | reason::NOT_ALLOWED
                | reason::CONFLICTED
                | reason::BACKEND_NOT_FOUND
                | reason::SECRET_NOT_FOUND
                | reason::REJECTED
                | reason::SERVING_LAST_ACCEPTED
                | reason::UNAVAILABLE
                | reason::TEAM_NOT_FOUND
                | reason::INVALID_TEAM_REF
        );
    Some(EventSpec {
        warning,
        reason: c.reason.clone(),
        action: c.type_.clone(),
        note: format!("{} is {}: {}", c.type_, c.status, c.message),
    })
}

/// The API resource of `kind` (`aibackends`, `airoutes` or `aiteams`).
pub fn api_resource(kind: ObjectKind) -> ApiResource {
    match kind {
        ObjectKind::Route => ApiResource::erase::<AIRoute>(&()),
        ObjectKind::Team => ApiResource::erase::<AITeam>(&()),
        _ => ApiResource::erase::<AIBackend>(&()),
    }
}

/// The uid and status of every AIBackend, AIRoute and AITeam in `namespaces` (all
/// when empty), as the API server has them now.
pub async fn list_live(client: &Client, namespaces: &[String]) -> Result<LiveStatuses, Error> {
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    let mut out = LiveStatuses::new();
    for kind in [ObjectKind::Backend, ObjectKind::Route, ObjectKind::Team] {
        let ar = api_resource(kind);
        for scope in &scopes {
            let api: Api<DynamicObject> = match scope {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|source| Error::List {
                    resource: ar.plural.clone(),
                    source,
                })?;
            for o in list.items {
                let status = o
                    .data
                    .get("status")
                    .and_then(|s| serde_json::from_value(s.clone()).ok());
                let key = (
                    kind,
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap_or_default(),
                );
                out.insert(key, (o.metadata.uid.clone(), status));
            }
        }
    }
    Ok(out)
}

/// Longest wait between two tries of a failed status pass.
pub const MAX_RETRY: Duration = Duration::from_secs(2);

/// Runs a status pass whenever the pipeline's output or the fleet changes,
/// while `leader` is true; records rendered versions either way. On gaining
/// leadership it first lists the live objects of `namespaces`. A failed
/// pass is retried with backoff (at most [`MAX_RETRY`]). Returns when the
/// pipeline or the Lease task goes away.
pub async fn run(
    mut writer: StatusWriter,
    namespaces: Vec<String>,
    mut rendered: watch::Receiver<Arc<Rendered>>,
    mut fleet: watch::Receiver<FleetView>,
    mut leader: watch::Receiver<bool>,
) {
    const FIRST_RETRY: Duration = Duration::from_millis(250);
    let mut retry_in = FIRST_RETRY;
    let mut failed = false;
    // Whether the live statuses must be read before the next pass.
    let mut read_live = true;
    loop {
        let inputs =
            StatusInputs::from_parts(&rendered.borrow_and_update(), &fleet.borrow_and_update());
        let leading = *leader.borrow_and_update();
        if leading && read_live {
            match list_live(&writer.client, &namespaces).await {
                Ok(live) => {
                    writer.start_leading(live);
                    read_live = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the live statuses failed");
                    failed = true;
                }
            }
        }
        if leading && !read_live && inputs.rendered_version.is_some() {
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
        } else if !leading {
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
                read_live = true;
            }
            () = retry => retry_in = (retry_in * 2).min(MAX_RETRY),
        }
    }
}

#[cfg(test)]
mod tests;
