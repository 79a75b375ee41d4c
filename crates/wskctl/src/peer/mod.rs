//! The platform's user-mode peer: what the driver talks to, and the user-mode baseline the
//! benchmark compares the driver with.
//!
//! One abstraction, two backends:
//!
//! - Linux ([`linux`](self)): `accept(2)` with `getsockname(2)`/`getpeername(2)` for the
//!   addresses, `sendfile(2)`, `writev(2)`, `sendmmsg(2)` senders, `shutdown(2)` for the
//!   end of stream.
//! - Windows (`windows`): the Winsock extension functions obtained at run time with
//!   `WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)`: an I/O completion port server that
//!   accepts with `AcceptEx` (including initial data) and reads both addresses with
//!   `GetAcceptExSockaddrs`; `ConnectEx` with initial data, `DisconnectEx` with
//!   `TF_REUSE_SOCKET`, `TransmitFile` and `TransmitPackets` senders.
//!   Sources: <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-acceptex>,
//!   <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-getacceptexsockaddrs>,
//!   <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_connectex>,
//!   <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_disconnectex>,
//!   <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-transmitfile>,
//!   <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_transmitpackets>
//!   (and seed 004 of this project).
//!
//! Everything here is user-mode test tooling: every wait is bounded (socket timeouts,
//! completion-port timeouts, `recv_timeout`), nothing sleeps.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

pub mod cmd;
#[cfg(not(windows))]
mod linux;
#[cfg(not(windows))]
use linux as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

/// What the peer server does with each connection it accepts.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on (port 0 = ephemeral; [`Server::local_addr`] tells the port).
    pub listen: SocketAddr,
    /// Connections to accept, one after the other, before the server ends.
    pub connections: u32,
    /// Send every received byte back.
    pub echo: bool,
    /// Bytes sent to each client right after the accept, before reading.
    pub greeting: Vec<u8>,
    /// Windows: bytes of initial data `AcceptEx` waits for before it completes (its
    /// `dwReceiveDataLength`); 0 = complete on connect. Ignored on Linux (`accept(2)` never
    /// carries data).
    pub initial_bytes: u32,
    /// A connection fails with `TimedOut` when no byte arrives for this long; also bounds
    /// each accept.
    pub idle: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            connections: 1,
            echo: false,
            greeting: Vec::new(),
            initial_bytes: 0,
            idle: Duration::from_secs(30),
        }
    }
}

/// One connection the server accepted and read to end of stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// How it was accepted: `accept+getsockname/getpeername` (Linux) or
    /// `AcceptEx+GetAcceptExSockaddrs` (Windows).
    pub accepted_with: String,
    /// The connection's local address (the server side).
    pub local: SocketAddr,
    /// The connection's remote address (the client side).
    pub remote: SocketAddr,
    /// Windows: `getsockname`/`getpeername` after `SO_UPDATE_ACCEPT_CONTEXT` agree with
    /// `GetAcceptExSockaddrs`. Linux: always true (one source).
    pub addresses_agree: bool,
    /// Bytes that completed the accept (`AcceptEx` initial data); 0 on Linux.
    pub initial: u64,
    /// Bytes received in total (initial data included) before end of stream.
    pub bytes: u64,
    /// SHA-256 of those bytes.
    #[serde(serialize_with = "hex_serde")]
    pub sha256: [u8; 32],
    /// Bytes sent back (echo and greeting).
    pub sent_back: u64,
}

fn hex_serde<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A listening peer server: accepts [`ServeOptions::connections`] connections on a thread,
/// reads each to end of stream (hashing it), and reports each as a [`Connection`].
pub struct Server {
    addr: SocketAddr,
    results: mpsc::Receiver<io::Result<Connection>>,
    thread: Option<JoinHandle<()>>,
    remaining: u32,
}

