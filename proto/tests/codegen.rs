//! Regenerates the protobuf code and fails when the committed copy drifts.

use std::path::{Path, PathBuf};

#[test]
fn generated_code_matches_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempdir(root);
    let fds = protox::compile([root.join("proto/snapshot.proto")], [root.join("proto")])
        .expect("snapshot.proto compiles");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&out)
        .compile_fds(fds)
        .expect("code generation succeeds");

    let name = "switchboard.snapshot.v1.rs";
    let fresh = std::fs::read_to_string(out.join(name)).expect("generated file exists");
    let committed_path = root.join("src/gen").join(name);
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::write(&committed_path, &fresh).expect("write generated code");
    } else {
        assert!(
            fresh == committed,
            "src/gen/{name} is out of date with proto/snapshot.proto; \
             run `UPDATE_GENERATED=1 cargo test -p switchboard-proto` and commit the result"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

fn tempdir(root: &Path) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("proto-gen-{}", std::process::id()));
    let _ = root;
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
