//! The snapshot cache (`--snapshot-cache FILE`): the last snapshot applied
//! from the controller, stored as its protobuf encoding, so a data plane can
//! start serving while the controller is unreachable.
//!
//! The file holds secrets: resolved provider credentials and client API
//! keys, in plain protobuf. It is written with mode 0600 (owner only): the
//! temporary file is created with that mode (never widened and narrowed
//! later), so no other user can open it even while it is being written.
//!
//! Writes are atomic (a temporary file in the same folder, synced, then
//! renamed over the old one), so a crash never leaves a torn cache. A read
//! checks that the content still hashes to its version.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use prost::Message as _;
use switchboard_proto as pb;

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file could not be read or written.
    #[error("snapshot cache {path}: {source}")]
    Io {
        /// The cache file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not an encoded snapshot.
    #[error("snapshot cache {path} does not decode: {source}")]
    Decode {
        /// The cache file.
        path: PathBuf,
        /// The decode error.
        source: prost::DecodeError,
    },
    /// The content does not match its version.
    #[error("snapshot cache {path}: content does not match version {version:?}")]
    Corrupt {
        /// The cache file.
        path: PathBuf,
        /// The version it claims.
        version: String,
    },
}

/// Reads and checks the cached snapshot.
pub fn read(path: &Path) -> Result<pb::Snapshot, CacheError> {
    let bytes = std::fs::read(path).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let snapshot = pb::Snapshot::decode(bytes.as_slice()).map_err(|source| CacheError::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    if switchboard_api::render::content_version(&snapshot) != snapshot.version {
        return Err(CacheError::Corrupt {
            path: path.to_path_buf(),
            version: snapshot.version,
        });
    }
    Ok(snapshot)
}

/// Mode of the cache file: it holds secrets.
pub const CACHE_FILE_MODE: u32 = 0o600;

/// Creates `path` new, readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(CACHE_FILE_MODE);
    }
    options.open(path)
}

/// Replaces the cache with `snapshot`, atomically, as a file only its owner
/// can read.
pub fn write(path: &Path, snapshot: &pb::Snapshot) -> Result<(), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("snapshot");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        // A leftover from a crash may have any mode: start from a new file.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = create_private(&tmp)?;
        file.write_all(&snapshot.encode_to_vec())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> pb::Snapshot {
        let mut s = pb::Snapshot {
            version: String::new(),
            backends: vec![pb::Backend {
                id: "default/a".into(),
                ..Default::default()
            }],
            routes: vec![],
        };
        s.version = switchboard_api::render::content_version(&s);
        s
    }

    #[test]
    fn round_trips_and_detects_corruption() {
        let dir = std::env::temp_dir().join(format!("sb-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snapshot.pb");
        write(&path, &snapshot()).unwrap();
        assert_eq!(read(&path).unwrap(), snapshot());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );

        let mut tampered = snapshot();
        tampered.backends[0].id = "default/b".into();
        std::fs::write(&path, tampered.encode_to_vec()).unwrap();
        assert!(matches!(read(&path), Err(CacheError::Corrupt { .. })));
        std::fs::write(&path, b"\xff\xff\xff").unwrap();
        assert!(matches!(read(&path), Err(CacheError::Decode { .. })));
        assert!(matches!(
            read(&dir.join("missing")),
            Err(CacheError::Io { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = std::env::temp_dir().join(format!("sb-cache-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snapshot.pb");
        write(&path, &snapshot()).unwrap();
        assert_eq!(mode(&path), 0o600);

        // An older, world-readable cache and a world-readable leftover temporary file of a
        // crashed write are both replaced by an owner-only file.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let leftover = dir.join(format!(".snapshot.pb.{}.tmp", std::process::id()));
        std::fs::write(&leftover, b"stale").unwrap();
        std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&path, &snapshot()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read(&path).unwrap(), snapshot());
        assert!(!leftover.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
