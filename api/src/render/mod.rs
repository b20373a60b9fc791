//! The renderer: an [`Inventory`] in, one validated [`Snapshot`] out.
//!
//! Rendering is pure and deterministic: backends and routes are sorted by
//! id (`namespace/name`), and `version` is the first 16 hex digits of the
//! sha256 of the protobuf encoding of the snapshot with an empty version, so
//! the same content always gets the same version whatever order the objects
//! were loaded in. Every problem is collected before failing.
//!
//! Credentials: in both modes Secret references are resolved to their value.
//! In standalone mode ([`RenderOptions::standalone`]) an AIBackend's
//! `credentials.env` is passed on as an environment variable name for the
//! data plane to read, and an AIRoute API key's `env` is read at render
//! time; in Kubernetes mode ([`RenderOptions::kubernetes`]) both are problems.
//!
//! Values left unset are rendered as 0 (or empty) and the data plane applies
//! its defaults; see `docs/resources.md`.
//!
//! The checks agree with the CRD schema: the size bounds are read from it
//! (`bounds`), and every CEL rule of `v1alpha1::rules` has a twin here, so
//! an object the API server refuses is refused here with the same field path
//! (`api/tests/fixtures/validation/invalid.yaml` is the table that proves it).

mod aiteam;
mod azure;
mod backend;
mod bedrock;
mod bounds;
mod check;
pub mod claims;
mod duration;
mod google;
pub mod resolve;
mod route;
mod teams;

pub use aiteam::{RenderedTeam, ServedTeams, SoftProblem};
pub use check::{glob_error, is_valid_header_name};
pub use claims::{Claim, ClaimPolicy, ClaimRule};
pub use duration::parse_duration_ms;
pub use resolve::{
    Accepted, AcceptedSpec, LastAccepted, Outcome, Resolution, Served, last_accepted_from_status,
    resolve,
};
pub use route::PROVIDER_KEY_HEADER;
pub use teams::{BUILTIN_TIERS, DEFAULT_TIER, UnmappedCallers, unmapped_callers};

#[cfg(test)]
pub(crate) use check::is_url_char;
use std::collections::BTreeSet;
#[cfg(test)]
pub(crate) use teams::is_team_name;

use prost::Message as _;
use sha2::{Digest, Sha256};
use switchboard_proto::{self as pb, Snapshot};

use crate::inventory::Inventory;
use crate::problem::{Problem, Problems};
use crate::v1alpha1::{AIBackendSpec, AIRouteSpec, AITeamSpec};

/// How credentials given as environment variables are treated.
#[derive(Clone, Copy)]
pub struct RenderOptions<'a> {
    /// Whether `env` credential sources are allowed (standalone mode) or are
    /// problems (Kubernetes mode).
    pub env_allowed: bool,
    /// Reads an environment variable (used for AIRoute API keys given by `env`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl RenderOptions<'static> {
    /// Standalone mode: `env` sources allowed, read from the process environment.
    pub fn standalone() -> Self {
        Self {
            env_allowed: true,
            env: &process_env,
        }
    }

    /// Kubernetes mode: `env` sources are problems.
    pub fn kubernetes() -> Self {
        Self {
            env_allowed: false,
            env: &no_env,
        }
    }
}

impl std::fmt::Debug for RenderOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderOptions")
            .field("env_allowed", &self.env_allowed)
            .finish_non_exhaustive()
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Renders in standalone mode ([`RenderOptions::standalone`]).
pub fn render(inv: &Inventory) -> Result<Snapshot, Problems> {
    render_with(inv, &RenderOptions::standalone())
}

/// Validates every object of `inv` and renders the snapshot, or returns
/// every problem found (conflicting route claims included: the route that
/// does not take precedence has a problem; so are AITeam references a route
/// cannot use). All or nothing: standalone mode refuses a configuration with
/// any problem and keeps its last good one.
pub fn render_with(inv: &Inventory, opts: &RenderOptions<'_>) -> Result<Snapshot, Problems> {
    let resolution = resolve(inv, &LastAccepted::new(), &ClaimPolicy::allow_all(), opts);
    let mut problems = resolution.problems;
    // What Kubernetes mode serves with a degraded status (a route without
    // one of its AITeams) is a problem here: nobody would see the status.
    for ((kind, ..), o) in &resolution.outcomes {
        if *kind == crate::ObjectKind::Route {
            problems.extend(o.degraded.iter().map(|s| s.problem.clone()));
        }
    }
    problems.into_result(resolution.snapshot)
}

/// Renders one AIBackend spec, or returns its problems.
pub(crate) fn render_backend_spec(
    inv: &Inventory,
    namespace: &str,
    name: &str,
    spec: &AIBackendSpec,
    opts: &RenderOptions<'_>,
    unserved: &BTreeSet<(String, String)>,
) -> Result<pb::Backend, Vec<Problem>> {
    let mut problems = Problems::new();
    let no_teams = ServedTeams::new();
    let mut cx = Ctx::new(
        "AIBackend",
        namespace,
        name,
        Lookups {
            inv,
            opts,
            unserved,
            teams: &no_teams,
        },
        &mut problems,
    );
    cx.bounds(spec, bounds::backend_spec());
    let backend = backend::render_backend(&mut cx, spec);
    problems.into_result(backend).map_err(|p| p.0)
}

