//! Switchboard controller library. The reconcilers, sources and gRPC
//! snapshot server arrive with the controller issue; today this crate only
//! fixes the binary's name and command line.

pub mod kube;
pub mod status;
