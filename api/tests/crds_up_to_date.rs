//! Fails when the committed CRD YAML under `crds/` (or its copy in the
//! `switchboard-crds` chart) differs from what the Rust types generate.

#[test]
fn committed_crds_match_the_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in switchboard_api::crd::OUTPUT_DIRS {
        for (name, yaml) in switchboard_api::crd::crd_files() {
            let path = root.join(dir).join(name);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == yaml,
                "{} is missing or out of date: run `cargo run -p switchboard-api --bin crdgen` and commit the result",
                path.display()
            );
        }
    }
}
