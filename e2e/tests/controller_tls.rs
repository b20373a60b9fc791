//! The snapshot channel's security through the real binaries in directory mode: TLS on the
//! gRPC port, a shared data-plane token, plaintext only when asked for by name, and a rotated
//! certificate taking effect without a restart. (ServiceAccount tokens and TokenReview are in
//! `kubernetes_snapshot_auth.rs`.) Every wait awaits a condition.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_e2e::config::{ConfigBuilder, rule};
use switchboard_e2e::controller::CONTROLLER_BIN;
use switchboard_e2e::harness::{
    START_TIMEOUT, binary_path, free_port, temp_dir, write_file_atomic,
};
use switchboard_e2e::pki::SERVER_NAME;
use switchboard_e2e::probe::{Outcome, Probe};
use switchboard_e2e::{Controller, Gateway, wait_until};

const WAIT: Duration = Duration::from_secs(20);

fn config_dir(label: &str) -> std::path::PathBuf {
    let dir = temp_dir(label);
    let config = ConfigBuilder::new()
        .backend("echo", json!({"provider": "Mock", "mock": {"reply": "hi"}}))
        .route(
            "main",
            json!({"pathPrefix": "/", "rules": [rule(&["*"], &["echo"])]}),
        );
    write_file_atomic(&dir.join("config.yaml"), &config.to_yaml());
    dir
}

/// A probe of `controller` over TLS trusting `ca`, sending `token`.
fn probe(controller: &Controller, ca: &Path, token: Option<&str>, version: &str) -> Probe {
    Probe {
        url: controller.grpc_url(),
        ca: Some(ca.to_path_buf()),
        server_name: Some(SERVER_NAME.into()),
        token: token.map(str::to_string),
        node_id: "probe".into(),
        version: version.into(),
    }
}

async fn metric(controller: &Controller, name: &str, labels: &[(&str, &str)]) -> f64 {
    controller.metric_sum(name, labels).await
}

#[tokio::test]
async fn only_data_planes_with_the_token_get_snapshots_or_reach_the_fleet() {
    let dir = config_dir("tls-token");
    let controller = Controller::start(&dir).await;
    let version = controller.snapshot_version().await.unwrap();
    let ca = controller.pki().unwrap().ca();
    let token = controller.dataplane_token().unwrap();

    for bad in [None, Some("not-the-token"), Some(&token[..token.len() - 1])] {
        let outcome = probe(&controller, &ca, bad, &version).run(WAIT).await;
        assert!(
            matches!(outcome, Outcome::Refused(tonic::Code::Unauthenticated, _)),
            "{bad:?}: {outcome:?}"
        );
    }
    let refused = metric(
        &controller,
        "switchboard_controller_dataplane_auth_total",
        &[("result", "unauthenticated")],
    )
    .await;
    assert_eq!(refused, 3.0);
    // Their Hello, ACK and NACK never reached the fleet.
    assert_eq!(
        metric(&controller, "switchboard_controller_acks_total", &[]).await,
        0.0
    );
    assert_eq!(
        metric(&controller, "switchboard_controller_nacks_total", &[]).await,
        0.0
    );
    assert_eq!(
        metric(
            &controller,
            "switchboard_controller_connected_dataplanes",
            &[]
        )
        .await,
        0.0
    );
    assert!(
        !controller.log().contains(&token),
        "the token is never logged"
    );

    // The real data plane with a wrong token file is refused and says why, without the token.
    let wrong = dir.join("wrong-token");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let wrong_arg = wrong.display().to_string();
    let refused_dp = Gateway::start_cluster(
        &controller.grpc_url(),
        &[],
        &[
            "--controller-ca",
            &ca.display().to_string(),
            "--controller-server-name",
            SERVER_NAME,
            "--controller-token-file",
            &wrong_arg,
        ],
        false,
    )
    .await;
    wait_until(WAIT, "the data plane logs the refusal", || async {
        refused_dp
            .log()
            .contains("the controller refused this data plane")
    })
    .await;
    assert_eq!(refused_dp.readyz().await.unwrap().0, 503);
    assert!(!refused_dp.log().contains("not-the-token"));

    // With the token: a snapshot, ACKed.
    let outcome = probe(&controller, &ca, Some(&token), &version)
        .run(WAIT)
        .await;
    assert_eq!(outcome, Outcome::Snapshot(version.clone()));
    let dp = controller.start_dataplane(&[], &[], true).await;
    assert_eq!(dp.config_version().await, Some(version));
    wait_until(WAIT, "the data plane's ACK counts", || async {
        metric(&controller, "switchboard_controller_acks_total", &[]).await >= 1.0
    })
    .await;
}

