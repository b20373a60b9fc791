//! The render pipeline: sources publish whole [`Inventory`]s, this renders
//! them and publishes [`Rendered`] for the gRPC server, the admin port and
//! the status writer.
//!
//! Rendering fails closed, per object ([`switchboard_api::resolve`]): an
//! object whose current generation is refused keeps its last accepted
//! rendering; a route whose last accepted version cannot be rebuilt becomes
//! a 503 placeholder on its hostnames and path prefix; conflicting route
//! claims go to the oldest route. Where the last accepted specs come from:
//! - Kubernetes: `status.lastAccepted` of each object, so every replica
//!   renders the same snapshot and a restart changes nothing;
//! - Directory: memory (the objects accepted since the controller started).
//!
//! Render options by mode ([`RenderMode`]):
//! - Kubernetes: [`RenderOptions::kubernetes`]; `env` credentials are problems.
//! - Directory: an AIBackend's `credentials.env` is passed on to the data
//!   planes, which read their own environment (a data plane without the
//!   variable NACKs). An AIRoute API key given by `env` would be read by the
//!   controller at render time; the controller never reads its own
//!   environment for tenant credentials, so that is a problem ("is not set").

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message as _;
use switchboard_api::render::{
    ClaimPolicy, LastAccepted, Outcome, last_accepted_from_status, resolve,
};
use switchboard_api::{Inventory, ObjectKey, ObjectKind, Problem, Problems, RenderOptions};
use switchboard_proto::Snapshot;
use tokio::sync::watch;

use crate::metrics::{Metrics, ProblemLabels, RenderLabels};

/// The pipeline's output: what the data planes are sent and what is wrong.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// The snapshot (`None` until the first inventory is rendered).
    pub snapshot: Option<Arc<Snapshot>>,
    /// Every current problem, per resource (source problems first).
    pub problems: Problems,
    /// The inventory this was rendered from.
    pub inventory: Arc<Inventory>,
    /// How every AIBackend, AIRoute and AITeam of `inventory` was resolved.
    pub outcomes: Arc<BTreeMap<ObjectKey, Outcome>>,
}

impl Rendered {
    /// `inventory` rendered once, from nothing (in Kubernetes mode the last
    /// accepted specs come from the objects' statuses).
    pub fn render(inventory: Arc<Inventory>, mode: RenderMode, policy: &ClaimPolicy) -> Self {
        let mut last = LastAcceptedSource::for_mode(mode);
        next_rendered(
            &Rendered::default(),
            inventory,
            &Problems::new(),
            mode,
            &mut last,
            policy,
        )
        .0
    }
}

/// Which render options a source's objects are rendered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderMode {
    /// Objects from the Kubernetes API.
    Kubernetes,
    /// Objects from a YAML folder.
    Directory,
}

fn no_env(_: &str) -> Option<String> {
    None
}

impl RenderMode {
    /// The renderer options of this mode (see the module docs).
    pub fn options(self) -> RenderOptions<'static> {
        match self {
            RenderMode::Kubernetes => RenderOptions::kubernetes(),
            RenderMode::Directory => RenderOptions {
                env_allowed: true,
                env: &no_env,
            },
        }
    }
}

/// Parses a problem's resource (`AIBackend ns/name`, `AIRoute ns/name`,
/// `AITeam ns/name`, `Secret ns/name`) into its key.
pub fn problem_key(resource: &str) -> Option<(ObjectKind, String, String)> {
    let (kind, id) = resource.split_once(' ')?;
    let (ns, name) = id.split_once('/')?;
    let kind = match kind {
        "AIBackend" => ObjectKind::Backend,
        "AIRoute" => ObjectKind::Route,
        "AITeam" => ObjectKind::Team,
        "Secret" => ObjectKind::Secret,
        _ => return None,
    };
    Some((kind, ns.to_string(), name.to_string()))
}

/// Where the last accepted spec of each object comes from.
#[derive(Clone, Debug, Default)]
pub enum LastAcceptedSource {
    /// `status.lastAccepted` of each object (Kubernetes mode).
    #[default]
    Status,
    /// The specs accepted since the process started (directory mode).
    Memory(LastAccepted),
}

impl LastAcceptedSource {
    /// The source for `mode`.
    pub fn for_mode(mode: RenderMode) -> Self {
        match mode {
            RenderMode::Kubernetes => Self::Status,
            RenderMode::Directory => Self::Memory(LastAccepted::new()),
        }
    }

    fn get(&self, inv: &Inventory) -> LastAccepted {
        match self {
            Self::Status => last_accepted_from_status(inv),
            Self::Memory(m) => m.clone(),
        }
    }

    fn remember(&mut self, outcomes: &BTreeMap<ObjectKey, Outcome>) {
        if let Self::Memory(m) = self {
            *m = outcomes
                .iter()
                .filter_map(|(k, o)| Some((k.clone(), o.accepted.clone()?)))
                .collect();
        }
    }
}

