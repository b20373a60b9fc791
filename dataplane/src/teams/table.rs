//! Which team a caller belongs to: API keys by name, JWTs by a claim
//! (strings, numbers, or lists where the first value that maps wins),
//! through the route's mapping or an inline team's own name (an AITeam is
//! reached through the mapping only). An AITeam's counters are shared by
//! every route that references it.

use std::collections::HashMap;

use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_proto as pb;

use crate::auth::{AuthMethod, Identity};
use crate::guards::RouteGuards;
use crate::limits::{Party, Window};

/// The metric label of callers without a team.
pub const UNKNOWN_TEAM: &str = "unknown";

/// A caller's team and the party its requests are counted under.
#[derive(Debug, Clone)]
pub struct Membership {
    /// Team name, or [`UNKNOWN_TEAM`] (a bounded metric label).
    pub label: String,
    /// Tier name.
    pub tier: String,
    /// Counters and limits.
    pub party: Party,
    /// `namespace/name` of the AITeam the team comes from (its usage is
    /// reported); `None` for inline teams and callers without a team.
    pub aiteam: Option<String>,
    /// The AITeam's own guards, run after the route's.
    pub guards: Option<Arc<RouteGuards>>,
    /// Who the caller is: the API key's name, the JWT claim's first value,
    /// or the subject (for logs; never a credential).
    pub caller: String,
}

impl Membership {
    /// Whose limits these are, as refusals name them: `team payments`, or
    /// `caller ci-bot (no team; default tier sandbox)`.
    pub fn describe(&self) -> String {
        if self.label == UNKNOWN_TEAM && self.aiteam.is_none() {
            format!(
                "caller {} (no team; default tier {})",
                self.caller, self.tier
            )
        } else {
            format!("team {}", self.label)
        }
    }

    /// Whether the caller belongs to no team (it has the default tier).
    pub fn is_unmapped(&self) -> bool {
        self.label == UNKNOWN_TEAM && self.aiteam.is_none()
    }
}

/// Guards compare by identity (one table builds each once).
impl PartialEq for Membership {
    fn eq(&self, other: &Self) -> bool {
        let same_guards = match (&self.guards, &other.guards) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        self.label == other.label
            && self.tier == other.tier
            && self.party == other.party
            && self.aiteam == other.aiteam
            && self.caller == other.caller
            && same_guards
    }
}

/// One team of a table.
#[derive(Debug, Clone)]
struct TeamEntry {
    tier: String,
    party: Party,
    aiteam: Option<String>,
    guards: Option<Arc<RouteGuards>>,
}

/// The team policy of one route.
#[derive(Debug, Clone)]
pub struct TeamTable {
    route: String,
    claim: String,
    mapping: HashMap<String, String>,
    teams: HashMap<String, TeamEntry>,
    by_api_key: HashMap<String, String>,
    default_tier: String,
    default_limits: pb::Limits,
    refuse_unknown: bool,
    /// Requests per minute per client IP; 0: none.
    pub client_ip_requests_per_minute: u64,
}

fn budget(b: Option<&pb::Budget>) -> Option<(u64, Window)> {
    let b = b?;
    let window = match pb::BudgetPeriod::try_from(b.period).unwrap_or_default() {
        pb::BudgetPeriod::Day => Window::Day,
        pb::BudgetPeriod::Week => Window::Week,
        pb::BudgetPeriod::Month | pb::BudgetPeriod::Unspecified => Window::Month,
    };
    Some((b.micro_usd, window))
}

impl TeamTable {
    /// The table of route `route` (its id); errors name the team whose
    /// guards do not build.
    pub fn new(route: &str, p: &pb::TeamPolicy) -> Result<Self, String> {
        let mut teams = HashMap::new();
        let mut by_api_key = HashMap::new();
        for t in &p.teams {
            let limits = t.limits.unwrap_or_default();
            // An AITeam is counted once across the routes that use it.
            let (key, aiteam) = if t.resource.is_empty() {
                (format!("sb:{route}:team:{}", t.name), None)
            } else {
                (
                    format!("sb:aiteam:{}", t.resource),
                    Some(t.resource.clone()),
                )
            };
            let party = Party {
                key,
                requests_per_minute: limits.requests_per_minute,
                tokens_per_day: limits.tokens_per_day,
                budget: budget(t.budget.as_ref()),
            };
            let guards = match &t.guards {
                Some(g) => Some(Arc::new(
                    RouteGuards::new(Some(g)).map_err(|e| format!("AITeam {}: {e}", t.name))?,
                )),
                None => None,
            };
            teams.insert(
                t.name.clone(),
                TeamEntry {
                    tier: t.tier.clone(),
                    party,
                    aiteam,
                    guards,
                },
            );
            for k in &t.api_keys {
                by_api_key.insert(k.clone(), t.name.clone());
            }
        }
        Ok(Self {
            route: route.to_string(),
            claim: p.claim.clone(),
            mapping: p
                .mapping
                .iter()
                .map(|m| (m.value.clone(), m.team.clone()))
                .collect(),
            teams,
            by_api_key,
            default_tier: p.default_tier.clone(),
            default_limits: p.default_limits.unwrap_or_default(),
            refuse_unknown: p.refuse_unknown,
            client_ip_requests_per_minute: p.client_ip_requests_per_minute,
        })
    }

