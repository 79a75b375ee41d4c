//! Command line: `wskctl [--device KIND] [--frontend wdm|kmdf] <connect|sendto|listen|recv|
//! echo|stats|demo|bench|peer|resolve|connect-ex|transmit|nc>`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wskclient_ioctl::{SocketHandle, StatsResponse, MAX_SEND_BYTES, MAX_SEND_TO_BYTES};

use crate::client::Client;
use crate::demo::{self, DemoOptions};
use crate::device::Device;
use crate::payload::{encode_datagram, DATAGRAM_HEADER};
use crate::progress::Progress;

/// Test console for the wskclient Winsock Kernel driver.
#[derive(Debug, Parser)]
#[command(name = "wskctl", version, about)]
pub struct Cli {
    /// Which device to talk to.
    #[arg(long, value_enum, default_value_t = DeviceKind::default_for_host(), global = true)]
    pub device: DeviceKind,
    /// Which of the driver's front-ends the embedded device loads: `wdm` (src/wdm.rs) or
    /// `kmdf` (src/kmdf.rs on ntsim's KMDF model). Ignored by `--device windows`, which talks
    /// to whichever driver is installed.
    #[arg(long, value_enum, default_value_t = Frontend::Wdm, global = true)]
    pub frontend: Frontend,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The backend `command` needs: [`DeviceKind::None`] for `peer` (user mode only, it
    /// never talks to the driver, so no driver is loaded or opened), else `--device`.
    pub fn device_for_command(&self) -> DeviceKind {
        match self.command {
            Command::Peer(_) => DeviceKind::None,
            _ => self.device,
        }
    }
}

/// Device backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// The emulated kernel and driver, in process (default off Windows).
    Embedded,
    /// `\\.\WskClient` (Windows only; default there).
    Windows,
    /// No driver: every request fails with STATUS_INVALID_DEVICE_REQUEST. `wskctl peer ...`
    /// always uses it, whatever `--device` says.
    None,
}

/// The driver front-end the embedded device loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Frontend {
    /// The WDM front-end (`DriverEntry` and dispatch routines).
    Wdm,
    /// The KMDF front-end, on the emulated framework.
    Kmdf,
}

/// The `--device none` backend.
struct NoDevice;

impl Device for NoDevice {
    fn ioctl(&self, _code: u32, _input: &[u8], _output: &mut [u8]) -> crate::device::IoStatus {
        crate::device::IoStatus {
            status: wskclient_ioctl::status::STATUS_INVALID_DEVICE_REQUEST,
            information: 0,
        }
    }
}

impl DeviceKind {
    /// `Windows` on Windows, `Embedded` elsewhere.
    pub const fn default_for_host() -> Self {
        if cfg!(windows) {
            DeviceKind::Windows
        } else {
            DeviceKind::Embedded
        }
    }

