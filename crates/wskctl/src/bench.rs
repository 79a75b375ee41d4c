//! `wskctl bench`: one workload — send an N-byte file to a local sink that counts and
//! hashes — through the driver (the kernel WSK path) and through the platform's user-mode
//! baseline (`sendfile(2)` on Linux, `TransmitFile` on Windows), in one run; prints the
//! throughput of each, verifies every row at the sink (byte count and SHA-256), and prints
//! the ratio.
//!
//! Timing of every row: from the connect to the sink having read the end of stream, so
//! both paths are charged for their connect, their file reads and their close.
//!
//! On the embedded device (every non-Windows build) the driver row runs the driver's code
//! on ntsim, the host emulation of the kernel and of the WSK provider: it measures our
//! code's overhead plus the emulation's (one IOCTL = one emulated IRP, the provider's own
//! I/O thread, real Linux loopback sockets), not the speed of Windows' kernel.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::device::Device;
use crate::payload::Payload;
use crate::peer::{self, hex, Ending, SendMethod, SendOptions, ServeOptions};

pub mod small;

/// A way of sending the file through the driver: connects to `target`, sends every byte of
/// `file`, closes; returns the number of driver requests (or, for TRANSMIT_FILE, the
/// driver's sends) that moved bytes.
pub type DriverSend = fn(&dyn Device, &Path, SocketAddr, &BenchOptions) -> anyhow::Result<u64>;

/// A driver row: its label and how it sends.
#[derive(Clone, Copy)]
pub struct DriverPath {
    /// Shown in the `path` column, e.g. `driver: OPEN_STREAM + SEND`.
    pub label: &'static str,
    /// The sender.
    pub send: DriverSend,
}

/// The driver paths measured by default, in order; the first one is the ratio's
/// numerator.
pub fn driver_paths() -> Vec<DriverPath> {
    vec![
        DriverPath {
            label: "driver: OPEN_STREAM + TRANSMIT_FILE",
            send: send_transmit_file,
        },
        DriverPath {
            label: "driver: OPEN_STREAM + SEND",
            send: send_blocks,
        },
    ]
}

/// The TRANSMIT_FILE path: one request; the driver reads the file through the handle this
/// process opened and sends it (docs/ioctl.md, TRANSMIT_FILE); the socket is closed after.
pub fn send_transmit_file(
    device: &dyn Device,
    file: &Path,
    target: SocketAddr,
    _options: &BenchOptions,
) -> anyhow::Result<u64> {
    let client = Client::new(device);
    let handle = device
        .open_file_handle(file, false)
        .with_context(|| format!("open {}", file.display()))?;
    let socket = client
        .open_stream(target)
        .with_context(|| format!("connect {target}"))?;
    let sent = crate::transmit::transmit_file(
        device,
        socket.handle,
        handle.raw(),
        &crate::transmit::TransmitOptions::default(),
    );
    let closed = match &sent {
        Ok(r) if r.flags & wskclient_ioctl::transmit::TRANSMIT_SOCKET_CLOSED != 0 => Ok(()),
        _ => client
            .close(socket.handle)
            .with_context(|| format!("close {target}")),
    };
    let response = sent.with_context(|| format!("transmit_file {target}"))?;
    closed?;
    Ok(u64::from(response.packets))
}

/// Benchmark parameters.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// File size in bytes (ignored with `file`).
    pub bytes: u64,
    /// An existing file to send instead of a generated one.
    pub file: Option<PathBuf>,
    /// Bytes per SEND request of the SEND path (1 ..= `MAX_SEND_BYTES`).
    pub chunk: usize,
    /// Sink address (port 0 = ephemeral); its family is the workload's.
    pub sink: SocketAddr,
    /// Bound on every wait (sink idle time, each row's end).
    pub timeout: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            bytes: 256 << 20,
            file: None,
            chunk: 1 << 20,
            sink: SocketAddr::from(([127, 0, 0, 1], 0)),
            timeout: Duration::from_secs(120),
        }
    }
}

/// One measured path.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BenchRow {
    /// E.g. `driver: OPEN_STREAM + SEND` or `user mode: sendfile`.
    pub path: String,
    /// Bytes the sink received.
    pub bytes: u64,
    /// Requests (driver IOCTLs, or system / extension-function calls) that moved bytes.
    pub calls: u64,
    /// Connect to the sink's end of stream, seconds.
    pub seconds: f64,
    /// `bytes / seconds`, MiB/s (0 when not verified).
    pub mib_per_s: f64,
    /// The sink received exactly the file (count and SHA-256).
    pub verified: bool,
    /// Not measured because the WSK provider does not implement the operation
    /// (`STATUS_NOT_IMPLEMENTED` / `STATUS_NOT_SUPPORTED`, e.g. TRANSMIT_FILE under Wine
    /// 8.0); never counted as verified.
    pub skipped: bool,
    /// The sink's hash, or the error.
    pub detail: String,
}

