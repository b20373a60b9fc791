//! Switchboard's Kubernetes API (`switchboard.dev/v1alpha1`) and the pure
//! renderer that turns resources and secrets into one routing snapshot.
//!
//! - [`v1alpha1`]: the `AIBackend`, `AIRoute` and `AITeam` types (the CRDs come from them).
//! - [`load`]: parse YAML documents into [`Object`]s; [`Inventory`] holds them.
//! - [`render`](mod@render): validate an inventory and render one [`switchboard_proto::Snapshot`].
//! - [`crd`]: the generated CRD files (`crdgen` writes them).
//!
//! Nothing here does network IO.

pub mod conditions;
pub mod crd;
pub mod inventory;
pub mod load;
pub mod problem;
pub mod render;
pub mod v1alpha1;

pub use inventory::{Inventory, ObjectKey, ObjectKind};
pub use load::{Object, Undecodable, parse_documents};
pub use problem::{Problem, Problems};
pub use render::{RenderOptions, render, render_with};
pub use v1alpha1::{AIBackend, AIRoute, AITeam};
