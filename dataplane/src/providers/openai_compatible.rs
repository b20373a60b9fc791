//! Any server speaking OpenAI Chat Completions (vLLM, Ollama, LiteLLM, …):
//! the [`super::openai`] provider, except that Responses requests are
//! translated to Chat Completions (such servers rarely serve the Responses
//! API) and translated requests carry `max_tokens` instead of
//! `max_completion_tokens` (older servers only know the former).

use switchboard_proto as pb;

use super::openai::OpenAi;

/// An OpenAI-compatible backend from the snapshot; `credential` is its API
/// key (sent as a bearer token).
pub fn from_proto(b: &pb::Backend, credential: Option<String>) -> Result<OpenAi, String> {
    OpenAi::build(b, credential, true)
}
