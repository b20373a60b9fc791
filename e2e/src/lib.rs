//! End-to-end test support for Switchboard.
