use k8s_openapi::ByteString;
use serde_json::json;

use super::*;

fn dynamic<T: serde::Serialize>(o: T) -> DynamicObject {
    serde_json::from_value(serde_json::to_value(o).unwrap()).unwrap()
}

fn untyped<T: serde::Serialize>(e: Event<T>) -> Event<DynamicObject> {
    match e {
        Event::Apply(o) => Event::Apply(dynamic(o)),
        Event::Delete(o) => Event::Delete(dynamic(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(dynamic(o)),
        Event::InitDone => Event::InitDone,
    }
}

trait TypedEvents {
    fn backend_event(&mut self, scope: &Scope, e: Event<AIBackend>) -> bool;
    fn route_event(&mut self, scope: &Scope, e: Event<AIRoute>) -> bool;
}

impl TypedEvents for Index {
    fn backend_event(&mut self, scope: &Scope, e: Event<AIBackend>) -> bool {
        self.event(ObjectKind::Backend, scope, untyped(e))
    }
    fn route_event(&mut self, scope: &Scope, e: Event<AIRoute>) -> bool {
        self.event(ObjectKind::Route, scope, untyped(e))
    }
}

fn backend(name: &str, ns: &str, generation: i64, spec: serde_json::Value) -> AIBackend {
    serde_json::from_value(json!({
        "apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
        "metadata": {"name": name, "namespace": ns, "generation": generation, "uid": format!("uid-{name}"),
                     "resourceVersion": "1"},
        "spec": spec
    }))
    .unwrap()
}

fn mock(name: &str, ns: &str) -> AIBackend {
    backend(name, ns, 1, json!({"provider": "Mock"}))
}

fn route(name: &str, ns: &str, secret: &str) -> AIRoute {
    serde_json::from_value(json!({
        "apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": {"pathPrefix": "/", "auth": {"apiKeys": [{"name": "k", "secretRef": {"name": secret}}]},
                 "rules": [{"backends": [{"name": "a"}]}]}
    }))
    .unwrap()
}

fn all() -> Scope {
    None
}

fn list_backends(ix: &mut Index, scope: &Scope, objects: Vec<AIBackend>) -> bool {
    let mut changed = ix.backend_event(scope, Event::Init);
    for o in objects {
        changed |= ix.backend_event(scope, Event::InitApply(o));
    }
    changed | ix.backend_event(scope, Event::InitDone)
}

#[test]
fn initial_list_is_applied_at_init_done_only() {
    let mut ix = Index::default();
    assert!(!ix.backend_event(&all(), Event::Init));
    assert!(!ix.backend_event(&all(), Event::InitApply(mock("a", "ns"))));
    assert!(ix.inventory().is_empty(), "nothing before InitDone");
    assert!(!ix.is_synced(&[all()]));
    assert!(ix.backend_event(&all(), Event::InitDone));
    assert!(ix.inventory().backend("ns", "a").is_some());
    assert!(!ix.is_synced(&[all()]), "routes not listed yet");
    ix.route_event(&all(), Event::Init);
    ix.route_event(&all(), Event::InitDone);
    assert!(!ix.is_synced(&[all()]), "AITeams not listed yet");
    list_teams(&mut ix);
    assert!(ix.is_synced(&[all()]));
}

fn list_teams(ix: &mut Index) {
    ix.event(ObjectKind::Team, &all(), Event::Init);
    ix.event(ObjectKind::Team, &all(), Event::InitDone);
}

#[test]
fn aiteams_are_decoded_and_their_secrets_wanted() {
    let mut ix = Index::default();
    let team: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "switchboard.dev/v1alpha1", "kind": "AITeam",
        "metadata": {"name": "payments", "namespace": "team-a", "generation": 1},
        "spec": {"apiKeys": [{"name": "ci", "secretRef": {"name": "payments-keys", "key": "ci"}}]},
        "status": {"usage": {"requestsThisMinute": 3, "spentUSD": 1.5}},
    }))
    .unwrap();
    assert!(ix.event(ObjectKind::Team, &all(), Event::Apply(team.clone())));
    let t = ix.inventory().team("team-a", "payments").unwrap();
    assert_eq!(
        t.status
            .as_ref()
            .unwrap()
            .usage
            .as_ref()
            .unwrap()
            .requests_this_minute,
        3
    );
    let want: BTreeSet<SecretKey> = [("team-a".into(), "payments-keys".into())].into();
    assert_eq!(ix.wanted_secrets(), want);
    // A usage write (status only) is stored but not a change.
    let mut newer = team;
    newer.data["status"]["usage"]["requestsThisMinute"] = json!(4);
    assert!(!ix.event(ObjectKind::Team, &all(), Event::Apply(newer)));
}

