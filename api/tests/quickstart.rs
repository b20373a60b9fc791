//! `examples/quickstart.yaml` must always parse and render, with no
//! environment and no Secrets.

use switchboard_api::{Inventory, RenderOptions, parse_documents, render_with};

#[test]
fn quickstart_parses_and_renders_offline() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.yaml");
    let text = std::fs::read_to_string(&path).expect("examples/quickstart.yaml exists");
    let objects =
        parse_documents(&text, "examples/quickstart.yaml").unwrap_or_else(|p| panic!("{p}"));
    let mut inventory = Inventory::default();
    inventory.extend(objects).unwrap_or_else(|p| panic!("{p}"));
    let no_env = |_: &str| None;
    let options = RenderOptions {
        env_allowed: false,
        env: &no_env,
    };
    let snapshot = render_with(&inventory, &options).unwrap_or_else(|p| panic!("{p}"));

    assert_eq!(snapshot.backends.len(), 2);
    assert!(snapshot.backends.iter().all(|b| b.credential.is_none()));
    let route = &snapshot.routes[0];
    assert_eq!(route.id, "default/quickstart");
    assert!(
        route.auth.is_none(),
        "the quickstart route is open (local use only)"
    );
    assert_eq!(
        route.rules.last().map(|r| r.models.clone()),
        Some(vec!["*".to_string()])
    );
    // Same answer through the standalone entry point the data plane uses.
    assert_eq!(switchboard_api::render(&inventory).unwrap(), snapshot);
}
