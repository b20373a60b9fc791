//! One client must not take the gateway down (issue 12, item 3): under `ulimit -n 256`, 243 idle
//! connections used to exhaust the process's file descriptors and block the traffic port and the
//! admin port alike. Now the traffic port caps its connections below the descriptor limit and
//! refuses the rest with a 503, the admin port keeps a reserve, and idle connections are closed.

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::config::{ConfigBuilder, rule};
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::gpt_test_backend;
use switchboard_e2e::stack::{OPENAI_KEY, OPENAI_KEY_ENV, chat_body};
use switchboard_e2e::{Flavor, Gateway, MockUpstream, post_json, wait_until, write_config};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Idle connections opened against the traffic port.
const IDLE: usize = 243;

#[tokio::test]
async fn idle_connections_cannot_take_the_ports_down_under_a_small_descriptor_limit() {
    let upstream = MockUpstream::start(Flavor::OpenAI).await;
    let config = ConfigBuilder::new()
        .backend("primary", gpt_test_backend(&upstream.url()))
        .route(
            "main",
            json!({"pathPrefix": "/", "rules": [rule(&["gpt-*"], &["primary"])]}),
        );
    let dir = temp_dir("connections");
    let gateway = Gateway::start_with_nofile(
        &write_config(&dir, &config.to_yaml()),
        &[(OPENAI_KEY_ENV, OPENAI_KEY)],
        &["--client-first-byte-timeout", "3s"],
        256,
    )
    .await;
    // The line is written by the log writer thread a moment after it is logged.
    wait_until(Duration::from_secs(10), "the serving line", || async {
        gateway.log().contains("max_connections=")
    })
    .await;
    // Colours off: `\x1b[...m` sequences removed (text before the first one kept whole).
    let raw = gateway.log();
    let mut pieces = raw.split('\x1b');
    let mut log = pieces.next().unwrap_or_default().to_owned();
    for piece in pieces {
        log.push_str(piece.split_once('m').map_or(piece, |(_, rest)| rest));
    }
    assert!(log.contains("max_connections=96"), "{log}");

    let traffic = format!(
        "127.0.0.1:{}",
        gateway.base_url().rsplit(':').next().unwrap()
    );
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(
            TcpStream::connect(&traffic)
                .await
                .expect("the kernel accepts"),
        );
    }
    // The admin port answers while the traffic port is saturated.
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), gateway.readyz())
        .await
        .expect("the admin port answers in time")
        .expect("readyz");
    assert_eq!(status, 200, "{body}");
    // No connection is left hanging: those over the cap are answered 503 (or, beyond the
    // refusals in progress, closed) at once, those under it are closed after the first-byte
    // timeout since they never sent anything.
    let reads = idle.into_iter().map(|mut stream| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
                .await
                .map(|_| String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 503"))
        })
    });
    let mut refused = 0;
    for read in reads.collect::<Vec<_>>() {
        let got_503 = read.await.unwrap().expect("every idle connection ends");
        refused += usize::from(got_503);
    }
    assert!(refused > 0, "the connections over the cap get a 503");
    // Idle connections are closed after the first-byte timeout; traffic flows again.
    let url = format!("{}/v1/chat/completions", gateway.base_url());
    wait_until(
        Duration::from_secs(30),
        "traffic is served again",
        || async {
            let (status, _, _) = post_json(&url, &[], &chat_body("gpt-test", false)).await;
            status == 200
        },
    )
    .await;
}
