//! What status computation reads from the rest of the controller: the
//! render pipeline's [`Rendered`] and the fleet's [`FleetView`] (every
//! replica's data planes, merged), reduced to [`StatusInputs`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use switchboard_api::render::{Outcome, Served};
use switchboard_api::v1alpha1::ResourceStatus;
use switchboard_api::{Inventory, ObjectKey, ObjectKind};

use crate::fleet::FleetView;
use crate::pipeline::Rendered;

pub use crate::fleet::{DataPlaneState, NackInfo};

/// Everything one status pass looks at.
#[derive(Clone, Debug, Default)]
pub struct StatusInputs {
    /// The objects, as last seen from the cluster.
    pub inventory: Arc<Inventory>,
    /// How the renderer resolved every AIBackend, AIRoute and AITeam of `inventory`.
    pub outcomes: Arc<BTreeMap<ObjectKey, Outcome>>,
    /// The version of the snapshot rendered from `inventory`; `None` before
    /// the first render.
    pub rendered_version: Option<String>,
    /// Connected data planes by identity (of every replica).
    pub dataplanes: BTreeMap<String, DataPlaneState>,
}

impl StatusInputs {
    /// The inputs for the pipeline's latest output and the fleet.
    pub fn from_parts(rendered: &Rendered, fleet: &FleetView) -> Self {
        Self {
            inventory: rendered.inventory.clone(),
            outcomes: rendered.outcomes.clone(),
            rendered_version: rendered.snapshot.as_ref().map(|s| s.version.clone()),
            dataplanes: fleet.dataplanes.clone(),
        }
    }

    /// What the snapshot rendered from this inventory holds for each object
    /// it holds anything for.
    pub fn served(&self) -> BTreeMap<ObjectKey, Served> {
        self.outcomes
            .iter()
            .filter(|(_, o)| o.served != Served::NotServed)
            .map(|(k, o)| (k.clone(), o.served.clone()))
            .collect()
    }

    /// The metadata and status of object `key`, decoded or not.
    pub fn object(&self, key: &ObjectKey) -> Option<(&ObjectMeta, Option<&ResourceStatus>)> {
        let (kind, ns, name) = key;
        let inv = &self.inventory;
        let typed = match kind {
            ObjectKind::Backend => inv
                .backend(ns, name)
                .map(|b| (&b.metadata, b.status.as_ref())),
            ObjectKind::Route => inv
                .route(ns, name)
                .map(|r| (&r.metadata, r.status.as_ref())),
            ObjectKind::Team => inv
                .team(ns, name)
                .map(|t| (&t.metadata, t.status.as_ref().map(|s| &s.resource))),
            ObjectKind::Secret => None,
        };
        typed.or_else(|| {
            inv.undecodable_object(*kind, ns, name)
                .map(|u| (&u.metadata, u.status.as_ref()))
        })
    }
}
