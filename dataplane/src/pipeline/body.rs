//! Stage: read the body. Runs after the caller was authenticated and
//! admitted, so a refused caller never makes the gateway buffer anything.
//! Every bound on request bodies lives here:
//!
//! - the route's `maxBodyBytes` (413; a declared `content-length` above it is
//!   refused before a byte is read);
//! - the process-wide [`BodyBudget`](crate::bounds::BodyBudget): the bytes
//!   are reserved before they are read (the declared length up front,
//!   chunked bodies chunk by chunk) and held until the request's body is
//!   dropped; a body that does not fit is refused with 503;
//! - the body idle timeout (longest gap between two chunks) and the body
//!   read timeout (whole body), both 408.
//!
//! [`drain`] handles bodies of requests answered before their body was read.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::RequestBody;
use crate::body::RequestJson;
use crate::bounds::{Bounds, DRAIN_LIMIT, DRAIN_TIMEOUT, Reserved};
use crate::error::RequestError;
use crate::runtime::RouteRuntime;

/// A read body and the budget it holds (given back when dropped).
pub struct ReadBody {
    /// The parsed body.
    pub json: RequestJson,
    /// Its reservation in the process-wide body budget.
    pub reserved: Reserved,
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Reads and parses the request body within the route's and the process's bounds.
pub async fn read(
    route: &RouteRuntime,
    bounds: &Bounds,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<ReadBody, RequestError> {
    let bytes = read_bytes(route.max_body_bytes, bounds, headers, body).await?;
    let json = RequestJson::parse(bytes.0)?;
    Ok(ReadBody {
        json,
        reserved: bytes.1,
    })
}

async fn read_bytes(
    limit: u64,
    bounds: &Bounds,
    headers: &HeaderMap,
    mut body: RequestBody,
) -> Result<(Bytes, Reserved), RequestError> {
    let declared = declared_length(headers);
    if declared.is_some_and(|len| len > limit) {
        return Err(RequestError::BodyTooLarge { limit });
    }
    let budget = &bounds.body_budget;
    let mut reserved = Reserved::none();
    if let Some(len) = declared
        && !budget.try_reserve(&mut reserved, len)
    {
        return Err(RequestError::BodyBudgetExhausted);
    }
    let capacity = declared.unwrap_or(16 << 10).min(limit);
    let mut buf = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let end = Instant::now() + bounds.body_read_timeout;
    loop {
        let idle = (Instant::now() + bounds.body_idle_timeout).min(end);
        let frame = match tokio::time::timeout_at(idle, body.frame()).await {
            Err(_) => return Err(RequestError::BodyTimeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(RequestError::BodyRead(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = buf.len() as u64 + data.len() as u64;
        if len > limit {
            return Err(RequestError::BodyTooLarge { limit });
        }
        // Beyond what was reserved (chunked, or more than declared): reserve as it comes.
        let more = len.saturating_sub(reserved.bytes());
        if !budget.try_reserve(&mut reserved, more) {
            return Err(RequestError::BodyBudgetExhausted);
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.freeze(), reserved))
}

/// What to do with the connection after answering a request whose body was
/// not read (HTTP/1 only: on HTTP/2 the stream is simply reset).
///
/// A body of up to [`DRAIN_LIMIT`] bytes is read and discarded (within
/// [`DRAIN_TIMEOUT`]), so the client can send its next request on the same
/// connection — Claude Code and Codex refresh their token after a 401 and
/// retry at once. A larger or slower body is not read: the answer then says
/// `Connection: close`, so the client never reuses a connection the server
/// is about to close. Returns true when the connection must close.
pub async fn drain(headers: &HeaderMap, mut body: RequestBody) -> bool {
    use http_body::Body as _;
    if body.is_end_stream() {
        return false;
    }
    if declared_length(headers).is_some_and(|len| len > DRAIN_LIMIT) {
        return true;
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut seen = 0u64;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => return false,
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    seen += data.len() as u64;
                    if seen > DRAIN_LIMIT {
                        return true;
                    }
                }
            }
            Ok(Some(Err(_))) | Err(_) => return true,
        }
    }
}
