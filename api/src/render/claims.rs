//! Route claims: the (hostname, path prefix) pairs a route serves, the
//! operator's [`ClaimPolicy`] on which namespaces may claim which, and the
//! resolution of conflicting claims ([`resolve_conflicts`]).
//!
//! Conflicts are resolved as Gateway API does: of the routes claiming the
//! same (hostname, path prefix), the oldest (`metadata.creationTimestamp`)
//! wins, then the lowest `namespace/name`; objects without a creation time
//! (directory and standalone mode) are ordered by `namespace/name` alone.
//! A route with no hostnames claims (any host, prefix), which is a different
//! claim from (`api.example.com`, prefix): the host-specific route is more
//! specific and both are served.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::v1alpha1::AIRouteSpec;

/// One (hostname, path prefix) pair a route serves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Claim {
    /// The host name, lower case without a trailing dot; `None`: any host.
    pub host: Option<String>,
    /// The path prefix without a trailing slash (`""` for `/`).
    pub prefix: String,
}

impl Claim {
    /// The claim of `host` (or any host) on `prefix`, normalised as the data
    /// plane matches them.
    pub fn new(host: Option<&str>, prefix: &str) -> Self {
        Self {
            host: host.map(normalize_host),
            prefix: normalize_prefix(prefix),
        }
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        };
        match &self.host {
            Some(h) => write!(f, "host {h:?} and path prefix {prefix:?}"),
            None => write!(f, "any host and path prefix {prefix:?}"),
        }
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn normalize_prefix(prefix: &str) -> String {
    prefix.trim_end_matches('/').to_string()
}

/// Every claim of a route spec, sorted, without duplicates.
pub fn claims(spec: &AIRouteSpec) -> Vec<Claim> {
    claims_of(&spec.hostnames, &spec.path_prefix)
}

/// Every claim of `hostnames` (empty: any host) on `prefix`.
pub fn claims_of(hostnames: &[String], prefix: &str) -> Vec<Claim> {
    let mut out: Vec<Claim> = if hostnames.is_empty() {
        vec![Claim::new(None, prefix)]
    } else {
        hostnames
            .iter()
            .map(|h| Claim::new(Some(h), prefix))
            .collect()
    };
    out.sort();
    out.dedup();
    out
}

/// Which host names a [`ClaimRule`] lets a namespace claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host name, and routes without host names (any host).
    Any,
    /// One host name.
    Exact(String),
    /// `*.example.com`: any host name ending in `.example.com` (not
    /// `example.com` itself).
    Suffix(String),
}

/// One rule of a [`ClaimPolicy`], written `NAMESPACE=HOST[/PREFIX]`:
/// routes in `NAMESPACE` (`*`: any) may claim host names matching `HOST`
/// (`*`, `*.example.com` or `api.example.com`) on path prefixes at or below
/// `PREFIX` (default `/`). Examples: `team-a=team-a.example.com`,
/// `team-b=*/team-b`, `platform=*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRule {
    /// The namespace; `None`: every namespace.
    pub namespace: Option<String>,
    /// The host names it may claim.
    pub host: HostPattern,
    /// The path prefix (normalised, `""` for `/`) claims must be at or below.
    pub prefix: String,
    /// The rule as written.
    pub text: String,
}

impl std::str::FromStr for ClaimRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid route claim {text:?}: {why} (expected NAMESPACE=HOST[/PREFIX], e.g. team-a=*.team-a.example.com/v1)"
            )
        };
        let (ns, rest) = text.split_once('=').ok_or_else(|| bad("no '='"))?;
        let ns = ns.trim();
        if ns.is_empty() || ns.contains(['/', ' ']) {
            return Err(bad("the namespace must be a name or *"));
        }
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let host = host.trim();
        let host = match host {
            "" => return Err(bad("the host must be *, *.DOMAIN or a host name")),
            "*" => HostPattern::Any,
            h if h.starts_with("*.") && h.len() > 2 && !h[2..].contains('*') => {
                HostPattern::Suffix(normalize_host(&h[1..]))
            }
            h if h.contains(['*', ':', ' ']) => {
                return Err(bad("the host must be *, *.DOMAIN or a host name"));
            }
            h => HostPattern::Exact(normalize_host(h)),
        };
        if prefix.contains(['?', '#', '*', ' ']) {
            return Err(bad("the prefix must be a plain path"));
        }
        Ok(Self {
            namespace: (ns != "*").then(|| ns.to_string()),
            host,
            prefix: normalize_prefix(prefix),
            text: text.to_string(),
        })
    }
}

