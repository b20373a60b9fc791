//! Builders for standalone gateway configuration (AIBackend / AIRoute resources,
//! `switchboard.dev/v1alpha1`). Documents are emitted as JSON, which is valid YAML, separated by
//! `---`, so the tests need no YAML serializer and the schema lives in one place.

use serde_json::{Value, json};

use crate::wire::Flavor;

/// API version of every resource.
pub const API_VERSION: &str = "switchboard.dev/v1alpha1";

/// The `provider` value for a mock flavor.
pub fn provider_name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::OpenAI => "OpenAI",
        Flavor::Anthropic => "Anthropic",
        Flavor::Bedrock => "Bedrock",
        Flavor::Gemini => "Gemini",
        Flavor::Vertex => "VertexAI",
        Flavor::Azure => "AzureOpenAI",
    }
}

/// An AIBackend spec for `endpoint` with credentials from env `key_env`, serving `models`
/// (each as `{name, providerModel}` with the same value) and short test timeouts.
pub fn backend_spec(flavor: Flavor, endpoint: &str, key_env: &str, models: &[&str]) -> Value {
    json!({
        "provider": provider_name(flavor),
        "endpoint": endpoint,
        "credentials": {"env": key_env},
        "models": models.iter().map(|m| json!({"name": m, "providerModel": m})).collect::<Vec<_>>(),
        "timeouts": {"connect": "2s", "firstByte": "3s", "streamIdle": "5s", "request": "30s"},
        "ejection": {"consecutiveFailures": 5, "baseEjection": "30s", "maxEjection": "300s"}
    })
}

/// A rule sending `models` (globs) to `backends`, tried in the given order (priority 0, 1, …).
pub fn rule(models: &[&str], backends: &[&str]) -> Value {
    json!({
        "models": models,
        "backends": backends.iter().enumerate()
            .map(|(i, b)| json!({"name": b, "priority": i, "weight": 1}))
            .collect::<Vec<_>>()
    })
}

/// A growing list of resources.
#[derive(Debug, Clone, Default)]
pub struct ConfigBuilder {
    docs: Vec<Value>,
}

impl ConfigBuilder {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a resource of `kind` named `name` with `spec`.
    pub fn resource(mut self, kind: &str, name: &str, spec: Value) -> Self {
        self.docs.push(json!({"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}));
        self
    }

    /// Adds an AIBackend.
    pub fn backend(self, name: &str, spec: Value) -> Self {
        self.resource("AIBackend", name, spec)
    }

    /// Adds an AIRoute.
    pub fn route(self, name: &str, spec: Value) -> Self {
        self.resource("AIRoute", name, spec)
    }

    /// The resources as a multi-document YAML string.
    pub fn to_yaml(&self) -> String {
        self.docs.iter().map(|d| format!("---\n{d}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_documents_with_api_version_and_priorities() {
        let yaml = ConfigBuilder::new()
            .backend("a", backend_spec(Flavor::OpenAI, "http://x", "K", &["m"]))
            .route(
                "r",
                json!({"pathPrefix": "/", "rules": [rule(&["m*"], &["a", "b"])]}),
            )
            .to_yaml();
        let docs: Vec<Value> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["apiVersion"], API_VERSION);
        assert_eq!(docs[0]["spec"]["provider"], "OpenAI");
        assert_eq!(
            docs[1]["spec"]["rules"][0]["backends"][1],
            json!({"name": "b", "priority": 1, "weight": 1})
        );
    }
}
