//! The Kubernetes source (`--source kube`): watches AIBackend, AIRoute and
//! the Secrets they reference and publishes them as one inventory.
//!
//! Hook for the Kubernetes issue: until that lands, [`run`] fails at once
//! with [`Error::KubeSourceNotBuilt`].

use std::sync::Arc;

use switchboard_api::Inventory;
use tokio::sync::watch;

use crate::error::Error;

/// Publishes the cluster's objects into `inventory` until the process ends.
pub async fn run(inventory: watch::Sender<Arc<Inventory>>) -> Result<(), Error> {
    drop(inventory);
    Err(Error::KubeSourceNotBuilt)
}
