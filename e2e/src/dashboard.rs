//! Checks the Grafana dashboard's queries against the metrics reference (`docs/metrics.md`):
//! every metric a query names must be documented, every label it selects on or groups by must
//! be one of that metric's documented labels (or a label Prometheus adds to every target), and
//! histogram series (`_bucket`, `_sum`, `_count`) must belong to a documented histogram.
//!
//! The PromQL reading is deliberately small: a tokenizer plus the three shapes the dashboard
//! uses (`metric{selectors}`, `agg by (labels) (expr)` / `agg(expr) by (labels)`,
//! `label_values(metric, label)`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Labels Prometheus attaches to every scraped series (from the target), plus `le`, which is
/// checked separately.
pub const TARGET_LABELS: &[&str] = &["instance", "job", "pod", "namespace", "container"];
/// The prefix every Switchboard metric has.
pub const PREFIX: &str = "switchboard_";

/// A documented metric.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricDoc {
    /// Its labels.
    pub labels: BTreeSet<String>,
    /// Whether it is a histogram (has `_bucket`, `_sum`, `_count` series).
    pub histogram: bool,
}

/// The metrics of the markdown tables of `docs/metrics.md`: rows `| \`name\` | type | labels | meaning |`.
pub fn documented_metrics(markdown: &str) -> BTreeMap<String, MetricDoc> {
    let mut out = BTreeMap::new();
    for line in markdown.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with(&format!("`{PREFIX}")) {
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        out.insert(
            name,
            MetricDoc {
                labels,
                histogram: cells[2] == "histogram",
            },
        );
    }
    out
}

/// Every query of a dashboard: each panel target's `expr` (rows' nested panels included) and
/// each templating variable's query, with where it comes from.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((format!("panel {title:?}"), expr.to_string()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = v["query"]["query"].as_str().or(v["query"].as_str());
        if v["type"] == "query"
            && let Some(q) = query
        {
            out.push((
                format!("variable {:?}", v["name"].as_str().unwrap_or("?")),
                q.to_string(),
            ));
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str,
    Punct(char),
    Other,
}

