//! Proxy mode's resource bounds on the real binary (issue 18): the proxy listener has the traffic
//! port's bounds — a connection cap (split with the traffic port when derived from the open-files
//! limit) answered 503 beyond it, first-byte and header timeouts for a CONNECT head that does not
//! come, an idle timeout for a tunnel that carries nothing — and a host that is not intercepted is
//! tunnelled byte for byte.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use switchboard_e2e::config::{ConfigBuilder, rule};
use switchboard_e2e::harness::{binary_path, free_port, temp_dir};
use switchboard_e2e::stack::gpt_test_backend;
use switchboard_e2e::stack::{CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV, chat_body};
use switchboard_e2e::{Flavor, Gateway, MockUpstream, post_json, wait_until, write_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest wait for something the gateway must do by itself (a safety net, not a measurement).
const PATIENCE: Duration = Duration::from_secs(20);

/// A gateway with proxy mode on, its proxy address, and what it needs kept alive.
struct Proxied {
    gateway: Gateway,
    proxy: String,
    _upstream: MockUpstream,
    _dir: PathBuf,
}

/// Creates a proxy CA in `dir` with the binary's own subcommand.
fn create_ca(dir: &Path) {
    let out = std::process::Command::new(binary_path("switchboard-dataplane"))
        .args(["proxy-ca", "create", "--out-dir"])
        .arg(dir)
        .output()
        .expect("run proxy-ca create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a gateway (API-key route, one OpenAI mock) with the proxy on and `args`; `nofile`
/// sets the open-files limit.
async fn start(label: &str, args: &[&str], nofile: Option<u32>) -> Proxied {
    let upstream = MockUpstream::start(Flavor::OpenAI).await;
    let config = ConfigBuilder::new()
        .backend("primary", gpt_test_backend(&upstream.url()))
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
                "rules": [rule(&["gpt-*"], &["primary"])],
            }),
        );
    let dir = temp_dir(label);
    create_ca(&dir);
    let proxy = format!("127.0.0.1:{}", free_port());
    let cert = dir.join("ca.crt").display().to_string();
    let key = dir.join("ca.key").display().to_string();
    let mut all = vec![
        "--proxy-listen",
        proxy.as_str(),
        "--proxy-ca-cert",
        cert.as_str(),
        "--proxy-ca-key",
        key.as_str(),
    ];
    all.extend_from_slice(args);
    let path = write_config(&dir, &config.to_yaml());
    let envs = [(OPENAI_KEY_ENV, OPENAI_KEY), (CLIENT_KEY_ENV, CLIENT_KEY)];
    let gateway = match nofile {
        Some(n) => Gateway::start_with_nofile(&path, &envs, &all, n).await,
        None => Gateway::start_with_args(&path, &envs, &all).await,
    };
    Proxied {
        gateway,
        proxy,
        _upstream: upstream,
        _dir: dir,
    }
}

/// Sends a CONNECT with the client key as proxy credential and reads the answer's head.
async fn connect(proxy: &str, target: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy)
        .await
        .expect("connect to the proxy");
    s.write_all(
        format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Bearer {CLIENT_KEY}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(PATIENCE, s.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// Reads until the peer closes; returns what came (panics if it never closes).
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut got))
        .await
        .expect("the gateway closes the connection")
        .ok();
    got
}

