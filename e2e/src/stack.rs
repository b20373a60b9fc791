//! A standard end-to-end stack: four mock upstreams, a JWT issuer and the gateway on a config that
//! routes between them. Each test starts its own stack, so tests are isolated (own breakers, metrics).
//!
//! Routing of the standard config (route `main`, prefix `/`, JWT or API-key auth):
//! - `gpt-*` → `primary` (OpenAI) then `secondary` (OpenAI); alias `fast` → `gpt-test`
//! - `claude-*` → `anthropic` (Anthropic)
//! - `small-*` → `primary`, context fallback → `big` (OpenAI)

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::config::{ConfigBuilder, backend_spec, rule};
use crate::harness::{Gateway, temp_dir, write_config};
use crate::jwt_issuer::JwtIssuer;
use crate::mock_upstream::{MockUpstream, RecordedRequest};
use crate::wire::Flavor;

/// Env var holding the OpenAI upstream key.
pub const OPENAI_KEY_ENV: &str = "SWITCHBOARD_E2E_OPENAI_KEY";

/// The backend most tests route to: an OpenAI-format mock at `endpoint`
/// serving `gpt-test`, with its key from [`OPENAI_KEY_ENV`].
pub fn gpt_test_backend(endpoint: &str) -> serde_json::Value {
    backend_spec(Flavor::OpenAI, endpoint, OPENAI_KEY_ENV, &["gpt-test"])
}
/// The OpenAI upstream key the gateway must send.
pub const OPENAI_KEY: &str = "sk-upstream-openai-e2e";
/// Env var holding the Anthropic upstream key.
pub const ANTHROPIC_KEY_ENV: &str = "SWITCHBOARD_E2E_ANTHROPIC_KEY";
/// The Anthropic upstream key the gateway must send.
pub const ANTHROPIC_KEY: &str = "sk-ant-upstream-e2e";
/// Env var holding the static client API key.
pub const CLIENT_KEY_ENV: &str = "SWITCHBOARD_E2E_CLIENT_KEY";
/// The static client API key accepted by the route.
pub const CLIENT_KEY: &str = "sb-client-key-e2e";
/// `maxRequestBodyBytes` of the standard route.
pub const MAX_BODY_BYTES: usize = 65_536;
/// `retry.retryAfterCap` of the standard route, in seconds.
pub const RETRY_AFTER_CAP_SECS: u64 = 2;
/// Header the `sub` claim is forwarded in.
pub const FORWARDED_SUB_HEADER: &str = "x-switchboard-user";

/// Mocks, issuer and a running gateway.
#[derive(Debug)]
pub struct Stack {
    /// First OpenAI backend (`primary`).
    pub primary: MockUpstream,
    /// Second OpenAI backend (`secondary`).
    pub secondary: MockUpstream,
    /// Anthropic backend (`anthropic`).
    pub anthropic: MockUpstream,
    /// Context-fallback OpenAI backend (`big`).
    pub big: MockUpstream,
    /// JWT issuer trusted by the route.
    pub issuer: JwtIssuer,
    /// Folder holding `config.yaml`.
    pub dir: PathBuf,
    /// The gateway process.
    pub gateway: Gateway,
}

/// The standard configuration for the given mocks and issuer (see the module docs).
pub fn standard_config(
    primary: &str,
    secondary: &str,
    anthropic: &str,
    big: &str,
    issuer: &JwtIssuer,
) -> ConfigBuilder {
    standard_backends(primary, secondary, anthropic, big).route("main", standard_route(issuer))
}

/// The four standard backends without any route.
pub fn standard_backends(
    primary: &str,
    secondary: &str,
    anthropic: &str,
    big: &str,
) -> ConfigBuilder {
    ConfigBuilder::new()
        .backend(
            "primary",
            backend_spec(
                Flavor::OpenAI,
                primary,
                OPENAI_KEY_ENV,
                &["gpt-test", "small-model"],
            ),
        )
        .backend("secondary", gpt_test_backend(secondary))
        .backend(
            "anthropic",
            backend_spec(
                Flavor::Anthropic,
                anthropic,
                ANTHROPIC_KEY_ENV,
                &["claude-test"],
            ),
        )
        .backend(
            "big",
            backend_spec(Flavor::OpenAI, big, OPENAI_KEY_ENV, &["small-model"]),
        )
}