/// The benchmark's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Every row verified.
    pub ok: bool,
    /// The workload's size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Driver rows first, then the baseline.
    pub rows: Vec<BenchRow>,
    /// The first verified driver row's MiB/s divided by the baseline's (None unless both
    /// verified).
    pub ratio: Option<f64>,
    /// The driver row of the ratio.
    pub ratio_of: Option<String>,
    /// What the numbers measure on this device.
    pub measures: String,
}

impl BenchReport {
    /// The report as text: a table, the ratio, and what the numbers measure.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "workload: {} bytes ({:.1} MiB), sha256 {}",
            self.bytes,
            self.bytes as f64 / 1048576.0,
            self.sha256
        );
        let _ = writeln!(
            out,
            "{:<36} {:>12} {:>8} {:>9} {:>10} {:<8}  detail",
            "path", "bytes", "calls", "seconds", "MiB/s", "verified"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<36} {:>12} {:>8} {:>9.3} {:>10.1} {:<8}  {}",
                r.path,
                r.bytes,
                r.calls,
                r.seconds,
                r.mib_per_s,
                if r.verified {
                    "yes"
                } else if r.skipped {
                    "skipped"
                } else {
                    "no"
                },
                r.detail
            );
        }
        match (self.ratio, &self.ratio_of) {
            (Some(ratio), Some(of)) => {
                let _ = writeln!(
                    out,
                    "ratio: {of} / {} = {ratio:.3}",
                    self.rows.last().map_or("-", |r| r.path.as_str())
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "ratio: - (no verified driver row, or the baseline failed)"
                );
            }
        }
        let _ = writeln!(out, "measures: {}", self.measures);
        let _ = write!(
            out,
            "{}",
            if self.ok {
                "bench: OK"
            } else {
                "bench: FAILED"
            }
        );
        out
    }
}

/// What the figures mean on the device this build talks to.
pub fn measures() -> &'static str {
    if cfg!(windows) {
        "the driver through \\\\.\\WskClient (the system's I/O manager and WSK provider: \
         Windows, or Wine's ntoskrnl.exe/netio.sys) against TransmitFile from user mode; \
         under Wine both go through Wine's user-mode socket emulation, not Windows' kernel; \
         every row shares one sink that hashes every byte on the same machine, so equal rows \
         mean the sink is the bound"
    } else {
        "the embedded device: the driver's code on ntsim (emulated I/O manager and WSK \
         provider over Linux loopback sockets) against sendfile(2); the driver row is our \
         code's overhead plus the emulation's, not Windows kernel speed; every row shares \
         one sink that hashes every byte on the same machine, so equal rows mean the sink \
         is the bound"
    }
}

/// The default SEND path: reads the file in `options.chunk` blocks and sends each with
/// SEND requests until all of it was sent.
pub fn send_blocks(
    device: &dyn Device,
    file: &Path,
    target: SocketAddr,
    options: &BenchOptions,
) -> anyhow::Result<u64> {
    let client = Client::new(device);
    let mut source = File::open(file).with_context(|| format!("open {}", file.display()))?;
    let socket = client
        .open_stream(target)
        .with_context(|| format!("connect {target}"))?;
    let result = (|| -> anyhow::Result<u64> {
        let mut buf = vec![0u8; options.chunk.max(1)];
        let mut sends = 0u64;
        loop {
            let n = read_full(&mut source, &mut buf).context("read file")?;
            if n == 0 {
                return Ok(sends);
            }
            let mut done = 0;
            while done < n {
                let data = buf.get(done..n).unwrap_or_default();
                let k = client
                    .send(socket.handle, data)
                    .with_context(|| format!("send {target}"))?;
                anyhow::ensure!(k > 0, "send {target}: driver sent 0 bytes");
                done += k;
                sends += 1;
            }
        }
    })();
    let closed = client
        .close(socket.handle)
        .with_context(|| format!("close {target}"));
    let sends = result?;
    closed?;
    Ok(sends)
}

