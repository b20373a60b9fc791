//! Switchboard benchmark harness: a fast mock upstream ([`mock`]), a bare
//! passthrough proxy ([`bare`]) as the floor, and the runner ([`harness`])
//! that measures direct, bare proxy and gateway in one run with `wrk` and
//! renders markdown tables ([`report`]). Entry point: `bench/run`.
//! The propagation benchmark ([`propagation`]) measures how fast a
//! configuration change reaches every data plane (`bench/run --propagation`).
//! The function order the data plane is linked with is profiled by
//! [`function_order_run`] (`bench/run --function-order`). Instructions per
//! request are counted under callgrind by [`instructions_run`]
//! (`bench/run --instructions`).

pub mod bare;
pub mod bodies;
pub mod callgrind_setup;
pub mod client;
pub mod function_order;
pub mod function_order_run;
pub mod gateway_config;
pub mod goals;
pub mod harness;
pub mod instructions;
pub mod instructions_run;
pub mod mock;
pub mod procs;
pub mod procstat;
pub mod propagation;
pub mod propagation_config;
pub mod propagation_report;
pub mod report;
pub mod run_info;
pub mod stats;
pub mod wire;
pub mod wrk;
