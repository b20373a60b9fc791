//! Rules: from a routed model name to its backend chain, and the order in
//! which one request tries that chain.
//!
//! **Selection.** A rule's `models` are exact names or `*` globs; a rule with
//! no patterns matches every model (as if it were `*`). Across all rules of
//! a route, an exact pattern wins; otherwise the most specific glob wins
//! (more literal characters, then fewer `*`), and ties go to the rule
//! declared first. So a catch-all rule can be declared anywhere.
//!
//! **Order.** Priority groups are tried in order. Inside a group the
//! backends are shuffled by weight without replacement: the first pick is
//! backend *i* with probability `wᵢ / Σw`, the next is drawn from the rest
//! the same way. Weight-0 backends come after the weighted ones of their
//! group, in declaration order. Finally every candidate whose circuit
//! breaker refuses it (open, or half-open with its one probe already out) is
//! moved to the end of the whole order, keeping relative order: it is still
//! tried, as a last resort, but only after every healthy one.

use std::sync::Arc;

use switchboard_proto as pb;
use tokio::time::Instant;

use super::breaker::CircuitBreaker;
use super::glob::PatternTable;

/// One backend to try, and the model to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Backend id (`namespace/name`); shared, so ordering a request's
    /// candidates copies no text.
    pub backend: Arc<str>,
    /// Model name to ask this backend for instead of the routed name.
    pub model: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Member {
    candidate: Candidate,
    weight: u32,
}

#[derive(Debug, Clone)]
struct Group {
    members: Vec<Member>,
}

impl Group {
    fn from_proto(g: &pb::PriorityGroup) -> Self {
        let members = g
            .backends
            .iter()
            .map(|wb| Member {
                candidate: Candidate {
                    backend: wb.backend.as_str().into(),
                    model: (!wb.model.is_empty()).then(|| wb.model.as_str().into()),
                },
                weight: wb.weight,
            })
            .collect();
        Self { members }
    }

    /// The group's members in weighted random order, weight 0 last.
    fn shuffled(&self, rng: &mut fastrand::Rng) -> Vec<&Candidate> {
        let mut pool: Vec<&Member> = self.members.iter().filter(|m| m.weight > 0).collect();
        let mut out = Vec::with_capacity(self.members.len());
        while !pool.is_empty() {
            let total: u64 = pool.iter().map(|m| u64::from(m.weight)).sum();
            let mut r = rng.u64(0..total);
            let mut pick = pool.len() - 1;
            for (i, m) in pool.iter().enumerate() {
                let w = u64::from(m.weight);
                if r < w {
                    pick = i;
                    break;
                }
                r -= w;
            }
            out.push(&pool.remove(pick).candidate);
        }
        out.extend(
            self.members
                .iter()
                .filter(|m| m.weight == 0)
                .map(|m| &m.candidate),
        );
        out
    }
}

/// The backend chain of one rule.
#[derive(Debug, Clone)]
pub struct RuleChain {
    groups: Vec<Group>,
    context_fallback: Vec<Group>,
}

impl RuleChain {
    /// Builds the chain of a rule.
    pub fn from_proto(rule: &pb::Rule) -> Self {
        Self {
            groups: rule.groups.iter().map(Group::from_proto).collect(),
            context_fallback: rule
                .context_fallback
                .iter()
                .map(Group::from_proto)
                .collect(),
        }
    }

    /// The order one request tries the main chain in, with breakers read at
    /// the current time. `breaker_of` gives a backend's breaker (`None`:
    /// unknown backend, kept in place).
    pub fn attempt_order<F>(&self, rng: &mut fastrand::Rng, breaker_of: F) -> Vec<Candidate>
    where
        F: FnMut(&str) -> Option<Arc<CircuitBreaker>>,
    {
        self.attempt_order_at(rng, Instant::now(), breaker_of)
    }

    /// [`Self::attempt_order`], and how many candidates lead it before the
    /// ones whose breaker refused them (moved to the end).
    pub fn attempt_order_split<F>(
        &self,
        rng: &mut fastrand::Rng,
        breaker_of: F,
    ) -> (Vec<Candidate>, usize)
    where
        F: FnMut(&str) -> Option<Arc<CircuitBreaker>>,
    {
        order_split(&self.groups, rng, Instant::now(), breaker_of)
    }

    /// [`Self::attempt_order`] at an explicit instant.
    pub fn attempt_order_at<F>(
        &self,
        rng: &mut fastrand::Rng,
        now: Instant,
        breaker_of: F,
    ) -> Vec<Candidate>
    where
        F: FnMut(&str) -> Option<Arc<CircuitBreaker>>,
    {
        order(&self.groups, rng, now, breaker_of)
    }

