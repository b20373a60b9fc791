//! The `switchboard.dev/v1alpha1` API: [`AIBackend`], [`AIRoute`] and [`AITeam`].
//!
//! Every field's doc comment becomes its description in the generated CRD
//! (and so in `kubectl explain`). Bounds and CEL rules ([`rules`]) make the
//! API server refuse invalid objects; the renderer ([`crate::render`](mod@crate::render)) checks
//! the same again plus what the schema cannot express, and reports every
//! problem with its field path.

mod aiteam;
mod azure;
mod backend;
mod google;
mod guards;
mod route;
pub mod rules;
mod status;
mod teams;

pub use aiteam::*;
pub use azure::*;
pub use backend::*;
pub use google::*;
pub use guards::*;
pub use route::*;
pub use status::*;
pub use teams::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every Switchboard resource.
pub const GROUP: &str = "switchboard.dev";
/// The API version of this module's resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of this module's resources.
pub const API_VERSION: &str = "switchboard.dev/v1alpha1";

/// A reference to one key of a Secret in the resource's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the resource.
    #[schemars(length(min = 1, max = rules::NAME_MAX))]
    pub name: String,
    /// Key inside the Secret's data. Defaults to `apiKey`.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = rules::NAME_MAX))]
    pub key: String,
}

fn default_secret_key() -> String {
    "apiKey".to_string()
}
