//! The permissions the controller needs in Kubernetes mode ([`RULES`], the
//! RBAC `docs/controller-kubernetes.md` grants) and the startup check that
//! it has them ([`check`]): one `SelfSubjectAccessReview` per verb, so a
//! missing permission stops the controller at once with a message naming
//! it, instead of a watch that retries forever or a status that is never
//! written.

use ::kube::Client;
use ::kube::api::{Api, PostParams};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use std::time::Duration;

/// Where a rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Where {
    /// In every watched namespace (cluster-wide without `--namespace`).
    Watched,
    /// In the Lease namespace (`--lease-namespace`).
    LeaseNamespace,
    /// Cluster-wide (a cluster-scoped resource).
    Cluster,
}

/// One RBAC rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Resources, `resource/subresource` for a subresource.
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
    /// Where.
    pub scope: Where,
    /// Why the controller needs it.
    pub why: &'static str,
}

/// Every permission the controller uses, and nothing more.
pub const RULES: &[Rule] = &[
    Rule {
        group: "switchboard.dev",
        resources: &["aibackends", "airoutes", "aiteams"],
        verbs: &["list", "watch"],
        scope: Where::Watched,
        why: "the objects it renders",
    },
    Rule {
        group: "switchboard.dev",
        resources: &["aibackends/status", "airoutes/status", "aiteams/status"],
        verbs: &["patch"],
        scope: Where::Watched,
        why: "status (server-side apply is a patch)",
    },
    Rule {
        group: "",
        resources: &["secrets"],
        verbs: &["list", "watch"],
        scope: Where::Watched,
        why: "the referenced Secrets, one watch per Secret with a metadata.name field selector",
    },
    Rule {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
        scope: Where::Watched,
        why: "Events on transitions (patch counts a repeated Event)",
    },
    Rule {
        group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["get", "list", "watch", "create", "update", "delete"],
        scope: Where::LeaseNamespace,
        why: "leader election, and each replica's view of its data planes",
    },
    Rule {
        group: "authentication.k8s.io",
        resources: &["tokenreviews"],
        verbs: &["create"],
        scope: Where::Cluster,
        why: "checking each data plane's ServiceAccount token",
    },
];

/// A permission the controller lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// API group.
    pub group: String,
    /// Resource (with `/subresource`).
    pub resource: String,
    /// Verb.
    pub verb: String,
    /// Namespace; `None`: cluster-wide.
    pub namespace: Option<String>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        match &self.namespace {
            Some(ns) => write!(
                f,
                "{} {} ({group}) in namespace {ns}",
                self.verb, self.resource
            ),
            None => write!(
                f,
                "{} {} ({group}) in all namespaces",
                self.verb, self.resource
            ),
        }
    }
}

