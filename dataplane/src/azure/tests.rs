//! The Azure backend from its snapshot form, its URLs and credentials, and
//! the Entra token sources against a local token endpoint.

use bytes::Bytes;
use http::header::AUTHORIZATION;
use switchboard_proto as pb;

use super::*;
use crate::oauth::test_server::{TempFile, TokenServer, fetch, form_fields};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000000-0000-0000-0000-000000000001";

fn settings(
    api: pb::AzureApi,
    version: &str,
    entra: Option<pb::azure_credentials::Source>,
) -> pb::AzureSettings {
    pb::AzureSettings {
        api: api as i32,
        api_version: version.into(),
        entra: entra.map(|s| pb::AzureCredentials { source: Some(s) }),
    }
}

fn field(body: &str, name: &str) -> String {
    form_fields(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

async fn entra_server() -> TokenServer {
    TokenServer::start(|seen, n| {
        let ok = field(&seen.body, "grant_type") == "client_credentials"
            && field(&seen.body, "scope") == entra::SCOPE
            && field(&seen.body, "client_id") == CLIENT
            && (field(&seen.body, "client_secret") == "s3cret"
                || (field(&seen.body, "client_assertion_type") == entra::JWT_BEARER_ASSERTION
                    && field(&seen.body, "client_assertion") == "k8s-sa-token"));
        if ok {
            (200, format!(r#"{{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0.entra-{n}"}}"#))
        } else {
            (401, r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: x"}"#.into())
        }
    })
    .await
}

#[tokio::test]
async fn urls_of_both_api_families() {
    let v1 = AzureBackend::from_proto(
        "https://res.openai.azure.com/",
        &settings(pb::AzureApi::V1, "", None),
        Some(&Secret::new("azure-key")),
        &|_| None,
        fetch(),
    )
    .unwrap();
    assert_eq!(
        v1.uri("prod-gpt4o", AzureOp::ChatCompletions)
            .unwrap()
            .to_string(),
        "https://res.openai.azure.com/openai/v1/chat/completions"
    );
    assert_eq!(
        v1.uri("prod-gpt4o", AzureOp::Responses)
            .unwrap()
            .to_string(),
        "https://res.openai.azure.com/openai/v1/responses"
    );
    let req = v1
        .request("prod-gpt4o", AzureOp::ChatCompletions, true, Bytes::new())
        .await
        .unwrap();
    assert_eq!(req.headers()["api-key"], "azure-key");
    assert!(req.headers()["api-key"].is_sensitive());
    assert!(req.headers().get(AUTHORIZATION).is_none());
    assert_eq!(req.headers()["accept"], "text/event-stream");
    assert!(!format!("{v1:?}").contains("azure-key"));

    let preview = AzureBackend::from_proto(
        "https://res.openai.azure.com",
        &settings(pb::AzureApi::V1, "preview", None),
        None,
        &|_| None,
        fetch(),
    )
    .unwrap();
    assert_eq!(
        preview.uri("d", AzureOp::Responses).unwrap().to_string(),
        "https://res.openai.azure.com/openai/v1/responses?api-version=preview"
    );
    let classic = AzureBackend::from_proto(
        "https://res.openai.azure.com",
        &settings(pb::AzureApi::Deployments, "", None),
        None,
        &|_| None,
        fetch(),
    )
    .unwrap();
    assert_eq!(
        classic
            .uri("prod-gpt4o", AzureOp::ChatCompletions)
            .unwrap()
            .to_string(),
        "https://res.openai.azure.com/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(
        classic
            .uri("prod-gpt4o", AzureOp::Responses)
            .unwrap()
            .to_string(),
        "https://res.openai.azure.com/openai/responses?api-version=2024-10-21"
    );
}

#[tokio::test]
async fn client_credentials_give_a_cached_bearer_token() {
    let server = entra_server().await;
    let b = AzureBackend::from_proto(
        "https://res.openai.azure.com",
        &settings(
            pb::AzureApi::V1,
            "",
            Some(pb::azure_credentials::Source::ClientSecret(
                pb::AzureClientSecret {
                    tenant_id: TENANT.into(),
                    client_id: CLIENT.into(),
                    client_secret: "s3cret".into(),
                    authority_host: server.url.clone(),
                },
            )),
        ),
        Some(&Secret::new("ignored-when-entra-is-set")),
        &|_| None,
        fetch(),
    )
    .unwrap();
    for _ in 0..2 {
        let req = b
            .request("d", AzureOp::ChatCompletions, false, Bytes::new())
            .await
            .unwrap();
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer eyJ0.entra-1");
        assert!(req.headers().get("api-key").is_none());
    }
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "cached");
    assert_eq!(seen[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert!(!format!("{b:?}").contains("s3cret"));

    let wrong = AzureBackend::from_proto(
        "https://res.openai.azure.com",
        &settings(
            pb::AzureApi::V1,
            "",
            Some(pb::azure_credentials::Source::ClientSecret(
                pb::AzureClientSecret {
                    tenant_id: TENANT.into(),
                    client_id: CLIENT.into(),
                    client_secret: "wrong".into(),
                    authority_host: server.url.clone(),
                },
            )),
        ),
        None,
        &|_| None,
        fetch(),
    )
    .unwrap();
    let e = wrong
        .request("d", AzureOp::ChatCompletions, false, Bytes::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("answered 401: invalid_client (AADSTS7000215)"),
        "{e}"
    );
    assert!(!e.contains("wrong") && !e.contains("Trace"), "{e}");
}

#[tokio::test]
async fn workload_identity_federation_reads_the_token_file_for_every_fetch() {
    let server = entra_server().await;
    let token = TempFile::new("federated", "k8s-sa-token\n");
    let (url, path) = (server.url.clone(), token.0.display().to_string());
    let env = move |name: &str| match name {
        "AZURE_CLIENT_ID" => Some(CLIENT.to_string()),
        "AZURE_TENANT_ID" => Some(TENANT.to_string()),
        "AZURE_FEDERATED_TOKEN_FILE" => Some(path.clone()),
        "AZURE_AUTHORITY_HOST" => Some(format!("{url}/")),
        _ => None,
    };
    let b = AzureBackend::from_proto(
        "https://res.openai.azure.com",
        &settings(
            pb::AzureApi::V1,
            "",
            Some(pb::azure_credentials::Source::WorkloadIdentity(
                pb::AzureWorkloadIdentity::default(),
            )),
        ),
        None,
        &env,
        fetch(),
    )
    .unwrap();
    let req = b
        .request("d", AzureOp::Responses, false, Bytes::new())
        .await
        .unwrap();
    assert_eq!(req.headers()[AUTHORIZATION], "Bearer eyJ0.entra-1");
    assert_eq!(
        server.requests()[0].path,
        format!("/{TENANT}/oauth2/v2.0/token")
    );

    let missing = AzureBackend::from_proto(
        "https://res.openai.azure.com",
        &settings(
            pb::AzureApi::V1,
            "",
            Some(pb::azure_credentials::Source::WorkloadIdentity(
                pb::AzureWorkloadIdentity::default(),
            )),
        ),
        None,
        &|_| None,
        fetch(),
    )
    .unwrap_err();
    assert!(missing.contains("AZURE_CLIENT_ID is not set"), "{missing}");
}
