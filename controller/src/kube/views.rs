//! Data-plane views shared between replicas, so `Programmed` reflects every
//! data plane whichever replica it is connected to.
//!
//! Every replica publishes the data planes connected to it, and the version
//! each runs (or its last NACK), in a `coordination.k8s.io/v1` Lease of its
//! own in the Lease namespace ([`publish`]): named
//! `<lease-name>-view-<identity>`, labelled [`VIEW_LABEL`]`=<lease-name>`,
//! the view as JSON in the annotation [`VIEW_ANNOTATION`], renewed every
//! third of `--lease-duration` and on every change. [`merge`] watches those
//! Leases and merges its own view with every other replica's unexpired one
//! (renewed less than `leaseDurationSeconds` ago): a replica that died stops
//! counting once its view expires. A data plane listed by several replicas
//! (it reconnected) counts once: this replica's entry wins, then the most
//! recently renewed. On a graceful shutdown a replica deletes its view; the
//! leader deletes views expired for longer than [`GC_AFTER_DURATIONS`] view
//! durations (a replica killed without a word).
//!
//! A view also carries the usage reports of this replica's data planes
//! ([`USAGE_ANNOTATION`], see [`crate::usage`]), refreshed at every renewal
//! (usage changes alone do not trigger a write), so the leader can sum the
//! usage of every data plane.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use ::kube::api::{Api, DeleteParams, PostParams};
use ::kube::runtime::WatchStreamExt as _;
use ::kube::runtime::watcher::{self, Event};
use ::kube::{Client, ResourceExt as _};
use futures_util::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use switchboard_proto::ResourceError;
use tokio::sync::watch;

use super::source::WatchBackoff;
use crate::fleet::{DataPlaneState, FleetView, NackInfo};
use crate::usage::{SharedLedger, UsageRecord};

/// Label on every view Lease; its value is the leader Lease's name.
pub const VIEW_LABEL: &str = "switchboard.dev/dataplane-view";
/// Annotation holding a view as JSON.
pub const VIEW_ANNOTATION: &str = "switchboard.dev/dataplanes";
/// Annotation holding the replica's usage records as JSON.
pub const USAGE_ANNOTATION: &str = "switchboard.dev/usage";
/// Largest usage annotation written: beyond it the departed data planes'
/// records are left out first (annotations share a 256 KiB limit).
const MAX_USAGE_BYTES: usize = 128 * 1024;
/// Views expired for longer than this many view durations are deleted by
/// the leader (60 s with the default `--lease-duration` of 15 s).
pub const GC_AFTER_DURATIONS: u32 = 4;
/// Changes of the own view closer than this are written once.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Longest NACK message kept in a view.
const MAX_MESSAGE: usize = 300;
/// Most NACK errors kept per data plane in a view.
const MAX_ERRORS: usize = 20;

/// Where views live and who this replica is.
#[derive(Clone, Debug)]
pub struct ViewConfig {
    /// The Lease namespace.
    pub namespace: String,
    /// The leader Lease's name: views of one controller deployment share it.
    pub group: String,
    /// This replica's identity.
    pub identity: String,
    /// How long a view stays valid after a renewal.
    pub duration: Duration,
}

impl ViewConfig {
    /// The name of this replica's view Lease.
    pub fn lease_name(&self) -> String {
        view_name(&self.group, &self.identity)
    }
}

/// `<group>-view-<identity>`, made a valid object name (lower case
/// letters, digits, `-` and `.`, at most 253 characters).
pub fn view_name(group: &str, identity: &str) -> String {
    let raw = format!("{group}-view-{identity}").to_ascii_lowercase();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(253);
    name.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// One data plane in a view, as stored in the annotation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nack: Option<Nack>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Nack {
    version: String,
    #[serde(default)]
    errors: Vec<(String, String)>,
}

