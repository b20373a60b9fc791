//! Switchboard's Kubernetes API (`switchboard.dev/v1alpha1`) and the pure
//! renderer that turns resources and secrets into one routing snapshot.
