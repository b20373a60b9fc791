//! [`UsageBook`]: what this process counted for each AITeam in the current
//! windows — requests this minute, tokens and refusals today, spend in the
//! budget period, last seen — for the controller (a [`pb::UsageReport`] on
//! the snapshot stream, summed there across data planes into the AITeam's
//! status) and for the admin port's `/usage` (standalone mode).
//!
//! The numbers are this process's own tallies, kept next to the limiter's
//! counters, not read back from the counter store: summed over every data
//! plane process they give the team's usage whichever store holds the
//! limits (each request is counted by exactly the process that served it).
//! Windows are those of the limits ([`Window`]), read from the same
//! [`WallClock`]. A count whose window ended reads 0, and a team whose
//! windows all ended is forgotten, so the book holds at most the AITeams
//! served this month.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_proto as pb;

use crate::limits::{WallClock, Window, period_name};

/// One team's counts, each with the end of its window (Unix ms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    requests: u64,
    minute_end: u64,
    tokens: u64,
    refusals: u64,
    day_end: u64,
    micro_usd: u64,
    period: Option<Window>,
    period_end: u64,
    last_seen: u64,
}

impl Tally {
    /// Resets the counts whose window ended by `now`, moving to the current
    /// windows (and to `period` for the spend).
    fn roll(&mut self, now: u64, period: Window) {
        if now >= self.minute_end {
            self.requests = 0;
            self.minute_end = Window::Minute.span(now).end_ms;
        }
        if now >= self.day_end {
            self.tokens = 0;
            self.refusals = 0;
            self.day_end = Window::Day.span(now).end_ms;
        }
        if now >= self.period_end || self.period != Some(period) {
            self.micro_usd = 0;
            self.period = Some(period);
            self.period_end = period.span(now).end_ms;
        }
    }

    /// The counts as of `now` (0 for windows that ended).
    fn current(&self, now: u64) -> Tally {
        let mut t = self.clone();
        if now >= t.minute_end {
            t.requests = 0;
        }
        if now >= t.day_end {
            t.tokens = 0;
            t.refusals = 0;
        }
        if now >= t.period_end {
            t.micro_usd = 0;
        }
        t
    }

    fn is_empty(&self) -> bool {
        self.requests == 0 && self.tokens == 0 && self.refusals == 0 && self.micro_usd == 0
    }
}

/// One team's usage as of a moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamUsage {
    /// `namespace/name` of the AITeam.
    pub team: String,
    /// Requests (refused ones included) in the current minute.
    pub requests_this_minute: u64,
    /// Tokens charged today (UTC).
    pub tokens_today: u64,
    /// Requests refused by the team's limits today.
    pub refusals_today: u64,
    /// Spend in the current period, in millionths of a US dollar.
    pub micro_usd: u64,
    /// The spend's period: `day`, `week` or `month`.
    pub period: &'static str,
    /// When a request of the team was last seen (Unix ms).
    pub last_seen_unix_ms: u64,
}

/// Per-AITeam usage of this process. Every method takes a short lock and
/// never awaits.
#[derive(Debug)]
pub struct UsageBook {
    clock: WallClock,
    instance: String,
    sequence: AtomicU64,
    teams: Mutex<HashMap<String, Tally>>,
}

impl UsageBook {
    /// An empty book reading time from `clock`, with a random instance id.
    pub fn new(clock: WallClock) -> Self {
        Self {
            clock,
            instance: format!("{:016x}", fastrand::u64(..)),
            sequence: AtomicU64::new(0),
            teams: Mutex::new(HashMap::new()),
        }
    }

