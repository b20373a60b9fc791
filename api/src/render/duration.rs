//! Duration strings such as `500ms`, `5s`, `2m`, `1h` and `1m30s`.

/// Parses a duration into milliseconds.
///
/// The form is one or more `<integer><unit>` pairs with units `ms`, `s`,
/// `m` or `h` (each at most once, largest first), or a bare `0`.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration (use e.g. \"500ms\", \"5s\", \"2m\")".into());
    }
    if s == "0" {
        return Ok(0);
    }
    let bad =
        || format!("invalid duration {text:?} (use e.g. \"500ms\", \"5s\", \"2m\", \"1m30s\")");
    let mut total: u64 = 0;
    let mut rest = s;
    let mut last_rank = u8::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit_ms, rank, len) = if rest.starts_with("ms") {
            (1, 0, 2)
        } else if rest.starts_with('s') {
            (1_000, 1, 1)
        } else if rest.starts_with('m') {
            (60_000, 2, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 3, 1)
        } else {
            return Err(bad());
        };
        if rank >= last_rank {
            return Err(bad());
        }
        last_rank = rank;
        rest = &rest[len..];
        total = number
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1h2m3s4ms"), Ok(3_723_004));
        assert_eq!(parse_duration_ms(" 0 "), Ok(0));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "5", "s", "5 s", "-1s", "1.5s", "5x", "1s1m", "1s1s", "ms", "5sec", "1d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_duration_ms("99999999999999999999h").is_err());
        assert!(
            parse_duration_ms("18446744073709551615h")
                .unwrap_err()
                .contains("too large")
        );
    }
}
