//! `GET /v1/models` in the caller's own shape.
//!
//! Which shape a request wants ([`Shape::of`]):
//! - **Codex** when the query has `client_version` (Codex CLI adds it to
//!   every models call): `{"models": [...]}`, Codex's model-metadata list.
//! - **Anthropic** when the request carries `anthropic-version` (every
//!   Anthropic SDK, and Claude Code's gateway model discovery, send it):
//!   `{"data": [{type, id, display_name, created_at}], "has_more",
//!   "first_id", "last_id"}`, paginated with `limit` (1–1000, default 20),
//!   `after_id` and `before_id` as the Anthropic API is.
//! - **OpenAI** otherwise: `{"object": "list", "data": [{id, object,
//!   created, owned_by}]}`, unpaginated.
//!
//! Codex takes each entry of its list as the *whole* description of that
//! model, system prompt included (`base_instructions`, required): an entry
//! replaces the metadata Codex ships for the slug, or its fallback for an
//! unknown slug. Checked with Codex 0.169.0: an entry with an empty
//! `base_instructions` makes Codex send no system prompt at all. The gateway
//! cannot supply Codex's own prompt, so it answers the well-formed empty
//! list: Codex then decodes the answer (no `failed to decode models
//! response` error) and keeps its own metadata. Context windows reach Codex
//! through its `model_context_window` setting instead (see
//! `docs/routing.md`).

use http::HeaderMap;
use serde_json::{Value, json};

use super::{CatalogEntry, ModelCatalog};
use crate::translate::TranslateError;

/// `created_at` of every Anthropic entry (the gateway has no release dates).
const EPOCH_RFC3339: &str = "1970-01-01T00:00:00Z";
/// Anthropic's default page size.
const DEFAULT_LIMIT: usize = 20;
/// Anthropic's largest page size.
const MAX_LIMIT: usize = 1000;

/// The list shape a caller understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// OpenAI `{"object":"list","data":[…]}`.
    OpenAI,
    /// Anthropic `{"data":[…],"has_more","first_id","last_id"}`.
    Anthropic,
    /// Codex CLI `{"models":[…]}`.
    Codex,
}

