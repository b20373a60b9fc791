//! The directory source (`--source dir:PATH`): AIBackend, AIRoute and Secret
//! YAML read from a folder (or one file) with the same loader as the data
//! plane's standalone mode ([`switchboard_api::parse_documents`]).
//!
//! Change detection polls like the data plane's local source: every interval
//! the files are read and hashed, and only a changed hash is parsed. A folder
//! is read non-recursively; `.yaml`/`.yml` files not starting with `.` are
//! read in name order. A file that does not parse is a problem, not a crash:
//! its last parsed objects stay in the inventory (or none, if it never
//! parsed) and its problems are published next to the inventory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_api::{Inventory, Object, Problems, parse_documents};
use tokio::sync::watch;

use crate::error::Error;

/// The YAML files of the source and their combined hash.
#[derive(Debug)]
pub struct Files {
    /// Path and content of every file, in name order.
    pub files: Vec<(PathBuf, String)>,
    /// Hash over names and contents.
    pub fingerprint: [u8; 32],
}

/// Reads the file, or every YAML file of the folder.
pub fn read_files(path: &Path) -> Result<Files, Error> {
    let io = |source| Error::SourceIo {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mut paths = Vec::new();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            let p = entry.map_err(io)?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            if yaml && !name.starts_with('.') && p.is_file() {
                paths.push(p);
            }
        }
        paths.sort();
    } else {
        paths.push(path.to_path_buf());
    }
    let mut hasher = Sha256::new();
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|source| Error::SourceIo {
            path: p.clone(),
            source,
        })?;
        hasher.update(p.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
        files.push((p, text));
    }
    Ok(Files {
        files,
        fingerprint: hasher.finalize().into(),
    })
}

/// The objects each file last parsed to.
#[derive(Default)]
pub struct LastParsed {
    by_file: BTreeMap<PathBuf, Vec<Object>>,
}

/// Parses `files` into one inventory. A file that does not parse keeps the
/// objects it last parsed to; its problems, and duplicate names across
/// files, are returned next to the inventory.
pub fn load(files: &Files, last: &mut LastParsed) -> (Inventory, Problems) {
    let mut problems = Problems::new();
    let mut next = BTreeMap::new();
    for (path, text) in &files.files {
        let objects = match parse_documents(text, &path.display().to_string()) {
            Ok(objects) => objects,
            Err(p) => {
                problems.extend(p);
                last.by_file.get(path).cloned().unwrap_or_default()
            }
        };
        next.insert(path.clone(), objects);
    }
    let mut inventory = Inventory::default();
    for objects in next.values() {
        if let Err(p) = inventory.extend(objects.clone()) {
            problems.extend(p);
        }
    }
    last.by_file = next;
    (inventory, problems)
}

/// Publishes the objects under `path` now and after every change, until the
/// receivers are gone. Fails only when `path` cannot be read at startup;
/// later read errors are logged and the last inventory stays.
pub async fn run(
    path: PathBuf,
    interval: Duration,
    inventory: watch::Sender<Arc<Inventory>>,
    problems: watch::Sender<Problems>,
) -> Result<(), Error> {
    let mut last = LastParsed::default();
    let mut fingerprint = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let p = path.clone();
        let read = tokio::task::spawn_blocking(move || read_files(&p)).await;
        let files = match read {
            Ok(Ok(files)) => files,
            Ok(Err(e)) if fingerprint.is_none() => return Err(e),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "source unreadable; keeping the last objects");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "source reader panicked");
                continue;
            }
        };
        if fingerprint == Some(files.fingerprint) {
            continue;
        }
        fingerprint = Some(files.fingerprint);
        let (inv, found) = load(&files, &mut last);
        tracing::info!(
            path = %path.display(),
            files = files.files.len(),
            objects = inv.len(),
            problems = found.len(),
            "source read"
        );
        problems.send_if_modified(|p| {
            let modified = *p != found;
            *p = found;
            modified
        });
        if inventory.send(Arc::new(inv)).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_api::ObjectKind;

    const A: &str = "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {name: a}\nspec: {provider: Mock}\n";
    const B: &str = "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {name: b}\nspec: {provider: Mock}\n";

    fn files(list: &[(&str, &str)]) -> Files {
        Files {
            files: list
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
            fingerprint: [0; 32],
        }
    }

    #[test]
    fn a_broken_file_keeps_its_last_objects_and_reports_problems() {
        let mut last = LastParsed::default();
        let (inv, problems) = load(&files(&[("a.yaml", A), ("b.yaml", B)]), &mut last);
        assert_eq!(inv.len(), 2);
        assert!(problems.is_empty());

        let (inv, problems) = load(
            &files(&[("a.yaml", A), ("b.yaml", "kind: [unclosed")]),
            &mut last,
        );
        assert_eq!(inv.len(), 2, "b's last objects stay");
        assert!(inv.get(ObjectKind::Backend, "default", "b").is_some());
        assert_eq!(problems.len(), 1);
        assert!(problems.0[0].resource.contains("b.yaml"), "{problems}");

        let (inv, problems) = load(&files(&[("a.yaml", A)]), &mut last);
        assert_eq!(inv.len(), 1, "a removed file's objects go");
        assert!(problems.is_empty());
    }

    #[test]
    fn a_file_that_never_parsed_contributes_nothing() {
        let mut last = LastParsed::default();
        let (inv, problems) = load(&files(&[("a.yaml", A), ("c.yaml", "{")]), &mut last);
        assert_eq!(inv.len(), 1);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn duplicates_across_files_are_problems() {
        let mut last = LastParsed::default();
        let (inv, problems) = load(&files(&[("a.yaml", A), ("z.yaml", A)]), &mut last);
        assert_eq!(inv.len(), 1);
        assert!(problems.to_string().contains("defined twice"), "{problems}");
    }

    #[test]
    fn reads_yaml_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("sb-ctl-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.yaml"), B).unwrap();
        std::fs::write(dir.join("a.yml"), A).unwrap();
        std::fs::write(dir.join(".hidden.yaml"), "x").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let f = read_files(&dir).unwrap();
        let names: Vec<_> = f
            .files
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, vec!["a.yml", "b.yaml"]);
        let again = read_files(&dir).unwrap();
        assert_eq!(f.fingerprint, again.fingerprint);
        std::fs::write(dir.join("b.yaml"), A).unwrap();
        assert_ne!(read_files(&dir).unwrap().fingerprint, f.fingerprint);
        assert!(read_files(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
