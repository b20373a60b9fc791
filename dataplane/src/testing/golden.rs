//! The harness of the golden-fixture tests: find the cases of a fixture
//! folder, read their inputs, and compare an actual output with its
//! expected file, or rewrite that file when the update variable is set
//! (`UPDATE_GOLDEN=1`, or `SWITCHBOARD_UPDATE_GOLDEN=1` for the Responses
//! fixtures); review the diff after rewriting.
//!
//! Fixture folders live next to the code they test; a [`Golden`] names one
//! (relative to the crate) and the variable that rewrites it.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::StreamBody;
use serde_json::Value;

use crate::runtime::ApiFormat;

/// The variable that rewrites most expected files.
pub const UPDATE_GOLDEN: &str = "UPDATE_GOLDEN";

/// A fixture folder and the environment variable that rewrites its expected
/// files.
#[derive(Debug, Clone)]
pub struct Golden {
    root: PathBuf,
    update_var: &'static str,
}

impl Golden {
    /// The fixtures in `dir` (relative to the crate), rewritten with
    /// [`UPDATE_GOLDEN`].
    pub fn new(dir: &str) -> Self {
        Self::with_update_var(dir, UPDATE_GOLDEN)
    }

    /// The fixtures in `dir` (relative to the crate), rewritten with
    /// `update_var`.
    pub fn with_update_var(dir: &str, update_var: &'static str) -> Self {
        Self {
            root: Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
            update_var,
        }
    }

    /// The path of `rel` in the folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Compares `actual` with the file at `expected`, or writes it there
    /// when the update variable is set.
    pub fn check(&self, expected: &Path, actual: &str) {
        let update = std::env::var_os(self.update_var).is_some();
        compare_or_write(expected, actual, update, self.update_var);
    }

    /// [`Golden::check`] of a JSON value, pretty-printed.
    pub fn check_json(&self, expected: &Path, actual: &Value) {
        self.check(expected, &pretty(actual));
    }
}

/// Writes `actual` to `expected` when `update`, else asserts that the file
/// holds it (failures name `update_var`).
fn compare_or_write(expected: &Path, actual: &str, update: bool, update_var: &str) {
    if update {
        std::fs::write(expected, actual).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
        return;
    }
    let want = std::fs::read_to_string(expected)
        .unwrap_or_else(|e| panic!("{}: {e} (run with {update_var}=1)", expected.display()));
    assert_eq!(
        actual,
        want,
        "golden mismatch: {} ({update_var}=1 rewrites it)",
        expected.display()
    );
}

/// The case names in `dir`: its files ending in `suffix`, without it,
/// sorted; panics when there are none.
pub fn cases(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases in {}", dir.display());
    names
}

/// The names of the folders in `dir`, sorted.
pub fn subdirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The JSON file at `path`.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `v` pretty-printed, with a final newline (the form of expected files).
pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

/// The client API a fixture folder is named after (`chat`, `messages`,
/// `count_tokens`, `responses`).
pub fn client_format(name: &str) -> ApiFormat {
    match name {
        "chat" => ApiFormat::ChatCompletions,
        "messages" => ApiFormat::Messages,
        "count_tokens" => ApiFormat::CountTokens,
        "responses" => ApiFormat::Responses,
        other => panic!("unknown client format {other}"),
    }
}

/// A body of data frames that never fails.
pub type PiecesBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// A body delivering `bytes` in pieces of `size` bytes, as a network would
/// cut them.
pub fn in_pieces(bytes: &[u8], size: usize) -> PiecesBody {
    let chunks: Vec<_> = bytes
        .chunks(size)
        .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    StreamBody::new(futures_util::stream::iter(chunks))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use serde_json::json;

    use super::*;

    /// A fresh folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "switchboard-golden-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn golden(dir: &TempDir, var: &'static str) -> Golden {
        // An absolute path replaces the crate root in `join`.
        Golden::with_update_var(dir.0.to_str().unwrap(), var)
    }

    #[test]
    fn cases_and_subdirs_are_sorted_and_filtered() {
        let dir = TempDir::new();
        for f in ["b.in.json", "a.in.json", "a.out.json", "c.in.sse"] {
            std::fs::write(dir.0.join(f), "{}").unwrap();
        }
        std::fs::create_dir(dir.0.join("z")).unwrap();
        std::fs::create_dir(dir.0.join("y")).unwrap();
        assert_eq!(cases(&dir.0, ".in.json"), ["a", "b"]);
        assert_eq!(cases(&dir.0, ".in.sse"), ["c"]);
        assert_eq!(subdirs(&dir.0), ["y", "z"]);
    }

    #[test]
    #[should_panic(expected = "no cases in")]
    fn a_folder_without_cases_fails() {
        let dir = TempDir::new();
        cases(&dir.0, ".in.json");
    }

    const UNSET: &str = "SWITCHBOARD_TEST_GOLDEN_NEVER_SET";

    #[test]
    fn check_passes_on_equal_text() {
        let dir = TempDir::new();
        let g = golden(&dir, UNSET);
        let expected = g.path("x.out.json");
        std::fs::write(&expected, "{\n  \"a\": 1\n}\n").unwrap();
        g.check_json(&expected, &json!({"a": 1}));
        assert_eq!(read_json(&expected), json!({"a": 1}));
    }

    #[test]
    #[should_panic(expected = "golden mismatch")]
    fn check_fails_on_a_difference() {
        let dir = TempDir::new();
        let g = golden(&dir, UNSET);
        let expected = g.path("x.out.json");
        std::fs::write(&expected, "{}\n").unwrap();
        g.check_json(&expected, &json!({"a": 1}));
    }

    #[test]
    #[should_panic(expected = "run with SWITCHBOARD_TEST_GOLDEN_NEVER_SET=1")]
    fn check_fails_on_a_missing_file_naming_the_variable() {
        let dir = TempDir::new();
        let g = golden(&dir, UNSET);
        g.check(&g.path("missing.out.sse"), "data: x\n\n");
    }

    #[test]
    fn updating_rewrites_the_expected_file() {
        let dir = TempDir::new();
        let expected = dir.0.join("x.out.sse");
        std::fs::write(&expected, "old").unwrap();
        compare_or_write(&expected, "new", true, UNSET);
        assert_eq!(std::fs::read_to_string(&expected).unwrap(), "new");
        let created = dir.0.join("y.out.sse");
        compare_or_write(&created, "first", true, UNSET);
        compare_or_write(&created, "first", false, UNSET);
    }

    #[tokio::test]
    async fn in_pieces_delivers_every_byte_in_order() {
        let body = in_pieces(b"0123456789abcdef", 7);
        let frames: Vec<Bytes> =
            futures_util::StreamExt::collect::<Vec<_>>(http_body_util::BodyStream::new(body))
                .await
                .into_iter()
                .map(|f| f.unwrap().into_data().unwrap())
                .collect();
        assert_eq!(frames, ["0123456", "789abcd", "ef"]);
        let whole = in_pieces(b"xyz", 7).collect().await.unwrap().to_bytes();
        assert_eq!(whole, "xyz");
    }

    #[test]
    fn client_formats_by_folder_name() {
        assert_eq!(client_format("chat"), ApiFormat::ChatCompletions);
        assert_eq!(client_format("count_tokens"), ApiFormat::CountTokens);
    }
}
