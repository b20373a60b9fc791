//! Standalone configuration: AIBackend, AIRoute and Secret YAML read from a
//! file or a folder, rendered in-process with the same renderer the
//! controller uses, and reloaded when the files change.
//!
//! Change detection polls: every interval the files are read and hashed, and
//! only a changed hash triggers a render. Polling works the same on every
//! filesystem, in containers and with Kubernetes ConfigMap mounts (which swap
//! a symlink rather than writing files). A folder is read non-recursively;
//! files ending in `.yaml` or `.yml` are read in name order.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_proto as pb;

use crate::state::AppState;

/// Why a local configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LocalConfigError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The folder holds no YAML files.
    #[error("{0} contains no .yaml or .yml files")]
    Empty(PathBuf),
    /// The resources are invalid; one line per problem.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

/// The files of a configuration and their combined content hash.
pub struct FileSet {
    files: Vec<(PathBuf, String)>,
    /// Hash over names and contents.
    pub fingerprint: [u8; 32],
}

/// Reads the file, or every YAML file in the folder.
pub fn read_files(path: &Path) -> Result<FileSet, LocalConfigError> {
    let io = |source| LocalConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mut paths = Vec::new();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            let p = entry.map_err(io)?.path();
            let is_yaml = p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml");
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if is_yaml && !hidden && p.is_file() {
                paths.push(p);
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(LocalConfigError::Empty(path.to_path_buf()));
        }
    } else {
        paths.push(path.to_path_buf());
    }
    let mut hasher = Sha256::new();
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|source| LocalConfigError::Io {
            path: p.clone(),
            source,
        })?;
        hasher.update(p.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
        files.push((p, text));
    }
    Ok(FileSet {
        files,
        fingerprint: hasher.finalize().into(),
    })
}

/// Parses and renders a file set into a snapshot.
pub fn render_files(set: &FileSet) -> Result<pb::Snapshot, LocalConfigError> {
    let mut inventory = switchboard_api::Inventory::default();
    let mut problems = Vec::new();
    for (path, text) in &set.files {
        let source = path.display().to_string();
        match switchboard_api::parse_documents(text, &source) {
            Ok(objects) => {
                if let Err(p) = inventory.extend(objects) {
                    problems.extend(p.iter().map(|p| p.to_string()));
                }
            }
            Err(p) => problems.extend(p.iter().map(|p| p.to_string())),
        }
    }
    if !problems.is_empty() {
        return Err(LocalConfigError::Invalid(problems));
    }
    switchboard_api::render(&inventory)
        .map_err(|p| LocalConfigError::Invalid(p.iter().map(|p| p.to_string()).collect()))
}

/// Loads, renders and applies the configuration at `path` once.
pub fn load_and_apply(state: &Arc<AppState>, path: &Path) -> Result<[u8; 32], LocalConfigError> {
    let set = read_files(path)?;
    let snapshot = render_files(&set)?;
    match super::apply_snapshot(state, &snapshot) {
        Ok(changed) => {
            if changed {
                tracing::info!(version = %snapshot.version, path = %path.display(), "configuration applied");
            }
            Ok(set.fingerprint)
        }
        Err(problems) => Err(LocalConfigError::Invalid(
            problems.iter().map(ToString::to_string).collect(),
        )),
    }
}

/// Watches `path` and applies every valid change; invalid ones are logged
/// with all their problems while the last good configuration keeps serving.
/// Runs until the process ends.
pub async fn watch(state: Arc<AppState>, path: PathBuf, interval: Duration, mut last: [u8; 32]) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last_failed: Option<[u8; 32]> = None;
    loop {
        tick.tick().await;
        let path2 = path.clone();
        let read = tokio::task::spawn_blocking(move || read_files(&path2)).await;
        let set = match read {
            Ok(Ok(set)) => set,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "configuration unreadable; keeping the last good one");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reader panicked");
                continue;
            }
        };
        if set.fingerprint == last || Some(set.fingerprint) == last_failed {
            continue;
        }
        // Render failures are counted here; `apply_snapshot` counts its own.
        let result = match render_files(&set) {
            Err(e) => {
                state.metrics.config_rejections.inc();
                Err(e)
            }
            Ok(snapshot) => super::apply_snapshot(&state, &snapshot)
                .map(|_| snapshot.version)
                .map_err(|p| {
                    LocalConfigError::Invalid(p.iter().map(ToString::to_string).collect())
                }),
        };
        match result {
            Ok(version) => {
                last = set.fingerprint;
                last_failed = None;
                tracing::info!(%version, path = %path.display(), "configuration reloaded");
            }
            Err(e) => {
                last_failed = Some(set.fingerprint);
                tracing::error!(error = %e, "configuration change rejected; the last good configuration keeps serving");
            }
        }
    }
}
