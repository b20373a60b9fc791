//! Switchboard data plane library: everything between the listener and the
//! upstream providers. `main.rs` is a thin shell around [`run`].

pub mod auth;
pub mod aws;
pub mod azure;
pub mod body;
pub mod bounds;
pub mod byok;
pub mod calendar;
pub mod catalog;
pub mod check;
pub mod config;
pub mod credentials;
pub mod error;
pub mod google;
pub mod guards;
pub mod limits;
pub mod log_fields;
pub mod log_json;
pub mod log_writer;
pub mod lookup;
pub mod metrics;
pub mod oauth;
pub mod pipeline;
pub mod providers;
pub mod proxy;
pub mod response;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod sessions;
pub mod state;
pub mod store;
pub mod teams;
pub mod telemetry;
pub mod tokens;
pub mod translate;
pub mod upstream;
pub mod wire;

#[cfg(test)]
pub(crate) mod testing;

mod app;

pub use app::{Args, Command, LimitsFailMode, LogFormat, run, run_proxy_ca};
