//! The Bedrock backend from its snapshot form, and its upstream requests.

use http::HeaderMap;
use serde_json::json;

use super::*;
use crate::aws::fetch::{BoxFuture, Fetch};

struct Offline;
impl Fetch for Offline {
    fn fetch(&self, _: Request<Bytes>) -> BoxFuture<'_, Result<(StatusCode, Bytes), String>> {
        Box::pin(async { Err("offline".to_string()) })
    }
}

fn settings(aws: Option<pb::aws_credentials::Source>) -> pb::BedrockSettings {
    pb::BedrockSettings {
        region: "us-east-1".into(),
        api: pb::BedrockApi::Auto as i32,
        allowed_betas: None,
        aws: aws.map(|s| pb::AwsCredentials { source: Some(s) }),
    }
}

fn keys() -> pb::aws_credentials::Source {
    pb::aws_credentials::Source::AccessKey(pb::AwsAccessKey {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "secret".into(),
        session_token: String::new(),
    })
}

#[tokio::test]
async fn signed_requests_name_the_model_and_operation() {
    let b = BedrockBackend::from_proto(
        "https://bedrock-runtime.us-east-1.amazonaws.com/",
        &settings(Some(keys())),
        None,
        &|_| None,
        Arc::new(Offline),
    )
    .unwrap();
    let model = "us.anthropic.claude-sonnet-4-20250514-v1:0";
    assert_eq!(b.api_for(model), BedrockApi::InvokeModel);
    let req = b
        .request(
            BedrockApi::InvokeModel,
            model,
            true,
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    assert_eq!(
        req.uri().to_string(),
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream"
    );
    let h = req.headers();
    assert_eq!(h["accept"], "application/vnd.amazon.eventstream");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["host"], "bedrock-runtime.us-east-1.amazonaws.com");
    let auth = h["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="),
        "{auth}"
    );
    assert!(h.get("x-amz-security-token").is_none());
}

#[tokio::test]
async fn an_api_key_is_a_bearer_and_none_is_unauthenticated() {
    let b = BedrockBackend::from_proto(
        "http://127.0.0.1:9/prefix",
        &settings(None),
        Some(&Secret::new("ABSKkey")),
        &|_| None,
        Arc::new(Offline),
    )
    .unwrap();
    let req = b
        .request(
            BedrockApi::Converse,
            "amazon.nova-pro-v1:0",
            false,
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        req.uri().to_string(),
        "http://127.0.0.1:9/prefix/model/amazon.nova-pro-v1%3A0/converse"
    );
    assert_eq!(req.headers()["authorization"], "Bearer ABSKkey");
    assert_eq!(req.headers()["accept"], "application/json");
    let open = BedrockBackend::from_proto(
        "http://127.0.0.1:9",
        &settings(None),
        None,
        &|_| None,
        Arc::new(Offline),
    )
    .unwrap();
    let req = open
        .request(BedrockApi::Converse, "m", true, Bytes::new())
        .await
        .unwrap();
    assert!(req.headers().get("authorization").is_none());
}

#[tokio::test]
async fn missing_environment_and_failing_credentials_are_reported() {
    let irsa = settings(Some(pb::aws_credentials::Source::WebIdentity(
        pb::AwsWebIdentity::default(),
    )));
    let e = BedrockBackend::from_proto("https://x", &irsa, None, &|_| None, Arc::new(Offline))
        .unwrap_err();
    assert!(e.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{e}");
    let pod = settings(Some(pb::aws_credentials::Source::PodIdentity(
        pb::AwsPodIdentity {},
    )));
    let env = |n: &str| {
        (n == "AWS_CONTAINER_CREDENTIALS_FULL_URI").then(|| "http://127.0.0.1:9/creds".to_string())
    };
    let b = BedrockBackend::from_proto("https://x", &pod, None, &env, Arc::new(Offline)).unwrap();
    let e = b
        .request(BedrockApi::Converse, "m", false, Bytes::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("offline"), "{e}");
    assert!(
        BedrockBackend::from_proto(
            "ftp://x",
            &settings(None),
            None,
            &|_| None,
            Arc::new(Offline)
        )
        .is_err()
    );
}

#[test]
fn betas_use_the_allowlist_or_the_default() {
    let mut h = HeaderMap::new();
    h.append(
        "anthropic-beta",
        HeaderValue::from_static("claude-code-20250219,interleaved-thinking-2025-05-14"),
    );
    h.append(
        "anthropic-beta",
        HeaderValue::from_static("context-1m-2025-08-07"),
    );
    let mut s = settings(None);
    let b =
        BedrockBackend::from_proto("https://x", &s, None, &|_| None, Arc::new(Offline)).unwrap();
    assert_eq!(
        b.betas(&h, Some(&json!(["effort-2025-11-24"]))),
        [
            "interleaved-thinking-2025-05-14",
            "context-1m-2025-08-07",
            "effort-2025-11-24"
        ]
    );
    s.allowed_betas = Some(pb::BetaList {
        flags: vec!["claude-code-20250219".into()],
    });
    let b =
        BedrockBackend::from_proto("https://x", &s, None, &|_| None, Arc::new(Offline)).unwrap();
    assert_eq!(b.betas(&h, None), ["claude-code-20250219"]);
}

#[test]
fn errors_reach_the_client_in_its_dialect() {
    let mut h = HeaderMap::new();
    h.insert(
        "x-amzn-errortype",
        HeaderValue::from_static("ThrottlingException:http://internal.amazon.com/"),
    );
    let (status, body) = client_error(
        Dialect::Anthropic,
        429,
        &h,
        br#"{"message":"Too many requests"}"#,
    );
    assert_eq!(status, 429);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Too many requests"}})
    );
    let (status, body) = client_error(
        Dialect::OpenAI,
        424,
        &HeaderMap::new(),
        br#"{"message":"model failed","__type":"ModelErrorException"}"#,
    );
    assert_eq!(status, 502);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["type"],
        "server_error"
    );
}
