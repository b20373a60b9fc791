//! The Kubernetes edge: the watch source ([`source`], over the pure
//! [`index`]) and the leader Lease ([`lease`]).

pub mod index;
pub mod source;
pub mod lease;
