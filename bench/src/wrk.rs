//! Driving `wrk`: the Lua script that shapes its requests and reports
//! percentiles as one JSON line, and the parser for that line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// Marker in front of the JSON line the script prints when wrk finishes.
const MARKER: &str = "BENCH_JSON ";

/// One request shape, sent over and over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestShape {
    /// Path and query, e.g. `/v1/messages`.
    pub path: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// File holding the JSON body.
    pub body_file: PathBuf,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WrkResult {
    /// Completed requests.
    pub requests: u64,
    /// Length of the run.
    pub duration: Duration,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    /// Answers with a status of 400 or more.
    pub non_2xx: u64,
    /// Median latency (request written → response complete).
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl WrkResult {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The wrk Lua script for `shape`: a POST with the shape's path, headers and
/// body, and a `done` hook printing the summary as JSON after [`MARKER`].
pub fn lua_script(shape: &RequestShape) -> String {
    let mut lua = String::from("wrk.method = \"POST\"\n");
    lua.push_str(&format!("wrk.path = {}\n", lua_string(&shape.path)));
    lua.push_str("wrk.headers[\"content-type\"] = \"application/json\"\n");
    for (name, value) in &shape.headers {
        lua.push_str(&format!(
            "wrk.headers[{}] = {}\n",
            lua_string(name),
            lua_string(value)
        ));
    }
    lua.push_str(&format!(
        "local f = assert(io.open({}, \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()\n",
        lua_string(&shape.body_file.to_string_lossy())
    ));
    lua.push_str(concat!(
        "done = function(summary, latency, requests)\n",
        "  local e = summary.errors\n",
        "  io.write(string.format('BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"socket_errors\":%d,",
        "\"non_2xx\":%d,\"p50_us\":%d,\"p99_us\":%d}\\n', summary.requests, summary.duration,",
        " e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))\n",
        "end\n"
    ));
    lua
}

/// Reads the summary line out of wrk's standard output.
pub fn parse_output(stdout: &str) -> anyhow::Result<WrkResult> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(MARKER))
        .context("wrk printed no summary line")?;
    let v: serde_json::Value = serde_json::from_str(line).context("wrk summary is not JSON")?;
    let field = |name: &str| {
        v.get(name)
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("wrk summary lacks {name}"))
    };
    Ok(WrkResult {
        requests: field("requests")?,
        duration: Duration::from_micros(field("duration_us")?),
        socket_errors: field("socket_errors")?,
        non_2xx: field("non_2xx")?,
        p50: Duration::from_micros(field("p50_us")?),
        p99: Duration::from_micros(field("p99_us")?),
    })
}

/// How to run wrk.
#[derive(Debug, Clone)]
pub struct WrkRun<'a> {
    /// `http://host:port` of the target.
    pub base_url: &'a str,
    /// The script written by [`lua_script`].
    pub script: &'a Path,
    /// Open connections (= requests in flight).
    pub connections: usize,
    /// Length of the run.
    pub duration: Duration,
    /// CPU to pin wrk to, if any.
    pub cpu: Option<usize>,
}

/// Runs wrk once and returns its summary.
pub fn run(r: &WrkRun<'_>) -> anyhow::Result<WrkResult> {
    let mut cmd = match r.cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string(), "wrk"]);
            c
        }
        None => Command::new("wrk"),
    };
    let secs = r.duration.as_secs().max(1);
    cmd.args([
        "-t1",
        &format!("-c{}", r.connections),
        &format!("-d{secs}s"),
        "--timeout",
        "10s",
        "-s",
    ])
    .arg(r.script)
    .arg(r.base_url);
    let out = cmd
        .output()
        .context("running wrk (is it installed? bench/run installs it)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_output(&stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_sets_request_and_reports_json() {
        let lua = lua_script(&RequestShape {
            path: "/v1/messages".into(),
            headers: vec![
                ("anthropic-version".into(), "2023-06-01".into()),
                ("x".into(), "a\"b".into()),
            ],
            body_file: PathBuf::from("/tmp/body.json"),
        });
        assert!(lua.contains("wrk.path = \"/v1/messages\""));
        assert!(lua.contains("wrk.headers[\"x\"] = \"a\\\"b\""));
        assert!(lua.contains("io.open(\"/tmp/body.json\", \"rb\")"));
        assert!(lua.contains("latency:percentile(99)"));
    }

    #[test]
    fn parses_the_summary_line() {
        let out = "Running 5s test\n  1 threads and 16 connections\nBENCH_JSON {\"requests\":1000,\"duration_us\":2000000,\"socket_errors\":0,\"non_2xx\":3,\"p50_us\":150,\"p99_us\":900}\n";
        let r = parse_output(out).unwrap();
        assert_eq!(r.requests, 1000);
        assert_eq!(r.non_2xx, 3);
        assert_eq!(r.p99, Duration::from_micros(900));
        assert_eq!(r.rps(), 500.0);
        assert!(parse_output("nothing").is_err());
    }
}
