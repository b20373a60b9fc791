//! Renders one AIBackend spec into a snapshot `Backend`.

use std::collections::BTreeSet;

use switchboard_proto as pb;

use super::Ctx;
use super::azure::render_azure;
use super::bedrock::{bedrock_endpoint, is_aws_region, render_bedrock};
use super::check::{endpoint_url, is_valid_env_name};
use super::google::{is_gcp_region, render_vertex, vertex_endpoint};
use crate::v1alpha1::{AIBackendSpec, Credentials, Provider};

/// Endpoints used when a backend sets none.
pub(crate) fn default_endpoint(provider: Provider) -> Option<&'static str> {
    match provider {
        Provider::Anthropic => Some("https://api.anthropic.com"),
        Provider::OpenAI => Some("https://api.openai.com"),
        Provider::OpenAICompatible => None,
        Provider::Mock => Some("mock://local"),
        Provider::Gemini => Some("https://generativelanguage.googleapis.com"),
        // Depend on the region: see `bedrock_endpoint` and `vertex_endpoint`.
        Provider::Bedrock | Provider::VertexAI => None,
        // The resource's own endpoint: required.
        Provider::AzureOpenAI => None,
    }
}

fn provider_kind(provider: Provider) -> pb::ProviderKind {
    match provider {
        Provider::Anthropic => pb::ProviderKind::Anthropic,
        Provider::OpenAI => pb::ProviderKind::Openai,
        Provider::OpenAICompatible => pb::ProviderKind::OpenaiCompatible,
        Provider::Mock => pb::ProviderKind::Mock,
        Provider::Bedrock => pb::ProviderKind::Bedrock,
        Provider::VertexAI => pb::ProviderKind::VertexAi,
        Provider::Gemini => pb::ProviderKind::Gemini,
        Provider::AzureOpenAI => pb::ProviderKind::AzureOpenai,
    }
}

