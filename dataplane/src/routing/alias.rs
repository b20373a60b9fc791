//! Model aliases: rewrite the model a client asks for into the routed name.
//!
//! Resolution is one step: an exact alias wins, then the most specific glob
//! (see [`super::glob::PatternTable`]); without a matching alias the model
//! name is used unchanged. An alias target is never resolved again, so
//! aliases cannot chain or loop.

use std::borrow::Cow;

use switchboard_proto as pb;

use super::glob::PatternTable;

/// A route's aliases, ready for lookup.
#[derive(Debug, Clone, Default)]
pub struct AliasTable {
    table: PatternTable<String>,
}

impl AliasTable {
    /// Builds the table from the route's aliases in declaration order.
    /// Aliases with an empty pattern or an empty target are ignored.
    pub fn new(aliases: &[pb::ModelAlias]) -> Self {
        let entries = aliases
            .iter()
            .filter(|a| !a.target.is_empty())
            .map(|a| (a.pattern.clone(), a.target.clone()));
        Self {
            table: PatternTable::new(entries),
        }
    }

    /// The routed model name for a requested one.
    pub fn resolve<'a>(&'a self, model: &'a str) -> Cow<'a, str> {
        match self.table.lookup(model) {
            Some(target) => Cow::Borrowed(target.as_str()),
            None => Cow::Borrowed(model),
        }
    }

    /// Number of aliases.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are no aliases.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(pattern: &str, target: &str) -> pb::ModelAlias {
        pb::ModelAlias {
            pattern: pattern.into(),
            target: target.into(),
        }
    }

    #[test]
    fn resolution_table() {
        let table = AliasTable::new(&[
            alias("*", "default-model"),
            alias("claude-*", "claude-sonnet-4"),
            alias("claude-3-5-haiku-*", "claude-haiku-4"),
            alias("claude-3-5-haiku-latest", "claude-haiku-3-5"),
            alias("gpt-4o", "gpt-4.1"),
            // Chains are not followed: gpt-4.1 is not re-resolved.
            alias("gpt-4.1", "gpt-5"),
            alias("ignored", ""),
        ]);
        let cases = [
            ("claude-3-5-haiku-latest", "claude-haiku-3-5"),
            ("claude-3-5-haiku-20241022", "claude-haiku-4"),
            ("claude-opus-4-1", "claude-sonnet-4"),
            ("gpt-4o", "gpt-4.1"),
            ("gpt-4.1", "gpt-5"),
            ("llama3", "default-model"),
            ("ignored", "default-model"),
        ];
        for (requested, want) in cases {
            assert_eq!(table.resolve(requested), want, "{requested:?}");
        }
        assert_eq!(table.len(), 6);
    }

    #[test]
    fn an_identity_alias_keeps_an_exact_name_out_of_a_glob() {
        // docs/routing.md, "Aliases": the documented way to exempt one name.
        let table = AliasTable::new(&[
            alias("claude-*", "claude-sonnet-4"),
            alias("claude-haiku-4-5", "claude-haiku-4-5"),
        ]);
        assert_eq!(table.resolve("claude-haiku-4-5"), "claude-haiku-4-5");
        assert_eq!(table.resolve("claude-opus-4"), "claude-sonnet-4");
        let glob_only = AliasTable::new(&[alias("claude-*", "claude-sonnet-4")]);
        assert_eq!(glob_only.resolve("claude-haiku-4-5"), "claude-sonnet-4");
    }

    #[test]
    fn no_alias_keeps_the_model() {
        let table = AliasTable::new(&[alias("gpt-*", "gpt-5")]);
        assert_eq!(table.resolve("claude-sonnet-4"), "claude-sonnet-4");
        assert!(matches!(table.resolve("x"), Cow::Borrowed("x")));
        assert!(AliasTable::default().is_empty());
        assert_eq!(AliasTable::default().resolve("m").into_owned(), "m");
    }
}
