//! Standalone configuration reloads: a broken edit keeps the last good config serving, a valid
//! edit is applied, and a broken initial config stops the process.

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::harness::{temp_dir, write_config, write_file_atomic};
use switchboard_e2e::stack::gpt_test_backend;
use switchboard_e2e::stack::{OPENAI_KEY_ENV, chat_body, standard_env, standard_route};
use switchboard_e2e::{Behaviour, Flavor, Gateway, JwtIssuer, Stack, post_json, wait_until};

const WAIT: Duration = Duration::from_secs(10);

async fn metric(stack: &Stack, name: &str) -> f64 {
    stack.gateway.metric_sum(name, &[]).await
}

#[tokio::test]
async fn broken_edit_keeps_serving_the_last_good_config_then_a_valid_edit_applies() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::ok("primary"));
    stack.secondary.set_default(Behaviour::ok("secondary"));
    let auth = stack.bearer();
    let ask = || async {
        let (status, _, body) = post_json(
            &stack.url("/v1/chat/completions"),
            &[("authorization", &auth)],
            &chat_body("gpt-test", false),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        switchboard_e2e::client::json_body(&body)["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(ask().await, "primary");
    let applies = metric(&stack, "switchboard_config_applies_total").await;

    // 1. Not YAML at all.
    write_file_atomic(&stack.config_path(), "kind: AIRoute\nspec: [unclosed\n");
    wait_until(WAIT, "broken YAML rejected", || async {
        metric(&stack, "switchboard_config_rejections_total").await >= 1.0
    })
    .await;
    assert_eq!(ask().await, "primary", "last good config keeps serving");

    // 2. Valid YAML, invalid config: a rule naming a backend that does not exist.
    let broken = stack.config().route(
        "second",
        json!({"pathPrefix": "/other", "rules": [rule(&["*"], &["does-not-exist"])]}),
    );
    write_file_atomic(&stack.config_path(), &broken.to_yaml());
    wait_until(WAIT, "dangling backend reference rejected", || async {
        metric(&stack, "switchboard_config_rejections_total").await >= 2.0
    })
    .await;
    assert_eq!(ask().await, "primary");
    let (status, _, _) =
        switchboard_e2e::get(&format!("{}/readyz", stack.gateway.admin_url()), &[]).await;
    assert_eq!(
        status, 200,
        "still ready while serving the last good config"
    );

    // 3. A valid edit: gpt-* now goes to the secondary only.
    let mut route = standard_route(&stack.issuer);
    route["rules"][0] = rule(&["gpt-*"], &["secondary"]);
    let edited = stack.config_with_route(route);
    write_file_atomic(&stack.config_path(), &edited.to_yaml());
    wait_until(WAIT, "valid edit applied", || async {
        metric(&stack, "switchboard_config_applies_total").await > applies
    })
    .await;
    assert_eq!(ask().await, "secondary", "new requests use the new config");
    assert!(
        stack
            .gateway
            .log()
            .lines()
            .all(|l| !l.contains(switchboard_e2e::stack::OPENAI_KEY)),
        "keys never logged"
    );
}

#[tokio::test]
async fn config_directory_is_read_and_reloaded() {
    let primary = switchboard_e2e::MockUpstream::start(Flavor::OpenAI).await;
    let issuer = JwtIssuer::start().await;
    let dir = temp_dir("dir-config");
    let backend = ConfigBuilder::new()
        .backend("primary", gpt_test_backend(&primary.url()))
        .to_yaml();
    write_file_atomic(&dir.join("10-backends.yaml"), &backend);
    let mut route = standard_route(&issuer);
    route["rules"] = json!([rule(&["gpt-*"], &["primary"])]);
    write_file_atomic(
        &dir.join("20-route.yaml"),
        &ConfigBuilder::new().route("main", route.clone()).to_yaml(),
    );
    let gateway = Gateway::start(&dir, &standard_env()).await;
    let auth = format!("Bearer {}", issuer.mint(json!({})));
    let (status, _, _) = post_json(
        &format!("{}/v1/chat/completions", gateway.base_url()),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200);

    // Add a model in the route file only: requests for it fail until the change is applied.
    route["aliases"] = json!([{"pattern": "renamed", "target": "gpt-test"}]);
    write_file_atomic(
        &dir.join("20-route.yaml"),
        &ConfigBuilder::new().route("main", route).to_yaml(),
    );
    wait_until(WAIT, "alias from the edited file served", || async {
        let (status, _, _) = post_json(
            &format!("{}/v1/chat/completions", gateway.base_url()),
            &[("authorization", &auth)],
            &chat_body("renamed", false),
        )
        .await;
        status == 200
    })
    .await;
}

#[tokio::test]
async fn broken_initial_config_exits_non_zero_with_the_problem() {
    let issuer = JwtIssuer::start().await;
    let dir = temp_dir("broken-initial");
    let config = ConfigBuilder::new()
        .backend(
            "primary",
            backend_spec(
                Flavor::OpenAI,
                "http://127.0.0.1:9",
                OPENAI_KEY_ENV,
                &["gpt-test"],
            ),
        )
        .route(
            "main",
            json!({"pathPrefix": "/", "rules": [rule(&["gpt-*"], &["missing-backend"])],
            "auth": standard_route(&issuer)["auth"].clone()}),
        );
    let path = write_config(&dir, &config.to_yaml());
    let (status, output) = Gateway::start_expect_failure(&path, &standard_env()).await;
    assert!(!status.success(), "must exit non-zero: {output}");
    assert!(
        output.contains("missing-backend"),
        "the problem names the bad reference:\n{output}"
    );

    let path = write_config(&dir, "this: is: not: yaml: [");
    let (status, _) = Gateway::start_expect_failure(&path, &standard_env()).await;
    assert!(!status.success());
}

#[tokio::test]
async fn an_edit_that_leaves_no_route_is_refused_and_logged_as_an_error() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::ok("primary"));
    let auth = stack.bearer();
    let ask = || async {
        let (status, _, _) = post_json(
            &stack.url("/v1/chat/completions"),
            &[("authorization", &auth)],
            &chat_body("gpt-test", false),
        )
        .await;
        status
    };
    assert_eq!(ask().await, 200);
    // An empty file, then one with backends but no route: both would take every route down.
    for (round, text) in [
        (1.0, String::new()),
        (
            2.0,
            switchboard_e2e::stack::standard_backends(
                &stack.primary.url(),
                &stack.secondary.url(),
                &stack.anthropic.url(),
                &stack.big.url(),
            )
            .to_yaml(),
        ),
    ] {
        write_file_atomic(&stack.config_path(), &text);
        wait_until(WAIT, "the edit is rejected", || async {
            metric(&stack, "switchboard_config_rejections_total").await >= round
        })
        .await;
        assert_eq!(
            ask().await,
            200,
            "the last good configuration keeps serving"
        );
        let (status, body) = stack.gateway.readyz().await.expect("readyz answers");
        assert_eq!(status, 200, "{body}");
    }
    let log = stack.gateway.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("configuration change rejected")),
        "{log}"
    );
    assert!(log.contains("has no AIRoute"), "{log}");
}

#[tokio::test]
async fn an_empty_initial_config_exits_non_zero() {
    let dir = temp_dir("empty-initial");
    let path = write_config(&dir, "");
    let (status, output) = Gateway::start_expect_failure(&path, &standard_env()).await;
    assert!(!status.success(), "must exit non-zero: {output}");
    assert!(output.contains("no AIRoute"), "{output}");
}
