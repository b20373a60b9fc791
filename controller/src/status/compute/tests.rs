use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use switchboard_api::render::ClaimPolicy;
use switchboard_api::{Inventory, parse_documents};
use switchboard_proto::ResourceError;

use super::*;
use crate::fleet::FleetView;
use crate::pipeline::{RenderMode, Rendered};
use crate::status::inputs::{DataPlaneState, NackInfo};

const BACKEND: &str = "apiVersion: switchboard.dev/v1alpha1
kind: AIBackend
metadata: {name: llm, namespace: ns, generation: 2}
spec:
  provider: Anthropic
  credentials: {secretRef: {name: llm-key}}
";
const SECRET: &str = "apiVersion: v1
kind: Secret
metadata: {name: llm-key, namespace: ns}
stringData: {apiKey: sk-test}
";
const ROUTE: &str = "apiVersion: switchboard.dev/v1alpha1
kind: AIRoute
metadata: {name: main, namespace: ns, generation: 5}
spec:
  pathPrefix: /
  rules:
    - backends: [{name: llm}]
";

fn backend_key() -> ObjectKey {
    (ObjectKind::Backend, "ns".into(), "llm".into())
}
fn route_key() -> ObjectKey {
    (ObjectKind::Route, "ns".into(), "main".into())
}

/// Inputs for `docs` rendered in Kubernetes mode, recorded in `history`.
fn inputs(docs: &[&str], history: &mut VersionHistory) -> StatusInputs {
    let mut inv = Inventory::default();
    inv.extend(parse_documents(&docs.join("---\n"), "test").unwrap())
        .unwrap();
    inputs_of(inv, history)
}

fn inputs_of(inv: Inventory, history: &mut VersionHistory) -> StatusInputs {
    let rendered = Rendered::render(
        Arc::new(inv),
        RenderMode::Kubernetes,
        &ClaimPolicy::allow_all(),
    );
    let i = StatusInputs::from_parts(&rendered, &FleetView::default());
    if let Some(v) = &i.rendered_version {
        history.record(v, i.served());
    }
    i
}

fn dp(acked: Option<&str>) -> DataPlaneState {
    DataPlaneState {
        acked_version: acked.map(str::to_string),
        nack: None,
    }
}

fn now() -> Time {
    Time(Timestamp::from_second(1_700_000_000).unwrap())
}

fn conds(
    inputs: &StatusInputs,
    history: &VersionHistory,
    key: &ObjectKey,
) -> Vec<(String, String, String, String)> {
    let all = compute_all(inputs, history, |_| None, &now());
    all[key]
        .conditions
        .iter()
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            )
        })
        .collect()
}

fn find<'a>(
    c: &'a [(String, String, String, String)],
    type_: &str,
) -> &'a (String, String, String, String) {
    c.iter().find(|c| c.0 == type_).unwrap()
}

#[test]
fn a_routes_accepted_message_names_what_callers_without_a_team_get() {
    let mut h = VersionHistory::default();
    let i = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    let c = conds(&i, &h, &route_key());
    assert_eq!(find(&c, "Accepted").3, "the spec is valid");
    let with_teams = format!("{ROUTE}  teams:\n    teams: [{{name: payments}}]\n");
    let i = inputs(&[BACKEND, SECRET, &with_teams], &mut h);
    let c = conds(&i, &h, &route_key());
    assert_eq!(
        find(&c, "Accepted").3,
        "the spec is valid; callers that map to no team get the default tier sandbox (20 requests per minute, 100000 tokens per day, each caller on its own)"
    );
    let refusing = format!("{ROUTE}  teams:\n    refuseUnknown: true\n");
    let i = inputs(&[BACKEND, SECRET, &refusing], &mut h);
    let c = conds(&i, &h, &route_key());
    assert_eq!(
        find(&c, "Accepted").3,
        "the spec is valid; callers that map to no team are refused (refuseUnknown)"
    );
}

#[test]
fn valid_objects_without_data_planes_are_accepted_resolved_and_unknown() {
    let mut h = VersionHistory::default();
    let i = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    let all = compute_all(&i, &h, |_| None, &now());
    for key in [backend_key(), route_key()] {
        let s = &all[&key];
        let got: Vec<(&str, &str, &str)> = s
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Accepted", "True", "Valid"),
                ("ResolvedRefs", "True", "Resolved"),
                ("Programmed", "Unknown", "NoDataPlanes")
            ]
        );
    }
    assert_eq!(all[&backend_key()].observed_generation, Some(2));
    assert!(
        all[&route_key()]
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(5))
    );
}

