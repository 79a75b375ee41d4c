//! The Windows peer: the Winsock extension functions, obtained at run time with
//! `WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)` (seed 004; Microsoft: "The function
//! pointer for the AcceptEx function must be obtained at run time by making a call to the
//! WSAIoctl function with the SIO_GET_EXTENSION_FUNCTION_POINTER opcode specified",
//! <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-acceptex>).
//!
//! - Server: a listening socket associated with an I/O completion port; each connection is
//!   accepted with `AcceptEx` (optionally waiting for initial data), its completion
//!   dequeued with `GetQueuedCompletionStatus` (bounded), both addresses read with
//!   `GetAcceptExSockaddrs` and cross-checked with `getsockname`/`getpeername` after
//!   `SO_UPDATE_ACCEPT_CONTEXT`; the rest is read with `recv` (bounded by `SO_RCVTIMEO`).
//! - Sender: `bind` to the wildcard address, `ConnectEx` with the file's first bytes
//!   (then `SO_UPDATE_CONNECT_CONTEXT`), the rest with `TransmitFile`, `TransmitPackets`
//!   (one `TP_ELEMENT_FILE`) or `send`; ending with `shutdown(SD_SEND)` or `DisconnectEx`
//!   (optionally `TF_REUSE_SOCKET`, after which the same socket is connected again with
//!   `ConnectEx`: when that fails, the reuse was ignored and the report says so).
//!   Each overlapped call carries its own event; waits are `WaitForSingleObject` with a
//!   timeout, then `WSAGetOverlappedResult` without waiting.
//!
//! Sources (beyond seed 004): <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-getacceptexsockaddrs>,
//! <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_connectex>,
//! <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_disconnectex>,
//! <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-transmitfile>,
//! <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_transmitpackets>,
//! <https://learn.microsoft.com/en-us/windows/win32/winsock/sol-socket-socket-options>
//! (SO_UPDATE_ACCEPT_CONTEXT, SO_UPDATE_CONNECT_CONTEXT, SO_RCVTIMEO).

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::Once;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0};
use windows_sys::Win32::Networking::WinSock::{
    bind, closesocket, getpeername, getsockname, listen, recv, send, setsockopt, shutdown,
    WSAGetLastError, WSAGetOverlappedResult, WSAIoctl, WSASocketW, WSAStartup, AF_INET, AF_INET6,
    IN6_ADDR, IN6_ADDR_0, INVALID_SOCKET, IN_ADDR, IN_ADDR_0, IPPROTO_TCP, LPFN_ACCEPTEX,
    LPFN_CONNECTEX, LPFN_DISCONNECTEX, LPFN_GETACCEPTEXSOCKADDRS, LPFN_TRANSMITFILE,
    LPFN_TRANSMITPACKETS, SD_SEND, SIO_GET_EXTENSION_FUNCTION_POINTER, SOCKADDR, SOCKADDR_IN,
    SOCKADDR_IN6, SOCKADDR_IN6_0, SOCKADDR_STORAGE, SOCKET, SOCKET_ERROR, SOCK_STREAM, SOL_SOCKET,
    SO_RCVTIMEO, SO_UPDATE_ACCEPT_CONTEXT, SO_UPDATE_CONNECT_CONTEXT, TF_REUSE_SOCKET,
    TP_ELEMENT_FILE, TRANSMIT_PACKETS_ELEMENT, TRANSMIT_PACKETS_ELEMENT_0,
    TRANSMIT_PACKETS_ELEMENT_0_0, WSADATA, WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_DISCONNECTEX,
    WSAID_GETACCEPTEXSOCKADDRS, WSAID_TRANSMITFILE, WSAID_TRANSMITPACKETS, WSA_FLAG_OVERLAPPED,
    WSA_IO_PENDING,
};
use windows_sys::Win32::System::Threading::{CreateEventW, WaitForSingleObject};
use windows_sys::Win32::System::IO::{
    CancelIoEx, CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED,
};

use super::{Connection, Ending, SendMethod, SendOptions, SendReport, ServeOptions};

/// What this backend implements.
pub(super) const METHODS: &[SendMethod] = &[
    SendMethod::Write,
    SendMethod::TransmitFile,
    SendMethod::TransmitPackets,
];

