//! Golden fixtures (filled in below).
