//! The admin port (9090): `/healthz` (the process is up), `/readyz` (a
//! snapshot has been rendered), `/metrics` (OpenMetrics text) and `/usage`
//! (the AITeams' usage reported by the data planes connected to this
//! replica, as JSON).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::fleet::Fleet;
use crate::metrics::Metrics;
use crate::pipeline::Rendered;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    /// The pipeline's output.
    pub rendered: watch::Receiver<Arc<Rendered>>,
    /// Connected data planes.
    pub fleet: Fleet,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// Answers one admin request: status, content type and body.
pub fn respond(path: &str, state: &AdminState) -> (StatusCode, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match path {
        "/healthz" => (StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" => {
            let rendered = state.rendered.borrow().clone();
            match &rendered.snapshot {
                Some(s) => (
                    StatusCode::OK,
                    TEXT,
                    format!(
                        "ready: snapshot {} ({} problems, {} data planes)\n",
                        s.version,
                        rendered.problems.len(),
                        state.fleet.len()
                    ),
                ),
                None => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    "no snapshot rendered yet\n".into(),
                ),
            }
        }
        "/metrics" => {
            state
                .metrics
                .connected_dataplanes
                .set(state.fleet.len() as i64);
            (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                state.metrics.encode(),
            )
        }
        "/usage" => {
            let now = crate::usage::now_ms();
            let records = state.fleet.usage().records(now);
            let teams = crate::usage::aggregate(&records, now);
            (
                StatusCode::OK,
                "application/json",
                serde_json::json!({ "teams": teams }).to_string(),
            )
        }
        _ => (StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, state: AdminState, shutdown: impl Future<Output = ()>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let (status, content_type, body) = respond(req.uri().path(), &state);
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            async move { Ok::<_, Infallible>(resp) }
        });
        let conn = graceful.watch(
            builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::Snapshot;

    #[test]
    fn ready_once_a_snapshot_is_rendered() {
        let (tx, rx) = watch::channel(Arc::new(Rendered::default()));
        let state = AdminState {
            rendered: rx,
            fleet: Fleet::new(),
            metrics: Arc::new(Metrics::new()),
        };
        assert_eq!(respond("/healthz", &state).0, StatusCode::OK);
        assert_eq!(
            respond("/readyz", &state).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        tx.send_replace(Arc::new(Rendered {
            snapshot: Some(Arc::new(Snapshot {
                version: "abc".into(),
                ..Default::default()
            })),
            ..Default::default()
        }));
        let (status, _, body) = respond("/readyz", &state);
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("abc"), "{body}");
        let (_, _, metrics) = respond("/metrics", &state);
        assert!(
            metrics.contains("switchboard_controller_connected_dataplanes 0"),
            "{metrics}"
        );
        // The usage of the data planes of this replica, in the status.usage shape.
        let reg = state.fleet.connect("dp-1", "");
        state.fleet.report_usage(
            &reg,
            switchboard_proto::UsageReport {
                instance: "i1".into(),
                sequence: 1,
                teams: vec![switchboard_proto::TeamUsage {
                    team: "ns/t".into(),
                    requests: 4,
                    minute_end_unix_ms: u64::MAX,
                    ..Default::default()
                }],
            },
        );
        let (status, kind, body) = respond("/usage", &state);
        assert_eq!((status, kind), (StatusCode::OK, "application/json"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["teams"]["ns/t"]["requestsThisMinute"], 4, "{v}");
        assert_eq!(respond("/nope", &state).0, StatusCode::NOT_FOUND);
    }
}
