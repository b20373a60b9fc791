use super::*;

fn problems(text: &str) -> Vec<String> {
    parse_documents(text, "test.yaml")
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const BACKEND: &str = "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {name: mock}\nspec: {provider: Mock}\n";

#[test]
fn multi_document_with_empty_documents_and_default_namespace() {
    let text = format!(
        "---\n# comment only\n---\n{BACKEND}---\n---\napiVersion: switchboard.dev/v1alpha1\nkind: AIRoute\nmetadata: {{name: main, namespace: team}}\nspec:\n  rules: [{{backends: [{{name: mock}}]}}]\n"
    );
    let objects = parse_documents(&text, "test.yaml").unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].describe(), "AIBackend default/mock");
    assert_eq!(objects[0].source(), Some("test.yaml (document 2)"));
    assert_eq!(objects[1].describe(), "AIRoute team/main");
    let Object::Route(r) = &objects[1] else {
        panic!("not a route")
    };
    assert_eq!(r.spec.path_prefix, "/");
    assert_eq!(r.spec.rules[0].backends[0].weight, 1);
    assert_eq!(r.spec.rules[0].backends[0].priority, 0);
}

#[test]
fn empty_text_is_no_objects() {
    assert!(parse_documents("", "x").unwrap().is_empty());
    assert!(parse_documents("# nothing\n", "x").unwrap().is_empty());
}

#[test]
fn secret_data_and_string_data() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: keys}\ntype: Opaque\ndata: {apiKey: c2stMTIz, other: b2xk}\nstringData: {other: new}\n";
    let objects = parse_documents(text, "s.yaml").unwrap();
    let Object::Secret {
        namespace,
        name,
        data,
    } = &objects[0]
    else {
        panic!("not a secret")
    };
    assert_eq!((namespace.as_str(), name.as_str()), ("default", "keys"));
    assert_eq!(data["apiKey"], b"sk-123");
    assert_eq!(data["other"], b"new");
}

#[test]
fn invalid_base64_names_the_key() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: keys}\ndata: {apiKey: '!!!'}\n";
    let p = problems(text);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(
            "Secret default/keys in test.yaml (document 1): data.apiKey: invalid base64"
        ),
        "{p:?}"
    );
}

#[test]
fn type_errors_name_the_field_path() {
    let text = "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {name: b}\nspec:\n  provider: Mock\n  models:\n  - name: a\n    contextWindow: big\n";
    let p = problems(text);
    assert!(
        p[0].contains(": spec.models[0].contextWindow: invalid type"),
        "{p:?}"
    );
}

#[test]
fn unknown_provider_is_named() {
    let p = problems(&BACKEND.replace("Mock", "Gemeni"));
    assert!(
        p[0].contains("spec.provider: unknown variant `Gemeni`"),
        "{p:?}"
    );
}

#[test]
fn unknown_fields_are_problems() {
    let p = problems(&BACKEND.replace(
        "{provider: Mock}",
        "{provider: Mock, endpont: 'http://x', models: [], mock: {replyy: hi}}",
    ));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter().any(|p| p.ends_with("spec.endpont: unknown field")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.ends_with("spec.mock.replyy: unknown field")),
        "{p:?}"
    );
}

#[test]
fn kind_api_version_and_name_problems_are_all_reported() {
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{}---\napiVersion: switchboard.dev/v1alpha1\nkind: AIRoute\nmetadata: {{}}\nspec: {{}}\n---\n- a list\n",
        BACKEND.replace("switchboard.dev/v1alpha1", "switchboard.dev/v1")
    );
    let p = problems(&text);
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(
        p[0].contains("ConfigMap default/c")
            && p[0].contains("kind: unsupported kind \"ConfigMap\""),
        "{p:?}"
    );
    assert!(
        p[1].contains("apiVersion: must be \"switchboard.dev/v1alpha1\""),
        "{p:?}"
    );
    assert!(p[2].contains("metadata.name: missing name"), "{p:?}");
    assert!(p[3].contains("must be a mapping"), "{p:?}");
}

#[test]
fn lists_are_unpacked() {
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n",
        "{apiVersion: switchboard.dev/v1alpha1, kind: AIBackend, metadata: {name: a}, spec: {provider: Mock}}"
    );
    let objects = parse_documents(&text, "l.yaml").unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].source(), Some("l.yaml (document 1, items[0])"));
}

#[test]
fn invalid_yaml_is_a_problem_not_a_panic() {
    let p = problems("kind: [unclosed\n");
    assert!(p[0].contains("invalid YAML"), "{p:?}");
    for text in [
        "]]]",
        "{",
        "---\n- 1\n- : :",
        "kind: AIBackend\nmetadata: 5",
        "kind: AIRoute\napiVersion: switchboard.dev/v1alpha1\nmetadata: {name: x}\nspec: 7",
    ] {
        assert!(parse_documents(text, "f").is_err(), "{text:?}");
    }
}

/// The limit fields of AITeams and of a route's inline teams are declared
/// in both structs rather than shared through `#[serde(flatten)]`: flattened
/// fields lose their name in type errors (`spec: invalid type` instead of
/// `spec.requestsPerMinute: invalid type`).
#[test]
fn type_errors_in_team_limits_name_the_field() {
    let team = |spec: &str| {
        format!(
            "apiVersion: switchboard.dev/v1alpha1\nkind: AITeam\nmetadata: {{name: t}}\nspec: {spec}\n"
        )
    };
    let p = problems(&team("{tier: standard, requestsPerMinute: abc}"));
    assert!(
        p[0].ends_with("spec.requestsPerMinute: invalid type: string \"abc\", expected u64"),
        "{p:?}"
    );
    let p = problems(&team("{budget: {usd: x}}"));
    assert!(
        p[0].ends_with("spec.budget.usd: invalid type: string \"x\", expected f64"),
        "{p:?}"
    );
    let route = "apiVersion: switchboard.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: r}\nspec:\n  rules: [{backends: [{name: mock}]}]\n  teams:\n    teams:\n    - {name: a, tokensPerDay: x}\n";
    let p = problems(route);
    assert!(
        p[0].ends_with(
            "spec.teams.teams[0].tokensPerDay: invalid type: string \"x\", expected u64"
        ),
        "{p:?}"
    );
}
