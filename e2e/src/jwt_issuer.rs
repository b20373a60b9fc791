//! A test JWT issuer: serves a JWKS (RS256 key `e2e-rsa`, ES256 key `e2e-ec`, from the committed
//! PEM fixtures in `e2e/fixtures/`) and mints tokens. A third "rogue" RSA key is not in the JWKS.
//!
//! HTTP endpoints: `GET /.well-known/jwks.json` (counted); `POST /oauth2/token`, an OAuth2 token
//! endpoint for the client-credentials grant (client [`CLIENT_ID`] / [`CLIENT_SECRET`], HTTP
//! Basic or form-body client authentication; RS256 tokens with `sub` and `client_id` set to the
//! client id, `scope` when asked, lifetime [`JwtIssuer::set_token_lifetime`]; counted); and, for
//! out-of-process tests, `POST /mint` with
//! `{"claims":{…},"kind":"rs256"|"es256"|"expired"|"unknown_key"}` → token text.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// PKCS#8 PEM of the RS256 signing key (kid `e2e-rsa`).
pub const RSA_PRIVATE_PEM: &str = include_str!("../fixtures/rsa_private.pem");
/// PKCS#8 PEM of the ES256 signing key (kid `e2e-ec`).
pub const EC_PRIVATE_PEM: &str = include_str!("../fixtures/ec_private.pem");
/// PKCS#8 PEM of an RSA key that is NOT in the JWKS (kid `e2e-rogue`).
pub const ROGUE_RSA_PRIVATE_PEM: &str = include_str!("../fixtures/rogue_rsa_private.pem");
/// The public JWKS matching the RSA and EC keys.
pub const JWKS_JSON: &str = include_str!("../fixtures/jwks.json");
/// Key id of the RSA key.
pub const RSA_KID: &str = "e2e-rsa";
/// Key id of the EC key.
pub const EC_KID: &str = "e2e-ec";
/// Key id used by the rogue key.
pub const ROGUE_KID: &str = "e2e-rogue";
/// Audience put into minted tokens.
pub const AUDIENCE: &str = "switchboard-e2e";
/// Path of the JWKS document.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// PEM of the test CA that signed [`TLS_CERT_PEM`]; point a process's
/// `SSL_CERT_FILE` at [`tls_ca_path`] to make it trust the TLS issuer.
pub const TLS_CA_PEM: &str = include_str!("../fixtures/tls/ca.pem");
/// PEM of the TLS server certificate (for `127.0.0.1` and `localhost`).
pub const TLS_CERT_PEM: &str = include_str!("../fixtures/tls/server.pem");
/// PEM of the TLS server key.
pub const TLS_KEY_PEM: &str = include_str!("../fixtures/tls/server-key.pem");

/// Path of the test CA's PEM file.
pub fn tls_ca_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/ca.pem")
}

/// Path of the OAuth2 token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// The client id the token endpoint knows.
pub const CLIENT_ID: &str = "e2e-client";
/// That client's secret.
pub const CLIENT_SECRET: &str = "e2e-client-secret/with+special&chars";

/// Which key and validity a minted token gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// RS256, kid `e2e-rsa`, valid for an hour.
    Rs256,
    /// ES256, kid `e2e-ec`, valid for an hour.
    Es256,
    /// RS256, expired an hour ago.
    Expired,
    /// RS256 signed by a key that is not in the JWKS (kid `e2e-rogue`).
    UnknownKey,
}

impl TokenKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "rs256" => Some(TokenKind::Rs256),
            "es256" => Some(TokenKind::Es256),
            "expired" => Some(TokenKind::Expired),
            "unknown_key" => Some(TokenKind::UnknownKey),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Shared {
    issuer: String,
    jwks: Mutex<Value>,
    fetches: AtomicUsize,
    issued: AtomicUsize,
    lifetime: std::sync::atomic::AtomicU64,
    shutdown: watch::Sender<bool>,
}

/// A running JWKS server plus token minting. Stops serving on drop.
#[derive(Debug)]
pub struct JwtIssuer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mints a token of `kind` for `issuer`; `claims` (an object) override the defaults
/// `iss`, `aud`, `sub` (`e2e-user`), `iat` and `exp`.
pub fn mint_token(issuer: &str, kind: TokenKind, claims: &Value) -> String {
    let now = now();
    let exp = if kind == TokenKind::Expired {
        now - 3600
    } else {
        now + 3600
    };
    let iat = if kind == TokenKind::Expired {
        now - 7200
    } else {
        now
    };
    let mut all =
        json!({"iss": issuer, "aud": AUDIENCE, "sub": "e2e-user", "iat": iat, "exp": exp});
    if let (Some(all), Some(extra)) = (all.as_object_mut(), claims.as_object()) {
        for (k, v) in extra {
            all.insert(k.clone(), v.clone());
        }
    }
    let (alg, kid, key) = match kind {
        TokenKind::Rs256 | TokenKind::Expired => (
            Algorithm::RS256,
            RSA_KID,
            EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).expect("RSA fixture key"),
        ),
        TokenKind::Es256 => (
            Algorithm::ES256,
            EC_KID,
            EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).expect("EC fixture key"),
        ),
        TokenKind::UnknownKey => (
            Algorithm::RS256,
            ROGUE_KID,
            EncodingKey::from_rsa_pem(ROGUE_RSA_PRIVATE_PEM.as_bytes()).expect("rogue fixture key"),
        ),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &all, &key).expect("sign test token")
}

