//! The gRPC snapshot path end to end, through the real binaries: `switchboard-controller
//! --source dir:PATH` and `switchboard-dataplane --controller URL`. Every wait awaits a
//! condition (a version on `/config`, a metric, a log line), never a fixed sleep.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::config::{ConfigBuilder, rule};
use switchboard_e2e::harness::{temp_dir, write_file_atomic};
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Controller, Gateway, post_json, wait_until};

const WAIT: Duration = Duration::from_secs(20);
const NACK_ENV: &str = "SWITCHBOARD_E2E_NACK_KEY";

fn mock(reply: &str) -> Value {
    json!({"provider": "Mock", "mock": {"reply": reply}})
}

fn open_route(prefix: &str, backend: &str) -> Value {
    json!({"pathPrefix": prefix, "rules": [rule(&["*"], &[backend])]})
}

/// One Mock backend answering `reply` behind an open route on `/`.
fn base(reply: &str) -> ConfigBuilder {
    ConfigBuilder::new()
        .backend("echo", mock(reply))
        .route("main", open_route("/", "echo"))
}

fn write(dir: &Path, file: &str, config: &ConfigBuilder) {
    write_file_atomic(&dir.join(file), &config.to_yaml());
}

/// The mock's reply through `gateway` on `prefix`, or the error status and body.
async fn ask(gateway: &Gateway, prefix: &str) -> Result<String, String> {
    let url = format!("{}{prefix}v1/chat/completions", gateway.base_url());
    let (status, _, body) = post_json(&url, &[], &chat_body("any-model", false)).await;
    if status != 200 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    Ok(
        switchboard_e2e::client::json_body(&body)["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

async fn start_dataplane(controller: &Controller, envs: &[(&str, &str)]) -> Gateway {
    controller.start_dataplane(envs, &[], true).await
}

async fn wait_version(gateway: &Gateway, version: &str, what: &str) {
    wait_until(WAIT, what, || async {
        gateway.config_version().await.as_deref() == Some(version)
    })
    .await;
}

/// Waits until the controller serves a version other than `old` and returns it.
async fn next_controller_version(controller: &Controller, old: &str) -> String {
    wait_until(WAIT, "controller renders the edit", || async {
        controller
            .snapshot_version()
            .await
            .is_some_and(|v| v != old)
    })
    .await;
    controller.snapshot_version().await.unwrap_or_default()
}

#[tokio::test]
async fn an_edit_reaches_both_data_planes() {
    let dir = temp_dir("ctl-edit");
    write(&dir, "config.yaml", &base("v1"));
    let controller = Controller::start(&dir).await;
    let a = start_dataplane(&controller, &[]).await;
    let b = start_dataplane(&controller, &[]).await;
    assert_eq!(ask(&a, "/").await.unwrap(), "v1");
    assert_eq!(ask(&b, "/").await.unwrap(), "v1");
    let (_, body) = a.readyz().await.unwrap();
    assert!(body.contains("source controller"), "{body}");
    wait_until(WAIT, "both data planes ACKed", || async {
        controller
            .metric_sum("switchboard_controller_connected_dataplanes", &[])
            .await
            == 2.0
            && controller
                .metric_sum("switchboard_controller_acks_total", &[])
                .await
                >= 2.0
    })
    .await;

    let v1 = controller.snapshot_version().await.unwrap();
    write(&dir, "config.yaml", &base("v2"));
    let v2 = next_controller_version(&controller, &v1).await;
    wait_version(&a, &v2, "data plane a serves the edit").await;
    wait_version(&b, &v2, "data plane b serves the edit").await;
    assert_eq!(ask(&a, "/").await.unwrap(), "v2");
    assert_eq!(ask(&b, "/").await.unwrap(), "v2");
    assert!(
        controller
            .metric_sum("switchboard_controller_push_latency_seconds_count", &[])
            .await
            >= 4.0
    );
}

#[tokio::test]
async fn an_invalid_edit_keeps_valid_objects_serving_and_reports_problems() {
    let dir = temp_dir("ctl-invalid");
    write(&dir, "config.yaml", &base("v1"));
    let controller = Controller::start(&dir).await;
    let a = start_dataplane(&controller, &[]).await;
    let v1 = controller.snapshot_version().await.unwrap();

    // A valid change next to an object with a missing Secret and a route that needs it.
    let edit = base("v2")
        .backend(
            "broken",
            json!({"provider": "Mock", "credentials": {"secretRef": {"name": "missing", "key": "apiKey"}}}),
        )
        .route("uses-broken", open_route("/broken/", "broken"));
    write(&dir, "config.yaml", &edit);
    // And a file that is not YAML at all.
    write_file_atomic(&dir.join("typo.yaml"), "kind: AIRoute\nspec: [unclosed\n");

    let v2 = next_controller_version(&controller, &v1).await;
    wait_version(&a, &v2, "the valid part of the edit is served").await;
    assert_eq!(ask(&a, "/").await.unwrap(), "v2");
    let problems = |kind: &'static str| {
        let c = &controller;
        async move {
            c.metric_sum("switchboard_controller_render_problems", &[("kind", kind)])
                .await
        }
    };
    wait_until(WAIT, "problems reported", || async {
        problems("AIBackend").await == 1.0
            && problems("AIRoute").await == 1.0
            && problems("source").await == 1.0
    })
    .await;
    assert!(
        controller.readyz().await.contains("3 problems"),
        "{}",
        controller.readyz().await
    );
    let log = controller.log();
    assert!(
        log.contains("Secret \\\"missing\\\" not found")
            || log.contains("Secret \"missing\" not found"),
        "{log}"
    );
    // Neither the broken backend nor its route reached the data plane.
    let (_, _, body) = switchboard_e2e::get(&format!("{}/config", a.admin_url()), &[]).await;
    let config: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = config["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["default/echo"]);

    // Fixing the file clears the problems.
    std::fs::remove_file(dir.join("typo.yaml")).unwrap();
    write(&dir, "config.yaml", &base("v3"));
    wait_until(WAIT, "problems cleared", || async {
        controller
            .metric_sum("switchboard_controller_render_problems", &[])
            .await
            == 0.0
    })
    .await;
    wait_until(WAIT, "fix served", || async {
        ask(&a, "/").await.as_deref() == Ok("v3")
    })
    .await;
}

#[tokio::test]
async fn a_data_plane_that_nacks_keeps_serving_its_last_good_snapshot() {
    let dir = temp_dir("ctl-nack");
    write(&dir, "config.yaml", &base("v1"));
    let controller = Controller::start(&dir).await;
    let has_env = start_dataplane(&controller, &[(NACK_ENV, "key")]).await;
    let lacks_env = start_dataplane(&controller, &[]).await;
    let v1 = controller.snapshot_version().await.unwrap();

    // A backend whose credential comes from the data plane's environment.
    let edit = base("v2")
        .backend("keyed", json!({"provider": "Mock", "credentials": {"env": NACK_ENV}, "mock": {"reply": "keyed"}}))
        .route("keyed", open_route("/keyed/", "keyed"));
    write(&dir, "config.yaml", &edit);
    let v2 = next_controller_version(&controller, &v1).await;
    wait_version(&has_env, &v2, "the data plane with the variable applies").await;
    assert_eq!(ask(&has_env, "/keyed/").await.unwrap(), "keyed");

    wait_until(WAIT, "the other data plane NACKs", || async {
        controller
            .metric_sum("switchboard_controller_nacks_total", &[])
            .await
            >= 1.0
    })
    .await;
    assert_eq!(
        lacks_env.config_version().await.as_deref(),
        Some(v1.as_str()),
        "last good kept"
    );
    assert_eq!(ask(&lacks_env, "/").await.unwrap(), "v1");
    let (status, _) = lacks_env.readyz().await.unwrap();
    assert_eq!(
        status, 200,
        "still ready while serving the last good snapshot"
    );
    // Log lines reach the file from the gateway's log writer thread, shortly after.
    let nack_line = format!("AIBackend/default/keyed: environment variable {NACK_ENV} is not set");
    wait_until(WAIT, "the data plane logs why it refused", || async {
        lacks_env.log().contains(&nack_line)
    })
    .await;
    assert!(controller.log().contains("NACK"), "{}", controller.log());
}

#[tokio::test]
async fn traffic_never_stops_while_the_controller_restarts() {
    let dir = temp_dir("ctl-restart");
    write(&dir, "config.yaml", &base("v1"));
    let mut controller = Controller::start(&dir).await;
    let a = Arc::new(start_dataplane(&controller, &[]).await);
    let b = Arc::new(start_dataplane(&controller, &[]).await);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut loops = Vec::new();
    for gw in [a.clone(), b.clone()] {
        let (stop, sent, failures) = (stop.clone(), sent.clone(), failures.clone());
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = ask(&gw, "/").await {
                    failures.lock().unwrap().push(e);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let served = |n: usize| {
        let sent = sent.clone();
        async move { sent.load(Ordering::Relaxed) >= n }
    };
    wait_until(WAIT, "traffic flows", || served(20)).await;

    controller.kill();
    wait_until(
        WAIT,
        "both data planes notice the controller is gone",
        || async { a.log().contains("reconnecting") && b.log().contains("reconnecting") },
    )
    .await;
    let before = sent.load(Ordering::Relaxed);
    wait_until(WAIT, "traffic flows without the controller", || {
        served(before + 20)
    })
    .await;

    controller.restart().await;
    wait_until(WAIT, "both data planes reconnect", || async {
        controller
            .metric_sum("switchboard_controller_connected_dataplanes", &[])
            .await
            == 2.0
    })
    .await;

    // A graceful stop closes the streams cleanly; traffic goes on.
    assert!(
        controller.terminate(),
        "SIGTERM exits 0: {}",
        controller.log()
    );
    assert!(controller.log().contains("controller shutting down"));
    wait_until(WAIT, "both data planes see the clean close", || async {
        a.log().contains("controller closed the stream")
            && b.log().contains("controller closed the stream")
    })
    .await;
    let before = sent.load(Ordering::Relaxed);
    wait_until(WAIT, "traffic flows after a graceful stop", || {
        served(before + 20)
    })
    .await;
    controller.restart().await;
    wait_until(WAIT, "both data planes reconnect again", || async {
        controller
            .metric_sum("switchboard_controller_connected_dataplanes", &[])
            .await
            == 2.0
    })
    .await;
    let v1 = controller.snapshot_version().await.unwrap();
    write(&dir, "config.yaml", &base("v2"));
    let v2 = next_controller_version(&controller, &v1).await;
    wait_version(&a, &v2, "a follows the restarted controller").await;
    wait_version(&b, &v2, "b follows the restarted controller").await;

    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        sent.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
}

#[tokio::test]
async fn a_data_plane_with_a_snapshot_cache_starts_while_the_controller_is_down() {
    let dir = temp_dir("ctl-cache");
    write(&dir, "config.yaml", &base("cached"));
    let mut controller = Controller::start(&dir).await;
    let cache = dir.join("cache").join("snapshot.pb");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let cache_arg = cache.display().to_string();
    let first = controller
        .start_dataplane(&[], &["--snapshot-cache", &cache_arg], true)
        .await;
    let version = controller.snapshot_version().await.unwrap();
    wait_until(WAIT, "cache written", || async { cache.is_file() }).await;
    // It holds provider and client keys: owner-only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "snapshot cache mode {mode:o}");
    drop(first);
    controller.kill();

    let second = controller
        .start_dataplane(&[], &["--snapshot-cache", &cache_arg], true)
        .await;
    let (status, body) = second.readyz().await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("source cache"), "{body}");
    assert_eq!(
        second.config_version().await.as_deref(),
        Some(version.as_str())
    );
    assert_eq!(ask(&second, "/").await.unwrap(), "cached");

    controller.restart().await;
    wait_until(WAIT, "the controller takes over from the cache", || async {
        second
            .readyz()
            .await
            .is_some_and(|(_, b)| b.contains("source controller"))
    })
    .await;
}

#[tokio::test]
async fn a_data_plane_without_a_cache_is_not_ready_until_the_controller_appears() {
    let dir = temp_dir("ctl-cold");
    write(&dir, "config.yaml", &base("late"));
    let mut controller = Controller::not_started(&dir);
    let mut gateway = controller.start_dataplane(&[], &[], false).await;
    wait_until(WAIT, "a connection attempt failed", || async {
        gateway.log().contains("cannot connect to the controller")
    })
    .await;
    let (status, body) = gateway.readyz().await.expect("admin port answers");
    assert_eq!(status, 503, "{body}");
    assert!(gateway.is_running());

    controller.restart().await;
    gateway.wait_ready().await;
    assert_eq!(ask(&gateway, "/").await.unwrap(), "late");
}

const SECRET_DOC: &str =
    "apiVersion: v1\nkind: Secret\nmetadata: {name: team-keys}\nstringData: {apiKey: team-key}\n";

/// Directory mode fails closed per object too (last accepted versions kept in memory): a bad
/// edit keeps the route's last accepted version, so its host never falls through to the open
/// catch-all; once that version cannot be rebuilt (its Secret document removed) the route
/// answers 503.
#[tokio::test]
async fn directory_mode_keeps_the_last_accepted_route_and_fails_closed() {
    let dir = temp_dir("ctl-lastgood");
    let team = |pattern: &str| {
        json!({"pathPrefix": "/", "hostnames": ["team.example.com"],
               "auth": {"apiKeys": [{"name": "team", "secretRef": {"name": "team-keys"}}]},
               "guards": {"blockedPatterns": [{"pattern": pattern}]},
               "rules": [rule(&["*"], &["echo"])]})
    };
    let config = |pattern: &str| base("open").route("team", team(pattern));
    write(&dir, "config.yaml", &config("secret-[0-9]+"));
    write_file_atomic(&dir.join("secret.yaml"), SECRET_DOC);
    let controller = Controller::start(&dir).await;
    let gateway = start_dataplane(&controller, &[]).await;
    let status = |key: Option<&'static str>| {
        let url = format!("{}/v1/chat/completions", gateway.base_url());
        async move {
            let auth = key.map(|k| format!("Bearer {k}"));
            let mut headers = vec![("host", "team.example.com")];
            if let Some(a) = &auth {
                headers.push(("authorization", a.as_str()));
            }
            post_json(&url, &headers, &chat_body("m", false))
                .await
                .0
                .as_u16()
        }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("team-key")).await, 200);
    let v1 = controller.snapshot_version().await.unwrap();

    // A regex that does not compile: refused, the last accepted version keeps serving.
    write(&dir, "config.yaml", &config("(unclosed"));
    wait_until(WAIT, "the refusal is reported", || async {
        controller
            .metric_sum(
                "switchboard_controller_render_problems",
                &[("kind", "AIRoute")],
            )
            .await
            == 1.0
    })
    .await;
    assert_eq!(
        controller.snapshot_version().await.as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        status(None).await,
        401,
        "never served by the open catch-all"
    );

    // The Secret document goes: the last accepted version cannot be rebuilt either.
    std::fs::remove_file(dir.join("secret.yaml")).unwrap();
    wait_until(WAIT, "the route answers 503", || async {
        status(Some("team-key")).await == 503
    })
    .await;
    assert_eq!(status(None).await, 503);
    assert_eq!(
        ask(&gateway, "/").await.as_deref(),
        Ok("open"),
        "other hosts are still served"
    );
}
