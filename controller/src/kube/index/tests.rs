use k8s_openapi::ByteString;
use serde_json::json;

use super::*;

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
    assert!(ix.is_synced(&[all()]));
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
    let want: BTreeSet<SecretKey> =
        [("ns".into(), "key-a".into()), ("ns".into(), "key-r".into())].into();
    assert_eq!(ix.secret_refs(), want);
    assert!(!ix.is_synced(&[all()]), "secrets not looked up yet");
    assert!(ix.secret(
        &("ns".into(), "key-a".into()),
        Some([("apiKey".to_string(), b"x".to_vec())].into())
    ));
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
