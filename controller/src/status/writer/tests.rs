//! Status writer scenarios against a fake API server: one scenario per
//! test, asserting the exact requests the server receives.

use std::sync::Arc;

use ::kube::Client;
use ::kube::client::Body;
use ::kube::runtime::events::Reporter;
use http::{Request, Response};
use serde_json::{Value, json};
use switchboard_api::render::ClaimPolicy;
use switchboard_api::{Inventory, Object};

use crate::fleet::FleetView;
use crate::pipeline::{RenderMode, Rendered};

use super::*;
use tokio::sync::watch;

/// One request the fake API server received.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

/// A client whose requests go to a task that answers and records them; the
/// task returns every request once the client is dropped.
fn fake_api() -> (Client, tokio::task::JoinHandle<Vec<Seen>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let reply = if path.contains("/events") {
                body.clone()
            } else if method == "GET" {
                json!({"apiVersion": API_VERSION, "kind": "List", "metadata": {}, "items": []})
            } else if path.contains("/airoutes/") {
                json!({"apiVersion": API_VERSION, "kind": "AIRoute", "metadata": {"name": "x"},
                       "spec": {"pathPrefix": "/", "rules": []}})
            } else {
                json!({"apiVersion": API_VERSION, "kind": "AIBackend", "metadata": {"name": "x"},
                       "spec": {"provider": "Mock"}})
            };
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
            seen.push(Seen { method, path, body });
        }
        seen
    });
    (Client::new(service, "default"), server)
}

fn writer(client: Client) -> StatusWriter {
    StatusWriter::new(
        client,
        Reporter {
            controller: "switchboard-controller".into(),
            instance: None,
        },
    )
}

fn now() -> Time {
    Time(Timestamp::from_second(1_700_000_000).unwrap())
}

fn backend(spec: Value, generation: i64, uid: &str) -> AIBackend {
    serde_json::from_value(json!({
        "apiVersion": API_VERSION, "kind": "AIBackend",
        "metadata": {"name": "llm", "namespace": "ns", "generation": generation, "uid": uid},
        "spec": spec
    }))
    .unwrap()
}

fn mock_backend() -> AIBackend {
    backend(json!({"provider": "Mock"}), 1, "uid-1")
}

/// Inputs as the render task would publish them for `objects`.
fn inputs(objects: Vec<Object>) -> StatusInputs {
    let mut inv = Inventory::default();
    for o in objects {
        inv.upsert(o);
    }
    let rendered = Rendered::render(
        Arc::new(inv),
        RenderMode::Kubernetes,
        &ClaimPolicy::allow_all(),
    );
    StatusInputs::from_parts(&rendered, &FleetView::default())
}

const STATUS_PATH: &str = "/apis/switchboard.dev/v1alpha1/namespaces/ns/aibackends/llm/status?&force=true&fieldManager=switchboard-controller";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/ns/events?";

fn requests(seen: &[Seen]) -> Vec<(&str, &str)> {
    seen.iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect()
}

/// `(type, status, reason)` of each condition in an apply patch body.
fn conditions(body: &Value) -> Vec<(String, String, String)> {
    body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            (s("type"), s("status"), s("reason"))
        })
        .collect()
}

fn c(t: &str, s: &str, r: &str) -> (String, String, String) {
    (t.into(), s.into(), r.into())
}

