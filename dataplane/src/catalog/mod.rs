//! The model catalog of a route: every exact model name a client can ask
//! for, what it resolves to and what is known about it. Built once per
//! snapshot (pure, from the route and its backends); `GET /v1/models`
//! renders it in the shape the caller understands ([`shapes`]).
//!
//! A name is listed when a request for it would be served: its alias (if
//! any) resolves to a routed name, a rule matches that name, and one of the
//! rule's backends serves it. Candidates are the exact alias patterns, the
//! exact rule patterns and the models declared by the backends a rule sends
//! to (when the rule's patterns match them). Glob patterns cannot be listed.
//! Teams put no restriction on models, so every caller of a route (who may
//! use it at all) sees the same list.

pub mod shapes;

use std::collections::BTreeSet;

use switchboard_proto as pb;

use crate::routing::{AliasTable, RuleSet, glob_matches};

/// One listed model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The name clients send (`model`).
    pub id: String,
    /// The routed name it resolves to (equal to `id` unless an alias applies).
    pub target: String,
    /// Context window in tokens, from the `contextWindow` of the backend
    /// model that serves it first (its rule's first group); `None` when not
    /// configured.
    pub context_window: Option<u32>,
}

impl CatalogEntry {
    /// Whether an alias rewrites this name.
    pub fn is_alias(&self) -> bool {
        self.id != self.target
    }

    /// A human name: the id, with the routed model for an alias
    /// (`sonnet (claude-sonnet-4)`).
    pub fn display_name(&self) -> String {
        if self.is_alias() {
            format!("{} ({})", self.id, self.target)
        } else {
            self.id.clone()
        }
    }

    /// One line about the entry: what it resolves to and its context window.
    pub fn description(&self) -> String {
        let mut text = if self.is_alias() {
            format!("Alias of {}", self.target)
        } else {
            "Served by Switchboard".to_string()
        };
        if let Some(n) = self.context_window {
            text.push_str(&format!("; context window {n} tokens"));
        }
        text
    }
}

/// A route's listable models, sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelCatalog {
    entries: Vec<CatalogEntry>,
}

impl ModelCatalog {
    /// Builds the catalog of route `r` whose rules reference `backends`.
    pub fn build(r: &pb::Route, backends: &[pb::Backend]) -> Self {
        let aliases = AliasTable::new(&r.aliases);
        let rules = RuleSet::new(&r.rules);
        let mut names = BTreeSet::new();
        let exact = |p: &str| !p.is_empty() && !p.contains('*');
        for alias in &r.aliases {
            if exact(&alias.pattern) && !alias.target.is_empty() {
                names.insert(alias.pattern.clone());
            }
        }
        for rule in &r.rules {
            names.extend(rule.models.iter().filter(|p| exact(p)).cloned());
            for wb in rule.groups.iter().flat_map(|g| &g.backends) {
                let Some(b) = backends.iter().find(|b| b.id == wb.backend) else {
                    continue;
                };
                for m in &b.models {
                    let matched = rule.models.is_empty()
                        || rule.models.iter().any(|p| glob_matches(p, &m.name));
                    if matched {
                        names.insert(m.name.clone());
                    }
                }
            }
        }
        let entries = names
            .into_iter()
            .filter_map(|id| {
                let target = aliases.resolve(&id).into_owned();
                let rule = &r.rules[rules.select_index(&target)?];
                let context_window = served_by(rule, &target, backends)?;
                Some(CatalogEntry {
                    id,
                    target,
                    context_window,
                })
            })
            .collect();
        Self { entries }
    }

    /// The entries, sorted by id.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The listed ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.id.clone()).collect()
    }
}

