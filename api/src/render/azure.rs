//! Renders the Azure parts of an AIBackend: the `azure` block and the
//! `credentials.azure` (Microsoft Entra ID) sources, into the snapshot's
//! `AzureSettings`.

use switchboard_proto as pb;

use super::Ctx;
use super::check::endpoint_url;
use crate::v1alpha1::{
    AIBackendSpec, AzureApi, AzureClientSecret, AzureCredentials, DEFAULT_AZURE_SECRET_KEY,
    Provider, rules,
};

fn matches(re: &str, text: &str) -> bool {
    regex::Regex::new(re).is_ok_and(|re| re.is_match(text))
}

/// The `azure` block and `credentials.azure` (only for AzureOpenAI
/// backends). Every AzureOpenAI backend gets settings, defaulted when the
/// block is absent.
pub(crate) fn render_azure(cx: &mut Ctx<'_>, spec: &AIBackendSpec) -> Option<pb::AzureSettings> {
    let provider = spec.provider;
    let entra = spec.credentials.as_ref().and_then(|c| c.azure.as_ref());
    if provider != Provider::AzureOpenAI {
        if spec.azure.is_some() {
            cx.problem(
                "spec.azure",
                format!("only used by provider AzureOpenAI, not {provider:?}"),
            );
        }
        if entra.is_some() {
            cx.problem(
                "spec.credentials.azure",
                format!("only used by provider AzureOpenAI, not {provider:?}"),
            );
        }
        return None;
    }
    let settings = spec.azure.clone().unwrap_or_default();
    let api = settings.api.unwrap_or_default();
    let version = settings.api_version.clone().unwrap_or_default();
    if !version.is_empty() {
        if !matches(rules::AZURE_API_VERSION_RE, &version) {
            cx.problem(
                "spec.azure.apiVersion",
                format!(
                    "{version:?} is not an api-version like 2024-10-21, 2025-04-01-preview, preview or latest"
                ),
            );
        } else if (api == AzureApi::Deployments) == matches!(version.as_str(), "preview" | "latest")
        {
            cx.problem(
                "spec.azure.apiVersion",
                "apiVersion must be a dated version like 2024-10-21 with api Deployments, and preview or latest with api V1",
            );
        }
    }
    let api = match api {
        AzureApi::V1 => pb::AzureApi::V1,
        AzureApi::Deployments => pb::AzureApi::Deployments,
    };
    Some(pb::AzureSettings {
        api: api as i32,
        api_version: version,
        entra: entra.and_then(|e| entra_credentials(cx, e)),
    })
}

fn check_guid(cx: &mut Ctx<'_>, path: &str, value: &str) {
    if !matches(rules::AZURE_GUID_RE, value) {
        cx.problem(
            path,
            format!("{value:?} is not a GUID like 00000000-0000-0000-0000-000000000000"),
        );
    }
}

fn check_tenant(cx: &mut Ctx<'_>, path: &str, value: &str) {
    if !matches(rules::AZURE_TENANT_RE, value) {
        cx.problem(
            path,
            format!("{value:?} is not a tenant GUID or a domain like contoso.onmicrosoft.com"),
        );
    }
}

fn entra_credentials(cx: &mut Ctx<'_>, e: &AzureCredentials) -> Option<pb::AzureCredentials> {
    use pb::azure_credentials::Source;
    let source = match (&e.client_secret, &e.workload_identity) {
        (Some(s), None) => Source::ClientSecret(client_secret(cx, s)?),
        (None, Some(w)) => {
            let client_id = w.client_id.clone().unwrap_or_default();
            let tenant_id = w.tenant_id.clone().unwrap_or_default();
            if !client_id.is_empty() {
                check_guid(
                    cx,
                    "spec.credentials.azure.workloadIdentity.clientId",
                    &client_id,
                );
            }
            if !tenant_id.is_empty() {
                check_tenant(
                    cx,
                    "spec.credentials.azure.workloadIdentity.tenantId",
                    &tenant_id,
                );
            }
            Source::WorkloadIdentity(pb::AzureWorkloadIdentity {
                client_id,
                tenant_id,
            })
        }
        _ => {
            cx.problem(
                "spec.credentials.azure",
                "set exactly one of clientSecret and workloadIdentity",
            );
            return None;
        }
    };
    Some(pb::AzureCredentials {
        source: Some(source),
    })
}