#[test]
fn missing_secret_is_resolved_refs_false_naming_the_field() {
    let mut h = VersionHistory::default();
    let i = inputs(&[BACKEND, ROUTE], &mut h);
    let c = conds(&i, &h, &backend_key());
    assert_eq!(find(&c, "Accepted").1, "True");
    let r = find(&c, "ResolvedRefs");
    assert_eq!((r.1.as_str(), r.2.as_str()), ("False", "SecretNotFound"));
    assert_eq!(
        r.3,
        "spec.credentials.secretRef.name: Secret \"llm-key\" not found"
    );
}

#[test]
fn missing_backend_is_backend_not_found() {
    let mut h = VersionHistory::default();
    let i = inputs(&[ROUTE], &mut h);
    let c = conds(&i, &h, &route_key());
    let r = find(&c, "ResolvedRefs");
    assert_eq!((r.1.as_str(), r.2.as_str()), ("False", "BackendNotFound"));
    assert_eq!(
        r.3,
        "spec.rules[0].backends[0].name: AIBackend \"llm\" not found"
    );
}

#[test]
fn invalid_spec_is_not_accepted_and_not_programmed() {
    let mut h = VersionHistory::default();
    let bad = BACKEND.replace(
        "provider: Anthropic",
        "provider: Anthropic\n  endpoint: ftp://x",
    );
    let mut i = inputs(&[&bad, SECRET, ROUTE], &mut h);
    i.dataplanes.insert("dp-1".into(), dp(None));
    let c = conds(&i, &h, &backend_key());
    let a = find(&c, "Accepted");
    assert_eq!((a.1.as_str(), a.2.as_str()), ("False", "Invalid"));
    assert!(a.3.starts_with("spec.endpoint: "), "{}", a.3);
    assert_eq!(find(&c, "ResolvedRefs").1, "True");
    let p = find(&c, "Programmed");
    assert_eq!((p.1.as_str(), p.2.as_str()), ("False", "Invalid"));
    // The route is left out too, because its backend is; its status says why.
    let c = conds(&i, &h, &route_key());
    let r = find(&c, "ResolvedRefs");
    assert_eq!((r.1.as_str(), r.2.as_str()), ("False", "BackendNotFound"));
    assert_eq!(
        r.3,
        "spec.rules[0].backends[0].name: AIBackend \"llm\" exists but is not served (it has problems of its own)"
    );
    assert_eq!(find(&c, "Programmed").2, "Invalid");
}

#[test]
fn programmed_counts_data_planes_running_the_current_generation() {
    let mut h = VersionHistory::default();
    let mut i = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    let v = i.rendered_version.clone().unwrap();
    i.dataplanes.insert("dp-1".into(), dp(Some(&v)));
    i.dataplanes.insert("dp-2".into(), dp(Some("old")));
    let p = find(&conds(&i, &h, &route_key()), "Programmed").clone();
    assert_eq!((p.1.as_str(), p.2.as_str()), ("False", "Pending"));
    assert!(
        p.3.starts_with("1 of 2 connected data planes run generation 5"),
        "{}",
        p.3
    );
    i.dataplanes.insert("dp-2".into(), dp(Some(&v)));
    let p = find(&conds(&i, &h, &route_key()), "Programmed").clone();
    assert_eq!((p.1.as_str(), p.2.as_str()), ("True", "Programmed"));
    assert_eq!(p.3, "2 of 2 connected data planes run generation 5");
    assert!(!p.3.contains(&v), "no snapshot version in messages");
}

#[test]
fn a_newer_generation_is_not_programmed_until_its_version_is_acked() {
    let mut h = VersionHistory::default();
    let old = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    let old_v = old.rendered_version.unwrap();
    let newer = ROUTE
        .replace("generation: 5", "generation: 6")
        .replace("pathPrefix: /", "pathPrefix: /v2");
    let mut i = inputs(&[BACKEND, SECRET, &newer], &mut h);
    i.dataplanes.insert("dp-1".into(), dp(Some(&old_v)));
    assert_eq!(find(&conds(&i, &h, &route_key()), "Programmed").1, "False");
    // The backend did not change: the old version still contains generation 2.
    assert_eq!(find(&conds(&i, &h, &backend_key()), "Programmed").1, "True");
}

