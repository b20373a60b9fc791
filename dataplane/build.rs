//! Links the data plane's release binary with its functions in the order of
//! `link/functions.ld`: the code that runs at start-up and on the request
//! path first, together, so the pages mapped for it hold little else (idle
//! RSS; see docs/benchmarks.md, "Idle memory"). The script only adds an
//! output section in front of `.text`, which GNU ld and lld both accept.
//!
//! Release builds only: matching its patterns against the many more
//! sections of a debug build costs about 25 s per link. Linux only, and
//! `SWITCHBOARD_FUNCTION_ORDER=off` leaves it out (as
//! `bench/run --function-order` does to profile a binary whose functions
//! are all in `.text`, where callgrind looks for them).

fn main() {
    println!("cargo:rerun-if-changed=link/functions.ld");
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_FUNCTION_ORDER");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let off = std::env::var("SWITCHBOARD_FUNCTION_ORDER").as_deref() == Ok("off");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&dir).join("link/functions.ld");
    if linux && release && !off && script.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
