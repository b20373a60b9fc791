//! `switchboard-dataplane`: the gateway process. All logic lives in the
//! library; this sets up the runtime, logging and tracing.

use clap::Parser;
use switchboard_dataplane::{Args, Command, check, run, telemetry};

fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    match args.command.take() {
        Some(Command::Check(check_args)) => return run_check(check_args),
        Some(Command::ProxyCa { action }) => {
            return match switchboard_dataplane::run_proxy_ca(&action) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("switchboard-dataplane: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard-dataplane: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The OTLP exporter needs the runtime.
    // Log lines go through a writer thread: `log` is dropped at the end,
    // after the last line is logged, and writes out what is still buffered.
    let (telemetry, log) = match runtime
        .block_on(async { telemetry::init(args.log_format, args.otlp_endpoint.as_deref()) })
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("switchboard-dataplane: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    runtime.block_on(async { telemetry.shutdown() });
    let code = match &result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    drop(log);
    if let Err(e) = result {
        eprintln!("switchboard-dataplane: {e:#}");
    }
    code
}

/// `switchboard-dataplane check`: 0 when every check passed, 1 when one
/// failed, 2 when the check could not run.
fn run_check(args: check::CheckArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard-dataplane check: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(check::run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("switchboard-dataplane check: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
