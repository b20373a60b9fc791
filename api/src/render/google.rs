//! Renders the Google Cloud parts of an AIBackend: the `vertex` block and
//! the `credentials.gcp` sources, into the snapshot's `VertexSettings`.

use serde::Deserialize;
use switchboard_proto as pb;

use super::Ctx;
use super::check::endpoint_url;
use crate::v1alpha1::{
    AIBackendSpec, DEFAULT_GCP_KEY, GcpCredentials, GcpServiceAccountKey, Provider, rules,
};

/// Where a service-account key's tokens come from when it names no `token_uri`.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The public Vertex AI endpoint of a location (`protocols.md` §5.6).
pub(crate) fn vertex_endpoint(region: &str) -> String {
    match region {
        "global" => "https://aiplatform.googleapis.com".into(),
        "us" | "eu" => format!("https://aiplatform.{region}.rep.googleapis.com"),
        r => format!("https://{r}-aiplatform.googleapis.com"),
    }
}

fn matches(re: &str, text: &str) -> bool {
    regex::Regex::new(re).is_ok_and(|re| re.is_match(text))
}

/// Twin of `rules::GCP_REGION_RE`.
pub(crate) fn is_gcp_region(region: &str) -> bool {
    matches(rules::GCP_REGION_RE, region)
}

/// The `vertex` block (required for, and only for, VertexAI backends) and
/// the Google credentials, which live under `credentials.gcp`.
pub(crate) fn render_vertex(cx: &mut Ctx<'_>, spec: &AIBackendSpec) -> Option<pb::VertexSettings> {
    let provider = spec.provider;
    let creds = spec.credentials.as_ref();
    let gcp = creds.and_then(|c| c.gcp.as_ref());
    if provider != Provider::VertexAI {
        if spec.vertex.is_some() {
            cx.problem(
                "spec.vertex",
                format!("only used by provider VertexAI, not {provider:?}"),
            );
        }
        if gcp.is_some() {
            cx.problem(
                "spec.credentials.gcp",
                format!("only used by provider VertexAI, not {provider:?}"),
            );
        }
        return None;
    }
    if creds.is_some_and(|c| c.gcp.is_none()) {
        cx.problem(
            "spec.credentials",
            "provider VertexAI authenticates with credentials.gcp (a service-account key or workload identity), not an API key",
        );
    }
    let Some(v) = &spec.vertex else {
        cx.problem(
            "spec.vertex",
            "vertex settings (project and region) are required for provider VertexAI",
        );
        return None;
    };
    if !matches(rules::GCP_PROJECT_RE, &v.project) {
        cx.problem(
            "spec.vertex.project",
            format!(
                "{:?} is not a Google Cloud project id like my-project-123456",
                v.project
            ),
        );
    }
    if !is_gcp_region(&v.region) {
        cx.problem(
            "spec.vertex.region",
            format!(
                "{:?} is not a Vertex AI location like us-east5, global, us or eu",
                v.region
            ),
        );
    }
    if let Some(list) = &v.allowed_betas {
        for (i, beta) in list.iter().enumerate() {
            if beta.trim().is_empty() || beta.contains(',') {
                cx.problem(
                    format!("spec.vertex.allowedBetas[{i}]"),
                    format!("invalid beta flag {beta:?}"),
                );
            }
        }
    }
    Some(pb::VertexSettings {
        project: v.project.clone(),
        region: v.region.clone(),
        allowed_betas: v.allowed_betas.as_ref().map(|flags| pb::BetaList {
            flags: flags.clone(),
        }),
        gcp: gcp.and_then(|g| gcp_credentials(cx, g)),
    })
}

fn gcp_credentials(cx: &mut Ctx<'_>, g: &GcpCredentials) -> Option<pb::GcpCredentials> {
    use pb::gcp_credentials::Source;
    let source = match (&g.service_account_key, &g.workload_identity) {
        (Some(k), None) => Source::ServiceAccountKey(service_account_key(cx, k)?),
        (None, Some(w)) => {
            let account = w.service_account.clone().unwrap_or_default();
            if !account.is_empty() && !matches(rules::GCP_SERVICE_ACCOUNT_RE, &account) {
                cx.problem(
                    "spec.credentials.gcp.workloadIdentity.serviceAccount",
                    "must be default or a service account email like gateway@my-project.iam.gserviceaccount.com",
                );
            }
            Source::WorkloadIdentity(pb::GcpWorkloadIdentity {
                service_account: account,
            })
        }
        _ => {
            cx.problem(
                "spec.credentials.gcp",
                "set exactly one of serviceAccountKey and workloadIdentity",
            );
            return None;
        }
    };
    Some(pb::GcpCredentials {
        source: Some(source),
    })
}

/// The fields of a key file the data plane needs.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

