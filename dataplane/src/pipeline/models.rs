//! `GET /v1/models`: the model names a route serves, in the client's shape.
//!
//! The list holds every exact (non-glob) name a client can ask for on the
//! route: exact aliases, exact rule patterns, and the models declared by the
//! backends the rules reference. Requests carrying `anthropic-version` get
//! the Anthropic shape; everyone else the OpenAI shape.

use http::{HeaderMap, Response, StatusCode};
use serde_json::json;

use crate::response::{self, ResponseBody};
use crate::runtime::RouteRuntime;

/// Builds the models list response.
pub fn list_models(route: &RouteRuntime, headers: &HeaderMap) -> Response<ResponseBody> {
    let body = if headers.contains_key("anthropic-version") {
        let data: Vec<_> = route
            .model_names
            .iter()
            .map(|id| {
                json!({
                    "type": "model",
                    "id": id,
                    "display_name": id,
                    "created_at": "1970-01-01T00:00:00Z",
                })
            })
            .collect();
        json!({
            "data": data,
            "has_more": false,
            "first_id": route.model_names.first(),
            "last_id": route.model_names.last(),
        })
    } else {
        let data: Vec<_> = route
            .model_names
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "switchboard"}))
            .collect();
        json!({"object": "list", "data": data})
    };
    response::json(StatusCode::OK, body.to_string())
}
