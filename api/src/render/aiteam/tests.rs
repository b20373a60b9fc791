//! AITeams rendered on their own and merged into the routes that reference
//! them, one scenario per test.

use serde_json::{Value, json};
use switchboard_proto as pb;

use crate::conditions::reason;
use crate::inventory::{Inventory, ObjectKey, ObjectKind};
use crate::load::Object;
use crate::render::{
    Accepted, AcceptedSpec, ClaimPolicy, LastAccepted, RenderOptions, Resolution, Served, resolve,
};
use crate::v1alpha1::{AIBackend, AIRoute, AITeam};

fn object<T: serde::de::DeserializeOwned>(
    kind: &str,
    ns: &str,
    name: &str,
    created: i64,
    spec: Value,
) -> T {
    serde_json::from_value(json!({
        "apiVersion": "switchboard.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": ns, "generation": 1,
                     "creationTimestamp": format!("2025-01-01T00:00:{created:02}Z")},
        "spec": spec,
    }))
    .unwrap()
}

fn team(ns: &str, name: &str, created: i64, spec: Value) -> Object {
    Object::Team(object::<AITeam>("AITeam", ns, name, created, spec))
}

fn route(spec: Value) -> Object {
    Object::Route(object::<AIRoute>("AIRoute", "platform", "main", 0, spec))
}

fn secret(ns: &str, name: &str, key: &str, value: &str) -> Object {
    Object::Secret {
        namespace: ns.into(),
        name: name.into(),
        data: [(key.to_string(), value.as_bytes().to_vec())].into(),
    }
}

fn base() -> Vec<Object> {
    vec![
        Object::Backend(object::<AIBackend>(
            "AIBackend",
            "platform",
            "mock",
            0,
            json!({"provider": "Mock"}),
        )),
        secret("platform", "route-keys", "apiKey", "route-key"),
        secret("team-a", "keys", "ci", "team-a-key"),
    ]
}

/// A route with a JWT claim `groups`, one route key, tiers and these teams.
fn platform_route(teams: Value) -> Object {
    let mut spec = json!({
        "auth": {"apiKeys": [{"name": "admin", "secretRef": {"name": "route-keys"}}]},
        "rules": [{"backends": [{"name": "mock"}]}],
        "tiers": [{"name": "gold", "requestsPerMinute": 300, "tokensPerDay": 5000}],
    });
    spec["teams"] = teams;
    route(spec)
}

fn run(objects: Vec<Object>, last: &LastAccepted) -> Resolution {
    let mut inv = Inventory::default();
    for o in objects {
        inv.upsert(o);
    }
    resolve(
        &inv,
        last,
        &ClaimPolicy::allow_all(),
        &RenderOptions::kubernetes(),
    )
}

fn key(kind: ObjectKind, ns: &str, name: &str) -> ObjectKey {
    (kind, ns.to_string(), name.to_string())
}

fn policy(r: &Resolution) -> &pb::TeamPolicy {
    r.snapshot.routes[0].teams.as_ref().unwrap()
}

fn soft(r: &Resolution, k: &ObjectKey) -> Vec<(String, &'static str)> {
    r.outcomes[k]
        .degraded
        .iter()
        .map(|s| {
            (
                format!("{}: {}", s.problem.path, s.problem.message),
                s.reason,
            )
        })
        .collect()
}

