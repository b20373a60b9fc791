//! The fail-closed rules of [`resolve`], one scenario per test.

use serde_json::{Value, json};

use super::*;
use crate::load::{Object, Undecodable};
use crate::v1alpha1::{AIBackend, AIRoute};

fn backend(name: &str, generation: i64, spec: Value) -> Object {
    Object::Backend(
        serde_json::from_value::<AIBackend>(json!({
            "apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
            "metadata": {"name": name, "namespace": "ns", "generation": generation},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn route_in(ns: &str, name: &str, generation: i64, created: i64, spec: Value) -> Object {
    Object::Route(
        serde_json::from_value::<AIRoute>(json!({
            "apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
            "metadata": {"name": name, "namespace": ns, "generation": generation,
                         "creationTimestamp": format!("2025-01-01T00:00:{created:02}Z")},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn route(name: &str, generation: i64, spec: Value) -> Object {
    route_in("ns", name, generation, 0, spec)
}

fn secret(name: &str, value: &str) -> Object {
    Object::Secret {
        namespace: "ns".into(),
        name: name.into(),
        data: [("apiKey".to_string(), value.as_bytes().to_vec())].into(),
    }
}

fn mock() -> Value {
    json!({"provider": "Mock"})
}

/// A route on `prefix` (and `hosts`) with API keys from Secret `keys`, using backend `b`.
fn keyed(prefix: &str, hosts: &[&str], blocked: &str) -> Value {
    json!({
        "pathPrefix": prefix, "hostnames": hosts,
        "auth": {"apiKeys": [{"name": "ci", "secretRef": {"name": "keys"}}]},
        "rules": [{"backends": [{"name": "b"}]}],
        "guards": {"blockedPatterns": [{"pattern": blocked}]},
    })
}

fn inventory(objects: Vec<Object>) -> Inventory {
    let mut inv = Inventory::default();
    for o in objects {
        inv.upsert(o);
    }
    inv
}

fn key(kind: ObjectKind, name: &str) -> ObjectKey {
    (kind, "ns".to_string(), name.to_string())
}

fn accepted_route(generation: i64, spec: Value) -> Accepted {
    Accepted {
        generation: Some(generation),
        spec: AcceptedSpec::Route(serde_json::from_value(spec).unwrap()),
    }
}

fn run(inv: &Inventory, last: &LastAccepted) -> Resolution {
    resolve(
        inv,
        last,
        &ClaimPolicy::allow_all(),
        &RenderOptions::kubernetes(),
    )
}

fn route_of<'a>(r: &'a Resolution, id: &str) -> Option<&'a pb::Route> {
    r.snapshot.routes.iter().find(|x| x.id == id)
}

#[test]
fn valid_objects_are_served_and_become_the_last_accepted() {
    let inv = inventory(vec![
        backend("b", 1, mock()),
        secret("keys", "k1"),
        route("r", 3, keyed("/team", &["a.example.com"], "secret")),
    ]);
    let r = run(&inv, &LastAccepted::new());
    assert!(r.problems.is_empty(), "{}", r.problems);
    let o = &r.outcomes[&key(ObjectKind::Route, "r")];
    assert_eq!(
        o.served,
        Served::Current {
            generation: Some(3)
        }
    );
    assert!(o.is_accepted());
    assert_eq!(o.accepted.as_ref().unwrap().generation, Some(3));
    assert_eq!(r.snapshot.routes.len(), 1);
    assert_eq!(r.snapshot.backends.len(), 1);
}

#[test]
fn a_refused_generation_keeps_serving_the_last_accepted_one() {
    let good = keyed("/team", &["a.example.com"], "secret");
    let inv = inventory(vec![
        backend("b", 1, mock()),
        secret("keys", "k1"),
        route("r", 4, keyed("/team", &["a.example.com"], "(unclosed")),
    ]);
    let last = LastAccepted::from([(key(ObjectKind::Route, "r"), accepted_route(3, good))]);
    let r = run(&inv, &last);
    let o = &r.outcomes[&key(ObjectKind::Route, "r")];
    assert_eq!(
        o.served,
        Served::LastAccepted {
            generation: Some(3)
        }
    );
    assert!(!o.is_accepted());
    assert_eq!(o.problems.len(), 1, "{:?}", o.problems);
    assert!(
        o.problems[0]
            .path
            .starts_with("spec.guards.blockedPatterns[0]")
    );
    assert_eq!(o.accepted, last.get(&key(ObjectKind::Route, "r")).cloned());
    let served = route_of(&r, "ns/r").expect("the last accepted rendering is served");
    assert_eq!(served.auth.as_ref().unwrap().api_keys[0].value, "k1");
    assert_eq!(
        served.guards.as_ref().unwrap().blocked_patterns[0].pattern,
        "secret"
    );
    assert!(served.unavailable.is_empty());
    assert_eq!(
        r.problems.len(),
        1,
        "the refused generation's problem is reported"
    );
}

#[test]
fn a_route_never_accepted_is_absent() {
    let inv = inventory(vec![
        backend("b", 1, mock()),
        secret("keys", "k1"),
        route("r", 1, keyed("/team", &[], "(unclosed")),
    ]);
    let r = run(&inv, &LastAccepted::new());
    assert_eq!(
        r.outcomes[&key(ObjectKind::Route, "r")].served,
        Served::NotServed
    );
    assert!(r.snapshot.routes.is_empty());
}

#[test]
fn a_route_whose_last_accepted_cannot_be_rebuilt_is_a_503_placeholder_on_its_claims() {
    // The Secret is gone: neither the current spec nor the (same) last accepted one renders.
    let spec = keyed("/team", &["a.example.com"], "secret");
    let inv = inventory(vec![
        backend("b", 1, mock()),
        route("r", 2, spec.clone()),
        route("open", 1, json!({"rules": [{"backends": [{"name": "b"}]}]})),
    ]);
    let last = LastAccepted::from([(key(ObjectKind::Route, "r"), accepted_route(2, spec))]);
    let r = run(&inv, &last);
    let o = &r.outcomes[&key(ObjectKind::Route, "r")];
    assert_eq!(
        o.served,
        Served::Unavailable {
            generation: Some(2)
        }
    );
    assert!(o.problems[0].message.contains("Secret \"keys\" not found"));
    assert_eq!(o.last_accepted_problems, o.problems);
    let placeholder = route_of(&r, "ns/r").expect("a placeholder holds the claims");
    assert_eq!(placeholder.hostnames, ["a.example.com"]);
    assert_eq!(placeholder.path_prefix, "/team");
    assert!(placeholder.unavailable.contains("ns/r is unavailable"));
    assert!(placeholder.rules.is_empty() && placeholder.auth.is_none());
    assert!(route_of(&r, "ns/open").is_some());
}

#[test]
fn routes_keep_working_on_the_last_accepted_version_of_a_broken_backend() {
    let inv = inventory(vec![
        backend("b", 2, json!({"provider": "OpenAICompatible"})),
        secret("keys", "k1"),
        route("r", 1, keyed("/team", &[], "x")),
    ]);
    let last = LastAccepted::from([(
        key(ObjectKind::Backend, "b"),
        Accepted {
            generation: Some(1),
            spec: AcceptedSpec::Backend(serde_json::from_value(mock()).unwrap()),
        },
    )]);
    let r = run(&inv, &last);
    let b = &r.outcomes[&key(ObjectKind::Backend, "b")];
    assert_eq!(
        b.served,
        Served::LastAccepted {
            generation: Some(1)
        }
    );
    assert!(b.problems[0].path == "spec.endpoint");
    assert_eq!(
        r.snapshot.backends[0].provider,
        pb::ProviderKind::Mock as i32
    );
    let route = &r.outcomes[&key(ObjectKind::Route, "r")];
    assert_eq!(
        route.served,
        Served::Current {
            generation: Some(1)
        }
    );
    assert!(route.problems.is_empty());
}

#[test]
fn a_backend_that_cannot_be_served_takes_its_routes_down_to_placeholders() {
    let spec = keyed("/team", &[], "x");
    let inv = inventory(vec![
        backend("b", 1, json!({"provider": "OpenAICompatible"})),
        secret("keys", "k1"),
        route("r", 1, spec.clone()),
    ]);
    let last = LastAccepted::from([(key(ObjectKind::Route, "r"), accepted_route(1, spec))]);
    let r = run(&inv, &last);
    assert_eq!(
        r.outcomes[&key(ObjectKind::Backend, "b")].served,
        Served::NotServed
    );
    assert!(r.snapshot.backends.is_empty());
    let o = &r.outcomes[&key(ObjectKind::Route, "r")];
    assert_eq!(
        o.served,
        Served::Unavailable {
            generation: Some(1)
        }
    );
    assert!(
        o.problems[0].message.contains("exists but is not served"),
        "{:?}",
        o.problems
    );
    assert!(!route_of(&r, "ns/r").unwrap().unavailable.is_empty());
}

#[test]
fn an_undecodable_object_serves_its_last_accepted_generation() {
    let good = keyed("/team", &[], "x");
    let mut inv = inventory(vec![backend("b", 1, mock()), secret("keys", "k1")]);
    let status = ResourceStatus {
        last_accepted: Some(accepted_route(1, good).to_status()),
        ..Default::default()
    };
    inv.upsert(Object::Undecodable(Box::new(Undecodable {
        kind: ObjectKind::Route,
        metadata: serde_json::from_value(json!({"name": "r", "namespace": "ns", "generation": 2}))
            .unwrap(),
        error: Problem::new(
            "AIRoute ns/r",
            "spec.rules[0].backends[0].weight",
            "invalid value: integer `4294967296`, expected u32",
        ),
        status: Some(status),
    })));
    let last = last_accepted_from_status(&inv);
    let r = run(&inv, &last);
    let o = &r.outcomes[&key(ObjectKind::Route, "r")];
    assert!(o.undecodable);
    assert_eq!(
        o.served,
        Served::LastAccepted {
            generation: Some(1)
        }
    );
    assert_eq!(o.problems[0].path, "spec.rules[0].backends[0].weight");
    assert!(route_of(&r, "ns/r").unwrap().unavailable.is_empty());
}

#[test]
fn the_oldest_route_keeps_a_claim_and_the_loser_is_not_served() {
    let spec = |reply: &str| json!({"pathPrefix": "/x", "rules": [{"models": [reply], "backends": [{"name": "b"}]}]});
    let inv = inventory(vec![
        backend("b", 1, mock()),
        Object::Backend(
            serde_json::from_value(
                json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
                "metadata": {"name": "b", "namespace": "a-new"}, "spec": mock()}),
            )
            .unwrap(),
        ),
        route_in(
            "z-old",
            "first",
            1,
            1,
            json!({"pathPrefix": "/x/", "rules": []}),
        ),
        route_in("ns", "owner", 1, 2, spec("owner")),
        route_in("a-new", "thief", 1, 3, spec("thief")),
    ]);
    let r = run(&inv, &LastAccepted::new());
    // z-old/first never rendered: it claims nothing.
    assert_eq!(
        r.outcomes[&(ObjectKind::Route, "z-old".into(), "first".into())].served,
        Served::NotServed
    );
    let thief = &r.outcomes[&(ObjectKind::Route, "a-new".into(), "thief".into())];
    assert_eq!(thief.served, Served::NotServed);
    assert!(
        thief.accepted.is_none(),
        "a conflicted generation is not accepted"
    );
    assert_eq!(
        thief.lost[0].winner,
        ("ns".to_string(), "owner".to_string())
    );
    assert!(route_of(&r, "a-new/thief").is_none());
    assert_eq!(route_of(&r, "ns/owner").unwrap().rules[0].models, ["owner"]);
    let text = r.problems.to_string();
    assert!(
        text.contains("AIRoute a-new/thief: spec.pathPrefix: any host and path prefix \"/x\" is already claimed by AIRoute ns/owner"),
        "{text}"
    );
}

#[test]
fn a_broken_older_route_keeps_its_claims_against_a_newer_valid_one() {
    let spec = keyed("/team", &["a.example.com"], "x");
    let inv = inventory(vec![
        backend("b", 1, mock()),
        route_in("ns", "old", 2, 1, spec.clone()),
        route_in(
            "ns",
            "new",
            1,
            5,
            json!({"pathPrefix": "/team", "hostnames": ["a.example.com"], "rules": [{"backends": [{"name": "b"}]}]}),
        ),
    ]);
    let last = LastAccepted::from([(key(ObjectKind::Route, "old"), accepted_route(2, spec))]);
    let r = run(&inv, &last);
    assert!(!route_of(&r, "ns/old").unwrap().unavailable.is_empty());
    assert!(route_of(&r, "ns/new").is_none());
    assert_eq!(r.outcomes[&key(ObjectKind::Route, "new")].lost.len(), 1);
}

#[test]
fn a_route_that_loses_one_of_its_hosts_serves_the_others() {
    let one = json!({"hostnames": ["a.example.com"], "rules": [{"backends": [{"name": "b"}]}]});
    let two = json!({"hostnames": ["A.example.com", "c.example.com"], "rules": [{"backends": [{"name": "b"}]}]});
    let inv = inventory(vec![
        backend("b", 1, mock()),
        route_in("ns", "one", 1, 1, one),
        route_in("ns", "two", 1, 2, two),
    ]);
    let r = run(&inv, &LastAccepted::new());
    assert_eq!(route_of(&r, "ns/two").unwrap().hostnames, ["c.example.com"]);
    let o = &r.outcomes[&key(ObjectKind::Route, "two")];
    assert_eq!(
        o.served,
        Served::Current {
            generation: Some(1)
        }
    );
    assert!(!o.is_accepted());
}

#[test]
fn the_claim_policy_refuses_a_generation_and_narrows_what_was_accepted() {
    let policy = ClaimPolicy::new(vec![
        "ns=a.example.com".parse().unwrap(),
        "*=*/sandbox".parse().unwrap(),
    ]);
    let allowed = json!({"hostnames": ["a.example.com"], "rules": [{"backends": [{"name": "b"}]}]});
    let both = json!({"hostnames": ["a.example.com", "b.example.com"], "rules": [{"backends": [{"name": "b"}]}]});
    let wider = json!({"pathPrefix": "/w", "hostnames": ["a.example.com", "b.example.com"], "rules": [{"backends": [{"name": "b"}]}]});
    let inv = inventory(vec![
        backend("b", 1, mock()),
        route("edit", 2, both),
        route(
            "fresh",
            1,
            json!({"pathPrefix": "/other", "rules": [{"backends": [{"name": "b"}]}]}),
        ),
        route(
            "sandbox",
            1,
            json!({"pathPrefix": "/sandbox/x", "rules": [{"backends": [{"name": "b"}]}]}),
        ),
        route("was-wider", 1, wider.clone()),
    ]);
    let last = LastAccepted::from([
        (key(ObjectKind::Route, "edit"), accepted_route(1, allowed)),
        (
            key(ObjectKind::Route, "was-wider"),
            accepted_route(1, wider),
        ),
    ]);
    let r = resolve(&inv, &last, &policy, &RenderOptions::kubernetes());
    let edit = &r.outcomes[&key(ObjectKind::Route, "edit")];
    assert_eq!(
        edit.served,
        Served::LastAccepted {
            generation: Some(1)
        }
    );
    assert_eq!(edit.not_allowed.len(), 1);
    assert!(
        edit.not_allowed[0]
            .message
            .contains("may not claim host \"b.example.com\""),
        "{:?}",
        edit.not_allowed
    );
    assert_eq!(
        route_of(&r, "ns/edit").unwrap().hostnames,
        ["a.example.com"]
    );
    assert_eq!(
        r.outcomes[&key(ObjectKind::Route, "fresh")].served,
        Served::NotServed
    );
    assert!(r.outcomes[&key(ObjectKind::Route, "sandbox")].is_accepted());
    // Accepted before the policy existed: only its allowed claims are served.
    let wider = &r.outcomes[&key(ObjectKind::Route, "was-wider")];
    assert_eq!(
        wider.served,
        Served::LastAccepted {
            generation: Some(1)
        }
    );
    assert_eq!(
        route_of(&r, "ns/was-wider").unwrap().hostnames,
        ["a.example.com"]
    );
}

#[test]
fn deleted_objects_are_gone() {
    let spec = json!({"rules": [{"backends": [{"name": "b"}]}]});
    let last = LastAccepted::from([(key(ObjectKind::Route, "r"), accepted_route(1, spec))]);
    let r = run(&inventory(vec![backend("b", 1, mock())]), &last);
    assert!(r.snapshot.routes.is_empty());
    assert!(!r.outcomes.contains_key(&key(ObjectKind::Route, "r")));
}

#[test]
fn last_accepted_round_trips_through_status() {
    let spec = json!({"rules": [{"backends": [{"name": "b"}]}],
                      "pricing": [{"model": "m", "input": 3.0, "output": 15.0}]});
    let accepted = accepted_route(7, spec);
    let status = ResourceStatus {
        last_accepted: Some(accepted.to_status()),
        ..Default::default()
    };
    // Through the API server: JSON text, floats may come back as integers.
    let text = serde_json::to_string(&status).unwrap().replace("3.0", "3");
    let back: ResourceStatus = serde_json::from_str(&text).unwrap();
    assert_eq!(
        Accepted::from_status(ObjectKind::Route, Some(&back)),
        Some(accepted)
    );
    let broken = ResourceStatus {
        last_accepted: Some(LastAcceptedStatus {
            generation: 1,
            spec: json!({"rules": "not a list"}),
        }),
        ..Default::default()
    };
    assert_eq!(
        Accepted::from_status(ObjectKind::Route, Some(&broken)),
        None
    );
}
