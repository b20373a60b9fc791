//! The snapshot server on a real socket, over TLS, with a tonic client: who gets a snapshot and
//! whose ACKs count.

use std::path::Path;

use switchboard_proto::snapshot_service_client::SnapshotServiceClient;
use switchboard_proto::{Ack, Nack, ResourceError};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
const TOKEN: &str = "shared-s3cret";

struct Running {
    addr: std::net::SocketAddr,
    fleet: Fleet,
    metrics: Arc<Metrics>,
    _shutdown: watch::Sender<bool>,
    _rendered: watch::Sender<Arc<Rendered>>,
}

async fn serve_tls() -> Running {
    let dir = std::env::temp_dir().join(format!("sb-grpc-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let fixtures = Path::new(FIXTURES);
    let tls = ServerTls::load(&fixtures.join("a.crt"), &fixtures.join("a.key")).unwrap();
    let (rendered_tx, rendered_rx) = watch::channel(rendered(Some(snapshot("v1", 1))));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let fleet = Fleet::new();
    let metrics = Arc::new(Metrics::new());
    let server = SnapshotServer {
        rendered: rendered_rx,
        fleet: fleet.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown_rx.clone(),
        options: GrpcOptions::default(),
        auth: Arc::new(Authenticator::SharedToken(token)),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut stop = shutdown_rx;
    tokio::spawn(serve(listener, server, Some(tls), async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    Running {
        addr,
        fleet,
        metrics,
        _shutdown: shutdown_tx,
        _rendered: rendered_tx,
    }
}

fn tls_client() -> ClientTlsConfig {
    let ca = std::fs::read(Path::new(FIXTURES).join("ca.crt")).unwrap();
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("switchboard-controller.test")
}

/// An open stream: what it sends on, and what it receives.
type Open = (
    mpsc::Sender<DataPlaneMessage>,
    tonic::Streaming<ControllerMessage>,
);

/// Opens a stream that sends Hello, an ACK and a NACK at once, and returns the first snapshot
/// received (with the stream, still open), or why there was none.
async fn open(
    url: String,
    tls: Option<ClientTlsConfig>,
    token: Option<&str>,
) -> Result<(Snapshot, Open), String> {
    let mut endpoint = Endpoint::from_shared(url).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut client = SnapshotServiceClient::new(channel);
    let (tx, rx) = mpsc::channel(8);
    for kind in [
        data_plane_message::Kind::Hello(switchboard_proto::Hello {
            node_id: "intruder".into(),
            serving_version: String::new(),
        }),
        data_plane_message::Kind::Ack(Ack {
            version: "v1".into(),
        }),
        data_plane_message::Kind::Nack(Nack {
            version: "v1".into(),
            errors: vec![ResourceError {
                resource: "AIRoute/default/main".into(),
                message: "injected".into(),
            }],
        }),
    ] {
        tx.send(DataPlaneMessage { kind: Some(kind) })
            .await
            .unwrap();
    }
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let mut inbound = client
        .stream(request)
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    loop {
        match inbound.message().await {
            Ok(Some(ControllerMessage {
                kind: Some(controller_message::Kind::Snapshot(s)),
            })) => return Ok((s, (tx, inbound))),
            Ok(Some(_)) => continue,
            Ok(None) => return Err("closed".into()),
            Err(s) => return Err(format!("{:?}: {}", s.code(), s.message())),
        }
    }
}

#[tokio::test]
async fn only_a_peer_with_the_token_gets_snapshots_or_reaches_the_fleet() {
    let running = serve_tls().await;
    let url = format!("https://127.0.0.1:{}", running.addr.port());

    for token in [None, Some("wrong")] {
        let refused = open(url.clone(), Some(tls_client()), token)
            .await
            .unwrap_err();
        assert!(refused.starts_with("Unauthenticated"), "{refused}");
    }
    assert!(running.fleet.is_empty());
    assert_eq!(
        running.metrics.acks.get(),
        0,
        "the refused ACKs never counted"
    );
    assert_eq!(running.metrics.nacks.get(), 0);

    let plain = open(
        format!("http://127.0.0.1:{}", running.addr.port()),
        None,
        Some(TOKEN),
    )
    .await
    .unwrap_err();
    assert!(!plain.contains("v1"), "{plain}");
    while running.metrics.tls_handshake_failures.get() == 0 {
        tokio::task::yield_now().await;
    }

    let (snapshot, _stream) = open(url, Some(tls_client()), Some(TOKEN)).await.unwrap();
    assert_eq!(snapshot.version, "v1");
    let mut fleet = running.fleet.subscribe();
    fleet
        .wait_for(|v| {
            v.dataplanes
                .get("intruder")
                .is_some_and(|d| d.nack.as_ref().is_some_and(|n| n.version == "v1"))
        })
        .await
        .unwrap();
    assert_eq!(running.metrics.acks.get(), 1, "with the token, ACKs count");
    assert_eq!(
        running
            .metrics
            .dataplane_auth
            .get_or_create(&AuthLabels {
                result: "unauthenticated"
            })
            .get(),
        2
    );
}