#[test]
fn nack_of_a_version_containing_the_object_is_rejected_with_the_reason() {
    let mut h = VersionHistory::default();
    let mut i = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    let v = i.rendered_version.clone().unwrap();
    let nack = NackInfo {
        version: v.clone(),
        errors: vec![ResourceError {
            resource: "AIRoute/ns/main".into(),
            message: "unsupported auth".into(),
        }],
    };
    i.dataplanes.insert(
        "dp-1".into(),
        DataPlaneState {
            acked_version: Some("old".into()),
            nack: Some(nack),
        },
    );
    let p = find(&conds(&i, &h, &route_key()), "Programmed").clone();
    assert_eq!((p.1.as_str(), p.2.as_str()), ("False", "Rejected"));
    assert_eq!(
        p.3,
        "data plane dp-1 rejected a version holding it: unsupported auth"
    );
    let p = find(&conds(&i, &h, &backend_key()), "Programmed").clone();
    assert_eq!(p.2, "Rejected");
    assert!(
        p.3.ends_with("because of other resources: AIRoute/ns/main: unsupported auth"),
        "{}",
        p.3
    );
}

#[test]
fn transition_time_moves_only_when_status_changes() {
    let mut h = VersionHistory::default();
    let i = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    let earlier = Time(Timestamp::from_second(1_600_000_000).unwrap());
    let first = compute_all(&i, &h, |_| None, &earlier);
    let prev = first[&route_key()].clone();
    // Same inputs later: nothing changes, timestamps kept.
    let again = compute_all(&i, &h, |_| Some(&prev), &now());
    assert_eq!(again[&route_key()], prev);
    // A data plane connects: Programmed moves from Unknown to True, the rest keep their time.
    let mut i2 = i.clone();
    i2.dataplanes
        .insert("dp".into(), dp(i.rendered_version.as_deref()));
    let after = compute_all(&i2, &h, |_| Some(&prev), &now());
    let s = &after[&route_key()];
    assert!(!same_ignoring_time(ObjectKind::Route, s, &prev));
    for c in &s.conditions {
        let want = if c.type_ == "Programmed" {
            now()
        } else {
            earlier.clone()
        };
        assert_eq!(c.last_transition_time, want, "{}", c.type_);
    }
}

#[test]
fn comparison_ignores_timestamps_and_order() {
    let d = [
        Desired {
            type_: "Accepted",
            status: "True",
            reason: "Valid",
            message: "m".into(),
        },
        Desired {
            type_: "Programmed",
            status: "False",
            reason: "Pending",
            message: "p".into(),
        },
    ];
    let a = status_for(&d, 1, None, None, &now());
    let mut b = status_for(&d, 1, None, None, &Time(Timestamp::UNIX_EPOCH));
    b.conditions.reverse();
    assert!(same_ignoring_time(ObjectKind::Route, &a, &b));
    let c = status_for(&d, 2, None, None, &now());
    assert!(!same_ignoring_time(ObjectKind::Route, &a, &c));
    // The last accepted spec as the API server re-encodes it (3.0 as 3) is the same.
    let spec =
        serde_json::json!({"rules": [], "pricing": [{"model": "m", "input": 3.0, "output": 1.5}]});
    let with = |spec: serde_json::Value| {
        status_for(
            &d,
            1,
            Some(LastAcceptedStatus {
                generation: 1,
                spec,
            }),
            None,
            &now(),
        )
    };
    let reencoded: serde_json::Value =
        serde_json::from_str(&spec.to_string().replace("3.0", "3")).unwrap();
    assert_ne!(spec, reencoded);
    assert!(same_ignoring_time(
        ObjectKind::Route,
        &with(spec.clone()),
        &with(reencoded)
    ));
    assert!(!same_ignoring_time(ObjectKind::Route, &with(spec), &a));
}

