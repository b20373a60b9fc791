//! `switchboard-token` (the built-in token helper) against the e2e issuer's OAuth2 token endpoint,
//! and the token it prints accepted by a gateway route that trusts that issuer's JWKS.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use switchboard_e2e::config::{ConfigBuilder, rule};
use switchboard_e2e::harness::{binary_path, temp_dir};
use switchboard_e2e::jwt_issuer::{CLIENT_ID, CLIENT_SECRET};
use switchboard_e2e::{Gateway, JwtIssuer, post_json, write_config};

const TOKEN_BIN: &str = "switchboard-token";

/// A gateway whose only route needs a JWT from `issuer`, with the built-in Mock provider.
async fn gateway(issuer: &JwtIssuer) -> (Gateway, PathBuf) {
    let config = ConfigBuilder::new()
        .backend(
            "mock",
            json!({"provider": "Mock", "mock": {"reply": "hello agent"}}),
        )
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "auth": {"jwt": {"issuer": issuer.issuer(), "audiences": [issuer.audience()],
                                 "jwksUri": issuer.jwks_uri()}},
                "rules": [rule(&["*"], &["mock"])]
            }),
        );
    let dir = temp_dir("token-helper-gw");
    let path = write_config(&dir, &config.to_yaml());
    (Gateway::start(&path, &[]).await, dir)
}

/// Runs the helper with a clean environment: HOME and the cache in `home`, plus `env`. It runs on
/// a blocking thread so the issuer (served by this test's runtime) can answer it.
async fn run(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(binary_path(TOKEN_BIN));
    cmd.env_clear()
        .env("HOME", home)
        .env("SWITCHBOARD_TOKEN_CACHE_DIR", home.join("cache"))
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run switchboard-token"))
        .await
        .expect("join the helper")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "switchboard-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    text.trim_end().to_string()
}