/// Bytes per `send` of the `write` method and per `recv`.
const BLOCK: usize = 64 << 10;
/// Room for one address in the `AcceptEx` buffer: "at least 16 bytes more than the maximum
/// address length for the transport protocol in use" (AcceptEx reference page).
const ADDR_ROOM: u32 = (size_of::<SOCKADDR_STORAGE>() + 16) as u32;

fn startup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: WSADATA is plain data the call fills in; version 2.2.
        let mut data: WSADATA = unsafe { zeroed() };
        // SAFETY: `data` is valid for writes for the call.
        unsafe { WSAStartup(0x0202, &mut data) };
    });
}

/// The last Winsock error of this thread, with `what` and the error's name when known.
fn wsa_error(what: &str) -> io::Error {
    // SAFETY: no preconditions.
    let code = unsafe { WSAGetLastError() };
    from_code(what, code)
}

fn from_code(what: &str, code: i32) -> io::Error {
    let name = match code {
        10022 => "WSAEINVAL",
        10045 => "WSAEOPNOTSUPP",
        10048 => "WSAEADDRINUSE",
        10053 => "WSAECONNABORTED",
        10054 => "WSAECONNRESET",
        10056 => "WSAEISCONN",
        10057 => "WSAENOTCONN",
        10060 => "WSAETIMEDOUT",
        10061 => "WSAECONNREFUSED",
        995 => "WSA_OPERATION_ABORTED",
        _ => "",
    };
    let kind = io::Error::from_raw_os_error(code).kind();
    io::Error::new(kind, format!("{what}: {name} ({code})"))
}

/// An owned overlapped socket.
struct Socket(SOCKET);

impl Socket {
    fn new(family: u16) -> io::Result<Socket> {
        startup();
        // SAFETY: plain call; no protocol info; overlapped so the extension functions and
        // completion ports work on it.
        let s = unsafe {
            WSASocketW(
                i32::from(family),
                SOCK_STREAM,
                IPPROTO_TCP,
                null(),
                0,
                WSA_FLAG_OVERLAPPED,
            )
        };
        if s == INVALID_SOCKET {
            return Err(wsa_error("WSASocketW"));
        }
        Ok(Socket(s))
    }

    fn bind(&self, addr: &SocketAddr) -> io::Result<()> {
        let (storage, len) = to_sockaddr(addr);
        // SAFETY: `storage` holds a sockaddr of `len` bytes.
        let r = unsafe { bind(self.0, (&raw const storage).cast(), len) };
        if r == SOCKET_ERROR {
            return Err(wsa_error(&format!("bind {addr}")));
        }
        Ok(())
    }

    fn name(&self, peer: bool) -> io::Result<SocketAddr> {
        // SAFETY: all-zero SOCKADDR_STORAGE is valid.
        let mut storage: SOCKADDR_STORAGE = unsafe { zeroed() };
        let mut len = size_of::<SOCKADDR_STORAGE>() as i32;
        // SAFETY: `storage` is writable for `len` bytes.
        let r = unsafe {
            if peer {
                getpeername(self.0, (&raw mut storage).cast(), &mut len)
            } else {
                getsockname(self.0, (&raw mut storage).cast(), &mut len)
            }
        };
        let what = if peer { "getpeername" } else { "getsockname" };
        if r == SOCKET_ERROR {
            return Err(wsa_error(what));
        }
        // SAFETY: the call wrote a sockaddr of `len` bytes into `storage`.
        unsafe { from_sockaddr((&raw const storage).cast(), len) }
            .ok_or_else(|| io::Error::other(format!("{what}: not an IP address")))
    }

    fn set_option(&self, name: i32, value: &[u8]) -> io::Result<()> {
        // SAFETY: `value` is valid for its length.
        let r = unsafe { setsockopt(self.0, SOL_SOCKET, name, value.as_ptr(), value.len() as i32) };
        if r == SOCKET_ERROR {
            return Err(wsa_error(&format!("setsockopt({name})")));
        }
        Ok(())
    }

    fn set_receive_timeout(&self, t: Duration) -> io::Result<()> {
        let ms = u32::try_from(t.as_millis()).unwrap_or(u32::MAX).max(1);
        self.set_option(SO_RCVTIMEO, &ms.to_ne_bytes())
    }

