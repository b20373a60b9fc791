//! The Kubernetes edge: the watch source and the leader Lease.
