//! How a replica's Kubernetes tasks run together and stop: the *holders*
//! (the leader Lease and this replica's data-plane view), which must give up
//! what they hold when they stop, and the *workers* (the status writer, the
//! usage writer, the view merger), which run until shutdown or until one of
//! them ends.
//!
//! A holder is only ever stopped by its stop signal, never by being dropped:
//! dropped in the middle, a held Lease stays held until it expires (no
//! replica leads meanwhile) and a view stays until the leader collects it.
//! Shutdown and a worker that ends as a consequence of it (the view merger
//! ends when the gRPC service, shutting down too, drops the fleet) can
//! arrive in the same poll, in either order; both stop the holders the same
//! way.

use std::future::Future;

use tokio::sync::watch;

/// Runs `workers` until `shutdown` turns true (or its sender is gone) or
/// the workers end, with the holders `holders` makes from a stop signal
/// alongside; then turns the stop signal on and returns once the holders
/// have ended, that is, given up what they hold.
pub async fn run<H, W>(
    mut shutdown: watch::Receiver<bool>,
    holders: impl FnOnce(watch::Receiver<bool>) -> H,
    workers: W,
) where
    H: Future<Output = ()>,
    W: Future<Output = ()>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let holders = holders(stop_rx);
    let workers = async {
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => {}
            () = workers => {}
        }
        stop_tx.send_replace(true);
    };
    tokio::join!(holders, workers);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A holder that, once stopped, gives up what it holds over a few
    /// polls (as a request to the API server would) and counts it.
    async fn holder(mut stop: watch::Receiver<bool>, released: Arc<AtomicUsize>) {
        let _ = stop.wait_for(|s| *s).await;
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        released.fetch_add(1, Ordering::SeqCst);
    }

    fn two_holders(
        released: &Arc<AtomicUsize>,
    ) -> impl FnOnce(watch::Receiver<bool>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    {
        let released = released.clone();
        move |stop| {
            Box::pin(async move {
                tokio::join!(
                    holder(stop.clone(), released.clone()),
                    holder(stop, released)
                );
            })
        }
    }

    #[tokio::test]
    async fn shutdown_stops_the_workers_and_lets_every_holder_release() {
        let released = Arc::new(AtomicUsize::new(0));
        let (shutdown_tx, shutdown) = watch::channel(false);
        let task = tokio::spawn({
            let released = released.clone();
            async move { run(shutdown, two_holders(&released), std::future::pending()).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(
            released.load(Ordering::SeqCst),
            0,
            "nothing given up before shutdown"
        );
        shutdown_tx.send_replace(true);
        task.await.expect("the tasks end after shutdown");
        assert_eq!(released.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_worker_that_ends_at_shutdown_does_not_cut_the_holders_short() {
        // The view merger ends when the fleet closes, which happens at
        // shutdown: seen before the shutdown signal, it must not drop the
        // holders mid-release.
        let released = Arc::new(AtomicUsize::new(0));
        let (_shutdown_tx, shutdown) = watch::channel(false);
        run(shutdown, two_holders(&released), std::future::ready(())).await;
        assert_eq!(released.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_gone_shutdown_sender_counts_as_shutdown() {
        let released = Arc::new(AtomicUsize::new(0));
        let (shutdown_tx, shutdown) = watch::channel(false);
        drop(shutdown_tx);
        run(shutdown, two_holders(&released), std::future::pending()).await;
        assert_eq!(released.load(Ordering::SeqCst), 2);
    }
}