    fn send_all(&self, mut data: &[u8]) -> io::Result<u64> {
        let mut calls = 0;
        while !data.is_empty() {
            let n = data.len().min(BLOCK);
            // SAFETY: `data` is valid for `n` bytes.
            let r = unsafe { send(self.0, data.as_ptr(), n as i32, 0) };
            if r == SOCKET_ERROR {
                return Err(wsa_error("send"));
            }
            if r == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "send sent 0 bytes",
                ));
            }
            data = data.get(r as usize..).unwrap_or_default();
            calls += 1;
        }
        Ok(calls)
    }

    /// `recv`; `Ok(0)` at end of stream; `TimedOut` after `SO_RCVTIMEO`.
    fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(i32::MAX as usize) as i32;
        // SAFETY: `buf` is writable for `len` bytes.
        let r = unsafe { recv(self.0, buf.as_mut_ptr(), len, 0) };
        if r == SOCKET_ERROR {
            return Err(wsa_error("recv"));
        }
        Ok(r as usize)
    }

    fn shutdown_send(&self) -> io::Result<()> {
        // SAFETY: plain call on an open socket.
        if unsafe { shutdown(self.0, SD_SEND) } == SOCKET_ERROR {
            return Err(wsa_error("shutdown(SD_SEND)"));
        }
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the socket is owned and closed once.
        unsafe { closesocket(self.0) };
    }
}

/// An owned kernel handle (event or completion port).
struct Handle(HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is owned and closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// `WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER, guid)`: the function's address.
fn extension(s: &Socket, guid: &GUID, name: &str) -> io::Result<*mut c_void> {
    let mut ptr: *mut c_void = null_mut();
    let mut bytes = 0u32;
    // SAFETY: input is the GUID (16 bytes), output one pointer; synchronous call.
    let r = unsafe {
        WSAIoctl(
            s.0,
            SIO_GET_EXTENSION_FUNCTION_POINTER,
            (guid as *const GUID).cast(),
            size_of::<GUID>() as u32,
            (&raw mut ptr).cast(),
            size_of::<*mut c_void>() as u32,
            &mut bytes,
            null_mut(),
            None,
        )
    };
    if r == SOCKET_ERROR {
        return Err(wsa_error(&format!(
            "WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER, {name})"
        )));
    }
    if ptr.is_null() {
        return Err(io::Error::other(format!("{name}: null function pointer")));
    }
    Ok(ptr)
}

macro_rules! ext {
    ($s:expr, $guid:ident, $ty:ty) => {{
        let p = extension($s, &$guid, stringify!($guid))?;
        // SAFETY: WSAIoctl returned the address of the function the GUID names, whose
        // signature is `$ty` (mswsock.h); a non-null pointer becomes `Some`.
        let f: $ty = unsafe { std::mem::transmute::<*mut c_void, $ty>(p) };
        f.ok_or_else(|| io::Error::other(concat!(stringify!($guid), ": null")))?
    }};
}

fn to_sockaddr(addr: &SocketAddr) -> (SOCKADDR_STORAGE, i32) {
    // SAFETY: all-zero SOCKADDR_STORAGE is valid.
    let mut storage: SOCKADDR_STORAGE = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = SOCKADDR_IN {
                sin_family: AF_INET,
                sin_port: a.port().to_be(),
                sin_addr: IN_ADDR {
                    S_un: IN_ADDR_0 {
                        S_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                },
                sin_zero: [0; 8],
            };
            // SAFETY: SOCKADDR_STORAGE is larger than and aligned for SOCKADDR_IN.
            unsafe { (&raw mut storage).cast::<SOCKADDR_IN>().write(sin) };
            size_of::<SOCKADDR_IN>()
        }
        SocketAddr::V6(a) => {
            let sin6 = SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: IN6_ADDR {
                    u: IN6_ADDR_0 {
                        Byte: a.ip().octets(),
                    },
                },
                Anonymous: SOCKADDR_IN6_0 {
                    sin6_scope_id: a.scope_id(),
                },
            };
            // SAFETY: SOCKADDR_STORAGE is larger than and aligned for SOCKADDR_IN6.
            unsafe { (&raw mut storage).cast::<SOCKADDR_IN6>().write(sin6) };
            size_of::<SOCKADDR_IN6>()
        }
    };
    (storage, len as i32)
}

