//! What status computation reads from the rest of the controller: the
//! render pipeline's [`Rendered`] and the fleet's [`FleetView`], reduced to
//! [`StatusInputs`].

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_api::{Inventory, ObjectKind, Problems};

use super::history::{ObjectKey, generations};
use crate::fleet::FleetView;
use crate::pipeline::{Rendered, problem_key};

pub use crate::fleet::{DataPlaneState, NackInfo};

/// Everything one status pass looks at.
#[derive(Clone, Debug, Default)]
pub struct StatusInputs {
    /// The objects, as last seen from the cluster.
    pub inventory: Arc<Inventory>,
    /// Every problem the renderer found in `inventory`. The objects they
    /// name were left out of the snapshot.
    pub problems: Problems,
    /// The version of the snapshot rendered from `inventory` (without the
    /// objects named by `problems`); `None` when nothing could be rendered
    /// (data planes keep the last good snapshot).
    pub rendered_version: Option<String>,
    /// Connected data planes by identity.
    pub dataplanes: BTreeMap<String, DataPlaneState>,
}

impl StatusInputs {
    /// The inputs for the pipeline's latest output and the fleet.
    pub fn from_parts(rendered: &Rendered, fleet: &FleetView) -> Self {
        // A problem naming no object means nothing was rendered from this
        // inventory: the snapshot is the last good one, from an older one.
        let rendered_here = rendered
            .problems
            .iter()
            .all(|p| problem_key(&p.resource).is_some());
        Self {
            inventory: rendered.inventory.clone(),
            problems: rendered.problems.clone(),
            rendered_version: rendered
                .snapshot
                .as_ref()
                .filter(|_| rendered_here)
                .map(|s| s.version.clone()),
            dataplanes: fleet.dataplanes.clone(),
        }
    }

    /// The generation of every object in the snapshot rendered from this
    /// inventory: every AIBackend and AIRoute not named by a problem.
    pub fn served_generations(&self) -> BTreeMap<ObjectKey, i64> {
        let dropped: Vec<(ObjectKind, String, String)> = self
            .problems
            .iter()
            .filter_map(|p| problem_key(&p.resource))
            .collect();
        let mut all = generations(&self.inventory);
        all.retain(|k, _| !dropped.contains(k));
        all
    }
}