/// Whether a backend of `rule` serves the routed name `target`: `None` when
/// none does, else the context window of the first one that does (groups in
/// priority order, backends in declaration order). A backend reference with
/// its own `model` is asked for that provider model whatever it declares.
fn served_by(rule: &pb::Rule, target: &str, backends: &[pb::Backend]) -> Option<Option<u32>> {
    let window = |m: &pb::ModelMapping| (m.context_window > 0).then_some(m.context_window);
    for wb in rule.groups.iter().flat_map(|g| &g.backends) {
        let Some(b) = backends.iter().find(|b| b.id == wb.backend) else {
            continue;
        };
        if !wb.model.is_empty() {
            let declared = b
                .models
                .iter()
                .find(|m| m.provider_model == wb.model || m.name == wb.model);
            return Some(declared.and_then(window));
        }
        if b.models.is_empty() {
            return Some(None);
        }
        if let Some(m) = b.models.iter().find(|m| m.name == target) {
            return Some(window(m));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(id: &str, models: &[(&str, u32)]) -> pb::Backend {
        pb::Backend {
            id: id.into(),
            models: models
                .iter()
                .map(|(name, window)| pb::ModelMapping {
                    name: (*name).into(),
                    context_window: *window,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn rule(models: &[&str], backends: &[(&str, &str)]) -> pb::Rule {
        pb::Rule {
            models: models.iter().map(|m| (*m).into()).collect(),
            groups: vec![pb::PriorityGroup {
                backends: backends
                    .iter()
                    .map(|(b, model)| pb::WeightedBackend {
                        backend: (*b).into(),
                        model: (*model).into(),
                        weight: 1,
                    })
                    .collect(),
            }],
            ..Default::default()
        }
    }

    fn alias(pattern: &str, target: &str) -> pb::ModelAlias {
        pb::ModelAlias {
            pattern: pattern.into(),
            target: target.into(),
        }
    }

    #[test]
    fn lists_what_a_request_could_reach_with_aliases_and_windows() {
        let backends = [
            backend(
                "ns/anthropic",
                &[("claude-sonnet-4", 200_000), ("claude-haiku-4-5", 0)],
            ),
            backend("ns/openai", &[("gpt-4.1", 1_047_576)]),
        ];
        let route = pb::Route {
            aliases: vec![
                alias("sonnet", "claude-sonnet-4"),
                alias("claude-haiku-*", "gpt-4.1"),
                alias("dangling", "no-such-model"),
            ],
            rules: vec![
                rule(&["claude-*"], &[("ns/anthropic", "")]),
                rule(&["gpt-*"], &[("ns/openai", "")]),
                rule(&["exact-name"], &[("ns/openai", "gpt-4.1")]),
            ],
            ..Default::default()
        };
        let catalog = ModelCatalog::build(&route, &backends);
        let got: Vec<_> = catalog
            .entries()
            .iter()
            .map(|e| (e.id.as_str(), e.target.as_str(), e.context_window))
            .collect();
        assert_eq!(
            got,
            [
                // The glob alias applies before rules: asking for this name reaches gpt-4.1.
                ("claude-haiku-4-5", "gpt-4.1", Some(1_047_576)),
                ("claude-sonnet-4", "claude-sonnet-4", Some(200_000)),
                ("exact-name", "exact-name", Some(1_047_576)),
                ("gpt-4.1", "gpt-4.1", Some(1_047_576)),
                ("sonnet", "claude-sonnet-4", Some(200_000)),
            ]
        );
        let sonnet = &catalog.entries()[4];
        assert_eq!(sonnet.display_name(), "sonnet (claude-sonnet-4)");
        assert_eq!(
            sonnet.description(),
            "Alias of claude-sonnet-4; context window 200000 tokens"
        );
        assert_eq!(catalog.entries()[3].display_name(), "gpt-4.1");
    }

    #[test]
    fn a_backend_without_models_serves_any_name() {
        let route = pb::Route {
            rules: vec![rule(&["local-*", "llama3"], &[("ns/ollama", "")])],
            ..Default::default()
        };
        let catalog = ModelCatalog::build(&route, &[backend("ns/ollama", &[])]);
        assert_eq!(catalog.ids(), ["llama3"]);
        assert_eq!(catalog.entries()[0].context_window, None);
        assert_eq!(catalog.entries()[0].description(), "Served by Switchboard");
    }
}