impl Shape {
    /// The shape for a request on a provider-prefixed path: `/anthropic/v1/models`
    /// is always the Anthropic list; `/openai/v1/models` never is (Codex's
    /// list when the query asks for it, else OpenAI's). Unprefixed: [`Shape::of`].
    pub fn on_surface(
        surface: Option<crate::wire::Dialect>,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Shape {
        match (surface, Shape::of(query, headers)) {
            (Some(crate::wire::Dialect::Anthropic), _) => Shape::Anthropic,
            (Some(crate::wire::Dialect::OpenAI), Shape::Anthropic) => Shape::OpenAI,
            (_, shape) => shape,
        }
    }

    /// The shape asked for by a request with this query and these headers.
    pub fn of(query: Option<&str>, headers: &HeaderMap) -> Shape {
        if query_param(query, "client_version").is_some() {
            Shape::Codex
        } else if headers.contains_key("anthropic-version") {
            Shape::Anthropic
        } else {
            Shape::OpenAI
        }
    }
}

/// The value of `name` in a query string (no percent-decoding: the values
/// used here are ids and numbers).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Renders `catalog` for a request with `query`, in `shape`. Bad pagination
/// parameters are the client's error.
pub fn render(
    catalog: &ModelCatalog,
    shape: Shape,
    query: Option<&str>,
) -> Result<Value, TranslateError> {
    Ok(match shape {
        Shape::OpenAI => json!({
            "object": "list",
            "data": catalog.entries().iter().map(|e| json!({
                "id": e.id, "object": "model", "created": 0, "owned_by": "switchboard",
            })).collect::<Vec<_>>(),
        }),
        Shape::Codex => json!({"models": []}),
        Shape::Anthropic => anthropic_page(catalog.entries(), query)?,
    })
}

fn anthropic_page(entries: &[CatalogEntry], query: Option<&str>) -> Result<Value, TranslateError> {
    let limit = match query_param(query, "limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                TranslateError::invalid(
                    "limit",
                    format!("must be an integer from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let position = |field: &str, id: &str| {
        entries
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| TranslateError::invalid(field, format!("unknown model id `{id}`")))
    };
    let after = query_param(query, "after_id").filter(|v| !v.is_empty());
    let before = query_param(query, "before_id").filter(|v| !v.is_empty());
    let (page, has_more) = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(TranslateError::invalid(
                "after_id",
                "give at most one of after_id and before_id",
            ));
        }
        (Some(id), None) => {
            let start = position("after_id", id)? + 1;
            let end = (start + limit).min(entries.len());
            (&entries[start..end], end < entries.len())
        }
        (None, Some(id)) => {
            let end = position("before_id", id)?;
            let start = end.saturating_sub(limit);
            (&entries[start..end], start > 0)
        }
        (None, None) => {
            let end = limit.min(entries.len());
            (&entries[..end], end < entries.len())
        }
    };
    Ok(json!({
        "data": page.iter().map(|e| json!({
            "type": "model",
            "id": e.id,
            "display_name": e.display_name(),
            "created_at": EPOCH_RFC3339,
            "description": e.description(),
        })).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|e| e.id.as_str()),
        "last_id": page.last().map(|e| e.id.as_str()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn catalog(ids: &[&str]) -> ModelCatalog {
        ModelCatalog {
            entries: ids
                .iter()
                .map(|id| CatalogEntry {
                    id: (*id).into(),
                    target: (*id).into(),
                    context_window: None,
                })
                .collect(),
        }
    }

    #[test]
    fn the_shape_follows_the_caller() {
        let mut anthropic = HeaderMap::new();
        anthropic.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        assert_eq!(
            Shape::of(Some("client_version=0.169.0"), &HeaderMap::new()),
            Shape::Codex
        );
        assert_eq!(
            Shape::of(Some("client_version=0.169.0"), &anthropic),
            Shape::Codex
        );
        assert_eq!(Shape::of(Some("limit=1000"), &anthropic), Shape::Anthropic);
        assert_eq!(Shape::of(None, &HeaderMap::new()), Shape::OpenAI);
        assert_eq!(Shape::of(Some("limit=5"), &HeaderMap::new()), Shape::OpenAI);
    }

    #[test]
    fn a_provider_prefix_fixes_the_shape() {
        use crate::wire::Dialect;
        let mut anthropic = HeaderMap::new();
        anthropic.insert("anthropic-version", "2023-06-01".parse().unwrap());
        let none = HeaderMap::new();
        let on = Shape::on_surface;
        assert_eq!(on(Some(Dialect::Anthropic), None, &none), Shape::Anthropic);
        assert_eq!(
            on(Some(Dialect::Anthropic), Some("client_version=1"), &none),
            Shape::Anthropic
        );
        assert_eq!(on(Some(Dialect::OpenAI), None, &anthropic), Shape::OpenAI);
        assert_eq!(
            on(Some(Dialect::OpenAI), Some("client_version=1"), &none),
            Shape::Codex
        );
        assert_eq!(on(None, None, &anthropic), Shape::Anthropic);
    }

    #[test]
    fn anthropic_pages_forward_and_backward() {
        let c = catalog(&["a", "b", "c", "d", "e"]);
        let page = |q: &str| render(&c, Shape::Anthropic, Some(q)).unwrap();
        let ids = |v: &Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect()
        };
        let first = page("limit=2");
        assert_eq!(ids(&first), ["a", "b"]);
        assert_eq!(
            (
                first["has_more"].clone(),
                first["first_id"].clone(),
                first["last_id"].clone()
            ),
            (json!(true), json!("a"), json!("b"))
        );
        let next = page("limit=2&after_id=b");
        assert_eq!(ids(&next), ["c", "d"]);
        assert_eq!(next["has_more"], true);
        let last = page("limit=2&after_id=d");
        assert_eq!(ids(&last), ["e"]);
        assert_eq!(last["has_more"], false);
        let back = page("limit=2&before_id=c");
        assert_eq!(ids(&back), ["a", "b"]);
        assert_eq!(back["has_more"], false);
        let all = page("limit=1000");
        assert_eq!(ids(&all).len(), 5);
        assert_eq!(all["has_more"], false);
        assert_eq!(all["data"][0]["type"], "model");
        assert_eq!(all["data"][0]["created_at"], EPOCH_RFC3339);
        let empty = render(&catalog(&[]), Shape::Anthropic, None).unwrap();
        assert_eq!(
            empty,
            json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
        );
    }

    #[test]
    fn bad_pagination_is_the_clients_error() {
        let c = catalog(&["a"]);
        for q in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "after_id=zz",
            "after_id=a&before_id=a",
        ] {
            assert!(render(&c, Shape::Anthropic, Some(q)).is_err(), "{q}");
        }
    }

    #[test]
    fn openai_and_codex_shapes() {
        let c = catalog(&["gpt-4.1"]);
        assert_eq!(
            render(&c, Shape::OpenAI, None).unwrap(),
            json!({"object":"list","data":[{"id":"gpt-4.1","object":"model","created":0,"owned_by":"switchboard"}]})
        );
        assert_eq!(
            render(&c, Shape::Codex, Some("client_version=0.169.0")).unwrap(),
            json!({"models": []})
        );
    }
}
