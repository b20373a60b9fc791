//! `examples/teams.yaml` renders, resolves its tiers as `docs/teams.md`
//! says, and is the example the docs show.

use switchboard_api::{Inventory, RenderOptions, parse_documents, render_with};
use switchboard_proto as pb;

fn read(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_teams_example_renders_and_is_in_the_docs() {
    let text = read("examples/teams.yaml");
    let mut inventory = Inventory::default();
    inventory
        .extend(parse_documents(&text, "examples/teams.yaml").unwrap_or_else(|p| panic!("{p}")))
        .unwrap();
    let no_env = |_: &str| None;
    let snapshot = render_with(
        &inventory,
        &RenderOptions {
            env_allowed: false,
            env: &no_env,
        },
    )
    .unwrap_or_else(|p| panic!("{p}"));
    let teams = snapshot.routes[0].teams.as_ref().unwrap();
    let limits = |name: &str| {
        teams
            .teams
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .limits
            .unwrap()
    };
    assert_eq!(
        limits("payments"),
        pb::Limits {
            requests_per_minute: 500,
            tokens_per_day: 10_000_000
        }
    );
    assert_eq!(
        limits("search"),
        pb::Limits {
            requests_per_minute: 100,
            tokens_per_day: 2_000_000
        }
    );
    assert_eq!(
        limits("research"),
        pb::Limits {
            requests_per_minute: 60,
            tokens_per_day: 5_000_000
        }
    );
    assert_eq!(
        teams.default_limits,
        Some(pb::Limits {
            requests_per_minute: 10,
            tokens_per_day: 100_000
        })
    );

    let docs = read("docs/teams.md");
    assert!(
        docs.contains(&text),
        "docs/teams.md must include examples/teams.yaml verbatim"
    );
}