fn read_full(source: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A generated workload file, removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn generate(bytes: u64) -> anyhow::Result<(TempFile, [u8; 32])> {
    let path =
        std::env::temp_dir().join(format!("wskctl-bench-{}-{bytes}.bin", std::process::id()));
    let guard = TempFile(path.clone());
    let payload = Payload::new(0x4245_4E43_4857_534B, bytes); // "BENCHWSK"
    let mut out = io::BufWriter::new(
        File::create(&path).with_context(|| format!("create {}", path.display()))?,
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < bytes {
        let n = (bytes - offset).min(buf.len() as u64) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        payload.fill(offset, chunk);
        out.write_all(chunk)?;
        offset += n as u64;
    }
    out.flush()?;
    Ok((guard, payload.sha256()))
}

fn hash_file(path: &Path) -> anyhow::Result<(u64, [u8; 32])> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 {
            return Ok((total, h.finalize().into()));
        }
        h.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
}

fn sink(options: &BenchOptions) -> io::Result<peer::Server> {
    peer::Server::start(ServeOptions {
        listen: options.sink,
        connections: 1,
        idle: options.timeout,
        ..ServeOptions::default()
    })
}

/// Checks the sink's report for `row` against the file.
fn verify(
    row: &mut BenchRow,
    server: &mut peer::Server,
    options: &BenchOptions,
    len: u64,
    sha: &[u8; 32],
    start: Instant,
) {
    match server.next(options.timeout) {
        Ok(c) => {
            row.seconds = start.elapsed().as_secs_f64();
            row.bytes = c.bytes;
            if c.bytes == len && &c.sha256 == sha {
                row.verified = true;
                row.mib_per_s = if row.seconds > 0.0 {
                    c.bytes as f64 / row.seconds / 1048576.0
                } else {
                    0.0
                };
                row.detail = format!("sink: sha256 {} from {}", &hex(&c.sha256)[..16], c.remote);
            } else {
                row.detail = format!(
                    "sink got {} of {len} bytes, sha256 {}",
                    c.bytes,
                    &hex(&c.sha256)[..16]
                );
            }
        }
        Err(e) => row.detail = format!("sink: {e}"),
    }
}

fn new_row(path: &str) -> BenchRow {
    BenchRow {
        path: path.into(),
        bytes: 0,
        calls: 0,
        seconds: 0.0,
        mib_per_s: 0.0,
        verified: false,
        skipped: false,
        detail: String::new(),
    }
}

/// Whether `e` carries `STATUS_NOT_IMPLEMENTED` or `STATUS_NOT_SUPPORTED` from the driver
/// (the provider lacks the operation), as a typed client error or in the message of the
/// TRANSMIT_FILE helper.
fn provider_lacks(e: &anyhow::Error) -> bool {
    use wskclient_ioctl::status::{STATUS_NOT_IMPLEMENTED, STATUS_NOT_SUPPORTED};
    if e.chain().any(|c| {
        c.downcast_ref::<crate::client::Error>()
            .is_some_and(crate::demo::provider_lacks_it)
    }) {
        return true;
    }
    let text = format!("{e:#}");
    [STATUS_NOT_IMPLEMENTED, STATUS_NOT_SUPPORTED]
        .iter()
        .any(|&s| text.contains(&crate::client::NtStatus(s).to_string()))
}

/// Runs `paths` then the user-mode baseline on the same file, each to its own sink.
/// Never fails as a whole once the file exists: failures are rows with
/// `verified = false`.
///
/// Errors: the workload file could not be created or read.
pub fn run(
    device: &dyn Device,
    options: &BenchOptions,
    paths: &[DriverPath],
) -> anyhow::Result<BenchReport> {
    let (_guard, file, len, sha) = match &options.file {
        Some(path) => {
            let (len, sha) = hash_file(path)?;
            (None, path.clone(), len, sha)
        }
        None => {
            let (guard, sha) = generate(options.bytes)?;
            let path = guard.0.clone();
            (Some(guard), path, options.bytes, sha)
        }
    };
    let mut rows = Vec::new();
    for path in paths {
        let mut row = new_row(path.label);
        match sink(options) {
            Err(e) => row.detail = format!("sink: {e}"),
            Ok(mut server) => {
                let start = Instant::now();
                match (path.send)(device, &file, server.local_addr(), options) {
                    Ok(calls) => {
                        row.calls = calls;
                        verify(&mut row, &mut server, options, len, &sha, start);
                    }
                    Err(e) => {
                        row.skipped = provider_lacks(&e);
                        row.detail = if row.skipped {
                            format!("skipped: provider lacks it ({e:#})")
                        } else {
                            format!("{e:#}")
                        };
                    }
                }
            }
        }
        rows.push(row);
    }
    let method = SendMethod::baseline();
    let mut row = new_row(&format!("user mode: {}", method.name()));
    match sink(options) {
        Err(e) => row.detail = format!("sink: {e}"),
        Ok(mut server) => {
            let start = Instant::now();
            let sent = peer::send_file(
                &file,
                &SendOptions {
                    to: server.local_addr(),
                    method,
                    initial: 0,
                    ending: Ending::Shutdown,
                    timeout: options.timeout,
                },
            );
            match sent {
                Ok(report) => {
                    row.calls = report.calls;
                    verify(&mut row, &mut server, options, len, &sha, start);
                }
                Err(e) => row.detail = format!("{}: {e}", method.name()),
            }
        }
    }
    rows.push(row);
    let driver = rows
        .iter()
        .take(rows.len().saturating_sub(1))
        .find(|r| r.verified)
        .cloned();
    let ratio = match (&driver, rows.last()) {
        (Some(d), Some(b)) if b.verified && b.mib_per_s > 0.0 => {
            Some((d.path.clone(), d.mib_per_s / b.mib_per_s))
        }
        _ => None,
    };
    Ok(BenchReport {
        ok: driver.is_some() && rows.iter().all(|r| r.verified || r.skipped),
        ratio_of: ratio.as_ref().map(|r| r.0.clone()),
        ratio: ratio.map(|r| r.1),
        bytes: len,
        sha256: hex(&sha),
        rows,
        measures: measures().into(),
    })
}

/// `wskctl bench` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// File size in MiB (a generated, seeded file in the temp directory).
    #[arg(long, default_value_t = 256)]
    pub mib: u64,
    /// Send this file instead of a generated one.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Bytes per SEND request of the driver's SEND path.
    #[arg(long, default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(1..=wskclient_ioctl::MAX_SEND_BYTES as u64))]
    pub chunk: u64,
    /// Sink address (port 0 = ephemeral); its family is the workload's.
    #[arg(long, default_value = "127.0.0.1:0", value_parser = crate::cli::parse_target)]
    pub sink: SocketAddr,
    /// Bound on each wait, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The small-request benchmark instead of the file throughput one: SEND 64 B and
    /// 1 KiB, SEND_TO 64 B and RECEIVE 64 B / 1 KiB through the driver against send(2),
    /// sendto(2) and recv(2), interleaved rounds, median ratios, allocations per request.
    #[arg(long)]
    pub small: bool,
    /// `--small`: requests per side per round.
    #[arg(long, default_value_t = 10_000, requires = "small",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: u64,
    /// `--small`: timed rounds per case (ours and raw alternate which goes first).
    #[arg(long, default_value_t = 5, requires = "small",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    /// `--small`: untimed requests per side before the rounds.
    #[arg(long, default_value_t = 1_000, requires = "small")]
    pub warmup: u64,
    /// `--small`: run only these cases (repeatable; default all).
    #[arg(long = "case", value_enum, requires = "small")]
    pub cases: Vec<small::Case>,
    /// `--small`: skip the raw side (instruction counts of the driver path alone).
    #[arg(long, requires = "small")]
    pub ours_only: bool,
}

