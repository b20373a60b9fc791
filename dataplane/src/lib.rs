//! Switchboard data plane library: everything between the listener and the
//! upstream providers. `main.rs` is a thin shell around it.