/// Reads a sockaddr of `len` bytes at `p`.
///
/// # Safety
/// `p` is valid for reads of `len` bytes (or null).
unsafe fn from_sockaddr(p: *const SOCKADDR, len: i32) -> Option<SocketAddr> {
    if p.is_null() || len < size_of::<SOCKADDR>() as i32 {
        return None;
    }
    // SAFETY: caller: `p` valid for `len` >= size_of::<SOCKADDR>() bytes.
    let family = unsafe { p.read_unaligned() }.sa_family;
    if family == AF_INET && len >= size_of::<SOCKADDR_IN>() as i32 {
        // SAFETY: `len` covers a SOCKADDR_IN.
        let sin = unsafe { p.cast::<SOCKADDR_IN>().read_unaligned() };
        // SAFETY: every member of the union is a view of the same 4 bytes.
        let ip = Ipv4Addr::from(unsafe { sin.sin_addr.S_un.S_addr }.to_ne_bytes());
        Some(SocketAddr::V4(SocketAddrV4::new(
            ip,
            u16::from_be(sin.sin_port),
        )))
    } else if family == AF_INET6 && len >= size_of::<SOCKADDR_IN6>() as i32 {
        // SAFETY: `len` covers a SOCKADDR_IN6.
        let sin6 = unsafe { p.cast::<SOCKADDR_IN6>().read_unaligned() };
        // SAFETY: both union members view the same 16 bytes / 4-byte scope.
        let (bytes, scope) = unsafe { (sin6.sin6_addr.u.Byte, sin6.Anonymous.sin6_scope_id) };
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(bytes),
            u16::from_be(sin6.sin6_port),
            sin6.sin6_flowinfo,
            scope,
        )))
    } else {
        None
    }
}

