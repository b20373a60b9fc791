//! Leader election with a `coordination.k8s.io/v1` Lease. Only the holder
//! writes status; every replica serves gRPC whatever its role.
//!
//! The decision is a pure function of the Lease as read, our identity and
//! the time ([`decide`], [`next_spec`]); [`run`] reads, decides and writes
//! with optimistic concurrency (`resourceVersion`), so two replicas racing
//! for an expired Lease cannot both win. A holder that cannot renew steps
//! down after [`LeaseConfig::renew_deadline`], before the Lease expires for
//! the others ([`still_leader`]).

use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, PostParams};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// Where the Lease is, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal. Default 15s.
    pub lease_duration: Duration,
    /// A holder that could not renew for this long steps down; shorter than
    /// `lease_duration`. Default 10s.
    pub renew_deadline: Duration,
    /// How often the holder renews, and others retry. Default 2s.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// The default timings for Lease `namespace/name` held as `identity`.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It is free, expired, or does not exist: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it until `until`.
    Wait {
        /// The current holder.
        holder: String,
        /// When it expires unless renewed.
        until: Timestamp,
    },
}

/// Decides what `identity` does with `spec` (`None`: no Lease) at `now`.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return Decision::Acquire;
    };
    let duration =
        SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0)));
    let until = renewed.0.checked_add(duration).unwrap_or(renewed.0);
    if until <= now {
        Decision::Acquire
    } else {
        Decision::Wait {
            holder: holder.to_string(),
            until,
        }
    }
}

/// The Lease spec to write for `decision` (`None` for [`Decision::Wait`]).
pub fn next_spec(
    decision: &Decision,
    spec: Option<&LeaseSpec>,
    cfg: &LeaseConfig,
    now: Timestamp,
) -> Option<LeaseSpec> {
    let seconds = i32::try_from(cfg.lease_duration.as_secs()).unwrap_or(i32::MAX);
    match decision {
        Decision::Wait { .. } => None,
        Decision::Renew => {
            let mut next = spec.cloned().unwrap_or_default();
            next.renew_time = Some(MicroTime(now));
            next.lease_duration_seconds = Some(seconds);
            Some(next)
        }
        Decision::Acquire => {
            let transitions = spec.and_then(|s| s.lease_transitions).unwrap_or(0);
            // Any change of holder counts, also taking over a released Lease
            // (no holder); creating the Lease does not.
            let had_holder =
                spec.is_some_and(|s| s.holder_identity.as_deref() != Some(&cfg.identity));
            Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(if had_holder {
                    transitions + 1
                } else {
                    transitions
                }),
                ..Default::default()
            })
        }
    }
}

/// Whether a replica that last renewed at `last_renewed` may still act as
/// leader at `now`.
pub fn still_leader(last_renewed: Option<Timestamp>, cfg: &LeaseConfig, now: Timestamp) -> bool {
    let deadline = SignedDuration::try_from(cfg.renew_deadline).unwrap_or(SignedDuration::MAX);
    last_renewed.is_some_and(|t| t.checked_add(deadline).is_ok_and(|until| now < until))
}

/// Reading or writing the Lease failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not be reached.
    #[error("lease {name}: {source}")]
    Api {
        /// `namespace/name` of the Lease.
        name: String,
        /// The client error.
        #[source]
        source: ::kube::Error,
    },
}

impl Error {
    /// A low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { .. } => "lease",
        }
    }
}

/// One round: reads the Lease, decides, writes. Returns whether we hold it
/// now. A conflict (another replica wrote first) is `Ok(false)`.
pub async fn try_acquire_or_renew(
    api: &Api<Lease>,
    cfg: &LeaseConfig,
    now: Timestamp,
) -> Result<bool, Error> {
    let err = |source| Error::Api {
        name: format!("{}/{}", cfg.namespace, cfg.name),
        source,
    };
    let current = api.get_opt(&cfg.name).await.map_err(err)?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let decision = decide(spec, &cfg.identity, now);
    let Some(next) = next_spec(&decision, spec, cfg, now) else {
        return Ok(false);
    };
    let result = match current {
        Some(mut lease) => {
            lease.spec = Some(next);
            api.replace(&cfg.name, &PostParams::default(), &lease).await
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    ..Default::default()
                },
                spec: Some(next),
            };
            api.create(&PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(::kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// The spec that gives up a Lease `identity` holds (`None` when it does
/// not hold it): no holder, so others may take it at once.
pub fn released_spec(spec: Option<&LeaseSpec>, identity: &str) -> Option<LeaseSpec> {
    let spec = spec.filter(|s| s.holder_identity.as_deref() == Some(identity))?;
    Some(LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        ..spec.clone()
    })
}

/// Gives up the Lease if we hold it (on graceful shutdown), so another
/// replica takes over without waiting for it to expire. Returns whether it
/// was released.
pub async fn release(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, Error> {
    let err = |source| Error::Api {
        name: format!("{}/{}", cfg.namespace, cfg.name),
        source,
    };
    let Some(mut lease) = api.get_opt(&cfg.name).await.map_err(err)? else {
        return Ok(false);
    };
    let Some(next) = released_spec(lease.spec.as_ref(), &cfg.identity) else {
        return Ok(false);
    };
    lease.spec = Some(next);
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(::kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// Keeps trying to hold the Lease and publishes whether we lead into
/// `leader`, until every receiver is gone or `shutdown` turns true: then
/// (either way), after any renewal in flight has completed (so it cannot
/// take the Lease back), gives the Lease up if we hold it.
pub async fn run(
    client: Client,
    cfg: LeaseConfig,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut last_renewed = None;
    loop {
        if shutdown_requested(&shutdown) {
            break;
        }
        let now = Timestamp::now();
        match try_acquire_or_renew(&api, &cfg, now).await {
            Ok(true) => last_renewed = Some(now),
            Ok(false) => last_renewed = None,
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
        let leading = still_leader(last_renewed, &cfg, Timestamp::now());
        leader.send_if_modified(|was| {
            let changed = *was != leading;
            if changed {
                tracing::info!(leading, identity = %cfg.identity, "leadership changed");
            }
            *was = leading;
            changed
        });
        tokio::select! {
            () = tokio::time::sleep(cfg.retry_period) => {}
            // Nobody left to lead for: give the Lease up as on shutdown.
            () = leader.closed() => break,
            () = async { drop(shutdown.wait_for(|s| *s).await) } => break,
        }
    }
    leader.send_replace(false);
    if let Err(e) = release(&api, &cfg).await {
        tracing::warn!(error = %e, "releasing the lease failed");
    }
}

/// Whether `shutdown` turned true (the guard is not kept across an await).
fn shutdown_requested(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

#[cfg(test)]
mod tests;
