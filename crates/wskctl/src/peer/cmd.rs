//! `wskctl peer ...`: the platform peer from the command line (no driver involved).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{hex, send_file, Ending, SendMethod, SendOptions, ServeOptions, Server};

/// `wskctl peer` arguments.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// What the peer does.
    #[command(subcommand)]
    pub command: PeerCommand,
}

/// Peer subcommands.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Accept N connections (Linux: accept + getsockname/getpeername; Windows: IOCP +
    /// AcceptEx with initial data + GetAcceptExSockaddrs); print both addresses of each,
    /// the bytes received and their sha256.
    Serve(ServeArgs),
    /// Connect and send a file (Linux: sendfile/writev/sendmmsg/write; Windows:
    /// TransmitFile/TransmitPackets/send), then end with shutdown or DisconnectEx.
    Send(SendArgs),
    /// `send` with ConnectEx carrying the file's first bytes (Windows; `--initial`).
    ConnectEx(SendArgs),
    /// `send` ending with DisconnectEx(TF_REUSE_SOCKET), then reusing the socket for a
    /// second ConnectEx + send; reports whether the platform honoured the reuse (Windows).
    DisconnectEx(SendArgs),
}

/// `peer serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Local ADDR:PORT to listen on (port 0 = ephemeral; printed first).
    #[arg(long, value_parser = crate::cli::parse_target)]
    pub listen: SocketAddr,
    /// Connections to accept, one after the other.
    #[arg(long, default_value_t = 1)]
    pub connections: u32,
    /// Echo what each client sends.
    #[arg(long)]
    pub echo: bool,
    /// Text sent to each client right after the accept.
    #[arg(long)]
    pub greeting: Option<String>,
    /// Windows: AcceptEx waits for this many bytes of initial data (0 = none).
    #[arg(long, default_value_t = 0)]
    pub initial_bytes: u32,
    /// Bound on each accept and on a client's idle time, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Print JSON lines (one object per connection) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `peer send` / `connect-ex` / `disconnect-ex` arguments.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Remote HOST:PORT.
    #[arg(long, value_parser = crate::cli::parse_target)]
    pub to: SocketAddr,
    /// The file to send.
    #[arg(long)]
    pub file: PathBuf,
    /// How to send the file (default: sendfile on Linux, transmit-file on Windows).
    #[arg(long, value_enum)]
    pub method: Option<SendMethod>,
    /// Shorthand for `--method transmit-packets`.
    #[arg(long, conflicts_with = "method")]
    pub transmit_packets: bool,
    /// Bytes of the file sent with the connect (ConnectEx's send buffer on Windows).
    #[arg(long, default_value_t = 0)]
    pub initial: u32,
    /// How to end (default: shutdown; disconnect-ex-reuse for `peer disconnect-ex`).
    #[arg(long, value_enum)]
    pub ending: Option<Ending>,
    /// Bound on each wait, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `wskctl peer` subcommand.
///
/// Errors: the peer's I/O error (bind, accept, connect, send, timeouts), or output.
pub fn command(args: &PeerArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match &args.command {
        PeerCommand::Serve(a) => serve(a, out),
        PeerCommand::Send(a) => send(a, Ending::Shutdown, 0, out),
        PeerCommand::ConnectEx(a) => send(a, Ending::Shutdown, 4096, out),
        PeerCommand::DisconnectEx(a) => send(a, Ending::DisconnectExReuse, 0, out),
    }
}

fn serve(args: &ServeArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let mut server = Server::start(ServeOptions {
        listen: args.listen,
        connections: args.connections,
        echo: args.echo,
        greeting: args.greeting.clone().unwrap_or_default().into_bytes(),
        initial_bytes: args.initial_bytes,
        idle: timeout,
    })
    .map_err(|e| anyhow::anyhow!("peer serve {}: {e}", args.listen))?;
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "listening": server.local_addr().to_string() })
        )?;
    } else {
        writeln!(out, "peer: listening on {}", server.local_addr())?;
    }
    out.flush()?;
    let mut ok = true;
    for _ in 0..args.connections {
        // The accept waits at most `timeout` too (Windows: the completion port; Linux:
        // this wait, after which the server's drop ends the accept).
        let c = server
            .next(timeout * 2)
            .map_err(|e| anyhow::anyhow!("peer serve {}: {e}", server.local_addr()))?;
        ok &= c.addresses_agree;
        if args.json {
            serde_json::to_writer(&mut *out, &c)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "accepted: local {} remote {} via {} (getsockname/getpeername {}); \
                 initial {} bytes; received {} bytes sha256 {}; sent back {} bytes",
                c.local,
                c.remote,
                c.accepted_with,
                if c.addresses_agree { "agree" } else { "DIFFER" },
                c.initial,
                c.bytes,
                hex(&c.sha256),
                c.sent_back
            )?;
        }
        out.flush()?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn send(
    args: &SendArgs,
    ending: Ending,
    initial: u32,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let method = if args.transmit_packets {
        SendMethod::TransmitPackets
    } else {
        args.method.unwrap_or_else(SendMethod::baseline)
    };
    let options = SendOptions {
        to: args.to,
        method,
        initial: if args.initial > 0 {
            args.initial
        } else {
            initial
        },
        ending: args.ending.unwrap_or(ending),
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let report = send_file(&args.file, &options).map_err(|e| {
        anyhow::anyhow!(
            "peer {} {} to {}: {e}",
            options.method.name(),
            args.file.display(),
            args.to
        )
    })?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "sent {} bytes ({} with {}) via {} in {} calls from {} to {}; ending: {}; \
             received back {} bytes; {:.3} s",
            report.bytes,
            report.initial,
            report.connected_with,
            report.method,
            report.calls,
            report.local,
            report.remote,
            report.ending,
            report.received,
            report.seconds
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
