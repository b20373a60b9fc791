//! Stage: read the body. The whole request body, bounded by the route's
//! size limit, parsed into its top-level JSON members.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};

use super::RequestBody;
use crate::body::RequestJson;
use crate::error::RequestError;
use crate::runtime::RouteRuntime;

/// Reads and parses the request body.
pub async fn read(
    route: &RouteRuntime,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<RequestJson, RequestError> {
    let limit = route.max_body_bytes;
    if let Some(len) = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(RequestError::BodyTooLarge { limit });
    }
    let bytes: Bytes = match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(RequestError::BodyTooLarge { limit });
        }
        Err(e) => return Err(RequestError::BodyRead(e.to_string())),
    };
    Ok(RequestJson::parse(bytes)?)
}
