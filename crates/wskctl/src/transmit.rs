//! `wskctl transmit`: TRANSMIT_FILE over a connected stream socket, with progress, and the
//! [`transmit_file`] call other subcommands (bench) reuse.
//!
//! The driver runs the whole transfer inside the request (docs/ioctl.md, TRANSMIT_FILE), so
//! progress comes from polling QUERY_STATS's `bytes_sent` on another thread meanwhile.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};
use wskclient_ioctl::transmit::{
    TransmitFileRequest, TransmitResponse, TRANSMIT_DISCONNECT, TRANSMIT_REUSE_SOCKET,
};
use wskclient_ioctl::{SocketHandle, IOCTL_WSKCLIENT_TRANSMIT_FILE};
use zerocopy::{FromBytes, IntoBytes};

use crate::client::{Client, NtStatus};
use crate::device::Device;

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

/// `wskctl transmit <addr> --file F ...`: connects (OPEN_STREAM), opens `file` as this
/// process's handle, sends head + range + tail with a progress bar fed by QUERY_STATS, and
/// closes the socket unless the driver already did. Returns the response.
pub fn run(
    device: &dyn Device,
    remote: SocketAddr,
    file: &Path,
    opts: &TransmitOptions,
) -> anyhow::Result<TransmitResponse> {
    let client = Client::new(device);
    let size = std::fs::metadata(file)?.len();
    let range = if opts.length == 0 {
        size.saturating_sub(opts.offset)
    } else {
        opts.length
    };
    let total = range + opts.head.len() as u64 + opts.tail.len() as u64;
    let fh = device.open_file_handle(file, false)?;
    let sock = client.open_stream(remote)?;
    let before = client.stats()?.bytes_sent;
    let done = AtomicBool::new(false);
    let bar = indicatif::ProgressBar::new(total);
    let r = std::thread::scope(|sc| {
        sc.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Ok(s) = client.stats() {
                    bar.set_position(s.bytes_sent.saturating_sub(before).min(total));
                }
                std::thread::sleep(Duration::from_millis(100)); // display refresh only
            }
        });
        let r = transmit_file(device, sock.handle, fh.raw(), opts);
        done.store(true, Ordering::Relaxed);
        r
    });
    bar.finish_and_clear();
    drop(fh);
    let resp = r?;
    if resp.flags & wskclient_ioctl::transmit::TRANSMIT_SOCKET_CLOSED == 0 {
        client.close(sock.handle)?;
    }
    Ok(resp)
}