/// The annotation text of `view`.
pub fn encode(view: &FleetView) -> String {
    let entries: BTreeMap<&String, Entry> = view
        .dataplanes
        .iter()
        .map(|(id, dp)| {
            let nack = dp.nack.as_ref().map(|n| Nack {
                version: n.version.clone(),
                errors: n
                    .errors
                    .iter()
                    .take(MAX_ERRORS)
                    .map(|e| {
                        (
                            e.resource.clone(),
                            crate::status::events::truncate(&e.message, MAX_MESSAGE),
                        )
                    })
                    .collect(),
            });
            (
                id,
                Entry {
                    version: dp.acked_version.clone(),
                    nack,
                },
            )
        })
        .collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| "{}".to_string())
}

/// The view in an annotation text (empty when it does not parse).
pub fn decode(text: &str) -> FleetView {
    let entries: BTreeMap<String, Entry> = serde_json::from_str(text).unwrap_or_default();
    FleetView {
        dataplanes: entries
            .into_iter()
            .map(|(id, e)| {
                let nack = e.nack.map(|n| NackInfo {
                    version: n.version,
                    errors: n
                        .errors
                        .into_iter()
                        .map(|(resource, message)| ResourceError { resource, message })
                        .collect(),
                });
                (
                    id,
                    DataPlaneState {
                        acked_version: e.version,
                        nack,
                    },
                )
            })
            .collect(),
    }
}

/// The usage annotation for `records`, within [`MAX_USAGE_BYTES`]: the
/// records of departed data planes go first, then the largest.
pub fn encode_usage(records: &[UsageRecord]) -> String {
    let mut kept: Vec<&UsageRecord> = records.iter().collect();
    loop {
        let text = serde_json::to_string(&kept).unwrap_or_else(|_| "[]".to_string());
        if text.len() <= MAX_USAGE_BYTES || kept.is_empty() {
            return text;
        }
        let drop = kept
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| (r.live, std::cmp::Reverse(r.teams.len())))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let gone = kept.remove(drop);
        tracing::warn!(node = %gone.node, "usage of a data plane left out of the view: too many teams");
    }
}

/// The usage records of a view Lease (none when absent or unreadable).
pub fn usage_records(lease: &Lease) -> Vec<UsageRecord> {
    lease
        .annotations()
        .get(USAGE_ANNOTATION)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// When `lease` expires (`None`: never renewed).
pub fn expiry(lease: &Lease) -> Option<Timestamp> {
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    renewed.checked_add(SignedDuration::from_secs(seconds)).ok()
}

/// `own` merged with every other replica's unexpired view among `leases`
/// at `now` (see the module docs), and when the next of those expires.
pub fn merged<'a>(
    own: &FleetView,
    identity: &str,
    leases: impl IntoIterator<Item = &'a Lease>,
    now: Timestamp,
) -> (FleetView, Option<Timestamp>) {
    let mut others: Vec<(Timestamp, Timestamp, FleetView)> = leases
        .into_iter()
        .filter(|l| holder(l) != Some(identity))
        .filter_map(|l| {
            let until = expiry(l)?;
            let renewed = l.spec.as_ref()?.renew_time.as_ref()?.0;
            let text = l.annotations().get(VIEW_ANNOTATION)?;
            (until > now).then(|| (renewed, until, decode(text)))
        })
        .collect();
    // Most recently renewed first: its entry wins a duplicate id.
    others.sort_by_key(|o| std::cmp::Reverse(o.0));
    let mut out = own.clone();
    for (_, _, view) in &others {
        for (id, dp) in &view.dataplanes {
            out.dataplanes
                .entry(id.clone())
                .or_insert_with(|| dp.clone());
        }
    }
    let next = others.iter().map(|(_, until, _)| *until).min();
    (out, next)
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

/// The view Lease for `view` and the usage `records` at `now`, replacing
/// `current` (if any).
pub fn view_lease(
    cfg: &ViewConfig,
    view: &FleetView,
    records: &[UsageRecord],
    current: Option<Lease>,
    now: Timestamp,
) -> Lease {
    let mut lease = current.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(cfg.lease_name()),
            ..Default::default()
        },
        spec: None,
    });
    lease
        .labels_mut()
        .insert(VIEW_LABEL.to_string(), cfg.group.clone());
    lease
        .annotations_mut()
        .insert(VIEW_ANNOTATION.to_string(), encode(view));
    lease
        .annotations_mut()
        .insert(USAGE_ANNOTATION.to_string(), encode_usage(records));
    let acquired = lease
        .spec
        .as_ref()
        .and_then(|s| s.acquire_time.clone())
        .unwrap_or(MicroTime(now));
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(cfg.duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: Some(acquired),
        renew_time: Some(MicroTime(now)),
        ..Default::default()
    });
    lease
}

