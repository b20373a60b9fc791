//! `examples/aiteams.yaml` renders (standalone and Kubernetes mode alike),
//! resolves each AITeam's limits in the route's tier table, and is the
//! example `docs/teams.md` shows.

use switchboard_api::{Inventory, RenderOptions, parse_documents, render_with};
use switchboard_proto as pb;

fn read(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_aiteams_example_renders_and_is_in_the_docs() {
    let text = read("examples/aiteams.yaml");
    let mut inventory = Inventory::default();
    inventory
        .extend(parse_documents(&text, "examples/aiteams.yaml").unwrap_or_else(|p| panic!("{p}")))
        .unwrap();
    let snapshot =
        render_with(&inventory, &RenderOptions::kubernetes()).unwrap_or_else(|p| panic!("{p}"));
    let route = &snapshot.routes[0];
    let teams = route.teams.as_ref().unwrap();
    let team = |id: &str| teams.teams.iter().find(|t| t.resource == id).unwrap();
    assert_eq!(
        team("team-payments/payments").limits,
        Some(pb::Limits {
            requests_per_minute: 100,
            tokens_per_day: 1_000_000
        })
    );
    assert_eq!(
        team("team-research/research").limits,
        Some(pb::Limits {
            requests_per_minute: 60,
            tokens_per_day: 2_000_000
        })
    );
    assert!(team("team-payments/payments").guards.is_some());
    let keys: Vec<&str> = route
        .auth
        .as_ref()
        .unwrap()
        .api_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "platform-admin",
            "team-payments/payments/ci",
            "team-research/research/notebook"
        ]
    );

    let docs = read("docs/teams.md");
    assert!(
        docs.contains(text.trim()),
        "docs/teams.md must show examples/aiteams.yaml verbatim"
    );
}