    /// Opens the backend; `frontend` picks the driver front-end the embedded device loads.
    ///
    /// Errors: the backend's open error; `Windows` off Windows.
    pub fn open(self, frontend: Frontend) -> anyhow::Result<Box<dyn Device>> {
        let _ = frontend;
        match self {
            #[cfg(not(windows))]
            DeviceKind::Embedded => crate::embedded::open(frontend),
            #[cfg(windows)]
            DeviceKind::Embedded => anyhow::bail!("--device embedded is only built off Windows"),
            #[cfg(windows)]
            DeviceKind::Windows => crate::windows::open(),
            #[cfg(not(windows))]
            DeviceKind::Windows => anyhow::bail!("--device windows is only available on Windows"),
            DeviceKind::None => Ok(Box::new(NoDevice)),
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect a stream socket, send text or a file, close.
    Connect(ConnectArgs),
    /// Open a datagram socket and send numbered pattern datagrams.
    Sendto(SendtoArgs),
    /// Listen, accept one connection, print both of its addresses, and receive until the
    /// peer closes (byte count and sha256).
    Listen(ListenArgs),
    /// Connect a stream socket and receive until the peer closes (byte count and sha256).
    Recv(RecvArgs),
    /// A driver-side echo server: accept N clients, echo each one's bytes back until it
    /// closes, then print a summary. Overlapped requests on a completion port, served by
    /// `--threads` threads (no thread per client).
    Echo(EchoArgs),
    /// Print the driver's counters (QUERY_STATS).
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Exercise every operation against local receivers and verify every byte.
    Demo(DemoArgs),
    /// Send one file through the driver and through the user-mode baseline (sendfile /
    /// TransmitFile) to local sinks; print MiB/s of each, verified, and the ratio.
    Bench(crate::bench::BenchArgs),
    /// The platform's user-mode peer (no driver): accept server, file senders.
    Peer(crate::peer::cmd::PeerArgs),
    /// Resolve a host name (or, with --reverse, an address) in the kernel: RESOLVE
    /// (WskGetAddressInfo / WskGetNameInfo).
    Resolve(crate::resolve::ResolveArgs),
    /// Connect and send initial data in one request: CONNECT_WITH_DATA (WskConnectEx).
    ConnectEx(crate::options::ConnectExArgs),
    /// Connect and send head + a file range + tail in one request: TRANSMIT_FILE (the
    /// driver reads the file and sends it), optionally disconnecting after.
    Transmit(crate::transmit::TransmitArgs),
    /// A netcat through the driver: stdin goes out by SEND, RECEIVE goes to stdout, a
    /// graceful DISCONNECT half-closes at the end of stdin, exit when the peer closes;
    /// `--listen ADDR` accepts one connection; `--udp` sends a datagram per stdin read (or
    /// `--data`) and waits `--timeout-ms` for each reply; `--json` summary on stderr.
    Nc(crate::nc::NcArgs),
}

/// `connect` arguments.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Remote HOST:PORT (names resolved here, in user mode).
    #[arg(value_parser = parse_target)]
    pub target: SocketAddr,
    /// Text to send.
    #[arg(long, conflicts_with = "file")]
    pub text: Option<String>,
    /// File to send (`-` = stdin).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Bytes per SEND request.
    #[arg(long, default_value_t = 64 << 10, value_parser = parse_chunk)]
    pub chunk: usize,
    /// Socket options set with SET_OPTION (and read back) before sending.
    #[command(flatten)]
    pub options: crate::options::SocketOptionArgs,
    /// End the connection with DISCONNECT after the data, before CLOSE: `graceful` (the
    /// peer reads every byte, then end of stream: FIN) or `abortive` (the peer sees a
    /// reset: RST). Without it CLOSE alone ends the connection.
    #[arg(long, value_enum)]
    pub disconnect: Option<DisconnectKind>,
}

/// How `connect --disconnect` ends the connection (DISCONNECT's `flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DisconnectKind {
    /// `WskDisconnect` without flags: FIN after the queued data.
    Graceful,
    /// `WskDisconnect` with `WSK_FLAG_ABORTIVE`: RST.
    Abortive,
}

/// `sendto` arguments.
#[derive(Debug, Args)]
pub struct SendtoArgs {
    /// Remote HOST:PORT.
    #[arg(value_parser = parse_target)]
    pub target: SocketAddr,
    /// Number of datagrams.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Bytes per datagram (8 ..= 65,535; starts with the 8-byte sequence number).
    #[arg(long, default_value_t = 64, value_parser = parse_datagram_size)]
    pub size: usize,
    /// Set the remote address with SET_REMOTE, then send with no address.
    #[arg(long)]
    pub fixed_remote: bool,
}

/// `listen` arguments.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Local ADDR:PORT to listen on (port 0 = ephemeral, printed).
    #[arg(value_parser = parse_target)]
    pub local: SocketAddr,
}

/// `recv` arguments.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Remote HOST:PORT.
    #[arg(value_parser = parse_target)]
    pub target: SocketAddr,
}

/// `echo` arguments.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Local ADDR:PORT to listen on (port 0 = ephemeral, printed).
    #[arg(value_parser = parse_target)]
    pub local: SocketAddr,
    /// Clients to accept and serve (concurrently, all connected at once if they like)
    /// before exiting: 1 ..= 16,383 (the file object's socket table also holds the
    /// listener).
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=crate::echo::MAX_CLIENTS as i64))]
    pub clients: u32,
    /// Threads taking completions from the completion port (the only threads serving the
    /// clients).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// ACCEPT requests kept in flight while clients are still to come. Wine 8.0's netio.sys
    /// serves one WskAccept per listening socket at a time (it fails a second with
    /// STATUS_UNSUCCESSFUL), hence the default of 1.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=crate::echo::MAX_ACCEPTS_IN_FLIGHT as i64))]
    pub accepts: u32,
    /// Bytes of each connection's RECEIVE buffer (the most one RECEIVE returns).
    #[arg(long, default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=wskclient_ioctl::MAX_RECEIVE_BYTES as i64))]
    pub buffer: u32,
    /// Print one JSON summary (with the idle pool figures) instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Bytes per RECEIVE request of `listen`, `recv` and `echo`.
