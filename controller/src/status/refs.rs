//! The references an object makes to other objects (AIBackends, AITeams and
//! Secrets), with the field path of each, so status can say which one is
//! missing.

use switchboard_api::v1alpha1::{
    AIBackendSpec, AIRouteSpec, AITeamSpec, BackendRef, DEFAULT_AZURE_SECRET_KEY, DEFAULT_GCP_KEY,
    SecretKeyRef,
};

/// What a reference points at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// An AIBackend in the referring object's namespace.
    Backend(String),
    /// An AITeam (namespace, name).
    Team(String, String),
    /// A key of a Secret in the referring object's namespace.
    Secret {
        /// The Secret's name.
        name: String,
        /// The key inside it.
        key: String,
    },
}

/// One reference at one field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    /// Field path of the reference, e.g. `spec.credentials.secretRef`.
    pub path: String,
    /// What it points at.
    pub target: Target,
}

/// The references of an AIBackend.
pub fn backend_refs(spec: &AIBackendSpec) -> Vec<Ref> {
    let mut out = Vec::new();
    if let Some(r) = spec
        .credentials
        .as_ref()
        .and_then(|c| c.secret_ref.as_ref())
    {
        out.push(secret("spec.credentials.secretRef".to_string(), r));
    }
    // Bedrock access keys: one Secret, two required keys.
    if let Some(k) = spec
        .credentials
        .as_ref()
        .and_then(|c| c.aws.as_ref())
        .and_then(|a| a.access_key.as_ref())
    {
        for key in ["accessKeyId", "secretAccessKey"] {
            out.push(Ref {
                path: "spec.credentials.aws.accessKey.secretName".to_string(),
                target: Target::Secret {
                    name: k.secret_name.clone(),
                    key: key.to_string(),
                },
            });
        }
    }
    // Vertex AI service-account key: one key of one Secret (problems are
    // reported at `.secretName` or `.key`, both under this path).
    if let Some(k) = spec
        .credentials
        .as_ref()
        .and_then(|c| c.gcp.as_ref())
        .and_then(|g| g.service_account_key.as_ref())
    {
        out.push(Ref {
            path: "spec.credentials.gcp.serviceAccountKey".to_string(),
            target: Target::Secret {
                name: k.secret_name.clone(),
                key: k.key.clone().unwrap_or_else(|| DEFAULT_GCP_KEY.to_string()),
            },
        });
    }
    // Azure OpenAI Entra client secret.
    if let Some(s) = spec
        .credentials
        .as_ref()
        .and_then(|c| c.azure.as_ref())
        .and_then(|a| a.client_secret.as_ref())
    {
        out.push(Ref {
            path: "spec.credentials.azure.clientSecret".to_string(),
            target: Target::Secret {
                name: s.secret_name.clone(),
                key: s
                    .key
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AZURE_SECRET_KEY.to_string()),
            },
        });
    }
    out
}

/// The references of an AITeam (the Secrets of its API keys).
pub fn team_refs(spec: &AITeamSpec) -> Vec<Ref> {
    spec.api_keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let r = k.secret_ref.as_ref()?;
            Some(secret(format!("spec.apiKeys[{i}].secretRef"), r))
        })
        .collect()
}

/// The references of an AIRoute in namespace `ns`.
pub fn route_refs(ns: &str, spec: &AIRouteSpec) -> Vec<Ref> {
    let mut out = Vec::new();
    for (i, t) in spec.teams.iter().flat_map(|t| &t.team_refs).enumerate() {
        out.push(Ref {
            path: format!("spec.teams.teamRefs[{i}].name"),
            target: Target::Team(
                t.namespace.clone().unwrap_or_else(|| ns.to_string()),
                t.name.clone(),
            ),
        });
    }
    if let Some(auth) = &spec.auth {
        for (i, k) in auth.api_keys.iter().enumerate() {
            if let Some(r) = &k.secret_ref {
                out.push(secret(format!("spec.auth.apiKeys[{i}].secretRef"), r));
            }
        }
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        backends(
            &mut out,
            &format!("spec.rules[{i}].backends"),
            &rule.backends,
        );
        backends(
            &mut out,
            &format!("spec.rules[{i}].contextFallback"),
            &rule.context_fallback,
        );
    }
    out
}

