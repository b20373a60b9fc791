//! The `model` and `requested_model` metric label values of a route.
//!
//! Clients choose the model names they send; a route with a glob rule
//! forwards any name that matches. So a name becomes a label value only if
//! the configuration names it: an exact rule pattern, an alias (its name or
//! target), a backend reference's `model`, a model the route's backends
//! declare (listed name or provider id), or a `pricing` entry. Any other
//! name is reported as the glob pattern of configuration that matched it
//! (an alias pattern first, then a rule's, then a price's), and as
//! [`OTHER_MODEL`] when only a catch-all (`*`, or a rule without patterns)
//! did. The number of series is therefore bounded by
//! the configuration, whatever clients send.

use switchboard_proto as pb;

use crate::lookup::NameSet;
use crate::metrics::Label;
use crate::routing::{PatternTable, is_glob};

/// The label of a model name that no configuration names or matches.
pub const OTHER_MODEL: &str = "other";

/// The model label values of one route.
#[derive(Debug, Clone)]
pub struct ModelLabels {
    exact: NameSet<Label>,
    aliases: PatternTable<Label>,
    rules: PatternTable<Label>,
    prices: PatternTable<Label>,
    other: Label,
}

impl Default for ModelLabels {
    fn default() -> Self {
        Self {
            exact: NameSet::default(),
            aliases: PatternTable::default(),
            rules: PatternTable::default(),
            prices: PatternTable::default(),
            other: Label::from(OTHER_MODEL),
        }
    }
}

impl ModelLabels {
    /// The label values of route `r` whose rules reference `backends`.
    pub fn new(r: &pb::Route, backends: &[pb::Backend]) -> Self {
        let mut exact = NameSet::default();
        let mut keep = |name: &str| {
            if !name.is_empty() && !is_glob(name) {
                exact.insert(Label::from(name));
            }
        };
        for a in &r.aliases {
            keep(&a.pattern);
            keep(&a.target);
        }
        for p in &r.pricing {
            keep(&p.model);
        }
        for rule in &r.rules {
            for m in &rule.models {
                keep(m);
            }
            for wb in rule
                .groups
                .iter()
                .chain(&rule.context_fallback)
                .flat_map(|g| &g.backends)
            {
                keep(&wb.model);
                if let Some(b) = backends.iter().find(|b| b.id == wb.backend) {
                    for m in &b.models {
                        keep(&m.name);
                        keep(&m.provider_model);
                    }
                }
            }
        }
        let globs = |patterns: Vec<&String>| {
            PatternTable::new(
                patterns
                    .into_iter()
                    .filter(|p| is_glob(p))
                    .map(|p| (p.clone(), Label::from(p.as_str()))),
            )
        };
        Self {
            exact,
            aliases: globs(r.aliases.iter().map(|a| &a.pattern).collect()),
            rules: globs(r.rules.iter().flat_map(|r| &r.models).collect()),
            prices: globs(r.pricing.iter().map(|p| &p.model).collect()),
            other: Label::from(OTHER_MODEL),
        }
    }

    /// The label value of a model name (shared: cloning it copies no text).
    pub fn label(&self, model: &str) -> &Label {
        if let Some(name) = self.exact.get(model) {
            return name;
        }
        fn specific<'a>(t: &'a PatternTable<Label>, model: &str) -> Option<&'a Label> {
            t.lookup(model).filter(|p| p.chars().any(|c| c != '*'))
        }
        specific(&self.aliases, model)
            .or_else(|| specific(&self.rules, model))
            .or_else(|| specific(&self.prices, model))
            .unwrap_or(&self.other)
    }

    /// How many distinct values [`Self::label`] can return (for tests).
    pub fn bound(&self) -> usize {
        self.exact.len() + self.aliases.len() + self.rules.len() + self.prices.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn route() -> pb::Route {
        pb::Route {
            id: "ns/main".into(),
            aliases: vec![
                pb::ModelAlias {
                    pattern: "sonnet".into(),
                    target: "claude-sonnet-4".into(),
                },
                pb::ModelAlias {
                    pattern: "gpt-4o-*".into(),
                    target: "gpt-4o".into(),
                },
            ],
            rules: vec![
                pb::Rule {
                    models: vec!["claude-*".into(), "gpt-4o".into()],
                    groups: vec![pb::PriorityGroup {
                        backends: vec![
                            pb::WeightedBackend {
                                backend: "ns/primary".into(),
                                weight: 1,
                                model: String::new(),
                            },
                            pb::WeightedBackend {
                                backend: "ns/fallback".into(),
                                weight: 1,
                                model: "cheap-model".into(),
                            },
                        ],
                    }],
                    context_fallback: vec![],
                },
                pb::Rule {
                    models: vec![],
                    groups: vec![],
                    context_fallback: vec![],
                },
            ],
            pricing: vec![
                pb::ModelPrice {
                    model: "priced".into(),
                    ..Default::default()
                },
                pb::ModelPrice {
                    model: "llama-*".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn backends() -> Vec<pb::Backend> {
        vec![pb::Backend {
            id: "ns/primary".into(),
            models: vec![pb::ModelMapping {
                name: "claude-sonnet-4".into(),
                provider_model: "claude-sonnet-4-20250514".into(),
                context_window: 0,
            }],
            ..Default::default()
        }]
    }

    #[test]
    fn configured_names_are_their_own_label_and_the_rest_fold() {
        let l = ModelLabels::new(&route(), &backends());
        for name in [
            "sonnet",
            "claude-sonnet-4",
            "claude-sonnet-4-20250514",
            "gpt-4o",
            "cheap-model",
        ] {
            assert_eq!(l.label(name), name);
        }
        assert_eq!(l.label("claude-opus-9"), "claude-*");
        assert_eq!(l.label("gpt-4o-2024-08-06"), "gpt-4o-*");
        // Only the catch-all rule matches; a price names or matches it.
        assert_eq!(l.label("mistral-3"), OTHER_MODEL);
        assert_eq!(l.label("priced"), "priced");
        assert_eq!(l.label("llama-3"), "llama-*");
        assert_eq!(l.label(&"x".repeat(900_000)), OTHER_MODEL);
    }

    #[test]
    fn ten_thousand_random_names_make_a_bounded_set_of_labels() {
        let l = ModelLabels::new(&route(), &backends());
        let mut rng = fastrand::Rng::with_seed(13);
        let mut seen = HashSet::new();
        for i in 0..10_000 {
            let prefix = ["claude-", "gpt-4o-", "", "sonnet"][i % 4];
            let name: String = (0..rng.usize(1..40)).map(|_| rng.alphanumeric()).collect();
            seen.insert(l.label(&format!("{prefix}{name}")).to_owned());
        }
        assert!(seen.len() <= l.bound(), "{seen:?}");
        assert_eq!(
            seen,
            HashSet::from(["claude-*".into(), "gpt-4o-*".into(), OTHER_MODEL.into()])
        );
    }
}