/// The kind label of a problem for metrics.
pub fn problem_kind(problem: &Problem) -> &'static str {
    match problem_key(&problem.resource) {
        Some((ObjectKind::Backend, ..)) => "AIBackend",
        Some((ObjectKind::Route, ..)) => "AIRoute",
        Some((ObjectKind::Team, ..)) => "AITeam",
        Some((ObjectKind::Secret, ..)) => "Secret",
        None => "source",
    }
}

/// Builds the next [`Rendered`] from the previous one: keeps the previous
/// snapshot `Arc` when the version did not change. Also returns the render
/// result label: `ok` (no problems) or `partial` (some objects' current
/// generation refused).
pub fn next_rendered(
    previous: &Rendered,
    inventory: Arc<Inventory>,
    source_problems: &Problems,
    mode: RenderMode,
    last: &mut LastAcceptedSource,
    policy: &ClaimPolicy,
) -> (Rendered, &'static str) {
    let resolution = resolve(&inventory, &last.get(&inventory), policy, &mode.options());
    last.remember(&resolution.outcomes);
    let result = if resolution.problems.is_empty() {
        "ok"
    } else {
        "partial"
    };
    let mut problems = source_problems.clone();
    problems.extend(resolution.problems);
    let snapshot = match &previous.snapshot {
        Some(prev) if prev.version == resolution.snapshot.version => prev.clone(),
        _ => Arc::new(resolution.snapshot),
    };
    (
        Rendered {
            snapshot: Some(snapshot),
            problems,
            inventory,
            outcomes: Arc::new(resolution.outcomes),
        },
        result,
    )
}

/// Whether publishing `next` after `current` tells anyone something new.
pub fn changed(current: &Rendered, next: &Rendered) -> bool {
    let version = |r: &Rendered| r.snapshot.as_ref().map(|s| s.version.clone());
    version(current) != version(next)
        || current.problems != next.problems
        || !Arc::ptr_eq(&current.inventory, &next.inventory)
}

/// Renders every inventory a source publishes until the source's sender is
/// dropped. The initial value of `inventory` is a placeholder: rendering
/// starts with the first value a source sends. `source_problems` carries
/// problems found before rendering (a file that does not parse).
pub async fn run_renderer(
    mut inventory: watch::Receiver<Arc<Inventory>>,
    mut source_problems: watch::Receiver<Problems>,
    mode: RenderMode,
    policy: ClaimPolicy,
    out: watch::Sender<Arc<Rendered>>,
    metrics: Arc<Metrics>,
) {
    let mut last = LastAcceptedSource::for_mode(mode);
    if inventory.changed().await.is_err() {
        return;
    }
    // A source without problems of its own may drop its problems sender.
    let mut problems_open = true;
    loop {
        let inv = inventory.borrow_and_update().clone();
        let extra = source_problems.borrow_and_update().clone();
        let previous = out.borrow().clone();
        let (next, result) = next_rendered(&previous, inv, &extra, mode, &mut last, &policy);
        record(&metrics, &next, result);
        if changed(&previous, &next) {
            log_transition(&previous, &next);
            out.send_replace(Arc::new(next));
        }
        tokio::select! {
            r = inventory.changed() => if r.is_err() { return },
            r = source_problems.changed(), if problems_open => problems_open = r.is_ok(),
        }
    }
}

fn record(metrics: &Metrics, next: &Rendered, result: &'static str) {
    metrics
        .renders
        .get_or_create(&RenderLabels { result })
        .inc();
    for kind in ["AIBackend", "AIRoute", "AITeam", "Secret", "source"] {
        metrics
            .render_problems
            .get_or_create(&ProblemLabels { kind })
            .set(0);
    }
    for p in next.problems.iter() {
        metrics
            .render_problems
            .get_or_create(&ProblemLabels {
                kind: problem_kind(p),
            })
            .inc();
    }
    if let Some(s) = &next.snapshot {
        metrics.set_snapshot(&s.version, s.encoded_len());
    }
}

fn log_transition(previous: &Rendered, next: &Rendered) {
    let version = next
        .snapshot
        .as_ref()
        .map(|s| s.version.as_str())
        .unwrap_or("");
    if previous.problems != next.problems {
        if next.problems.is_empty() {
            tracing::info!(%version, "every object renders cleanly");
        } else {
            for p in next.problems.iter() {
                tracing::warn!(problem = %p, "refused");
            }
        }
    }
    let prev = previous.snapshot.as_ref().map(|s| s.version.as_str());
    if prev != Some(version) && !version.is_empty() {
        tracing::info!(%version, problems = next.problems.len(), "new snapshot rendered");
    }
}

#[cfg(test)]
mod tests;
