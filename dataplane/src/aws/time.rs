//! UTC date formats AWS uses: `x-amz-date` (`20150830T123600Z`) and the
//! ISO 8601 expirations of STS and the container credentials endpoint
//! (`2026-12-06T21:30:00Z`, fractional seconds and `+00:00` accepted).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Civil date (year, month, day) of a day count since 1970-01-01
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

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