impl JwtIssuer {
    /// Starts the JWKS server on a free port of 127.0.0.1.
    pub async fn start() -> JwtIssuer {
        Self::start_with(None).await
    }

    /// Starts the JWKS server over HTTPS, with a certificate from the test
    /// CA ([`TLS_CA_PEM`]); its issuer and JWKS URI are `https://127.0.0.1:…`.
    pub async fn start_tls() -> JwtIssuer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(TLS_CERT_PEM.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("fixture certificate");
        let key = PrivateKeyDer::from_pem_slice(TLS_KEY_PEM.as_bytes()).expect("fixture key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("TLS server config");
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> JwtIssuer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind JWT issuer");
        let addr = listener.local_addr().expect("JWT issuer local addr");
        let jwks: Value = serde_json::from_str(JWKS_JSON).expect("fixture JWKS is JSON");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            issuer: format!("{scheme}://{addr}"),
            jwks: Mutex::new(jwks),
            fetches: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
            lifetime: std::sync::atomic::AtomicU64::new(3600),
            shutdown: watch::channel(false).0,
        });
        tokio::spawn(accept_loop(listener, shared.clone(), tls));
        JwtIssuer { addr, shared }
    }

    /// The `iss` claim of minted tokens (the server's base URL).
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The `aud` claim of minted tokens.
    pub fn audience(&self) -> String {
        AUDIENCE.to_string()
    }

    /// URL of the JWKS document.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.shared.issuer)
    }

    /// URL of the `/mint` endpoint.
    pub fn mint_uri(&self) -> String {
        format!("http://{}/mint", self.addr)
    }

    /// URL of the OAuth2 token endpoint.
    pub fn token_uri(&self) -> String {
        format!("http://{}{TOKEN_PATH}", self.addr)
    }

    /// How many tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }

    /// Sets the lifetime (`expires_in`, seconds) of tokens the token endpoint issues next.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.shared.lifetime.store(seconds, Ordering::SeqCst);
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// The JWKS currently served.
    pub fn jwks(&self) -> Value {
        self.shared
            .jwks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the served JWKS (e.g. to simulate key rotation).
    pub fn set_jwks(&self, jwks: Value) {
        *self.shared.jwks.lock().unwrap_or_else(|p| p.into_inner()) = jwks;
    }

    /// A valid RS256 token with `claims` merged over the defaults.
    pub fn mint(&self, claims: Value) -> String {
        mint_token(&self.shared.issuer, TokenKind::Rs256, &claims)
    }

    /// A valid ES256 token with `claims` merged over the defaults.
    pub fn mint_es256(&self, claims: Value) -> String {
        mint_token(&self.shared.issuer, TokenKind::Es256, &claims)
    }

    /// An RS256 token that expired an hour ago.
    pub fn mint_expired(&self, claims: Value) -> String {
        mint_token(&self.shared.issuer, TokenKind::Expired, &claims)
    }

    /// An RS256 token signed by a key missing from the JWKS.
    pub fn mint_unknown_key(&self, claims: Value) -> String {
        mint_token(&self.shared.issuer, TokenKind::UnknownKey, &claims)
    }
}

impl Drop for JwtIssuer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut shutdown = shared.shutdown.subscribe();
            let service = {
                let shared = shared.clone();
                service_fn(move |req| handle(shared.clone(), req))
            };
            let serve = async move {
                match tls {
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

/// Decodes `application/x-www-form-urlencoded` text.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Full<Bytes>> {
    response(
        status,
        "application/json",
        json!({"error": error, "error_description": description}).to_string(),
    )
}

/// The client-credentials grant: checks the client (Basic or form body) and issues a token.
fn token_endpoint(
    shared: &Shared,
    authorization: Option<&str>,
    body: &[u8],
) -> Response<Full<Bytes>> {
    use base64::Engine as _;
    let form: std::collections::HashMap<String, String> = String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials",
        );
    }
    let basic = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((form_decode(id), form_decode(secret)))
        });
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    }
    let lifetime = shared.lifetime.load(Ordering::SeqCst);
    let n = shared.issued.fetch_add(1, Ordering::SeqCst);
    let mut claims = json!({"sub": id, "client_id": id, "jti": format!("cc-{n}"),
        "exp": now() + lifetime});
    if let Some(scope) = form.get("scope") {
        claims["scope"] = json!(scope);
    }
    let token = mint_token(&shared.issuer, TokenKind::Rs256, &claims);
    response(
        StatusCode::OK,
        "application/json",
        json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}).to_string(),
    )
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Ok(match (method, path.as_str()) {
        (Method::GET, JWKS_PATH) => {
            shared.fetches.fetch_add(1, Ordering::SeqCst);
            let jwks = shared
                .jwks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .to_string();
            response(StatusCode::OK, "application/json", jwks)
        }
        (Method::POST, TOKEN_PATH) => token_endpoint(&shared, authorization.as_deref(), &bytes),
        (Method::POST, "/mint") => {
            let request: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let kind = request
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("rs256");
            match TokenKind::parse(kind) {
                Some(kind) => {
                    let claims = request.get("claims").cloned().unwrap_or_else(|| json!({}));
                    response(
                        StatusCode::OK,
                        "text/plain",
                        mint_token(&shared.issuer, kind, &claims),
                    )
                }
                None => response(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    format!("unknown kind {kind}"),
                ),
            }
        }
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found".to_string()),
    })
}
