//! The function order the data plane is linked with
//! (`dataplane/link/functions.ld`), from callgrind profiles of a run.
//!
//! Start-up runs code from all over the binary, and the kernel maps the
//! 64 KiB around every page of code that faults in, so an idle gateway had
//! nearly all of its 12 MB of `.text` resident. Placing the functions that
//! ran (at start-up and on the request paths) together, first, keeps the
//! rest unmapped. This module is the pure part: reading callgrind's output
//! and rendering the linker script; [`crate::function_order_run`] runs the
//! gateway under callgrind.
//!
//! Functions are named by their v0 symbol names (`.cargo/config.toml` asks
//! for v0) with every crate hash left open (`Cs*_`), along with the
//! back-references whose positions depend on those hashes' lengths, and
//! LLVM's numbered suffixes: the order survives dependency and version
//! changes, and a function that no longer exists matches nothing.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Instructions spent in each function of one object, from a callgrind
/// output file written with `--compress-strings=no --compress-pos=no
/// --demangle=no` (the symbol names as they are in the binary).
///
/// Only the functions of the object whose file is named `binary` are kept
/// (the `ob=` lines name the object of the `fn=` lines after them). A call's inclusive cost (the line after
/// `calls=`) is not the caller's own and is skipped.
pub fn self_costs(callgrind: &str, binary: &str) -> HashMap<String, u64> {
    let mut costs = HashMap::new();
    let mut in_binary = false;
    let mut current: Option<&str> = None;
    let mut skip_next_cost = false;
    for line in callgrind.lines() {
        if let Some(object) = line.strip_prefix("ob=") {
            in_binary = object.rsplit('/').next() == Some(binary);
            continue;
        }
        if let Some(function) = line.strip_prefix("fn=") {
            current = in_binary.then_some(function);
            continue;
        }
        if line.starts_with("calls=") {
            skip_next_cost = true;
            continue;
        }
        let Some(first) = line.bytes().next() else {
            continue;
        };
        if !(first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*') {
            continue;
        }
        if std::mem::take(&mut skip_next_cost) {
            continue;
        }
        let Some(function) = current else { continue };
        let instructions = line
            .split_ascii_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        *costs.entry(function.to_owned()).or_default() += instructions;
    }
    costs
}