#[tokio::test]
async fn create_applies_status_and_records_an_event_per_condition() {
    let (client, server) = fake_api();
    let mut w = writer(client);
    let report = w
        .sync(&inputs(vec![Object::Backend(mock_backend())]), now())
        .await
        .unwrap();
    assert_eq!(
        report,
        SyncReport {
            written: 1,
            unchanged: 0,
            events: 3
        }
    );
    drop(w);
    let seen = server.await.unwrap();
    assert_eq!(
        requests(&seen),
        [
            ("PATCH", STATUS_PATH),
            ("POST", EVENTS_PATH),
            ("POST", EVENTS_PATH),
            ("POST", EVENTS_PATH)
        ]
    );
    let patch = &seen[0].body;
    assert_eq!(patch["apiVersion"], API_VERSION);
    assert_eq!(patch["kind"], "AIBackend");
    assert_eq!(patch["status"]["observedGeneration"], 1);
    assert_eq!(
        conditions(patch),
        [
            c("Accepted", "True", "Valid"),
            c("ResolvedRefs", "True", "Resolved"),
            c("Programmed", "Unknown", "NoDataPlanes")
        ]
    );
    let reasons: Vec<&str> = seen[1..]
        .iter()
        .map(|s| s.body["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["Valid", "Resolved", "NoDataPlanes"]);
    assert_eq!(seen[1].body["regarding"]["uid"], "uid-1");
    assert_eq!(seen[1].body["type"], "Normal");
}

#[tokio::test]
async fn second_pass_with_the_same_inputs_writes_nothing() {
    let (client, server) = fake_api();
    let mut w = writer(client);
    let i = inputs(vec![Object::Backend(mock_backend())]);
    w.sync(&i, now()).await.unwrap();
    // The source ignored our status write, so the inventory still has no status.
    let report = w.sync(&i, now()).await.unwrap();
    assert_eq!(
        report,
        SyncReport {
            written: 0,
            unchanged: 1,
            events: 0
        }
    );
    drop(w);
    assert_eq!(server.await.unwrap().len(), 4, "only the first pass wrote");
}

#[tokio::test]
async fn update_applies_the_new_generation_without_events() {
    let (client, server) = fake_api();
    let mut w = writer(client);
    w.sync(&inputs(vec![Object::Backend(mock_backend())]), now())
        .await
        .unwrap();
    let updated = backend(
        json!({"provider": "Mock", "mock": {"reply": "hi"}}),
        2,
        "uid-1",
    );
    let report = w
        .sync(&inputs(vec![Object::Backend(updated)]), now())
        .await
        .unwrap();
    assert_eq!(
        report,
        SyncReport {
            written: 1,
            unchanged: 0,
            events: 0
        }
    );
    drop(w);
    let seen = server.await.unwrap();
    let second = &seen[4..];
    assert_eq!(requests(second), [("PATCH", STATUS_PATH)]);
    assert_eq!(second[0].body["status"]["observedGeneration"], 2);
    assert!(
        second[0].body["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["observedGeneration"] == 2)
    );
}

#[tokio::test]
async fn delete_writes_nothing_and_a_recreated_object_starts_afresh() {
    let (client, server) = fake_api();
    let mut w = writer(client);
    w.sync(&inputs(vec![Object::Backend(mock_backend())]), now())
        .await
        .unwrap();
    let report = w.sync(&inputs(vec![]), now()).await.unwrap();
    assert_eq!(report, SyncReport::default());
    let recreated = backend(json!({"provider": "Mock"}), 1, "uid-2");
    let report = w
        .sync(&inputs(vec![Object::Backend(recreated)]), now())
        .await
        .unwrap();
    assert_eq!(report.written, 1);
    drop(w);
    let seen = server.await.unwrap();
    assert_eq!(requests(&seen).iter().filter(|r| r.0 == "PATCH").count(), 2);
    assert_eq!(seen[4].method, "PATCH", "nothing was sent for the deletion");
    assert_eq!(seen[5].body["regarding"]["uid"], "uid-2");
}

#[tokio::test]
async fn missing_secret_is_written_as_resolved_refs_false_with_a_warning() {
    let (client, server) = fake_api();
    let mut w = writer(client);
    let b = backend(
        json!({"provider": "Anthropic", "credentials": {"secretRef": {"name": "llm-key"}}}),
        1,
        "uid-1",
    );
    w.sync(&inputs(vec![Object::Backend(b)]), now())
        .await
        .unwrap();
    drop(w);
    let seen = server.await.unwrap();
    assert_eq!(requests(&seen)[0], ("PATCH", STATUS_PATH));
    assert_eq!(
        conditions(&seen[0].body)[1],
        c("ResolvedRefs", "False", "SecretNotFound")
    );
    assert_eq!(
        seen[0].body["status"]["conditions"][1]["message"],
        "spec.credentials.secretRef.name: Secret \"llm-key\" not found"
    );
    let warning = seen
        .iter()
        .find(|s| s.body["reason"] == "SecretNotFound")
        .unwrap();
    assert_eq!(warning.body["type"], "Warning");
}

#[tokio::test]
async fn invalid_spec_is_written_as_accepted_false() {
    let (client, server) = fake_api();
    let mut w = writer(client);
    let b = backend(json!({"provider": "OpenAICompatible"}), 1, "uid-1");
    w.sync(&inputs(vec![Object::Backend(b)]), now())
        .await
        .unwrap();
    drop(w);
    let seen = server.await.unwrap();
    assert_eq!(
        conditions(&seen[0].body)[0],
        c("Accepted", "False", "Invalid")
    );
    assert_eq!(
        seen[0].body["status"]["conditions"][0]["message"],
        "spec.endpoint: required for provider OpenAICompatible; it is not served"
    );
}

#[tokio::test]
async fn an_object_that_does_not_decode_gets_its_status_from_its_metadata() {
    let (client, server) = fake_api();
    let mut w = writer(client);
    let u = switchboard_api::Undecodable {
        kind: ObjectKind::Backend,
        metadata: serde_json::from_value(
            json!({"name": "llm", "namespace": "ns", "generation": 3, "uid": "uid-9"}),
        )
        .unwrap(),
        error: switchboard_api::Problem::new(
            "AIBackend ns/llm",
            "spec.provider",
            "unknown variant `Quantum`",
        ),
        status: None,
    };
    let report = w
        .sync(&inputs(vec![Object::Undecodable(Box::new(u))]), now())
        .await
        .unwrap();
    assert_eq!(report.written, 1);
    drop(w);
    let seen = server.await.unwrap();
    assert_eq!(requests(&seen)[0], ("PATCH", STATUS_PATH));
    assert_eq!(seen[0].body["status"]["observedGeneration"], 3);
    assert_eq!(
        conditions(&seen[0].body),
        [
            c("Accepted", "False", "Invalid"),
            c("ResolvedRefs", "Unknown", "Invalid"),
            c("Programmed", "False", "Invalid")
        ]
    );
    assert_eq!(
        seen[0].body["status"]["conditions"][0]["message"],
        "the object cannot be decoded: spec.provider: unknown variant `Quantum`; it is not served"
    );
    assert_eq!(seen[1].body["regarding"]["uid"], "uid-9");
}

#[tokio::test]
async fn a_new_leader_compares_with_the_live_status_not_its_stale_copy() {
    let i = inputs(vec![Object::Backend(mock_backend())]);
    let right = compute_all(&i, &VersionHistory::default(), |_| None, &now())
        .into_values()
        .next()
        .unwrap();
    // The inventory (a follower's copy) has the right status, but someone
    // changed it in the cluster since.
    let mut b = mock_backend();
    b.status = Some(right.clone());
    let mut live = right;
    live.conditions[0].reason = "Tampered".into();
    let (client, server) = fake_api();
    let mut w = writer(client);
    w.start_leading(BTreeMap::from([(
        (ObjectKind::Backend, "ns".to_string(), "llm".to_string()),
        (Some("uid-1".to_string()), Some(live)),
    )]));
    let report = w
        .sync(&inputs(vec![Object::Backend(b)]), now())
        .await
        .unwrap();
    assert_eq!(report.written, 1);
    drop(w);
    let seen = server.await.unwrap();
    assert_eq!(conditions(&seen[0].body)[0], c("Accepted", "True", "Valid"));
}

#[test]
fn events_warn_only_about_problems_and_skip_pending() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    let cond = |status: &str, reason: &str| Condition {
        type_: "Programmed".into(),
        status: status.into(),
        reason: reason.into(),
        message: "m".into(),
        observed_generation: Some(1),
        last_transition_time: now(),
    };
    assert_eq!(event_for(&cond("False", "Pending")), None);
    assert!(!event_for(&cond("True", "Programmed")).unwrap().warning);
    assert!(!event_for(&cond("Unknown", "NoDataPlanes")).unwrap().warning);
    assert!(
        event_for(&cond("False", "ServingLastAccepted"))
            .unwrap()
            .warning
    );
    assert!(event_for(&cond("False", "Rejected")).unwrap().warning);
    assert_eq!(
        event_for(&cond("False", "Rejected")).unwrap().note,
        "Programmed is False: m"
    );
}

#[tokio::test]
async fn status_already_in_the_cluster_is_not_written_again() {
    // What a previous leader wrote, with older timestamps.
    let i = inputs(vec![Object::Backend(mock_backend())]);
    let earlier = Time(Timestamp::from_second(1_600_000_000).unwrap());
    let status = compute_all(&i, &VersionHistory::default(), |_| None, &earlier)
        .into_values()
        .next()
        .unwrap();
    let mut b = mock_backend();
    b.status = Some(status);
    let (client, server) = fake_api();
    let mut w = writer(client);
    let report = w
        .sync(&inputs(vec![Object::Backend(b)]), now())
        .await
        .unwrap();
    assert_eq!(
        report,
        SyncReport {
            written: 0,
            unchanged: 1,
            events: 0
        }
    );
    drop(w);
    assert!(server.await.unwrap().is_empty(), "no request at all");
}

/// The run loop: a follower writes nothing; once it leads it writes, and a
/// data plane connecting (a fleet change) updates `Programmed`.
#[tokio::test]
async fn only_the_leader_writes_and_fleet_changes_update_programmed() {
    use crate::fleet::DataPlaneState;

    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let reply = if path.contains("/events") {
                body.clone()
            } else if method == "GET" {
                json!({"apiVersion": API_VERSION, "kind": "List", "metadata": {}, "items": []})
            } else {
                json!({"apiVersion": API_VERSION, "kind": "AIBackend", "metadata": {"name": "x"}, "spec": {"provider": "Mock"}})
            };
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&reply).unwrap(),
            )));
            let _ = seen_tx.send(Seen { method, path, body });
        }
    });
    let mut inv = Inventory::default();
    inv.upsert(Object::Backend(mock_backend()));
    let rendered = Rendered::render(
        Arc::new(inv),
        RenderMode::Kubernetes,
        &ClaimPolicy::allow_all(),
    );
    let version = rendered.snapshot.as_ref().unwrap().version.clone();
    let (_rendered_tx, rendered_rx) = watch::channel(Arc::new(rendered));
    let (fleet_tx, fleet_rx) = watch::channel(FleetView::default());
    let (leader_tx, leader_rx) = watch::channel(false);
    let task = tokio::spawn(run(
        writer(Client::new(service, "default")),
        vec!["ns".to_string()],
        rendered_rx,
        fleet_rx,
        leader_rx,
    ));

    // A follower: a fleet change makes it look again, and it still writes nothing.
    fleet_tx.send_modify(|f| {
        f.dataplanes.insert(
            "dp-1".into(),
            DataPlaneState {
                acked_version: None,
                nack: None,
            },
        );
    });
    tokio::task::yield_now().await;
    assert!(seen.try_recv().is_err(), "a follower never writes");

    // Leading: the live objects are listed, then the status is written (one
    // patch, two events: a transition into Pending records none).
    leader_tx.send(true).unwrap();
    for plural in ["aibackends", "airoutes", "aiteams"] {
        let list = seen.recv().await.unwrap();
        assert_eq!(list.method, "GET");
        assert!(
            list.path.starts_with(&format!(
                "/apis/switchboard.dev/v1alpha1/namespaces/ns/{plural}?"
            )),
            "{}",
            list.path
        );
    }
    let patch = seen.recv().await.unwrap();
    assert_eq!(
        (patch.method.as_str(), patch.path.as_str()),
        ("PATCH", STATUS_PATH)
    );
    assert_eq!(
        conditions(&patch.body)[2],
        c("Programmed", "False", "Pending")
    );
    for reason in ["Valid", "Resolved"] {
        assert_eq!(seen.recv().await.unwrap().body["reason"], reason);
    }

    // The data plane acknowledges the version: Programmed turns True (one patch, one event).
    fleet_tx.send_modify(|f| {
        f.dataplanes.insert(
            "dp-1".into(),
            DataPlaneState {
                acked_version: Some(version.clone()),
                nack: None,
            },
        );
    });
    let patch = seen.recv().await.unwrap();
    assert_eq!(
        conditions(&patch.body)[2],
        c("Programmed", "True", "Programmed")
    );
    assert_eq!(seen.recv().await.unwrap().body["reason"], "Programmed");
    task.abort();
    assert!(seen.try_recv().is_err(), "nothing else was sent");
}

