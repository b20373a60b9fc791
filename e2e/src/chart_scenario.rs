//! The scenario the chart's end-to-end test runs with the controller and a data plane set up
//! from the chart: resources applied with `kubectl apply`, statuses, traffic through the data
//! plane, the Lease renewed and a repeated Event patched. Each step polls its condition and the
//! controller's log, so a run that expects a refusal ends as soon as it is logged.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::chart_rbac::MISSING_PERMISSIONS;
use crate::client::post_json;
use crate::harness::Gateway;
use crate::kube::{Cluster, KubeController};
use crate::stack::chat_body;

/// How long one step of the scenario may take.
pub const STEP: Duration = Duration::from_secs(45);
/// The Mock backend's answer.
pub const REPLY: &str = "hello from the chart";
/// The route's client API key.
pub const API_KEY: &str = "sk-chart-test-key";

/// What a run of the controller and a data plane, set up from the chart, must achieve. Each step
/// polls its condition and the controller's log; a refusal the run expects ends it early.
pub struct Scenario<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The namespace of the resources.
    pub apps: String,
    /// The controller under test.
    pub controller: &'a KubeController,
    /// The refusal the run expects (see [`crate::chart_rbac::forbidden_text`]); `None`: any
    /// refusal fails the run at once.
    pub expect_refusal: Option<String>,
}

/// How a run ended.
pub enum Outcome {
    /// Every step succeeded.
    Done,
    /// The expected refusal was logged (the log line).
    Refused(String),
}

impl Scenario<'_> {
    /// The expected refusal, once logged. Without one, any refusal fails the run at once.
    fn refusal(&self) -> Option<String> {
        let log = self.controller.log().replace('\\', "");
        let refused = |l: &&str| l.contains("is forbidden") || l.contains(MISSING_PERMISSIONS);
        let Some(expected) = self.expect_refusal.as_ref() else {
            if let Some(line) = log.lines().find(refused) {
                panic!("the controller was refused with the chart's RBAC: {line}");
            }
            return None;
        };
        log.lines()
            .find(|l| l.contains(MISSING_PERMISSIONS) && l.contains(expected.as_str()))
            .map(str::to_string)
    }

    /// Polls `condition` until it holds (`Ok(())`) or the expected refusal shows (`Err`).
    async fn until(
        &self,
        what: &str,
        mut condition: impl AsyncFnMut() -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(line) = self.refusal() {
                return Err(line);
            }
            if condition().await {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {STEP:?}{}\ncontroller log:\n{}",
                self.expect_refusal
                    .as_ref()
                    .map(|r| format!(" (and no refusal `{r}`)"))
                    .unwrap_or_default(),
                self.controller.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn condition(&self, object: &str, type_: &str) -> String {
        let path = format!("jsonpath={{.status.conditions[?(@.type==\"{type_}\")].status}}");
        self.cluster
            .kubectl(&["get", "-n", &self.apps, object, "-o", &path], None)
            .unwrap_or_default()
    }

    async fn all(&self, objects: &[&str], type_: &str, status: &str) -> Result<(), String> {
        self.until(&format!("{objects:?} {type_}={status}"), async || {
            objects.iter().all(|o| self.condition(o, type_) == status)
        })
        .await
    }

    /// Runs every step; `dataplane` starts the data plane when the resources are resolved.
    pub async fn run(
        &self,
        lease: (&str, &str),
        dataplane: impl AsyncFnOnce() -> Gateway,
    ) -> Outcome {
        match self.steps(lease, dataplane).await {
            Ok(()) => Outcome::Done,
            Err(line) => Outcome::Refused(line),
        }
    }

    async fn steps(
        &self,
        (lease_ns, lease): (&str, &str),
        dataplane: impl AsyncFnOnce() -> Gateway,
    ) -> Result<(), String> {
        let both = ["aibackend/echo", "airoute/main"];
        // list/watch the resources, hold the Lease, patch status, create Events
        self.all(&both, "Accepted", "True").await?;
        // list/watch the referenced Secret
        self.all(&["airoute/main"], "ResolvedRefs", "True").await?;
        // a data plane with the chart's arguments connects and serves the kubectl-applied route
        let gateway = dataplane().await;
        self.until("the data plane is ready", async || {
            gateway.readyz().await.is_some_and(|(s, _)| s == 200)
        })
        .await?;
        self.all(&both, "Programmed", "True").await?;
        let url = format!("{}/v1/chat/completions", gateway.base_url());
        let auth = format!("Bearer {API_KEY}");
        let host = host(&self.apps);
        let (status, _, body) = post_json(
            &url,
            &[("host", &host), ("authorization", &auth)],
            &chat_body("any", false),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains(REPLY));
        let (status, _, _) = post_json(&url, &[("host", &host)], &chat_body("any", false)).await;
        assert_eq!(status, 401, "the route's API key is required");
        // the Lease is renewed (update), not only created
        self.until("the Lease is renewed", async || {
            let times = self
                .cluster
                .kubectl(
                    &[
                        "get",
                        "lease",
                        lease,
                        "-n",
                        lease_ns,
                        "-o",
                        "jsonpath={.spec.acquireTime} {.spec.renewTime}",
                    ],
                    None,
                )
                .unwrap_or_default();
            let mut parts = times.split_whitespace();
            matches!((parts.next(), parts.next()), (Some(a), Some(r)) if a != r)
        })
        .await?;
        // invalid, valid, invalid again: the repeated Event is patched (its series counts 2). The
        // fault is one the CRD schema cannot see (the API server refuses what it can see): a
        // Secret that does not exist.
        let patch = |spec: &str| {
            self.cluster.must(
                &[
                    "patch",
                    "-n",
                    &self.apps,
                    "aibackend/echo",
                    "--type=merge",
                    "-p",
                    spec,
                ],
                None,
            )
        };
        let missing = r#"{"spec":{"credentials":{"secretRef":{"name":"missing"}}}}"#;
        patch(missing);
        self.all(&["aibackend/echo"], "ResolvedRefs", "False")
            .await?;
        patch(r#"{"spec":{"credentials":null}}"#);
        self.all(&["aibackend/echo"], "ResolvedRefs", "True")
            .await?;
        patch(missing);
        self.until("a repeated Event is counted in a series", async || {
            self.cluster
                .kubectl(
                    &[
                        "get",
                        "events.events.k8s.io",
                        "-n",
                        &self.apps,
                        "-o",
                        "jsonpath={.items[*].series.count}",
                    ],
                    None,
                )
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c.parse::<u32>().is_ok_and(|n| n >= 2))
        })
        .await?;
        drop(gateway);
        Ok(())
    }
}

/// The host name of the scenario's route in `ns`: a controller watching every namespace also
/// serves the routes other tests left in theirs.
pub fn host(ns: &str) -> String {
    format!("{ns}.switchboard.test")
}

/// The AIBackend, AIRoute (API key from a Secret) and Secret the scenario serves.
pub fn apply_resources(cluster: &Cluster, ns: &str) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "client-keys", "namespace": ns},
         "stringData": {"ci": API_KEY}},
        {"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
         "metadata": {"name": "echo", "namespace": ns},
         "spec": {"provider": "Mock", "mock": {"reply": REPLY}}},
        {"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIRoute",
         "metadata": {"name": "main", "namespace": ns},
         "spec": {"pathPrefix": "/", "hostnames": [host(ns)],
                  "auth": {"apiKeys": [{"name": "ci", "secretRef": {"name": "client-keys", "key": "ci"}}]},
                  "rules": [{"models": ["*"], "backends": [{"name": "echo"}]}]}},
    ]});
    cluster.apply(&list.to_string());
}
