//! Model prices in USD per million tokens, and the cost of one answer.
//!
//! A route's own `pricing` entries come first, then the built-in table;
//! the first entry whose pattern matches the routed model wins. A model
//! no entry matches costs nothing (and is logged at debug level).

use switchboard_proto as pb;

use crate::routing::glob_matches;
use crate::wire::usage::Usage;

/// Price of one model, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Uncached input.
    pub input: f64,
    /// Output.
    pub output: f64,
    /// Cache read.
    pub cache_read: f64,
    /// Cache write.
    pub cache_write: f64,
}

/// Built-in prices (list prices, USD per million tokens). More specific
/// patterns come first.
pub const BUILTIN_PRICES: &[(&str, Price)] = &[
    (
        "claude-opus-4-5*",
        Price {
            input: 5.0,
            output: 25.0,
            cache_read: 0.5,
            cache_write: 6.25,
        },
    ),
    (
        "claude-opus-4*",
        Price {
            input: 15.0,
            output: 75.0,
            cache_read: 1.5,
            cache_write: 18.75,
        },
    ),
    (
        "claude-sonnet-4*",
        Price {
            input: 3.0,
            output: 15.0,
            cache_read: 0.3,
            cache_write: 3.75,
        },
    ),
    (
        "claude-3-7-sonnet*",
        Price {
            input: 3.0,
            output: 15.0,
            cache_read: 0.3,
            cache_write: 3.75,
        },
    ),
    (
        "claude-3-5-sonnet*",
        Price {
            input: 3.0,
            output: 15.0,
            cache_read: 0.3,
            cache_write: 3.75,
        },
    ),
    (
        "claude-haiku-4*",
        Price {
            input: 1.0,
            output: 5.0,
            cache_read: 0.1,
            cache_write: 1.25,
        },
    ),
    (
        "claude-3-5-haiku*",
        Price {
            input: 0.8,
            output: 4.0,
            cache_read: 0.08,
            cache_write: 1.0,
        },
    ),
    (
        "claude-3-haiku*",
        Price {
            input: 0.25,
            output: 1.25,
            cache_read: 0.03,
            cache_write: 0.3,
        },
    ),
    (
        "gpt-5-nano*",
        Price {
            input: 0.05,
            output: 0.4,
            cache_read: 0.005,
            cache_write: 0.05,
        },
    ),
    (
        "gpt-5-mini*",
        Price {
            input: 0.25,
            output: 2.0,
            cache_read: 0.025,
            cache_write: 0.25,
        },
    ),
    (
        "gpt-5*",
        Price {
            input: 1.25,
            output: 10.0,
            cache_read: 0.125,
            cache_write: 1.25,
        },
    ),
    (
        "gpt-4.1-nano*",
        Price {
            input: 0.1,
            output: 0.4,
            cache_read: 0.025,
            cache_write: 0.1,
        },
    ),
    (
        "gpt-4.1-mini*",
        Price {
            input: 0.4,
            output: 1.6,
            cache_read: 0.1,
            cache_write: 0.4,
        },
    ),
    (
        "gpt-4.1*",
        Price {
            input: 2.0,
            output: 8.0,
            cache_read: 0.5,
            cache_write: 2.0,
        },
    ),
    (
        "gpt-4o-mini*",
        Price {
            input: 0.15,
            output: 0.6,
            cache_read: 0.075,
            cache_write: 0.15,
        },
    ),
    (
        "gpt-4o*",
        Price {
            input: 2.5,
            output: 10.0,
            cache_read: 1.25,
            cache_write: 2.5,
        },
    ),
    (
        "o4-mini*",
        Price {
            input: 1.1,
            output: 4.4,
            cache_read: 0.275,
            cache_write: 1.1,
        },
    ),
    (
        "o3-mini*",
        Price {
            input: 1.1,
            output: 4.4,
            cache_read: 0.55,
            cache_write: 1.1,
        },
    ),
    (
        "o3*",
        Price {
            input: 2.0,
            output: 8.0,
            cache_read: 0.5,
            cache_write: 2.0,
        },
    ),
];

/// A route's price table: its own entries, then the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    overrides: Vec<(String, Price)>,
}

impl PriceTable {
    /// The table of a route.
    pub fn new(route: &[pb::ModelPrice]) -> Self {
        let overrides = route
            .iter()
            .map(|p| {
                let price = Price {
                    input: p.input,
                    output: p.output,
                    cache_read: p.cache_read,
                    cache_write: p.cache_write,
                };
                (p.model.clone(), price)
            })
            .collect();
        Self { overrides }
    }

    /// The price of `model`, if any entry matches.
    pub fn price(&self, model: &str) -> Option<Price> {
        self.overrides
            .iter()
            .map(|(p, price)| (p.as_str(), *price))
            .chain(BUILTIN_PRICES.iter().copied())
            .find(|(pattern, _)| glob_matches(pattern, model))
            .map(|(_, price)| price)
    }

    /// What `usage` of `model` costs, in micro-USD (rounded up).
    pub fn cost_micro_usd(&self, model: &str, usage: &Usage) -> u64 {
        let Some(p) = self.price(model) else {
            tracing::debug!(model, "no price for model; counted as free");
            return 0;
        };
        // USD per million tokens is micro-USD per token.
        let micro = usage.input_tokens as f64 * p.input
            + usage.output_tokens as f64 * p.output
            + usage.cache_read_tokens as f64 * p.cache_read
            + usage.cache_write_tokens as f64 * p.cache_write;
        if micro.is_finite() && micro > 0.0 {
            micro.ceil() as u64
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, cr: u64, cw: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cache_read_tokens: cr,
            cache_write_tokens: cw,
            reasoning_tokens: 0,
        }
    }

    #[test]
    fn builtin_prices_cost_every_token_kind() {
        let t = PriceTable::default();
        // 1M input at $3 + 100k output at $15 + 1M cache read at $0.30 + 100k cache write at $3.75.
        let c = t.cost_micro_usd(
            "claude-sonnet-4-20250514",
            &usage(1_000_000, 100_000, 1_000_000, 100_000),
        );
        assert_eq!(c, 3_000_000 + 1_500_000 + 300_000 + 375_000);
        assert_eq!(t.price("claude-opus-4-5-20251101").unwrap().input, 5.0);
        assert_eq!(t.price("claude-opus-4-1").unwrap().input, 15.0);
        assert_eq!(t.price("gpt-4o-mini").unwrap().input, 0.15);
        assert_eq!(t.cost_micro_usd("my-local-model", &usage(10, 10, 0, 0)), 0);
    }

    #[test]
    fn route_entries_come_first_and_round_up() {
        let t = PriceTable::new(&[pb::ModelPrice {
            model: "gpt-*".into(),
            input: 0.5,
            output: 1.0,
            cache_read: 0.0,
            cache_write: 0.0,
        }]);
        assert_eq!(t.price("gpt-4o").unwrap().input, 0.5);
        assert_eq!(t.cost_micro_usd("gpt-4o", &usage(3, 0, 0, 0)), 2);
    }
}
