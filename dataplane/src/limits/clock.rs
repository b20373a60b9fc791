//! Wall-clock time driven by tokio's clock, so tests can pause and advance
//! it across minute, day and month boundaries.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Unix time in milliseconds: a wall-clock reading taken once plus the
/// tokio time elapsed since.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base_unix_ms: u64,
    base: Instant,
}

impl WallClock {
    /// A clock reading the system time now.
    pub fn system() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self::starting_at(ms)
    }

    /// A clock that reads `unix_ms` now and advances with tokio's clock.
    pub fn starting_at(unix_ms: u64) -> Self {
        Self {
            base_unix_ms: unix_ms,
            base: Instant::now(),
        }
    }

    /// The current Unix time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.base_unix_ms + self.base.elapsed().as_millis() as u64
    }
}