    /// This process's instance id (new at every start).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn with(&self, team: &str, period: Window, f: impl FnOnce(&mut Tally)) {
        let now = self.clock.now_ms();
        let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
        let tally = match teams.get_mut(team) {
            Some(t) => t,
            None => teams.entry(team.to_string()).or_default(),
        };
        tally.roll(now, period);
        tally.last_seen = now;
        f(tally);
    }

    /// Counts a request of `team` that none of its limits refused (whose spend is counted per `period`).
    pub fn request(&self, team: &str, period: Window) {
        self.with(team, period, |t| t.requests += 1);
    }

    /// Counts a request of `team` refused by one of its limits.
    pub fn refused(&self, team: &str, period: Window) {
        self.with(team, period, |t| {
            t.requests += 1;
            t.refusals += 1;
        });
    }

    /// Adds a finished request's tokens and spend.
    pub fn charged(&self, team: &str, period: Window, tokens: u64, micro_usd: u64) {
        if tokens == 0 && micro_usd == 0 {
            return;
        }
        self.with(team, period, |t| {
            t.tokens = t.tokens.saturating_add(tokens);
            t.micro_usd = t.micro_usd.saturating_add(micro_usd);
        });
    }

    /// Every team with something counted in a current window, sorted by
    /// team; teams whose windows all ended are forgotten.
    pub fn usage(&self) -> Vec<TeamUsage> {
        let now = self.clock.now_ms();
        let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
        teams.retain(|_, t| !t.current(now).is_empty());
        let mut out: Vec<TeamUsage> = teams
            .iter()
            .map(|(team, t)| {
                let c = t.current(now);
                TeamUsage {
                    team: team.clone(),
                    requests_this_minute: c.requests,
                    tokens_today: c.tokens,
                    refusals_today: c.refusals,
                    micro_usd: c.micro_usd,
                    period: period_name(c.period.unwrap_or(Window::Month)),
                    last_seen_unix_ms: c.last_seen,
                }
            })
            .collect();
        out.sort_by(|a, b| a.team.cmp(&b.team));
        out
    }

    /// The report for the controller: every team of [`UsageBook::usage`]
    /// with the ends of its windows, under a new sequence number.
    pub fn report(&self) -> pb::UsageReport {
        let now = self.clock.now_ms();
        let teams = {
            let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
            teams.retain(|_, t| !t.current(now).is_empty());
            let mut v: Vec<pb::TeamUsage> = teams
                .iter()
                .map(|(team, t)| {
                    let c = t.current(now);
                    pb::TeamUsage {
                        team: team.clone(),
                        requests: c.requests,
                        minute_end_unix_ms: c.minute_end,
                        tokens: c.tokens,
                        refusals: c.refusals,
                        day_end_unix_ms: c.day_end,
                        micro_usd: c.micro_usd,
                        period_end_unix_ms: c.period_end,
                        period: period_name(c.period.unwrap_or(Window::Month)).to_string(),
                        last_seen_unix_ms: c.last_seen,
                    }
                })
                .collect();
            v.sort_by(|a, b| a.team.cmp(&b.team));
            v
        };
        pb::UsageReport {
            instance: self.instance.clone(),
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            teams,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: u64 = 1_764_460_800_000; // 2025-11-30T00:00:00Z, a Sunday
    const MID_MONTH: u64 = T0 - 18 * 86_400_000; // 2025-11-12T00:00:00Z

    #[tokio::test(start_paused = true)]
    async fn counts_requests_refusals_tokens_and_spend_in_their_windows() {
        let book = UsageBook::new(WallClock::starting_at(MID_MONTH + 30_000));
        book.request("ns/a", Window::Month);
        book.request("ns/a", Window::Month);
        book.refused("ns/a", Window::Month);
        book.charged("ns/a", Window::Month, 120, 7_500);
        let u = &book.usage()[0];
        assert_eq!(
            (
                u.requests_this_minute,
                u.refusals_today,
                u.tokens_today,
                u.micro_usd
            ),
            (3, 1, 120, 7_500)
        );
        assert_eq!(u.period, "month");
        assert_eq!(u.last_seen_unix_ms, MID_MONTH + 30_000);

        // The minute ends: requests read 0, the day's counts stay.
        tokio::time::advance(Duration::from_secs(30)).await;
        let u = &book.usage()[0];
        assert_eq!((u.requests_this_minute, u.tokens_today), (0, 120));
        // The day ends: tokens and refusals read 0; the month's spend stays.
        tokio::time::advance(Duration::from_secs(86_400)).await;
        let u = &book.usage()[0];
        assert_eq!(
            (u.tokens_today, u.refusals_today, u.micro_usd),
            (0, 0, 7_500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_team_whose_windows_all_ended_is_forgotten() {
        let book = UsageBook::new(WallClock::starting_at(T0));
        book.charged("ns/a", Window::Day, 10, 1);
        assert_eq!(book.usage().len(), 1);
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert!(book.usage().is_empty());
        assert!(book.report().teams.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn reports_carry_window_ends_and_a_growing_sequence() {
        let book = UsageBook::new(WallClock::starting_at(T0 + 1_000));
        book.charged("ns/b", Window::Week, 5, 3);
        book.request("ns/a", Window::Day);
        let r = book.report();
        assert_eq!(r.instance, book.instance());
        assert_eq!(r.sequence, 1);
        assert_eq!(
            r.teams.iter().map(|t| t.team.as_str()).collect::<Vec<_>>(),
            ["ns/a", "ns/b"]
        );
        let b = &r.teams[1];
        assert_eq!(b.minute_end_unix_ms, T0 + 60_000);
        assert_eq!(b.day_end_unix_ms, T0 + 86_400_000);
        // 2025-11-30 is a Sunday: the week ends the next midnight.
        assert_eq!(b.period_end_unix_ms, T0 + 86_400_000);
        assert_eq!(b.period, "week");
        assert_eq!(book.report().sequence, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_budget_period_starts_the_spend_afresh() {
        let book = UsageBook::new(WallClock::starting_at(T0));
        book.charged("ns/a", Window::Month, 0, 100);
        book.charged("ns/a", Window::Day, 0, 5);
        let u = &book.usage()[0];
        assert_eq!((u.micro_usd, u.period), (5, "day"));
    }
}
