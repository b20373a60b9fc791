//! What the credential sources of every provider share: the refreshing
//! cache ([`refresh`]) behind the AWS credential providers
//! ([`crate::aws::provider`]) and the OAuth2 token providers
//! ([`crate::oauth`]), and reading a rotated token file.

pub mod refresh;

use crate::aws::Secret;

/// Reads a token file (a projected service-account token), again for every
/// fetch: it is rotated. Errors name the file, never its content.
pub async fn read_token_file(path: &std::path::Path) -> Result<Secret, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("reading the token file {}: {e}", path.display()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(Secret::new(text))
}
