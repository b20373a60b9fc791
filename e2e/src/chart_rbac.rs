//! The chart's RBAC as data, for proving it is exactly what the controller needs: every
//! (API group, resource, verb) a Role or ClusterRole grants, and copies of those roles with one
//! grant taken away, bound to another ServiceAccount.

use serde_json::{Value, json};

/// One permission: `verb` on `resource` (a subresource as `aibackends/status`) in `group`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// API group (`""` for core).
    pub group: String,
    /// Resource, with its subresource after a `/`.
    pub resource: String,
    /// Verb.
    pub verb: String,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {} ({group})", self.verb, self.resource)
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Every grant of `roles` (Roles and ClusterRoles), sorted, without duplicates.
pub fn grants(roles: &[&Value]) -> Vec<Grant> {
    let mut out = Vec::new();
    for role in roles {
        for rule in role["rules"].as_array().into_iter().flatten() {
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        out.push(Grant {
                            group: group.clone(),
                            resource: resource.clone(),
                            verb,
                        });
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `rules` without `grant`: the rules that hold it are split so that only that one verb on that
/// one resource goes away.
pub fn rules_without(rules: &Value, grant: &Grant) -> Value {
    let mut out = Vec::new();
    for rule in rules.as_array().into_iter().flatten() {
        let groups = strings(&rule["apiGroups"]);
        let resources = strings(&rule["resources"]);
        let verbs = strings(&rule["verbs"]);
        let holds = groups.contains(&grant.group)
            && resources.contains(&grant.resource)
            && verbs.contains(&grant.verb);
        if !holds {
            out.push(rule.clone());
            continue;
        }
        let with = |groups: Vec<String>, resources: Vec<String>, verbs: Vec<String>| {
            let mut r = rule.clone();
            r["apiGroups"] = json!(groups);
            r["resources"] = json!(resources);
            r["verbs"] = json!(verbs);
            r
        };
        let other_groups: Vec<String> = groups
            .iter()
            .filter(|g| **g != grant.group)
            .cloned()
            .collect();
        if !other_groups.is_empty() {
            out.push(with(other_groups, resources.clone(), verbs.clone()));
        }
        let other_resources: Vec<String> = resources
            .iter()
            .filter(|r| **r != grant.resource)
            .cloned()
            .collect();
        if !other_resources.is_empty() {
            out.push(with(
                vec![grant.group.clone()],
                other_resources,
                verbs.clone(),
            ));
        }
        let other_verbs: Vec<String> = verbs
            .iter()
            .filter(|v| **v != grant.verb)
            .cloned()
            .collect();
        if !other_verbs.is_empty() {
            out.push(with(
                vec![grant.group.clone()],
                vec![grant.resource.clone()],
                other_verbs,
            ));
        }
    }
    json!(out)
}

/// How the controller names `grant` when it lacks it: it checks every permission it needs at
/// startup and exits with `missing RBAC permissions (...): list secrets (core) in namespace ns`
/// (see `controller/src/kube/rbac.rs`).
pub fn forbidden_text(grant: &Grant) -> String {
    let group = if grant.group.is_empty() {
        "core"
    } else {
        &grant.group
    };
    format!("{} {} ({group}) in ", grant.verb, grant.resource)
}

/// The prefix of the controller's startup refusal.
pub const MISSING_PERMISSIONS: &str = "missing RBAC permissions";

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> Value {
        json!({"kind": "Role", "rules": [
            {"apiGroups": ["switchboard.dev"], "resources": ["aibackends", "airoutes"], "verbs": ["list", "watch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["l"], "verbs": ["get", "update"]},
        ]})
    }

    fn grant(group: &str, resource: &str, verb: &str) -> Grant {
        Grant {
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
        }
    }

    #[test]
    fn grants_are_listed_one_by_one() {
        let r = role();
        let g = grants(&[&r]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], grant("coordination.k8s.io", "leases", "get"));
    }

    #[test]
    fn removing_one_grant_keeps_every_other() {
        let r = role();
        let target = grant("switchboard.dev", "airoutes", "watch");
        let rules = rules_without(&r["rules"], &target);
        let after = grants(&[&json!({"rules": rules})]);
        let mut expected = grants(&[&r]);
        expected.retain(|g| *g != target);
        assert_eq!(after, expected);
        // resourceNames survive the split
        let lease = grant("coordination.k8s.io", "leases", "update");
        let rules = rules_without(&r["rules"], &lease);
        assert!(rules.to_string().contains(r#""resourceNames":["l"]"#));
    }

    #[test]
    fn the_refusal_names_verb_resource_and_group() {
        assert_eq!(
            forbidden_text(&grant("switchboard.dev", "aibackends/status", "patch")),
            "patch aibackends/status (switchboard.dev) in "
        );
        assert_eq!(
            forbidden_text(&grant("", "secrets", "list")),
            "list secrets (core) in "
        );
    }
}
