use std::collections::BTreeMap;

use ::kube::Client;
use ::kube::client::Body;
use http::{Request, Response, StatusCode};
use k8s_openapi::api::authentication::v1::UserInfo;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::review::{ALLOWED_TTL, DENIED_TTL, ReviewCache, cache_ttl};
use super::*;

const AUDIENCE: &str = "switchboard-controller";

fn policy() -> ReviewPolicy {
    ReviewPolicy {
        audience: AUDIENCE.into(),
        allowed: ["gw/switchboard-dataplane".parse().unwrap()].into(),
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// What the API server answers for a valid token of `user`, valid for `audiences`, bound to
/// `pod` if given.
fn accepted(user: &str, audiences: &[&str], pod: Option<&str>) -> TokenReviewStatus {
    let extra = pod.map(|p| {
        BTreeMap::from([
            (POD_NAME_EXTRA.to_string(), vec![p.to_string()]),
            (
                "authentication.kubernetes.io/pod-uid".to_string(),
                vec!["b4f3".to_string()],
            ),
        ])
    });
    TokenReviewStatus {
        authenticated: Some(true),
        audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
        user: Some(UserInfo {
            username: Some(user.into()),
            extra,
            ..Default::default()
        }),
        error: None,
    }
}

const AUTHORISED: &str = "system:serviceaccount:gw:switchboard-dataplane";

#[test]
fn an_authorised_service_account_is_allowed_and_bound_to_its_pod() {
    let exp = now() + Duration::from_secs(600);
    let id = decide(
        &accepted(AUTHORISED, &[AUDIENCE], Some("gw-0")),
        &policy(),
        Some(exp),
        now(),
    )
    .unwrap();
    assert_eq!(id.subject, AUTHORISED);
    assert_eq!(id.pod.as_deref(), Some("gw-0"));
    assert_eq!(id.expires_at, Some(exp));
    assert!(id.check_node_id("gw-0").is_ok());
    let denied = id.check_node_id("someone-else").unwrap_err();
    assert_eq!(denied.kind, DenyKind::PermissionDenied);
    assert!(denied.reason.contains("gw-0"), "{}", denied.reason);

    // Not bound to a pod: any node id; no expiry in the token: the session is capped.
    let id = decide(
        &accepted(AUTHORISED, &[AUDIENCE], None),
        &policy(),
        None,
        now(),
    )
    .unwrap();
    assert!(id.check_node_id("anything").is_ok());
    assert_eq!(id.expires_at, Some(now() + UNEXPIRING_TOKEN_SESSION));
}

#[test]
fn tokens_the_api_server_refuses_are_unauthenticated() {
    let refused = TokenReviewStatus {
        authenticated: Some(false),
        error: Some("[invalid bearer token, token audiences [\"other\"] is invalid for the target audiences [\"switchboard-controller\"]]".into()),
        ..Default::default()
    };
    let denied = decide(&refused, &policy(), None, now()).unwrap_err();
    assert_eq!(denied.kind, DenyKind::Unauthenticated);
    assert!(denied.reason.contains("invalid bearer token"));
    assert_eq!(denied.status().code(), tonic::Code::Unauthenticated);
    // No `authenticated` at all.
    let empty = TokenReviewStatus::default();
    assert_eq!(
        decide(&empty, &policy(), None, now()).unwrap_err().kind,
        DenyKind::Unauthenticated
    );
}

#[test]
fn a_token_for_another_audience_is_unauthenticated() {
    for audiences in [&["https://kubernetes.default.svc"][..], &[]] {
        let denied = decide(
            &accepted(AUTHORISED, audiences, None),
            &policy(),
            None,
            now(),
        )
        .unwrap_err();
        assert_eq!(denied.kind, DenyKind::Unauthenticated, "{audiences:?}");
        assert!(denied.reason.contains("audience"), "{}", denied.reason);
    }
    let mut no_audiences = accepted(AUTHORISED, &[], None);
    no_audiences.audiences = None;
    assert_eq!(
        decide(&no_audiences, &policy(), None, now())
            .unwrap_err()
            .kind,
        DenyKind::Unauthenticated
    );
}

#[test]
fn an_expired_token_is_unauthenticated() {
    let denied = decide(
        &accepted(AUTHORISED, &[AUDIENCE], None),
        &policy(),
        Some(now()),
        now(),
    )
    .unwrap_err();
    assert_eq!(denied.kind, DenyKind::Unauthenticated);
}

#[test]
fn other_users_are_denied_permission() {
    for user in [
        "system:serviceaccount:gw:default",
        "system:serviceaccount:other:switchboard-dataplane",
        "system:serviceaccount:gw:switchboard-dataplane-2",
        "admin",
        "",
    ] {
        let denied =
            decide(&accepted(user, &[AUDIENCE], None), &policy(), None, now()).unwrap_err();
        assert_eq!(denied.kind, DenyKind::PermissionDenied, "{user}");
        assert_eq!(denied.status().code(), tonic::Code::PermissionDenied);
    }
}

#[test]
fn service_account_flags() {
    let sa: ServiceAccountRef = "switchboard/switchboard-dataplane".parse().unwrap();
    assert_eq!(
        sa.username(),
        "system:serviceaccount:switchboard:switchboard-dataplane"
    );
    assert_eq!(sa.to_string(), "switchboard/switchboard-dataplane");
    for bad in ["", "ns", "ns/", "/name", "a/b/c", "NS/name", "ns/na me"] {
        assert!(bad.parse::<ServiceAccountRef>().is_err(), "{bad:?}");
    }
}

fn metadata(authorization: Option<&str>) -> MetadataMap {
    let mut m = MetadataMap::new();
    if let Some(v) = authorization {
        m.insert("authorization", v.parse().unwrap());
    }
    m
}

#[test]
fn bearer_tokens_are_read_from_the_authorization_metadata() {
    assert_eq!(
        bearer_token(&metadata(Some("Bearer abc.def"))).unwrap(),
        "abc.def"
    );
    assert_eq!(
        bearer_token(&metadata(Some("bearer  abc "))).unwrap(),
        "abc"
    );
    for bad in [
        None,
        Some("Basic abc"),
        Some("Bearer"),
        Some("Bearer   "),
        Some("abc"),
    ] {
        let denied = bearer_token(&metadata(bad)).unwrap_err();
        assert_eq!(denied.kind, DenyKind::Unauthenticated, "{bad:?}");
    }
}

#[test]
fn the_expiry_is_read_from_the_jwt() {
    let b64 = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    let token = format!(
        "{}.{}.sig",
        b64(json!({"alg": "RS256"})),
        b64(json!({"exp": 1_800_000_600u64, "sub": "x"}))
    );
    assert_eq!(
        token_expiry(&token),
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_600))
    );
    assert_eq!(token_expiry("opaque-token"), None);
    assert_eq!(token_expiry("a.!!!.c"), None);
}