fn family_of(addr: &SocketAddr) -> u16 {
    if addr.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

fn millis(t: Duration) -> u32 {
    u32::try_from(t.as_millis()).unwrap_or(u32::MAX - 1).max(1)
}

// ------------------------------------------------------------------------------ server

pub(super) struct Listener {
    socket: Socket,
    port: Handle,
    addr: SocketAddr,
    accept_ex: unsafe extern "system" fn(
        SOCKET,
        SOCKET,
        *mut c_void,
        u32,
        u32,
        u32,
        *mut u32,
        *mut OVERLAPPED,
    ) -> windows_sys::core::BOOL,
    sockaddrs: unsafe extern "system" fn(
        *const c_void,
        u32,
        u32,
        u32,
        *mut *mut SOCKADDR,
        *mut i32,
        *mut *mut SOCKADDR,
        *mut i32,
    ),
}

// SAFETY: the listener's socket and completion port are process-wide handles; the
// listener is used by one thread at a time (moved into the server thread).
unsafe impl Send for Listener {}

impl Listener {
    pub(super) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = Socket::new(family_of(&addr))?;
        socket.bind(&addr)?;
        // SAFETY: plain call on a bound socket.
        if unsafe { listen(socket.0, 128) } == SOCKET_ERROR {
            return Err(wsa_error(&format!("listen {addr}")));
        }
        let accept_ex = ext!(&socket, WSAID_ACCEPTEX, LPFN_ACCEPTEX);
        let sockaddrs = ext!(
            &socket,
            WSAID_GETACCEPTEXSOCKADDRS,
            LPFN_GETACCEPTEXSOCKADDRS
        );
        // SAFETY: a new completion port (no file), then the listening socket associated
        // with it; AcceptEx completions on the listening socket are queued there.
        let port = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, null_mut(), 0, 1) };
        if port.is_null() {
            return Err(io::Error::last_os_error());
        }
        let port = Handle(port);
        // SAFETY: the socket is an open overlapped handle; key 1.
        let r = unsafe { CreateIoCompletionPort(socket.0 as HANDLE, port.0, 1, 0) };
        if r.is_null() {
            return Err(io::Error::last_os_error());
        }
        let addr = socket.name(false)?;
        Ok(Listener {
            socket,
            port,
            addr,
            accept_ex,
            sockaddrs,
        })
    }

    pub(super) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// One `AcceptEx` (with `initial_bytes` of initial data), its completion from the port,
    /// `GetAcceptExSockaddrs`, then read to end of stream.
    pub(super) fn accept_one(&self, options: &ServeOptions) -> io::Result<Connection> {
        let accepted = Socket::new(family_of(&self.addr))?;
        let initial_len = options.initial_bytes;
        let mut buf = vec![0u8; initial_len as usize + 2 * ADDR_ROOM as usize];
        // Boxed: the system writes it until the completion is dequeued.
        let mut ov: Box<OVERLAPPED> = Box::default();
        let mut received = 0u32;
        // SAFETY: both sockets are open; `buf` holds initial_len + 2 * ADDR_ROOM bytes;
        // `buf` and `ov` live until the completion is dequeued below (or are leaked when
        // it never comes).
        let ok = unsafe {
            (self.accept_ex)(
                self.socket.0,
                accepted.0,
                buf.as_mut_ptr().cast(),
                initial_len,
                ADDR_ROOM,
                ADDR_ROOM,
                &mut received,
                &mut *ov,
            )
        };
        if ok == 0 {
            // SAFETY: no preconditions.
            let code = unsafe { WSAGetLastError() };
            if code != WSA_IO_PENDING {
                return Err(from_code("AcceptEx", code));
            }
        }
        // A completion packet is queued on immediate success too unless
        // FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set (not here), so always dequeue it:
        // https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-setfilecompletionnotificationmodes
        // (observed under Wine 8.0 in the lane; the dequeue is bounded either way).
        match self.dequeue(&ov, options.idle) {
            Ok(n) => received = n,
            Err(e) => {
                // SAFETY: cancel our AcceptEx; then wait (bounded) for its completion
                // before `buf` and `ov` may go.
                unsafe { CancelIoEx(self.socket.0 as HANDLE, &*ov) };
                if self.dequeue(&ov, Duration::from_secs(5)).is_err() {
                    std::mem::forget(buf);
                    std::mem::forget(ov);
                }
                return Err(e);
            }
        }
        let (mut local_p, mut remote_p): (*mut SOCKADDR, *mut SOCKADDR) = (null_mut(), null_mut());
        let (mut local_len, mut remote_len) = (0i32, 0i32);
        // SAFETY: same buffer and lengths as AcceptEx; the outputs point into `buf`.
        unsafe {
            (self.sockaddrs)(
                buf.as_ptr().cast(),
                initial_len,
                ADDR_ROOM,
                ADDR_ROOM,
                &mut local_p,
                &mut local_len,
                &mut remote_p,
                &mut remote_len,
            )
        };
        // SAFETY: GetAcceptExSockaddrs returned pointers into `buf` with their lengths;
        // bounds checked against `buf` before reading.
        let in_buf = |p: *mut SOCKADDR, len: i32| {
            let start = buf.as_ptr() as usize;
            let at = p as usize;
            len > 0 && at >= start && at + len as usize <= start + buf.len()
        };
        let local = if in_buf(local_p, local_len) {
            // SAFETY: checked to lie inside `buf`.
            unsafe { from_sockaddr(local_p, local_len) }
        } else {
            None
        };
        let remote = if in_buf(remote_p, remote_len) {
            // SAFETY: checked to lie inside `buf`.
            unsafe { from_sockaddr(remote_p, remote_len) }
        } else {
            None
        };
        let (Some(local), Some(remote)) = (local, remote) else {
            return Err(io::Error::other(
                "GetAcceptExSockaddrs returned no IP addresses",
            ));
        };
        // "SO_UPDATE_ACCEPT_CONTEXT ... with the listening socket handle as the option
        // value" makes getsockname/getpeername work on the accepted socket.
        accepted.set_option(SO_UPDATE_ACCEPT_CONTEXT, &self.socket.0.to_ne_bytes())?;
        let agree =
            accepted.name(false).ok() == Some(local) && accepted.name(true).ok() == Some(remote);
        accepted.set_receive_timeout(options.idle)?;
        let mut sent_back = 0u64;
        if !options.greeting.is_empty() {
            accepted.send_all(&options.greeting)?;
            sent_back += options.greeting.len() as u64;
        }
        let mut hasher = Sha256::new();
        let first = buf.get(..received as usize).unwrap_or_default();
        hasher.update(first);
        if options.echo && !first.is_empty() {
            accepted.send_all(first)?;
            sent_back += first.len() as u64;
        }
        let mut bytes = u64::from(received);
        let mut chunk = vec![0u8; 4 * BLOCK];
        loop {
            let n = accepted.receive(&mut chunk)?;
            if n == 0 {
                break;
            }
            let data = chunk.get(..n).unwrap_or_default();
            hasher.update(data);
            bytes += n as u64;
            if options.echo {
                accepted.send_all(data)?;
                sent_back += n as u64;
            }
        }
        accepted.shutdown_send()?;
        Ok(Connection {
            accepted_with: "AcceptEx+GetAcceptExSockaddrs".into(),
            local,
            remote,
            addresses_agree: agree,
            initial: u64::from(received),
            bytes,
            sha256: hasher.finalize().into(),
            sent_back,
        })
    }

    /// Dequeues the completion of `ov` from the port (others are dropped: the server has
    /// one operation in flight); returns its byte count.
    fn dequeue(&self, ov: &OVERLAPPED, timeout: Duration) -> io::Result<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut bytes = 0u32;
            let mut key = 0usize;
            let mut done: *mut OVERLAPPED = null_mut();
            // SAFETY: the port is open; outputs are valid for writes.
            let ok = unsafe {
                GetQueuedCompletionStatus(
                    self.port.0,
                    &mut bytes,
                    &mut key,
                    &mut done,
                    millis(left),
                )
            };
            if done.is_null() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "AcceptEx on {}: no connection within {timeout:?}",
                        self.addr
                    ),
                ));
            }
            if std::ptr::eq(done.cast_const(), ov) {
                if ok == 0 {
                    // SAFETY: the failed operation's status is in `ov`; read it through
                    // WSAGetOverlappedResult without waiting.
                    let mut flags = 0u32;
                    let mut n = 0u32;
                    unsafe { WSAGetOverlappedResult(self.socket.0, ov, &mut n, 0, &mut flags) };
                    return Err(wsa_error("AcceptEx completion"));
                }
                return Ok(bytes);
            }
        }
    }
}