async fn chat_status(gateway: &Gateway, token: &str) -> u16 {
    let (status, _, _) = post_json(
        &format!("{}/v1/chat/completions", gateway.base_url()),
        &[("authorization", &format!("Bearer {token}"))],
        &json!({"model": "any", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    status.as_u16()
}

#[tokio::test]
async fn printed_token_is_accepted_by_the_gateway_and_cached_privately() {
    let issuer = JwtIssuer::start().await;
    let (gateway, _gw_dir) = gateway(&issuer).await;
    let home = temp_dir("token-helper-home");
    let url = issuer.token_uri();
    let env = [
        ("SWITCHBOARD_TOKEN_URL", url.as_str()),
        ("SWITCHBOARD_CLIENT_ID", CLIENT_ID),
        ("SWITCHBOARD_CLIENT_SECRET", CLIENT_SECRET),
        ("SWITCHBOARD_TOKEN_SCOPE", "gateway/invoke"),
    ];
    let token = stdout(&run(&home, &env, &[]).await);
    assert_eq!(issuer.tokens_issued(), 1);
    assert_eq!(chat_status(&gateway, &token).await, 200);
    // Claude Code's apiKeyHelper output also arrives as x-api-key on /v1/messages.
    let (status, _, body) = post_json(
        &format!("{}/v1/messages", gateway.base_url()),
        &[("x-api-key", &token), ("anthropic-version", "2023-06-01")],
        &json!({"model": "any", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // Cached per user, private: the folder 0700, the file 0600, the secret nowhere in it.
    let cache = home.join("cache");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(&cache), 0o700);
    let cached = std::fs::read_to_string(&files[0]).unwrap();
    assert!(cached.contains(&token) && !cached.contains(CLIENT_SECRET));

    // A second run reuses it: no new token.
    assert_eq!(stdout(&run(&home, &env, &[]).await), token);
    assert_eq!(issuer.tokens_issued(), 1);
    // --force-refresh fetches a new one, and that one is cached.
    let fresh = stdout(&run(&home, &env, &["--force-refresh"]).await);
    assert_ne!(fresh, token);
    assert_eq!(issuer.tokens_issued(), 2);
    assert_eq!(stdout(&run(&home, &env, &[]).await), fresh);
    assert_eq!(chat_status(&gateway, &fresh).await, 200);
}

#[tokio::test]
async fn a_token_about_to_expire_is_replaced_before_it_does() {
    let issuer = JwtIssuer::start().await;
    let (gateway, _gw_dir) = gateway(&issuer).await;
    let home = temp_dir("token-helper-expiry");
    let url = issuer.token_uri();
    let env = [
        ("SWITCHBOARD_TOKEN_URL", url.as_str()),
        ("SWITCHBOARD_CLIENT_ID", CLIENT_ID),
        ("SWITCHBOARD_CLIENT_SECRET", CLIENT_SECRET),
    ];
    // The helper wants 5 minutes of validity left (default --min-valid 300), and reuses a shorter
    // token for the first half of its life only: a 1-second token is never reused.
    issuer.set_token_lifetime(1);
    let first = stdout(&run(&home, &env, &[]).await);
    let second = stdout(&run(&home, &env, &[]).await);
    assert_ne!(first, second);
    assert_eq!(issuer.tokens_issued(), 2);
    issuer.set_token_lifetime(120);
    let third = stdout(&run(&home, &env, &[]).await);
    assert_eq!(
        stdout(&run(&home, &env, &[]).await),
        third,
        "reused within half its life"
    );
    assert_eq!(issuer.tokens_issued(), 3);
    // The margin is the caller's: asking for 30 s left still gets it; what is printed is accepted.
    assert_eq!(
        stdout(&run(&home, &env, &["--min-valid", "30"]).await),
        third
    );
    assert_eq!(chat_status(&gateway, &third).await, 200);
}

#[tokio::test]
async fn secret_from_a_file_with_form_authentication_and_config_file() {
    let issuer = JwtIssuer::start().await;
    let (gateway, _gw_dir) = gateway(&issuer).await;
    let home = temp_dir("token-helper-file");
    let secret = home.join("secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    let config = home.join("token.conf");
    std::fs::write(
        &config,
        format!(
            "# switchboard-token settings\ntoken_url = \"{}\"\nclient_id = {CLIENT_ID}\nclient_secret_file = {}\nauth_method = post\n",
            issuer.token_uri(),
            secret.display()
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap(), "--no-cache"];
    let token = stdout(&run(&home, &[], &args).await);
    assert_eq!(chat_status(&gateway, &token).await, 200);
    assert!(!home.join("cache").exists(), "--no-cache writes nothing");
    // The default config file location is used when it exists.
    let xdg = home.join("xdg");
    std::fs::create_dir_all(xdg.join("switchboard")).unwrap();
    std::fs::copy(&config, xdg.join("switchboard/token.conf")).unwrap();
    let env = [("XDG_CONFIG_HOME", xdg.to_str().unwrap())];
    let token = stdout(&run(&home, &env, &[]).await);
    assert_eq!(chat_status(&gateway, &token).await, 200);
}

#[tokio::test]
async fn failures_say_why_and_never_show_the_secret() {
    let issuer = JwtIssuer::start().await;
    let home = temp_dir("token-helper-fail");
    let url = issuer.token_uri();
    let wrong = "wrong-secret-value-123";
    let out = run(
        &home,
        &[
            ("SWITCHBOARD_TOKEN_URL", url.as_str()),
            ("SWITCHBOARD_CLIENT_ID", CLIENT_ID),
            ("SWITCHBOARD_CLIENT_SECRET", wrong),
        ],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 401: invalid_client"), "{err}");
    assert!(!err.contains(wrong), "{err}");
    assert_eq!(issuer.tokens_issued(), 0);

    // There is no flag for the secret (it would show in `ps`).
    let out = run(&home, &[], &["--client-secret", CLIENT_SECRET]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--client-secret"));
    // Plain http to a non-loopback host is refused before anything is sent.
    let out = run(
        &home,
        &[("SWITCHBOARD_CLIENT_SECRET", "x")],
        &[
            "--token-url",
            "http://idp.example.com/oauth2/token",
            "--client-id",
            "c",
        ],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("use https"));
}
