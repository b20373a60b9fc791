//! Calendar windows in UTC: which window a moment falls in, and when it ends.
//!
//! Pure functions of a Unix time in milliseconds. Minute and day windows are
//! fixed-length; weeks start on Monday; months follow the civil calendar.

use crate::calendar::{civil_from_days, days_from_civil};

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

/// A counting window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// One calendar minute.
    Minute,
    /// One UTC day.
    Day,
    /// One ISO week (Monday to Sunday), UTC.
    Week,
    /// One calendar month, UTC.
    Month,
}

/// The window containing a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpan {
    /// A name unique to this window among windows of its kind, used in counter keys.
    pub id: String,
    /// Unix time in milliseconds at which the window ends (exclusive).
    pub end_ms: u64,
}

impl WindowSpan {
    /// Milliseconds from `now_ms` to the end of the window (at least 1).
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.end_ms.saturating_sub(now_ms).max(1)
    }

    /// Whole seconds from `now_ms` to the end of the window, rounded up (at least 1).
    pub fn remaining_secs(&self, now_ms: u64) -> u64 {
        self.remaining_ms(now_ms).div_ceil(1000)
    }
}

impl Window {
    /// The window of this kind containing `now_ms`.
    pub fn span(self, now_ms: u64) -> WindowSpan {
        match self {
            Window::Minute => {
                let i = now_ms / MINUTE_MS;
                WindowSpan {
                    id: format!("m{i}"),
                    end_ms: (i + 1) * MINUTE_MS,
                }
            }
            Window::Day => {
                let i = now_ms / DAY_MS;
                WindowSpan {
                    id: format!("d{i}"),
                    end_ms: (i + 1) * DAY_MS,
                }
            }
            Window::Week => {
                // 1970-01-01 was a Thursday: day 4 (Monday) starts week 1.
                let i = (now_ms / DAY_MS + 3) / 7;
                WindowSpan {
                    id: format!("w{i}"),
                    end_ms: ((i + 1) * 7 - 3) * DAY_MS,
                }
            }
            Window::Month => {
                let (y, m, _) = civil_from_days((now_ms / DAY_MS) as i64);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let end_days = days_from_civil(ny, nm, 1);
                WindowSpan {
                    id: format!("M{y:04}{m:02}"),
                    end_ms: end_days.max(0) as u64 * DAY_MS,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date and time.
    fn at(y: i64, mo: u32, d: u32, h: u64, mi: u64, s: u64) -> u64 {
        days_from_civil(y, mo, d) as u64 * DAY_MS + (h * 3600 + mi * 60 + s) * 1000
    }

    #[test]
    fn minute_and_day_edges() {
        let t = at(2026, 11, 30, 23, 59, 59) + 999;
        assert_eq!(Window::Minute.span(t).end_ms, at(2026, 12, 1, 0, 0, 0));
        assert_ne!(Window::Minute.span(t).id, Window::Minute.span(t + 1).id);
        assert_eq!(Window::Day.span(t).end_ms, at(2026, 12, 1, 0, 0, 0));
        assert_eq!(Window::Day.span(t).remaining_secs(t), 1);
        assert_eq!(Window::Day.span(t + 1).end_ms, at(2026, 12, 2, 0, 0, 0));
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-30 is a Monday.
        let monday = at(2026, 11, 30, 0, 0, 0);
        assert_eq!(Window::Week.span(monday).end_ms, at(2026, 12, 7, 0, 0, 0));
        assert_eq!(Window::Week.span(monday - 1).end_ms, monday);
        assert_eq!(
            Window::Week.span(at(2026, 12, 6, 23, 0, 0)).id,
            Window::Week.span(monday).id
        );
    }

    #[test]
    fn months_follow_the_calendar() {
        let s = Window::Month.span(at(2024, 2, 29, 12, 0, 0));
        assert_eq!(s.id, "M202402");
        assert_eq!(s.end_ms, at(2024, 3, 1, 0, 0, 0));
        let s = Window::Month.span(at(2026, 12, 31, 23, 59, 59));
        assert_eq!(s.id, "M202612");
        assert_eq!(s.end_ms, at(2027, 1, 1, 0, 0, 0));
    }
}
