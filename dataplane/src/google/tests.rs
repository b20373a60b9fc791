//! The Google backends from their snapshot form, their token sources
//! against a local token endpoint and metadata server, their upstream
//! requests, and the data plane building them (and still refusing Azure
//! OpenAI until it is wired into the pipeline).

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use switchboard_proto as pb;

use super::*;
use crate::oauth::test_server::{TokenServer, fetch, form_fields};

const PRIVATE_KEY: &str = include_str!("../auth/testdata/rsa_private.pem");
const PUBLIC_KEY: &str = include_str!("../auth/testdata/rsa_public.pem");
const EMAIL: &str = "gateway@my-project.iam.gserviceaccount.com";

fn key(token_uri: &str) -> pb::GcpCredentials {
    pb::GcpCredentials {
        source: Some(pb::gcp_credentials::Source::ServiceAccountKey(
            pb::GcpServiceAccountKey {
                client_email: EMAIL.into(),
                private_key: PRIVATE_KEY.into(),
                private_key_id: "key-1".into(),
                token_uri: token_uri.into(),
            },
        )),
    }
}

fn settings(gcp: Option<pb::GcpCredentials>) -> pb::VertexSettings {
    pb::VertexSettings {
        project: "my-project".into(),
        region: "us-east5".into(),
        allowed_betas: None,
        gcp,
    }
}

