//! [`Error`]: the one error type of the controller library.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the controller (or one of its tasks) cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// The `--source` argument is not `kube` or `dir:PATH`.
    #[error("invalid --source {0:?}: use `kube` or `dir:PATH`")]
    InvalidSource(String),
    /// The source folder is missing or unreadable at startup.
    #[error("cannot read {path}: {source}")]
    SourceIo {
        /// The path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// No Kubernetes client could be configured (no kubeconfig or in-cluster config).
    #[error("cannot configure a Kubernetes client: {0}")]
    KubeClient(#[source] ::kube::Error),
    /// The controller's identity lacks RBAC permissions it needs.
    #[error("missing RBAC permissions (see docs/controller-kubernetes.md): {}", .0.join("; "))]
    Rbac(Vec<String>),
    /// The Kubernetes source stopped.
    #[error(transparent)]
    KubeSource(#[from] crate::kube::source::Error),
    /// The command line asks for something unsafe or inconsistent.
    #[error("{0}")]
    InvalidFlags(String),
    /// The gRPC TLS certificate or key cannot be used.
    #[error("gRPC TLS: {0}")]
    Tls(#[from] crate::grpc::tls::TlsError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// A task ended that should run until shutdown.
    #[error("{0} ended unexpectedly")]
    TaskEnded(&'static str),
}

impl Error {
    /// A short, low-cardinality label for logs and metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Bind { .. } => "bind",
            Error::InvalidSource(_) => "invalid_source",
            Error::SourceIo { .. } => "source_io",
            Error::KubeClient(_) => "kube_client",
            Error::Rbac(_) => "rbac",
            Error::KubeSource(e) => e.metric_label(),
            Error::InvalidFlags(_) => "invalid_flags",
            Error::Tls(_) => "tls",
            Error::Grpc(_) => "grpc",
            Error::TaskEnded(_) => "task_ended",
        }
    }
}