    /// Whether the rule has no context-length fallback chain.
    pub fn context_fallback_is_empty(&self) -> bool {
        self.context_fallback.iter().all(|g| g.members.is_empty())
    }

    /// The order one request tries the context-length fallback chain in.
    pub fn context_fallback_order<F>(
        &self,
        rng: &mut fastrand::Rng,
        breaker_of: F,
    ) -> Vec<Candidate>
    where
        F: FnMut(&str) -> Option<Arc<CircuitBreaker>>,
    {
        self.context_fallback_order_at(rng, Instant::now(), breaker_of)
    }

    /// [`Self::context_fallback_order`] at an explicit instant.
    pub fn context_fallback_order_at<F>(
        &self,
        rng: &mut fastrand::Rng,
        now: Instant,
        breaker_of: F,
    ) -> Vec<Candidate>
    where
        F: FnMut(&str) -> Option<Arc<CircuitBreaker>>,
    {
        order(&self.context_fallback, rng, now, breaker_of)
    }
}

/// Priority groups in order, weighted inside each, refused breakers last.
/// Each backend's breaker is asked once per call (so a half-open backend
/// listed twice uses one probe).
fn order<F>(
    groups: &[Group],
    rng: &mut fastrand::Rng,
    now: Instant,
    breaker_of: F,
) -> Vec<Candidate>
where
    F: FnMut(&str) -> Option<Arc<CircuitBreaker>>,
{
    order_split(groups, rng, now, breaker_of).0
}

/// [`order`], and how many healthy candidates lead the order.
fn order_split<F>(
    groups: &[Group],
    rng: &mut fastrand::Rng,
    now: Instant,
    mut breaker_of: F,
) -> (Vec<Candidate>, usize)
where
    F: FnMut(&str) -> Option<Arc<CircuitBreaker>>,
{
    let mut healthy: Vec<Candidate> = Vec::new();
    let mut ejected: Vec<Candidate> = Vec::new();
    let mut admit = |c: &Candidate| {
        // A backend already placed keeps its answer (chains are short: a
        // scan costs less than a map).
        let ok = if healthy.iter().any(|h| h.backend == c.backend) {
            true
        } else if ejected.iter().any(|e| e.backend == c.backend) {
            false
        } else {
            breaker_of(&c.backend).is_none_or(|b| b.try_acquire(now))
        };
        if ok {
            healthy.push(c.clone());
        } else {
            ejected.push(c.clone());
        }
    };
    for group in groups {
        // One member (the common case) has one order: no draw, no list.
        if let [only] = group.members.as_slice() {
            admit(&only.candidate);
            continue;
        }
        for c in group.shuffled(rng) {
            admit(c);
        }
    }
    let lead = healthy.len();
    healthy.extend(ejected);
    (healthy, lead)
}

/// A route's rules, ready for selection.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    chains: Vec<RuleChain>,
    table: PatternTable<usize>,
}

impl RuleSet {
    /// Builds the rule set from the route's rules in declaration order.
    pub fn new(rules: &[pb::Rule]) -> Self {
        let chains = rules.iter().map(RuleChain::from_proto).collect();
        let entries = rules.iter().enumerate().flat_map(|(i, r)| {
            let patterns: Vec<String> = if r.models.is_empty() {
                vec!["*".to_string()]
            } else {
                r.models.clone()
            };
            patterns.into_iter().map(move |p| (p, i))
        });
        Self {
            chains,
            table: PatternTable::new(entries),
        }
    }

    /// The chain for a routed model name, if a rule matches it.
    pub fn select(&self, model: &str) -> Option<&RuleChain> {
        self.select_index(model).and_then(|i| self.chains.get(i))
    }