fn secret(path: String, r: &SecretKeyRef) -> Ref {
    Ref {
        path,
        target: Target::Secret {
            name: r.name.clone(),
            key: r.key.clone(),
        },
    }
}

fn backends(out: &mut Vec<Ref>, path: &str, refs: &[BackendRef]) {
    for (j, r) in refs.iter().enumerate() {
        out.push(Ref {
            path: format!("{path}[{j}].name"),
            target: Target::Backend(r.name.clone()),
        });
    }
}

/// Whether a problem at `problem_path` concerns the reference at
/// `ref_path`: the path itself or a field under it (`a.b` covers `a.b.key`,
/// not `a.bc`).
pub fn covers(ref_path: &str, problem_path: &str) -> bool {
    match problem_path.strip_prefix(ref_path) {
        Some(rest) => rest.is_empty() || rest.starts_with('.'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_access_keys_reference_their_secret() {
        let spec: AIBackendSpec = serde_json::from_str(
            r#"{"provider": "Bedrock", "bedrock": {"region": "us-east-1"}, "credentials": {"aws": {"accessKey": {"secretName": "aws"}}}}"#,
        )
        .unwrap();
        let refs = backend_refs(&spec);
        let keys: Vec<_> = refs
            .iter()
            .map(|r| (r.path.as_str(), r.target.clone()))
            .collect();
        let secret = |key: &str| Target::Secret {
            name: "aws".into(),
            key: key.into(),
        };
        assert_eq!(
            keys,
            [
                (
                    "spec.credentials.aws.accessKey.secretName",
                    secret("accessKeyId")
                ),
                (
                    "spec.credentials.aws.accessKey.secretName",
                    secret("secretAccessKey")
                ),
            ]
        );
        let irsa: AIBackendSpec = serde_json::from_str(
            r#"{"provider": "Bedrock", "bedrock": {"region": "us-east-1"}, "credentials": {"aws": {"webIdentity": {}}}}"#,
        )
        .unwrap();
        assert!(backend_refs(&irsa).is_empty());
    }

    #[test]
    fn google_and_azure_credentials_reference_their_secrets() {
        let spec: AIBackendSpec = serde_json::from_str(
            r#"{"provider": "VertexAI", "vertex": {"project": "my-project", "region": "global"}, "credentials": {"gcp": {"serviceAccountKey": {"secretName": "gcp"}}}}"#,
        )
        .unwrap();
        let refs = backend_refs(&spec);
        assert_eq!(
            refs,
            [Ref {
                path: "spec.credentials.gcp.serviceAccountKey".into(),
                target: Target::Secret {
                    name: "gcp".into(),
                    key: "key.json".into()
                }
            }]
        );
        assert!(covers(
            &refs[0].path,
            "spec.credentials.gcp.serviceAccountKey.secretName"
        ));
        let spec: AIBackendSpec = serde_json::from_str(
            r#"{"provider": "AzureOpenAI", "endpoint": "https://r.openai.azure.com", "credentials": {"azure": {"clientSecret": {"tenantId": "contoso.onmicrosoft.com", "clientId": "00000000-0000-0000-0000-000000000001", "secretName": "entra", "key": "s"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            backend_refs(&spec),
            [Ref {
                path: "spec.credentials.azure.clientSecret".into(),
                target: Target::Secret {
                    name: "entra".into(),
                    key: "s".into()
                }
            }]
        );
        let wi: AIBackendSpec = serde_json::from_str(
            r#"{"provider": "VertexAI", "vertex": {"project": "my-project", "region": "global"}, "credentials": {"gcp": {"workloadIdentity": {}}}}"#,
        )
        .unwrap();
        assert!(backend_refs(&wi).is_empty());
    }

    #[test]
    fn covers_only_the_field_and_below() {
        assert!(covers(
            "spec.credentials.secretRef",
            "spec.credentials.secretRef.name"
        ));
        assert!(covers(
            "spec.credentials.secretRef",
            "spec.credentials.secretRef"
        ));
        assert!(!covers(
            "spec.credentials.secretRef",
            "spec.credentials.secretRefs"
        ));
        assert!(covers(
            "spec.rules[0].backends[1].name",
            "spec.rules[0].backends[1].name"
        ));
        assert!(!covers(
            "spec.rules[0].backends[1].name",
            "spec.rules[0].backends[1].model"
        ));
    }
}