impl ClaimRule {
    fn allows(&self, namespace: &str, claim: &Claim) -> bool {
        let ns_ok = self.namespace.as_deref().is_none_or(|n| n == namespace);
        let host_ok = match (&self.host, &claim.host) {
            (HostPattern::Any, _) => true,
            (_, None) => false,
            (HostPattern::Exact(h), Some(c)) => h == c,
            (HostPattern::Suffix(s), Some(c)) => c.ends_with(s.as_str()) && c.len() > s.len(),
        };
        let prefix_ok = self.prefix.is_empty()
            || claim.prefix == self.prefix
            || claim
                .prefix
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        ns_ok && host_ok && prefix_ok
    }
}

/// The operator's policy on which namespaces may claim which (hostname,
/// path prefix) pairs. Without rules every namespace may claim anything
/// (the default); with rules, a claim is allowed when at least one rule
/// allows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimPolicy {
    rules: Vec<ClaimRule>,
}

impl ClaimPolicy {
    /// No rules: every namespace may claim anything.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// A policy of `rules` (empty: allow all).
    pub fn new(rules: Vec<ClaimRule>) -> Self {
        Self { rules }
    }

    /// Whether routes in `namespace` may make `claim`.
    pub fn allows(&self, namespace: &str, claim: &Claim) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|r| r.allows(namespace, claim))
    }

    /// The rules that apply to `namespace`, as written, for messages.
    pub fn rules_for(&self, namespace: &str) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|r| r.namespace.as_deref().is_none_or(|n| n == namespace))
            .map(|r| r.text.as_str())
            .collect()
    }
}

/// A route taking part in conflict resolution.
#[derive(Clone, Debug)]
pub struct Contender {
    /// (namespace, name).
    pub key: (String, String),
    /// `metadata.creationTimestamp`; `None` sorts after every time.
    pub created: Option<Time>,
    /// The claims it makes.
    pub claims: Vec<Claim>,
}

/// A claim a route lost, and the route that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostClaim {
    /// The claim.
    pub claim: Claim,
    /// (namespace, name) of the route that holds it.
    pub winner: (String, String),
}

