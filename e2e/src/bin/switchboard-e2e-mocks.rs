//! `switchboard-e2e-mocks`: runs one mock provider upstream (and optionally a JWT issuer) for
//! out-of-process tests. Prints one JSON line with the URLs, then serves until killed.
//! Scripting at runtime goes through the mock's `/__mock/` control API.

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use serde_json::json;
use switchboard_e2e::{Behaviour, Flavor, JwtIssuer, MockUpstream};

/// Provider dialect on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FlavorArg {
    /// OpenAI Chat Completions.
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Amazon Bedrock Runtime (Converse, InvokeModel, event-stream framing).
    Bedrock,
    /// The Gemini API (generateContent, streamGenerateContent SSE, x-goog-api-key).
    Gemini,
    /// Vertex AI (Gemini generateContent and Claude rawPredict, bearer token).
    Vertex,
    /// Azure OpenAI (v1 and deployment URLs, api-key, content-filter annotations).
    Azure,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard-e2e-mocks",
    about = "Mock AI provider upstream and JWT issuer for Switchboard tests"
)]
struct Args {
    /// Wire format of the mock upstream.
    #[arg(long, value_enum, default_value = "openai")]
    flavor: FlavorArg,
    /// JSON array of behaviours consumed one per generation request, e.g. '[{"kind":"Status","status":503}]'.
    #[arg(long)]
    script: Option<String>,
    /// JSON behaviour used once the script is empty, e.g. '{"kind":"Ok","text":"hi"}'.
    #[arg(long)]
    default: Option<String>,
    /// Also start a JWT issuer serving a JWKS and `POST /mint`.
    #[arg(long)]
    jwt: bool,
    /// Bedrock flavour: the region SigV4 signatures must name.
    #[arg(long, default_value = "us-east-1")]
    aws_region: String,
    /// Bedrock flavour: the secret access key that verifies signatures (unset: only their form
    /// is checked).
    #[arg(long)]
    aws_secret: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let flavor = match args.flavor {
        FlavorArg::Openai => Flavor::OpenAI,
        FlavorArg::Anthropic => Flavor::Anthropic,
        FlavorArg::Bedrock => Flavor::Bedrock,
        FlavorArg::Gemini => Flavor::Gemini,
        FlavorArg::Vertex => Flavor::Vertex,
        FlavorArg::Azure => Flavor::Azure,
    };
    let mock = MockUpstream::start(flavor).await;
    mock.set_bedrock_auth(&args.aws_region, args.aws_secret.as_deref());
    if let Some(script) = &args.script {
        let list: Vec<Behaviour> =
            serde_json::from_str(script).context("--script is not a JSON array of behaviours")?;
        mock.script(list);
    }
    if let Some(default) = &args.default {
        let behaviour: Behaviour =
            serde_json::from_str(default).context("--default is not a JSON behaviour")?;
        mock.set_default(behaviour);
    }
    let issuer = if args.jwt {
        Some(JwtIssuer::start().await)
    } else {
        None
    };
    let mut line = json!({"flavor": format!("{flavor:?}"), "upstream": mock.url(), "upstream_v1": mock.url_v1()});
    if let Some(issuer) = &issuer {
        line["jwks_uri"] = json!(issuer.jwks_uri());
        line["issuer"] = json!(issuer.issuer());
        line["audience"] = json!(issuer.audience());
        line["mint_uri"] = json!(issuer.mint_uri());
    }
    println!("{line}");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(mock);
    drop(issuer);
    Ok(())
}