#[test]
fn a_referenced_team_brings_its_claim_values_keys_tier_and_budget() {
    let mut objects = base();
    objects.push(team(
        "team-a",
        "payments",
        1,
        json!({
            "tier": "gold", "tokensPerDay": 9000,
            "budget": {"usd": 12.5, "period": "week"},
            "claimValues": ["payments-eng", "3abc"],
            "apiKeys": [{"name": "ci", "secretRef": {"name": "keys", "key": "ci"}}],
        }),
    ));
    objects.push(platform_route(json!({
        "claim": "groups",
        "teams": [{"name": "search"}],
        "teamRefs": [{"name": "payments", "namespace": "team-a"}],
    })));
    let r = run(objects, &LastAccepted::new());
    assert!(r.problems.is_empty(), "{}", r.problems);
    let p = policy(&r);
    let t = p
        .teams
        .iter()
        .find(|t| t.resource == "team-a/payments")
        .unwrap();
    assert_eq!(t.name, "team-a/payments");
    assert_eq!(t.tier, "gold");
    assert_eq!(
        t.limits,
        Some(pb::Limits {
            requests_per_minute: 300,
            tokens_per_day: 9000
        })
    );
    assert_eq!(
        t.budget,
        Some(pb::Budget {
            micro_usd: 12_500_000,
            period: pb::BudgetPeriod::Week as i32
        })
    );
    assert_eq!(t.api_keys, ["team-a/payments/ci"]);
    let mapping: Vec<(&str, &str)> = p
        .mapping
        .iter()
        .map(|m| (m.value.as_str(), m.team.as_str()))
        .collect();
    assert_eq!(
        mapping,
        [
            ("3abc", "team-a/payments"),
            ("payments-eng", "team-a/payments")
        ]
    );
    let keys = &r.snapshot.routes[0].auth.as_ref().unwrap().api_keys;
    assert!(
        keys.iter()
            .any(|k| k.name == "team-a/payments/ci" && k.value == "team-a-key")
    );
    let team_key = key(ObjectKind::Team, "team-a", "payments");
    assert_eq!(r.outcomes[&team_key].used_by, ["platform/main"]);
    assert!(r.outcomes[&team_key].is_accepted());
}

#[test]
fn a_missing_team_leaves_the_route_served_without_it() {
    let mut objects = base();
    objects.push(platform_route(json!({"teamRefs": [{"name": "ghost"}]})));
    let r = run(objects, &LastAccepted::new());
    let route_key = key(ObjectKind::Route, "platform", "main");
    assert!(r.outcomes[&route_key].is_accepted());
    assert!(r.problems.is_empty());
    assert_eq!(
        soft(&r, &route_key),
        [(
            "spec.teams.teamRefs[0].name: AITeam platform/ghost not found; its callers are not in a team here".to_string(),
            reason::TEAM_NOT_FOUND
        )]
    );
    assert!(policy(&r).teams.is_empty());
}

#[test]
fn standalone_mode_refuses_what_kubernetes_mode_serves_degraded() {
    let mut inv = Inventory::default();
    for o in base() {
        inv.upsert(o);
    }
    inv.upsert(platform_route(json!({"teamRefs": [{"name": "ghost"}]})));
    let problems = crate::render_with(&inv, &RenderOptions::kubernetes()).unwrap_err();
    assert_eq!(
        problems.to_string(),
        "AIRoute platform/main: spec.teams.teamRefs[0].name: AITeam platform/ghost not found; its callers are not in a team here"
    );
}

#[test]
fn a_broken_team_is_refused_alone_and_its_last_accepted_generation_serves() {
    let good = json!({"claimValues": ["eng"], "requestsPerMinute": 7});
    let mut objects = base();
    // A missing Secret breaks the new generation.
    objects.push(team(
        "team-a",
        "payments",
        1,
        json!({"claimValues": ["eng"], "apiKeys": [{"name": "x", "secretRef": {"name": "gone"}}]}),
    ));
    objects.push(platform_route(json!({
        "teamRefs": [{"name": "payments", "namespace": "team-a"}],
    })));
    let team_key = key(ObjectKind::Team, "team-a", "payments");
    let r = run(objects.clone(), &LastAccepted::new());
    assert_eq!(r.outcomes[&team_key].served, Served::NotServed);
    assert_eq!(
        r.outcomes[&team_key].problems[0].path,
        "spec.apiKeys[0].secretRef.name"
    );
    let route_key = key(ObjectKind::Route, "platform", "main");
    assert!(
        r.outcomes[&route_key].is_accepted(),
        "the route is not refused"
    );
    assert_eq!(soft(&r, &route_key)[0].1, reason::TEAM_NOT_FOUND);

    let last = LastAccepted::from([(
        team_key.clone(),
        Accepted {
            generation: Some(1),
            spec: AcceptedSpec::Team(serde_json::from_value(good).unwrap()),
        },
    )]);
    let r = run(objects, &last);
    assert_eq!(
        r.outcomes[&team_key].served,
        Served::LastAccepted {
            generation: Some(1)
        }
    );
    let t = &policy(&r).teams[0];
    assert_eq!(t.limits.unwrap().requests_per_minute, 7);
    assert!(soft(&r, &route_key).is_empty());
}

