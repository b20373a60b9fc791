//! The process's file-descriptor budget, and the connection cap derived
//! from it.
//!
//! At start the soft `RLIMIT_NOFILE` is raised to the hard limit (what Go
//! and most servers do). The traffic listener's default cap then leaves a
//! reserve for the admin listener, upstream connections, the config source
//! and logs: each client connection may need an upstream connection too, so
//! the cap is half of what is left after the reserve.

/// Raises the soft open-files limit to the hard one; returns the soft limit
/// now in force (`None` where it cannot be read).
pub fn raise() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                limit = raised;
            }
        }
        // `None` is "unlimited".
        Some(limit.current.unwrap_or(u64::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Largest connection cap chosen automatically.
pub const MAX_AUTO_CONNECTIONS: usize = 65_536;

/// The traffic listener's connection cap for a soft open-files limit.
pub fn auto_max_connections(nofile: Option<u64>) -> usize {
    let Some(n) = nofile else {
        return 10_000;
    };
    let reserve = (n / 4).clamp(64, 1024);
    let cap = n.saturating_sub(reserve) / 2;
    usize::try_from(cap)
        .unwrap_or(usize::MAX)
        .clamp(16, MAX_AUTO_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve_for_admin_and_upstreams() {
        // `ulimit -n 256`: 96 client connections, 64 descriptors in reserve.
        assert_eq!(auto_max_connections(Some(256)), 96);
        assert!(auto_max_connections(Some(256)) * 2 + crate::server::ADMIN_MAX_CONNECTIONS <= 256);
        assert_eq!(auto_max_connections(Some(1024)), 384);
        assert_eq!(auto_max_connections(Some(1 << 20)), MAX_AUTO_CONNECTIONS);
        assert_eq!(auto_max_connections(Some(10)), 16);
        assert_eq!(auto_max_connections(None), 10_000);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        if let Some(n) = raise() {
            assert!(n >= 64, "{n}");
        }
    }
}
