//! Stage: route. The model the client asked for, whether it wants a stream,
//! and the routed model after alias resolution. The backend chain itself is
//! selected by the attempt stage from the routed model.

use crate::body::RequestJson;
use crate::error::RequestError;
use crate::runtime::{ApiFormat, RouteRuntime};

/// What routing reads from the body.
pub struct Routed {
    /// The model the client asked for.
    pub requested_model: String,
    /// The model after alias resolution.
    pub routed_model: String,
    /// The client asked for a stream.
    pub stream: bool,
}

/// Reads the model and stream flag and resolves aliases.
pub fn resolve(
    route: &RouteRuntime,
    format: ApiFormat,
    json: &RequestJson,
) -> Result<Routed, RequestError> {
    let requested_model = json.required_str("model")?;
    let stream = match format {
        ApiFormat::CountTokens => false,
        _ => json.optional_bool("stream")?.unwrap_or(false),
    };
    let routed_model = route.aliases.resolve(&requested_model).into_owned();
    Ok(Routed {
        requested_model,
        routed_model,
        stream,
    })
}
