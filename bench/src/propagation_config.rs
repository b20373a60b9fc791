//! The configuration the controller serves in the propagation benchmark:
//! a few Mock backends and two open routes (no credentials, no network).
//! Each round changes one backend's mock reply, so every round renders a
//! snapshot with a new version.

use serde_json::{Value, json};

/// Number of backends in the configuration.
pub const BACKENDS: usize = 4;

fn doc(kind: &str, name: &str, spec: Value) -> String {
    let v = json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec});
    format!("---\n{v}\n")
}

/// The configuration of `round` (JSON documents, which are YAML).
pub fn render(round: usize) -> String {
    let mut out = String::new();
    let mut rules = Vec::new();
    for i in 0..BACKENDS {
        let name = format!("prop-{i}");
        let model = format!("prop-model-{i}");
        let reply = if i == 0 {
            format!("propagation round {round}")
        } else {
            format!("backend {i}")
        };
        out.push_str(&doc(
            "AIBackend",
            &name,
            json!({
                "provider": "Mock",
                "models": [{"name": model, "contextWindow": 128000}],
                "mock": {"reply": reply, "latency": "0ms"},
            }),
        ));
        rules.push(json!({"models": [model], "backends": [{"name": name}]}));
    }
    out.push_str(&doc(
        "AIRoute",
        "prop-v1",
        json!({"pathPrefix": "/v1", "rules": rules}),
    ));
    out.push_str(&doc(
        "AIRoute",
        "prop-root",
        json!({"pathPrefix": "/", "rules": rules}),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_differ_only_in_the_first_reply() {
        let docs = |round| -> Vec<Value> {
            render(round)
                .split("---\n")
                .filter(|d| !d.trim().is_empty())
                .map(|d| serde_json::from_str(d).unwrap())
                .collect()
        };
        let (a, b) = (docs(1), docs(2));
        assert_eq!(a.len(), BACKENDS + 2);
        assert_eq!(a[0]["spec"]["mock"]["reply"], "propagation round 1");
        assert_eq!(b[0]["spec"]["mock"]["reply"], "propagation round 2");
        assert_eq!(a[1..], b[1..]);
    }
}