fn service_account_key(
    cx: &mut Ctx<'_>,
    k: &GcpServiceAccountKey,
) -> Option<pb::GcpServiceAccountKey> {
    let path = "spec.credentials.gcp.serviceAccountKey";
    let key = k.key.as_deref().unwrap_or(DEFAULT_GCP_KEY);
    let Some(data) = cx.inv.secret(cx.namespace, &k.secret_name) else {
        cx.problem(
            format!("{path}.secretName"),
            format!("Secret {:?} not found", k.secret_name),
        );
        return None;
    };
    let Some(bytes) = data.get(key) else {
        cx.problem(
            format!("{path}.key"),
            format!("key {key:?} not found in Secret {:?}", k.secret_name),
        );
        return None;
    };
    let bad = |why: &str| {
        format!(
            "key {key:?} of Secret {:?} is not a service-account key file: {why}",
            k.secret_name
        )
    };
    let file: KeyFile = match serde_json::from_slice(bytes) {
        Ok(f) => f,
        Err(e) => {
            // The error names a line and column, never the content.
            cx.problem(
                format!("{path}.key"),
                bad(&format!(
                    "not JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )),
            );
            return None;
        }
    };
    if file.kind.as_deref() != Some("service_account") {
        cx.problem(
            format!("{path}.key"),
            bad("its \"type\" is not \"service_account\""),
        );
        return None;
    }
    let email = file.client_email.unwrap_or_default();
    let pem = file.private_key.unwrap_or_default();
    if email.trim().is_empty() {
        cx.problem(format!("{path}.key"), bad("\"client_email\" is missing"));
        return None;
    }
    if !pem.contains("-----BEGIN PRIVATE KEY-----")
        && !pem.contains("-----BEGIN RSA PRIVATE KEY-----")
    {
        cx.problem(
            format!("{path}.key"),
            bad("\"private_key\" is not a PEM private key"),
        );
        return None;
    }
    let token_uri = match file.token_uri.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_TOKEN_URI.to_string(),
        Some(uri) => match endpoint_url(uri) {
            Ok(u) => u,
            Err(e) => {
                cx.problem(format!("{path}.key"), bad(&format!("\"token_uri\": {e}")));
                return None;
            }
        },
    };
    Some(pb::GcpServiceAccountKey {
        client_email: email.trim().to_string(),
        private_key: pem,
        private_key_id: file.private_key_id.unwrap_or_default(),
        token_uri,
    })
}

#[cfg(test)]
mod tests {
    use switchboard_proto as pb;

    use crate::Inventory;
    use crate::load::parse_documents;
    use crate::render::{RenderOptions, render_with};

    /// A key file as `gcloud` writes it (the key is a placeholder).
    const KEY_FILE: &str = r#"{"type": "service_account", "project_id": "my-project", "private_key_id": "abc123", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "client_email": "gw@my-project.iam.gserviceaccount.com", "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}"#;

    fn render(spec: &str, extra: &str) -> Result<pb::Backend, Vec<String>> {
        let yaml = format!(
            "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {{name: b}}\nspec: {spec}\n{extra}"
        );
        let mut inv = Inventory::default();
        inv.extend(parse_documents(&yaml, "t.yaml").unwrap())
            .unwrap();
        render_with(&inv, &RenderOptions::kubernetes())
            .map(|s| s.backends[0].clone())
            .map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    fn secret(data: &str) -> String {
        let data = serde_json::to_string(data).unwrap();
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: gcp}}\nstringData: {{key.json: {data}}}\n"
        )
    }

    #[test]
    fn a_service_account_key_and_the_regional_endpoints() {
        let b = render(
            "{provider: VertexAI, vertex: {project: my-project, region: us-east5, allowedBetas: [context-1m-2025-08-07]}, credentials: {gcp: {serviceAccountKey: {secretName: gcp}}}}",
            &secret(KEY_FILE),
        )
        .unwrap();
        assert_eq!(b.provider, pb::ProviderKind::VertexAi as i32);
        assert_eq!(b.endpoint, "https://us-east5-aiplatform.googleapis.com");
        assert!(b.credential.is_none());
        let v = b.vertex.unwrap();
        assert_eq!(
            (v.project.as_str(), v.region.as_str()),
            ("my-project", "us-east5")
        );
        assert_eq!(v.allowed_betas.unwrap().flags, ["context-1m-2025-08-07"]);
        let Some(pb::gcp_credentials::Source::ServiceAccountKey(k)) = v.gcp.unwrap().source else {
            panic!("a key")
        };
        assert_eq!(k.client_email, "gw@my-project.iam.gserviceaccount.com");
        assert_eq!(k.private_key_id, "abc123");
        assert_eq!(k.token_uri, "https://oauth2.googleapis.com/token");
        assert!(k.private_key.starts_with("-----BEGIN PRIVATE KEY-----"));

        for (region, endpoint) in [
            ("global", "https://aiplatform.googleapis.com"),
            ("us", "https://aiplatform.us.rep.googleapis.com"),
            ("eu", "https://aiplatform.eu.rep.googleapis.com"),
            (
                "europe-west1",
                "https://europe-west1-aiplatform.googleapis.com",
            ),
        ] {
            let b = render(
                &format!("{{provider: VertexAI, vertex: {{project: my-project, region: {region}}}, credentials: {{gcp: {{workloadIdentity: {{}}}}}}}}"),
                "",
            )
            .unwrap();
            assert_eq!(b.endpoint, endpoint, "{region}");
            let v = b.vertex.unwrap();
            assert!(v.allowed_betas.is_none(), "unset: the default list");
            assert_eq!(
                v.gcp.unwrap().source,
                Some(pb::gcp_credentials::Source::WorkloadIdentity(
                    pb::GcpWorkloadIdentity::default()
                ))
            );
        }
        let b = render(
            "{provider: VertexAI, endpoint: 'http://127.0.0.1:9', vertex: {project: 'example.com:my-project', region: global}}",
            "",
        )
        .unwrap();
        assert_eq!(b.endpoint, "http://127.0.0.1:9", "an override wins");
        assert!(
            b.vertex.unwrap().gcp.is_none(),
            "no credential (local mocks)"
        );
    }

    #[test]
    fn key_files_that_are_not_usable_are_refused_without_their_content() {
        let cases = [
            ("{\"type\": \"authorized_user\"}", "its \"type\" is not"),
            ("not json at all", "not JSON (line 1, column 2)"),
            (
                r#"{"type": "service_account", "client_email": "a@b", "private_key": "secret-but-no-pem"}"#,
                "is not a PEM private key",
            ),
            (
                r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}"#,
                "\"client_email\" is missing",
            ),
        ];
        for (file, expected) in cases {
            let err = render(
                "{provider: VertexAI, vertex: {project: my-project, region: global}, credentials: {gcp: {serviceAccountKey: {secretName: gcp}}}}",
                &secret(file),
            )
            .unwrap_err();
            assert_eq!(err.len(), 1, "{err:?}");
            assert!(err[0].contains(expected), "{err:?}");
            assert!(
                err[0].starts_with(
                    "AIBackend default/b: spec.credentials.gcp.serviceAccountKey.key: "
                ),
                "{err:?}"
            );
            assert!(!err[0].contains("secret-but-no-pem"), "{err:?}");
        }
        let no_uri = KEY_FILE.replace(
            r#", "token_uri": "https://oauth2.googleapis.com/token""#,
            "",
        );
        let b = render(
            "{provider: VertexAI, vertex: {project: my-project, region: global}, credentials: {gcp: {serviceAccountKey: {secretName: gcp, key: key.json}}}}",
            &secret(&no_uri),
        )
        .unwrap();
        let Some(pb::gcp_credentials::Source::ServiceAccountKey(k)) =
            b.vertex.unwrap().gcp.unwrap().source
        else {
            panic!("a key")
        };
        assert_eq!(k.token_uri, super::DEFAULT_TOKEN_URI);
    }

    #[test]
    fn gemini_has_its_public_endpoint_and_an_api_key() {
        let key = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: k}\nstringData: {apiKey: AIzaExample}\n";
        let b = render(
            "{provider: Gemini, credentials: {secretRef: {name: k}}}",
            key,
        )
        .unwrap();
        assert_eq!(b.provider, pb::ProviderKind::Gemini as i32);
        assert_eq!(b.endpoint, "https://generativelanguage.googleapis.com");
        assert_eq!(
            b.credential.unwrap().source,
            Some(pb::credential::Source::Value("AIzaExample".into()))
        );
        assert!(b.vertex.is_none() && b.azure.is_none());
    }

    #[test]
    fn twin_rules_agree() {
        let re = |p: &str| regex::Regex::new(p).unwrap();
        let project = re(crate::v1alpha1::rules::GCP_PROJECT_RE);
        for ok in [
            "my-project",
            "my-project-123456",
            "example.com:my-project",
            "abcdef",
        ] {
            assert!(project.is_match(ok), "{ok}");
        }
        for bad in ["abc", "My-Project", "1project", "project-", "a_b_c_d_e", ""] {
            assert!(!project.is_match(bad), "{bad}");
        }
        for ok in [
            "us-east5",
            "europe-west1",
            "global",
            "us",
            "eu",
            "northamerica-northeast1",
            "me-central2",
        ] {
            assert!(super::is_gcp_region(ok), "{ok}");
        }
        for bad in ["us-east-1", "US", "asia", "us-east", ""] {
            assert!(!super::is_gcp_region(bad), "{bad}");
        }
    }
}
