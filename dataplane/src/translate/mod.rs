//! Translation between client wire formats and provider wire formats.
//!
//! - [`responses`]: the OpenAI Responses API (`POST /v1/responses`) to and
//!   from Chat Completions and Anthropic Messages.

pub mod responses;