// ------------------------------------------------------------------------------ sender

/// One overlapped operation with its own manual-reset event.
struct Op {
    ov: Box<OVERLAPPED>,
    _event: Handle,
}

impl Op {
    fn new(offset: u64) -> io::Result<Op> {
        // SAFETY: an unnamed manual-reset event, initially not signalled.
        let event = unsafe { CreateEventW(null(), 1, 0, null()) };
        if event.is_null() {
            return Err(io::Error::last_os_error());
        }
        let mut ov: Box<OVERLAPPED> = Box::default();
        ov.hEvent = event;
        ov.Anonymous.Anonymous.Offset = offset as u32;
        ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
        Ok(Op {
            ov,
            _event: Handle(event),
        })
    }

    /// Completes an overlapped call that returned `ok`: waits (bounded) for the event and
    /// returns the bytes transferred. On timeout the operation is cancelled and the
    /// `Op` leaked only if the cancellation does not complete either.
    fn finish(
        self,
        s: &Socket,
        ok: windows_sys::core::BOOL,
        what: &str,
        t: Duration,
    ) -> io::Result<u32> {
        if ok == 0 {
            // SAFETY: no preconditions.
            let code = unsafe { WSAGetLastError() };
            if code != WSA_IO_PENDING {
                return Err(from_code(what, code));
            }
        }
        // SAFETY: the event is open.
        let w = unsafe { WaitForSingleObject(self.ov.hEvent, millis(t)) };
        if w != WAIT_OBJECT_0 {
            // SAFETY: cancel our operation, then give it a bounded time to complete.
            unsafe { CancelIoEx(s.0 as HANDLE, &*self.ov) };
            // SAFETY: as above.
            if unsafe { WaitForSingleObject(self.ov.hEvent, 5000) } != WAIT_OBJECT_0 {
                std::mem::forget(self);
            }
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: not complete within {t:?}"),
            ));
        }
        let mut n = 0u32;
        let mut flags = 0u32;
        // SAFETY: the operation has completed (event signalled); no wait.
        let r = unsafe { WSAGetOverlappedResult(s.0, &*self.ov, &mut n, 0, &mut flags) };
        if r == 0 {
            return Err(wsa_error(what));
        }
        Ok(n)
    }
}

