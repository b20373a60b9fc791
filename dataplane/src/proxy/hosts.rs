//! Which CONNECT targets the proxy intercepts: a list of host names, exact
//! (`api.openai.com`) or a wildcard over subdomains (`*.githubcopilot.com`
//! matches `api.business.githubcopilot.com`, not `githubcopilot.com`).
//! Matching is case-insensitive and ignores a trailing dot.

use super::ProxyError;

/// The hosts intercepted when the operator names none: the OpenAI,
/// Anthropic and GitHub Copilot model APIs (Copilot's per-plan hosts too).
pub const DEFAULT_INTERCEPT: &[&str] = &[
    "api.openai.com",
    "api.anthropic.com",
    "api.githubcopilot.com",
    "api.individual.githubcopilot.com",
    "api.business.githubcopilot.com",
    "api.enterprise.githubcopilot.com",
];

/// A set of host names and wildcard suffixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostList {
    exact: Vec<String>,
    /// `.example.com` for `*.example.com`.
    suffixes: Vec<String>,
}

impl HostList {
    /// Parses host names; `*.` prefixes a wildcard. Empty, blank or
    /// otherwise malformed names are errors.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ProxyError> {
        let mut list = Self {
            exact: Vec::new(),
            suffixes: Vec::new(),
        };
        for raw in names {
            let name = normalize(raw.as_ref());
            let (wild, bare) = match name.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, name.as_str()),
            };
            let valid = !bare.is_empty()
                && bare.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !valid {
                return Err(ProxyError::HostName(raw.as_ref().to_owned()));
            }
            if wild {
                list.suffixes.push(format!(".{bare}"));
            } else {
                list.exact.push(bare.to_owned());
            }
        }
        Ok(list)
    }

    /// The default list ([`DEFAULT_INTERCEPT`]).
    pub fn defaults() -> Self {
        Self::parse(DEFAULT_INTERCEPT).unwrap_or_else(|_| Self {
            exact: Vec::new(),
            suffixes: Vec::new(),
        })
    }

    /// True when `host` is on the list.
    pub fn contains(&self, host: &str) -> bool {
        let host = normalize(host);
        self.exact.contains(&host)
            || self
                .suffixes
                .iter()
                .any(|s| host.len() > s.len() && host.ends_with(s.as_str()))
    }

    /// The entries as given (wildcards with their `*`), for logs.
    pub fn describe(&self) -> Vec<String> {
        self.exact
            .iter()
            .cloned()
            .chain(self.suffixes.iter().map(|s| format!("*{s}")))
            .collect()
    }
}

/// Lowercase, without surrounding whitespace or a trailing dot.
pub fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_wildcards() {
        let list = HostList::parse(&["API.OpenAI.com.", "*.githubcopilot.com"]).unwrap();
        assert!(list.contains("api.openai.com"));
        assert!(list.contains("Api.OpenAI.Com."));
        assert!(!list.contains("openai.com"));
        assert!(!list.contains("xapi.openai.com"));
        assert!(list.contains("api.business.githubcopilot.com"));
        assert!(!list.contains("githubcopilot.com"));
        assert!(!list.contains("evilgithubcopilot.com"));
        assert_eq!(list.describe(), ["api.openai.com", "*.githubcopilot.com"]);
    }

    #[test]
    fn the_defaults_cover_the_provider_apis() {
        let list = HostList::defaults();
        for host in DEFAULT_INTERCEPT {
            assert!(list.contains(host), "{host}");
        }
        assert!(!list.contains("github.com"));
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in ["", "*.", "a..b", "host:443", "*", "a b"] {
            assert!(HostList::parse(&[bad]).is_err(), "{bad:?}");
        }
    }
}
