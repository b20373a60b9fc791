//! `switchboard-token`: prints an access token for a Switchboard route,
//! obtained with the OAuth2 client-credentials grant (RFC 6749 §4.4) and
//! cached per user until shortly before it expires.
//!
//! It is what coding agents call for a credential: Claude Code's
//! `apiKeyHelper`, Codex's `[model_providers.X.auth] command`, or an env
//! wrapper (`OPENAI_API_KEY=$(switchboard-token) opencode`). Both agents run
//! it again after a 401, so a revoked or expired token is replaced at once.
//!
//! - [`config`]: settings from flags, environment and a config file (in that
//!   order of precedence); the client secret comes from the environment or a
//!   file, never from a flag (flags show in `ps`).
//! - [`cache`]: one JSON file per (token URL, client, scope, audience) in the
//!   user's cache directory, created 0600 in a 0700 folder, replaced
//!   atomically; a cached token is used while it stays valid for the
//!   configured margin.
//! - [`grant`]: the token request and the parsing of its answer (pure), and
//!   the one HTTPS call.

pub mod cache;
pub mod config;
pub mod grant;

/// Why no token could be printed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A setting is missing or invalid.
    #[error("{0}")]
    Config(String),
    /// The token endpoint could not be reached or answered badly.
    #[error("token endpoint {url}: {message}")]
    Endpoint {
        /// The token endpoint.
        url: String,
        /// What went wrong (never the client secret).
        message: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Returns a token for `settings`: the cached one while it is fresh, else a
/// new one from the token endpoint (then cached).
pub async fn token(settings: &config::Settings) -> Result<String, TokenError> {
    let path = cache::path(settings);
    if !settings.force_refresh
        && let Some(path) = &path
        && let Some(entry) = cache::read(path)
        && entry.is_fresh(now(), settings.min_valid_secs)
    {
        return Ok(entry.access_token);
    }
    let obtained = now();
    let answer = grant::fetch(settings).await?;
    let entry = cache::Entry::new(answer, obtained);
    if let (Some(path), true) = (&path, entry.cacheable()) {
        cache::write(path, &entry)?;
    }
    Ok(entry.access_token)
}
