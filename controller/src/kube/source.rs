//! The Kubernetes source: watches AIBackends, AIRoutes and AITeams (in every
//! namespace, or in each configured one) and the Secrets they reference,
//! keeps an [`Index`], and publishes its inventory on every change the
//! renderer would see, debounced.
//!
//! AIBackends, AIRoutes and AITeams are watched untyped and decoded one by one
//! ([`super::index::decode`]): an object that does not decode never stops
//! the watch of its kind.
//!
//! Secrets: one watch per wanted Secret (`metadata.name=<name>` field
//! selector in its namespace), started and stopped as references come and
//! go. Only referenced Secrets are ever read into memory, at the cost of one
//! watch per referenced Secret (cheap for the tens a gateway references).
//!
//! The first publication waits until every scope has been listed and every
//! referenced Secret looked up (so a route is never reported
//! `BackendNotFound` or `SecretNotFound` because of the order of the
//! lists); later, only the objects that need a newly referenced Secret wait
//! for it, at most [`SECRET_WAIT`] from when the reference appeared.
//!
//! Every watch retries failures with [`WatchBackoff`] (250 ms doubling up to
//! [`MAX_WATCH_BACKOFF`], jittered), so watches resume within about two
//! seconds after a `410 Gone` or once the API server is back.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use ::kube::api::{ApiResource, DynamicObject};
use ::kube::runtime::WatchStreamExt as _;
use ::kube::runtime::utils::Backoff;
use ::kube::runtime::watcher::{self, Event};
use ::kube::{Api, Client, Resource};
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use serde::de::DeserializeOwned;
use switchboard_api::{AIBackend, AIRoute, AITeam, Inventory, ObjectKind};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

pub use super::index::SECRET_WAIT;
use super::index::{Index, Scope, SecretKey, WATCHED_KINDS, secret_data};

/// Changes closer together than this are published as one inventory.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// Longest wait before a failed watch is retried.
pub const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(2);
/// How often the wait for the first publication is logged.
const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Longest error text logged for a failed watch.
const MAX_ERROR_LOG: usize = 500;

/// The source stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A watch task ended, which it never does on its own.
    #[error("the {0} watch ended unexpectedly")]
    WatchEnded(&'static str),
}

impl Error {
    /// A low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::WatchEnded(_) => "watch_ended",
        }
    }
}

