//! The Kubernetes source: watches AIBackends and AIRoutes (in every
//! namespace, or in each configured one) and the Secrets they reference,
//! keeps an [`Index`], and pushes its [`Inventory`] on every change that the
//! renderer would see, debounced.
//!
//! Secrets: one watch per referenced Secret (`metadata.name=<name>` field
//! selector in its namespace), started and stopped as references come and
//! go. Only referenced Secrets are ever read into memory, at the cost of one
//! watch per referenced Secret (cheap for the tens a gateway references).
//!
//! The first push waits until every scope has been listed (so a route is
//! never reported `BackendNotFound` because backends were listed later);
//! while a newly referenced Secret is being looked up, pushes wait up to
//! [`SECRET_WAIT`] for it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use ::kube::runtime::WatchStreamExt as _;
use ::kube::runtime::watcher::{self, Event};
use ::kube::{Api, Client, Resource};
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use serde::de::DeserializeOwned;
use switchboard_api::{AIBackend, AIRoute, Inventory};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::index::{Index, Scope, SecretKey, secret_data};

/// Changes closer together than this are pushed as one inventory.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// How long a push waits for newly referenced Secrets to be looked up.
pub const SECRET_WAIT: Duration = Duration::from_secs(5);

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

/// One thing a watch task saw. Short-lived on a bounded channel, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Update {
    Backend(Scope, Event<AIBackend>),
    Route(Scope, Event<AIRoute>),
    Secret(SecretKey, Option<BTreeMap<String, Vec<u8>>>),
}

/// Watches `namespaces` (all of them when empty) and sends the inventory
/// into `tx` after the first complete list and after every change. Returns
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
        let s = scope.clone();
        watches.spawn(forward(
            api::<AIBackend>(&client, scope),
            watcher::Config::default(),
            updates.clone(),
            move |e| Some(Update::Backend(s.clone(), e)),
        ));
        let s = scope.clone();
        watches.spawn(forward(
            api::<AIRoute>(&client, scope),
            watcher::Config::default(),
            updates.clone(),
            move |e| Some(Update::Route(s.clone(), e)),
        ));
    }
    let mut secret_watches: BTreeMap<SecretKey, AbortHandle> = BTreeMap::new();
    let mut index = Index::default();
    // The first push is due as soon as everything is listed, even if empty.
    let mut changed_at = Some(Instant::now());
    loop {
        let flush_at = changed_at.filter(|_| index.is_listed(&scopes)).map(|t| {
            if index.secrets_pending() == 0 {
                t + DEBOUNCE
            } else {
                t + SECRET_WAIT
            }
        });
        tokio::select! {
            update = rx.recv() => {
                let Some(update) = update else { return Err(Error::WatchEnded("update")) };
                let changed = match update {
                    Update::Backend(scope, e) => index.backend_event(&scope, e),
                    Update::Route(scope, e) => index.route_event(&scope, e),
                    Update::Secret(key, data) => index.secret(&key, data),
                };
                if changed {
                    changed_at.get_or_insert_with(Instant::now);
                    sync_secret_watches(&client, &mut index, &mut secret_watches, &updates);
                }
            }
            () = sleep_until(flush_at) => {
                changed_at = None;
                tracing::debug!(objects = index.inventory().len(), "inventory changed");
                tx.send_replace(Arc::new(index.inventory().clone()));
            }
            ended = watches.join_next() => {
                tracing::error!(?ended, "a watch task ended");
                return Err(Error::WatchEnded("AIBackend/AIRoute"));
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

fn api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: Resource<Scope = ::kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts a watch for every newly referenced Secret and stops the watches
/// (and forgets the data) of Secrets no longer referenced.
fn sync_secret_watches(
    client: &Client,
    index: &mut Index,
    watches: &mut BTreeMap<SecretKey, AbortHandle>,
    updates: &mpsc::Sender<Update>,
) {
    let wanted = index.secret_refs();
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
        let task = tokio::spawn(forward(api, config, updates.clone(), move |e| match e {
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
        }));
        watches.insert(key, task.abort_handle());
    }
}

/// Forwards a watch's events (mapped by `wrap`; `None` drops one) until the
/// receiver is gone. Errors are logged and retried with backoff.
async fn forward<K>(
    api: Api<K>,
    config: watcher::Config,
    tx: mpsc::Sender<Update>,
    mut wrap: impl FnMut(Event<K>) -> Option<Update> + Send,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let mut stream = pin!(watcher::watcher(api, config).default_backoff());
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
                tracing::warn!(error = %e, kind = %K::kind(&Default::default()), "watch failed; retrying")
            }
        }
    }
}

#[cfg(test)]
mod tests;