const RECEIVE_CHUNK: usize = 64 << 10;

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stream payload bytes per address family.
    #[arg(long, default_value_t = 4 << 20)]
    pub bytes: u64,
    /// Datagrams per phase (explicit address, then fixed remote).
    #[arg(long, default_value_t = 1_000)]
    pub datagrams: u64,
    /// Bound on each wait, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Report a failed IPv6 connect as skipped, not failed (WSK providers without IPv6,
    /// e.g. Wine 8.0's netio.sys). Never reported as passed.
    #[arg(long)]
    pub ipv6_optional: bool,
}

/// Parses `HOST:PORT`: a literal socket address, else resolved with the system
/// resolver (first address).
pub fn parse_target(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    s.to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: no address"))
}

fn parse_chunk(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if (1..=MAX_SEND_BYTES).contains(&n) {
        Ok(n)
    } else {
        Err(format!("chunk must be 1..={MAX_SEND_BYTES} bytes"))
    }
}

fn parse_datagram_size(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if (DATAGRAM_HEADER..=MAX_SEND_TO_BYTES).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "size must be {DATAGRAM_HEADER}..={MAX_SEND_TO_BYTES} bytes"
        ))
    }
}

/// The wildcard address (port 0) of `target`'s family.
pub fn wildcard_for(target: &SocketAddr) -> SocketAddr {
    match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// Runs `command` on `device`, writing results to `out`.
///
/// Errors: a request failed (message `OPERATION TARGET: STATUS_NAME (0x...)`),
/// or I/O on a local file. `Ok(ExitCode::FAILURE)` when the demo found a mismatch.
pub fn run(
    device: &dyn Device,
    command: &Command,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(device);
    match command {
        Command::Connect(args) => connect(&client, args, out),
        Command::Sendto(args) => sendto(&client, args, out),
        Command::Listen(args) => listen(&client, args, out),
        Command::Recv(args) => recv(&client, args, out),
        Command::Echo(args) => crate::echo::command(device, args, out),
        Command::Stats { json } => {
            let stats = client.stats().context("query_stats")?;
            print_stats(&stats, *json, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => crate::bench::command(device, args, out),
        Command::Peer(args) => crate::peer::cmd::command(args, out),
        Command::Resolve(args) => crate::resolve::command(&client, args, out),
        Command::ConnectEx(args) => crate::options::command(&client, args, out),
        Command::Transmit(args) => crate::transmit::command(device, args, out),
        Command::Nc(args) => crate::nc::command(&client, args, out),
        Command::Demo(args) => {
            let options = DemoOptions {
                bytes: args.bytes,
                datagrams: args.datagrams,
                timeout: Duration::from_secs(args.timeout_secs.max(1)),
                progress: Progress::allowed(args.json),
                ipv6_optional: args.ipv6_optional,
                ..DemoOptions::default()
            };
            let report = demo::run(&client, &options);
            if args.json {
                serde_json::to_writer_pretty(&mut *out, &report)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", report.table())?;
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn connect(
    client: &Client<'_>,
    args: &ConnectArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let target = args.target;
    let mut source: Box<dyn Read> = match (&args.text, &args.file) {
        (Some(text), _) => Box::new(io::Cursor::new(text.clone().into_bytes())),
        (None, Some(path)) if path.as_os_str() == "-" => Box::new(io::stdin()),
        (None, Some(path)) => {
            Box::new(File::open(path).with_context(|| format!("open {}", path.display()))?)
        }
        (None, None) => Box::new(io::empty()),
    };
    let total = match (&args.text, &args.file) {
        (Some(text), _) => text.len() as u64,
        (None, Some(path)) if path.as_os_str() != "-" => {
            std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        }
        _ => 0,
    };
    let socket = client
        .open_stream(target)
        .with_context(|| format!("connect {target}"))?;
    let mut progress = Progress::new(total, "connect", Progress::allowed(false));
    let result = (|| -> anyhow::Result<(u64, u64)> {
        crate::options::apply(client, socket.handle, &args.options, out)
            .with_context(|| format!("connect {target}"))?;
        let mut buf = vec![0u8; args.chunk];
        let (mut sent, mut sends) = (0u64, 0u64);
        loop {
            let n = read_full(&mut source, &mut buf).context("read input")?;
            if n == 0 {
                if let Some(kind) = args.disconnect {
                    client
                        .disconnect(socket.handle, kind == DisconnectKind::Abortive)
                        .with_context(|| format!("disconnect ({kind:?}) {target}"))?;
                    writeln!(out, "disconnected ({kind:?}) after {sent} bytes")?;
                }
                return Ok((sent, sends));
            }
            let mut done = 0;
            while done < n {
                let k = client
                    .send(socket.handle, &buf[done..n])
                    .with_context(|| format!("send {target}"))?;
                anyhow::ensure!(k > 0, "send {target}: driver sent 0 bytes");
                done += k;
                sends += 1;
                progress.inc(k as u64);
            }
            sent += n as u64;
        }
    })();
    progress.finish();
    let closed = client
        .close(socket.handle)
        .with_context(|| format!("close {target}"));
    let (sent, sends) = result?;
    closed?;
    writeln!(
        out,
        "sent {sent} bytes in {sends} sends from {} to {}",
        socket
            .local
            .map_or_else(|| "(local address unknown)".to_string(), |a| a.to_string()),
        socket.remote
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Receives on `handle` until the peer closes; returns (bytes, sha256).
fn receive_all(
    client: &Client<'_>,
    handle: SocketHandle,
) -> crate::client::Result<(u64, [u8; 32])> {
    let mut buf = vec![0u8; RECEIVE_CHUNK];
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = client.receive(handle, &mut buf)?;
        if n == 0 {
            return Ok((total, hasher.finalize().into()));
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn show_local(local: Option<SocketAddr>) -> String {
    local.map_or_else(|| "(local address unknown)".to_string(), |a| a.to_string())
}

fn listen(client: &Client<'_>, args: &ListenArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let listener = client
        .open_listen(args.local)
        .with_context(|| format!("listen {}", args.local))?;
    writeln!(out, "listening on {}", listener.local)?;
    out.flush()?;
    // The listening socket stays open until the accepted connection ends: Wine 8.0's
    // WskCloseSocket on a listening socket also closes the OS socket of the connection it
    // accepted last (netio.c keeps it as the listener's "acceptor"; seen in the Windows lane
    // as RECEIVE failing STATUS_OBJECT_TYPE_MISMATCH after an early close).
    let result = (|| -> anyhow::Result<(u64, [u8; 32], SocketAddr)> {
        let socket = client
            .accept(listener.handle)
            .with_context(|| format!("accept {}", listener.local))?;
        writeln!(
            out,
            "accepted: local {} remote {}",
            show_local(socket.local),
            socket.remote
        )?;
        out.flush()?;
        let received = receive_all(client, socket.handle)
            .with_context(|| format!("receive from {}", socket.remote));
        let closed = client
            .close(socket.handle)
            .with_context(|| format!("close {}", socket.remote));
        let (bytes, sha) = received?;
        closed?;
        Ok((bytes, sha, socket.remote))
    })();
    let closed = client
        .close(listener.handle)
        .with_context(|| format!("close {}", listener.local));
    let (bytes, sha, remote) = result?;
    closed?;
    writeln!(
        out,
        "received {bytes} bytes sha256 {} from {remote}",
        hex(&sha)
    )?;
    Ok(ExitCode::SUCCESS)
}

fn recv(client: &Client<'_>, args: &RecvArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let target = args.target;
    let socket = client
        .open_stream(target)
        .with_context(|| format!("connect {target}"))?;
    let received = receive_all(client, socket.handle).with_context(|| format!("receive {target}"));
    let closed = client
        .close(socket.handle)
        .with_context(|| format!("close {target}"));
    let (bytes, sha) = received?;
    closed?;
    writeln!(
        out,
        "received {bytes} bytes sha256 {} from {} on {}",
        hex(&sha),
        socket.remote,
        show_local(socket.local)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Reads until `buf` is full or EOF; returns bytes read.
fn read_full(source: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn sendto(client: &Client<'_>, args: &SendtoArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let target = args.target;
    let local = wildcard_for(&target);
    let socket = client
        .open_datagram(local)
        .with_context(|| format!("open_datagram {local}"))?;
    let result = (|| -> anyhow::Result<u64> {
        let remote = if args.fixed_remote {
            client
                .set_remote(socket.handle, Some(target))
                .with_context(|| format!("set_remote {target}"))?;
            None
        } else {
            Some(target)
        };
        let mut datagram = Vec::with_capacity(args.size);
        let mut bytes = 0;
        let mut progress = Progress::new(
            args.count * args.size as u64,
            "sendto",
            Progress::allowed(false),
        );
        for seq in 0..args.count {
            encode_datagram(seq, args.size, &mut datagram);
            let n = client
                .send_to(socket.handle, remote, &datagram)
                .with_context(|| format!("sendto {target} (datagram {seq})"))?;
            bytes += n as u64;
            progress.inc(n as u64);
        }
        progress.finish();
        Ok(bytes)
    })();
    let closed = client
        .close(socket.handle)
        .with_context(|| format!("close {target}"));
    let bytes = result?;
    closed?;
    writeln!(
        out,
        "sent {} datagrams, {bytes} bytes, from {} to {target}{}",
        args.count,
        socket.local,
        if args.fixed_remote {
            " (fixed remote)"
        } else {
            ""
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct StatsJson {
    bytes_sent: u64,
    sends: u64,
    datagrams_sent: u64,
    datagram_bytes_sent: u64,
    connects: u64,
    connect_fallbacks: u64,
    closes: u64,
    failed_requests: u64,
    cancelled_requests: u64,
    live_sockets: u32,
    pending_requests: u32,
    open_files: u32,
}

fn print_stats(s: &StatsResponse, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let j = StatsJson {
        bytes_sent: s.bytes_sent,
        sends: s.sends,
        datagrams_sent: s.datagrams_sent,
        datagram_bytes_sent: s.datagram_bytes_sent,
        connects: s.connects,
        connect_fallbacks: s.connect_fallbacks,
        closes: s.closes,
        failed_requests: s.failed_requests,
        cancelled_requests: s.cancelled_requests,
        live_sockets: s.live_sockets,
        pending_requests: s.pending_requests,
        open_files: s.open_files,
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(());
    }
    let value = serde_json::to_value(&j)?;
    if let serde_json::Value::Object(map) = value {
        for (name, v) in map {
            writeln!(out, "{name:<20} {v}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wskctl").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connect_arguments() {
        let cli = parse(&["connect", "127.0.0.1:9", "--text", "hi"]).unwrap();
        assert_eq!(cli.device, DeviceKind::default_for_host());
        assert_eq!(cli.frontend, Frontend::Wdm);
        let Command::Connect(args) = cli.command else {
            panic!("not connect")
        };
        assert_eq!(args.target, "127.0.0.1:9".parse().unwrap());
        assert_eq!(args.text.as_deref(), Some("hi"));
        assert_eq!(args.chunk, 65_536);

        let cli = parse(&[
            "--device", "windows", "connect", "[::1]:80", "--file", "x", "--chunk", "10",
        ])
        .unwrap();
        assert_eq!(cli.device, DeviceKind::Windows);
        let Command::Connect(args) = cli.command else {
            panic!("not connect")
        };
        assert_eq!(args.target, "[::1]:80".parse().unwrap());
        assert_eq!(args.chunk, 10);

        assert!(parse(&["connect", "127.0.0.1:9", "--text", "a", "--file", "b"]).is_err());
        assert!(parse(&["connect", "127.0.0.1:9", "--chunk", "0"]).is_err());
        assert!(parse(&["connect", "127.0.0.1:9", "--chunk", "67108865"]).is_err());
        assert!(parse(&["connect", "not an address"]).is_err());
        // `localhost` resolves in user mode.
        assert!(parse(&["connect", "localhost:9"]).is_ok());
    }

    #[test]
    fn sendto_arguments() {
        let cli = parse(&[
            "sendto",
            "127.0.0.1:5000",
            "--count",
            "3",
            "--size",
            "100",
            "--fixed-remote",
        ])
        .unwrap();
        let Command::Sendto(args) = cli.command else {
            panic!("not sendto")
        };
        assert_eq!((args.count, args.size, args.fixed_remote), (3, 100, true));
        assert!(parse(&["sendto", "127.0.0.1:5000", "--size", "7"]).is_err());
        assert!(parse(&["sendto", "127.0.0.1:5000", "--size", "65536"]).is_err());
        assert!(parse(&["sendto", "127.0.0.1:5000", "--size", "65535"]).is_ok());
    }

    #[test]
    fn demo_and_stats_arguments() {
        let cli = parse(&["demo", "--json", "--bytes", "1000"]).unwrap();
        let Command::Demo(args) = cli.command else {
            panic!("not demo")
        };
        assert!(args.json);
        assert_eq!((args.bytes, args.datagrams), (1000, 1000));
        let cli = parse(&["demo"]).unwrap();
        let Command::Demo(args) = cli.command else {
            panic!("not demo")
        };
        assert_eq!(args.bytes, 4 << 20);
        assert!(matches!(
            parse(&["stats", "--json"]).unwrap().command,
            Command::Stats { json: true }
        ));
        assert!(parse(&["--device", "nope", "stats"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn listen_recv_echo_arguments() {
        let Command::Listen(args) = parse(&["listen", "[::1]:0"]).unwrap().command else {
            panic!("not listen")
        };
        assert_eq!(args.local, "[::1]:0".parse().unwrap());
        let Command::Recv(args) = parse(&["recv", "127.0.0.1:7"]).unwrap().command else {
            panic!("not recv")
        };
        assert_eq!(args.target, "127.0.0.1:7".parse().unwrap());
        let Command::Echo(args) = parse(&["echo", "127.0.0.1:7"]).unwrap().command else {
            panic!("not echo")
        };
        assert_eq!(args.clients, 1);
        let Command::Echo(args) = parse(&["echo", "127.0.0.1:7", "--clients", "100"])
            .unwrap()
            .command
        else {
            panic!("not echo")
        };
        assert_eq!(args.clients, 100);
        assert!(parse(&["echo", "127.0.0.1:7", "--clients", "0"]).is_err());
        assert!(parse(&["listen"]).is_err());
    }

    #[test]
    fn transmit_arguments() {
        let cli = parse(&[
            "transmit",
            "[::1]:9",
            "--file",
            "f",
            "--offset",
            "10",
            "--length",
            "20",
            "--head",
            "H",
            "--tail",
            "T",
            "--block-size",
            "4096",
            "--disconnect",
            "--json",
        ])
        .unwrap();
        let Command::Transmit(args) = cli.command else {
            panic!("not transmit")
        };
        assert_eq!(args.target, "[::1]:9".parse().unwrap());
        assert_eq!(args.file, PathBuf::from("f"));
        assert_eq!((args.offset, args.length, args.block_size), (10, 20, 4096));
        assert_eq!((args.head.as_str(), args.tail.as_str()), ("H", "T"));
        assert!(args.disconnect && args.json);
        let Command::Transmit(args) = parse(&["transmit", "127.0.0.1:9", "--file", "f"])
            .unwrap()
            .command
        else {
            panic!("not transmit")
        };
        assert_eq!((args.offset, args.length, args.block_size), (0, 0, 0));
        assert!(args.head.is_empty() && args.tail.is_empty() && !args.disconnect);
        assert!(
            parse(&["transmit", "127.0.0.1:9"]).is_err(),
            "--file is required"
        );
        let max = wskclient_ioctl::transmit::MAX_TRANSMIT_BLOCK;
        let ok = (max).to_string();
        let over = (max + 1).to_string();
        assert!(parse(&[
            "transmit",
            "127.0.0.1:9",
            "--file",
            "f",
            "--block-size",
            &ok
        ])
        .is_ok());
        assert!(parse(&[
            "transmit",
            "127.0.0.1:9",
            "--file",
            "f",
            "--block-size",
            &over
        ])
        .is_err());
    }

    #[test]
    fn peer_never_opens_the_driver() {
        let cli = parse(&["--device", "windows", "stats"]).unwrap();
        assert_eq!(cli.device_for_command(), DeviceKind::Windows);
        let cli = parse(&["stats"]).unwrap();
        assert_eq!(cli.device_for_command(), DeviceKind::default_for_host());
        for device in [&[][..], &["--device", "windows"], &["--device", "none"]] {
            let mut args = device.to_vec();
            args.extend(["peer", "serve", "--listen", "127.0.0.1:0"]);
            let cli = parse(&args).unwrap();
            assert!(matches!(cli.command, Command::Peer(_)));
            assert_eq!(cli.device_for_command(), DeviceKind::None, "{args:?}");
        }
    }

    #[test]
    fn wildcards_follow_the_family() {
        assert_eq!(
            wildcard_for(&"10.0.0.1:1".parse().unwrap()),
            "0.0.0.0:0".parse().unwrap()
        );
        assert_eq!(
            wildcard_for(&"[fe80::1]:1".parse().unwrap()),
            "[::]:0".parse().unwrap()
        );
    }

    #[cfg(not(windows))]
    #[test]
    fn windows_backend_refused_off_windows() {
        // The embedded backend is exercised end to end by tests/embedded.rs (one driver per
        // process, so not from these parallel unit tests).
        assert!(DeviceKind::Windows.open(Frontend::Wdm).is_err());
    }
}
