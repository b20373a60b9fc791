//! Helpers shared by the data plane's unit tests (compiled for tests only).

pub mod golden;