fn client_secret(cx: &mut Ctx<'_>, s: &AzureClientSecret) -> Option<pb::AzureClientSecret> {
    let path = "spec.credentials.azure.clientSecret";
    check_tenant(cx, &format!("{path}.tenantId"), &s.tenant_id);
    check_guid(cx, &format!("{path}.clientId"), &s.client_id);
    let authority_host = match &s.authority_host {
        None => String::new(),
        Some(h) => endpoint_url(h).unwrap_or_else(|msg| {
            cx.problem(format!("{path}.authorityHost"), msg);
            String::new()
        }),
    };
    let key = s.key.as_deref().unwrap_or(DEFAULT_AZURE_SECRET_KEY);
    let Some(data) = cx.inv.secret(cx.namespace, &s.secret_name) else {
        cx.problem(
            format!("{path}.secretName"),
            format!("Secret {:?} not found", s.secret_name),
        );
        return None;
    };
    let value = match data.get(key).map(|b| std::str::from_utf8(b).map(str::trim)) {
        Some(Ok(v)) if !v.is_empty() => v.to_string(),
        Some(Ok(_)) => {
            cx.problem(
                format!("{path}.key"),
                format!("key {key:?} of Secret {:?} is empty", s.secret_name),
            );
            return None;
        }
        Some(Err(_)) => {
            cx.problem(
                format!("{path}.key"),
                format!(
                    "key {key:?} of Secret {:?} is not UTF-8 text",
                    s.secret_name
                ),
            );
            return None;
        }
        None => {
            cx.problem(
                format!("{path}.key"),
                format!("key {key:?} not found in Secret {:?}", s.secret_name),
            );
            return None;
        }
    };
    Some(pb::AzureClientSecret {
        tenant_id: s.tenant_id.clone(),
        client_id: s.client_id.clone(),
        client_secret: value,
        authority_host,
    })
}

#[cfg(test)]
mod tests {
    use switchboard_proto as pb;

    use crate::Inventory;
    use crate::load::parse_documents;
    use crate::render::{RenderOptions, render_with};

    const SECRET: &str = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: entra}\nstringData: {clientSecret: ' s3cret ', other: x}\n";

    fn render(spec: &str) -> Result<pb::Backend, Vec<String>> {
        let yaml = format!(
            "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {{name: b}}\nspec: {spec}\n{SECRET}"
        );
        let mut inv = Inventory::default();
        inv.extend(parse_documents(&yaml, "t.yaml").unwrap())
            .unwrap();
        render_with(&inv, &RenderOptions::kubernetes())
            .map(|s| s.backends[0].clone())
            .map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_to_the_v1_api_with_an_api_key() {
        let b = render("{provider: AzureOpenAI, endpoint: 'https://r.openai.azure.com/', credentials: {secretRef: {name: entra, key: other}}}").unwrap();
        assert_eq!(b.provider, pb::ProviderKind::AzureOpenai as i32);
        assert_eq!(b.endpoint, "https://r.openai.azure.com");
        assert!(b.credential.is_some(), "the api-key");
        let a = b.azure.unwrap();
        assert_eq!(a.api, pb::AzureApi::V1 as i32);
        assert_eq!(a.api_version, "");
        assert!(a.entra.is_none());
    }

    #[test]
    fn deployments_and_entra_credentials() {
        let b = render("{provider: AzureOpenAI, endpoint: 'https://r.openai.azure.com', azure: {api: Deployments, apiVersion: 2025-04-01-preview}, credentials: {azure: {clientSecret: {tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47, clientId: 00000000-0000-0000-0000-000000000001, secretName: entra, authorityHost: 'https://login.microsoftonline.us'}}}}").unwrap();
        assert!(b.credential.is_none());
        let a = b.azure.unwrap();
        assert_eq!(a.api, pb::AzureApi::Deployments as i32);
        assert_eq!(a.api_version, "2025-04-01-preview");
        assert_eq!(
            a.entra.unwrap().source,
            Some(pb::azure_credentials::Source::ClientSecret(
                pb::AzureClientSecret {
                    tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
                    client_id: "00000000-0000-0000-0000-000000000001".into(),
                    client_secret: "s3cret".into(),
                    authority_host: "https://login.microsoftonline.us".into(),
                }
            ))
        );
        let b = render("{provider: AzureOpenAI, endpoint: 'https://r.openai.azure.com', azure: {apiVersion: preview}, credentials: {azure: {workloadIdentity: {}}}}").unwrap();
        let a = b.azure.unwrap();
        assert_eq!(a.api_version, "preview");
        assert_eq!(
            a.entra.unwrap().source,
            Some(pb::azure_credentials::Source::WorkloadIdentity(
                pb::AzureWorkloadIdentity::default()
            ))
        );
    }

    #[test]
    fn twin_rules_agree() {
        let re = |p: &str| regex::Regex::new(p).unwrap();
        let tenant = re(crate::v1alpha1::rules::AZURE_TENANT_RE);
        for ok in [
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
            "a.b",
        ] {
            assert!(tenant.is_match(ok), "{ok}");
        }
        for bad in ["contoso", "common", "a..b", "-a.b", ""] {
            assert!(!tenant.is_match(bad), "{bad}");
        }
        let version = re(crate::v1alpha1::rules::AZURE_API_VERSION_RE);
        for ok in ["2024-10-21", "2025-04-01-preview", "preview", "latest"] {
            assert!(version.is_match(ok), "{ok}");
        }
        for bad in ["v1", "2024-10", "2024-10-21-beta", ""] {
            assert!(!version.is_match(bad), "{bad}");
        }
    }
}
