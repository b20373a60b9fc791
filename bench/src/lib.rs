//! Switchboard benchmark harness: a fast mock upstream ([`mock`]), a bare
//! passthrough proxy ([`bare`]) as the floor, and the runner ([`harness`])
//! that measures direct, bare proxy and gateway in one run with `wrk` and
//! renders markdown tables ([`report`]). Entry point: `bench/run`.

pub mod bare;
pub mod bodies;
pub mod client;
pub mod gateway_config;
pub mod goals;
pub mod harness;
pub mod mock;
pub mod procs;
pub mod procstat;
pub mod report;
pub mod stats;
pub mod wire;
pub mod wrk;
