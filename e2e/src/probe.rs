//! A raw snapshot-stream client that plays a data plane, honest or not: it connects (TLS or
//! plaintext), sends a Hello, an ACK and a NACK at once (before the controller answered, as an
//! intruder trying to write into status would), and reports what the controller did.

use std::path::PathBuf;
use std::time::Duration;

use switchboard_proto::snapshot_service_client::SnapshotServiceClient;
use switchboard_proto::{
    Ack, ControllerMessage, DataPlaneMessage, Hello, Nack, ResourceError, controller_message,
    data_plane_message,
};
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// The NACK message a probe sends; a test checks it never reaches status or Events.
pub const INJECTED_NACK: &str = "injected by a probe that must not reach the fleet";

/// How a probe connects and who it claims to be.
#[derive(Clone, Debug)]
pub struct Probe {
    /// `https://…` or `http://…`.
    pub url: String,
    /// CA bundle for `https://`.
    pub ca: Option<PathBuf>,
    /// TLS server name override.
    pub server_name: Option<String>,
    /// Bearer token sent as `authorization`.
    pub token: Option<String>,
    /// The node id of its Hello.
    pub node_id: String,
    /// The version its ACK and NACK name.
    pub version: String,
}

/// What the controller did with a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It sent a snapshot of this version.
    Snapshot(String),
    /// It refused the stream with this code (message attached).
    Refused(tonic::Code, String),
    /// No gRPC exchange happened (connection or TLS failure).
    Failed(String),
}

impl Probe {
    /// Runs the probe: waits (up to `timeout`) for the first snapshot or the stream's end.
    pub async fn run(&self, timeout: Duration) -> Outcome {
        match tokio::time::timeout(timeout, self.exchange()).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failed(format!("no answer within {timeout:?}")),
        }
    }

    async fn exchange(&self) -> Outcome {
        let mut endpoint = match Endpoint::from_shared(self.url.clone()) {
            Ok(e) => e.connect_timeout(Duration::from_secs(5)),
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).expect("read probe CA");
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            if let Some(name) = &self.server_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint.tls_config(tls).expect("probe TLS config");
        }
        let channel = match endpoint.connect().await {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(error_chain(&e)),
        };
        let mut client = SnapshotServiceClient::new(channel);
        let (tx, rx) = mpsc::channel(8);
        let messages = [
            data_plane_message::Kind::Hello(Hello {
                node_id: self.node_id.clone(),
                serving_version: String::new(),
            }),
            data_plane_message::Kind::Ack(Ack {
                version: self.version.clone(),
            }),
            data_plane_message::Kind::Nack(Nack {
                version: self.version.clone(),
                errors: vec![ResourceError {
                    resource: "AIRoute/any/main".into(),
                    message: INJECTED_NACK.into(),
                }],
            }),
        ];
        for kind in messages {
            let _ = tx.send(DataPlaneMessage { kind: Some(kind) }).await;
        }
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().expect("token is ASCII");
            request.metadata_mut().insert("authorization", value);
        }
        let mut inbound = match client.stream(request).await {
            Ok(r) => r.into_inner(),
            Err(status) => return refused(&status),
        };
        loop {
            match inbound.message().await {
                Ok(Some(ControllerMessage {
                    kind: Some(controller_message::Kind::Snapshot(s)),
                })) => return Outcome::Snapshot(s.version),
                Ok(Some(_)) => continue,
                Ok(None) => return Outcome::Failed("stream closed without a snapshot".into()),
                Err(status) => return refused(&status),
            }
        }
    }
}

fn refused(status: &tonic::Status) -> Outcome {
    match status.code() {
        // Transport failures surface as statuses too; they are not refusals.
        tonic::Code::Unknown | tonic::Code::Internal => {
            Outcome::Failed(format!("{:?}: {}", status.code(), status.message()))
        }
        code => Outcome::Refused(code, status.message().to_string()),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