#[test]
fn status_only_updates_are_stored_but_not_a_change() {
    let mut ix = Index::default();
    assert!(ix.backend_event(&all(), Event::Apply(mock("a", "ns"))));
    let mut with_status = mock("a", "ns");
    with_status.metadata.resource_version = Some("2".into());
    with_status.status = Some(Default::default());
    with_status.status.as_mut().unwrap().observed_generation = Some(1);
    assert!(!ix.backend_event(&all(), Event::Apply(with_status)));
    assert_eq!(
        ix.inventory()
            .backend("ns", "a")
            .unwrap()
            .status
            .as_ref()
            .unwrap()
            .observed_generation,
        Some(1)
    );
    // A spec change bumps the generation: a change.
    assert!(ix.backend_event(
        &all(),
        Event::Apply(backend(
            "a",
            "ns",
            2,
            json!({"provider": "Mock", "mock": {"reply": "x"}})
        ))
    ));
    // A label change is a change too.
    let mut labelled = backend(
        "a",
        "ns",
        2,
        json!({"provider": "Mock", "mock": {"reply": "x"}}),
    );
    labelled.metadata.labels = Some([("team".to_string(), "x".to_string())].into());
    assert!(ix.backend_event(&all(), Event::Apply(labelled)));
}

#[test]
fn relist_removes_objects_gone_from_its_scope_only() {
    let mut ix = Index::default();
    let one = Some("one".to_string());
    let two = Some("two".to_string());
    list_backends(&mut ix, &one, vec![mock("a", "one"), mock("b", "one")]);
    list_backends(&mut ix, &two, vec![mock("c", "two")]);
    assert_eq!(ix.inventory().backends().count(), 3);
    // A re-list of `one` that lost `b` (deleted while the watch was down).
    assert!(list_backends(&mut ix, &one, vec![mock("a", "one")]));
    let names: Vec<&str> = ix.inventory().backends().map(|(_, n, _)| n).collect();
    assert_eq!(names, ["a", "c"]);
    // The same list again changes nothing.
    assert!(!list_backends(&mut ix, &one, vec![mock("a", "one")]));
}

#[test]
fn delete_removes() {
    let mut ix = Index::default();
    ix.backend_event(&all(), Event::Apply(mock("a", "ns")));
    assert!(ix.backend_event(&all(), Event::Delete(mock("a", "ns"))));
    assert!(!ix.backend_event(&all(), Event::Delete(mock("a", "ns"))));
    assert!(ix.inventory().is_empty());
}

