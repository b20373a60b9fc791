use super::*;
use switchboard_proto::{Ack, Backend, Hello, Nack, ResourceError};

struct Harness {
    rendered: watch::Sender<Arc<Rendered>>,
    shutdown: watch::Sender<bool>,
    fleet: Fleet,
    metrics: Arc<Metrics>,
    to_server: mpsc::Sender<Result<DataPlaneMessage, Status>>,
    from_server: mpsc::Receiver<OutMessage>,
    task: tokio::task::JoinHandle<()>,
}

fn snapshot(version: &str, backends: usize) -> Arc<Snapshot> {
    Arc::new(Snapshot {
        version: version.into(),
        backends: (0..backends)
            .map(|i| Backend {
                id: format!("default/b{i}"),
                ..Default::default()
            })
            .collect(),
        routes: vec![],
    })
}

fn rendered(s: Option<Arc<Snapshot>>) -> Arc<Rendered> {
    Arc::new(Rendered {
        snapshot: s,
        ..Default::default()
    })
}

fn start(initial: Option<Arc<Snapshot>>, options: GrpcOptions) -> Harness {
    start_as(initial, options, Identity::anonymous())
}

fn start_as(initial: Option<Arc<Snapshot>>, options: GrpcOptions, identity: Identity) -> Harness {
    let (rendered_tx, rendered_rx) = watch::channel(rendered(initial));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let fleet = Fleet::new();
    let metrics = Arc::new(Metrics::new());
    let server = SnapshotServer {
        rendered: rendered_rx,
        fleet: fleet.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown_rx,
        options,
        auth: Arc::new(Authenticator::Open),
    };
    let (to_server, inbound) = mpsc::channel(8);
    let (out, from_server) = mpsc::channel(8);
    let task = tokio::spawn(serve_stream(
        ReceiverStream::new(inbound),
        out,
        server,
        identity,
    ));
    Harness {
        rendered: rendered_tx,
        shutdown,
        fleet,
        metrics,
        to_server,
        from_server,
        task,
    }
}

fn hello(id: &str) -> DataPlaneMessage {
    DataPlaneMessage {
        kind: Some(data_plane_message::Kind::Hello(Hello {
            node_id: id.into(),
            serving_version: String::new(),
        })),
    }
}

fn ack(v: &str) -> DataPlaneMessage {
    DataPlaneMessage {
        kind: Some(data_plane_message::Kind::Ack(Ack { version: v.into() })),
    }
}

impl Harness {
    async fn send(&self, m: DataPlaneMessage) {
        self.to_server.send(Ok(m)).await.unwrap();
    }

    /// The next non-keepalive message.
    async fn next_snapshot(&mut self) -> Option<Snapshot> {
        loop {
            match self.from_server.recv().await? {
                Ok(ControllerMessage {
                    kind: Some(controller_message::Kind::Snapshot(s)),
                }) => return Some(s),
                Ok(_) => continue,
                Err(status) => panic!("unexpected status {status}"),
            }
        }
    }

    async fn fleet_settles(&self, f: impl Fn(&crate::fleet::FleetView) -> bool) {
        let mut rx = self.fleet.subscribe();
        rx.wait_for(|v| f(v)).await.unwrap();
    }
}

#[tokio::test]
async fn hello_then_current_snapshot_then_each_new_version_once() {
    let mut h = start(Some(snapshot("v1", 1)), GrpcOptions::default());
    h.send(hello("dp-1")).await;
    assert_eq!(h.next_snapshot().await.unwrap().version, "v1");
    h.fleet_settles(|v| v.dataplanes.contains_key("dp-1")).await;

    h.send(ack("v1")).await;
    h.fleet_settles(|v| v.dataplanes["dp-1"].acked_version.as_deref() == Some("v1"))
        .await;

    // The same version again (a new Rendered with new problems) is not resent.
    h.rendered.send_replace(rendered(Some(snapshot("v1", 1))));
    h.rendered.send_replace(rendered(Some(snapshot("v2", 2))));
    let next = h.next_snapshot().await.unwrap();
    assert_eq!(next.version, "v2", "v1 is never sent twice");
    assert_eq!(next.backends.len(), 2);

    h.send(DataPlaneMessage {
        kind: Some(data_plane_message::Kind::Nack(Nack {
            version: "v2".into(),
            errors: vec![ResourceError {
                resource: "AIBackend/default/b1".into(),
                message: "env X is not set".into(),
            }],
        })),
    })
    .await;
    h.fleet_settles(|v| {
        v.dataplanes["dp-1"]
            .nack
            .as_ref()
            .is_some_and(|n| n.version == "v2")
    })
    .await;
    assert_eq!(
        h.fleet.view().dataplanes["dp-1"].acked_version.as_deref(),
        Some("v1")
    );
    assert_eq!(h.metrics.acks.get(), 1);
    assert_eq!(h.metrics.nacks.get(), 1);

    drop(h.to_server);
    h.task.await.unwrap();
    assert!(h.fleet.is_empty(), "a closed stream leaves the fleet");
}

