//! One set of TLS roots for every outgoing call: a private CA named by `SSL_CERT_FILE` is trusted
//! for JWKS fetches exactly as for provider calls (the data plane builds one rustls client
//! configuration from the system roots and shares it).

use serde_json::json;
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::{ConfigBuilder, rule};
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::jwt_issuer::tls_ca_path;
use switchboard_e2e::stack::gpt_test_backend;
use switchboard_e2e::stack::{OPENAI_KEY, OPENAI_KEY_ENV, chat_body};
use switchboard_e2e::{Flavor, Gateway, JwtIssuer, MockUpstream, post_json, write_config};

#[tokio::test]
async fn a_jwks_endpoint_behind_a_private_ca_is_trusted_like_upstreams() {
    let issuer = JwtIssuer::start_tls().await;
    assert!(issuer.jwks_uri().starts_with("https://"));
    let upstream = MockUpstream::start(Flavor::OpenAI).await;
    let config = ConfigBuilder::new()
        .backend("primary", gpt_test_backend(&upstream.url()))
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "auth": {"jwt": {
                    "issuer": issuer.issuer(),
                    "audiences": [issuer.audience()],
                    "jwksUri": issuer.jwks_uri(),
                }},
                "rules": [rule(&["gpt-*"], &["primary"])],
            }),
        );
    let dir = temp_dir("tls-roots");
    let ca = tls_ca_path();
    let gateway = Gateway::start(
        &write_config(&dir, &config.to_yaml()),
        &[
            (OPENAI_KEY_ENV, OPENAI_KEY),
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ],
    )
    .await;
    let token = issuer.mint(json!({}));
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gateway.base_url()),
        &[("authorization", &format!("Bearer {token}"))],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}\n{}", json_body(&body), gateway.log());
    assert_eq!(issuer.jwks_fetches(), 1);
}