/// Resolves conflicting claims: each claim goes to its oldest contender
/// (then the lowest namespace/name). Returns the claims each losing route
/// lost, by (namespace, name); routes that lost nothing are absent.
pub fn resolve_conflicts(contenders: &[Contender]) -> BTreeMap<(String, String), Vec<LostClaim>> {
    let mut order: Vec<&Contender> = contenders.iter().collect();
    order.sort_by(|a, b| {
        (a.created.is_none(), &a.created, &a.key).cmp(&(b.created.is_none(), &b.created, &b.key))
    });
    let mut holders: BTreeMap<&Claim, &(String, String)> = BTreeMap::new();
    let mut lost: BTreeMap<(String, String), Vec<LostClaim>> = BTreeMap::new();
    for c in order {
        for claim in &c.claims {
            match holders.get(claim) {
                Some(winner) => lost.entry(c.key.clone()).or_default().push(LostClaim {
                    claim: claim.clone(),
                    winner: (*winner).clone(),
                }),
                None => {
                    holders.insert(claim, &c.key);
                }
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn key(ns: &str, name: &str) -> (String, String) {
        (ns.to_string(), name.to_string())
    }

    fn at(second: i64) -> Option<Time> {
        Some(Time(Timestamp::from_second(second).unwrap()))
    }

    fn contender(
        ns: &str,
        name: &str,
        created: Option<Time>,
        hosts: &[&str],
        prefix: &str,
    ) -> Contender {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        Contender {
            key: key(ns, name),
            created,
            claims: claims_of(&hosts, prefix),
        }
    }

    #[test]
    fn claims_are_normalised_like_the_data_plane_matches() {
        assert_eq!(
            claims_of(
                &["API.example.com.".into(), "api.example.com".into()],
                "/v1/"
            ),
            vec![Claim::new(Some("api.example.com"), "/v1")]
        );
        assert_eq!(claims_of(&[], "/"), vec![Claim::new(None, "")]);
        assert_eq!(
            Claim::new(None, "/").to_string(),
            "any host and path prefix \"/\""
        );
    }

    #[test]
    fn the_oldest_route_wins_then_namespace_and_name() {
        let lost = resolve_conflicts(&[
            contender("a-team", "new", at(200), &[], "/x"),
            contender("z-team", "old", at(100), &[], "/x"),
            contender("b", "same-time", at(200), &[], "/x"),
        ]);
        let winner = key("z-team", "old");
        assert_eq!(lost.len(), 2);
        assert_eq!(lost[&key("a-team", "new")][0].winner, winner);
        assert_eq!(lost[&key("b", "same-time")][0].winner, winner);
        assert!(!lost.contains_key(&winner));
    }

    #[test]
    fn without_creation_times_namespace_and_name_decide() {
        let lost = resolve_conflicts(&[
            contender("b", "r", None, &["h"], "/"),
            contender("a", "r", None, &["h"], "/"),
            contender("c", "r", at(1), &["h"], "/"),
        ]);
        // A route with a creation time is older than one without.
        assert_eq!(lost[&key("a", "r")][0].winner, key("c", "r"));
        assert_eq!(lost[&key("b", "r")][0].winner, key("c", "r"));
    }

    #[test]
    fn only_identical_claims_conflict() {
        let lost = resolve_conflicts(&[
            contender("a", "any-host", at(1), &[], "/x"),
            contender("b", "one-host", at(2), &["h.example.com"], "/x"),
            contender("c", "longer", at(3), &[], "/x/y"),
            contender(
                "d",
                "two-hosts",
                at(4),
                &["h.example.com", "other.example.com"],
                "/x",
            ),
        ]);
        assert_eq!(lost.len(), 1, "{lost:?}");
        let d = &lost[&key("d", "two-hosts")];
        assert_eq!(
            d,
            &vec![LostClaim {
                claim: Claim::new(Some("h.example.com"), "/x"),
                winner: key("b", "one-host"),
            }]
        );
    }

    #[test]
    fn claim_rules_parse_and_match() {
        let rule: ClaimRule = "team-a=*.team-a.example.com/v1".parse().unwrap();
        assert_eq!(rule.namespace.as_deref(), Some("team-a"));
        assert_eq!(rule.host, HostPattern::Suffix(".team-a.example.com".into()));
        assert_eq!(rule.prefix, "/v1");
        let any: ClaimRule = "*=*".parse().unwrap();
        assert_eq!(
            (any.namespace, any.host, any.prefix.as_str()),
            (None, HostPattern::Any, "")
        );
        for bad in ["team-a", "=x", "a=", "a=h*st", "a=*/x?y", "a/b=*", "a=h:80"] {
            assert!(bad.parse::<ClaimRule>().is_err(), "{bad}");
        }

        let policy = ClaimPolicy::new(vec![
            "team-a=*.team-a.example.com/v1".parse().unwrap(),
            "team-b=*/team-b".parse().unwrap(),
            "platform=api.example.com".parse().unwrap(),
        ]);
        let a = |h: Option<&str>, p: &str| policy.allows("team-a", &Claim::new(h, p));
        assert!(a(Some("x.team-a.example.com"), "/v1"));
        assert!(a(Some("X.Team-A.example.com."), "/v1/chat"));
        assert!(
            !a(Some("team-a.example.com"), "/v1"),
            "the suffix needs a label"
        );
        assert!(!a(Some("x.team-a.example.com"), "/v10"), "segment boundary");
        assert!(!a(Some("x.team-a.example.com"), "/"));
        assert!(!a(None, "/v1"), "any host is not a subdomain");
        let b = |h: Option<&str>, p: &str| policy.allows("team-b", &Claim::new(h, p));
        assert!(b(None, "/team-b") && b(Some("anything"), "/team-b/x"));
        assert!(!b(None, "/team-a"));
        assert!(!policy.allows("team-c", &Claim::new(None, "/team-c")));
        assert!(policy.allows("platform", &Claim::new(Some("api.example.com"), "/")));
        assert_eq!(policy.rules_for("team-b"), vec!["team-b=*/team-b"]);
        assert!(ClaimPolicy::allow_all().allows("any", &Claim::new(None, "")));
    }
}
