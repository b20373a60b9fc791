//! Teams: who a caller belongs to ([`TeamTable`]), what its answers cost
//! ([`PriceTable`]), admission and accounting against its limits
//! ([`TeamContext`]), the per-team metrics ([`TeamMetrics`]), and the live
//! usage of AITeams ([`UsageBook`]), and the log of each caller's first
//! refusal ([`FirstRefusals`]).

mod context;
pub mod estimate;
pub mod first_refusal;
pub mod headers;
pub mod metrics;
pub mod pricing;
mod table;
pub mod usage;

pub use context::{TeamContext, admit, membership};
pub use first_refusal::FirstRefusals;
pub use metrics::TeamMetrics;
pub use pricing::{Price, PriceTable};
pub use table::{Membership, TeamTable, UNKNOWN_TEAM};
pub use usage::UsageBook;