#[test]
fn referenced_secrets_are_tracked_and_gate_sync() {
    let mut ix = Index::default();
    list_backends(
        &mut ix,
        &all(),
        vec![backend(
            "a",
            "ns",
            1,
            json!({"provider": "Anthropic", "credentials": {"secretRef": {"name": "key-a"}}}),
        )],
    );
    ix.route_event(&all(), Event::Init);
    ix.route_event(&all(), Event::InitApply(route("r", "ns", "key-r")));
    ix.route_event(&all(), Event::InitDone);
    list_teams(&mut ix);
    let want: BTreeSet<SecretKey> =
        [("ns".into(), "key-a".into()), ("ns".into(), "key-r".into())].into();
    assert_eq!(ix.wanted_secrets(), want);
    ix.note_wanted(Instant::now());
    assert!(!ix.is_synced(&[all()]), "secrets not looked up yet");
    assert!(ix.secret(
        &("ns".into(), "key-a".into()),
        Some([("apiKey".to_string(), b"x".to_vec())].into())
    ));
    assert!(
        ix.secret(&("ns".into(), "key-r".into()), None),
        "the first lookup of a missing Secret is news"
    );
    assert!(
        !ix.secret(&("ns".into(), "key-r".into()), None),
        "missing and still missing: no change"
    );
    assert!(ix.is_synced(&[all()]));
    assert!(!ix.secret(
        &("ns".into(), "key-a".into()),
        Some([("apiKey".to_string(), b"x".to_vec())].into())
    ));
    assert!(ix.secret(&("ns".into(), "key-a".into()), None));
    assert!(ix.inventory().secret("ns", "key-a").is_none());
}

#[test]
fn secret_data_decodes_data_and_string_data() {
    let s = Secret {
        data: Some(
            [
                ("a".to_string(), ByteString(b"1".to_vec())),
                ("b".to_string(), ByteString(b"2".to_vec())),
            ]
            .into(),
        ),
        string_data: Some([("b".to_string(), "3".to_string())].into()),
        ..Default::default()
    };
    let d = secret_data(&s);
    assert_eq!(d["a"], b"1");
    assert_eq!(d["b"], b"3");
}

#[test]
fn an_object_that_does_not_decode_is_kept_with_its_error_and_blocks_nothing() {
    let mut ix = Index::default();
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
        "metadata": {"name": "big", "namespace": "ns", "generation": 2},
        "spec": {"rules": [{"backends": [{"name": "a", "weight": 4_294_967_296_u64}]}]},
        "status": {"lastAccepted": {"generation": 1, "spec": {"rules": [{"backends": [{"name": "a"}]}]}}}
    }))
    .unwrap();
    let good = dynamic(route("ok", "ns", "key"));
    ix.event(ObjectKind::Route, &all(), Event::Init);
    ix.event(ObjectKind::Route, &all(), Event::InitApply(bad.clone()));
    ix.event(ObjectKind::Route, &all(), Event::InitApply(good));
    assert!(ix.event(ObjectKind::Route, &all(), Event::InitDone));
    assert!(ix.inventory().route("ns", "ok").is_some());
    let u = ix
        .inventory()
        .undecodable_object(ObjectKind::Route, "ns", "big")
        .expect("kept");
    assert_eq!(u.error.resource, "AIRoute ns/big");
    assert_eq!(u.error.path, "spec.rules[0].backends[0].weight");
    assert!(
        u.error.message.contains("4294967296"),
        "{}",
        u.error.message
    );
    assert_eq!(
        u.status
            .as_ref()
            .unwrap()
            .last_accepted
            .as_ref()
            .unwrap()
            .generation,
        1
    );
    // The same object again is no change; fixing it replaces it.
    assert!(!ix.event(ObjectKind::Route, &all(), Event::Apply(bad)));
    let fixed = dynamic(route("big", "ns", "key"));
    assert!(ix.event(ObjectKind::Route, &all(), Event::Apply(fixed)));
    assert!(ix.inventory().undecodable().next().is_none());
    assert!(ix.inventory().route("ns", "big").is_some());
}

fn synced(ix: &mut Index) {
    ix.backend_event(&all(), Event::Init);
    ix.backend_event(&all(), Event::InitDone);
    ix.route_event(&all(), Event::Init);
    ix.route_event(&all(), Event::InitDone);
    list_teams(ix);
}

