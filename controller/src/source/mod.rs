//! Sources of objects. A source is an async function that owns a
//! `watch::Sender<Arc<Inventory>>` and sends a whole [`Inventory`] every time
//! something changed; it runs until the process ends.
//!
//! - [`dir`]: a folder of YAML (`--source dir:PATH`), polled for changes.
//! - [`kube`]: the Kubernetes API (`--source kube`).
//!
//! [`Inventory`]: switchboard_api::Inventory

pub mod dir;
pub mod kube;

use std::path::PathBuf;

use crate::error::Error;

/// Where objects come from, as given by `--source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// The Kubernetes API.
    Kube,
    /// A folder (or one file) of YAML documents.
    Dir(PathBuf),
}

impl std::str::FromStr for SourceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.split_once(':') {
            _ if s == "kube" => Ok(SourceSpec::Kube),
            Some(("dir", path)) if !path.is_empty() => Ok(SourceSpec::Dir(PathBuf::from(path))),
            _ => Err(Error::InvalidSource(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_flags() {
        assert_eq!("kube".parse::<SourceSpec>().unwrap(), SourceSpec::Kube);
        assert_eq!(
            "dir:/etc/sb".parse::<SourceSpec>().unwrap(),
            SourceSpec::Dir(PathBuf::from("/etc/sb"))
        );
        assert!("dir:".parse::<SourceSpec>().is_err());
        assert!("file:/x".parse::<SourceSpec>().is_err());
    }
}
