//! The Linux peer: `accept(2)` + `getsockname(2)`/`getpeername(2)`, and `sendfile(2)`,
//! `writev(2)`, `sendmmsg(2)` senders ending with `shutdown(2)`.
//!
//! Sources: the Linux man pages accept(2), getsockname(2), getpeername(2), sendfile(2),
//! writev(2), sendmmsg(2), shutdown(2).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use socket2::SockRef;

use super::{Connection, Ending, SendMethod, SendOptions, SendReport, ServeOptions};

/// What this backend implements.
pub(super) const METHODS: &[SendMethod] = &[
    SendMethod::Write,
    SendMethod::Sendfile,
    SendMethod::Writev,
    SendMethod::Sendmmsg,
];

/// Bytes per block for `write`, `writev` and `sendmmsg`.
const BLOCK: usize = 64 << 10;
/// Blocks per `writev`/`sendmmsg` call.
const BLOCKS_PER_CALL: usize = 16;

pub(super) struct Listener(TcpListener);

fn sockaddr(addr: socket2::SockAddr, what: &str) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::other(format!("{what}: not an IP address")))
}

/// `getsockname(2)` and `getpeername(2)` of a connected socket.
fn addresses(stream: &TcpStream) -> io::Result<(SocketAddr, SocketAddr)> {
    let s = SockRef::from(stream);
    Ok((
        sockaddr(s.local_addr()?, "getsockname")?,
        sockaddr(s.peer_addr()?, "getpeername")?,
    ))
}

impl Listener {
    pub(super) fn bind(addr: SocketAddr) -> io::Result<Self> {
        TcpListener::bind(addr).map(Listener)
    }

    pub(super) fn local_addr(&self) -> SocketAddr {
        self.0
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// `accept(2)`, the two addresses, then read to end of stream (echoing if asked).
    /// The accept itself blocks until a client comes; [`super::Server`]'s drop connects
    /// to end it when nobody does.
    pub(super) fn accept_one(&self, options: &ServeOptions) -> io::Result<Connection> {
        let (mut stream, _) = self.0.accept()?;
        let (local, remote) = addresses(&stream)?;
        stream.set_read_timeout(Some(options.idle))?;
        stream.set_write_timeout(Some(options.idle))?;
        let mut sent_back = 0u64;
        if !options.greeting.is_empty() {
            stream.write_all(&options.greeting)?;
            sent_back += options.greeting.len() as u64;
        }
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "peer {remote}: idle for {:?} after {bytes} bytes",
                            options.idle
                        ),
                    ))
                }
                Err(e) => return Err(e),
            };
            let data = buf.get(..n).unwrap_or_default();
            hasher.update(data);
            bytes += n as u64;
            if options.echo {
                stream.write_all(data)?;
                sent_back += n as u64;
            }
        }
        // Our end of stream after theirs: the client sees EOF once everything it sent
        // was read.
        stream.shutdown(Shutdown::Write)?;
        Ok(Connection {
            accepted_with: "accept+getsockname/getpeername".into(),
            local,
            remote,
            addresses_agree: true,
            initial: 0,
            bytes,
            sha256: hasher.finalize().into(),
            sent_back,
        })
    }
}

fn check(ret: isize, what: &str) -> io::Result<usize> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(ret as usize)
    }
}

/// Reads `len` bytes of `file` from `offset` into `buf` (sized `len`).
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

/// Sends `[from, end)` of `file` on `stream` by `method`; returns the calls made.
fn transfer(
    stream: &TcpStream,
    file: &File,
    from: u64,
    end: u64,
    method: SendMethod,
) -> io::Result<u64> {
    let fd = stream.as_raw_fd();
    let mut offset = from;
    let mut calls = 0u64;
    let mut buf = vec![0u8; BLOCK * BLOCKS_PER_CALL];
    while offset < end {
        let left = end - offset;
        let n = match method {
            SendMethod::Sendfile => {
                let mut off = offset as libc::off_t;
                let count = left.min(1 << 30) as usize;
                // SAFETY: both descriptors are open for the call; `off` is a valid
                // off_t the kernel updates.
                let r = unsafe { libc::sendfile(fd, file.as_raw_fd(), &mut off, count) };
                check(r, "sendfile")?
            }
            SendMethod::Write => {
                let len = left.min(BLOCK as u64) as usize;
                let chunk = buf.get_mut(..len).unwrap_or_default();
                read_at(file, offset, chunk)?;
                (&*stream).write(chunk)?
            }
            SendMethod::Writev | SendMethod::Sendmmsg => {
                let len = left.min(buf.len() as u64) as usize;
                let chunk = buf.get_mut(..len).unwrap_or_default();
                read_at(file, offset, chunk)?;
                let mut iov: Vec<libc::iovec> = chunk
                    .chunks_mut(BLOCK)
                    .map(|c| libc::iovec {
                        iov_base: c.as_mut_ptr().cast(),
                        iov_len: c.len(),
                    })
                    .collect();
                if method == SendMethod::Writev {
                    // SAFETY: every iovec describes a live part of `buf` for the call.
                    let r = unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as libc::c_int) };
                    check(r, "writev")?
                } else {
                    sendmmsg_all(fd, &mut iov)?
                }
            }
            SendMethod::TransmitFile | SendMethod::TransmitPackets => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "Windows-only method",
                ))
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("{} sent 0 bytes at offset {offset}", method.name()),
            ));
        }
        offset += n as u64;
        calls += 1;
    }
    Ok(calls)
}

/// One `sendmmsg(2)` call with one message per iovec; returns the bytes of the messages
/// sent (a partially sent message reports its `msg_len`).
fn sendmmsg_all(fd: libc::c_int, iov: &mut [libc::iovec]) -> io::Result<usize> {
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: each header points at one live iovec describing live memory.
    let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as libc::c_uint, 0) };
    let sent = check(r as isize, "sendmmsg")?;
    // A message may be partly sent on a stream socket: count its msg_len, stop there.
    let mut bytes = 0usize;
    for (m, v) in msgs.iter().zip(iov.iter()).take(sent) {
        bytes += m.msg_len as usize;
        if (m.msg_len as usize) < v.iov_len {
            break;
        }
    }
    Ok(bytes)
}

pub(super) fn send_file(path: &Path, options: &SendOptions) -> io::Result<SendReport> {
    if options.ending != Ending::Shutdown {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "DisconnectEx is Windows-only (Linux ends with shutdown)",
        ));
    }
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&options.to, options.timeout)?;
    stream.set_write_timeout(Some(options.timeout))?;
    stream.set_read_timeout(Some(options.timeout))?;
    let (local, remote) = addresses(&stream)?;
    let initial = u64::from(options.initial).min(len);
    let mut calls = 0u64;
    if initial > 0 {
        let mut first = vec![0u8; initial as usize];
        read_at(&file, 0, &mut first)?;
        stream.write_all(&first)?;
        calls += 1;
    }
    calls += transfer(&stream, &file, initial, len, options.method)?;
    stream.shutdown(Shutdown::Write)?;
    let received = drain(&mut stream, options.timeout)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(SendReport {
        connected_with: "connect".into(),
        method: options.method.name().into(),
        local,
        remote,
        initial,
        bytes: len,
        calls,
        received,
        seconds,
        ending: "shutdown".into(),
        reused: false,
    })
}

/// Reads to the peer's end of stream; returns the bytes read.
fn drain(stream: &mut TcpStream, timeout: Duration) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no end of stream from the peer within {timeout:?}"),
                ))
            }
            Err(e) => return Err(e),
        }
    }
}
