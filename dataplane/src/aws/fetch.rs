//! The HTTP edge of the credential providers: one request, its status and
//! a bounded body. [`HttpFetch`] is the production client (hyper, rustls);
//! tests use it against local mock STS / container endpoints.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends one credentials request.
pub trait Fetch: Send + Sync {
    /// The answer's status and body, or why there is none.
    fn fetch(&self, req: Request<Bytes>) -> BoxFuture<'_, Result<(StatusCode, Bytes), String>>;
}

/// Largest credentials answer read.
const MAX_BODY: usize = 64 << 10;

/// A pooled HTTP(S) client with a per-request deadline.
#[derive(Clone)]
pub struct HttpFetch {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpFetch {
    /// A client trusting `tls`'s roots, giving up on a request after `timeout`.
    pub fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
        }
    }

    async fn send(&self, req: Request<Bytes>) -> Result<(StatusCode, Bytes), String> {
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, Full::new(body));
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

impl Fetch for HttpFetch {
    fn fetch(&self, req: Request<Bytes>) -> BoxFuture<'_, Result<(StatusCode, Bytes), String>> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.send(req))
                .await
                .map_err(|_| format!("no answer within {:?}", self.timeout))?
        })
    }
}