#[test]
fn a_tier_the_route_does_not_define_leaves_the_team_out_and_tells_the_team() {
    let mut objects = base();
    objects.push(team("team-a", "payments", 1, json!({"tier": "platinum"})));
    objects.push(platform_route(json!({
        "teamRefs": [{"name": "payments", "namespace": "team-a"}],
    })));
    let r = run(objects, &LastAccepted::new());
    assert!(policy(&r).teams.is_empty());
    let team_key = key(ObjectKind::Team, "team-a", "payments");
    let notes = soft(&r, &team_key);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].1, reason::INVALID_TEAM_REF);
    assert!(notes[0].0.contains("\"platinum\""), "{notes:?}");
    assert!(r.outcomes[&team_key].used_by.is_empty());
}

#[test]
fn claim_values_go_to_the_route_first_then_to_the_oldest_team() {
    let mut objects = base();
    objects.push(team(
        "team-a",
        "old",
        1,
        json!({"claimValues": ["shared", "a-only"]}),
    ));
    objects.push(team(
        "team-b",
        "new",
        2,
        json!({"claimValues": ["shared", "search"]}),
    ));
    objects.push(platform_route(json!({
        "teams": [{"name": "search"}],
        // The newer team is listed first: age decides, not the order.
        "teamRefs": [{"name": "new", "namespace": "team-b"}, {"name": "old", "namespace": "team-a"}],
    })));
    let r = run(objects, &LastAccepted::new());
    let owner = |v: &str| {
        policy(&r)
            .mapping
            .iter()
            .find(|m| m.value == v)
            .map(|m| m.team.clone())
    };
    assert_eq!(owner("shared").as_deref(), Some("team-a/old"));
    assert_eq!(owner("a-only").as_deref(), Some("team-a/old"));
    // `search` is an inline team's name: the route keeps it.
    assert_eq!(owner("search"), None);
    let notes = soft(&r, &key(ObjectKind::Route, "platform", "main"));
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0]
            .0
            .contains("\"shared\" of AITeam team-b/new is already mapped by AITeam team-a/old")
    );
    assert!(
        notes[1]
            .0
            .contains("\"search\" of AITeam team-b/new is already mapped by the route itself")
    );
    // Both teams are still served.
    assert_eq!(policy(&r).teams.len(), 3);
}

#[test]
fn team_keys_are_not_accepted_on_an_open_route_nor_when_a_value_is_taken() {
    let mut objects = base();
    objects.push(secret("team-b", "keys", "ci", "route-key"));
    objects.push(team(
        "team-a",
        "payments",
        1,
        json!({"apiKeys": [{"name": "ci", "secretRef": {"name": "keys", "key": "ci"}}]}),
    ));
    objects.push(team(
        "team-b",
        "copycat",
        2,
        json!({"apiKeys": [{"name": "ci", "secretRef": {"name": "keys", "key": "ci"}}]}),
    ));
    objects.push(platform_route(json!({
        "teamRefs": [{"name": "payments", "namespace": "team-a"}, {"name": "copycat", "namespace": "team-b"}],
    })));
    let r = run(objects.clone(), &LastAccepted::new());
    let names: Vec<&str> = r.snapshot.routes[0]
        .auth
        .as_ref()
        .unwrap()
        .api_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["admin", "team-a/payments/ci"],
        "a key with a taken value is left out"
    );

    // The same teams on an open route: the route stays open.
    let mut open = base();
    open.extend(objects.into_iter().filter(|o| matches!(o, Object::Team(_))));
    open.push(route(json!({
        "rules": [{"backends": [{"name": "mock"}]}],
        "teams": {"teamRefs": [{"name": "payments", "namespace": "team-a"}]},
    })));
    let r = run(open, &LastAccepted::new());
    assert!(r.snapshot.routes[0].auth.is_none());
    let notes = soft(&r, &key(ObjectKind::Route, "platform", "main"));
    assert!(
        notes[0].0.contains("this route has no spec.auth"),
        "{notes:?}"
    );
}

#[test]
fn a_duplicate_reference_is_a_problem_of_the_route() {
    let mut objects = base();
    objects.push(team("platform", "t", 1, json!({})));
    objects.push(platform_route(json!({
        "teamRefs": [{"name": "t"}, {"name": "t", "namespace": "platform"}],
    })));
    let r = run(objects, &LastAccepted::new());
    assert_eq!(
        r.problems.to_string(),
        "AIRoute platform/main: spec.teams.teamRefs[1]: AITeam platform/t is referenced twice"
    );
}