/// The pattern that finds `symbol` in another build: crate hashes
/// (`Cs<hash>_`), back-references (`B<position>_`) and LLVM's numbered
/// suffixes (`.llvm.<number>`, `.<number>`) left open. `None` for names that are not Rust v0
/// symbols or plain C names (legacy `_ZN` names carry a per-function hash
/// that would match every instantiation of a generic function).
pub fn pattern(symbol: &str) -> Option<String> {
    // LLVM numbers the names it makes unique (`.llvm.<n>`, `.<n>`); the
    // numbers change from build to build.
    let (name, suffix) = match symbol.find('.') {
        Some(i) => (&symbol[..i], "*"),
        None => (symbol, ""),
    };
    if name.starts_with("_ZN") || name.starts_with("0x") || name.is_empty() {
        return None;
    }
    if !name.starts_with("_R") {
        // C and assembly functions (e.g. ring's): their names are stable.
        let plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        return plain.then(|| format!("{name}{suffix}"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let bytes = name.as_bytes();
    let base62_run = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count()
    };
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        // A crate root's hash, `Cs<base62>_` before the crate name's length
        // (a 64-bit number: 6 to 11 digits), and a back-reference,
        // `B<base62>_` (a position in the name: at most 4 digits), are left
        // open. This is a scan, not a parse: where an identifier happens to
        // look like one of them, the pattern gets broader, never narrower.
        if bytes[i] == b'C' && bytes.get(i + 1) == Some(&b's') {
            let digits = base62_run(i + 2);
            let end = i + 2 + digits;
            if (6..=11).contains(&digits)
                && bytes.get(end) == Some(&b'_')
                && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
            {
                out.push_str("Cs*_");
                i = end + 1;
                continue;
            }
        }
        if bytes[i] == b'B' {
            let digits = base62_run(i + 1);
            let end = i + 1 + digits;
            if digits <= 4 && bytes.get(end) == Some(&b'_') {
                out.push_str("B*_");
                i = end + 1;
                continue;
            }
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out.push_str(suffix);
    Some(out)
}

/// The functions to place first, as patterns: those that ran on the request
/// paths (most instructions first, so the hottest code shares pages), then
/// those that ran only at start-up. Each pattern appears once.
pub fn order(requests: &HashMap<String, u64>, startup: &HashMap<String, u64>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for costs in [requests, startup] {
        let mut ranked: Vec<(&String, &u64)> = costs.iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (symbol, _) in ranked {
            if let Some(p) = pattern(symbol)
                && seen.insert(p.clone())
            {
                out.push(p);
            }
        }
    }
    out
}

/// The linker script: one output section in front of `.text` holding the
/// functions matching `patterns`, in that order. A function's section is
/// `.text.<symbol>`, or `.text.unlikely.<symbol>` for a cold one (LLVM's
/// section prefix for `#[cold]` functions). `INSERT BEFORE` makes it an
/// addition to the linker's default layout (GNU ld and lld).
pub fn linker_script(patterns: &[String], source: &str) -> String {
    let mut out = String::new();
    out.push_str("/* Generated by `bench/run --function-order`: do not edit by hand.\n");
    let _ = writeln!(out, " * {source}");
    out.push_str(
        " * The functions that ran at start-up and on the request paths, placed\n\
         \x20* first and together (docs/benchmarks.md, \"Idle memory\"). */\n",
    );
    out.push_str("SECTIONS\n{\n  .text.ordered :\n  {\n");
    for p in patterns {
        let _ = writeln!(out, "    *(.text.{p} .text.unlikely.{p})");
    }
    out.push_str("  }\n}\nINSERT BEFORE .text;\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "\
# callgrind format
version: 1
events: Ir

ob=/usr/lib/x86_64-linux-gnu/libc.so.6
fl=???
fn=malloc
0 500

ob=/bin/gw
fl=src/main.rs
fn=_RNvCsabc123_4main4main
1 10
2 5
cob=/usr/lib/x86_64-linux-gnu/libc.so.6
cfn=malloc
calls=1 0
3 500
fn=_RNvCsabc123_4main6helper
4 7

fn=_RNvCsabc123_4main4main
5 1
";

    #[test]
    fn self_costs_keep_one_object_and_skip_inclusive_call_costs() {
        let costs = self_costs(OUT, "gw");
        assert_eq!(costs.len(), 2, "{costs:?}");
        assert_eq!(costs["_RNvCsabc123_4main4main"], 16);
        assert_eq!(costs["_RNvCsabc123_4main6helper"], 7);
        assert!(self_costs(OUT, "other").is_empty());
    }

    #[test]
    fn patterns_leave_hashes_and_back_references_open() {
        let cases = [
            ("_RNvCsgEmfK2I1SDS_4core4main", Some("_RNvCs*_4core4main")),
            // An impl's disambiguator (`s3_`) is kept; the hash after it and
            // the back-references are left open.
            (
                "_RNvMs3_NtCsdLDCFyPlJYD_10serde_json4readNtB5_9SliceRead14skip_to_escape",
                Some("_RNvMs3_NtCs*_10serde_json4readNtB*_9SliceRead14skip_to_escape"),
            ),
            // A back-reference after a hash, an empty one (`B_`), and LLVM suffixes.
            (
                "_RINvNtCs1aBcDeF_5alloc3vec4pushNtB4_3FooB_E.llvm.12345",
                Some("_RINvNtCs*_5alloc3vec4pushNtB*_3FooB*_E*"),
            ),
            (
                "_RNvCsgEmfK2I1SDS_4core9write_str.8922",
                Some("_RNvCs*_4core9write_str*"),
            ),
            // Short runs after `Cs` are not hashes.
            ("_RNvCs3_4core3Csv", Some("_RNvCs3_4core3Csv")),
            // C and assembly names are stable.
            (
                "ring_core_0_17_14__sha256_block_data_order_avx",
                Some("ring_core_0_17_14__sha256_block_data_order_avx"),
            ),
            // Legacy names hash each instantiation, and unnamed code has no name: no pattern.
            ("_ZN4core3ptr13drop_in_place17h0123456789abcdefE", None),
            ("(below main)", None),
            ("0x000000000083f060", None),
        ];
        for (symbol, expected) in cases {
            assert_eq!(pattern(symbol).as_deref(), expected, "{symbol}");
        }
    }

    #[test]
    fn order_puts_request_functions_first_hottest_first_once_each() {
        let requests = HashMap::from([
            ("_RNvCsaaaaaa_1x4cold".to_owned(), 1),
            ("_RNvCsaaaaaa_1x3hot".to_owned(), 100),
        ]);
        let startup = HashMap::from([
            ("_RNvCsaaaaaa_1x4init".to_owned(), 1000),
            ("_RNvCsbbbbbb_1x3hot".to_owned(), 5000),
        ]);
        assert_eq!(
            order(&requests, &startup),
            ["_RNvCs*_1x3hot", "_RNvCs*_1x4cold", "_RNvCs*_1x4init"]
        );
    }

    #[test]
    fn the_script_adds_one_section_before_text() {
        let script = linker_script(&["_RNvCs*_1x3hot".to_owned()], "from a test");
        assert!(
            script.contains("    *(.text._RNvCs*_1x3hot .text.unlikely._RNvCs*_1x3hot)\n"),
            "{script}"
        );
        assert!(
            script.trim_end().ends_with("INSERT BEFORE .text;"),
            "{script}"
        );
        assert!(script.starts_with("/* Generated"), "{script}");
        let closes = script.find("*/").expect("the comment is closed");
        assert!(closes < script.find("SECTIONS").unwrap(), "{script}");
    }

    /// The committed order (`dataplane/link/functions.ld`) is a script of
    /// the expected shape, and still names start-up and the request path:
    /// regenerate it with `bench/run --function-order` when this fails after
    /// a rename.
    #[test]
    fn the_committed_order_covers_start_up_and_the_request_path() {
        let script = include_str!("../../dataplane/link/functions.ld");
        let patterns: Vec<&str> = script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("*(.text."))
            .collect();
        assert!(patterns.len() > 500, "{} patterns", patterns.len());
        for line in &patterns {
            let (p, rest) = line.split_once(' ').expect("two section patterns");
            assert_eq!(rest, format!(".text.unlikely.{p})"), "{line}");
        }
        for function in [
            "3app3run",
            "8pipeline11handle_from",
            "8pipeline9serve_api",
            "8pipeline7respond12whole_answer",
            "8log_json11format_line",
        ] {
            assert!(
                patterns.iter().any(|p| p.contains(function)),
                "{function} is not in the order"
            );
        }
        assert!(script.trim_end().ends_with("INSERT BEFORE .text;"));
    }
}