pub(crate) fn render_backend(cx: &mut Ctx<'_>, spec: &AIBackendSpec) -> pb::Backend {
    let provider = spec.provider;
    let bedrock = render_bedrock(cx, spec);
    let vertex = render_vertex(cx, spec);
    let azure = render_azure(cx, spec);
    let endpoint = match (&spec.endpoint, default_endpoint(provider)) {
        (Some(e), _) => endpoint_url(e).unwrap_or_else(|msg| {
            cx.problem("spec.endpoint", msg);
            String::new()
        }),
        (None, Some(default)) => default.to_string(),
        (None, None) if provider == Provider::Bedrock => bedrock
            .as_ref()
            .filter(|b| is_aws_region(&b.region))
            .map(|b| bedrock_endpoint(&b.region))
            .unwrap_or_default(),
        (None, None) if provider == Provider::VertexAI => vertex
            .as_ref()
            .filter(|v| is_gcp_region(&v.region))
            .map(|v| vertex_endpoint(&v.region))
            .unwrap_or_default(),
        (None, None) => {
            cx.problem(
                "spec.endpoint",
                format!("required for provider {provider:?}"),
            );
            String::new()
        }
    };
    let credential = spec.credentials.as_ref().and_then(|c| credential(cx, c));

    let mut seen = BTreeSet::new();
    let models = spec
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = format!("spec.models[{i}]");
            if m.name.trim().is_empty() {
                cx.problem(format!("{path}.name"), "must not be empty");
            } else if !seen.insert(m.name.as_str()) {
                cx.problem(
                    format!("{path}.name"),
                    format!("duplicate model {:?}", m.name),
                );
            }
            if m.provider_model
                .as_deref()
                .is_some_and(|p| p.trim().is_empty())
            {
                cx.problem(
                    format!("{path}.providerModel"),
                    "must not be empty when set",
                );
            }
            pb::ModelMapping {
                name: m.name.clone(),
                provider_model: m.provider_model.clone().unwrap_or_else(|| m.name.clone()),
                context_window: m.context_window.unwrap_or(0),
            }
        })
        .collect();

    let timeouts = spec.timeouts.as_ref().map(|t| pb::Timeouts {
        connect_ms: cx.duration_ms("spec.timeouts.connect", t.connect.as_ref()),
        first_byte_ms: cx.duration_ms("spec.timeouts.firstByte", t.first_byte.as_ref()),
        stream_idle_ms: cx.duration_ms("spec.timeouts.streamIdle", t.stream_idle.as_ref()),
        request_ms: cx.duration_ms("spec.timeouts.request", t.request.as_ref()),
        first_token_ms: cx.duration_ms("spec.timeouts.firstToken", t.first_token.as_ref()),
        max_stream_ms: cx.duration_ms("spec.timeouts.maxStream", t.max_stream.as_ref()),
    });

    let ejection = spec.ejection.as_ref().map(|e| {
        let base = cx.duration_ms("spec.ejection.baseEjection", e.base_ejection.as_ref());
        let max = cx.duration_ms("spec.ejection.maxEjection", e.max_ejection.as_ref());
        if base > 0 && max > 0 && base > max {
            cx.problem(
                "spec.ejection.maxEjection",
                "must not be shorter than baseEjection",
            );
        }
        pb::Ejection {
            consecutive_failures: e.consecutive_failures.unwrap_or(0),
            base_ejection_ms: base,
            max_ejection_ms: max,
        }
    });

    let anthropic = spec.anthropic.as_ref().map(|a| {
        if provider != Provider::Anthropic {
            cx.problem(
                "spec.anthropic",
                format!("only used by provider Anthropic, not {provider:?}"),
            );
        }
        if let Some(v) = &a.version
            && (v.trim().is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()))
        {
            cx.problem(
                "spec.anthropic.version",
                format!("invalid anthropic-version {v:?}"),
            );
        }
        for (i, beta) in a.allowed_betas.iter().enumerate() {
            if beta.trim().is_empty() || beta.contains(',') {
                cx.problem(
                    format!("spec.anthropic.allowedBetas[{i}]"),
                    format!("invalid beta flag {beta:?}"),
                );
            }
        }
        pb::AnthropicSettings {
            version: a.version.clone().unwrap_or_default(),
            allowed_betas: a.allowed_betas.clone(),
        }
    });

    let openai = spec.openai.as_ref().map(|o| {
        if !matches!(provider, Provider::OpenAI | Provider::OpenAICompatible) {
            cx.problem(
                "spec.openai",
                format!("only used by providers OpenAI and OpenAICompatible, not {provider:?}"),
            );
        }
        pb::OpenAiSettings {
            organization: o.organization.clone().unwrap_or_default(),
        }
    });

    let mock = spec.mock.as_ref().map(|m| {
        if provider != Provider::Mock {
            cx.problem(
                "spec.mock",
                format!("only used by provider Mock, not {provider:?}"),
            );
        }
        if m.emulate == Some(Provider::Mock) {
            cx.problem("spec.mock.emulate", "the Mock cannot emulate itself");
        }
        if m.fail_on.as_deref().is_some_and(str::is_empty) {
            cx.problem("spec.mock.failOn", "must not be empty when set");
        }
        if let Some(s) = m.fail_status
            && !(400..=599).contains(&s)
        {
            cx.problem(
                "spec.mock.failStatus",
                format!("{s} is not an error status (400-599)"),
            );
        }
        pb::MockSettings {
            reply: m.reply.clone().unwrap_or_default(),
            latency_ms: cx.duration_ms("spec.mock.latency", m.latency.as_ref()),
            emulate: m
                .emulate
                .map_or(pb::ProviderKind::Unspecified, provider_kind) as i32,
            fail_on: m.fail_on.clone().unwrap_or_default(),
            fail_status: m.fail_status.map_or(0, u32::from),
        }
    });

    pb::Backend {
        id: cx.id.clone(),
        provider: provider_kind(provider) as i32,
        endpoint,
        credential,
        models,
        timeouts,
        ejection,
        anthropic,
        openai,
        mock,
        bedrock,
        vertex,
        azure,
    }
}

fn credential(cx: &mut Ctx<'_>, c: &Credentials) -> Option<pb::Credential> {
    use pb::credential::Source;
    let sources = [
        c.secret_ref.is_some(),
        c.env.is_some(),
        c.aws.is_some(),
        c.gcp.is_some(),
        c.azure.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        cx.problem(
            "spec.credentials",
            "set exactly one of secretRef, env, aws, gcp and azure",
        );
        return None;
    }
    let source = match (&c.secret_ref, &c.env) {
        // AWS, Google and Entra credentials are rendered into the
        // provider's settings (`bedrock.aws`, `vertex.gcp`, `azure.entra`).
        (None, None) | (Some(_), Some(_)) => return None,
        (Some(r), None) => Source::Value(cx.secret_value("spec.credentials.secretRef", r)?),
        (None, Some(name)) => {
            if !cx.opts.env_allowed {
                cx.problem(
                    "spec.credentials.env",
                    "environment variables are only allowed in standalone mode; use secretRef",
                );
                return None;
            }
            if !is_valid_env_name(name) {
                cx.problem(
                    "spec.credentials.env",
                    format!("invalid environment variable name {name:?}"),
                );
                return None;
            }
            Source::Env(name.clone())
        }
    };
    Some(pb::Credential {
        source: Some(source),
    })
}
