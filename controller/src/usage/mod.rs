//! Live usage of AITeams: data planes report what they counted on their
//! snapshot streams ([`switchboard_proto::UsageReport`]); every replica
//! keeps the latest report of each data plane process in its [`Ledger`]
//! (also after the process left, until its windows end) and publishes it
//! in its view Lease; the Lease holder sums every replica's records
//! ([`aggregate`]) and writes each AITeam's `status.usage` ([`writer`]), at
//! most once per interval and only when it changed.
//!
//! Why reports and not the counter store: the data planes' limits live in
//! memory (the default) or in Redis, and the controller should show usage
//! in both cases without a connection to either; a report is a complete
//! state, not a delta, so a lost or repeated report changes nothing.

mod aggregate;
mod ledger;
pub mod writer;

pub use aggregate::{aggregate, time};
pub use ledger::{Ledger, MAX_DEPARTED, SharedLedger, TeamRecord, UsageRecord};

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
