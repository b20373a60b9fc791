//! Status of AIBackends and AIRoutes: the pure computation of conditions
//! ([`compute`]) and the writer that applies them to the cluster ([`writer`]).

pub mod compute;
pub mod events;
pub mod history;
pub mod inputs;
pub mod refs;
pub mod writer;
