//! The Kubernetes edge: the watch source ([`source`], over the pure
//! [`index`]) and the leader Lease ([`lease`]).

pub mod index;
pub mod lease;
pub mod source;
