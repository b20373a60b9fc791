//! UTC date formats AWS uses: `x-amz-date` (`20150830T123600Z`) and the
//! ISO 8601 expirations of STS and the container credentials endpoint
//! (`2026-12-06T21:30:00Z`, fractional seconds and `+00:00` accepted).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::calendar::{civil_from_days, days_from_civil};

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of a time, in UTC.
pub fn amz_date(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    (date, stamp)
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)`.
pub fn parse_iso8601(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut dp = date.split('-');
    let (y, mo, d) = (dp.next()?, dp.next()?, dp.next()?);
    if dp.next().is_some() || y.len() != 4 || mo.len() != 2 || d.len() != 2 {
        return None;
    }
    let time = time.split_once('.').map_or(time, |(t, frac)| {
        if digits(frac).is_some() || frac.is_empty() {
            t
        } else {
            ""
        }
    });
    let mut tp = time.split(':');
    let (h, mi, sec) = (tp.next()?, tp.next()?, tp.next()?);
    if tp.next().is_some() || h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (y, mo, d) = (i64::from(digits(y)?), digits(mo)?, digits(d)?);
    let (h, mi, sec) = (digits(h)?, digits(mi)?, digits(sec)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates() {
        // 2015-08-30T12:36:00Z, the AWS SigV4 test suite's time.
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), ("20150830".into(), "20150830T123600Z".into()));
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(amz_date(t).1, "20000229T000000Z");
    }

    #[test]
    fn iso8601() {
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        for s in [
            "2015-08-30T12:36:00Z",
            "2015-08-30T12:36:00.000Z",
            "2015-08-30T12:36:00+00:00",
            " 2015-08-30T12:36:00Z ",
        ] {
            assert_eq!(parse_iso8601(s), Some(t), "{s}");
        }
        for s in [
            "2015-08-30 12:36:00Z",
            "2015-08-30T12:36:00",
            "2015-13-30T12:36:00Z",
            "15-08-30T12:36:00Z",
            "2015-08-30T12:36Z",
            "2015-08-30T12:36:00.x1Z",
            "",
        ] {
            assert_eq!(parse_iso8601(s), None, "{s}");
        }
    }
}
