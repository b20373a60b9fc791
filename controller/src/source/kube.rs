//! The Kubernetes source (`--source kube`): watches AIBackend, AIRoute and
//! the Secrets they reference and publishes them as one inventory. The
//! watches live in [`crate::kube::source`]; this is the source-side hook.

use std::sync::Arc;

use switchboard_api::Inventory;
use tokio::sync::watch;

use crate::error::Error;

/// Publishes the objects of `namespaces` (all when empty) into `inventory`
/// until the process ends.
pub async fn run(
    client: ::kube::Client,
    namespaces: Vec<String>,
    inventory: watch::Sender<Arc<Inventory>>,
) -> Result<(), Error> {
    crate::kube::source::run(client, namespaces, inventory).await?;
    Ok(())
}
