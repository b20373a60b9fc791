//! The Kubernetes edge: the watch source ([`source`], over the pure
//! [`index`]), the leader Lease ([`lease`]), the data-plane views the
//! replicas share ([`views`]), how the tasks holding those two stop
//! ([`holders`]) and the RBAC the controller needs ([`rbac`]).

pub mod holders;
pub mod index;
pub mod lease;
pub mod rbac;
pub mod source;
pub mod views;
