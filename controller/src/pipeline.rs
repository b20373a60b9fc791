//! The render pipeline: sources publish whole [`Inventory`]s, this renders
//! them and publishes [`Rendered`] for the gRPC server, the admin port and
//! the status writer.
//!
//! One invalid object never blocks the others: [`render_partial`] drops the
//! objects named by the renderer's problems and renders again until the
//! rest renders cleanly. Objects that depend on a dropped one (a route
//! naming a dropped backend) then get a problem of their own and are dropped
//! in the next round. The result serves every valid object.
//!
//! Render options by mode ([`RenderMode`]):
//! - Kubernetes: [`RenderOptions::kubernetes`]; `env` credentials are problems.
//! - Directory: an AIBackend's `credentials.env` is passed on to the data
//!   planes, which read their own environment (a data plane without the
//!   variable NACKs). An AIRoute API key given by `env` would be read by the
//!   controller at render time; the controller never reads its own
//!   environment for tenant credentials, so that is a problem ("is not set").

use std::sync::Arc;

use prost::Message as _;
use switchboard_api::{Inventory, ObjectKind, Problem, Problems, RenderOptions, render_with};
use switchboard_proto::Snapshot;
use tokio::sync::watch;

use crate::metrics::{Metrics, ProblemLabels, RenderLabels};

/// The pipeline's output: what the data planes are sent and what is wrong.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// The last good snapshot (kept when a later render produced none).
    pub snapshot: Option<Arc<Snapshot>>,
    /// Every current problem, per resource (source problems first).
    pub problems: Problems,
    /// The inventory this was rendered from.
    pub inventory: Arc<Inventory>,
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

/// The result of [`render_partial`].
#[derive(Debug)]
pub struct Partial {
    /// The snapshot of every valid object; `None` when some problem names no
    /// object that could be left out.
    pub snapshot: Option<Snapshot>,
    /// Every problem found, in the rounds they were found in.
    pub problems: Problems,
    /// Objects left out, as `(kind, namespace, name)`.
    pub dropped: Vec<(ObjectKind, String, String)>,
}

/// Parses a problem's resource (`AIBackend ns/name`, `AIRoute ns/name`,
/// `Secret ns/name`) into its key.
pub fn problem_key(resource: &str) -> Option<(ObjectKind, String, String)> {
    let (kind, id) = resource.split_once(' ')?;
    let (ns, name) = id.split_once('/')?;
    let kind = match kind {
        "AIBackend" => ObjectKind::Backend,
        "AIRoute" => ObjectKind::Route,
        "Secret" => ObjectKind::Secret,
        _ => return None,
    };
    Some((kind, ns.to_string(), name.to_string()))
}

/// Renders every object that can be rendered: drops the objects named by
/// problems and renders again until it succeeds.
pub fn render_partial(inv: &Inventory, opts: &RenderOptions<'_>) -> Partial {
    let mut current = inv.clone();
    let mut problems = Problems::new();
    let mut dropped = Vec::new();
    // Each round drops at least one object, so this ends.
    loop {
        match render_with(&current, opts) {
            Ok(snapshot) => {
                return Partial {
                    snapshot: Some(snapshot),
                    problems,
                    dropped,
                };
            }
            Err(found) => {
                let mut removed_any = false;
                for problem in found.iter() {
                    if let Some((kind, ns, name)) = problem_key(&problem.resource)
                        && current.remove(kind, &ns, &name)
                    {
                        removed_any = true;
                        dropped.push((kind, ns, name));
                    }
                }
                problems.extend(found);
                if !removed_any {
                    return Partial {
                        snapshot: None,
                        problems,
                        dropped,
                    };
                }
            }
        }
    }
}

/// The kind label of a problem for metrics.
pub fn problem_kind(problem: &Problem) -> &'static str {
    match problem_key(&problem.resource) {
        Some((ObjectKind::Backend, ..)) => "AIBackend",
        Some((ObjectKind::Route, ..)) => "AIRoute",
        Some((ObjectKind::Secret, ..)) => "Secret",
        None => "source",
    }
}

/// Builds the next [`Rendered`] from the previous one: keeps the previous
/// snapshot `Arc` when the version did not change, and the last good one
/// when nothing could be rendered. Also returns the render result label:
/// `ok`, `partial` (objects left out) or `failed` (no snapshot rendered).
pub fn next_rendered(
    previous: &Rendered,
    inventory: Arc<Inventory>,
    source_problems: &Problems,
    mode: RenderMode,
) -> (Rendered, &'static str) {
    let partial = render_partial(&inventory, &mode.options());
    let result = match (&partial.snapshot, partial.problems.is_empty()) {
        (None, _) => "failed",
        (Some(_), true) => "ok",
        (Some(_), false) => "partial",
    };
    let mut problems = source_problems.clone();
    problems.extend(partial.problems);
    let snapshot = match partial.snapshot {
        Some(s) => match &previous.snapshot {
            Some(prev) if prev.version == s.version => Some(prev.clone()),
            _ => Some(Arc::new(s)),
        },
        None => previous.snapshot.clone(),
    };
    (
        Rendered {
            snapshot,
            problems,
            inventory,
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
    out: watch::Sender<Arc<Rendered>>,
    metrics: Arc<Metrics>,
) {
    if inventory.changed().await.is_err() {
        return;
    }
    // A source without problems of its own may drop its problems sender.
    let mut problems_open = true;
    loop {
        let inv = inventory.borrow_and_update().clone();
        let extra = source_problems.borrow_and_update().clone();
        let previous = out.borrow().clone();
        let (next, result) = next_rendered(&previous, inv, &extra, mode);
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
    for kind in ["AIBackend", "AIRoute", "Secret", "source"] {
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
                tracing::warn!(problem = %p, "object left out of the snapshot");
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