/// Runs `wskctl bench` and prints the report.
///
/// Errors: the workload file could not be made or read, or output failed.
/// `Ok(ExitCode::FAILURE)` when a row was not verified.
pub fn command(
    device: &dyn Device,
    args: &BenchArgs,
    out: &mut dyn Write,
) -> anyhow::Result<std::process::ExitCode> {
    if args.small {
        return small_command(device, args, out);
    }
    let options = BenchOptions {
        bytes: args.mib.saturating_mul(1 << 20),
        file: args.file.clone(),
        chunk: args.chunk as usize,
        sink: args.sink,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let report = run(device, &options, &driver_paths())?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", report.table())?;
    }
    Ok(if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// `wskctl bench --small`: runs [`small::run`] and prints its report.
fn small_command(
    device: &dyn Device,
    args: &BenchArgs,
    out: &mut dyn Write,
) -> anyhow::Result<std::process::ExitCode> {
    let options = small::SmallOptions {
        ops: args.ops,
        rounds: args.rounds,
        warmup: args.warmup,
        cases: if args.cases.is_empty() {
            small::Case::ALL.to_vec()
        } else {
            args.cases.clone()
        },
        ours_only: args.ours_only,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let report = small::run(device, &options)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", report.table())?;
    }
    Ok(if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
