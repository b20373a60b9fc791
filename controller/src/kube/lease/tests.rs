use super::*;

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

fn cfg(identity: &str) -> LeaseConfig {
    LeaseConfig::new("switchboard-system", "switchboard-controller", identity)
}

fn held(holder: &str, renewed: i64) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(15),
        acquire_time: Some(MicroTime(t(0))),
        renew_time: Some(MicroTime(t(renewed))),
        lease_transitions: Some(3),
        ..Default::default()
    }
}

#[test]
fn no_lease_or_no_holder_is_acquired() {
    assert_eq!(decide(None, "a", t(0)), Decision::Acquire);
    let free = LeaseSpec {
        holder_identity: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(decide(Some(&free), "a", t(0)), Decision::Acquire);
    let next = next_spec(&Decision::Acquire, None, &cfg("a"), t(5)).unwrap();
    assert_eq!(next.holder_identity.as_deref(), Some("a"));
    assert_eq!(next.lease_duration_seconds, Some(15));
    assert_eq!(next.acquire_time, Some(MicroTime(t(5))));
    assert_eq!(
        next.lease_transitions,
        Some(0),
        "first holder is no transition"
    );
}

#[test]
fn own_lease_is_renewed_keeping_acquire_time() {
    let spec = held("a", 10);
    assert_eq!(decide(Some(&spec), "a", t(12)), Decision::Renew);
    let next = next_spec(&Decision::Renew, Some(&spec), &cfg("a"), t(12)).unwrap();
    assert_eq!(next.renew_time, Some(MicroTime(t(12))));
    assert_eq!(next.acquire_time, Some(MicroTime(t(0))));
    assert_eq!(next.lease_transitions, Some(3));
}

#[test]
fn valid_lease_of_another_is_waited_on_until_it_expires() {
    let spec = held("b", 10);
    assert_eq!(
        decide(Some(&spec), "a", t(24)),
        Decision::Wait {
            holder: "b".into(),
            until: t(25)
        }
    );
    assert_eq!(
        next_spec(
            &decide(Some(&spec), "a", t(24)),
            Some(&spec),
            &cfg("a"),
            t(24)
        ),
        None
    );
    // Expired at exactly renewTime + leaseDurationSeconds.
    assert_eq!(decide(Some(&spec), "a", t(25)), Decision::Acquire);
    let next = next_spec(&Decision::Acquire, Some(&spec), &cfg("a"), t(25)).unwrap();
    assert_eq!(next.holder_identity.as_deref(), Some("a"));
    assert_eq!(
        next.lease_transitions,
        Some(4),
        "taking over counts a transition"
    );
}

#[test]
fn a_holder_that_cannot_renew_steps_down_before_the_lease_expires() {
    let c = cfg("a");
    assert!(!still_leader(None, &c, t(0)));
    assert!(still_leader(Some(t(0)), &c, t(9)));
    assert!(
        !still_leader(Some(t(0)), &c, t(10)),
        "renew deadline 10s < lease duration 15s"
    );
}

#[test]
fn only_the_holder_releases_and_a_released_lease_is_free() {
    let spec = held("a", 10);
    assert_eq!(released_spec(Some(&spec), "b"), None);
    assert_eq!(released_spec(None, "a"), None);
    let released = released_spec(Some(&spec), "a").unwrap();
    assert_eq!(released.holder_identity, None);
    assert_eq!(released.lease_transitions, Some(3));
    assert_eq!(decide(Some(&released), "b", t(11)), Decision::Acquire);
    let taken = next_spec(&Decision::Acquire, Some(&released), &cfg("b"), t(11)).unwrap();
    assert_eq!(
        taken.lease_transitions,
        Some(4),
        "taking over a released Lease is a transition"
    );
}

mod api {
    use ::kube::client::Body;
    use http::{Request, Response, StatusCode};
    use serde_json::json;

    use super::*;

    /// A fake API server answering each request with the next of `replies`
    /// and returning the (method, path) it saw.
    fn fake(
        replies: Vec<(StatusCode, serde_json::Value)>,
    ) -> (Client, tokio::task::JoinHandle<Vec<(String, String)>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut replies = replies.into_iter();
            while let Some((req, send)) = handle.next_request().await {
                seen.push((req.method().to_string(), req.uri().path().to_string()));
                let (status, body) = replies.next().unwrap();
                let body = Body::from(serde_json::to_vec(&body).unwrap());
                send.send_response(Response::builder().status(status).body(body).unwrap());
            }
            seen
        });
        (Client::new(service, "default"), server)
    }

    fn status(code: u16, reason: &str) -> serde_json::Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason})
    }

    fn lease(holder: &str) -> serde_json::Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "switchboard-controller", "namespace": "switchboard-system", "resourceVersion": "7"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": "2023-11-14T22:13:20.000000Z"}})
    }

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/switchboard-system/leases";

    #[tokio::test]
    async fn missing_lease_is_created() {
        let (client, server) = fake(vec![
            (StatusCode::NOT_FOUND, status(404, "NotFound")),
            (StatusCode::CREATED, lease("a")),
        ]);
        let api = Api::namespaced(client, "switchboard-system");
        assert!(try_acquire_or_renew(&api, &cfg("a"), t(0)).await.unwrap());
        drop(api);
        let seen = server.await.unwrap();
        assert_eq!(
            seen,
            [
                ("GET".to_string(), format!("{PATH}/switchboard-controller")),
                ("POST".to_string(), PATH.to_string())
            ]
        );
    }

    #[tokio::test]
    async fn losing_a_race_is_not_leading_and_a_valid_lease_of_another_is_not_touched() {
        // Expired lease of `b`: we try to take it, another replica wrote first.
        let (client, server) = fake(vec![
            (StatusCode::OK, lease("b")),
            (StatusCode::CONFLICT, status(409, "Conflict")),
        ]);
        let api = Api::namespaced(client, "switchboard-system");
        assert!(!try_acquire_or_renew(&api, &cfg("a"), t(100)).await.unwrap());
        drop(api);
        assert_eq!(server.await.unwrap()[1].0, "PUT");
        // Valid lease of `b` (renewed at t(0), valid 15s): a read and nothing else.
        let (client, server) = fake(vec![(StatusCode::OK, lease("b"))]);
        let api = Api::namespaced(client, "switchboard-system");
        assert!(!try_acquire_or_renew(&api, &cfg("a"), t(5)).await.unwrap());
        drop(api);
        assert_eq!(server.await.unwrap().len(), 1);
    }
}
