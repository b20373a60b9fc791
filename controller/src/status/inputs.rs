//! What status computation reads from the rest of the controller.
//!
//! The shapes mirror the gRPC side's fleet view (`fleet::DataPlaneState`,
//! `fleet::NackInfo`): at merge these become re-exports of those types.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_api::{Inventory, Problems};

/// What one connected data plane runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataPlaneState {
    /// The snapshot version it last acknowledged (the one it serves).
    pub acked_version: Option<String>,
    /// Its last rejection, if the last version it was sent was rejected.
    pub nack: Option<NackInfo>,
}

/// A data plane's rejection of one version.
#[derive(Clone, Debug, PartialEq)]
pub struct NackInfo {
    /// The rejected version.
    pub version: String,
    /// Per-resource reasons (`resource` is `Kind/namespace/name`, or empty).
    pub errors: Vec<switchboard_proto::ResourceError>,
}

/// Everything one status pass looks at.
#[derive(Clone, Debug, Default)]
pub struct StatusInputs {
    /// The objects, as last seen from the cluster.
    pub inventory: Arc<Inventory>,
    /// Every problem the renderer found in `inventory` (empty when it rendered).
    pub problems: Problems,
    /// The version of the snapshot rendered from `inventory`; `None` when
    /// rendering failed (data planes keep the last good snapshot).
    pub rendered_version: Option<String>,
    /// Connected data planes by identity.
    pub dataplanes: BTreeMap<String, DataPlaneState>,
}