/// Every (group, resource, verb, namespace) to check for `namespaces` (all
/// when empty) and the Lease namespace.
pub fn required(namespaces: &[String], lease_namespace: &str) -> Vec<Missing> {
    let watched: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let mut out = Vec::new();
    for rule in RULES {
        let scopes = match rule.scope {
            Where::Watched => watched.clone(),
            Where::LeaseNamespace => vec![Some(lease_namespace.to_string())],
            Where::Cluster => vec![None],
        };
        for ns in &scopes {
            for resource in rule.resources {
                for verb in rule.verbs {
                    out.push(Missing {
                        group: rule.group.to_string(),
                        resource: resource.to_string(),
                        verb: verb.to_string(),
                        namespace: ns.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The permissions of [`required`] this identity lacks, asked with
/// `SelfSubjectAccessReview`s (which every authenticated identity may
/// create). Retries while the API server cannot be reached.
pub async fn check(client: &Client, namespaces: &[String], lease_namespace: &str) -> Vec<Missing> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for p in required(namespaces, lease_namespace) {
        let (resource, subresource) = match p.resource.split_once('/') {
            Some((r, s)) => (r.to_string(), Some(s.to_string())),
            None => (p.resource.clone(), None),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(p.group.clone()),
                    resource: Some(resource),
                    subresource,
                    verb: Some(p.verb.clone()),
                    namespace: p.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut delay = Duration::from_millis(250);
        let allowed = loop {
            match api.create(&PostParams::default(), &review).await {
                Ok(r) => break r.status.is_some_and(|s| s.allowed),
                Err(e) => {
                    tracing::warn!(error = %e, "checking RBAC permissions failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        };
        if !allowed {
            missing.push(p);
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    type Flat = BTreeSet<(String, String, String, Where)>;

    fn flat(rules: &[Rule]) -> Flat {
        let mut out = Flat::new();
        for r in rules {
            for res in r.resources {
                for v in r.verbs {
                    out.insert((r.group.into(), res.to_string(), v.to_string(), r.scope));
                }
            }
        }
        out
    }

    fn root() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every backticked word of a table cell.
    fn ticked(cell: &str) -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(|w| {
                if w == "\"\"" {
                    String::new()
                } else {
                    w.to_string()
                }
            })
            .collect()
    }

    #[test]
    fn the_docs_the_fixture_and_the_controller_grant_the_same_rbac() {
        let docs = std::fs::read_to_string(root().join("docs/controller-kubernetes.md")).unwrap();
        let section = docs
            .split("## RBAC (least privilege)")
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        let mut documented = Flat::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').collect();
            let (group, resources, verbs) = (ticked(cells[1]), ticked(cells[2]), ticked(cells[3]));
            let scope = if resources.iter().any(|r| r == "leases") {
                Where::LeaseNamespace
            } else if resources.iter().any(|r| r == "tokenreviews") {
                Where::Cluster
            } else {
                Where::Watched
            };
            for res in &resources {
                for v in &verbs {
                    documented.insert((group[0].clone(), res.clone(), v.clone(), scope));
                }
            }
        }
        assert_eq!(
            documented,
            flat(RULES),
            "docs/controller-kubernetes.md vs RULES"
        );

        let text =
            std::fs::read_to_string(root().join("e2e/fixtures/controller-rbac.yaml")).unwrap();
        let mut fixture = Flat::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let role: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            let scope = match role["metadata"]["name"].as_str().unwrap() {
                "switchboard-controller" => Where::Watched,
                "switchboard-controller-leases" => Where::LeaseNamespace,
                "switchboard-controller-tokenreviews" => Where::Cluster,
                other => panic!("unexpected role {other}"),
            };
            for rule in role["rules"].as_sequence().unwrap() {
                let list = |k: &str| -> Vec<String> {
                    rule[k]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                };
                for g in list("apiGroups") {
                    for res in list("resources") {
                        for v in list("verbs") {
                            fixture.insert((g.clone(), res.clone(), v, scope));
                        }
                    }
                }
            }
        }
        assert_eq!(
            fixture,
            flat(RULES),
            "e2e/fixtures/controller-rbac.yaml vs RULES"
        );
    }

    #[test]
    fn namespaced_mode_checks_each_namespace_and_the_lease_namespace() {
        let all = required(&["a".into(), "b".into()], "sys");
        let watch_secrets: Vec<Option<&str>> = all
            .iter()
            .filter(|p| p.resource == "secrets" && p.verb == "watch")
            .map(|p| p.namespace.as_deref())
            .collect();
        assert_eq!(watch_secrets, [Some("a"), Some("b")]);
        assert!(
            all.iter()
                .filter(|p| p.resource == "leases")
                .all(|p| p.namespace.as_deref() == Some("sys"))
        );
        assert!(
            all.iter()
                .filter(|p| p.resource == "tokenreviews")
                .all(|p| p.namespace.is_none()),
            "TokenReviews are cluster-scoped"
        );
        let cluster = required(&[], "sys");
        assert!(
            cluster
                .iter()
                .filter(|p| p.resource != "leases")
                .all(|p| p.namespace.is_none())
        );
        assert_eq!(
            cluster[0].to_string(),
            "list aibackends (switchboard.dev) in all namespaces"
        );
    }
}