/// Renders one AITeam spec on its own, or returns its problems.
pub(crate) fn render_team_spec(
    inv: &Inventory,
    namespace: &str,
    name: &str,
    spec: &AITeamSpec,
    opts: &RenderOptions<'_>,
) -> Result<RenderedTeam, Vec<Problem>> {
    let mut problems = Problems::new();
    let (no_teams, no_unserved) = (ServedTeams::new(), BTreeSet::new());
    let mut cx = Ctx::new(
        "AITeam",
        namespace,
        name,
        Lookups {
            inv,
            opts,
            unserved: &no_unserved,
            teams: &no_teams,
        },
        &mut problems,
    );
    cx.bounds(spec, bounds::team_spec());
    let team = aiteam::render_team(&mut cx, spec);
    problems.into_result(team).map_err(|p| p.0)
}

/// Renders one AIRoute spec with the AITeams of `teams`, or returns its
/// problems. A backend in `unserved` (namespace, name) exists but is not
/// served. With the route come the soft problems of its team references.
pub(crate) fn render_route_spec(
    inv: &Inventory,
    namespace: &str,
    name: &str,
    spec: &AIRouteSpec,
    opts: &RenderOptions<'_>,
    unserved: &BTreeSet<(String, String)>,
    teams: &ServedTeams,
) -> Result<(pb::Route, Vec<SoftProblem>), Vec<Problem>> {
    let mut problems = Problems::new();
    let mut cx = Ctx::new(
        "AIRoute",
        namespace,
        name,
        Lookups {
            inv,
            opts,
            unserved,
            teams,
        },
        &mut problems,
    );
    cx.bounds(spec, bounds::route_spec());
    let route = route::render_route(&mut cx, spec);
    let soft = std::mem::take(&mut cx.soft);
    problems.into_result((route, soft)).map_err(|p| p.0)
}

/// The content hash of `snapshot` ignoring its current `version`.
pub fn content_version(snapshot: &Snapshot) -> String {
    let mut unversioned = snapshot.clone();
    unversioned.version.clear();
    let digest = Sha256::digest(unversioned.encode_to_vec());
    let mut hex = hex::encode(digest);
    hex.truncate(16);
    hex
}

/// What a renderer function may look up.
pub(crate) struct Lookups<'a> {
    pub inv: &'a Inventory,
    pub opts: &'a RenderOptions<'a>,
    /// Backends (namespace, name) that exist but are not served.
    pub unserved: &'a BTreeSet<(String, String)>,
    /// The AITeams routes may use.
    pub teams: &'a ServedTeams,
}

/// What a renderer function needs: where it is, what it may look up, and
/// where problems go.
pub(crate) struct Ctx<'a> {
    /// `Kind namespace/name`.
    pub resource: String,
    /// The resource's namespace.
    pub namespace: &'a str,
    /// The resource's name.
    pub name: String,
    /// `namespace/name`.
    pub id: String,
    pub inv: &'a Inventory,
    pub opts: &'a RenderOptions<'a>,
    /// Backends (namespace, name) that exist but are not served.
    pub unserved: &'a BTreeSet<(String, String)>,
    /// The AITeams routes may use.
    pub teams: &'a ServedTeams,
    problems: &'a mut Problems,
    /// Problems that leave a part out instead of refusing the object.
    pub soft: Vec<SoftProblem>,
}

impl<'a> Ctx<'a> {
    fn new(
        kind: &str,
        namespace: &'a str,
        name: &str,
        look: Lookups<'a>,
        problems: &'a mut Problems,
    ) -> Self {
        Self {
            resource: format!("{kind} {namespace}/{name}"),
            namespace,
            name: name.to_string(),
            id: format!("{namespace}/{name}"),
            inv: look.inv,
            opts: look.opts,
            unserved: look.unserved,
            teams: look.teams,
            problems,
            soft: Vec::new(),
        }
    }

    /// Records a problem at `path`.
    pub fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems
            .push(Problem::new(self.resource.clone(), path, message));
    }

    /// Records a soft problem at `path` (see [`SoftProblem`]).
    pub fn soft(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        reason: &'static str,
        team: Option<(String, String)>,
    ) {
        self.soft.push(SoftProblem {
            problem: Problem::new(self.resource.clone(), path, message),
            reason,
            team,
        });
    }

    /// Records every size bound of the CRD schema `spec` breaks.
    fn bounds(&mut self, spec: &impl serde::Serialize, schema: &serde_json::Value) {
        // A spec always serializes (string keys, finite or null numbers).
        let Ok(value) = serde_json::to_value(spec) else {
            return;
        };
        for (path, message) in bounds::check(&value, schema, "spec") {
            self.problem(path, message);
        }
    }

    /// Parses an optional duration; unset or invalid gives 0.
    pub fn duration_ms(&mut self, path: &str, value: Option<&String>) -> u64 {
        match value.map(|v| parse_duration_ms(v)) {
            None => 0,
            Some(Ok(ms)) => ms,
            Some(Err(e)) => {
                self.problem(path, e);
                0
            }
        }
    }

    /// Resolves a Secret key to its (trimmed, non-empty, UTF-8) value.
    pub fn secret_value(
        &mut self,
        path: &str,
        r: &crate::v1alpha1::SecretKeyRef,
    ) -> Option<String> {
        let Some(data) = self.inv.secret(self.namespace, &r.name) else {
            self.problem(
                format!("{path}.name"),
                format!("Secret {:?} not found", r.name),
            );
            return None;
        };
        let Some(bytes) = data.get(&r.key) else {
            self.problem(
                format!("{path}.key"),
                format!("key {:?} not found in Secret {:?}", r.key, r.name),
            );
            return None;
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.problem(
                format!("{path}.key"),
                format!("key {:?} of Secret {:?} is not UTF-8 text", r.key, r.name),
            );
            return None;
        };
        let text = text.trim();
        if text.is_empty() {
            self.problem(
                format!("{path}.key"),
                format!("key {:?} of Secret {:?} is empty", r.key, r.name),
            );
            return None;
        }
        Some(text.to_string())
    }
}

#[cfg(test)]
mod tests;