    /// How callers that map to no team are treated, for `/config`:
    /// `{"refused": true}`, or the default tier and its limits per caller
    /// (0: unlimited).
    pub fn unmapped_callers(&self) -> serde_json::Value {
        if self.refuse_unknown {
            return serde_json::json!({"refused": true});
        }
        serde_json::json!({
            "refused": false,
            "defaultTier": self.default_tier,
            "requestsPerMinute": self.default_limits.requests_per_minute,
            "tokensPerDay": self.default_limits.tokens_per_day,
        })
    }

    /// Configured team names (for metric label bounds).
    pub fn team_names(&self) -> impl Iterator<Item = &str> {
        self.teams.keys().map(String::as_str)
    }

    fn team_for_value(&self, v: &str) -> Option<&str> {
        if let Some(t) = self.mapping.get(v) {
            return Some(t);
        }
        self.teams
            .get_key_value(v)
            .filter(|(_, t)| t.aiteam.is_none())
            .map(|(k, _)| k.as_str())
    }

    /// The caller's team; `None` when it has none and the route refuses such callers.
    pub fn resolve(&self, id: &Identity) -> Option<Membership> {
        let (team, caller) = match id.method {
            AuthMethod::ApiKey => (
                self.by_api_key.get(&*id.subject).map(String::as_str),
                id.subject.to_string(),
            ),
            AuthMethod::Jwt => {
                let values = id
                    .claims
                    .as_deref()
                    .map(|c| claim_values(c, &self.claim))
                    .unwrap_or_default();
                let team = values.iter().find_map(|v| self.team_for_value(v));
                let caller = values
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| id.subject.to_string());
                (team, caller)
            }
            AuthMethod::Anonymous => (None, id.subject.to_string()),
        };
        if let Some(name) = team
            && let Some(t) = self.teams.get(name)
        {
            return Some(Membership {
                label: name.to_string(),
                tier: t.tier.clone(),
                party: t.party.clone(),
                aiteam: t.aiteam.clone(),
                guards: t.guards.clone(),
                caller,
            });
        }
        if self.refuse_unknown {
            return None;
        }
        // Each caller without a team is counted on its own, at the default tier.
        Some(Membership {
            label: UNKNOWN_TEAM.to_string(),
            tier: self.default_tier.clone(),
            party: Party {
                key: format!("sb:{}:caller:{caller}", self.route),
                requests_per_minute: self.default_limits.requests_per_minute,
                tokens_per_day: self.default_limits.tokens_per_day,
                budget: None,
            },
            aiteam: None,
            guards: None,
            caller,
        })
    }
}