impl Server {
    /// Binds and listens on `options.listen`, then serves on a thread.
    ///
    /// Errors: the bind/listen error (e.g. `AddrInUse`); on Windows also a missing
    /// extension function (`WSAIoctl` failing).
    pub fn start(options: ServeOptions) -> io::Result<Server> {
        let listener = imp::Listener::bind(options.listen)?;
        let addr = listener.local_addr();
        let (tx, results) = mpsc::sync_channel(options.connections as usize);
        let remaining = options.connections;
        let thread = std::thread::Builder::new()
            .name("wskctl-peer".into())
            .spawn(move || {
                for _ in 0..options.connections {
                    let outcome = listener.accept_one(&options);
                    let failed = outcome.is_err();
                    if tx.send(outcome).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Server {
            addr,
            results,
            thread: Some(thread),
            remaining,
        })
    }

    /// The listening address (ephemeral port resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits at most `timeout` for the next connection's report.
    ///
    /// Errors: `TimedOut` when none finished in time; the connection's I/O error
    /// (`TimedOut` when the client went idle); `BrokenPipe` when the server already
    /// ended (an earlier connection failed, or all were reported).
    pub fn next(&mut self, timeout: Duration) -> io::Result<Connection> {
        if self.remaining == 0 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "peer server: every connection was already reported",
            ));
        }
        match self.results.recv_timeout(timeout) {
            Ok(outcome) => {
                self.remaining = if outcome.is_ok() {
                    self.remaining - 1
                } else {
                    0
                };
                outcome
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "peer server on {}: no connection finished within {timeout:?}",
                    self.addr
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.remaining = 0;
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "peer server thread ended",
                ))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Unblock an accept still waiting (nobody came): connect once per missing client.
        // Each such connection ends at once (EOF), so the thread finishes.
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && self.remaining > 0 {
                let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
                match self.results.recv_timeout(Duration::from_secs(5)) {
                    Ok(_) => self.remaining -= 1,
                    Err(_) => break,
                }
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// How a sender moves the file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SendMethod {
    /// `send`/`write` of 64 KiB blocks (both platforms).
    Write,
    /// Linux `sendfile(2)`: file to socket inside the kernel.
    Sendfile,
    /// Linux `writev(2)`: 16 blocks of 64 KiB per call.
    Writev,
    /// Linux `sendmmsg(2)`: 16 messages of 64 KiB per call (on TCP the messages are
    /// concatenated in order).
    Sendmmsg,
    /// Windows `TransmitFile` (the file through the cache manager).
    TransmitFile,
    /// Windows `TransmitPackets` with one `TP_ELEMENT_FILE` element.
    TransmitPackets,
}

impl SendMethod {
    /// The methods this platform implements.
    pub fn available() -> &'static [SendMethod] {
        imp::METHODS
    }

    /// The kebab-case name (`sendfile`, `transmit-file`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SendMethod::Write => "write",
            SendMethod::Sendfile => "sendfile",
            SendMethod::Writev => "writev",
            SendMethod::Sendmmsg => "sendmmsg",
            SendMethod::TransmitFile => "transmit-file",
            SendMethod::TransmitPackets => "transmit-packets",
        }
    }

    /// The platform's fastest file sender: `sendfile` on Linux, `TransmitFile` on Windows.
    pub fn baseline() -> SendMethod {
        if cfg!(windows) {
            SendMethod::TransmitFile
        } else {
            SendMethod::Sendfile
        }
    }
}

/// How a sender ends the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// `shutdown(SHUT_WR / SD_SEND)`, then read to the peer's end of stream, then close.
    Shutdown,
    /// Windows `DisconnectEx(0)`.
    DisconnectEx,
    /// Windows `DisconnectEx(TF_REUSE_SOCKET)`, then the same socket is connected again
    /// with `ConnectEx` and the file is sent a second time; reported when the platform
    /// ignores the reuse.
    DisconnectExReuse,
}

/// What a sender does.
#[derive(Clone, Debug)]
pub struct SendOptions {
    /// Where to connect.
    pub to: SocketAddr,
    /// How the file's bytes move.
    pub method: SendMethod,
    /// Bytes of the file to send with the connect (Windows: `ConnectEx`'s send buffer;
    /// Linux: the first `write` after `connect`); the rest goes by `method`.
    pub initial: u32,
    /// How the connection ends.
    pub ending: Ending,
    /// Bound on each wait (connect, each transfer, the peer's end of stream).
    pub timeout: Duration,
}

/// What a sender did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SendReport {
    /// `connect` or `ConnectEx`.
    pub connected_with: String,
    /// The method's name.
    pub method: String,
    /// The sending socket's local address (`getsockname`).
    pub local: SocketAddr,
    /// The connected remote address (`getpeername`).
    pub remote: SocketAddr,
    /// Bytes sent with the connect.
    pub initial: u64,
    /// Bytes sent in total (initial included; twice the file when reused).
    pub bytes: u64,
    /// System calls (or extension-function calls) that moved bytes.
    pub calls: u64,
    /// Bytes the peer sent back before its end of stream.
    pub received: u64,
    /// Wall time from the connect to the peer's end of stream, seconds.
    pub seconds: f64,
    /// How the connection ended, e.g. `shutdown`, `DisconnectEx(TF_REUSE_SOCKET): reused`,
    /// or `DisconnectEx(TF_REUSE_SOCKET): reuse ignored (ConnectEx: ...)`.
    pub ending: String,
    /// Whether the socket was connected a second time after `DisconnectEx(TF_REUSE_SOCKET)`.
    pub reused: bool,
}

/// Connects to `options.to` and sends `file` by `options.method`, then ends the
/// connection as `options.ending` says.
///
/// Errors: `Unsupported` for a method or ending this platform lacks (Windows
/// `TransmitPackets` where the platform's implementation fails it is reported with the
/// platform's error); the connect, send or file error; `TimedOut` when a wait passed
/// `options.timeout`.
pub fn send_file(file: &Path, options: &SendOptions) -> io::Result<SendReport> {
    if !SendMethod::available().contains(&options.method) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} is not available on this platform",
                options.method.name()
            ),
        ));
    }
    imp::send_file(file, options)
}
