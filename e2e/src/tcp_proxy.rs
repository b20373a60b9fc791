//! [`TcpProxy`]: a TCP forwarder in front of one or more upstream ports, as a Kubernetes
//! Service is in front of replicas. Each new connection goes to the first upstream (in the
//! order given) that accepts it, so a test decides which replica a client lands on and where it
//! goes when that one dies. Tests use it to put data planes behind "a Service" of controller replicas, to move an
//! API server to a new port after a restart, and to hold connections back (a slow API server).
//!
//! Bytes pass through untouched, so TLS (the API server's) works end to end. The proxy runs on
//! a thread and runtime of its own, so a test blocked in `kubectl wait` never stalls it.

use std::sync::{Arc, Mutex};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::harness::free_port;

#[derive(Default)]
struct State {
    upstreams: Vec<u16>,
    connections: Vec<AbortHandle>,
}

/// A TCP forwarder on 127.0.0.1; stops when dropped.
pub struct TcpProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    /// While false, accepted connections wait before they are forwarded.
    open: watch::Sender<bool>,
    accept: AbortHandle,
    /// Keeps the proxy's runtime alive; dropping it stops the runtime.
    _runtime: std::sync::mpsc::Sender<()>,
}

impl TcpProxy {
    /// Starts forwarding to `upstreams` (ports on 127.0.0.1).
    pub async fn start(upstreams: &[u16]) -> TcpProxy {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            let handle = runtime.handle().clone();
            let _ = ready_tx.send(handle);
            // Runs until the proxy is dropped.
            runtime.block_on(async {
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            });
        });
        let handle = ready_rx.recv().expect("proxy runtime started");
        let port = free_port();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let state = Arc::new(Mutex::new(State {
            upstreams: upstreams.to_vec(),
            ..State::default()
        }));
        let (open, open_rx) = watch::channel(true);
        let s = state.clone();
        let accept = handle
            .spawn(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = s.clone();
                    let mut open = open_rx.clone();
                    let task = tokio::spawn(async move {
                        let _ = open.wait_for(|o| *o).await;
                        let candidates = state.lock().unwrap().upstreams.clone();
                        for port in candidates {
                            if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await
                            {
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
            _runtime: stop_tx,
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT`: the proxy passes TLS through (controllers serve gRPC over TLS).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
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
