//! The chart's controller and data plane as local processes, set up from the Deployments the API
//! server stored ([`LocalPod`]), with every argument, environment variable and mounted file of
//! the chart: the controller with the chart's TLS Secret and data-plane identity flags, the data
//! plane with the Secret's `ca.crt`, a projected token bound to its pod and `POD_NAME`. And
//! [`tls_identity_step`], which proves on that material who else gets nothing from the
//! controller.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Gateway, metric_sum, wait_until};
use crate::kube::{Cluster, KubeController, KubeControllerOptions, WAIT};
use crate::local_pod::LocalPod;
use crate::pki::TestPki;
use crate::probe::{self, INJECTED_NACK, Probe};

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The controller and data-plane pods of release `sb` in `ns`, materialised locally.
pub fn chart_pods(cluster: &Cluster, ns: &str) -> (LocalPod, LocalPod) {
    let controller = LocalPod::materialize(
        cluster,
        ns,
        "sb-controller",
        "controller",
        "sb-controller-0",
    );
    let dataplane =
        LocalPod::materialize(cluster, ns, "sb-dataplane", "dataplane", "sb-dataplane-0");
    assert_eq!(controller.binary, "switchboard-controller");
    assert_eq!(dataplane.binary, "switchboard-dataplane");
    (controller, dataplane)
}

/// Starts the controller with every argument of the chart's pod (`--namespace` values replaced
/// by `watch`, if any), TLS and identity flags included, under `kubeconfig`.
pub fn start_controller(
    cluster: &Cluster,
    lease_ns: &str,
    pod: &LocalPod,
    kubeconfig: PathBuf,
    identity: &str,
    watch: Option<&str>,
) -> KubeController {
    let args = pod
        .args
        .iter()
        .map(|a| match (a.strip_prefix("--namespace="), watch) {
            (Some(_), Some(ns)) => format!("--namespace={ns}"),
            _ => a.clone(),
        })
        .collect();
    KubeController::start(
        cluster,
        &KubeControllerOptions {
            lease_namespace: Some(lease_ns.to_string()),
            identity: Some(identity.to_string()),
            kubeconfig: Some(kubeconfig),
            args,
            tls_from_args: true,
            ..Default::default()
        },
    )
}

/// The host the chart's data plane dials (`<service>.<namespace>.svc`).
fn controller_host(dataplane_pod: &LocalPod) -> String {
    let url = dataplane_pod.arg("--controller").expect("--controller");
    url.trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The chart's data plane as a fresh pod (empty `emptyDir`s) with every argument and the
/// environment of the chart, following the local controller: it dials 127.0.0.1 and checks the
/// chart's Service name in the certificate (`--controller-server-name`), as in the cluster it
/// dials that name. `replace` swaps the value of some of the chart's flags.
pub async fn start_dataplane(
    pod: &LocalPod,
    controller: &KubeController,
    replace: &[(&str, String)],
) -> Gateway {
    pod.reset_empty_dirs();
    let mut skip = vec!["--controller"];
    skip.extend(replace.iter().map(|(flag, _)| *flag));
    let mut args = pod.args_without(&skip);
    args.extend(
        replace
            .iter()
            .map(|(flag, value)| format!("{flag}={value}")),
    );
    args.push(format!("--controller-server-name={}", controller_host(pod)));
    let envs: Vec<(&str, &str)> = pod
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Gateway::start_cluster(&controller.grpc_url(), &envs, &args, false).await
}

fn env<'a>(pod: &'a LocalPod, name: &str) -> &'a str {
    pod.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the pod has no {name} in its environment"))
}

/// Every status and Event in `ns`, as text.
pub fn statuses_and_events(cluster: &Cluster, ns: &str) -> String {
    cluster.must(
        &[
            "get",
            "-n",
            ns,
            "aibackends,airoutes,events.events.k8s.io",
            "-o",
            "json",
        ],
        None,
    )
}

