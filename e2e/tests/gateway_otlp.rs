//! `--otlp-endpoint`: request spans with GenAI attributes reach an OTLP/gRPC
//! collector (a fake one here), and a gateway without a reachable collector
//! still serves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use switchboard_e2e::config::ConfigBuilder;
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Gateway, post_json, wait_until, write_config};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Serves a tonic service over HTTP/2 with plain hyper (no tonic router needed).
fn serve_grpc(listener: tokio::net::TcpListener, svc: TraceServiceServer<Collector>) {
    use tonic::codegen::Service as _;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = svc.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let mut svc = svc.clone();
                        async move { svc.call(req.map(tonic::body::Body::new)).await }
                    });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
}

fn attr(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

fn config() -> String {
    ConfigBuilder::new()
        .backend("mock", json!({"provider": "Mock"}))
        .route(
            "main",
            json!({"pathPrefix": "/", "rules": [{"backends": [{"name": "mock"}]}], "teams": {"teams": [{"name": "web"}]}}),
        )
        .to_yaml()
}

#[tokio::test]
async fn request_spans_with_gen_ai_attributes_reach_the_collector() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::default();
    let spans = collector.spans.clone();
    serve_grpc(listener, TraceServiceServer::new(collector));
    let dir = temp_dir("otlp");
    let path = write_config(&dir, &config());
    let g = Gateway::start_with_args(&path, &[], &["--otlp-endpoint", &endpoint]).await;
    // Claude Code names its session; the span carries it.
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", g.base_url()),
        &[(
            "x-claude-code-session-id",
            "0f7f8919-2eac-4385-a9f8-0fadf4c343ac",
        )],
        &chat_body("gpt-4o", false),
    )
    .await;
    assert_eq!(status, 200);
    let usage = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["usage"].clone();
    // The batch exporter sends within its schedule delay (5s by default).
    wait_until(
        Duration::from_secs(20),
        "a request span exported",
        || async {
            spans
                .lock()
                .unwrap()
                .iter()
                .any(|s| s.name == "chat gpt-4o")
        },
    )
    .await;
    let span = spans
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.name == "chat gpt-4o")
        .cloned()
        .unwrap();
    assert_eq!(
        attr(&span, "gen_ai.operation.name"),
        Some(AnyValue::StringValue("chat".into()))
    );
    assert_eq!(
        attr(&span, "gen_ai.request.model"),
        Some(AnyValue::StringValue("gpt-4o".into()))
    );
    assert_eq!(
        attr(&span, "gen_ai.provider.name"),
        Some(AnyValue::StringValue("mock".into()))
    );
    assert_eq!(
        attr(&span, "switchboard.team"),
        Some(AnyValue::StringValue("unknown".into()))
    );
    assert_eq!(
        attr(&span, "switchboard.session"),
        Some(AnyValue::StringValue(
            "0f7f8919-2eac-4385-a9f8-0fadf4c343ac".into()
        ))
    );
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(AnyValue::IntValue(200))
    );
    assert_eq!(
        attr(&span, "gen_ai.usage.output_tokens"),
        Some(AnyValue::IntValue(
            usage["completion_tokens"].as_i64().unwrap()
        ))
    );
}

#[tokio::test]
async fn an_unreachable_collector_does_not_affect_requests() {
    let dir = temp_dir("otlp-down");
    let path = write_config(&dir, &config());
    let g = Gateway::start_with_args(&path, &[], &["--otlp-endpoint", "http://127.0.0.1:1"]).await;
    for _ in 0..3 {
        let (status, _, _) = post_json(
            &format!("{}/v1/chat/completions", g.base_url()),
            &[],
            &chat_body("gpt-4o", false),
        )
        .await;
        assert_eq!(status, 200);
    }
}