fn tokenize(expr: &str) -> Vec<Tok> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str);
        } else if c == '$' {
            // a Grafana variable: $name or ${name}
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            out.push(Tok::Other);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Other);
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// Index of the token closing the parenthesis opened at `open`.
fn closing(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Index of the token opening the parenthesis closed at `close`.
fn opening(toks: &[Tok], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for i in (0..=close).rev() {
        match toks[i] {
            Tok::Punct(')') => depth += 1,
            Tok::Punct('(') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// A series name resolved to its documented metric: (metric, is a `_bucket` series).
fn resolve<'a>(
    series: &str,
    docs: &'a BTreeMap<String, MetricDoc>,
) -> Result<(&'a str, &'a MetricDoc, bool), String> {
    if let Some((name, doc)) = docs.get_key_value(series) {
        return Ok((name, doc, false));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix)
            && let Some((name, doc)) = docs.get_key_value(base)
        {
            if !doc.histogram {
                return Err(format!("`{series}`: `{base}` is not a histogram"));
            }
            return Ok((name, doc, suffix == "_bucket"));
        }
    }
    Err(format!("`{series}` is not in docs/metrics.md"))
}

fn label_ok(label: &str, doc: &MetricDoc, bucket: bool) -> bool {
    doc.labels.contains(label) || TARGET_LABELS.contains(&label) || (bucket && label == "le")
}

/// The problems of one query: undocumented metrics or labels. Empty when it is fine.
pub fn check_query(expr: &str, docs: &BTreeMap<String, MetricDoc>) -> Vec<String> {
    let toks = tokenize(expr);
    let mut problems = Vec::new();
    // (token index, resolved metric) of every metric reference.
    let mut refs: Vec<(usize, &MetricDoc, bool, String)> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(name) = t else { continue };
        if !name.starts_with(PREFIX) {
            continue;
        }
        match resolve(name, docs) {
            Ok((_, doc, bucket)) => refs.push((i, doc, bucket, name.clone())),
            Err(e) => problems.push(e),
        }
    }
    // Selectors: metric{label op "value", ...}
    for (i, doc, bucket, name) in &refs {
        if toks.get(i + 1) != Some(&Tok::Punct('{')) {
            continue;
        }
        let mut j = i + 2;
        while j < toks.len() && toks[j] != Tok::Punct('}') {
            if let Tok::Ident(label) = &toks[j]
                && matches!(toks.get(j + 1), Some(Tok::Punct('=' | '!')))
                && !label_ok(label, doc, *bucket)
            {
                problems.push(format!("`{name}` has no label `{label}`"));
            }
            j += 1;
        }
    }
    // Grouping: by (labels) / without (labels), checked against every metric in its scope.
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(word) = t else { continue };
        if (word != "by" && word != "without") || toks.get(i + 1) != Some(&Tok::Punct('(')) {
            continue;
        }
        let Some(list_end) = closing(&toks, i + 1) else {
            problems.push("unbalanced parentheses".into());
            continue;
        };
        let labels: Vec<&String> = toks[i + 2..list_end]
            .iter()
            .filter_map(|t| match t {
                Tok::Ident(l) => Some(l),
                _ => None,
            })
            .collect();
        // `agg by (l) (expr)`, or `agg(expr) by (l)`.
        let scope = if toks.get(list_end + 1) == Some(&Tok::Punct('(')) {
            closing(&toks, list_end + 1).map(|end| (list_end + 1, end))
        } else if i > 0 && toks[i - 1] == Tok::Punct(')') {
            opening(&toks, i - 1).map(|start| (start, i - 1))
        } else {
            None
        };
        let Some((from, to)) = scope else {
            problems.push(format!("cannot tell what `{word} (...)` groups"));
            continue;
        };
        for (at, doc, bucket, name) in &refs {
            if *at <= from || *at >= to {
                continue;
            }
            for label in &labels {
                if !label_ok(label, doc, *bucket) {
                    problems.push(format!("`{name}` has no label `{label}` to group by"));
                }
            }
        }
    }
    // label_values(metric, label)
    for (i, t) in toks.iter().enumerate() {
        if *t != Tok::Ident("label_values".into()) {
            continue;
        }
        if let (Some(Tok::Ident(metric)), Some(Tok::Ident(label))) =
            (toks.get(i + 2), toks.get(i + 4))
            && let Ok((_, doc, bucket)) = resolve(metric, docs)
            && !label_ok(label, doc, bucket)
        {
            problems.push(format!("`{metric}` has no label `{label}`"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> BTreeMap<String, MetricDoc> {
        documented_metrics(
            "| metric | type | labels | meaning |\n|---|---|---|---|\n\
             | `switchboard_requests_total` | counter | `route`, `status` | x |\n\
             | `switchboard_latency_seconds` | histogram | `backend` | y |\n\
             | `switchboard_snapshot_info` | gauge | `version` | z |\n",
        )
    }

    #[test]
    fn documented_metrics_read_the_tables() {
        let d = docs();
        assert_eq!(d.len(), 3);
        assert!(d["switchboard_latency_seconds"].histogram);
        assert_eq!(
            d["switchboard_requests_total"].labels,
            ["route", "status"].into_iter().map(String::from).collect()
        );
    }

    #[test]
    fn good_queries_pass() {
        let d = docs();
        for q in [
            r#"sum by (status) (rate(switchboard_requests_total{route=~"$route"}[$__rate_interval]))"#,
            r#"histogram_quantile(0.95, sum by (le, backend) (rate(switchboard_latency_seconds_bucket[5m])))"#,
            "max by (instance, pod, version) (switchboard_snapshot_info)",
            "sum(rate(switchboard_requests_total[1m])) by (route)",
            "label_values(switchboard_requests_total, route)",
        ] {
            assert_eq!(check_query(q, &d), Vec::<String>::new(), "{q}");
        }
    }

    #[test]
    fn unknown_metrics_and_labels_are_reported() {
        let d = docs();
        let cases = [
            (
                "rate(switchboard_request_total[1m])",
                "`switchboard_request_total` is not in docs/metrics.md",
            ),
            (
                r#"switchboard_requests_total{team="a"}"#,
                "`switchboard_requests_total` has no label `team`",
            ),
            (
                "sum by (team) (switchboard_requests_total)",
                "`switchboard_requests_total` has no label `team` to group by",
            ),
            (
                "sum(switchboard_requests_total) by (model)",
                "`switchboard_requests_total` has no label `model` to group by",
            ),
            (
                "switchboard_requests_total_bucket",
                "`switchboard_requests_total_bucket`: `switchboard_requests_total` is not a histogram",
            ),
            (
                "sum by (le) (switchboard_requests_total)",
                "`switchboard_requests_total` has no label `le` to group by",
            ),
            (
                "label_values(switchboard_snapshot_info, route)",
                "`switchboard_snapshot_info` has no label `route`",
            ),
        ];
        for (q, want) in cases {
            assert_eq!(check_query(q, &d), vec![want.to_string()], "{q}");
        }
    }

    #[test]
    fn queries_come_from_panels_rows_and_variables() {
        let dash = serde_json::json!({
            "panels": [
                {"title": "a", "targets": [{"expr": "x"}]},
                {"title": "row", "type": "row", "panels": [{"title": "b", "targets": [{"expr": "y"}]}]}
            ],
            "templating": {"list": [
                {"name": "ds", "type": "datasource", "query": "prometheus"},
                {"name": "route", "type": "query", "query": {"query": "z"}}
            ]}
        });
        let exprs: Vec<String> = dashboard_queries(&dash)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(exprs, ["x", "y", "z"]);
    }
}