#[tokio::test]
async fn no_snapshot_yet_waits_for_the_first() {
    let mut h = start(None, GrpcOptions::default());
    h.send(hello("dp")).await;
    h.fleet_settles(|v| v.dataplanes.contains_key("dp")).await;
    h.rendered.send_replace(rendered(Some(snapshot("v1", 0))));
    assert_eq!(h.next_snapshot().await.unwrap().version, "v1");
}

#[tokio::test]
async fn first_message_must_be_hello() {
    let mut h = start(Some(snapshot("v1", 0)), GrpcOptions::default());
    h.send(ack("v1")).await;
    let status = h.from_server.recv().await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    h.task.await.unwrap();
    assert!(h.fleet.is_empty());
}

#[tokio::test(start_paused = true)]
async fn keepalives_are_sent_on_idle_streams() {
    let opts = GrpcOptions {
        keepalive: Duration::from_secs(5),
        ..GrpcOptions::default()
    };
    let mut h = start(None, opts);
    h.send(hello("dp")).await;
    let msg = h.from_server.recv().await.unwrap().unwrap();
    assert!(matches!(
        msg.kind,
        Some(controller_message::Kind::Keepalive(_))
    ));
}

#[tokio::test]
async fn too_large_snapshots_are_not_sent() {
    let opts = GrpcOptions {
        max_snapshot_bytes: 64,
        ..GrpcOptions::default()
    };
    let mut h = start(Some(snapshot("small", 0)), opts);
    h.send(hello("dp")).await;
    assert_eq!(h.next_snapshot().await.unwrap().version, "small");
    h.rendered.send_replace(rendered(Some(snapshot("big", 10))));
    let too_large = || {
        h.metrics
            .pushes
            .get_or_create(&PushLabels {
                result: "too_large",
            })
            .get()
    };
    while too_large() == 0 {
        tokio::task::yield_now().await;
    }
    h.rendered
        .send_replace(rendered(Some(snapshot("small2", 0))));
    assert_eq!(
        h.next_snapshot().await.unwrap().version,
        "small2",
        "the big one was skipped"
    );
}

#[tokio::test]
async fn shutdown_ends_streams_cleanly() {
    let mut h = start(Some(snapshot("v1", 0)), GrpcOptions::default());
    h.send(hello("dp")).await;
    assert_eq!(h.next_snapshot().await.unwrap().version, "v1");
    h.shutdown.send_replace(true);
    assert!(
        h.next_snapshot().await.is_none(),
        "the stream ends without an error status"
    );
    h.task.await.unwrap();
    assert!(h.fleet.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stream_ends_cleanly_when_its_token_expires() {
    let identity = Identity {
        subject: "system:serviceaccount:gw:dp".into(),
        pod: None,
        expires_at: Some(SystemTime::now() + Duration::from_secs(600)),
    };
    let opts = GrpcOptions {
        keepalive: Duration::from_secs(3600),
        ..GrpcOptions::default()
    };
    let mut h = start_as(Some(snapshot("v1", 0)), opts, identity);
    h.send(hello("dp")).await;
    assert_eq!(h.next_snapshot().await.unwrap().version, "v1");
    let start = Instant::now();
    assert!(
        h.next_snapshot().await.is_none(),
        "the stream ends without an error status, so the data plane reconnects"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(599),
        "not before the expiry"
    );
    h.task.await.unwrap();
    assert!(h.fleet.is_empty());
}

#[tokio::test]
async fn a_hello_naming_another_pod_is_refused_before_anything_is_sent() {
    let identity = Identity {
        subject: "system:serviceaccount:gw:dp".into(),
        pod: Some("gw-0".into()),
        expires_at: None,
    };
    let mut h = start_as(Some(snapshot("v1", 0)), GrpcOptions::default(), identity);
    h.send(hello("gw-1")).await;
    h.send(ack("v1")).await;
    let status = h.from_server.recv().await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(status.message().contains("gw-0"), "{status}");
    h.task.await.unwrap();
    assert!(h.from_server.recv().await.is_none(), "no snapshot was sent");
    assert!(h.fleet.is_empty());
    assert_eq!(h.metrics.acks.get(), 0);
    let denied = h
        .metrics
        .dataplane_auth
        .get_or_create(&AuthLabels {
            result: "permission_denied",
        })
        .get();
    assert_eq!(denied, 1);
}

#[tokio::test]
async fn the_pod_a_token_is_bound_to_is_served() {
    let identity = Identity {
        subject: "system:serviceaccount:gw:dp".into(),
        pod: Some("gw-0".into()),
        expires_at: None,
    };
    let mut h = start_as(Some(snapshot("v1", 0)), GrpcOptions::default(), identity);
    h.send(hello("gw-0")).await;
    assert_eq!(h.next_snapshot().await.unwrap().version, "v1");
    h.fleet_settles(|v| v.dataplanes.contains_key("gw-0")).await;
}

mod over_the_network;