#[tokio::test]
async fn a_repeated_event_is_counted_and_a_new_note_is_a_new_event() {
    use crate::status::events::{EventRecorder, EventSpec};
    let (client, server) = fake_api();
    let mut recorder = EventRecorder::new(
        client,
        Reporter {
            controller: "switchboard-controller".into(),
            instance: Some("replica-a".into()),
        },
    );
    let reference = ObjectReference {
        kind: Some("AIRoute".into()),
        name: Some("main".into()),
        namespace: Some("ns".into()),
        uid: Some("uid-1".into()),
        ..Default::default()
    };
    let spec = |note: &str| EventSpec {
        warning: false,
        reason: "Programmed".into(),
        action: "Programmed".into(),
        note: note.into(),
    };
    let g1 = spec("Programmed is True: 1 of 1 connected data planes run generation 1");
    let g2 = spec("Programmed is True: 1 of 1 connected data planes run generation 2");
    recorder.publish(&g1, &reference).await.unwrap();
    recorder.publish(&g1, &reference).await.unwrap();
    recorder.publish(&g2, &reference).await.unwrap();
    drop(recorder);
    let seen = server.await.unwrap();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["POST", "PATCH", "POST"]);
    assert_eq!(seen[0].body["note"], g1.note);
    assert_eq!(seen[0].body["reportingInstance"], "replica-a");
    assert_eq!(seen[1].body["series"]["count"], 2);
    assert!(
        seen[1].body.get("note").is_none(),
        "a repeat keeps its note"
    );
    assert_eq!(seen[2].body["note"], g2.note, "never the stale note");
}