/// The spec of the standard route `main`.
pub fn standard_route(issuer: &JwtIssuer) -> Value {
    let mut small = rule(&["small-*"], &["primary"]);
    small["contextFallback"] = json!([{"name": "big"}]);
    json!({
        "pathPrefix": "/",
        "auth": {
            "jwt": {
                "issuer": issuer.issuer(),
                "audiences": [issuer.audience()],
                "jwksUri": issuer.jwks_uri(),
                "forwardClaims": [{"claim": "sub", "header": FORWARDED_SUB_HEADER}]
            },
            "apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]
        },
        "aliases": [{"pattern": "fast", "target": "gpt-test"}],
        "rules": [rule(&["gpt-*"], &["primary", "secondary"]), rule(&["claude-*"], &["anthropic"]), small],
        "retry": {"retryAfterCap": format!("{RETRY_AFTER_CAP_SECS}s"), "backoff": "50ms", "maxAttempts": 3},
        "maxRequestBodyBytes": MAX_BODY_BYTES
    })
}

/// Environment the gateway needs for the standard config.
pub fn standard_env() -> Vec<(&'static str, &'static str)> {
    vec![
        (OPENAI_KEY_ENV, OPENAI_KEY),
        (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
        (CLIENT_KEY_ENV, CLIENT_KEY),
    ]
}

impl Stack {
    /// Starts everything on the standard configuration and waits for readiness.
    pub async fn start() -> Stack {
        Self::start_with(|config| config).await
    }

    /// Starts everything on the standard configuration changed by `edit`.
    pub async fn start_with(edit: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Stack {
        Self::start_configured(edit, &[], &[]).await
    }

    /// Starts everything on the standard configuration, the gateway with extra command-line
    /// arguments and environment variables (e.g. `--log-format json`, `RUST_LOG`).
    pub async fn start_with_args(args: &[&str], envs: &[(&str, &str)]) -> Stack {
        Self::start_configured(|config| config, args, envs).await
    }

    async fn start_configured(
        edit: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Stack {
        let primary = MockUpstream::start(Flavor::OpenAI).await;
        let secondary = MockUpstream::start(Flavor::OpenAI).await;
        let anthropic = MockUpstream::start(Flavor::Anthropic).await;
        let big = MockUpstream::start(Flavor::OpenAI).await;
        let issuer = JwtIssuer::start().await;
        let dir = temp_dir("stack");
        let config = edit(standard_config(
            &primary.url(),
            &secondary.url(),
            &anthropic.url(),
            &big.url(),
            &issuer,
        ));
        let path = write_config(&dir, &config.to_yaml());
        let mut env = standard_env();
        env.extend_from_slice(envs);
        let gateway = Gateway::start_with_args(&path, &env, args).await;
        Stack {
            primary,
            secondary,
            anthropic,
            big,
            issuer,
            dir,
            gateway,
        }
    }

    /// The standard configuration of this stack (to edit and rewrite for reload tests).
    pub fn config(&self) -> ConfigBuilder {
        standard_config(
            &self.primary.url(),
            &self.secondary.url(),
            &self.anthropic.url(),
            &self.big.url(),
            &self.issuer,
        )
    }

    /// The standard backends of this stack with `route` as route `main`.
    pub fn config_with_route(&self, route: Value) -> ConfigBuilder {
        standard_backends(
            &self.primary.url(),
            &self.secondary.url(),
            &self.anthropic.url(),
            &self.big.url(),
        )
        .route("main", route)
    }

    /// Path of the config file the gateway watches.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }

    /// `gateway base URL + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.base_url())
    }

    /// A fresh valid RS256 token for subject `sub`.
    pub fn token(&self, sub: &str) -> String {
        self.issuer.mint(json!({"sub": sub}))
    }

    /// `Authorization: Bearer <valid token>` value for subject `e2e-user`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token("e2e-user"))
    }

    /// Every recorded upstream request across all mocks.
    pub fn all_upstream_requests(&self) -> Vec<RecordedRequest> {
        [&self.primary, &self.secondary, &self.anthropic, &self.big]
            .iter()
            .flat_map(|m| m.requests())
            .collect()
    }
}

/// A minimal OpenAI chat request for `model`.
pub fn chat_body(model: &str, stream: bool) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// A minimal Anthropic messages request for `model`.
pub fn messages_body(model: &str, stream: bool) -> Value {
    let mut body = json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Say hello"}]});
    if stream {
        body["stream"] = json!(true);
    }
    body
}
