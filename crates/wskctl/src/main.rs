//! `wskctl` binary: parse arguments, open the device (none for `peer`, which never talks to
//! the driver), run, report.

use std::process::ExitCode;

use clap::Parser;
use wskctl::cli::{run, Cli};

/// `WSKCTL_NTSIM_COMPLETION=provider|inline|pending` picks the emulated WSK provider's
/// completion path for `--device embedded` (ntsim::config::CompletionMode; default
/// `provider`: inline when the host socket can finish the operation at once, pending
/// otherwise), so CLI tests can force each path. Anything else is an error.
#[cfg(not(windows))]
fn set_completion_mode() -> anyhow::Result<()> {
    use ntsim::config::{set_completion_mode, CompletionMode};
    match std::env::var("WSKCTL_NTSIM_COMPLETION").as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("provider") => {
            set_completion_mode(CompletionMode::Provider)
        }
        Ok("pending") => set_completion_mode(CompletionMode::Pending),
        Ok("inline") => set_completion_mode(CompletionMode::Inline),
        Ok(other) => {
            anyhow::bail!("WSKCTL_NTSIM_COMPLETION={other}: expected provider, inline or pending")
        }
        Err(e) => anyhow::bail!("WSKCTL_NTSIM_COMPLETION: {e}"),
    }
    Ok(())
}

#[cfg(windows)]
fn set_completion_mode() -> anyhow::Result<()> {
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = set_completion_mode()
        .and_then(|()| cli.device_for_command().open(cli.frontend))
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