struct Sender {
    socket: Socket,
    connect_ex: unsafe extern "system" fn(
        SOCKET,
        *const SOCKADDR,
        i32,
        *const c_void,
        u32,
        *mut u32,
        *mut OVERLAPPED,
    ) -> windows_sys::core::BOOL,
}

impl Sender {
    /// `ConnectEx` to `to` with `initial` as its send buffer; returns the bytes it sent.
    fn connect(&self, to: &SocketAddr, initial: &[u8], t: Duration) -> io::Result<u32> {
        let (storage, len) = to_sockaddr(to);
        let mut op = Op::new(0)?;
        let mut sent = 0u32;
        // SAFETY: the socket is bound and open; `storage`, `initial` and `op` outlive the
        // operation (finish waits for it, or leaks `op`; `initial` is the caller's and
        // the call's duration is bounded by finish).
        let ok = unsafe {
            (self.connect_ex)(
                self.socket.0,
                (&raw const storage).cast(),
                len,
                if initial.is_empty() {
                    null()
                } else {
                    initial.as_ptr().cast()
                },
                initial.len() as u32,
                &mut sent,
                &mut *op.ov,
            )
        };
        let n = op.finish(&self.socket, ok, &format!("ConnectEx {to}"), t)?;
        // "The socket s does not enable previously set properties or options until
        // SO_UPDATE_CONNECT_CONTEXT is set on the socket" (ConnectEx reference page).
        self.socket.set_option(SO_UPDATE_CONNECT_CONTEXT, &[])?;
        Ok(n)
    }
}

fn read_initial(file: &mut File, n: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut first = vec![0u8; n as usize];
    file.read_exact(&mut first)?;
    Ok(first)
}

