//! A CONNECT target that is not intercepted: the proxy connects to it and
//! copies bytes both ways untouched until either side closes or no byte
//! moved for the idle timeout.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::io::{LastActive, Touched};

/// Why a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEnd {
    /// A side closed (or failed).
    Closed,
    /// No byte moved for the idle timeout.
    Idle,
}

/// Connects to `host:port` within `timeout`.
pub async fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Copies between `client` and `upstream` until one closes or no byte
/// moved either way for `idle`. (At shutdown a tunnel runs on until the
/// listener's grace period ends.)
pub async fn relay<C>(client: C, upstream: TcpStream, idle: Duration) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let last = LastActive::new();
    let mut client = Touched::new(client, Arc::clone(&last));
    let mut upstream = Touched::new(upstream, Arc::clone(&last));
    let end = {
        let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
        tokio::pin!(copy);
        loop {
            let deadline = last.at() + idle;
            tokio::select! {
                _ = &mut copy => break TunnelEnd::Closed,
                () = tokio::time::sleep_until(deadline) => {
                    if last.at() + idle <= tokio::time::Instant::now() {
                        break TunnelEnd::Idle;
                    }
                }
            }
        }
    };
    let _ = client.shutdown().await;
    let _ = upstream.shutdown().await;
    end
}