fn identity() -> Identity {
    Identity {
        subject: AUTHORISED.into(),
        pod: None,
        expires_at: Some(now() + Duration::from_secs(3600)),
    }
}

#[test]
fn the_cache_is_bounded_and_forgets() {
    let t0 = Instant::now();
    let mut cache = ReviewCache::new(2);
    cache.insert([1; 32], Ok(identity()), t0 + Duration::from_secs(10), t0);
    cache.insert([2; 32], Ok(identity()), t0 + Duration::from_secs(20), t0);
    cache.insert([3; 32], Ok(identity()), t0 + Duration::from_secs(30), t0);
    assert_eq!(cache.len(), 2, "bounded");
    assert!(
        cache.get(&[1; 32], t0).is_none(),
        "the one closest to expiry went"
    );
    assert!(cache.get(&[3; 32], t0).is_some());
    assert!(
        cache.get(&[2; 32], t0 + Duration::from_secs(20)).is_none(),
        "expired"
    );
    assert_eq!(cache.len(), 1);

    // Acceptances live at most ALLOWED_TTL and never past the token; refusals DENIED_TTL.
    assert_eq!(cache_ttl(&Ok(identity()), now()), ALLOWED_TTL);
    let short = Identity {
        expires_at: Some(now() + Duration::from_secs(3)),
        ..identity()
    };
    assert_eq!(cache_ttl(&Ok(short), now()), Duration::from_secs(3));
    let denied = Denied::new(DenyKind::Unauthenticated, "x");
    assert_eq!(cache_ttl(&Err(denied), now()), DENIED_TTL);
}

/// A client whose API server answers TokenReviews with `reply(request body)` and counts them.
fn fake_api(
    reply: impl Fn(&Value) -> (StatusCode, Value) + Send + 'static,
) -> (Client, tokio::task::JoinHandle<Vec<(String, Value)>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let path = format!("{} {}", request.method(), request.uri().path());
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            let (status, answer) = reply(&body);
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
            seen.push((path, body));
        }
        seen
    });
    (Client::new(service, "default"), server)
}