/// The token endpoint: checks the signed assertion like Google does.
async fn google_token_server() -> TokenServer {
    TokenServer::start(|seen, n| {
        let fields = form_fields(&seen.body);
        let get = |k: &str| {
            fields
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
            return (400, r#"{"error":"unsupported_grant_type"}"#.into());
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[format!(
            "http://{}/token",
            seen.headers["host"].to_str().unwrap()
        )]);
        v.set_issuer(&[EMAIL]);
        v.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
        let decoded = jsonwebtoken::decode::<Value>(
            &get("assertion"),
            &DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(),
            &v,
        );
        match decoded {
            Ok(t) if t.claims["scope"] == SCOPE && t.header.kid.as_deref() == Some("key-1") => (
                200,
                format!(
                    r#"{{"access_token":"ya29.token-{n}","expires_in":3599,"token_type":"Bearer"}}"#
                ),
            ),
            _ => (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into(),
            ),
        }
    })
    .await
}

#[tokio::test]
async fn a_service_account_key_is_exchanged_for_a_cached_bearer_token() {
    let server = google_token_server().await;
    let b = VertexBackend::from_proto(
        "https://us-east5-aiplatform.googleapis.com/",
        &settings(Some(key(&format!("{}/token", server.url)))),
        &|_| None,
        fetch(),
    )
    .unwrap();
    let model = "claude-sonnet-4-20250514";
    let op = VertexOp::for_model(model, true, false);
    let betas = vec!["context-1m-2025-08-07".to_string()];
    let req = b
        .request(model, op, &betas, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        req.uri().to_string(),
        "https://us-east5-aiplatform.googleapis.com/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
    );
    let h = req.headers();
    assert_eq!(h[AUTHORIZATION], "Bearer ya29.token-1");
    assert!(h[AUTHORIZATION].is_sensitive());
    assert_eq!(h["anthropic-beta"], "context-1m-2025-08-07");
    assert_eq!(h["accept"], "text/event-stream");
    // The token is cached: a second request asks nothing.
    let req = b
        .request(
            "gemini-2.5-pro",
            VertexOp::GenerateContent,
            &betas,
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(req.headers()[AUTHORIZATION], "Bearer ya29.token-1");
    assert!(
        req.headers().get("anthropic-beta").is_none(),
        "Gemini: no betas"
    );
    assert_eq!(server.requests().len(), 1);
    let seen = &server.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/token")
    );
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(!format!("{b:?}").contains("PRIVATE"), "Debug hides the key");
}

#[tokio::test]
async fn a_refused_assertion_is_a_token_error_naming_the_oauth_code_only() {
    let server = TokenServer::start(|_, _| {
        (
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into(),
        )
    })
    .await;
    let b = VertexBackend::from_proto(
        "https://aiplatform.googleapis.com",
        &settings(Some(key(&format!("{}/token", server.url)))),
        &|_| None,
        fetch(),
    )
    .unwrap();
    let e = b
        .request(
            "gemini-2.5-pro",
            VertexOp::GenerateContent,
            &[],
            Bytes::new(),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("google_service_account"), "{text}");
    assert!(text.contains("answered 400: invalid_grant"), "{text}");
    assert!(!text.contains("BEGIN"), "{text}");
}

#[tokio::test]
async fn workload_identity_asks_the_metadata_server() {
    let server = TokenServer::start(|seen, n| {
        if seen.headers.get("metadata-flavor").map(|v| v.as_bytes()) != Some(b"Google") {
            return (403, "missing Metadata-Flavor".into());
        }
        (
            200,
            format!(r#"{{"access_token":"ya29.mds-{n}","expires_in":3599,"token_type":"Bearer"}}"#),
        )
    })
    .await;
    let host = server.url.trim_start_matches("http://").to_string();
    let env = move |name: &str| (name == "GCE_METADATA_HOST").then(|| host.clone());
    let gcp = pb::GcpCredentials {
        source: Some(pb::gcp_credentials::Source::WorkloadIdentity(
            pb::GcpWorkloadIdentity {
                service_account: String::new(),
            },
        )),
    };
    let b = VertexBackend::from_proto("http://127.0.0.1:9", &settings(Some(gcp)), &env, fetch())
        .unwrap();
    let req = b
        .request(
            "gemini-2.5-flash",
            VertexOp::StreamGenerateContent,
            &[],
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(req.headers()[AUTHORIZATION], "Bearer ya29.mds-1");
    assert_eq!(
        req.uri().to_string(),
        "http://127.0.0.1:9/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        server.requests()[0].path,
        "/computeMetadata/v1/instance/service-accounts/default/token"
    );
    let named = metadata::MetadataServer::new("metadata.google.internal", EMAIL).unwrap();
    assert_eq!(
        named.uri().to_string(),
        format!(
            "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/{EMAIL}/token"
        )
    );
    assert!(metadata::MetadataServer::new("evil.example/x", "default").is_err());
}

#[test]
fn a_bad_private_key_is_refused_when_the_backend_is_built() {
    let mut gcp = key("https://oauth2.googleapis.com/token");
    if let Some(pb::gcp_credentials::Source::ServiceAccountKey(k)) = gcp.source.as_mut() {
        k.private_key =
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".into();
    }
    let e = VertexBackend::from_proto(
        "https://aiplatform.googleapis.com",
        &settings(Some(gcp)),
        &|_| None,
        fetch(),
    )
    .unwrap_err();
    assert!(e.contains("is not a PEM RSA key"), "{e}");
    assert!(!e.contains("not a key"), "the key is never quoted: {e}");
}

#[test]
fn gemini_api_requests_carry_the_key_header() {
    let b = GeminiBackend::new(
        "https://generativelanguage.googleapis.com",
        Some(&Secret::new("AIzaSyExample")),
    )
    .unwrap();
    let req = b
        .request(
            "gemini-2.5-pro",
            GeminiOp::StreamGenerateContent,
            Bytes::new(),
        )
        .unwrap();
    assert_eq!(
        req.uri().to_string(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(req.headers()["x-goog-api-key"], "AIzaSyExample");
    assert!(req.headers()["x-goog-api-key"].is_sensitive());
    assert!(req.headers().get(AUTHORIZATION).is_none());
    assert!(!format!("{b:?}").contains("AIza"));
}

fn shared() -> crate::runtime::SharedState {
    crate::runtime::SharedState {
        upstreams: crate::upstream::Upstreams::new(Arc::new(crate::upstream::tls::client_config())),
        breakers: crate::routing::BreakerRegistry::default(),
        jwks: crate::auth::JwksStore::new(Arc::new(crate::auth::HttpJwksFetcher::new(Arc::new(
            crate::upstream::tls::client_config(),
        )))),
    }
}

fn one_backend(b: pb::Backend) -> pb::Snapshot {
    pb::Snapshot {
        version: "v".into(),
        backends: vec![b],
        routes: vec![],
    }
}

#[test]
fn the_data_plane_serves_vertex_and_gemini_backends() {
    use crate::runtime::RuntimeConfig;
    let vertex = pb::Backend {
        id: "ns/vertex".into(),
        provider: pb::ProviderKind::VertexAi as i32,
        endpoint: "https://aiplatform.googleapis.com".into(),
        vertex: Some(pb::VertexSettings {
            region: "global".into(),
            ..settings(None)
        }),
        ..Default::default()
    };
    let gemini = pb::Backend {
        id: "ns/gemini".into(),
        provider: pb::ProviderKind::Gemini as i32,
        endpoint: "https://generativelanguage.googleapis.com".into(),
        ..Default::default()
    };
    for b in [vertex.clone(), gemini] {
        let id = b.id.clone();
        if let Err(problems) = RuntimeConfig::build(&one_backend(b), &shared(), &|_| None) {
            panic!("{id}: {problems:?}");
        }
    }
    let no_settings = pb::Backend {
        vertex: None,
        ..vertex
    };
    let Err(problems) = RuntimeConfig::build(&one_backend(no_settings), &shared(), &|_| None)
    else {
        panic!("a Vertex backend without settings was accepted");
    };
    assert_eq!(
        problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["AIBackend/ns/vertex: a VertexAI backend needs its vertex settings"]
    );
}
