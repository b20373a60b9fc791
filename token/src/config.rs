//! Settings: command-line flags, then environment variables, then a config
//! file, then defaults.
//!
//! | setting | flag | environment | config file key |
//! |---|---|---|---|
//! | token endpoint | `--token-url` | `SWITCHBOARD_TOKEN_URL` | `token_url` |
//! | client id | `--client-id` | `SWITCHBOARD_CLIENT_ID` | `client_id` |
//! | client secret | — | `SWITCHBOARD_CLIENT_SECRET` | — |
//! | client secret file | `--client-secret-file` | `SWITCHBOARD_CLIENT_SECRET_FILE` | `client_secret_file` |
//! | scope | `--scope` | `SWITCHBOARD_TOKEN_SCOPE` | `scope` |
//! | audience | `--audience` | `SWITCHBOARD_TOKEN_AUDIENCE` | `audience` |
//! | client authentication | `--auth-method` | `SWITCHBOARD_TOKEN_AUTH_METHOD` | `auth_method` (`basic`, default, or `post`) |
//! | refresh margin, seconds | `--min-valid` | `SWITCHBOARD_TOKEN_MIN_VALID` | `min_valid` (default 300) |
//! | cache folder | `--cache-dir` | `SWITCHBOARD_TOKEN_CACHE_DIR` | `cache_dir` |
//! | request timeout, seconds | `--timeout` | `SWITCHBOARD_TOKEN_TIMEOUT` | `timeout` (default 10) |
//!
//! The config file is `--config`, else `SWITCHBOARD_TOKEN_CONFIG`, else
//! `$XDG_CONFIG_HOME/switchboard/token.conf` (`~/.config/…`) when it
//! exists. It holds `key = value` lines (values may be quoted; `#` starts a
//! comment), so a simple TOML file works. The secret is never a flag: flags
//! are visible to every user in `ps`. When both are set, the environment
//! secret wins over the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::TokenError;

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the URL-encoded id and secret (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

/// Everything needed to get a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// Token endpoint (https, or http on a loopback address).
    pub token_url: String,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: String,
    /// Space-separated scopes, if any.
    pub scope: Option<String>,
    /// `audience` parameter (Auth0 and others), if any.
    pub audience: Option<String>,
    /// Client authentication method.
    pub auth_method: AuthMethod,
    /// A cached token is used only while it stays valid this long.
    pub min_valid_secs: u64,
    /// Cache folder; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Timeout of the token request, seconds.
    pub timeout_secs: u64,
    /// Ignore the cached token.
    pub force_refresh: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

/// The values given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--token-url`.
    pub token_url: Option<String>,
    /// `--client-id`.
    pub client_id: Option<String>,
    /// `--client-secret-file`.
    pub client_secret_file: Option<PathBuf>,
    /// `--scope`.
    pub scope: Option<String>,
    /// `--audience`.
    pub audience: Option<String>,
    /// `--auth-method`.
    pub auth_method: Option<String>,
    /// `--min-valid`.
    pub min_valid: Option<u64>,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--timeout`.
    pub timeout: Option<u64>,
    /// `--force-refresh`.
    pub force_refresh: bool,
}

/// Parses a config file: `key = value` lines, `#` comments, optional quotes.
pub fn parse_file(text: &str, source: &str) -> Result<HashMap<String, String>, TokenError> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            TokenError::Config(format!("{source}:{}: expected `key = value`", n + 1))
        })?;
        let mut value = value.trim();
        if let Some(i) = value.find(" #") {
            value = value[..i].trim_end();
        }
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        out.insert(key.trim().to_string(), unquoted.to_string());
    }
    Ok(out)
}

fn default_config_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("switchboard").join("token.conf"))
}

fn default_cache_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("switchboard").join("tokens"))
}

