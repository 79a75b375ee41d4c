//! `wskctl transmit`: TRANSMIT_FILE over a connected stream socket, with progress, and the
//! [`transmit_file`] call other subcommands (bench) reuse.
//!
//! The driver runs the whole transfer inside the request (docs/ioctl.md, TRANSMIT_FILE), so
//! progress comes from polling QUERY_STATS's `bytes_sent` on another thread meanwhile.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde::Serialize;
use wskclient_ioctl::transmit::{
    TransmitFileRequest, TransmitResponse, MAX_TRANSMIT_BLOCK, TRANSMIT_DISCONNECT,
    TRANSMIT_REUSE_SOCKET, TRANSMIT_SOCKET_CLOSED,
};
use wskclient_ioctl::{SocketHandle, IOCTL_WSKCLIENT_TRANSMIT_FILE};
use zerocopy::{FromBytes, IntoBytes};

use crate::client::{Client, NtStatus};
use crate::device::Device;
use crate::progress::Progress;

/// What to send around and of the file.
#[derive(Clone, Debug, Default)]
pub struct TransmitOptions {
    /// File offset, bytes.
    pub offset: u64,
    /// Bytes of the file; 0 = to the end.
    pub length: u64,
    /// Bytes before the file range.
    pub head: Vec<u8>,
    /// Bytes after the file range.
    pub tail: Vec<u8>,
    /// Bytes per send; 0 = the driver's default (64 KiB).
    pub block_size: u32,
    /// Graceful disconnect after the tail.
    pub disconnect: bool,
    /// Ask for reuse (implies disconnect): the driver closes the socket.
    pub reuse: bool,
}

/// TRANSMIT_FILE of `file_handle` (a handle of this process, 0 for head and tail only) on
/// stream socket `socket`. Returns the driver's response (bytes sent, sends, flags).
/// Errors: the request's NTSTATUS (docs/ioctl.md, TRANSMIT_FILE bad-input table).
pub fn transmit_file(
    device: &dyn Device,
    socket: SocketHandle,
    file_handle: u64,
    opts: &TransmitOptions,
) -> anyhow::Result<TransmitResponse> {
    let mut r = TransmitFileRequest::new(socket, file_handle);
    r.offset = opts.offset;
    r.length = opts.length;
    r.block_size = opts.block_size;
    r.flags = if opts.reuse {
        TRANSMIT_DISCONNECT | TRANSMIT_REUSE_SOCKET
    } else if opts.disconnect {
        TRANSMIT_DISCONNECT
    } else {
        0
    };
    r.head_length = u32::try_from(opts.head.len())?;
    r.tail_length = u32::try_from(opts.tail.len())?;
    let mut input = r.as_bytes().to_vec();
    input.extend_from_slice(&opts.head);
    input.extend_from_slice(&opts.tail);
    let mut out = vec![0u8; TransmitResponse::SIZE];
    let st = device.ioctl(IOCTL_WSKCLIENT_TRANSMIT_FILE, &input, &mut out);
    if st.status != 0 {
        bail!("TRANSMIT_FILE: {}", NtStatus(st.status));
    }
    TransmitResponse::read_from_bytes(&out).map_err(|_| anyhow!("short TRANSMIT_FILE response"))
}

/// What [`run`] did: the driver's response and the connection's addresses.
#[derive(Clone, Copy, Debug)]
pub struct TransmitReport {
    /// The driver's TRANSMIT_FILE response (bytes sent, sends, flags).
    pub response: TransmitResponse,
    /// Local address of the connection (`None` when the provider cannot tell it).
    pub local: Option<SocketAddr>,
    /// Remote address of the connection.
    pub remote: SocketAddr,
}