/// The TLS and identity contract on the chart's own material, with `controller` running with
/// the chart's flags and no data plane connected yet: the material is what the data planes
/// need and no more, and every peer that is not the chart's data plane gets nothing and cannot
/// change status (the authorised data plane is the scenario's, afterwards).
pub async fn tls_identity_step(
    cluster: &Cluster,
    ns: &str,
    apps: &str,
    controller: &KubeController,
    controller_pod: &LocalPod,
    dataplane_pod: &LocalPod,
) {
    // The serving certificate is signed by the CA the data planes get, for the name they dial.
    let ca = dataplane_pod
        .mount("/etc/switchboard/controller-ca")
        .join("ca.crt");
    let crt = controller_pod
        .arg("--grpc-tls-cert")
        .expect("--grpc-tls-cert");
    let ca_s = ca.display().to_string();
    assert!(openssl(&["verify", "-CAfile", &ca_s, &crt]).contains(": OK"));
    let sans = openssl(&["x509", "-in", &crt, "-noout", "-ext", "subjectAltName"]);
    let host = controller_host(dataplane_pod);
    assert!(
        sans.contains(&format!("DNS:{host}")),
        "{host} not in {sans}"
    );
    assert!(
        !dataplane_pod
            .mount("/etc/switchboard/controller-ca")
            .join("tls.key")
            .exists(),
        "the data plane must not get the controller's key"
    );

    // The data plane's projected token authenticates as its ServiceAccount for the controller's
    // audience, bound to the pod its Hello names (POD_NAME), and the controller's ServiceAccount
    // may check it (TokenReview).
    let token_file = dataplane_pod
        .arg("--controller-token-file")
        .expect("--controller-token-file");
    let token = std::fs::read_to_string(&token_file).expect("projected token");
    let token = token.trim();
    let controller_kubeconfig = cluster.token_for(ns, &controller_pod.service_account);
    let review = |audience: &str| -> Value {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                          "spec": {"token": token, "audiences": [audience]}});
        let out = crate::kube::kubectl_as(
            &controller_kubeconfig,
            &["create", "--validate=false", "-o", "json", "-f", "-"],
            Some(&body.to_string()),
        )
        .unwrap_or_else(|e| {
            panic!("the controller's ServiceAccount cannot create TokenReviews: {e}")
        });
        serde_json::from_str(&out).expect("TokenReview JSON")
    };
    let audience = controller_pod
        .arg("--dataplane-audience")
        .expect("--dataplane-audience");
    let ok = review(&audience);
    assert_eq!(ok["status"]["authenticated"], true, "{}", ok["status"]);
    let dataplane_sa = controller_pod
        .arg("--dataplane-service-account")
        .expect("--dataplane-service-account");
    assert_eq!(
        dataplane_sa,
        format!("{ns}/{}", dataplane_pod.service_account)
    );
    assert_eq!(
        ok["status"]["user"]["username"],
        format!("system:serviceaccount:{}", dataplane_sa.replace('/', ":"))
    );
    let node_id = env(dataplane_pod, "POD_NAME");
    assert_eq!(
        ok["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!([node_id]),
        "the token is bound to the pod whose name the data plane sends"
    );

    // Peers that must get nothing. Each probe sends a Hello, an ACK and a NACK at once.
    let version = controller.served_version().await;
    let honest = Probe {
        url: controller.grpc_url(),
        ca: Some(ca.clone()),
        server_name: Some(host.clone()),
        token: Some(token.to_string()),
        node_id: node_id.to_string(),
        version,
    };
    let other_ca = TestPki::new("chart-other-ca");
    cluster.service_account(ns, "sb-intruder");
    let intruder_token = cluster.create_token(ns, "sb-intruder", &audience, &[]);
    let bound = format!("--bound-object-name={node_id}");
    let wrong_audience = cluster.create_token(
        ns,
        &dataplane_pod.service_account,
        "some-other-audience",
        &["--bound-object-kind=Pod", &bound],
    );
    let trusting_other_ca = Probe {
        ca: Some(other_ca.ca()),
        ..honest.clone()
    };
    let outcome = trusting_other_ca.run(WAIT).await;
    assert!(
        matches!(&outcome, probe::Outcome::Failed(e) if e.contains("UnknownIssuer")),
        "a peer trusting another CA: {outcome:?}"
    );
    let refusals = [
        (
            "another ServiceAccount's token, the chart's audience",
            Probe {
                token: Some(intruder_token.clone()),
                ..honest.clone()
            },
            tonic::Code::PermissionDenied,
            "is not authorised",
        ),
        (
            "the chart's ServiceAccount, another audience",
            Probe {
                token: Some(wrong_audience.clone()),
                ..honest.clone()
            },
            tonic::Code::Unauthenticated,
            "audience",
        ),
        (
            "the chart's token, another pod's name",
            Probe {
                node_id: "sb-dataplane-1".into(),
                ..honest.clone()
            },
            tonic::Code::PermissionDenied,
            node_id,
        ),
    ];
    for (what, probe, code, reason) in &refusals {
        let outcome = probe.run(WAIT).await;
        assert!(
            matches!(&outcome, probe::Outcome::Refused(c, m) if c == code && m.contains(reason)),
            "{what}: {outcome:?}\n{}",
            controller.log_tail()
        );
    }

    // Real data planes with the chart's arguments, but trusting another CA or presenting
    // another ServiceAccount's token: refused, never ready.
    let intruder_file = other_ca.dir().join("intruder-token");
    std::fs::write(&intruder_file, &intruder_token).expect("write the intruder's token");
    for (what, replace, logged) in [
        (
            "another CA",
            ("--controller-ca", other_ca.ca().display().to_string()),
            "UnknownIssuer",
        ),
        (
            "another ServiceAccount's token",
            (
                "--controller-token-file",
                intruder_file.display().to_string(),
            ),
            "PermissionDenied",
        ),
    ] {
        let refused = start_dataplane(dataplane_pod, controller, &[replace]).await;
        wait_until(
            WAIT,
            &format!("a data plane with {what} is refused"),
            || async { refused.log().contains(logged) },
        )
        .await;
        assert_eq!(
            refused.readyz().await.map(|(s, _)| s),
            Some(503),
            "a data plane with {what} got a snapshot:\n{}",
            refused.log()
        );
    }

    // Nothing they sent reached the fleet or status: no ACK, no NACK, no connected data plane,
    // the route still waits for one, and no status or Event quotes the injected NACK.
    let m = controller.metrics().await;
    for name in [
        "switchboard_controller_acks_total",
        "switchboard_controller_nacks_total",
        "switchboard_controller_connected_dataplanes",
    ] {
        assert_eq!(metric_sum(&m, name, &[]), 0.0, "{name}");
    }
    let auth = |result: &str| {
        metric_sum(
            &m,
            "switchboard_controller_dataplane_auth_total",
            &[("result", result)],
        )
    };
    assert!(auth("permission_denied") >= 3.0, "{m}");
    assert!(auth("unauthenticated") >= 1.0, "{m}");
    assert!(
        metric_sum(
            &m,
            "switchboard_controller_tls_handshake_failures_total",
            &[]
        ) >= 2.0,
        "{m}"
    );
    cluster.wait_for(
        apps,
        "condition=Programmed=Unknown",
        &["airoute/main"],
        || controller.log_tail(),
    );
    let seen = statuses_and_events(cluster, apps);
    assert!(!seen.contains(INJECTED_NACK), "{seen}");
    let log = controller.log();
    for t in [token, intruder_token.as_str(), wrong_audience.as_str()] {
        assert!(!log.contains(t), "a token reached the controller's log");
    }
}
