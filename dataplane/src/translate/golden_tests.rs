//! Golden fixtures.