#[test]
fn a_refused_generation_says_which_generation_is_served_instead() {
    let mut h = VersionHistory::default();
    let good = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    let v = good.rendered_version.clone().unwrap();
    let accepted = compute_all(&good, &h, |_| None, &now())[&route_key()].clone();
    assert_eq!(accepted.last_accepted.as_ref().unwrap().generation, 5);
    // Generation 6 names a backend that does not exist; its status keeps generation 5.
    let mut inv = Inventory::default();
    let broken = ROUTE
        .replace("generation: 5", "generation: 6")
        .replace("name: llm}", "name: nope}");
    inv.extend(parse_documents(&[BACKEND, SECRET, &broken].join("---\n"), "t").unwrap())
        .unwrap();
    let mut r: switchboard_api::AIRoute = match inv.get(ObjectKind::Route, "ns", "main") {
        Some(switchboard_api::Object::Route(r)) => r,
        _ => unreachable!(),
    };
    r.status = Some(accepted);
    inv.upsert(switchboard_api::Object::Route(r));
    let mut i = inputs_of(inv, &mut h);
    i.dataplanes.insert("dp-1".into(), dp(Some(&v)));
    assert_eq!(
        i.rendered_version.as_deref(),
        Some(v.as_str()),
        "same content as before"
    );
    let all = compute_all(&i, &h, |_| None, &now());
    let s = &all[&route_key()];
    assert_eq!(s.observed_generation, Some(6));
    assert_eq!(s.last_accepted.as_ref().unwrap().generation, 5, "kept");
    let c = conds(&i, &h, &route_key());
    let resolved = find(&c, "ResolvedRefs");
    assert_eq!(resolved.2, "BackendNotFound");
    let p = find(&c, "Programmed");
    assert_eq!(
        (p.1.as_str(), p.2.as_str()),
        ("False", "ServingLastAccepted")
    );
    assert_eq!(
        p.3,
        "generation 6 is refused (see Accepted/ResolvedRefs); 1 of 1 connected data planes serve generation 5, the last accepted"
    );
    assert!(
        find(&c, "Accepted")
            .3
            .contains("data planes keep serving generation 5")
    );
}

#[test]
fn references_are_counted_in_words() {
    let mut h = VersionHistory::default();
    let i = inputs(&[BACKEND, SECRET, ROUTE], &mut h);
    assert_eq!(
        find(&conds(&i, &h, &backend_key()), "ResolvedRefs").3,
        "its one reference resolved"
    );
    let mock = BACKEND
        .replace("provider: Anthropic", "provider: Mock")
        .replace("  credentials: {secretRef: {name: llm-key}}\n", "");
    let i = inputs(&[&mock], &mut h);
    assert_eq!(
        find(&conds(&i, &h, &backend_key()), "ResolvedRefs").3,
        "the spec references no AIBackend, AITeam or Secret"
    );
}

const TEAM: &str = "apiVersion: switchboard.dev/v1alpha1
kind: AITeam
metadata: {name: payments, namespace: team-a, generation: 3}
spec:
  claimValues: [payments]
";

fn team_key() -> ObjectKey {
    (ObjectKind::Team, "team-a".into(), "payments".into())
}

fn with_team_refs(refs: &str) -> String {
    format!("{ROUTE}  teams:\n    teamRefs: {refs}\n")
}

#[test]
fn a_team_no_route_uses_is_not_referenced_and_a_used_one_names_its_routes() {
    let mut h = VersionHistory::default();
    let i = inputs(&[BACKEND, SECRET, ROUTE, TEAM], &mut h);
    let c = conds(&i, &h, &team_key());
    assert_eq!(find(&c, "Accepted").1, "True");
    assert_eq!(
        find(&c, "ResolvedRefs").3,
        "the spec references no AIBackend, AITeam or Secret"
    );
    let p = find(&c, "Programmed");
    assert_eq!((p.1.as_str(), p.2.as_str()), ("False", "NotReferenced"));

    let route = with_team_refs("[{name: payments, namespace: team-a}]");
    let mut i = inputs(&[BACKEND, SECRET, &route, TEAM], &mut h);
    let v = i.rendered_version.clone();
    i.dataplanes.insert("dp-1".into(), dp(v.as_deref()));
    let c = conds(&i, &h, &team_key());
    let p = find(&c, "Programmed");
    assert_eq!((p.1.as_str(), p.2.as_str()), ("True", "Programmed"));
    assert_eq!(
        p.3,
        "1 of 1 connected data planes run generation 3; served by AIRoute ns/main"
    );
    // The route counts the team among its references.
    let c = conds(&i, &h, &route_key());
    assert_eq!(find(&c, "ResolvedRefs").3, "all 2 references resolved");
}

#[test]
fn a_route_missing_a_team_is_accepted_and_served_with_resolved_refs_false() {
    let mut h = VersionHistory::default();
    let route = with_team_refs("[{name: ghost}]");
    let mut i = inputs(&[BACKEND, SECRET, &route], &mut h);
    let v = i.rendered_version.clone();
    i.dataplanes.insert("dp-1".into(), dp(v.as_deref()));
    let c = conds(&i, &h, &route_key());
    assert_eq!(find(&c, "Accepted").1, "True");
    let r = find(&c, "ResolvedRefs");
    assert_eq!((r.1.as_str(), r.2.as_str()), ("False", "TeamNotFound"));
    assert_eq!(
        r.3,
        "spec.teams.teamRefs[0].name: AITeam ns/ghost not found; its callers are not in a team here; the route is served without what these name"
    );
    assert_eq!(find(&c, "Programmed").1, "True");
}
