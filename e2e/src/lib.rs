//! End-to-end test support for Switchboard: mock provider upstreams speaking the OpenAI,
//! Anthropic, Bedrock, Gemini, Vertex AI and Azure OpenAI wire formats, a JWT issuer with a JWKS, a process harness for the real gateway
//! and controller binaries, and small HTTP/SSE client helpers.

pub mod agents;
pub mod azure_wire;
pub mod bedrock_wire;
pub mod behaviour;
pub mod chart;
pub mod chart_install;
pub mod chart_rbac;
pub mod chart_scenario;
pub mod chart_tls;
pub mod chart_values;
pub mod client;
pub mod config;
pub mod controller;
pub mod dashboard;
pub mod google_wire;
pub mod harness;
pub mod jwt_issuer;
pub mod kube;
pub mod kube_scenario;
pub mod local_pod;
pub mod mock_upstream;
pub mod pki;
pub mod probe;
pub mod responses_wire;
pub mod stack;
pub mod tcp_proxy;
pub mod wire;

pub use behaviour::Behaviour;
pub use client::{
    SseEvent, StreamResult, get, post_json, post_raw, post_stream, post_stream_partial,
};
pub use controller::Controller;
pub use harness::{Gateway, wait_until, write_config};
pub use jwt_issuer::JwtIssuer;
pub use mock_upstream::{MockUpstream, RecordedRequest};
pub use stack::Stack;
pub use wire::Flavor;
