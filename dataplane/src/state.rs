//! Process-wide state handed to every request.

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::runtime::SharedState;
use crate::store::ConfigStore;

/// What request handling needs besides the request itself.
pub struct AppState {
    /// The serving configuration.
    pub store: ConfigStore,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// State kept across configurations (pools, breakers, key caches).
    pub shared: SharedState,
    /// Team rate limits and budgets.
    pub limiter: Arc<crate::limits::Limiter>,
    /// Live usage of the AITeams this process served.
    pub usage: Arc<crate::teams::UsageBook>,
    /// Callers already refused once (their first refusal is logged).
    pub first_refusals: crate::teams::FirstRefusals,
    /// Bounds on request bodies (deadlines, bytes buffered at once).
    pub bounds: crate::bounds::Bounds,
    /// Apply configurations without any route (`--allow-empty-config`).
    pub allow_empty_config: bool,
    /// Longest silence on a streamed answer before the client gets a
    /// keep-alive (`--stream-keepalive-interval`; zero: none), see
    /// [`crate::pipeline::keepalive`].
    pub stream_keepalive: std::time::Duration,
    /// Per-session usage, bounded ([`crate::sessions`]).
    pub sessions: Arc<crate::sessions::SessionTable>,
    /// Set when the server cuts the requests still running at the end of
    /// its shutdown grace period: they are recorded as `shutdown`, charged
    /// with what was seen, and their upstreams are not read on.
    pub cut: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Whether requests still running are being cut (see [`AppState::cut`]).
    pub fn cutting(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}
