//! Switchboard controller library: sources (a YAML folder, or the Kubernetes
//! API), the render pipeline, the registry of connected data planes, the
//! gRPC snapshot server and the admin port. `main.rs` is a thin shell around
//! [`app::run`].
//!
//! Data flow: a source publishes whole inventories into a
//! `watch::Sender<Arc<Inventory>>`; [`pipeline::run_renderer`] renders each
//! into a [`pipeline::Rendered`]; [`grpc`] streams every new snapshot version
//! to every connected data plane and records ACKs and NACKs in [`fleet::Fleet`].
//!
//! Kubernetes mode adds [`kube`] (the watch source and the leader Lease) and
//! [`status`] (conditions computed from `Rendered` and the fleet, written by
//! the Lease holder only). Data planes report the usage of AITeams on their
//! streams; [`usage`] sums the reports and (Kubernetes mode, Lease holder
//! only) writes each AITeam's `status.usage`.

pub mod admin;
pub mod app;
pub mod error;
pub mod fleet;
pub mod grpc;
pub mod kube;
pub mod metrics;
pub mod pipeline;
pub mod source;
pub mod status;
pub mod usage;

pub use error::Error;
pub use fleet::{DataPlaneState, Fleet, FleetView, NackInfo};
pub use pipeline::{RenderMode, Rendered};