/// A TCP server answering each connection with `banner`, then echoing.
async fn echo_server(banner: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if s.write_all(banner).await.is_err() {
                    return;
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// The log without colour codes.
fn plain_log(g: &Gateway) -> String {
    g.log()
        .split('\x1b')
        .map(|piece| piece.split_once('m').map_or(piece, |(_, rest)| rest))
        .collect()
}

#[tokio::test]
async fn the_automatic_cap_is_split_between_the_traffic_port_and_the_proxy() {
    // 256 open files: the automatic cap is 96 (see gateway_connections.rs), half each.
    let p = start("proxy-split", &[], Some(256)).await;
    let log = plain_log(&p.gateway);
    let proxy_line = log
        .lines()
        .find(|l| l.contains("proxy mode on"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(proxy_line.contains("max_connections=48"), "{proxy_line}");
    let traffic_line = log
        .lines()
        .find(|l| l.contains("switchboard data plane serving"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        traffic_line.contains("max_connections=48"),
        "{traffic_line}"
    );
}

#[tokio::test]
async fn connections_beyond_the_proxy_cap_get_503_while_the_traffic_port_serves() {
    let p = start(
        "proxy-cap",
        &[
            "--proxy-max-connections",
            "3",
            "--client-first-byte-timeout",
            "60s",
        ],
        None,
    )
    .await;
    // Three silent connections hold every slot.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&p.proxy).await.unwrap());
    }
    // The listener accepts in arrival order: the fourth finds no slot.
    let mut fourth = TcpStream::connect(&p.proxy).await.unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut fourth).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(
        p.gateway
            .metric_sum(
                "switchboard_connections_refused_total",
                &[("listener", "proxy")]
            )
            .await
            >= 1.0
    );
    // The traffic port has its own cap and still serves.
    let url = format!("{}/v1/chat/completions", p.gateway.base_url());
    let auth = format!("Bearer {CLIENT_KEY}");
    let (status, _, _) = post_json(
        &url,
        &[("authorization", auth.as_str())],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200);
    // A slot freed is usable again.
    drop(held.pop());
    wait_until(PATIENCE, "a freed slot takes a CONNECT", || {
        let proxy = p.proxy.clone();
        async move {
            let (_, head) = connect(&proxy, "api.openai.com:443").await;
            head.starts_with("HTTP/1.1 200 ")
        }
    })
    .await;
}

#[tokio::test]
async fn a_connect_head_that_never_comes_or_never_ends_is_closed() {
    let p = start(
        "proxy-head",
        &[
            "--client-first-byte-timeout",
            "1s",
            "--header-read-timeout",
            "2s",
        ],
        None,
    )
    .await;
    // Not a byte: closed at the first-byte timeout.
    let mut silent = TcpStream::connect(&p.proxy).await.unwrap();
    assert!(read_to_close(&mut silent).await.is_empty());
    // Half a head, then nothing: closed at the header timeout.
    let mut partial = TcpStream::connect(&p.proxy).await.unwrap();
    partial
        .write_all(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.op")
        .await
        .unwrap();
    assert!(read_to_close(&mut partial).await.is_empty());
    let closed = |reason: &'static str| {
        let g = &p.gateway;
        async move {
            g.metric_sum(
                "switchboard_connections_closed_total",
                &[("listener", "proxy"), ("reason", reason)],
            )
            .await
        }
    };
    assert_eq!(closed("first_byte_timeout").await, 1.0);
    assert_eq!(closed("header_timeout").await, 1.0);
}

#[tokio::test]
async fn an_idle_tunnel_is_closed_and_an_idle_intercepted_connection_too() {
    let port = echo_server(b"").await;
    let ports = format!("443,{port}");
    let p = start(
        "proxy-idle",
        &[
            "--client-idle-timeout",
            "1s",
            "--client-first-byte-timeout",
            "1s",
            "--header-read-timeout",
            "2s",
            "--proxy-tunnel-ports",
            ports.as_str(),
        ],
        None,
    )
    .await;
    // A tunnel opened, then nothing either way.
    let (mut tunnel, head) = connect(&p.proxy, &format!("127.0.0.1:{port}")).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(read_to_close(&mut tunnel).await.is_empty());
    // Counted once the tunnel's task ends (just after the close).
    wait_until(PATIENCE, "the idle tunnel is counted", || async {
        p.gateway
            .metric_sum(
                "switchboard_connections_closed_total",
                &[("listener", "proxy"), ("reason", "idle_timeout")],
            )
            .await
            == 1.0
    })
    .await;
    // An intercepted CONNECT whose client never starts TLS: closed at the handshake bound
    // (the header timeout).
    let (mut intercepted, head) = connect(&p.proxy, "api.openai.com:443").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(read_to_close(&mut intercepted).await.is_empty());
}

#[tokio::test]
async fn a_host_not_intercepted_is_tunnelled_byte_for_byte() {
    let port = echo_server(b"banner from the real host\n").await;
    let ports = format!("443,{port}");
    let p = start(
        "proxy-tunnel",
        &["--proxy-tunnel-ports", ports.as_str()],
        None,
    )
    .await;
    let (mut s, head) = connect(&p.proxy, &format!("localhost:{port}")).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    // Every byte value, and something that looks like HTTP: none of it is interpreted.
    let mut sent: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    sent.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\x00");
    let banner = b"banner from the real host\n";
    let (mut r, mut w) = s.split();
    let write = async {
        w.write_all(&sent).await.unwrap();
    };
    let mut got = vec![0u8; banner.len() + sent.len()];
    let read = async {
        tokio::time::timeout(PATIENCE, r.read_exact(&mut got))
            .await
            .expect("the echo comes back")
            .unwrap();
    };
    tokio::join!(write, read);
    assert_eq!(&got[..banner.len()], banner);
    assert!(
        got[banner.len()..] == sent[..],
        "the bytes came back unchanged"
    );
    assert_eq!(
        p.gateway
            .metric_sum(
                "switchboard_proxy_connects_total",
                &[("outcome", "tunnelled")]
            )
            .await,
        1.0
    );
    // A port that is not allowed is refused.
    let (_, head) = connect(&p.proxy, "localhost:22").await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
}
