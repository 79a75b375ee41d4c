//! `wskctl` binary: parse arguments, open the device, run, report.

use std::process::ExitCode;

use clap::Parser;
use wskctl::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = cli
        .device
        .open()
        .and_then(|device| run(device.as_ref(), &cli.command, &mut std::io::stdout().lock()));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // One line: context chain then the status, e.g.
            // `wskctl: connect 127.0.0.1:9: STATUS_CONNECTION_REFUSED (0xC0000236)`.
            eprintln!("wskctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}