    /// The declaration index of the rule serving a routed model name.
    pub fn select_index(&self, model: &str) -> Option<usize> {
        self.table.lookup(model).copied()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::routing::breaker::EjectionSettings;

    fn wb(backend: &str, weight: u32) -> pb::WeightedBackend {
        pb::WeightedBackend {
            backend: backend.into(),
            weight,
            model: String::new(),
        }
    }

    fn group(members: &[(&str, u32)]) -> pb::PriorityGroup {
        pb::PriorityGroup {
            backends: members.iter().map(|&(b, w)| wb(b, w)).collect(),
        }
    }

    fn rule(models: &[&str], backend: &str) -> pb::Rule {
        pb::Rule {
            models: models.iter().map(|m| m.to_string()).collect(),
            groups: vec![group(&[(backend, 1)])],
            context_fallback: vec![],
        }
    }

    fn ids(order: &[Candidate]) -> Vec<&str> {
        order.iter().map(|c| &*c.backend).collect()
    }

    fn no_breakers(_: &str) -> Option<Arc<CircuitBreaker>> {
        None
    }

    fn first_of(set: &RuleSet, model: &str) -> Option<String> {
        let mut rng = fastrand::Rng::with_seed(1);
        set.select(model).map(|c| {
            c.attempt_order(&mut rng, no_breakers)[0]
                .backend
                .to_string()
        })
    }

    #[test]
    fn selection_prefers_exact_then_specific_glob_then_declaration_order() {
        let set = RuleSet::new(&[
            rule(&["claude-*"], "claude-glob"),
            rule(&[], "catch-all"),
            rule(&["gpt-5", "claude-sonnet-4"], "exact"),
            rule(&["claude-sonnet-*"], "sonnet-glob"),
            rule(&["gpt-*", "o*"], "openai"),
            rule(&["gpt*"], "gpt-fewer-literals"),
            rule(&["*"], "star-after-catch-all"),
        ]);
        let cases = [
            ("claude-sonnet-4", Some("exact")),
            ("gpt-5", Some("exact")),
            ("claude-sonnet-4-5", Some("sonnet-glob")),
            ("claude-opus-4", Some("claude-glob")),
            ("gpt-4o", Some("openai")),
            ("o3", Some("openai")),
            ("gptx", Some("gpt-fewer-literals")),
            // The empty rule and `*` tie: declared first wins.
            ("llama", Some("catch-all")),
        ];
        for (model, want) in cases {
            assert_eq!(first_of(&set, model).as_deref(), want, "{model:?}");
        }
        assert_eq!(set.len(), 7);
        let narrow = RuleSet::new(&[rule(&["a"], "x")]);
        assert!(narrow.select("b").is_none());
        assert!(RuleSet::default().select("a").is_none());
    }

    #[test]
    fn candidate_model_override() {
        let mut r = rule(&[], "a");
        r.groups[0].backends[0].model = "provider-model".into();
        r.groups[0].backends.push(wb("b", 1));
        let chain = RuleChain::from_proto(&r);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut order = chain.attempt_order(&mut rng, no_breakers);
        order.sort_by(|x, y| x.backend.cmp(&y.backend));
        assert_eq!(
            order,
            vec![
                Candidate {
                    backend: "a".into(),
                    model: Some("provider-model".into())
                },
                Candidate {
                    backend: "b".into(),
                    model: None
                },
            ]
        );
    }

    #[test]
    fn weighted_order_follows_weights() {
        let chain = RuleChain::from_proto(&pb::Rule {
            models: vec![],
            groups: vec![group(&[("a", 1), ("b", 3), ("c", 6), ("z", 0)])],
            context_fallback: vec![],
        });
        let mut rng = fastrand::Rng::with_seed(42);
        let draws = 10_000;
        let mut first: HashMap<String, u32> = HashMap::new();
        let mut a_second_after_c = 0;
        let mut c_first = 0;
        for _ in 0..draws {
            let order = chain.attempt_order(&mut rng, no_breakers);
            assert_eq!(order.len(), 4);
            assert_eq!(&*order[3].backend, "z", "weight 0 comes last");
            *first.entry(order[0].backend.to_string()).or_default() += 1;
            if &*order[0].backend == "c" {
                c_first += 1;
                if &*order[1].backend == "a" {
                    a_second_after_c += 1;
                }
            }
        }
        let share = |id: &str| f64::from(first.get(id).copied().unwrap_or(0)) / f64::from(draws);
        assert!((share("a") - 0.1).abs() < 0.02, "a: {}", share("a"));
        assert!((share("b") - 0.3).abs() < 0.02, "b: {}", share("b"));
        assert!((share("c") - 0.6).abs() < 0.02, "c: {}", share("c"));
        // Without replacement: after c, a is picked with 1/(1+3).
        let cond = f64::from(a_second_after_c) / f64::from(c_first);
        assert!((cond - 0.25).abs() < 0.03, "a after c: {cond}");
    }

    #[test]
    fn priority_groups_in_order() {
        let chain = RuleChain::from_proto(&pb::Rule {
            models: vec![],
            groups: vec![
                group(&[("p1", 1), ("p2", 1)]),
                group(&[("s1", 5), ("s2", 1)]),
                group(&[]),
            ],
            context_fallback: vec![group(&[("big", 1)])],
        });
        let mut rng = fastrand::Rng::with_seed(7);
        let mut seen_p2_first = false;
        for _ in 0..200 {
            let order = chain.attempt_order(&mut rng, no_breakers);
            let ids = ids(&order);
            assert_eq!(ids.len(), 4);
            let mut top: Vec<&str> = ids[..2].to_vec();
            top.sort();
            assert_eq!(top, ["p1", "p2"]);
            assert!(ids[2..].contains(&"s1") && ids[2..].contains(&"s2"));
            seen_p2_first |= ids[0] == "p2";
        }
        assert!(seen_p2_first, "equal weights shuffle");
        assert!(!chain.context_fallback_is_empty());
        assert_eq!(
            ids(&chain.context_fallback_order(&mut rng, no_breakers)),
            ["big"]
        );
        let empty = RuleChain::from_proto(&pb::Rule {
            context_fallback: vec![group(&[])],
            ..Default::default()
        });
        assert!(empty.context_fallback_is_empty());
        assert!(empty.attempt_order(&mut rng, no_breakers).is_empty());
    }

    /// Breakers that open at the first failure for 30 s.
    fn eject_after_one_failure() -> EjectionSettings {
        EjectionSettings {
            consecutive_failures: 1,
            base: Duration::from_secs(30),
            max: Duration::from_secs(300),
        }
    }

    #[test]
    fn refused_breakers_move_to_the_end() {
        let t0 = Instant::now();
        let settings = eject_after_one_failure();
        let breakers: HashMap<&str, Arc<CircuitBreaker>> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|id| (id, Arc::new(CircuitBreaker::new(settings))))
            .collect();
        breakers["a"].record_failure(t0);
        breakers["c"].record_failure(t0);
        let chain = RuleChain::from_proto(&pb::Rule {
            models: vec![],
            groups: vec![
                group(&[("a", 1)]),
                group(&[("b", 1)]),
                group(&[("c", 1)]),
                group(&[("d", 1)]),
            ],
            context_fallback: vec![],
        });
        let lookup = |id: &str| breakers.get(id).cloned();
        let mut rng = fastrand::Rng::with_seed(9);
        let order = chain.attempt_order_at(&mut rng, t0 + Duration::from_secs(1), lookup);
        assert_eq!(ids(&order), ["b", "d", "a", "c"]);

        // After the interval: the first request gets a's probe in place,
        // a concurrent one sees it as taken.
        let later = t0 + Duration::from_secs(30);
        breakers["c"].record_success();
        let order = chain.attempt_order_at(&mut rng, later, lookup);
        assert_eq!(ids(&order), ["a", "b", "c", "d"]);
        let order = chain.attempt_order_at(&mut rng, later, lookup);
        assert_eq!(ids(&order), ["b", "c", "d", "a"]);
    }