#[test]
fn only_objects_needing_a_new_secret_wait_for_it_and_only_for_a_while() {
    let start = Instant::now();
    let mut ix = Index::default();
    synced(&mut ix);
    ix.route_event(&all(), Event::Apply(route("r", "ns", "old")));
    ix.secret(
        &("ns".into(), "old".into()),
        Some([("apiKey".to_string(), b"1".to_vec())].into()),
    );
    ix.note_wanted(start);
    assert!(ix.ready_for_first_publish(&[all()]));
    let first = ix.publishable(start);
    ix.mark_published(first, start);

    // r now references a Secret not looked up yet; a new route needs another one.
    let t1 = start + Duration::from_secs(1);
    ix.route_event(&all(), Event::Apply(route("r", "ns", "new")));
    ix.route_event(&all(), Event::Apply(route("fresh", "ns", "other")));
    ix.backend_event(&all(), Event::Apply(mock("unrelated", "ns")));
    ix.note_wanted(t1);
    assert!(
        ix.wanted_secrets()
            .contains(&("ns".to_string(), "old".to_string())),
        "still needed by what was published"
    );
    let held = ix.publishable(t1);
    let r = held.route("ns", "r").unwrap();
    assert_eq!(
        r.spec.auth.as_ref().unwrap().api_keys[0]
            .secret_ref
            .as_ref()
            .unwrap()
            .name,
        "old",
        "r stays as published"
    );
    assert!(
        held.route("ns", "fresh").is_none(),
        "a new object waits unpublished"
    );
    assert!(
        held.backend("ns", "unrelated").is_some(),
        "other objects do not wait"
    );
    assert_eq!(ix.next_wait_deadline(), Some(t1 + SECRET_WAIT));
    ix.mark_published(held, t1);

    // The new Secret arrives: r is published as it is now.
    assert!(ix.secret(
        &("ns".into(), "new".into()),
        Some([("apiKey".to_string(), b"2".to_vec())].into())
    ));
    let t2 = t1 + Duration::from_millis(500);
    let next = ix.publishable(t2);
    assert_eq!(
        next.route("ns", "r")
            .unwrap()
            .spec
            .auth
            .as_ref()
            .unwrap()
            .api_keys[0]
            .secret_ref
            .as_ref()
            .unwrap()
            .name,
        "new"
    );
    assert!(next.route("ns", "fresh").is_none());
    ix.mark_published(next, t2);

    // The wait for "other" runs out: "fresh" is published without it (the renderer says why).
    assert_eq!(ix.next_wait_deadline(), Some(t1 + SECRET_WAIT));
    let late = t1 + SECRET_WAIT;
    let last = ix.publishable(late);
    assert!(last.route("ns", "fresh").is_some());
    ix.mark_published(last, late);
    assert_eq!(ix.next_wait_deadline(), None, "nothing left to wait for");
}

#[test]
fn the_first_publication_waits_for_every_list_and_every_secret() {
    let mut ix = Index::default();
    ix.route_event(&all(), Event::Init);
    ix.route_event(&all(), Event::InitApply(route("r", "ns", "key")));
    ix.route_event(&all(), Event::InitDone);
    ix.note_wanted(Instant::now());
    assert!(!ix.ready_for_first_publish(&[all()]), "backends not listed");
    ix.backend_event(&all(), Event::Init);
    ix.backend_event(&all(), Event::InitDone);
    list_teams(&mut ix);
    assert!(
        !ix.ready_for_first_publish(&[all()]),
        "the Secret is not looked up yet, however long that takes"
    );
    ix.secret(&("ns".into(), "key".into()), None);
    assert!(ix.ready_for_first_publish(&[all()]));
}

#[test]
fn secrets_of_the_last_accepted_spec_are_wanted_too() {
    let mut ix = Index::default();
    let mut r = route("r", "ns", "current");
    r.status = Some(ResourceStatus {
        last_accepted: Some(switchboard_api::v1alpha1::LastAcceptedStatus {
            generation: 1,
            spec: serde_json::to_value(route("r", "ns", "accepted").spec).unwrap(),
        }),
        ..Default::default()
    });
    ix.route_event(&all(), Event::Apply(r));
    let want: BTreeSet<SecretKey> = [
        ("ns".into(), "accepted".into()),
        ("ns".into(), "current".into()),
    ]
    .into();
    assert_eq!(ix.wanted_secrets(), want);
}