async fn write(
    api: &Api<Lease>,
    cfg: &ViewConfig,
    view: &FleetView,
    usage: &SharedLedger,
) -> Result<(), ::kube::Error> {
    let name = cfg.lease_name();
    let current = api.get_opt(&name).await?;
    let exists = current.is_some();
    let records = usage.records(crate::usage::now_ms());
    let lease = view_lease(cfg, view, &records, current, Timestamp::now());
    if exists {
        api.replace(&name, &PostParams::default(), &lease).await?;
    } else {
        api.create(&PostParams::default(), &lease).await?;
    }
    Ok(())
}

/// Publishes this replica's view (`fleet`, with the `usage` records) on
/// every change of `fleet` and every third of the view duration, until
/// `fleet` closes or `shutdown` turns true: then, after any write in flight
/// has completed (a late update would re-create it), deletes the view.
pub async fn publish(
    client: Client,
    cfg: ViewConfig,
    mut fleet: watch::Receiver<FleetView>,
    usage: SharedLedger,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let renew = (cfg.duration / 3).max(Duration::from_millis(500));
    loop {
        if shutdown_requested(&shutdown) {
            break;
        }
        let view = fleet.borrow_and_update().clone();
        let wait = match write(&api, &cfg, &view, &usage).await {
            Ok(()) => renew,
            Err(e) => {
                tracing::warn!(error = %e, "publishing the data-plane view failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            // Shutdown first: at shutdown the fleet may close at the same time.
            biased;
            () = async { drop(shutdown.wait_for(|s| *s).await) } => break,
            changed = fleet.changed() => {
                // The fleet closes when the gRPC service goes away (at
                // shutdown): the view is withdrawn then too.
                if changed.is_err() { break }
                tokio::time::sleep(DEBOUNCE).await;
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
    withdraw(client, &cfg).await;
}

/// Deletes this replica's view (on a graceful shutdown).
pub async fn withdraw(client: Client, cfg: &ViewConfig) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    match api
        .delete(&cfg.lease_name(), &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(::kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => tracing::warn!(error = %e, "deleting the data-plane view failed"),
    }
}

/// Merges this replica's view (`own`) with the other replicas' views into
/// `out`, forever; while `leader` is true it also deletes views expired for
/// longer than [`GC_AFTER_DURATIONS`] view durations.
pub async fn merge(
    client: Client,
    cfg: ViewConfig,
    mut own: watch::Receiver<FleetView>,
    leader: watch::Receiver<bool>,
    out: watch::Sender<FleetView>,
) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let config = watcher::Config::default().labels(&format!("{VIEW_LABEL}={}", cfg.group));
    let mut stream = pin!(watcher::watcher(api.clone(), config).backoff(WatchBackoff::default()));
    let mut leases: BTreeMap<String, Lease> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, Lease>> = None;
    loop {
        let now = Timestamp::now();
        let (view, next) = merged(
            &own.borrow_and_update(),
            &cfg.identity,
            leases.values(),
            now,
        );
        out.send_if_modified(|v| {
            let changed = *v != view;
            *v = view;
            changed
        });
        if *leader.borrow() {
            collect_garbage(&api, &cfg, &leases, now).await;
        }
        let wake = next
            .and_then(|t| t.duration_since(now).try_into().ok())
            .map(|d: Duration| d + Duration::from_millis(10));
        tokio::select! {
            changed = own.changed() => if changed.is_err() { return },
            item = stream.next() => match item {
                Some(Ok(Event::Apply(l))) => { leases.insert(l.name_any(), l); }
                Some(Ok(Event::Delete(l))) => { leases.remove(&l.name_any()); }
                Some(Ok(Event::Init)) => listing = Some(BTreeMap::new()),
                Some(Ok(Event::InitApply(l))) => {
                    listing.get_or_insert_with(BTreeMap::new).insert(l.name_any(), l);
                }
                Some(Ok(Event::InitDone)) => leases = listing.take().unwrap_or_default(),
                Some(Err(e)) => {
                    let text = crate::status::events::truncate(&e.to_string(), 500);
                    tracing::warn!(error = %text, "watching data-plane views failed; retrying");
                }
                None => return,
            },
            () = sleep_for(wake) => {}
        }
    }
}

async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn collect_garbage(
    api: &Api<Lease>,
    cfg: &ViewConfig,
    leases: &BTreeMap<String, Lease>,
    now: Timestamp,
) {
    let grace =
        SignedDuration::try_from(cfg.duration * GC_AFTER_DURATIONS).unwrap_or(SignedDuration::MAX);
    for (name, lease) in leases {
        let dead = expiry(lease)
            .and_then(|t| t.checked_add(grace).ok())
            .is_some_and(|t| t < now);
        if dead && holder(lease) != Some(cfg.identity.as_str()) {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(view = %name, "deleted an expired data-plane view"),
                Err(::kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(error = %e, view = %name, "deleting an expired data-plane view failed")
                }
            }
        }
    }
}

/// Whether `shutdown` turned true (the guard is not kept across an await).
fn shutdown_requested(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake API server for the view Lease: no view exists at first, a
    /// create is echoed, a delete succeeds. Returns `(method, path)` of every
    /// request once every client is dropped; `created` fires on the create.
    fn fake_lease_api(
        created: tokio::sync::oneshot::Sender<()>,
    ) -> (Client, tokio::task::JoinHandle<Vec<(String, String)>>) {
        use ::kube::client::Body;
        use http::{Request, Response};
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let mut created = Some(created);
            let mut seen = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().to_string();
                let path = request.uri().path().to_string();
                let body = request.into_body().collect_bytes().await.unwrap();
                let (status, reply) = match method.as_str() {
                    "GET" => (
                        404,
                        serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                           "reason": "NotFound", "code": 404, "metadata": {}}),
                    ),
                    "DELETE" => (
                        200,
                        serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Success",
                                           "code": 200, "metadata": {}}),
                    ),
                    _ => {
                        if let Some(c) = created.take() {
                            let _ = c.send(());
                        }
                        (201, serde_json::from_slice(&body).unwrap())
                    }
                };
                send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                        .unwrap(),
                );
                seen.push((method, path));
            }
            seen
        });
        (Client::new(service, "default"), server)
    }

    #[tokio::test]
    async fn a_view_is_withdrawn_when_the_fleet_closes_too() {
        // At shutdown the gRPC service (the fleet's sender) may go away before
        // the publisher sees the shutdown signal: the view is deleted either way.
        let (created_tx, created) = tokio::sync::oneshot::channel();
        let (client, server) = fake_lease_api(created_tx);
        let cfg = ViewConfig {
            namespace: "ns".into(),
            group: "switchboard-controller".into(),
            identity: "a".into(),
            duration: Duration::from_secs(60),
        };
        let (fleet_tx, fleet) = watch::channel(FleetView::default());
        let (_shutdown_tx, shutdown) = watch::channel(false);
        let publisher = tokio::spawn(publish(
            client,
            cfg.clone(),
            fleet,
            SharedLedger::default(),
            shutdown,
        ));
        created.await.unwrap();
        drop(fleet_tx);
        publisher.await.unwrap();
        let seen = server.await.unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.0, "DELETE", "{seen:?}");
        assert!(last.1.ends_with(&cfg.lease_name()), "{seen:?}");
    }

    fn view(entries: &[(&str, Option<&str>)]) -> FleetView {
        FleetView {
            dataplanes: entries
                .iter()
                .map(|(id, v)| {
                    (
                        id.to_string(),
                        DataPlaneState {
                            acked_version: v.map(str::to_string),
                            nack: None,
                        },
                    )
                })
                .collect(),
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn cfg(identity: &str) -> ViewConfig {
        ViewConfig {
            namespace: "sys".into(),
            group: "switchboard-controller".into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn views_round_trip_through_the_annotation() {
        let mut v = view(&[("dp-1", Some("v1")), ("dp-2", None)]);
        v.dataplanes.get_mut("dp-2").unwrap().nack = Some(NackInfo {
            version: "v2".into(),
            errors: vec![ResourceError {
                resource: "AIRoute/ns/r".into(),
                message: "x".repeat(1000),
            }],
        });
        let back = decode(&encode(&v));
        assert_eq!(back.dataplanes["dp-1"], v.dataplanes["dp-1"]);
        let nack = back.dataplanes["dp-2"].nack.as_ref().unwrap();
        assert_eq!(nack.version, "v2");
        assert!(
            nack.errors[0].message.len() <= MAX_MESSAGE + 3,
            "messages are cut"
        );
        assert_eq!(decode("not json"), FleetView::default());
    }

    #[test]
    fn other_replicas_count_until_their_view_expires() {
        let own = view(&[("dp-a", Some("v1"))]);
        let b = view_lease(
            &cfg("b"),
            &view(&[("dp-b", Some("v1")), ("dp-a", Some("old"))]),
            &[],
            None,
            t(0),
        );
        let c = view_lease(&cfg("c"), &view(&[("dp-c", Some("v0"))]), &[], None, t(5));
        let mine = view_lease(&cfg("a"), &view(&[("stale", None)]), &[], None, t(0));
        let (m, next) = merged(&own, "a", [&b, &c, &mine], t(10));
        let ids: Vec<&str> = m.dataplanes.keys().map(String::as_str).collect();
        assert_eq!(ids, ["dp-a", "dp-b", "dp-c"], "its own Lease is ignored");
        assert_eq!(
            m.dataplanes["dp-a"].acked_version.as_deref(),
            Some("v1"),
            "the own entry wins a duplicate"
        );
        assert_eq!(next, Some(t(15)), "b expires first");
        let (m, next) = merged(&own, "a", [&b, &c], t(15));
        assert!(!m.dataplanes.contains_key("dp-b"), "b expired");
        assert_eq!(next, Some(t(20)));
        let (m, next) = merged(&own, "a", [&b, &c], t(20));
        assert_eq!(m, own);
        assert_eq!(next, None);
    }

    #[test]
    fn usage_rides_in_the_view_and_is_bounded() {
        let record = |node: &str, live: bool, teams: usize| UsageRecord {
            node: node.into(),
            instance: format!("{node}-i"),
            sequence: 1,
            live,
            teams: (0..teams)
                .map(|i| crate::usage::TeamRecord {
                    team: format!("ns/team-{i}"),
                    requests: 1,
                    ..Default::default()
                })
                .collect(),
        };
        let records = vec![record("dp-1", true, 2)];
        let l = view_lease(&cfg("a"), &FleetView::default(), &records, None, t(0));
        assert_eq!(usage_records(&l), records);
        // Too much: departed data planes go first.
        let big = vec![record("live", true, 1000), record("gone", false, 1000)];
        let kept: Vec<UsageRecord> = serde_json::from_str(&encode_usage(&big)).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].node, "live");
    }

    #[test]
    fn view_leases_are_named_labelled_and_renewed() {
        assert_eq!(
            view_name("switchboard-controller", "Pod_7"),
            "switchboard-controller-view-pod-7"
        );
        let l = view_lease(&cfg("a"), &FleetView::default(), &[], None, t(0));
        assert_eq!(l.labels()[VIEW_LABEL], "switchboard-controller");
        assert_eq!(expiry(&l), Some(t(15)));
        let renewed = view_lease(&cfg("a"), &FleetView::default(), &[], Some(l), t(4));
        let spec = renewed.spec.as_ref().unwrap();
        assert_eq!(spec.acquire_time, Some(MicroTime(t(0))));
        assert_eq!(expiry(&renewed), Some(t(19)));
    }
}
