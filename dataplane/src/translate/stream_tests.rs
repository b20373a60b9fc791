//! Stream state machine tests.
