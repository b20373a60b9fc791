//! A minimal HTTP/1.1 client for the harness: a one-off probe, and time to
//! first byte and total time of streamed answers, measured one
//! request at a time over one kept-alive connection (wrk reports only the
//! time to the complete answer).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::report::StreamTiming;
use crate::stats::percentile;

/// Sends `count` POSTs of `body` to `path` (after `warmup` unmeasured ones)
/// and measures each until its first body byte and its end.
pub async fn measure_stream(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    body: Bytes,
    warmup: usize,
    count: usize,
) -> anyhow::Result<StreamTiming> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut ttfb = Vec::with_capacity(count);
    let mut total = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let mut req = Request::post(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = req.body(Full::new(body.clone()))?;
        sender.ready().await?;
        let started = Instant::now();
        let resp = sender.send_request(req).await?;
        if !resp.status().is_success() {
            bail!("{addr}{path} answered {}", resp.status());
        }
        let mut body = resp.into_body();
        let mut first: Option<Duration> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if first.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                first = Some(started.elapsed());
            }
        }
        let end = started.elapsed();
        if i >= warmup {
            ttfb.push(first.unwrap_or(end));
            total.push(end);
        }
    }
    Ok(StreamTiming {
        ttfb_p50: percentile(&ttfb, 50.0),
        ttfb_p99: percentile(&ttfb, 99.0),
        total_p50: percentile(&total, 50.0),
        total_p99: percentile(&total, 99.0),
    })
}

/// The status of one POST of `body` to `path` on `addr`.
pub async fn probe(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> anyhow::Result<http::StatusCode> {
    send_once(addr, http::Method::POST, path, headers, body).await
}

/// Sends one request on a new connection and reads its answer to the end.
pub async fn send_once(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> anyhow::Result<http::StatusCode> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let resp = sender.send_request(req.body(Full::new(body))?).await?;
    let status = resp.status();
    resp.into_body().collect().await?;
    Ok(status)
}
