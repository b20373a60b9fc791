//! [`TcpProxy`]: a TCP forwarder in front of one or more upstream ports, as a Kubernetes
//! Service is in front of replicas. New connections go round-robin to the upstreams that accept
//! them. Tests use it to put data planes behind "a Service" of controller replicas, to move an
//! API server to a new port after a restart, and to hold connections back (a slow API server).
//!
//! Bytes pass through untouched, so TLS (the API server's) works end to end.

use std::sync::{Arc, Mutex};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::harness::free_port;

#[derive(Default)]
struct State {
    upstreams: Vec<u16>,
    next: usize,
    connections: Vec<AbortHandle>,
}

/// A TCP forwarder on 127.0.0.1; stops when dropped.
pub struct TcpProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    /// While false, accepted connections wait before they are forwarded.
    open: watch::Sender<bool>,
    accept: AbortHandle,
}

impl TcpProxy {
    /// Starts forwarding to `upstreams` (ports on 127.0.0.1).
    pub async fn start(upstreams: &[u16]) -> TcpProxy {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the proxy");
        let state = Arc::new(Mutex::new(State {
            upstreams: upstreams.to_vec(),
            ..State::default()
        }));
        let (open, open_rx) = watch::channel(true);
        let s = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let state = s.clone();
                let mut open = open_rx.clone();
                let task = tokio::spawn(async move {
                    let _ = open.wait_for(|o| *o).await;
                    let candidates = {
                        let mut st = state.lock().unwrap();
                        let n = st.upstreams.len().max(1);
                        st.next = (st.next + 1) % n;
                        let start = st.next;
                        let ups = st.upstreams.clone();
                        (0..ups.len())
                            .map(|i| ups[(start + i) % ups.len()])
                            .collect::<Vec<_>>()
                    };
                    for port in candidates {
                        if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await {
                            let mut client = client;
                            let _ = copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                });
                let mut st = s.lock().unwrap();
                st.connections.retain(|c| !c.is_finished());
                st.connections.push(task.abort_handle());
            }
        })
        .abort_handle();
        TcpProxy {
            port,
            state,
            open,
            accept,
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forwards new connections to `upstreams` from now on.
    pub fn set_upstreams(&self, upstreams: &[u16]) {
        self.state.lock().unwrap().upstreams = upstreams.to_vec();
    }

    /// Cuts every open connection.
    pub fn cut(&self) {
        for c in self.state.lock().unwrap().connections.drain(..) {
            c.abort();
        }
    }

    /// Holds new connections back (accepted, not forwarded) until [`TcpProxy::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Forwards held and new connections.
    pub fn release(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
