//! Renders the Bedrock parts of an AIBackend: the `bedrock` block and the
//! AWS credentials (`credentials.aws`), into the snapshot's `BedrockSettings`.

use switchboard_proto as pb;

use super::Ctx;
use crate::v1alpha1::{AIBackendSpec, AwsCredentials, BedrockApi, Provider, rules};

/// The public Bedrock Runtime endpoint of a region.
pub(crate) fn bedrock_endpoint(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// Whether `region` looks like an AWS region (twin of `rules::AWS_REGION_RE`).
pub(crate) fn is_aws_region(region: &str) -> bool {
    let Some((head, number)) = region.rsplit_once('-') else {
        return false;
    };
    let mut parts = head.split('-');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    (2..=4).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !rest.is_empty()
        && rest
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The `bedrock` block (required for, and only for, Bedrock backends) and
/// the AWS credentials, which live under `credentials.aws`.
pub(crate) fn render_bedrock(
    cx: &mut Ctx<'_>,
    spec: &AIBackendSpec,
) -> Option<pb::BedrockSettings> {
    let provider = spec.provider;
    let aws = spec.credentials.as_ref().and_then(|c| c.aws.as_ref());
    if provider != Provider::Bedrock {
        if spec.bedrock.is_some() {
            cx.problem(
                "spec.bedrock",
                format!("only used by provider Bedrock, not {provider:?}"),
            );
        }
        if aws.is_some() {
            cx.problem(
                "spec.credentials.aws",
                format!("only used by provider Bedrock, not {provider:?}"),
            );
        }
        return None;
    }
    let Some(b) = &spec.bedrock else {
        cx.problem(
            "spec.bedrock",
            "bedrock settings (at least region) are required for provider Bedrock",
        );
        return None;
    };
    if !is_aws_region(&b.region) {
        cx.problem(
            "spec.bedrock.region",
            format!("{:?} is not an AWS region name like us-east-1", b.region),
        );
    }
    if let Some(list) = &b.allowed_betas {
        for (i, beta) in list.iter().enumerate() {
            if beta.trim().is_empty() || beta.contains(',') {
                cx.problem(
                    format!("spec.bedrock.allowedBetas[{i}]"),
                    format!("invalid beta flag {beta:?}"),
                );
            }
        }
    }
    let api = match b.api.unwrap_or_default() {
        BedrockApi::Auto => pb::BedrockApi::Auto,
        BedrockApi::InvokeModel => pb::BedrockApi::InvokeModel,
        BedrockApi::Converse => pb::BedrockApi::Converse,
    };
    Some(pb::BedrockSettings {
        region: b.region.clone(),
        api: api as i32,
        allowed_betas: b.allowed_betas.as_ref().map(|flags| pb::BetaList {
            flags: flags.clone(),
        }),
        aws: aws.and_then(|a| aws_credentials(cx, a)),
    })
}

fn aws_credentials(cx: &mut Ctx<'_>, a: &AwsCredentials) -> Option<pb::AwsCredentials> {
    use pb::aws_credentials::Source;
    let set = [
        a.access_key.is_some(),
        a.environment.is_some(),
        a.web_identity.is_some(),
        a.pod_identity.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        cx.problem(
            "spec.credentials.aws",
            "set exactly one of accessKey, environment, webIdentity and podIdentity",
        );
        return None;
    }
    let source = if let Some(k) = &a.access_key {
        let path = "spec.credentials.aws.accessKey.secretName";
        let Some(data) = cx.inv.secret(cx.namespace, &k.secret_name) else {
            cx.problem(path, format!("Secret {:?} not found", k.secret_name));
            return None;
        };
        let mut value = |key: &str, required: bool| -> Option<String> {
            let text = data.get(key).map(|b| std::str::from_utf8(b).map(str::trim));
            match text {
                Some(Ok(t)) if !t.is_empty() => Some(t.to_string()),
                None if !required => Some(String::new()),
                Some(Ok(_)) => {
                    cx.problem(
                        path,
                        format!("key {key:?} of Secret {:?} is empty", k.secret_name),
                    );
                    None
                }
                Some(Err(_)) => {
                    cx.problem(
                        path,
                        format!(
                            "key {key:?} of Secret {:?} is not UTF-8 text",
                            k.secret_name
                        ),
                    );
                    None
                }
                None => {
                    cx.problem(
                        path,
                        format!("key {key:?} not found in Secret {:?}", k.secret_name),
                    );
                    None
                }
            }
        };
        let id = value("accessKeyId", true);
        let secret = value("secretAccessKey", true);
        let token = value("sessionToken", false);
        Source::AccessKey(pb::AwsAccessKey {
            access_key_id: id?,
            secret_access_key: secret?,
            session_token: token?,
        })
    } else if a.environment.is_some() {
        if !cx.opts.env_allowed {
            cx.problem(
                "spec.credentials.aws.environment",
                "environment variables are only allowed in standalone mode; use accessKey, webIdentity or podIdentity",
            );
            return None;
        }
        Source::Environment(pb::AwsEnvironment {})
    } else if let Some(w) = &a.web_identity {
        let arn = w.role_arn.clone().unwrap_or_default();
        if !arn.is_empty() && !is_role_arn(&arn) {
            cx.problem(
                "spec.credentials.aws.webIdentity.roleArn",
                format!("{arn:?} is not an IAM role ARN like arn:aws:iam::123456789012:role/name"),
            );
        }
        let name = w.session_name.clone().unwrap_or_default();
        if !name.is_empty() && !is_session_name(&name) {
            cx.problem(
                "spec.credentials.aws.webIdentity.sessionName",
                "must be 2-64 letters, digits or +=,.@_-",
            );
        }
        Source::WebIdentity(pb::AwsWebIdentity {
            role_arn: arn,
            session_name: name,
        })
    } else {
        Source::PodIdentity(pb::AwsPodIdentity {})
    };
    Some(pb::AwsCredentials {
        source: Some(source),
    })
}

/// Twin of `rules::ROLE_ARN_RE`.
fn is_role_arn(arn: &str) -> bool {
    regex::Regex::new(rules::ROLE_ARN_RE).is_ok_and(|re| re.is_match(arn))
}

/// Twin of `rules::ROLE_SESSION_NAME_RE`.
fn is_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use switchboard_proto as pb;

    use crate::Inventory;
    use crate::load::parse_documents;
    use crate::render::{RenderOptions, render_with};

    const SECRET: &str = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: aws}\nstringData: {accessKeyId: AKIDEXAMPLE, secretAccessKey: ' s3cret ', sessionToken: tok}\n";

    fn render(spec: &str, extra: &str, kubernetes: bool) -> Result<pb::Backend, Vec<String>> {
        let yaml = format!(
            "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {{name: b}}\nspec: {spec}\n{extra}"
        );
        let mut inv = Inventory::default();
        inv.extend(parse_documents(&yaml, "t.yaml").unwrap())
            .unwrap();
        let opts = if kubernetes {
            RenderOptions::kubernetes()
        } else {
            RenderOptions {
                env_allowed: true,
                env: &|_| None,
            }
        };
        render_with(&inv, &opts)
            .map(|s| s.backends[0].clone())
            .map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn access_keys_from_a_secret_and_the_regional_endpoint() {
        let b = render(
            "{provider: Bedrock, bedrock: {region: eu-central-1, api: InvokeModel, allowedBetas: [context-1m-2025-08-07]}, credentials: {aws: {accessKey: {secretName: aws}}}}",
            SECRET,
            true,
        )
        .unwrap();
        assert_eq!(b.provider, pb::ProviderKind::Bedrock as i32);
        assert_eq!(
            b.endpoint,
            "https://bedrock-runtime.eu-central-1.amazonaws.com"
        );
        assert!(b.credential.is_none());
        let s = b.bedrock.unwrap();
        assert_eq!(s.region, "eu-central-1");
        assert_eq!(s.api, pb::BedrockApi::InvokeModel as i32);
        assert_eq!(s.allowed_betas.unwrap().flags, ["context-1m-2025-08-07"]);
        assert_eq!(
            s.aws.unwrap().source,
            Some(pb::aws_credentials::Source::AccessKey(pb::AwsAccessKey {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "s3cret".into(),
                session_token: "tok".into(),
            }))
        );
    }

    #[test]
    fn api_key_irsa_pod_identity_and_an_endpoint_override() {
        let key = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: k}\nstringData: {apiKey: ABSKexample}\n";
        let b = render(
            "{provider: Bedrock, endpoint: 'https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com', bedrock: {region: us-east-1}, credentials: {secretRef: {name: k}}}",
            key,
            true,
        )
        .unwrap();
        assert_eq!(
            b.endpoint,
            "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com"
        );
        assert!(
            b.credential.is_some(),
            "the API key is the bearer credential"
        );
        let s = b.bedrock.unwrap();
        assert!(s.aws.is_none() && s.allowed_betas.is_none());
        assert_eq!(s.api, pb::BedrockApi::Auto as i32);

        let b = render(
            "{provider: Bedrock, bedrock: {region: us-gov-west-1}, credentials: {aws: {webIdentity: {roleArn: 'arn:aws-us-gov:iam::123456789012:role/bedrock', sessionName: gw}}}}",
            "",
            true,
        )
        .unwrap();
        assert_eq!(
            b.bedrock.unwrap().aws.unwrap().source,
            Some(pb::aws_credentials::Source::WebIdentity(
                pb::AwsWebIdentity {
                    role_arn: "arn:aws-us-gov:iam::123456789012:role/bedrock".into(),
                    session_name: "gw".into(),
                }
            ))
        );
        let b = render(
            "{provider: Bedrock, bedrock: {region: us-east-1}, credentials: {aws: {podIdentity: {}}}}",
            "",
            true,
        )
        .unwrap();
        assert!(matches!(
            b.bedrock.unwrap().aws.unwrap().source,
            Some(pb::aws_credentials::Source::PodIdentity(_))
        ));
        let b = render(
            "{provider: Bedrock, bedrock: {region: us-east-1, allowedBetas: []}, credentials: {aws: {environment: {}}}}",
            "",
            false,
        )
        .unwrap();
        let s = b.bedrock.unwrap();
        assert_eq!(
            s.allowed_betas.unwrap().flags,
            Vec::<String>::new(),
            "empty forwards none"
        );
        assert!(matches!(
            s.aws.unwrap().source,
            Some(pb::aws_credentials::Source::Environment(_))
        ));
    }

    #[test]
    fn a_secret_without_the_session_token_is_fine_but_not_without_the_keys() {
        let partial = SECRET.replace(", sessionToken: tok", "");
        let b = render(
            "{provider: Bedrock, bedrock: {region: us-east-1}, credentials: {aws: {accessKey: {secretName: aws}}}}",
            &partial,
            true,
        )
        .unwrap();
        match b.bedrock.unwrap().aws.unwrap().source {
            Some(pb::aws_credentials::Source::AccessKey(k)) => assert_eq!(k.session_token, ""),
            other => panic!("{other:?}"),
        }
        let blank = SECRET.replace("AKIDEXAMPLE", "' '");
        assert_eq!(
            render(
                "{provider: Bedrock, bedrock: {region: us-east-1}, credentials: {aws: {accessKey: {secretName: aws}}}}",
                &blank,
                true,
            )
            .unwrap_err(),
            ["AIBackend default/b: spec.credentials.aws.accessKey.secretName: key \"accessKeyId\" of Secret \"aws\" is empty"]
        );
    }

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "us-gov-west-1",
            "cn-north-1",
            "eusc-de-east-1",
            "il-central-1",
        ] {
            assert!(super::is_aws_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "useast1",
            "u-east-1",
            "us-east-100",
            "us--1",
            "us-east-1 ",
        ] {
            assert!(!super::is_aws_region(bad), "{bad}");
        }
        let re = regex::Regex::new(crate::v1alpha1::rules::AWS_REGION_RE).unwrap();
        for r in [
            "us-east-1",
            "us-gov-west-1",
            "eusc-de-east-1",
            "us-east",
            "US-EAST-1",
            "us--1",
        ] {
            assert_eq!(
                re.is_match(r),
                super::is_aws_region(r),
                "twin rules disagree on {r}"
            );
        }
    }
}
