//! The per-user token cache.
//!
//! One JSON file per (token URL, client id, scope, audience), named by the
//! SHA-256 of those, in the cache folder (default
//! `$XDG_CACHE_HOME/switchboard/tokens`, `~/.cache/…`). The folder is
//! created 0700 and each file 0600, written to a temporary name and renamed
//! into place, so concurrent runs never read half a file. A file other users
//! could read (group or other permission bits) is ignored and replaced.
//!
//! A token is handed out again while it stays valid for `min_valid` more
//! seconds, and at least for the first half of its lifetime (so a token that
//! lives less than twice the margin is still reused for a while). A token
//! whose lifetime is unknown is not cached.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::TokenError;
use crate::config::Settings;
use crate::grant::TokenAnswer;

/// One cached token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The token.
    pub access_token: String,
    /// When it was obtained (Unix seconds).
    pub obtained_at: u64,
    /// When it expires (Unix seconds); 0 when unknown.
    pub expires_at: u64,
}

impl Entry {
    /// The entry for a token obtained at `obtained` (Unix seconds).
    pub fn new(answer: TokenAnswer, obtained: u64) -> Entry {
        Entry {
            access_token: answer.access_token,
            obtained_at: obtained,
            expires_at: answer.expires_in.map_or(0, |lifetime| obtained + lifetime),
        }
    }

    /// When to stop handing the token out: `min_valid` seconds before it
    /// expires, but not before half its lifetime.
    pub fn refresh_at(&self, min_valid: u64) -> u64 {
        let lifetime = self.expires_at.saturating_sub(self.obtained_at);
        self.obtained_at + lifetime.saturating_sub(min_valid).max(lifetime / 2)
    }

    /// Whether the token can still be handed out at `now`.
    pub fn is_fresh(&self, now: u64, min_valid: u64) -> bool {
        self.cacheable() && now < self.refresh_at(min_valid)
    }

    /// Whether the entry is worth writing (its lifetime is known).
    pub fn cacheable(&self) -> bool {
        self.expires_at > self.obtained_at
    }
}

/// The cache file for `settings`, or `None` when the cache is off.
pub fn path(settings: &Settings) -> Option<PathBuf> {
    let dir = settings.cache_dir.as_ref()?;
    let mut h = Sha256::new();
    for part in [
        settings.token_url.as_str(),
        settings.client_id.as_str(),
        settings.scope.as_deref().unwrap_or(""),
        settings.audience.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    Some(dir.join(format!("{}.json", &hex::encode(h.finalize())[..32])))
}

/// Reads an entry; `None` when absent, unreadable, malformed or readable by
/// other users.
pub fn read(path: &Path) -> Option<Entry> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes an entry atomically with mode 0600, creating the folder 0700.
pub fn write(path: &Path, entry: &Entry) -> Result<(), TokenError> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| TokenError::Io { path: p, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("token"),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let body = serde_json::to_vec(entry).unwrap_or_default();
    file.write_all(&body)
        .and_then(|_| file.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn answer(expires_in: Option<u64>) -> TokenAnswer {
        TokenAnswer {
            access_token: "tok".into(),
            expires_in,
        }
    }

    #[test]
    fn freshness_keeps_a_margin_before_expiry() {
        let e = Entry::new(answer(Some(3600)), 1000);
        assert_eq!((e.expires_at, e.refresh_at(300)), (4600, 4300));
        assert!(e.is_fresh(4299, 300));
        assert!(!e.is_fresh(4300, 300));
        assert!(
            e.is_fresh(4500, 60),
            "the margin is the caller's, not the writer's"
        );
        // A short-lived token is reused for half its life.
        let short = Entry::new(answer(Some(60)), 1000);
        assert_eq!(short.refresh_at(300), 1030);
        assert!(short.is_fresh(1029, 300) && !short.is_fresh(1030, 300));
        let unknown = Entry::new(answer(None), 1000);
        assert!(!unknown.cacheable() && !unknown.is_fresh(1000, 0));
    }

    #[test]
    fn files_are_private_and_replaced_atomically() {
        let dir = std::env::temp_dir().join(format!("sbtoken-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("nested").join("t.json");
        let entry = Entry::new(answer(Some(3600)), 1000);
        write(&path, &entry).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(read(&path), Some(entry.clone()));
        let newer = Entry::new(answer(Some(7200)), 2000);
        write(&path, &newer).unwrap();
        assert_eq!(read(&path), Some(newer));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&path), None, "a file others can read is not trusted");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
