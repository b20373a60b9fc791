//! `switchboard-token`: prints a cached OAuth2 client-credentials access
//! token (see the library docs and `docs/token-helper.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchboard_token::config::{Flags, resolve};

/// Prints an access token for a Switchboard gateway, obtained with the OAuth2
/// client-credentials grant and cached per user (0600) until shortly before it
/// expires. The client secret comes from SWITCHBOARD_CLIENT_SECRET or a file,
/// never from a flag.
#[derive(Parser, Debug)]
#[command(name = "switchboard-token", version)]
struct Args {
    /// Config file of `key = value` lines [default: $XDG_CONFIG_HOME/switchboard/token.conf if it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Token endpoint (https; http only on loopback) [env: SWITCHBOARD_TOKEN_URL].
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// OAuth2 client id [env: SWITCHBOARD_CLIENT_ID].
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// File holding the client secret [env: SWITCHBOARD_CLIENT_SECRET_FILE].
    #[arg(long, value_name = "FILE")]
    client_secret_file: Option<PathBuf>,
    /// Scopes, space-separated [env: SWITCHBOARD_TOKEN_SCOPE].
    #[arg(long)]
    scope: Option<String>,
    /// `audience` parameter [env: SWITCHBOARD_TOKEN_AUDIENCE].
    #[arg(long)]
    audience: Option<String>,
    /// Client authentication: `basic` (default) or `post` [env: SWITCHBOARD_TOKEN_AUTH_METHOD].
    #[arg(long, value_name = "METHOD")]
    auth_method: Option<String>,
    /// Reuse a cached token only while it stays valid this many seconds [default: 300; env: SWITCHBOARD_TOKEN_MIN_VALID].
    #[arg(long, value_name = "SECONDS")]
    min_valid: Option<u64>,
    /// Cache folder [default: $XDG_CACHE_HOME/switchboard/tokens; env: SWITCHBOARD_TOKEN_CACHE_DIR].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the cache.
    #[arg(long)]
    no_cache: bool,
    /// Ignore the cached token and fetch a new one (the new one is cached).
    #[arg(long)]
    force_refresh: bool,
    /// Token request timeout in seconds [default: 10; env: SWITCHBOARD_TOKEN_TIMEOUT].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let flags = Flags {
        config: args.config,
        token_url: args.token_url,
        client_id: args.client_id,
        client_secret_file: args.client_secret_file,
        scope: args.scope,
        audience: args.audience,
        auth_method: args.auth_method,
        min_valid: args.min_valid,
        cache_dir: args.cache_dir,
        no_cache: args.no_cache,
        timeout: args.timeout,
        force_refresh: args.force_refresh,
    };
    let env = |name: &str| std::env::var(name).ok();
    let result = resolve(&flags, &env).and_then(|settings| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| switchboard_token::TokenError::Config(format!("cannot start: {e}")))?
            .block_on(switchboard_token::token(&settings))
    });
    match result {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard-token: {e}");
            ExitCode::FAILURE
        }
    }
}
