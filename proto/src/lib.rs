//! The snapshot protocol between the Switchboard controller and data planes.
//!
//! `proto/snapshot.proto` is the source of truth. The Rust code in `src/gen/`
//! is generated from it with a pure-Rust protobuf compiler (no system
//! `protoc`) and committed; `tests/codegen.rs` regenerates it and fails when
//! the committed copy drifts (`UPDATE_GENERATED=1 cargo test -p
//! switchboard-proto` rewrites it).

/// Messages and service of package `switchboard.snapshot.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!("gen/switchboard.snapshot.v1.rs");
}

pub use v1::*;
