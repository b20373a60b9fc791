//! What a request is expected to use, reserved at admission (see
//! `docs/teams.md`, "What is charged, and when").
//!
//! - Input: the request body's size in bytes divided by
//!   [`BYTES_PER_TOKEN`] (rounded up). Text runs 3-4 bytes per token and
//!   JSON framing adds bytes, so this is at or above the real count for
//!   most prompts; images and files are charged by their encoded size.
//! - Output: the request's own cap — `max_tokens` (Chat Completions,
//!   Messages), `max_completion_tokens` (Chat Completions) or
//!   `max_output_tokens` (Responses) — else [`DEFAULT_OUTPUT_TOKENS`].
//! - Cost: those tokens at the route's price of the routed model (input and
//!   output prices; a model without a price costs 0).

use super::pricing::PriceTable;
use crate::body::RequestJson;
use crate::limits::Estimate;
use crate::wire::usage::Usage;

/// Request bytes counted as one input token.
pub const BYTES_PER_TOKEN: u64 = 3;

/// Output tokens expected of a request that states no cap.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 4096;

/// The expected tokens and cost of `json` answered by `model`.
pub fn estimate(json: &RequestJson, prices: &PriceTable, model: &str) -> Estimate {
    let input = (json.bytes().len() as u64).div_ceil(BYTES_PER_TOKEN);
    let output = output_cap(json).unwrap_or(DEFAULT_OUTPUT_TOKENS);
    let usage = Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    };
    Estimate {
        tokens: input.saturating_add(output),
        micro_usd: prices.cost_micro_usd(model, &usage),
    }
}

/// The output cap the request states, if any.
fn output_cap(json: &RequestJson) -> Option<u64> {
    ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .into_iter()
        .find_map(|key| json.raw(key).and_then(|v| v.trim().parse::<u64>().ok()))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn body(v: serde_json::Value) -> RequestJson {
        RequestJson::parse(Bytes::from(v.to_string())).unwrap()
    }

    #[test]
    fn the_stated_cap_and_the_prompt_size_are_expected() {
        let prices = PriceTable::new(&[switchboard_proto::ModelPrice {
            model: "m".into(),
            input: 1.0,
            output: 2.0,
            cache_read: 0.0,
            cache_write: 0.0,
        }]);
        for key in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
            let j = body(json!({"model": "m", key: 300, "messages": []}));
            let input = (j.bytes().len() as u64).div_ceil(BYTES_PER_TOKEN);
            let e = estimate(&j, &prices, "m");
            assert_eq!(e.tokens, input + 300, "{key}");
            assert_eq!(e.micro_usd, input + 600, "{key}");
        }
        let j = body(json!({"model": "m"}));
        assert_eq!(
            estimate(&j, &prices, "unpriced").tokens,
            (j.bytes().len() as u64).div_ceil(BYTES_PER_TOKEN) + DEFAULT_OUTPUT_TOKENS
        );
        assert_eq!(estimate(&j, &prices, "unpriced").micro_usd, 0);
    }
}
