//! Prometheus metrics of the controller (listed in `docs/controller.md`).
//!
//! Label values are bounded: render results and push results are small
//! enums, problem kinds are resource kinds, and the snapshot version gauge
//! holds exactly one series (the version being served).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of render runs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RenderLabels {
    /// `ok` (every object's current generation rendered) or `partial` (some
    /// were refused; they serve their last accepted version or nothing).
    pub result: &'static str,
}

/// Labels of render problems.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProblemLabels {
    /// `AIBackend`, `AIRoute`, `Secret` or `source` (a file that does not parse).
    pub kind: &'static str,
}

/// Labels of snapshot pushes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    /// `sent` or `too_large` (over the message size limit, not sent).
    pub result: &'static str,
}

/// Labels of data-plane authentication decisions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    /// `allowed`, `unauthenticated`, `permission_denied` or `unavailable`
    /// (the token could not be checked, e.g. the API server did not answer).
    pub result: &'static str,
}

/// Labels of TLS certificate reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` (the new pair serves) or `error` (the last good pair keeps serving).
    pub result: &'static str,
}

/// Labels of status writes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusWriteLabels {
    /// `AIBackend` or `AIRoute`.
    pub kind: &'static str,
}

/// Labels of the snapshot info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// The snapshot version.
    pub version: String,
}

/// Every metric of the controller.
pub struct Metrics {
    registry: Registry,
    /// Render runs by result.
    pub renders: Family<RenderLabels, Counter>,
    /// Current problems by resource kind.
    pub render_problems: Family<ProblemLabels, Gauge>,
    /// Data planes with an open stream.
    pub connected_dataplanes: Gauge,
    /// Snapshots pushed to data planes, by result.
    pub pushes: Family<PushLabels, Counter>,
    /// Time from sending a snapshot to its ACK or NACK.
    pub push_latency: Histogram,
    /// ACKs received.
    pub acks: Counter,
    /// NACKs received.
    pub nacks: Counter,
    /// Encoded size of the current snapshot.
    pub snapshot_size_bytes: Gauge,
    /// 1 for the version of the current snapshot.
    pub snapshot_info: Family<VersionLabels, Gauge>,
    /// Snapshot streams by authentication decision.
    pub dataplane_auth: Family<AuthLabels, Counter>,
    /// TLS handshakes on the gRPC port that failed or timed out.
    pub tls_handshake_failures: Counter,
    /// Changes of the gRPC certificate files, by outcome.
    pub tls_reloads: Family<ReloadLabels, Counter>,
    /// Status writes (server-side applies) by kind, by this replica.
    pub status_writes: Family<StatusWriteLabels, Counter>,
    /// Events recorded by this replica.
    pub events: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `switchboard_controller` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard_controller");
        let renders = Family::<RenderLabels, Counter>::default();
        registry.register("renders", "Render runs by result", renders.clone());
        let render_problems = Family::<ProblemLabels, Gauge>::default();
        registry.register(
            "render_problems",
            "Current problems by resource kind",
            render_problems.clone(),
        );
        let connected_dataplanes = Gauge::default();
        registry.register(
            "connected_dataplanes",
            "Data planes with an open snapshot stream",
            connected_dataplanes.clone(),
        );
        let pushes = Family::<PushLabels, Counter>::default();
        registry.register(
            "snapshot_pushes",
            "Snapshots pushed to data planes by result",
            pushes.clone(),
        );
        let push_latency = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "push_latency_seconds",
            "Time from sending a snapshot to the data plane's ACK or NACK",
            push_latency.clone(),
        );
        let acks = Counter::default();
        registry.register("acks", "Snapshot ACKs received", acks.clone());
        let nacks = Counter::default();
        registry.register("nacks", "Snapshot NACKs received", nacks.clone());
        let snapshot_size_bytes = Gauge::default();
        registry.register(
            "snapshot_size_bytes",
            "Encoded size of the current snapshot",
            snapshot_size_bytes.clone(),
        );
        let snapshot_info = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "snapshot_info",
            "1 for the current snapshot version",
            snapshot_info.clone(),
        );
        let dataplane_auth = Family::<AuthLabels, Counter>::default();
        registry.register(
            "dataplane_auth",
            "Snapshot streams by data-plane authentication decision",
            dataplane_auth.clone(),
        );
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes on the gRPC port that failed or timed out",
            tls_handshake_failures.clone(),
        );
        let tls_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "tls_certificate_reloads",
            "Changes of the gRPC TLS certificate files by outcome",
            tls_reloads.clone(),
        );
        let status_writes = Family::<StatusWriteLabels, Counter>::default();
        registry.register(
            "status_writes",
            "Status writes (server-side applies) by kind",
            status_writes.clone(),
        );
        let events = Counter::default();
        registry.register("events", "Events recorded", events.clone());
        Self {
            registry,
            status_writes,
            events,
            renders,
            render_problems,
            connected_dataplanes,
            pushes,
            push_latency,
            acks,
            nacks,
            snapshot_size_bytes,
            snapshot_info,
            dataplane_auth,
            tls_handshake_failures,
            tls_reloads,
        }
    }

    /// Records the current snapshot's version and size.
    pub fn set_snapshot(&self, version: &str, size: usize) {
        self.snapshot_info.clear();
        self.snapshot_info
            .get_or_create(&VersionLabels {
                version: version.to_string(),
            })
            .set(1);
        self.snapshot_size_bytes
            .set(i64::try_from(size).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_info_holds_one_version() {
        let m = Metrics::new();
        m.set_snapshot("aaaa", 10);
        m.set_snapshot("bbbb", 20);
        let text = m.encode();
        assert!(
            text.contains("switchboard_controller_snapshot_info{version=\"bbbb\"} 1"),
            "{text}"
        );
        assert!(!text.contains("aaaa"), "{text}");
        assert!(
            text.contains("switchboard_controller_snapshot_size_bytes 20"),
            "{text}"
        );
    }
}
