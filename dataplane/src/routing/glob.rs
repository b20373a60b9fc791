//! Model-name patterns: exact names and `*` globs, and a lookup table that
//! picks the most specific matching pattern.
//!
//! A glob has one wildcard, `*`, matching any run of characters (including
//! none). Everything else is literal and case-sensitive. When several
//! patterns match a name, an exact pattern wins; among globs the one with
//! more literal characters wins, then the one with fewer `*`, then the one
//! declared first.

use std::cmp::Reverse;

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
///
/// Matching is byte-wise, which is exact for UTF-8 because `*` is ASCII and
/// literal runs always start on a character boundary.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    let (mut pi, mut ni) = (0, 0);
    // Position of the last `*` seen and the name position it was tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((star, at)) = backtrack {
            // Let the last `*` swallow one more character and retry.
            pi = star + 1;
            ni = at + 1;
            backtrack = Some((star, at + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether a pattern contains a wildcard.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains('*')
}

/// Sort key of a glob: more literal characters first, then fewer `*`.
fn specificity(pattern: &str) -> (Reverse<usize>, usize) {
    let stars = pattern.chars().filter(|&c| c == '*').count();
    let literal = pattern.chars().count() - stars;
    (Reverse(literal), stars)
}

/// Patterns mapped to values, looked up by the most specific match.
///
/// Exact patterns are found by hash; globs are kept sorted by specificity
/// (ties keep declaration order), so the first glob that matches is the
/// answer. For duplicate exact patterns the first declared wins.
#[derive(Debug, Clone)]
pub struct PatternTable<T> {
    exact: crate::lookup::NameMap<String, T>,
    globs: Vec<(String, T)>,
}

impl<T> Default for PatternTable<T> {
    fn default() -> Self {
        Self {
            exact: crate::lookup::NameMap::default(),
            globs: Vec::new(),
        }
    }
}

impl<T> PatternTable<T> {
    /// Builds a table from `(pattern, value)` pairs in declaration order.
    /// Empty patterns are ignored.
    pub fn new(entries: impl IntoIterator<Item = (String, T)>) -> Self {
        let mut table = Self::default();
        for (pattern, value) in entries {
            if pattern.is_empty() {
                continue;
            }
            if is_glob(&pattern) {
                table.globs.push((pattern, value));
            } else {
                table.exact.entry(pattern).or_insert(value);
            }
        }
        // Stable sort: equal specificity keeps declaration order.
        table.globs.sort_by_key(|(p, _)| specificity(p));
        table
    }

    /// The value of the most specific pattern matching `name`.
    pub fn lookup(&self, name: &str) -> Option<&T> {
        if let Some(v) = self.exact.get(name) {
            return Some(v);
        }
        self.globs
            .iter()
            .find(|(p, _)| glob_matches(p, name))
            .map(|(_, v)| v)
    }

    /// Number of patterns in the table.
    pub fn len(&self) -> usize {
        self.exact.len() + self.globs.len()
    }

    /// Whether the table has no patterns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching_table() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("claude-*", "claude-sonnet-4", true),
            ("claude-*", "claude-", true),
            ("claude-*", "claude", false),
            ("*-mini", "gpt-4o-mini", true),
            ("*-mini", "gpt-4o-mini-2", false),
            ("gpt-*-mini", "gpt-4o-mini", true),
            ("gpt-*-mini", "gpt--mini", true),
            ("gpt-*-mini", "gpt-mini", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYc!", false),
            ("**", "x", true),
            ("a**b", "ab", true),
            ("*a*a*", "banana", true),
            ("*aaa", "aaaaaaaa", true),
            ("*ab", "aaab", true),
            ("exact", "exact", true),
            ("exact", "Exact", false),
            ("é*ü", "éxyzü", true),
            ("*ü", "ü", true),
            ("mod*", "modèle", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(glob_matches(pattern, name), want, "{pattern:?} vs {name:?}");
        }
    }

    #[test]
    fn pattern_table_specificity() {
        let table = PatternTable::new(
            [
                ("*", "any"),
                ("claude-*", "claude"),
                ("claude-sonnet-*", "sonnet"),
                ("claude-*-4", "claude-4"),
                ("*-4", "x-4"),
                ("claude-sonnet-4", "exact"),
                ("gpt-*", "gpt-one"),
                ("gpt*-*", "gpt-two-stars"),
                ("gpt-4*", "gpt-4-first"),
                ("gpt-*4", "gpt-4-second"),
                ("", "ignored"),
            ]
            .map(|(p, v)| (p.to_string(), v)),
        );
        let cases = [
            ("claude-sonnet-4", Some("exact")),
            // claude-sonnet-* (14 literal chars) beats claude-* (7).
            ("claude-sonnet-4-5", Some("sonnet")),
            ("claude-opus-4", Some("claude-4")),
            ("claude-opus-3", Some("claude")),
            ("llama-4", Some("x-4")),
            ("mistral", Some("any")),
            // gpt-* and gpt*-* both have 4 literal chars: fewer stars wins.
            ("gpt-x", Some("gpt-one")),
            // gpt-4* and gpt-*4 tie on both: declaration order.
            ("gpt-44", Some("gpt-4-first")),
            ("", Some("any")),
        ];
        for (name, want) in cases {
            assert_eq!(table.lookup(name).copied(), want, "{name:?}");
        }
        assert_eq!(table.len(), 10);
    }

    #[test]
    fn duplicate_exact_pattern_keeps_first() {
        let table = PatternTable::new([("m".to_string(), 1), ("m".to_string(), 2)]);
        assert_eq!(table.lookup("m"), Some(&1));
        assert!(PatternTable::<u8>::default().lookup("m").is_none());
        assert!(PatternTable::<u8>::default().is_empty());
    }
}