    /// A backend listed in two groups (or twice in one) is asked about
    /// once per order: a half-open one gives its one probe to its first
    /// place, and keeps that answer in the second.
    #[test]
    fn a_backend_listed_twice_is_asked_once() {
        let t0 = Instant::now();
        let settings = eject_after_one_failure();
        let (a, b) = (
            Arc::new(CircuitBreaker::new(settings)),
            Arc::new(CircuitBreaker::new(settings)),
        );
        a.record_failure(t0);
        b.record_failure(t0);
        let chain = RuleChain::from_proto(&pb::Rule {
            models: vec![],
            groups: vec![
                group(&[("a", 1)]),
                group(&[("b", 1), ("c", 1)]),
                group(&[("a", 1), ("b", 0)]),
            ],
            context_fallback: vec![],
        });
        let asked = std::cell::RefCell::new(Vec::new());
        let lookup = |id: &str| {
            asked.borrow_mut().push(id.to_owned());
            match id {
                "a" => Some(a.clone()),
                "b" => Some(b.clone()),
                _ => None,
            }
        };
        let mut rng = fastrand::Rng::with_seed(4);
        // After the interval both are half-open: one probe each.
        let later = t0 + Duration::from_secs(30);
        let order = chain.attempt_order_at(&mut rng, later, lookup);
        let mut asked = asked.into_inner();
        asked.sort();
        assert_eq!(asked, ["a", "b", "c"], "each backend asked once");
        // Both half-open backends took their probe at their first place and
        // keep it at their second: nothing is moved to the end.
        assert_eq!(order.len(), 5);
        assert_eq!(&*order[0].backend, "a");
        assert_eq!(&*order[3].backend, "a");
        assert_eq!(&*order[4].backend, "b");
    }

    #[test]
    fn unknown_backends_stay_in_place() {
        let chain = RuleChain::from_proto(&rule(&[], "ghost"));
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(ids(&chain.attempt_order(&mut rng, no_breakers)), ["ghost"]);
    }
}