fn read(path: &Path) -> Result<String, TokenError> {
    std::fs::read_to_string(path).map_err(|source| TokenError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Resolves the settings from `flags`, the environment (`env`) and the
/// config file.
pub fn resolve(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, TokenError> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let file_path = flags
        .config
        .clone()
        .or_else(|| env("SWITCHBOARD_TOKEN_CONFIG").map(PathBuf::from));
    let file = match file_path {
        Some(p) => parse_file(&read(&p)?, &p.display().to_string())?,
        None => match default_config_file(&env).filter(|p| p.is_file()) {
            Some(p) => parse_file(&read(&p)?, &p.display().to_string())?,
            None => HashMap::new(),
        },
    };
    let pick = |flag: &Option<String>, var: &str, key: &str| {
        flag.clone()
            .or_else(|| env(var))
            .or_else(|| file.get(key).cloned().filter(|v| !v.is_empty()))
    };
    let required = |value: Option<String>, what: &str, flag: &str, var: &str, key: &str| {
        value.ok_or_else(|| {
            TokenError::Config(format!(
                "no {what}: give {flag}, set {var}, or `{key} = …` in the config file"
            ))
        })
    };
    let token_url = required(
        pick(&flags.token_url, "SWITCHBOARD_TOKEN_URL", "token_url"),
        "token endpoint",
        "--token-url",
        "SWITCHBOARD_TOKEN_URL",
        "token_url",
    )?;
    check_url(&token_url)?;
    let client_id = required(
        pick(&flags.client_id, "SWITCHBOARD_CLIENT_ID", "client_id"),
        "client id",
        "--client-id",
        "SWITCHBOARD_CLIENT_ID",
        "client_id",
    )?;
    let secret_file = flags
        .client_secret_file
        .clone()
        .or_else(|| env("SWITCHBOARD_CLIENT_SECRET_FILE").map(PathBuf::from))
        .or_else(|| file.get("client_secret_file").map(PathBuf::from));
    let client_secret = match (env("SWITCHBOARD_CLIENT_SECRET"), secret_file) {
        (Some(s), _) => s,
        (None, Some(p)) => read(&p)?.trim().to_string(),
        (None, None) => {
            return Err(TokenError::Config(
                "no client secret: set SWITCHBOARD_CLIENT_SECRET, or give a file with --client-secret-file, SWITCHBOARD_CLIENT_SECRET_FILE or `client_secret_file = …` (a secret is never a flag: flags show in `ps`)".into(),
            ));
        }
    };
    if client_secret.is_empty() {
        return Err(TokenError::Config("the client secret is empty".into()));
    }
    let auth_method = match pick(
        &flags.auth_method,
        "SWITCHBOARD_TOKEN_AUTH_METHOD",
        "auth_method",
    )
    .as_deref()
    {
        None | Some("basic") | Some("client_secret_basic") => AuthMethod::Basic,
        Some("post") | Some("client_secret_post") => AuthMethod::Post,
        Some(other) => {
            return Err(TokenError::Config(format!(
                "auth method `{other}`: use `basic` or `post`"
            )));
        }
    };
    let number =
        |flag: Option<u64>, var: &str, key: &str, default: u64| -> Result<u64, TokenError> {
            match flag {
                Some(n) => Ok(n),
                None => match env(var).or_else(|| file.get(key).cloned()) {
                    None => Ok(default),
                    Some(v) => v.parse().map_err(|_| {
                        TokenError::Config(format!("{key} `{v}` is not a number of seconds"))
                    }),
                },
            }
        };
    let cache_dir = if flags.no_cache {
        None
    } else {
        flags
            .cache_dir
            .clone()
            .or_else(|| env("SWITCHBOARD_TOKEN_CACHE_DIR").map(PathBuf::from))
            .or_else(|| file.get("cache_dir").map(PathBuf::from))
            .or_else(|| default_cache_dir(&env))
    };
    Ok(Settings {
        token_url,
        client_id,
        client_secret,
        scope: pick(&flags.scope, "SWITCHBOARD_TOKEN_SCOPE", "scope"),
        audience: pick(&flags.audience, "SWITCHBOARD_TOKEN_AUDIENCE", "audience"),
        auth_method,
        min_valid_secs: number(
            flags.min_valid,
            "SWITCHBOARD_TOKEN_MIN_VALID",
            "min_valid",
            300,
        )?,
        cache_dir,
        timeout_secs: number(flags.timeout, "SWITCHBOARD_TOKEN_TIMEOUT", "timeout", 10)?.max(1),
        force_refresh: flags.force_refresh,
    })
}

/// The endpoint must be https, or http on a loopback address (a secret is
/// never sent in clear text over a network).
fn check_url(url: &str) -> Result<(), TokenError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| TokenError::Config(format!("token URL `{url}`: {e}")))?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if loopback => Ok(()),
        Some("http") => Err(TokenError::Config(format!(
            "token URL `{url}`: use https (http is accepted only for loopback addresses)"
        ))),
        _ => Err(TokenError::Config(format!(
            "token URL `{url}` must start with https://"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = std::env::temp_dir().join(format!("sbtoken-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token.conf");
        std::fs::write(
            &file,
            "# team settings\ntoken_url = \"https://idp.example.com/oauth2/token\"\nclient_id = from-file\nscope = 'gateway/invoke' # comment\naudience = file-aud\nmin_valid = 120\n",
        )
        .unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret-from-file\n").unwrap();
        let flags = Flags {
            config: Some(file.clone()),
            client_id: Some("from-flag".into()),
            client_secret_file: Some(secret.clone()),
            ..Flags::default()
        };
        let env = env_of(&[
            ("SWITCHBOARD_TOKEN_AUDIENCE", "env-aud"),
            ("HOME", "/home/u"),
        ]);
        let s = resolve(&flags, &env).unwrap();
        assert_eq!(s.token_url, "https://idp.example.com/oauth2/token");
        assert_eq!(s.client_id, "from-flag");
        assert_eq!(s.client_secret, "s3cret-from-file");
        assert_eq!(s.scope.as_deref(), Some("gateway/invoke"));
        assert_eq!(s.audience.as_deref(), Some("env-aud"));
        assert_eq!(s.min_valid_secs, 120);
        assert_eq!(s.auth_method, AuthMethod::Basic);
        assert_eq!(
            s.cache_dir,
            Some(PathBuf::from("/home/u/.cache/switchboard/tokens"))
        );
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "Debug never shows the secret"
        );

        let env = env_of(&[
            ("SWITCHBOARD_CLIENT_SECRET", "env-secret"),
            ("XDG_CACHE_HOME", "/c"),
        ]);
        let s = resolve(&flags, &env).unwrap();
        assert_eq!(s.client_secret, "env-secret", "the environment secret wins");
        assert_eq!(s.cache_dir, Some(PathBuf::from("/c/switchboard/tokens")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_or_unsafe_settings_are_refused_with_the_way_to_fix_them() {
        let none = env_of(&[]);
        let err = resolve(&Flags::default(), &none).unwrap_err().to_string();
        assert!(err.contains("--token-url"), "{err}");
        let flags = Flags {
            token_url: Some("https://idp/t".into()),
            client_id: Some("c".into()),
            ..Flags::default()
        };
        let err = resolve(&flags, &none).unwrap_err().to_string();
        assert!(
            err.contains("SWITCHBOARD_CLIENT_SECRET") && err.contains("ps"),
            "{err}"
        );
        let with_secret = env_of(&[("SWITCHBOARD_CLIENT_SECRET", "x")]);
        for url in ["http://idp.example.com/token", "ftp://x/y", "not a url"] {
            let flags = Flags {
                token_url: Some(url.into()),
                ..flags.clone()
            };
            assert!(resolve(&flags, &with_secret).is_err(), "{url}");
        }
        for url in [
            "http://127.0.0.1:9/token",
            "http://localhost/token",
            "http://[::1]:8/t",
        ] {
            let flags = Flags {
                token_url: Some(url.into()),
                ..flags.clone()
            };
            assert!(resolve(&flags, &with_secret).is_ok(), "{url}");
        }
        let flags = Flags {
            auth_method: Some("jwt".into()),
            ..flags
        };
        assert!(resolve(&flags, &with_secret).is_err());
        assert!(parse_file("no equals sign", "f").is_err());
    }
}
