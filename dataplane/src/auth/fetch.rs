//! Fetching JWKS documents over HTTP(S).
//!
//! [`HttpJwksFetcher`] is the production [`JwksFetcher`]: a pooled hyper
//! client speaking http and https with the process's one TLS configuration
//! (the same roots as upstream calls, see [`crate::upstream::tls`]), each
//! fetch bounded to 5 seconds and 1 MiB of body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::JwksFetcher;

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY_BYTES: usize = 1 << 20;

/// Fetches JWKS documents with a pooled HTTP(S) client.
#[derive(Clone)]
pub struct HttpJwksFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
    max_body_bytes: usize,
}

impl HttpJwksFetcher {
    /// A fetcher trusting `tls`'s roots, with a 5 s timeout and a 1 MiB
    /// body limit.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Self {
            client,
            timeout: TIMEOUT,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }

    async fn get(&self, uri: &str) -> Result<Vec<u8>, String> {
        let uri: http::Uri = uri.parse().map_err(|e| format!("invalid JWKS URI: {e}"))?;
        let req = Request::get(uri)
            .header(header::ACCEPT, "application/json, application/jwk-set+json")
            .body(Empty::new())
            .map_err(|e| format!("building the request: {e}"))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("JWKS endpoint answered {status}"));
        }
        let body = Limited::new(resp.into_body(), self.max_body_bytes)
            .collect()
            .await
            .map_err(|e| format!("reading the JWKS body: {e}"))?;
        Ok(body.to_bytes().to_vec())
    }
}

impl JwksFetcher for HttpJwksFetcher {
    fn fetch(
        &self,
        uri: &str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>> {
        let uri = uri.to_string();
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.get(&uri))
                .await
                .map_err(|_| format!("JWKS fetch timed out after {:?}", self.timeout))?
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::Response;
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    fn fetcher() -> HttpJwksFetcher {
        HttpJwksFetcher::new(Arc::new(crate::upstream::tls::client_config()))
    }

    /// Serves `status` and `body` to every request on a loopback port.
    async fn serve(status: u16, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |_req| {
                        let body = body.clone();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}/jwks")
    }

    #[tokio::test]
    async fn fetches_a_document() {
        let uri = serve(200, br#"{"keys":[]}"#.to_vec()).await;
        let body = fetcher().fetch(&uri).await.unwrap();
        assert_eq!(body, br#"{"keys":[]}"#);
    }

    #[tokio::test]
    async fn error_status_is_a_failure() {
        let uri = serve(503, b"down".to_vec()).await;
        let e = fetcher().fetch(&uri).await.unwrap_err();
        assert!(e.contains("503"), "{e}");
    }

    #[tokio::test]
    async fn oversized_body_is_a_failure() {
        let uri = serve(200, vec![b' '; MAX_BODY_BYTES + 1]).await;
        assert!(fetcher().fetch(&uri).await.is_err());
    }
}