/// The retry delays of a failed watch: 250 ms, doubling up to
/// [`MAX_WATCH_BACKOFF`], each drawn from `[d/2, d]`; back to the start
/// after any success.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    failures: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let cap = Duration::from_millis(250)
            .saturating_mul(1 << self.failures.min(8))
            .min(MAX_WATCH_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        let half = cap / 2;
        Some(half + half.mul_f64(fastrand::f64()))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// One thing a watch task saw.
enum Update {
    Object(ObjectKind, Scope, Box<Event<DynamicObject>>),
    Secret(SecretKey, Option<BTreeMap<String, Vec<u8>>>),
}

/// Watches `namespaces` (all of them when empty) and sends the inventory
/// into `tx` once everything is synced and after every change. Returns
/// `Ok(())` when every receiver of `tx` is gone.
pub async fn run(
    client: Client,
    namespaces: Vec<String>,
    tx: watch::Sender<Arc<Inventory>>,
) -> Result<(), Error> {
    let scopes: Vec<Scope> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let (updates, mut rx) = mpsc::channel::<Update>(1024);
    let mut watches = JoinSet::new();
    for scope in &scopes {
        for kind in WATCHED_KINDS {
            let ar = match kind {
                ObjectKind::Backend => ApiResource::erase::<AIBackend>(&()),
                ObjectKind::Team => ApiResource::erase::<AITeam>(&()),
                _ => ApiResource::erase::<AIRoute>(&()),
            };
            let api: Api<DynamicObject> = match scope {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            let s = scope.clone();
            watches.spawn(forward(
                api,
                kind.name(),
                watcher::Config::default(),
                updates.clone(),
                move |e| Some(Update::Object(kind, s.clone(), Box::new(e))),
            ));
        }
    }
    let mut secret_watches: BTreeMap<SecretKey, AbortHandle> = BTreeMap::new();
    let mut index = Index::default();
    // The first publication is due as soon as everything is synced, even if empty.
    let mut changed_at = Some(Instant::now());
    let mut next_waiting_log = Instant::now() + WAITING_LOG_INTERVAL;
    loop {
        let flush_at = if index.published_once() {
            let debounced = changed_at.map(|t| t + DEBOUNCE);
            // A held object is published (with its Secret missing) once its wait runs out.
            match (debounced, index.next_wait_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        } else if index.ready_for_first_publish(&scopes) {
            changed_at
        } else {
            None
        };
        let log_at = (!index.published_once()).then_some(next_waiting_log);
        tokio::select! {
            update = rx.recv() => {
                let Some(update) = update else { return Err(Error::WatchEnded("update")) };
                let changed = match update {
                    Update::Object(kind, scope, e) => index.event(kind, &scope, *e),
                    Update::Secret(key, data) => index.secret(&key, data),
                };
                if changed {
                    let now = Instant::now();
                    changed_at.get_or_insert(now);
                    index.note_wanted(now);
                    sync_secret_watches(&client, &mut index, &mut secret_watches, &updates);
                }
            }
            () = sleep_until(flush_at) => {
                changed_at = None;
                let now = Instant::now();
                let inventory = index.publishable(now);
                tracing::debug!(objects = inventory.len(), "inventory changed");
                index.mark_published(inventory.clone(), now);
                // Secrets only the held objects' old versions need stay watched.
                sync_secret_watches(&client, &mut index, &mut secret_watches, &updates);
                tx.send_replace(Arc::new(inventory));
            }
            () = sleep_until(log_at) => {
                next_waiting_log = Instant::now() + WAITING_LOG_INTERVAL;
                let unseen: Vec<String> = index
                    .unseen_secrets()
                    .iter()
                    .map(|(ns, n)| format!("{ns}/{n}"))
                    .collect();
                tracing::info!(
                    listed = index.is_listed(&scopes),
                    secrets = ?unseen,
                    "waiting for the first complete list of AIBackends, AIRoutes, AITeams and the Secrets they reference"
                );
            }
            ended = watches.join_next() => {
                tracing::error!(?ended, "a watch task ended");
                return Err(Error::WatchEnded("AIBackend/AIRoute/AITeam"));
            }
            () = tx.closed() => {
                for handle in secret_watches.values() {
                    handle.abort();
                }
                return Ok(());
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Starts a watch for every newly wanted Secret and stops the watches (and
/// forgets the data) of Secrets no longer wanted.
fn sync_secret_watches(
    client: &Client,
    index: &mut Index,
    watches: &mut BTreeMap<SecretKey, AbortHandle>,
    updates: &mpsc::Sender<Update>,
) {
    let wanted = index.wanted_secrets();
    watches.retain(|key, handle| {
        let keep = wanted.contains(key);
        if !keep {
            handle.abort();
            index.forget_secret(key);
        }
        keep
    });
    for key in wanted {
        if watches.contains_key(&key) {
            continue;
        }
        let (ns, name) = key.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let mut found = false;
        let k = key.clone();
        let task = tokio::spawn(forward(
            api,
            "Secret",
            config,
            updates.clone(),
            move |e| match e {
                Event::Init => {
                    found = false;
                    None
                }
                Event::InitApply(s) | Event::Apply(s) => {
                    found = true;
                    Some(Update::Secret(k.clone(), Some(secret_data(&s))))
                }
                Event::Delete(_) => Some(Update::Secret(k.clone(), None)),
                Event::InitDone => (!found).then(|| Update::Secret(k.clone(), None)),
            },
        ));
        watches.insert(key, task.abort_handle());
    }
}

/// Forwards a watch's events (mapped by `wrap`; `None` drops one) until the
/// receiver is gone. Errors are logged (shortened: never a whole list body)
/// and retried with [`WatchBackoff`].
async fn forward<K>(
    api: Api<K>,
    kind: &'static str,
    config: watcher::Config,
    tx: mpsc::Sender<Update>,
    mut wrap: impl FnMut(Event<K>) -> Option<Update> + Send,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut stream = pin!(watcher::watcher(api, config).backoff(WatchBackoff::default()));
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if let Some(update) = wrap(event)
                    && tx.send(update).await.is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let text = crate::status::events::truncate(&e.to_string(), MAX_ERROR_LOG);
                tracing::warn!(error = %text, kind, "watch failed; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests;
