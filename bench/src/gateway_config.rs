//! The standalone configuration the gateway runs under in the benchmark,
//! and the JWT its clients present.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Issuer of the benchmark's tokens.
pub const ISSUER: &str = "https://bench.switchboard.invalid";
/// Audience of the benchmark's tokens.
pub const AUDIENCE: &str = "switchboard-bench";
/// Key id of the e2e RSA fixture key (`e2e/fixtures/jwks.json`).
pub const KID: &str = "e2e-rsa";
/// Environment variable holding the API key of the `/key` route.
pub const API_KEY_ENV: &str = "BENCH_GATEWAY_API_KEY";
/// Environment variable holding the (fake) provider key.
pub const PROVIDER_KEY_ENV: &str = "BENCH_PROVIDER_KEY";
/// Model served by the OpenAI-format backend.
pub const MODEL_OPENAI: &str = "bench-gpt";
/// Model served by the Anthropic-format backend.
pub const MODEL_ANTHROPIC: &str = "bench-claude";
/// Model served by the Anthropic-format backend on the paced mock.
pub const MODEL_PACED: &str = "bench-claude-paced";

/// The gateway's ports.
#[derive(Debug, Clone, Copy)]
pub struct Upstreams {
    /// The fast mock.
    pub fast: u16,
    /// The paced mock (slow streams, for holding many open).
    pub paced: u16,
}

fn backend(provider: &str, port: u16, model: &str) -> Value {
    json!({
        "provider": provider,
        "endpoint": format!("http://127.0.0.1:{port}"),
        "credentials": {"env": PROVIDER_KEY_ENV},
        "models": [{"name": model, "providerModel": model}],
    })
}

fn doc(kind: &str, name: &str, spec: Value) -> String {
    let v = json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec});
    format!("---\n{v}\n")
}

/// The configuration: one backend per format on the fast mock, one on the
/// paced mock; route `/key` with an API key, route `/` with JWT (inline JWKS).
pub fn render(up: Upstreams, jwks: &str) -> String {
    let rules = json!([
        {"models": [MODEL_OPENAI], "backends": [{"name": "bench-openai"}]},
        {"models": [MODEL_ANTHROPIC], "backends": [{"name": "bench-anthropic"}]},
        {"models": [MODEL_PACED], "backends": [{"name": "bench-anthropic-paced"}]},
    ]);
    let mut out = String::new();
    out.push_str(&doc(
        "AIBackend",
        "bench-openai",
        backend("OpenAI", up.fast, MODEL_OPENAI),
    ));
    out.push_str(&doc(
        "AIBackend",
        "bench-anthropic",
        backend("Anthropic", up.fast, MODEL_ANTHROPIC),
    ));
    out.push_str(&doc(
        "AIBackend",
        "bench-anthropic-paced",
        backend("Anthropic", up.paced, MODEL_PACED),
    ));
    out.push_str(&doc(
        "AIRoute",
        "bench-key",
        json!({"pathPrefix": "/key", "auth": {"apiKeys": [{"name": "bench", "env": API_KEY_ENV}]}, "rules": rules}),
    ));
    out.push_str(&doc(
        "AIRoute",
        "bench-jwt",
        json!({
            "pathPrefix": "/",
            "auth": {"jwt": {"issuer": ISSUER, "audiences": [AUDIENCE], "inlineJwks": jwks}},
            "rules": rules,
        }),
    ));
    out
}

/// An RS256 token for the benchmark's issuer, valid for a day, signed with the PEM key.
pub fn mint_token(private_pem: &[u8]) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now, "exp": now + 86_400});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    let key = EncodingKey::from_rsa_pem(private_pem).context("reading the RSA fixture key")?;
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_three_backends_and_two_routes() {
        let yaml = render(Upstreams { fast: 1, paced: 2 }, "{\"keys\":[]}");
        let docs: Vec<Value> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 5);
        assert_eq!(docs[2]["spec"]["endpoint"], "http://127.0.0.1:2");
        assert_eq!(
            docs[4]["spec"]["auth"]["jwt"]["inlineJwks"],
            "{\"keys\":[]}"
        );
    }
}
