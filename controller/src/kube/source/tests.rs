//! The source against a fake API server: lists and watches are answered
//! from fixtures, watch responses are held open until a test sends an event.

use ::kube::client::Body;
use http::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tower_test::mock::SendResponse;

use super::*;

type Watch = (String, SendResponse<Response<Body>>);

fn backend() -> Value {
    json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
           "metadata": {"name": "llm", "namespace": "ns", "generation": 1, "uid": "b1", "resourceVersion": "10"},
           "spec": {"provider": "Anthropic", "credentials": {"secretRef": {"name": "llm-key"}}}})
}

fn route(generation: i64, status: Option<Value>) -> Value {
    let mut r = json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
           "metadata": {"name": "main", "namespace": "ns", "generation": generation, "uid": "r1",
                        "resourceVersion": format!("{}", 10 + generation)},
           "spec": {"pathPrefix": "/", "rules": [{"backends": [{"name": "llm"}]}]}});
    if let Some(s) = status {
        r["status"] = s;
    }
    r
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "20"}, "items": items})
}

/// Starts the fake API server; watch requests are handed to the test.
fn fake_api() -> (
    Client,
    UnboundedReceiver<Watch>,
    Arc<std::sync::Mutex<Vec<String>>>,
) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (watches, rx) = tokio::sync::mpsc::unbounded_channel();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let uri = request.uri().to_string();
            log.lock().unwrap().push(uri.clone());
            if uri.contains("watch=true") {
                let _ = watches.send((uri, send));
                continue;
            }
            let body = if uri.contains("/aibackends") {
                list("AIBackendList", vec![backend()])
            } else if uri.contains("/airoutes") {
                list("AIRouteList", vec![route(1, None)])
            } else {
                list(
                    "SecretList",
                    vec![json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "llm-key", "namespace": "ns", "resourceVersion": "5"},
                    "data": {"apiKey": "c2stdGVzdA=="}})],
                )
            };
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&body).unwrap(),
            )));
        }
    });
    (Client::new(service, "default"), rx, seen)
}

/// The watch requests held open so far.
struct Watches {
    incoming: UnboundedReceiver<Watch>,
    open: Vec<Watch>,
}

impl Watches {
    /// Answers the open watch on `resource` (waiting for it) with one event;
    /// the watcher then watches again from the event's resourceVersion.
    async fn send_event(&mut self, resource: &str, event: Value) {
        let (_, send) = loop {
            if let Some(i) = self.open.iter().position(|(uri, _)| uri.contains(resource)) {
                break self.open.swap_remove(i);
            }
            self.open.push(self.incoming.recv().await.unwrap());
        };
        let mut line = serde_json::to_vec(&event).unwrap();
        line.push(b'\n');
        send.send_response(Response::new(Body::from(line)));
    }
}

#[tokio::test(start_paused = true)]
async fn pushes_the_complete_inventory_then_changes_but_not_status_only_updates() {
    let (client, incoming, seen) = fake_api();
    let mut watches = Watches {
        incoming,
        open: Vec::new(),
    };
    let (tx, mut rx) = watch::channel(Arc::new(Inventory::default()));
    let source = tokio::spawn(run(client, vec![], tx));

    rx.changed().await.unwrap();
    let inv = rx.borrow_and_update().clone();
    assert!(inv.backend("ns", "llm").is_some() && inv.route("ns", "main").is_some());
    assert_eq!(
        inv.secret("ns", "llm-key").unwrap()["apiKey"],
        b"sk-test",
        "the referenced Secret came with the first push"
    );
    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter()
                .any(|u| u.starts_with("/apis/switchboard.dev/v1alpha1/aibackends?")),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|u| u.starts_with("/api/v1/namespaces/ns/secrets?")
                    && u.contains("fieldSelector=metadata.name%3Dllm-key")),
            "{seen:?}"
        );
        assert!(
            !seen.iter().any(|u| u.starts_with("/api/v1/secrets")),
            "never lists every Secret"
        );
    }

    // Our own status write comes back as a watch event: not a change.
    let status = json!({"observedGeneration": 1});
    watches
        .send_event(
            "/airoutes",
            json!({"type": "MODIFIED", "object": route(1, Some(status))}),
        )
        .await;
    let pushed = tokio::time::timeout(Duration::from_secs(60), rx.changed()).await;
    assert!(pushed.is_err(), "a status-only update is not pushed");

    // A spec change (new generation) is.
    watches
        .send_event(
            "/airoutes",
            json!({"type": "MODIFIED", "object": route(2, None)}),
        )
        .await;
    rx.changed().await.unwrap();
    let inv = rx.borrow_and_update().clone();
    assert_eq!(
        inv.route("ns", "main").unwrap().metadata.generation,
        Some(2)
    );

    // A deletion is too, and the Secret is no longer watched nor kept.
    watches
        .send_event(
            "/aibackends",
            json!({"type": "DELETED", "object": backend()}),
        )
        .await;
    rx.changed().await.unwrap();
    let inv = rx.borrow_and_update().clone();
    assert!(inv.backend("ns", "llm").is_none());
    assert!(inv.secret("ns", "llm-key").is_none());
    source.abort();
}

#[tokio::test(start_paused = true)]
async fn configured_namespaces_are_watched_one_by_one() {
    let (client, _watches, seen) = fake_api();
    let (tx, mut rx) = watch::channel(Arc::new(Inventory::default()));
    let source = tokio::spawn(run(client, vec!["ns".into(), "other".into()], tx));
    rx.changed().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    for ns in ["ns", "other"] {
        for kind in ["aibackends", "airoutes"] {
            let prefix = format!("/apis/switchboard.dev/v1alpha1/namespaces/{ns}/{kind}?");
            assert!(
                seen.iter().any(|u| u.starts_with(&prefix)),
                "{prefix} in {seen:?}"
            );
        }
    }
    assert!(
        !seen
            .iter()
            .any(|u| u.starts_with("/apis/switchboard.dev/v1alpha1/aibackends")),
        "no cluster-wide watch"
    );
    source.abort();
}