pub(super) fn send_file(path: &Path, options: &SendOptions) -> io::Result<SendReport> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let socket = Socket::new(family_of(&options.to))?;
    // ConnectEx needs "an unconnected, previously bound socket".
    socket.bind(&if options.to.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    })?;
    let connect_ex = ext!(&socket, WSAID_CONNECTEX, LPFN_CONNECTEX);
    // Resolve the method's extension function before connecting, so a platform without it
    // (Wine 8.0 has no WSAID_TRANSMITPACKETS) fails before any byte moves.
    match options.method {
        SendMethod::TransmitFile => {
            let _ = ext!(&socket, WSAID_TRANSMITFILE, LPFN_TRANSMITFILE);
        }
        SendMethod::TransmitPackets => {
            let _ = ext!(&socket, WSAID_TRANSMITPACKETS, LPFN_TRANSMITPACKETS);
        }
        _ => {}
    }
    let sender = Sender { socket, connect_ex };
    let initial = u64::from(options.initial).min(len);
    let first = read_initial(&mut file, initial)?;
    let start = Instant::now();
    let mut calls = 0u64;
    let sent = sender.connect(&options.to, &first, options.timeout)?;
    if u64::from(sent) != initial {
        return Err(io::Error::other(format!(
            "ConnectEx sent {sent} of {initial} initial bytes"
        )));
    }
    calls += u64::from(initial > 0);
    let local = sender.socket.name(false)?;
    let remote = sender.socket.name(true)?;
    calls += transfer(&sender.socket, &file, initial, len, options)?;
    let (ending, reused, bytes) = match options.ending {
        Ending::Shutdown => {
            sender.socket.shutdown_send()?;
            ("shutdown".to_string(), false, len)
        }
        Ending::DisconnectEx | Ending::DisconnectExReuse => {
            let reuse = options.ending == Ending::DisconnectExReuse;
            disconnect(&sender.socket, reuse, options.timeout)?;
            if !reuse {
                ("DisconnectEx(0)".to_string(), false, len)
            } else {
                // Try the reuse the flag promises: connect the same socket again and send
                // the file a second time.
                match sender.connect(&options.to, &[], options.timeout) {
                    Ok(_) => {
                        calls += transfer(&sender.socket, &file, 0, len, options)?;
                        disconnect(&sender.socket, false, options.timeout)?;
                        (
                            "DisconnectEx(TF_REUSE_SOCKET): reused (second ConnectEx on the \
                             same socket succeeded, file sent again)"
                                .to_string(),
                            true,
                            2 * len,
                        )
                    }
                    Err(e) => (
                        format!(
                            "DisconnectEx(TF_REUSE_SOCKET): reuse ignored by the platform \
                             (ConnectEx on the same socket afterwards: {e})"
                        ),
                        false,
                        len,
                    ),
                }
            }
        }
    };
    // Read to the peer's end of stream (bounded by SO_RCVTIMEO). After a DisconnectEx
    // whose reuse was ignored the socket is still the first connection's.
    sender.socket.set_receive_timeout(options.timeout)?;
    let mut received = 0u64;
    let mut buf = vec![0u8; BLOCK];
    if !reused {
        loop {
            match sender.socket.receive(&mut buf) {
                Ok(0) => break,
                Ok(n) => received += n as u64,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(SendReport {
        connected_with: "ConnectEx".into(),
        method: options.method.name().into(),
        local,
        remote,
        initial,
        bytes,
        calls,
        received,
        seconds: start.elapsed().as_secs_f64(),
        ending,
        reused,
    })
}

fn disconnect(s: &Socket, reuse: bool, t: Duration) -> io::Result<()> {
    let disconnect_ex = ext!(s, WSAID_DISCONNECTEX, LPFN_DISCONNECTEX);
    let mut op = Op::new(0)?;
    let flags = if reuse { TF_REUSE_SOCKET } else { 0 };
    // SAFETY: open connected socket; `op` outlives the operation (finish).
    let ok = unsafe { disconnect_ex(s.0, &mut *op.ov, flags, 0) };
    op.finish(s, ok, "DisconnectEx", t).map(|_| ())
}

/// Sends `[from, len)` of `file` by `options.method`; returns the calls made.
fn transfer(
    s: &Socket,
    file: &File,
    from: u64,
    len: u64,
    options: &SendOptions,
) -> io::Result<u64> {
    let handle = file.as_raw_handle() as HANDLE;
    let mut offset = from;
    let mut calls = 0u64;
    match options.method {
        SendMethod::TransmitFile => {
            let transmit = ext!(s, WSAID_TRANSMITFILE, LPFN_TRANSMITFILE);
            while offset < len {
                let n = (len - offset).min(1 << 30) as u32;
                // The file offset goes in the OVERLAPPED (TransmitFile reference page).
                let mut op = Op::new(offset)?;
                // SAFETY: connected socket, open file; `op` outlives the operation.
                let ok = unsafe { transmit(s.0, handle, n, 0, &mut *op.ov, null(), 0) };
                let sent = op.finish(s, ok, "TransmitFile", options.timeout)?;
                if sent == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "TransmitFile sent 0 bytes",
                    ));
                }
                offset += u64::from(sent);
                calls += 1;
            }
        }
        SendMethod::TransmitPackets => {
            let transmit = ext!(s, WSAID_TRANSMITPACKETS, LPFN_TRANSMITPACKETS);
            while offset < len {
                let n = (len - offset).min(1 << 30) as u32;
                let element = TRANSMIT_PACKETS_ELEMENT {
                    dwElFlags: TP_ELEMENT_FILE,
                    cLength: n,
                    Anonymous: TRANSMIT_PACKETS_ELEMENT_0 {
                        Anonymous: TRANSMIT_PACKETS_ELEMENT_0_0 {
                            nFileOffset: offset as i64,
                            hFile: handle,
                        },
                    },
                };
                let mut op = Op::new(0)?;
                // SAFETY: one element that lives until `finish` returns; `op` likewise.
                let ok = unsafe { transmit(s.0, &element, 1, 0, &mut *op.ov, 0) };
                let sent = op.finish(s, ok, "TransmitPackets", options.timeout)?;
                if sent == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "TransmitPackets sent 0 bytes",
                    ));
                }
                offset += u64::from(sent);
                calls += 1;
            }
        }
        SendMethod::Write => {
            use std::os::windows::fs::FileExt;
            let mut buf = vec![0u8; BLOCK];
            while offset < len {
                let n = (len - offset).min(BLOCK as u64) as usize;
                let chunk = buf.get_mut(..n).unwrap_or_default();
                let got = file.seek_read(chunk, offset)?;
                if got == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
                }
                calls += s.send_all(chunk.get(..got).unwrap_or_default())?;
                offset += got as u64;
            }
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} is Linux-only", other.name()),
            ))
        }
    }
    Ok(calls)
}
