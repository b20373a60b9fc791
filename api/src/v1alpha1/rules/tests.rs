//! The regular expressions of the CEL rules say what the renderer's
//! hand-written twins say. The API server runs them with RE2 and the
//! `regex` crate runs them here; both read these simple classes alike.

use regex::Regex;

use super::*;
use crate::render::{glob_error, is_team_name, is_valid_header_name};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap()
}

/// Every character up to U+3100 (past the last whitespace, U+3000) and a
/// few beyond.
fn chars() -> impl Iterator<Item = char> {
    (0..0x3100u32)
        .chain([0xfeff, 0x1_f600])
        .filter_map(char::from_u32)
}

#[test]
fn whitespace_is_rusts() {
    let ws = re(WHITESPACE_RE);
    for c in chars() {
        let s = c.to_string();
        assert_eq!(ws.is_match(&s), c.is_whitespace(), "{c:?}");
    }
}

#[test]
fn url_characters_agree() {
    let url = re(URL_CHARS_RE);
    for c in chars() {
        let s = format!("https://a{c}b");
        let renderer = s.bytes().all(crate::render::is_url_char);
        assert_eq!(url.is_match(&s), renderer, "{c:?}");
    }
}

#[test]
fn reserved_claim_headers_agree() {
    let [_, reserved] = [header_name(), claim_header_not_reserved()];
    for h in RESERVED_CLAIM_HEADERS {
        assert!(reserved.rule.contains(&format!("'{h}'")), "{h}");
        assert!(is_reserved_claim_header(&h.to_ascii_uppercase()));
    }
    assert!(is_reserved_claim_header("X-Stainless-Os"));
    assert!(!is_reserved_claim_header("x-user"));
}

#[test]
fn header_names_agree() {
    let header = re(HEADER_NAME_RE);
    for c in chars() {
        for s in [c.to_string(), format!("x-{c}-y")] {
            assert_eq!(header.is_match(&s), is_valid_header_name(&s), "{s:?}");
        }
    }
    assert!(!header.is_match(""));
    assert!(!is_valid_header_name(""));
}

#[test]
fn team_names_agree() {
    let team = re(TEAM_NAME_RE);
    let mut names: Vec<String> = chars().map(|c| format!("t{c}")).collect();
    names.extend(["", "a", "payments.eu-1_x"].map(String::from));
    names.extend([63, 64].map(|n| "a".repeat(n)));
    for s in names {
        assert_eq!(team.is_match(&s), is_team_name(&s), "{s:?}");
    }
}

#[test]
fn globs_agree() {
    let forbidden = re(GLOB_FORBIDDEN_RE);
    let ws = re(WHITESPACE_RE);
    let cel = |s: &str| !s.is_empty() && !forbidden.is_match(s) && !ws.is_match(s);
    for c in chars() {
        let s = format!("gpt-{c}*");
        assert_eq!(cel(&s), glob_error(&s).is_none(), "{s:?}");
    }
    assert_eq!(cel(""), glob_error("").is_none());
}

#[test]
fn field_paths_and_versions() {
    let path = re(FIELD_PATH_RE);
    for (s, ok) in [
        ("metadata", true),
        ("metadata.user_id", true),
        ("a.b.c", true),
        ("", false),
        (".a", false),
        ("a.", false),
        ("a..b", false),
    ] {
        assert_eq!(path.is_match(s), ok, "{s:?}");
    }
    let version = re(VISIBLE_ASCII_RE);
    for c in chars() {
        let s = format!("2023{c}");
        assert_eq!(
            version.is_match(&s),
            s.bytes().all(|b| b.is_ascii_graphic())
        );
    }
}

#[test]
fn rules_name_the_builtin_tiers() {
    let [default_tier, _] = known_tiers();
    for (name, ..) in crate::render::BUILTIN_TIERS {
        assert!(default_tier.rule.contains(&format!("'{name}'")));
    }
}
