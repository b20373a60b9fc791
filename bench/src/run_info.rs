//! Where and when a benchmark ran: the first lines of every report (date,
//! machine, load, commit), so results recorded in docs can be compared.

use std::path::Path;
use std::process::Command;

/// The trimmed standard output of a successful command.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `- date`, `- machine` (CPU count and model, load average) and `- commit`
/// (marked when the work tree of `repo` has local changes) as markdown list
/// lines, each ending in a newline.
pub fn header_lines(repo: &Path) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let repo = repo.to_string_lossy();
    let commit = command_line("git", &["-C", &repo, "rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "unknown".into());
    let dirty = command_line(
        "git",
        &["-C", &repo, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|s| !s.is_empty());
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "- date: {date}\n- machine: {cpus} CPUs ({cpu}), load average at start {load}\n- commit: {commit}{}\n",
        if dirty { " (with local changes)" } else { "" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_the_three_lines() {
        let lines = header_lines(Path::new(env!("CARGO_MANIFEST_DIR")));
        let keys: Vec<&str> = lines
            .lines()
            .map(|l| l.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(keys, ["- date", "- machine", "- commit"], "{lines}");
    }
}
