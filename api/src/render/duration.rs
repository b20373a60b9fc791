//! Duration strings such as `500ms`, `5s`, `2m`, `1h` and `1m30s`.

/// Most digits of one number in a duration (as in Gateway API durations):
/// no duration can overflow, and the CRD's CEL rule can say the same.
const MAX_DIGITS: usize = 5;

/// Parses a duration into milliseconds.
///
/// The form is one or more `<integer><unit>` pairs with units `ms`, `s`,
/// `m` or `h` (each at most once, largest first, numbers of 1 to 5 digits),
/// or a bare `0`; nothing else, not even surrounding spaces. The CRD's CEL
/// rule (`v1alpha1::rules::DURATION_RE`) accepts exactly the same strings.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("empty duration (use e.g. \"500ms\", \"5s\", \"2m\")".into());
    }
    if text == "0" {
        return Ok(0);
    }
    let bad = || {
        format!(
            "invalid duration {text:?} (use e.g. \"500ms\", \"5s\", \"2m\", \"1m30s\"; at most {MAX_DIGITS} digits per unit)"
        )
    };
    let mut total: u64 = 0;
    let mut rest = text;
    let mut last_rank = u8::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > MAX_DIGITS {
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
        // At most 5 digits per unit: 99999h + 99999m + ... fits easily.
        total += number * unit_ms;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;
    use crate::v1alpha1::rules::DURATION_RE;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1h2m3s4ms"), Ok(3_723_004));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        assert_eq!(
            parse_duration_ms("99999h99999m99999s99999ms"),
            Ok(99_999 * (3_600_000 + 60_000 + 1_000 + 1))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "5", "s", "5 s", "-1s", "1.5s", "5x", "1s1m", "1s1s", "ms", "5sec", "1d", " 0 ",
            " 5s", "5s\n", "100000ms", "000001s",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} should fail");
        }
        assert!(
            parse_duration_ms("99999999999999999999h")
                .unwrap_err()
                .contains("at most 5 digits")
        );
    }

    /// The CRD's CEL rule (`self != '' && self.matches(DURATION_RE)`) and the
    /// parser accept the same strings: every string over a small alphabet up
    /// to 5 characters, plus longer edge cases.
    #[test]
    fn agrees_with_the_crd_rule() {
        let re = regex::Regex::new(DURATION_RE).unwrap();
        let cel = |s: &str| !s.is_empty() && re.is_match(s);
        let alphabet = ['0', '1', '9', 'h', 'm', 's', ' ', '.'];
        let mut strings = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in alphabet {
                    next.push(format!("{s}{c}"));
                }
            }
            strings.extend(next.iter().cloned());
            frontier = next;
        }
        strings.extend(
            [
                "99999h",
                "100000h",
                "12345m6789s",
                "1h2m3s4ms",
                "1ms2s",
                "00000ms",
                "000000ms",
                "1h1h",
                "0ms0",
                "0\n",
            ]
            .map(String::from),
        );
        for s in &strings {
            assert_eq!(
                parse_duration_ms(s).is_ok(),
                cel(s),
                "{s:?}: the renderer and the CRD rule disagree"
            );
        }
    }
}