/// `wskctl transmit <addr> --file F ...`: connects (OPEN_STREAM), opens `file` as this
/// process's handle, sends head + range + tail in one TRANSMIT_FILE request (with a
/// progress bar fed by QUERY_STATS when `progress` is set), and closes the socket unless
/// the driver already did (reuse). The socket is closed on failure too.
///
/// Errors: the file's metadata or open error; `connect ADDR: STATUS_...`;
/// `transmit ADDR: TRANSMIT_FILE: STATUS_...`; `close ADDR: STATUS_...`.
pub fn run(
    device: &dyn Device,
    remote: SocketAddr,
    file: &Path,
    opts: &TransmitOptions,
    progress: bool,
) -> anyhow::Result<TransmitReport> {
    let client = Client::new(device);
    let size = std::fs::metadata(file)
        .with_context(|| format!("open {}", file.display()))?
        .len();
    let range = if opts.length == 0 {
        size.saturating_sub(opts.offset)
    } else {
        opts.length
    };
    let total = range
        .saturating_add(opts.head.len() as u64)
        .saturating_add(opts.tail.len() as u64);
    let fh = device.open_file_handle(file, false)?;
    let sock = client
        .open_stream(remote)
        .with_context(|| format!("connect {remote}"))?;
    let done = AtomicBool::new(false);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        if progress {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    let r = std::thread::scope(|sc| {
        if progress {
            let before = client.stats().map(|s| s.bytes_sent).unwrap_or(0);
            let (done, bar, client) = (&done, &bar, &client);
            sc.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Ok(s) = client.stats() {
                        bar.set_position(s.bytes_sent.saturating_sub(before).min(total));
                    }
                    std::thread::sleep(Duration::from_millis(100)); // display refresh only
                }
            });
        }
        let r = transmit_file(device, sock.handle, fh.raw(), opts);
        done.store(true, Ordering::Relaxed);
        r
    });
    bar.finish_and_clear();
    drop(fh);
    let closed_by_driver = matches!(&r, Ok(resp) if resp.flags & TRANSMIT_SOCKET_CLOSED != 0);
    let closed = if closed_by_driver {
        Ok(())
    } else {
        client
            .close(sock.handle)
            .with_context(|| format!("close {remote}"))
    };
    let response = r.with_context(|| format!("transmit {remote}"))?;
    closed?;
    Ok(TransmitReport {
        response,
        local: sock.local,
        remote: sock.remote,
    })
}

/// `transmit` arguments.
#[derive(Debug, Args)]
pub struct TransmitArgs {
    /// Remote HOST:PORT (names resolved here, in user mode).
    #[arg(value_parser = crate::cli::parse_target)]
    pub target: SocketAddr,
    /// File to send (the driver reads it through a handle this process opens).
    #[arg(long)]
    pub file: PathBuf,
    /// File offset to start at, bytes.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Bytes of the file to send; 0 = to the end of the file.
    #[arg(long, default_value_t = 0)]
    pub length: u64,
    /// Text sent before the file range (the head buffer).
    #[arg(long, default_value = "")]
    pub head: String,
    /// Text sent after the file range (the tail buffer).
    #[arg(long, default_value = "")]
    pub tail: String,
    /// Bytes per send (`nNumberOfBytesPerSend`), 0 ..= 1 MiB; 0 = the driver's default
    /// (64 KiB).
    #[arg(long, default_value_t = 0, value_parser = parse_block_size)]
    pub block_size: u32,
    /// Disconnect gracefully after the tail (`TF_DISCONNECT`): the peer sees end of stream.
    #[arg(long)]
    pub disconnect: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_block_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n <= MAX_TRANSMIT_BLOCK {
        Ok(n)
    } else {
        Err(format!("block size must be 0..={MAX_TRANSMIT_BLOCK} bytes"))
    }
}

#[derive(Serialize)]
struct TransmitJson {
    bytes_sent: u64,
    sends: u32,
    disconnected: bool,
    local: Option<String>,
    remote: String,
}

/// `wskctl transmit`: [`run`], then one line `transmit: sent N bytes in K sends from LOCAL
/// to REMOTE[ (disconnected)]`, or with `--json` an object with `bytes_sent`, `sends`,
/// `disconnected`, `local` (null if unknown) and `remote`.
///
/// Errors: as [`run`].
pub fn command(
    device: &dyn Device,
    args: &TransmitArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let opts = TransmitOptions {
        offset: args.offset,
        length: args.length,
        head: args.head.as_bytes().to_vec(),
        tail: args.tail.as_bytes().to_vec(),
        block_size: args.block_size,
        disconnect: args.disconnect,
        reuse: false,
    };
    let report = run(
        device,
        args.target,
        &args.file,
        &opts,
        Progress::allowed(args.json),
    )?;
    let j = TransmitJson {
        bytes_sent: report.response.bytes_sent,
        sends: report.response.packets,
        disconnected: args.disconnect,
        local: report.local.map(|a| a.to_string()),
        remote: report.remote.to_string(),
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "transmit: sent {} bytes in {} sends from {} to {}{}",
            j.bytes_sent,
            j.sends,
            j.local.as_deref().unwrap_or("(local address unknown)"),
            j.remote,
            if j.disconnected {
                " (disconnected)"
            } else {
                ""
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
