//! The credential providers against local mock STS and container
//! credentials endpoints (real HTTP on loopback, the production client).

use std::convert::Infallible;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::*;
use crate::aws::fetch::HttpFetch;
use crate::aws::time::amz_date;

/// What the mock saw and how it answers.
#[derive(Default)]
struct Mock {
    requests: AtomicUsize,
    /// Bodies (STS) or Authorization headers (container) received.
    seen: StdMutex<Vec<String>>,
    /// Expiration of the credentials handed out, Unix seconds.
    expires: AtomicU64,
    /// Answer with an error instead.
    fail: std::sync::atomic::AtomicBool,
    /// Hold answers until notified.
    hold: std::sync::atomic::AtomicBool,
    release: Notify,
    received: Notify,
}

fn iso(secs: u64) -> String {
    let (_, stamp) = amz_date(UNIX_EPOCH + Duration::from_secs(secs));
    // 20261206T213000Z -> 2026-12-06T21:30:00Z
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    )
}

async fn answer(mock: Arc<Mock>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let n = mock.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let is_sts = req.method() == http::Method::POST;
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let seen = if is_sts {
        String::from_utf8(body.to_vec()).unwrap()
    } else {
        auth.unwrap_or_default()
    };
    mock.seen.lock().unwrap().push(seen);
    mock.received.notify_one();
    if mock.hold.load(Ordering::SeqCst) {
        mock.release.notified().await;
    }
    let expires = iso(mock.expires.load(Ordering::SeqCst));
    let (status, text) = match (is_sts, mock.fail.load(Ordering::SeqCst)) {
        (true, false) => (
            200,
            format!(
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                 <SessionToken>token-{n}</SessionToken><SecretAccessKey>secret-{n}</SecretAccessKey>\
                 <Expiration>{expires}</Expiration><AccessKeyId>ASIA{n}</AccessKeyId>\
                 </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            ),
        ),
        (true, true) => (
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>\
             <Message>expired</Message></Error></ErrorResponse>"
                .to_string(),
        ),
        (false, false) => (
            200,
            format!(
                r#"{{"AccessKeyId":"ASIA{n}","SecretAccessKey":"secret-{n}","Token":"token-{n}","Expiration":"{expires}"}}"#
            ),
        ),
        (false, true) => (
            500,
            r#"{"Code":"InternalError","Message":"agent down"}"#.to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(text)))
        .unwrap()
}

async fn serve(mock: Arc<Mock>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mock = mock.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let mock = mock.clone();
                    async move { Ok::<_, Infallible>(answer(mock, req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// A clock the test moves.
fn clock(start: u64) -> (Arc<AtomicU64>, Clock) {
    let now = Arc::new(AtomicU64::new(start));
    let n = now.clone();
    (
        now,
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(n.load(Ordering::SeqCst))),
    )
}

fn fetch() -> Arc<dyn Fetch> {
    Arc::new(HttpFetch::new(
        Arc::new(crate::aws::test_tls()),
        Duration::from_secs(5),
    ))
}

const T0: u64 = 1_765_000_000;

struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "switchboard-aws-{}-{name}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(&path, content).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn web_identity(base: &str, token: &TempFile) -> CredentialSource {
    let env = |name: &str| match name {
        "AWS_WEB_IDENTITY_TOKEN_FILE" => Some(token.0.display().to_string()),
        "AWS_ROLE_ARN" => Some("arn:aws:iam::123456789012:role/bedrock".into()),
        "AWS_ENDPOINT_URL_STS" => Some(base.to_string()),
        _ => None,
    };
    CredentialSource::web_identity_from_env(&env, "us-east-1", None, None).unwrap()
}

#[tokio::test]
async fn irsa_caches_then_refreshes_before_expiry_with_the_rotated_token() {
    let mock = Arc::new(Mock::default());
    mock.expires.store(T0 + 3600, Ordering::SeqCst);
    let base = serve(mock.clone()).await;
    let token = TempFile::new("irsa", "jwt-one\n");
    let (now, clock) = clock(T0);
    let p = CredentialProvider::with_clock(web_identity(&base, &token), fetch(), clock);

    let c = p.credentials().await.unwrap();
    assert_eq!(c.access_key_id, "ASIA1");
    assert_eq!(c.session_token.as_ref().unwrap().expose(), "token-1");
    let body = mock.seen.lock().unwrap()[0].clone();
    assert!(body.contains("Action=AssumeRoleWithWebIdentity"), "{body}");
    assert!(
        body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbedrock"),
        "{body}"
    );
    assert!(body.contains("RoleSessionName=switchboard"), "{body}");
    assert!(
        body.contains("WebIdentityToken=jwt-one&") || body.ends_with("WebIdentityToken=jwt-one"),
        "{body}"
    );

    // Still fresh: served from the cache.
    now.store(T0 + 3600 - 301, Ordering::SeqCst);
    assert_eq!(p.credentials().await.unwrap().access_key_id, "ASIA1");
    assert_eq!(mock.requests.load(Ordering::SeqCst), 1);

    // Within five minutes of expiry: refreshed, with the rotated token.
    std::fs::write(&token.0, "jwt-two").unwrap();
    mock.expires.store(T0 + 7200, Ordering::SeqCst);
    now.store(T0 + 3600 - 299, Ordering::SeqCst);
    assert_eq!(p.credentials().await.unwrap().access_key_id, "ASIA2");
    assert!(mock.seen.lock().unwrap()[1].ends_with("WebIdentityToken=jwt-two"));
}

#[tokio::test]
async fn a_failing_refresh_keeps_the_old_credentials_until_they_expire() {
    let mock = Arc::new(Mock::default());
    mock.expires.store(T0 + 1000, Ordering::SeqCst);
    let base = serve(mock.clone()).await;
    let token = TempFile::new("fail", "jwt");
    let (now, clock) = clock(T0);
    let p = CredentialProvider::with_clock(web_identity(&base, &token), fetch(), clock);
    assert_eq!(p.credentials().await.unwrap().access_key_id, "ASIA1");

    mock.fail.store(true, Ordering::SeqCst);
    now.store(T0 + 1000 - 200, Ordering::SeqCst);
    assert_eq!(
        p.credentials().await.unwrap().access_key_id,
        "ASIA1",
        "the refresh failed; the old credentials are still valid"
    );
    assert_eq!(mock.requests.load(Ordering::SeqCst), 2);
    // Within the retry pause: no new fetch.
    assert_eq!(p.credentials().await.unwrap().access_key_id, "ASIA1");
    assert_eq!(mock.requests.load(Ordering::SeqCst), 2);

    // Too close to expiry, and STS still refuses: an error naming the code.
    now.store(T0 + 1000 - 10, Ordering::SeqCst);
    let e = p.credentials().await.unwrap_err();
    assert!(e.to_string().contains("InvalidIdentityToken"), "{e}");
    assert!(!e.to_string().contains("jwt"), "no token in errors: {e}");
    assert_eq!(mock.requests.load(Ordering::SeqCst), 3);

    // STS recovers after the pause.
    mock.fail.store(false, Ordering::SeqCst);
    mock.expires.store(T0 + 5000, Ordering::SeqCst);
    now.store(
        T0 + 1000 - 10 + RETRY_AFTER_FAILURE.as_secs(),
        Ordering::SeqCst,
    );
    assert_eq!(p.credentials().await.unwrap().access_key_id, "ASIA4");
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let mock = Arc::new(Mock::default());
    mock.expires.store(T0 + 3600, Ordering::SeqCst);
    mock.hold.store(true, Ordering::SeqCst);
    let base = serve(mock.clone()).await;
    let token = TempFile::new("shared", "jwt");
    let (_, clock) = clock(T0);
    let p = CredentialProvider::with_clock(web_identity(&base, &token), fetch(), clock);
    let calls = futures_util::future::join_all((0..10).map(|_| {
        let p = p.clone();
        async move { p.credentials().await }
    }));
    let task = tokio::spawn(calls);
    // The request arrives only after join_all polled every caller once.
    mock.received.notified().await;
    mock.release.notify_one();
    let results = task.await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().access_key_id == "ASIA1")
    );
    assert_eq!(mock.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn pod_identity_sends_the_token_file_and_reads_json() {
    let mock = Arc::new(Mock::default());
    mock.expires.store(T0 + 3600, Ordering::SeqCst);
    let base = serve(mock.clone()).await;
    let token = TempFile::new("pod", "pod-identity-token\n");
    let uri = format!("{base}/v1/credentials");
    let path = token.0.display().to_string();
    let env = |name: &str| match name {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI" => Some(uri.clone()),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" => Some(path.clone()),
        _ => None,
    };
    let source = CredentialSource::container_from_env(&env).unwrap();
    let (now, clock) = clock(T0);
    let p = CredentialProvider::with_clock(source, fetch(), clock);
    let c = p.credentials().await.unwrap();
    assert_eq!(c.access_key_id, "ASIA1");
    assert_eq!(c.secret_access_key.expose(), "secret-1");
    assert_eq!(mock.seen.lock().unwrap()[0], "pod-identity-token");

    std::fs::write(&token.0, "rotated").unwrap();
    now.store(T0 + 3600 - 60, Ordering::SeqCst);
    assert_eq!(p.credentials().await.unwrap().access_key_id, "ASIA2");
    assert_eq!(mock.seen.lock().unwrap()[1], "rotated");

    mock.fail.store(true, Ordering::SeqCst);
    now.store(T0 + 3600 * 2, Ordering::SeqCst);
    let e = p.credentials().await.unwrap_err();
    assert!(
        e.reason.contains("500") && e.reason.contains("agent down"),
        "{e}"
    );
}

#[test]
fn configuration_errors_say_what_is_missing() {
    let none = |_: &str| None;
    let e = CredentialSource::web_identity_from_env(&none, "us-east-1", None, None).unwrap_err();
    assert!(e.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{e}");
    let e = CredentialSource::container_from_env(&none).unwrap_err();
    assert!(e.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"), "{e}");
    let remote = |n: &str| {
        (n == "AWS_CONTAINER_CREDENTIALS_FULL_URI").then(|| "http://10.1.2.3/creds".to_string())
    };
    assert!(
        CredentialSource::container_from_env(&remote)
            .unwrap_err()
            .contains("plain http")
    );
    let ecs = |n: &str| {
        (n == "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").then(|| "/v2/credentials/abc".to_string())
    };
    match CredentialSource::container_from_env(&ecs).unwrap() {
        CredentialSource::Container { uri, token } => {
            assert_eq!(uri.to_string(), "http://169.254.170.2/v2/credentials/abc");
            assert_eq!(token, ContainerToken::None);
        }
        other => panic!("{other:?}"),
    }
    let keys = |n: &str| match n {
        "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("s".to_string()),
        _ => None,
    };
    assert!(matches!(
        CredentialSource::static_from_env(&keys).unwrap(),
        CredentialSource::Static(c) if c.session_token.is_none()
    ));
    let role = |n: &str| match n {
        "AWS_WEB_IDENTITY_TOKEN_FILE" => Some("/var/run/token".to_string()),
        "AWS_ROLE_ARN" => Some("arn:env".to_string()),
        _ => None,
    };
    match CredentialSource::web_identity_from_env(
        &role,
        "eu-west-1",
        Some("arn:override"),
        Some("gw"),
    )
    .unwrap()
    {
        CredentialSource::WebIdentity {
            role_arn,
            session_name,
            sts_endpoint,
            ..
        } => {
            assert_eq!(role_arn, "arn:override");
            assert_eq!(session_name, "gw");
            assert_eq!(
                sts_endpoint.to_string(),
                "https://sts.eu-west-1.amazonaws.com/"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn static_credentials_never_fetch() {
    struct NoFetch;
    impl Fetch for NoFetch {
        fn fetch(
            &self,
            _: Request<Bytes>,
        ) -> BoxFuture<'_, Result<(http::StatusCode, Bytes), String>> {
            panic!("static credentials fetched")
        }
    }
    let p = CredentialProvider::new(
        CredentialSource::Static(Credentials::new("AKID", "secret", None)),
        Arc::new(NoFetch),
    );
    assert_eq!(p.credentials().await.unwrap().access_key_id, "AKID");
    assert_eq!(
        format!("{p:?}"),
        "CredentialProvider { source: \"static\", .. }"
    );
}
