//! The admin port: `/healthz` (the process is up), `/readyz` (a configuration
//! with at least one route is being served), `/metrics` (Prometheus text
//! format), `/config` (the serving version; no secrets), `/sessions` (the
//! heaviest agent sessions per team, [`crate::sessions`]), `/usage` (this
//! process's live usage of every AITeam it served).

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::response::{self, ResponseBody};
use crate::state::AppState;

/// Handles one admin request.
pub async fn handle<B>(state: Arc<AppState>, req: Request<B>) -> Response<ResponseBody> {
    match req.uri().path() {
        "/healthz" => response::text(StatusCode::OK, "ok\n"),
        "/readyz" => match state.store.load() {
            Some(cfg) if cfg.routes.is_empty() => response::text_owned(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: configuration version {} has no routes\n",
                    cfg.version
                ),
            ),
            Some(cfg) => {
                let version = &cfg.version;
                let source = state.store.source().map_or("unknown", |s| s.label());
                let mut resp = Response::new(response::full(format!(
                    "ready: source {source}, version {version}\n"
                )));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                resp
            }
            None => response::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no configuration applied yet\n",
            ),
        },
        "/metrics" => {
            // Breaker state changes on the request path; it is read at scrape time.
            let now = tokio::time::Instant::now();
            state.metrics.breaker_state.clear();
            for (backend, breaker_state) in state.shared.breakers.states(now) {
                state
                    .metrics
                    .breaker_state
                    .get_or_create(&crate::metrics::BackendLabels {
                        backend: backend.into(),
                    })
                    .set(breaker_state.metric_value());
            }
            let mut resp = Response::new(response::full(state.metrics.encode()));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        "/config" => {
            let body = match state.store.load() {
                Some(cfg) => serde_json::json!({
                    "version": cfg.version,
                    "routes": cfg.routes.iter().map(|r| serde_json::json!({
                        "id": r.id,
                        "pathPrefix": if r.path_prefix.is_empty() { "/" } else { r.path_prefix.as_str() },
                        "hostnames": r.hostnames,
                        "models": r.model_names,
                        "unmappedCallers": r.teams.as_ref().map(|t| t.unmapped_callers()),
                        "byok": r.byok.label(),
                    })).collect::<Vec<_>>(),
                    "backends": backend_summaries(&cfg),
                }),
                None => serde_json::json!({"version": null}),
            };
            response::json(StatusCode::OK, body.to_string())
        }
        "/sessions" => {
            let query = |name: &str| {
                url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            let limit = match query("limit").map(|l| l.parse::<usize>()) {
                None => 20,
                Some(Ok(n)) if (1..=1000).contains(&n) => n,
                Some(_) => {
                    return response::text(
                        StatusCode::BAD_REQUEST,
                        "limit must be a number from 1 to 1000\n",
                    );
                }
            };
            let report =
                state
                    .sessions
                    .report(query("route").as_deref(), query("team").as_deref(), limit);
            response::json(StatusCode::OK, report.to_string())
        }
        "/usage" => {
            let body = serde_json::json!({
                "instance": state.usage.instance(),
                "teams": state.usage.usage(),
            });
            response::json(StatusCode::OK, body.to_string())
        }
        _ => response::text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Backends for `/config`: id and provider, the credential only as a marker.
fn backend_summaries(cfg: &crate::runtime::RuntimeConfig) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = cfg
        .backends
        .values()
        .map(|b| {
            serde_json::json!({
                "id": b.id,
                "provider": b.provider.label(),
                "credential": if b.provider.has_credential() { "<redacted>" } else { "none" },
            })
        })
        .collect();
    out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    out
}