/// The values of a claim by exact name or dotted path: a scalar as one
/// value, a list as its scalar items in order.
fn claim_values(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    let value = claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let mut cur = claims.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_object()?.get(p)?;
        }
        Some(cur)
    });
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table(claim: &str, refuse_unknown: bool) -> TeamTable {
        let limits = |rpm, tpd| {
            Some(pb::Limits {
                requests_per_minute: rpm,
                tokens_per_day: tpd,
            })
        };
        TeamTable::new(
            "ns/main",
            &pb::TeamPolicy {
                claim: claim.into(),
                mapping: vec![
                    pb::ClaimMapping {
                        value: "3abc".into(),
                        team: "payments".into(),
                    },
                    pb::ClaimMapping {
                        value: "data-eng".into(),
                        team: "team-a/data".into(),
                    },
                ],
                default_tier: "sandbox".into(),
                default_limits: limits(20, 100_000),
                refuse_unknown,
                teams: vec![
                    pb::Team {
                        name: "payments".into(),
                        tier: "premium".into(),
                        limits: limits(500, 0),
                        budget: Some(pb::Budget {
                            micro_usd: 5,
                            period: pb::BudgetPeriod::Week as i32,
                        }),
                        api_keys: vec!["ci".into()],
                        ..Default::default()
                    },
                    pb::Team {
                        name: "search".into(),
                        tier: "standard".into(),
                        limits: limits(100, 1),
                        ..Default::default()
                    },
                    pb::Team {
                        name: "team-a/data".into(),
                        tier: "standard".into(),
                        limits: limits(100, 1),
                        api_keys: vec!["team-a/data/ci".into()],
                        resource: "team-a/data".into(),
                        ..Default::default()
                    },
                ],
                client_ip_requests_per_minute: 0,
            },
        )
        .unwrap()
    }

    fn jwt(claims: Value) -> Identity {
        Identity {
            subject: "sub-1".into(),
            method: AuthMethod::Jwt,
            forward_headers: Vec::new(),
            claims: Some(Arc::new(claims.as_object().unwrap().clone())),
        }
    }

    #[test]
    fn claims_map_to_teams() {
        let t = table("client_id", false);
        let m = t.resolve(&jwt(json!({"client_id": "3abc"}))).unwrap();
        assert_eq!((m.label.as_str(), m.tier.as_str()), ("payments", "premium"));
        assert_eq!(m.party.key, "sb:ns/main:team:payments");
        assert_eq!(m.party.budget, Some((5, Window::Week)));
        assert_eq!(m.describe(), "team payments");
        assert_eq!(m.caller, "3abc");
        // A value equal to a team name maps without an entry.
        assert_eq!(
            t.resolve(&jwt(json!({"client_id": "search"})))
                .unwrap()
                .label,
            "search"
        );
    }

    #[test]
    fn aiteams_map_through_claim_values_and_keys_and_count_across_routes() {
        let t = table("groups", false);
        let m = t.resolve(&jwt(json!({"groups": ["data-eng"]}))).unwrap();
        assert_eq!(m.label, "team-a/data");
        assert_eq!(m.aiteam.as_deref(), Some("team-a/data"));
        // The key does not name the route: every route shares the counters.
        assert_eq!(m.party.key, "sb:aiteam:team-a/data");
        assert_eq!(
            t.resolve(&Identity::api_key("team-a/data/ci"))
                .unwrap()
                .label,
            "team-a/data"
        );
        // An AITeam is never reached by its name, only through its claim values.
        let m = t.resolve(&jwt(json!({"groups": ["team-a/data"]}))).unwrap();
        assert_eq!((m.label.as_str(), m.aiteam), (UNKNOWN_TEAM, None));
        // Inline teams are.
        assert_eq!(
            t.resolve(&jwt(json!({"groups": ["search"]})))
                .unwrap()
                .aiteam,
            None
        );
    }

    #[test]
    fn list_claims_use_the_first_value_that_maps() {
        let t = table("groups", false);
        let m = t
            .resolve(&jwt(json!({"groups": ["eng", "search", "payments"]})))
            .unwrap();
        assert_eq!(m.label, "search");
        let t = table("org.team", false);
        assert_eq!(
            t.resolve(&jwt(json!({"org": {"team": "3abc"}})))
                .unwrap()
                .label,
            "payments"
        );
    }

    #[test]
    fn api_keys_map_to_teams() {
        let t = table("client_id", false);
        assert_eq!(
            t.resolve(&Identity::api_key("ci")).unwrap().label,
            "payments"
        );
        assert_eq!(
            t.resolve(&Identity::api_key("other")).unwrap().label,
            UNKNOWN_TEAM
        );
    }

    #[test]
    fn unknown_callers_get_the_default_tier_each_on_their_own_or_are_refused() {
        let t = table("client_id", false);
        let a = t.resolve(&jwt(json!({"client_id": "x"}))).unwrap();
        let b = t.resolve(&jwt(json!({"client_id": "y"}))).unwrap();
        assert_eq!(
            (
                a.label.as_str(),
                a.tier.as_str(),
                a.party.requests_per_minute
            ),
            (UNKNOWN_TEAM, "sandbox", 20)
        );
        assert_ne!(a.party.key, b.party.key);
        assert_eq!(
            t.resolve(&Identity::anonymous()).unwrap().label,
            UNKNOWN_TEAM
        );
        assert_eq!(a.describe(), "caller x (no team; default tier sandbox)");
        assert!(a.is_unmapped());
        assert_eq!(
            t.unmapped_callers(),
            json!({"refused": false, "defaultTier": "sandbox", "requestsPerMinute": 20, "tokensPerDay": 100_000})
        );
        let t = table("client_id", true);
        assert_eq!(t.unmapped_callers(), json!({"refused": true}));
        assert!(t.resolve(&jwt(json!({"client_id": "x"}))).is_none());
        assert!(t.resolve(&jwt(json!({"client_id": "3abc"}))).is_some());
    }
}