#[tokio::test]
async fn plaintext_to_the_tls_port_gets_nothing() {
    let dir = config_dir("tls-plain");
    let controller = Controller::start(&dir).await;
    let version = controller.snapshot_version().await.unwrap();
    let token = controller.dataplane_token().unwrap();
    let plain = Probe {
        url: format!("http://127.0.0.1:{}", controller.grpc_port()),
        ca: None,
        server_name: None,
        token: Some(token),
        node_id: "plain".into(),
        version,
    };
    let outcome = plain.run(WAIT).await;
    assert!(
        !matches!(outcome, Outcome::Snapshot(_)),
        "a plaintext client got a snapshot: {outcome:?}"
    );
    wait_until(WAIT, "the failed handshake is counted", || async {
        metric(
            &controller,
            "switchboard_controller_tls_handshake_failures_total",
            &[],
        )
        .await
            >= 1.0
    })
    .await;
    assert_eq!(
        metric(
            &controller,
            "switchboard_controller_connected_dataplanes",
            &[]
        )
        .await,
        0.0
    );

    // A data plane told to use plaintext against it never gets ready.
    let dp =
        Gateway::start_cluster(&plain.url, &[], &["--controller-insecure-plaintext"], false).await;
    wait_until(
        WAIT,
        "the plaintext data plane fails to connect",
        || async { dp.log().contains("controller stream ended") },
    )
    .await;
    assert_eq!(dp.readyz().await.unwrap().0, 503);
}

#[tokio::test]
async fn a_rotated_certificate_takes_effect_without_a_restart() {
    let dir = config_dir("tls-rotate");
    let controller = Controller::start(&dir).await;
    let version = controller.snapshot_version().await.unwrap();
    let token = controller.dataplane_token().unwrap();
    let pki = controller.pki().unwrap();
    let first = pki.ca_of(1);
    let connected = controller.start_dataplane(&[], &[], true).await;
    assert_eq!(
        probe(&controller, &first, Some(&token), &version)
            .run(WAIT)
            .await,
        Outcome::Snapshot(version.clone())
    );

    // A new CA and certificate, swapped in like a Secret volume update.
    let second = pki.ca_of(pki.rotate());
    wait_until(WAIT, "new connections get the new certificate", || async {
        probe(&controller, &second, Some(&token), &version)
            .run(WAIT)
            .await
            == Outcome::Snapshot(version.clone())
    })
    .await;
    let old_ca = probe(&controller, &first, Some(&token), &version)
        .run(WAIT)
        .await;
    assert!(
        matches!(&old_ca, Outcome::Failed(e) if e.contains("certificate")),
        "the old CA no longer verifies the server: {old_ca:?}"
    );
    assert_eq!(
        metric(
            &controller,
            "switchboard_controller_tls_certificate_reloads_total",
            &[("result", "ok")]
        )
        .await,
        1.0
    );
    assert!(controller.log().contains("gRPC TLS certificate reloaded"));
    // A data plane started now (its --controller-ca follows the mount) connects; the one
    // connected before keeps its stream and keeps serving.
    controller.start_dataplane(&[], &[], true).await;
    assert_eq!(connected.config_version().await, Some(version));
}

/// Runs a binary that must refuse its flags; returns its output.
fn refused_start(binary: &str, args: &[&str]) -> String {
    let mut child = Command::new(binary_path(binary))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!status.success(), "{binary} {args:?} started: {text}");
            return text;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{binary} {args:?} is still running; it should refuse its flags");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn plaintext_is_only_served_when_asked_for_by_name() {
    let dir = config_dir("tls-named");
    let source = format!("dir:{}", dir.display());
    let grpc = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let common = ["--grpc-listen", &grpc, "--admin-listen", &admin];

    let out = refused_start(
        CONTROLLER_BIN,
        &[&["--source", &source][..], &common].concat(),
    );
    assert!(out.contains("--grpc-insecure-plaintext"), "{out}");
    let out = refused_start(
        CONTROLLER_BIN,
        &[
            &["--source", "kube", "--grpc-insecure-plaintext"][..],
            &common,
        ]
        .concat(),
    );
    assert!(out.contains("TLS"), "{out}");
    let out = refused_start(
        CONTROLLER_BIN,
        &[
            &["--source", "kube", "--dataplane-service-account", "sb/dp"][..],
            &common,
        ]
        .concat(),
    );
    assert!(out.contains("--grpc-tls-cert"), "{out}");

    let controller = Controller::start_plaintext(&dir).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let dp_admin = format!("127.0.0.1:{}", free_port());
    let out = refused_start(
        "switchboard-dataplane",
        &[
            "--controller",
            &controller.grpc_url(),
            "--listen",
            &listen,
            "--admin-listen",
            &dp_admin,
        ],
    );
    assert!(out.contains("--controller-insecure-plaintext"), "{out}");
    let out = refused_start(
        "switchboard-dataplane",
        &[
            "--controller",
            "https://127.0.0.1:1",
            "--controller-ca",
            "/nonexistent/ca.crt",
            "--listen",
            &listen,
            "--admin-listen",
            &dp_admin,
        ],
    );
    assert!(out.contains("--controller-ca /nonexistent/ca.crt"), "{out}");

    // Named on both sides, plaintext works (local use), and both say so.
    let dp = controller.start_dataplane(&[], &[], true).await;
    assert!(dp.config_version().await.is_some());
    assert!(controller.log().contains("PLAINTEXT"));
    wait_until(WAIT, "the data plane warns about plaintext", || async {
        dp.log().contains("PLAINTEXT")
    })
    .await;
}
