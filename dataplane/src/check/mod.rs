//! `switchboard-dataplane check`: the compatibility self-test. It sends a
//! route the requests each supported agent sends ([`probes`]) — Claude Code,
//! Codex, OpenCode and the OpenAI SDKs, the Anthropic SDK — judges each
//! answer the way that agent would read it ([`verify`]), and prints a
//! pass/fail table per agent with the reason of every failure
//! ([`report`]). Operators run it after a configuration change; it exits 0
//! when every check passed, 1 otherwise, 2 when it could not run.
//!
//! ```text
//! switchboard-dataplane check --route https://ai.example.com --token "$(switchboard-token)" --model claude-sonnet-4
//! ```
//!
//! The probes go to a running gateway like any client's (nothing is
//! special-cased on the gateway side), so they cost a few hundred tokens per
//! agent on a real provider and show in its metrics and access log.

pub mod probes;
pub mod report;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;

use probes::Models;
use report::Outcome;
use verify::Answer;

use crate::upstream::http::{ClientCache, HttpClient};
use crate::upstream::pool::error_chain;

/// Arguments of `switchboard-dataplane check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// The route's base URL as agents are given it: the gateway's address
    /// and the route's path prefix, without `/v1` (e.g.
    /// `https://ai.example.com/team-a`).
    #[arg(long, env = "SWITCHBOARD_CHECK_ROUTE")]
    pub route: String,
    /// The token agents send (a JWT from `switchboard-token`, or an API key).
    #[arg(long, env = "SWITCHBOARD_CHECK_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The model every agent asks for (default: the first model the route
    /// lists, a Claude model for Claude Code and the Anthropic SDK if any).
    #[arg(long)]
    pub model: Option<String>,
    /// Claude Code's model (`ANTHROPIC_MODEL`), instead of `--model`.
    #[arg(long)]
    pub claude_code_model: Option<String>,
    /// Codex's model, instead of `--model`.
    #[arg(long)]
    pub codex_model: Option<String>,
    /// The model of OpenCode and the OpenAI SDKs, instead of `--model`.
    #[arg(long)]
    pub openai_model: Option<String>,
    /// The Anthropic SDK's model, instead of `--model`.
    #[arg(long)]
    pub anthropic_model: Option<String>,
    /// Longest wait for one answer, streams included (e.g. `120s`).
    #[arg(long, default_value = "120s", value_parser = crate::app::parse_duration)]
    pub timeout: Duration,
}

/// Runs every probe against the route, prints the table to stdout, and
/// says whether every check passed.
pub async fn run(args: CheckArgs) -> anyhow::Result<bool> {
    let base = args.route.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!(
            "--route must be an http:// or https:// URL, got {:?}",
            args.route
        );
    }
    let client = ClientCache::new(Arc::new(crate::upstream::tls::client_config()))
        .get(Duration::from_secs(10));
    let models = models(&args, &client, &base).await?;
    println!(
        "Checking {base} as each agent would (Claude Code: {}, Codex: {}, OpenAI SDK: {}, Anthropic SDK: {})\n",
        models.claude_code, models.codex, models.openai, models.anthropic
    );
    let mut outcomes = Vec::new();
    for probe in probes::all(&models, &args.token) {
        let result = match exchange(&client, &base, &probe.request, args.timeout).await {
            Ok(answer) => (probe.verify)(&answer, &models),
            Err(reason) => Err(reason),
        };
        outcomes.push(Outcome {
            agent: probe.agent,
            name: probe.name,
            result,
        });
    }
    print!("{}", report::render(&outcomes));
    Ok(report::all_passed(&outcomes))
}

/// The models to ask for: the flags, else the route's own list.
async fn models(args: &CheckArgs, client: &HttpClient, base: &str) -> anyhow::Result<Models> {
    let pick = |own: &Option<String>| own.clone().or_else(|| args.model.clone());
    let mut m = Models {
        claude_code: pick(&args.claude_code_model).unwrap_or_default(),
        codex: pick(&args.codex_model).unwrap_or_default(),
        openai: pick(&args.openai_model).unwrap_or_default(),
        anthropic: pick(&args.anthropic_model).unwrap_or_default(),
    };
    let missing = [&m.claude_code, &m.codex, &m.openai, &m.anthropic]
        .iter()
        .any(|s| s.is_empty());
    if !missing {
        return Ok(m);
    }
    let listed = listed_models(client, base, &args.token, args.timeout)
        .await
        .context("no --model given, and the route's model list could not be read")?;
    let Some(first) = listed.first().cloned() else {
        bail!("no --model given, and the route lists no model");
    };
    let claude = listed
        .iter()
        .find(|id| id.contains("claude"))
        .cloned()
        .unwrap_or_else(|| first.clone());
    for (slot, default) in [
        (&mut m.claude_code, &claude),
        (&mut m.codex, &first),
        (&mut m.openai, &first),
        (&mut m.anthropic, &claude),
    ] {
        if slot.is_empty() {
            slot.clone_from(default);
        }
    }
    Ok(m)
}

/// The ids of `GET /v1/models` (OpenAI shape).
async fn listed_models(
    client: &HttpClient,
    base: &str,
    token: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let probe = probes::ProbeRequest {
        method: http::Method::GET,
        path: "/v1/models",
        headers: vec![("authorization", format!("Bearer {token}"))],
        body: None,
    };
    let answer = exchange(client, base, &probe, timeout)
        .await
        .map_err(anyhow::Error::msg)?;
    if answer.status != 200 {
        bail!(
            "GET /v1/models answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    let v: Value = serde_json::from_slice(&answer.body).context("the model list is not JSON")?;
    Ok(v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect())
}

/// Sends one request and reads the whole answer within `timeout`.
async fn exchange(
    client: &HttpClient,
    base: &str,
    req: &probes::ProbeRequest,
    timeout: Duration,
) -> Result<Answer, String> {
    let url = format!("{base}{}", req.path);
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(&url);
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    let body = req
        .body
        .as_ref()
        .map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let request = builder
        .body(Full::new(body))
        .map_err(|e| format!("invalid request to {url}: {e}"))?;
    let exchange = async {
        let resp = client
            .request(request)
            .await
            .map_err(|e| format!("cannot reach {url}: {}", error_chain(&e)))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("the answer broke off: {}", error_chain(&e)))?
            .to_bytes();
        Ok(Answer {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no complete answer within {timeout:?}"))?
}