fn review_answer(request: &Value, status: Value) -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
           "metadata": {}, "spec": request["spec"].clone(), "status": status})
}

#[tokio::test]
async fn token_reviews_ask_for_the_audience_and_are_cached() {
    let (client, server) = fake_api(|req| {
        let status = if req["spec"]["token"] == "good" {
            json!({"authenticated": true, "audiences": [AUDIENCE],
                   "user": {"username": AUTHORISED,
                            "extra": {POD_NAME_EXTRA: ["gw-0"]}}})
        } else {
            json!({"authenticated": false, "error": "invalid bearer token"})
        };
        (StatusCode::CREATED, review_answer(req, status))
    });
    let reviewer = TokenReviewer::new(client, policy());
    let auth = Authenticator::Kubernetes(Box::new(reviewer));

    let id = auth
        .authenticate(&metadata(Some("Bearer good")))
        .await
        .unwrap();
    assert_eq!(id.pod.as_deref(), Some("gw-0"));
    assert!(
        auth.authenticate(&metadata(Some("Bearer good")))
            .await
            .is_ok()
    );
    let denied = auth
        .authenticate(&metadata(Some("Bearer bad")))
        .await
        .unwrap_err();
    assert_eq!(denied.kind, DenyKind::Unauthenticated);
    assert!(!denied.reason.contains("bad"), "{}", denied.reason);
    assert_eq!(
        auth.authenticate(&metadata(None)).await.unwrap_err().kind,
        DenyKind::Unauthenticated,
        "no token: refused without asking"
    );

    drop(auth);
    let seen = server.await.unwrap();
    assert_eq!(
        seen.len(),
        2,
        "the second `good` was answered from the cache"
    );
    assert_eq!(
        seen[0].0,
        "POST /apis/authentication.k8s.io/v1/tokenreviews"
    );
    assert_eq!(seen[0].1["spec"]["audiences"], json!([AUDIENCE]));
    assert_eq!(seen[0].1["spec"]["token"], "good");
}

#[tokio::test]
async fn an_api_server_error_is_unavailable_and_not_cached() {
    let (client, server) = fake_api(|_| {
        (
            StatusCode::FORBIDDEN,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "message": "tokenreviews.authentication.k8s.io is forbidden", "reason": "Forbidden", "code": 403}),
        )
    });
    let auth = Authenticator::Kubernetes(Box::new(TokenReviewer::new(client, policy())));
    for _ in 0..2 {
        let denied = auth
            .authenticate(&metadata(Some("Bearer good")))
            .await
            .unwrap_err();
        assert_eq!(denied.kind, DenyKind::Unavailable);
        assert_eq!(denied.status().code(), tonic::Code::Unavailable);
    }
    drop(auth);
    assert_eq!(server.await.unwrap().len(), 2, "failures are asked again");
}

#[tokio::test]
async fn a_shared_token_must_match_the_file() {
    let path = std::env::temp_dir().join(format!("sb-shared-token-{}", std::process::id()));
    std::fs::write(&path, "s3cret\n").unwrap();
    let auth = Authenticator::SharedToken(path.clone());
    assert_eq!(
        auth.authenticate(&metadata(Some("Bearer s3cret")))
            .await
            .unwrap()
            .subject,
        "shared token"
    );
    for bad in [None, Some("Bearer s3cre"), Some("Bearer s3cret2")] {
        let denied = auth.authenticate(&metadata(bad)).await.unwrap_err();
        assert_eq!(denied.kind, DenyKind::Unauthenticated, "{bad:?}");
        assert!(!denied.reason.contains("s3cre"));
    }
    // The file is read for every stream: a rotated token takes effect at once.
    std::fs::write(&path, "n3w").unwrap();
    assert!(
        auth.authenticate(&metadata(Some("Bearer n3w")))
            .await
            .is_ok()
    );
    assert!(
        auth.authenticate(&metadata(Some("Bearer s3cret")))
            .await
            .is_err()
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        auth.authenticate(&metadata(Some("Bearer n3w")))
            .await
            .unwrap_err()
            .kind,
        DenyKind::Unavailable
    );
    // Open: no credentials asked.
    assert_eq!(
        Authenticator::Open
            .authenticate(&metadata(None))
            .await
            .unwrap(),
        Identity::anonymous()
    );
}
