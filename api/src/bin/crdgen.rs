//! Writes the CRD YAML under `crds/` and into the `switchboard-crds` chart
//! (`helm/switchboard-crds/files/`) from the Rust types, or with `--check`
//! fails when the committed files differ.
//!
//! Usage: `cargo run -p switchboard-api --bin crdgen [-- --check] [--dir DIR]`
//! (`--dir` writes or checks that one folder instead).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = switchboard_api::crd::OUTPUT_DIRS
        .iter()
        .map(|d| root.join(d))
        .collect();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--dir" => match args.next() {
                Some(d) => dirs = vec![PathBuf::from(d)],
                None => return usage("--dir needs a value"),
            },
            "-h" | "--help" => {
                println!("usage: crdgen [--check] [--dir DIR]");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let mut stale = Vec::new();
    let files = switchboard_api::crd::crd_files();
    for (dir, (name, yaml)) in dirs.iter().flat_map(|d| files.iter().map(move |f| (d, f))) {
        let path = dir.join(name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                stale.push(path.display().to_string());
            }
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, yaml)) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    if !stale.is_empty() {
        eprintln!(
            "crdgen: these CRD files are missing or out of date:\n  {}\nrun `cargo run -p switchboard-api --bin crdgen` and commit the result",
            stale.join("\n  ")
        );
        return ExitCode::FAILURE;
    }
    if check {
        println!("CRDs are up to date");
    }
    ExitCode::SUCCESS
}

fn usage(message: &str) -> ExitCode {
    eprintln!("crdgen: {message}\nusage: crdgen [--check] [--dir DIR]");
    ExitCode::from(2)
}
