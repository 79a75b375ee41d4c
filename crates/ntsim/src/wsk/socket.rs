//! Emulated WSK sockets over real, non-blocking host sockets.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use smallvec::SmallVec;
use socket2::{Domain, MaybeUninitSlice, Protocol, SockAddr, Socket, Type};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP, MDL};
use windows_sys::Win32::Foundation::*;
use wsk_sys::{WSK_BUF, WSK_SOCKET};

use super::io::{io, Work};
use crate::config::{completion_mode, CompletionMode};
use crate::irp;
use crate::verifier::{self, Rule, COUNTERS};

/// Linux `MSG_NOSIGNAL`: report EPIPE instead of raising SIGPIPE.
const MSG_NOSIGNAL: i32 = 0x4000;
/// Most iovecs handed to one send call.
const MAX_IOV: usize = 64;

/// The kind of WSK socket (`WSK_FLAG_*_SOCKET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `WSK_FLAG_CONNECTION_SOCKET`.
    Connection,
    /// `WSK_FLAG_DATAGRAM_SOCKET`.
    Datagram,
    /// `WSK_FLAG_LISTEN_SOCKET`.
    Listen,
}

struct SendOp {
    irp: usize,
    buf: WSK_BUF,
    sent: usize,
}

struct SendToOp {
    irp: usize,
    buf: WSK_BUF,
    to: Option<SocketAddr>,
}

/// A queued `WskReceive`.
struct RecvOp {
    irp: usize,
    buf: WSK_BUF,
    waitall: bool,
    received: usize,
}

/// A queued `WskReceiveFrom`: the sender's address goes to `remote` (client memory that the
/// WSK contract keeps valid until the IRP completes), if not NULL.
struct RecvFromOp {
    irp: usize,
    buf: WSK_BUF,
    remote: usize,
}

/// A queued `WskAccept`.
pub(crate) struct AcceptOp {
    pub(crate) irp: usize,
    pub(crate) context: usize,
    pub(crate) dispatch: usize,
    pub(crate) local: usize,
    pub(crate) remote: usize,
}

/// A queued graceful `WskDisconnect`: its optional final data, then shutdown(SHUT_WR).
struct DisconnectOp {
    irp: usize,
    buf: Option<WSK_BUF>,
    sent: usize,
}

pub(crate) struct State {
    pub(crate) os: Option<Socket>,
    pub(crate) bound: bool,
    pub(crate) registered: bool,
    pub(crate) connected: bool,
    connect: Option<(usize, usize)>, // (irp, information on success)
    sends: VecDeque<SendOp>,
    sendtos: VecDeque<SendToOp>,
    recvs: VecDeque<RecvOp>,
    recvfroms: VecDeque<RecvFromOp>,
    accepts: VecDeque<AcceptOp>,
    disconnect: Option<DisconnectOp>,
    /// The peer's FIN was read: every later receive completes at once with 0 bytes.
    pub(crate) eof: bool,
    /// Our side was shut down for sending (graceful disconnect done or under way).
    pub(crate) send_shutdown: bool,
    /// The connection was abortively disconnected by this side (`WSK_FLAG_ABORTIVE`).
    pub(crate) aborted: bool,
    /// Accepted-socket sockets need these to be created by the listener's pump.
    registration: usize,
    pub(crate) fixed_remote: Option<SocketAddr>,
    pub(crate) sendto_addr: Option<SocketAddr>,
    /// The socket was created by `WskSocketConnect`: if its connect fails or is cancelled,
    /// the client never receives it and the provider destroys it.
    pub(crate) discard_on_connect_failure: bool,
    /// Set when such a connect failed: the socket must be discarded.
    failed: bool,
    /// Event callbacks ([`super::events`]).
    pub(crate) ev: super::events::EventState,
}

/// A socket object. The client's `PWSK_SOCKET` is `handle`, a separate `WSK_SOCKET` block
/// that is poisoned and really freed when `WskCloseSocket` runs ("the WSK subsystem
/// deallocates the socket"), although this object may live on in the I/O thread's hands: a
/// client that touches the socket after closing it reads freed memory (reported by
/// AddressSanitizer, or a fault on the poison pattern).
pub(crate) struct SimSocket {
    /// Address of the client-visible `WSK_SOCKET` (also this socket's key in the tables).
    handle: usize,
    /// Set once `handle` was freed.
    handle_freed: AtomicBool,
    pub(crate) kind: Kind,
    pub(crate) family: Domain,
    pub(crate) registration: usize,
    /// The client's socket context (`SocketContext` of its event callbacks).
    context: AtomicUsize,
    /// The client's event dispatch table (`WSK_CLIENT_*_DISPATCH`), or 0.
    client_dispatch: AtomicUsize,
    closed: AtomicBool,
    state: Mutex<State>,
}

// SAFETY: the raw pointers inside (the dispatch table, MDLs of queued WSK_BUFs) are
// addresses of static tables or of client memory that the WSK contract keeps valid until the
// owning IRP completes; all mutable state is behind the Mutex.
unsafe impl Send for SimSocket {}
// SAFETY: as above.
unsafe impl Sync for SimSocket {}

fn handle_layout() -> std::alloc::Layout {
    std::alloc::Layout::new::<WSK_SOCKET>()
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        self.free_handle();
    }
}

/// One IRP to complete once the socket lock is released.
pub(crate) type Completion = (usize, NTSTATUS, usize);

/// The IRPs one run of a socket's queues finished: inline room for a few, so that the
/// common case (the one operation just issued) allocates nothing.
pub(crate) type Done = SmallVec<[Completion; 4]>;

/// The byte slices of one send call (at most [`MAX_IOV`] for a stream send; a datagram's
/// chain may be longer and then spills to the heap).
type Iov = SmallVec<[IoSlice<'static>; 8]>;

/// The client memory regions of one receive call.
type IovMut = SmallVec<[MaybeUninitSlice<'static>; 8]>;

impl SimSocket {
    pub(crate) fn new(
        kind: Kind,
        family: Domain,
        dispatch: *const c_void,
        registration: usize,
        context: usize,
        client_dispatch: usize,
        os: Socket,
    ) -> Arc<SimSocket> {
        COUNTERS.live_sockets.fetch_add(1, Ordering::SeqCst);
        super::socket_opened(registration);
        let static_events = super::events::socket_created(registration, kind);
        // SAFETY: WSK_SOCKET has non-zero size.
        let handle = unsafe { std::alloc::alloc(handle_layout()) } as *mut WSK_SOCKET;
        if handle.is_null() {
            std::alloc::handle_alloc_error(handle_layout());
        }
        // SAFETY: fresh block of WSK_SOCKET's layout.
        unsafe { handle.write(WSK_SOCKET { Dispatch: dispatch }) };
        Arc::new(SimSocket {
            handle: handle as usize,
            handle_freed: AtomicBool::new(false),
            kind,
            family,
            registration,
            context: AtomicUsize::new(context),
            client_dispatch: AtomicUsize::new(client_dispatch),
            closed: AtomicBool::new(false),
            state: Mutex::new(State {
                os: Some(os),
                bound: false,
                registered: false,
                connected: false,
                connect: None,
                sends: VecDeque::new(),
                sendtos: VecDeque::new(),
                recvs: VecDeque::new(),
                recvfroms: VecDeque::new(),
                accepts: VecDeque::new(),
                disconnect: None,
                eof: false,
                send_shutdown: false,
                aborted: false,
                registration,
                fixed_remote: None,
                sendto_addr: None,
                discard_on_connect_failure: false,
                failed: false,
                ev: super::events::EventState::with_static(static_events),
            }),
        })
    }

    /// The client's socket context.
    pub(crate) fn context(&self) -> usize {
        self.context.load(Ordering::Acquire)
    }

    /// The client's event dispatch table, or 0.
    pub(crate) fn client_dispatch(&self) -> usize {
        self.client_dispatch.load(Ordering::Acquire)
    }

    /// Sets the context and dispatch table an accept event returned.
    pub(crate) fn set_client(&self, context: usize, dispatch: usize) {
        self.context.store(context, Ordering::Release);
        self.client_dispatch.store(dispatch, Ordering::Release);
    }

    pub(crate) fn key(self: &Arc<Self>) -> usize {
        self.handle
    }

    /// Poisons and frees the client-visible `WSK_SOCKET` (once): from now on the client's
    /// pointer is dangling, as after `WskCloseSocket` on Windows.
    pub(crate) fn free_handle(&self) {
        if !self.handle_freed.swap(true, Ordering::AcqRel) {
            // SAFETY: allocated in `new` with handle_layout(), freed once (the flag).
            unsafe {
                crate::poison::fill(self.handle as *mut u8, handle_layout().size());
                std::alloc::dealloc(self.handle as *mut u8, handle_layout());
            }
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the socket visible to the client and the I/O thread.
    pub(crate) fn publish(self: &Arc<Self>) {
        io().sockets().insert(self.key(), self.clone());
    }

    /// Registers the descriptor with the I/O thread once (after bind or connect start).
    pub(crate) fn ensure_registered(self: &Arc<Self>, st: &mut State) {
        if st.registered {
            return;
        }
        if let Some(os) = &st.os {
            if io().register(os.as_raw_fd(), self.key()).is_ok() {
                st.registered = true;
            }
        }
    }

    /// Runs the queued operations as far as the host socket allows, then completes what
    /// finished. Called by the I/O thread on readiness and on kicks.
    pub(crate) fn pump(self: &Arc<Self>) {
        let (done, failed) = {
            let mut st = self.lock();
            let mut done = Done::new();
            st.pump(&mut done);
            let failed = std::mem::take(&mut st.failed);
            if failed {
                done.extend(self.shutdown(&mut st));
            }
            (done, failed)
        };
        if failed {
            self.discard();
        }
        complete_all(done);
        super::events::deliver(self);
    }

    /// Destroys a socket the client never received (its `WskSocketConnect` failed).
    pub(crate) fn discard(self: &Arc<Self>) {
        io().sockets().remove(&self.key());
        self.closed();
        self.free_handle();
    }

    /// Accounts for a closed socket (once).
    pub(crate) fn closed(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            COUNTERS.live_sockets.fetch_sub(1, Ordering::SeqCst);
            super::socket_closed(self.registration);
        }
    }

    /// Starts a connect; returns the completions to run (empty if it pends).
    pub(crate) fn start_connect(
        self: &Arc<Self>,
        st: &mut State,
        remote: SocketAddr,
        irp: *mut IRP,
        info: usize,
    ) -> Result<Option<Completion>, NTSTATUS> {
        let Some(os) = st.os.as_ref() else {
            return Err(STATUS_INVALID_DEVICE_STATE);
        };
        if completion_mode() == CompletionMode::Inline {
            let r = os
                .connect_timeout(&SockAddr::from(remote), std::time::Duration::from_secs(10))
                .and_then(|_| os.set_nonblocking(true));
            return Ok(Some(match r {
                Ok(()) => {
                    st.connected = true;
                    self.ensure_registered(st);
                    (irp as usize, STATUS_SUCCESS, info)
                }
                Err(e) => (irp as usize, crate::status::from_io_error(&e), 0),
            }));
        }
        match os.connect(&SockAddr::from(remote)) {
            Ok(()) => {
                st.connected = true;
                self.ensure_registered(st);
                Ok(Some((irp as usize, STATUS_SUCCESS, info)))
            }
            Err(e)
                if e.raw_os_error() == Some(115) || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                // EINPROGRESS: completes on writability.
                st.connect = Some((irp as usize, info));
                self.ensure_registered(st);
                Ok(None)
            }
            Err(e) => Ok(Some((irp as usize, crate::status::from_io_error(&e), 0))),
        }
    }

    pub(crate) fn queue_send(&self, st: &mut State, irp: *mut IRP, buf: WSK_BUF) {
        st.sends.push_back(SendOp {
            irp: irp as usize,
            buf,
            sent: 0,
        });
    }

    pub(crate) fn queue_send_to(
        &self,
        st: &mut State,
        irp: *mut IRP,
        buf: WSK_BUF,
        to: Option<SocketAddr>,
    ) {
        st.sendtos.push_back(SendToOp {
            irp: irp as usize,
            buf,
            to,
        });
    }

    pub(crate) fn queue_recv(&self, st: &mut State, irp: *mut IRP, buf: WSK_BUF, waitall: bool) {
        // A WskReceive resumes receive indications stopped by STATUS_DATA_NOT_ACCEPTED or a
        // partial accept (WskReceiveEvent docs).
        st.ev.recv_blocked = false;
        st.recvs.push_back(RecvOp {
            irp: irp as usize,
            buf,
            waitall,
            received: 0,
        });
    }

    pub(crate) fn queue_recv_from(
        &self,
        st: &mut State,
        irp: *mut IRP,
        buf: WSK_BUF,
        remote: usize,
    ) {
        st.ev.recv_blocked = false;
        st.recvfroms.push_back(RecvFromOp {
            irp: irp as usize,
            buf,
            remote,
        });
    }

    pub(crate) fn queue_accept(&self, st: &mut State, op: AcceptOp) {
        st.accepts.push_back(op);
    }

    /// Queues a graceful disconnect; false if one is already queued.
    pub(crate) fn queue_disconnect(
        &self,
        st: &mut State,
        irp: *mut IRP,
        buf: Option<WSK_BUF>,
    ) -> bool {
        if st.disconnect.is_some() {
            return false;
        }
        st.disconnect = Some(DisconnectOp {
            irp: irp as usize,
            buf,
            sent: 0,
        });
        true
    }

    /// Abortive disconnect (`WSK_FLAG_ABORTIVE`): SO_LINGER 0 and close, so the peer gets an
    /// RST; every queued operation completes with `STATUS_CONNECTION_ABORTED` (WskReceive
    /// docs: a WSK_FLAG_WAITALL receive completes when "the connection is abortively
    /// disconnected by either the WSK application or by the remote sender"). The WSK socket
    /// stays open (for WskCloseSocket) with no host socket behind it.
    pub(crate) fn abort(&self, st: &mut State) -> Vec<Completion> {
        if let Some(os) = st.os.as_ref() {
            let _ = os.set_linger(Some(std::time::Duration::ZERO));
        }
        let mut out = self.shutdown(st);
        for c in out.iter_mut() {
            c.1 = STATUS_CONNECTION_ABORTED;
        }
        st.aborted = true;
        st.connected = false;
        out
    }

    /// Removes a queued operation by IRP (cancellation). Returns true if found.
    pub(crate) fn remove_irp(&self, st: &mut State, irp: usize) -> bool {
        if let Some(p) = st.recvs.iter().position(|o| o.irp == irp) {
            st.recvs.remove(p);
            return true;
        }
        if let Some(p) = st.recvfroms.iter().position(|o| o.irp == irp) {
            st.recvfroms.remove(p);
            return true;
        }
        if let Some(p) = st.accepts.iter().position(|o| o.irp == irp) {
            st.accepts.remove(p);
            return true;
        }
        if st.disconnect.as_ref().is_some_and(|d| d.irp == irp) {
            st.disconnect = None;
            return true;
        }
        if st.connect.is_some_and(|(i, _)| i == irp) {
            st.connect = None;
            st.failed = st.discard_on_connect_failure;
            return true;
        }
        if let Some(p) = st.sends.iter().position(|o| o.irp == irp) {
            st.sends.remove(p);
            return true;
        }
        if let Some(p) = st.sendtos.iter().position(|o| o.irp == irp) {
            st.sendtos.remove(p);
            return true;
        }
        false
    }

    /// Closes the host socket and returns every queued IRP, to be completed as cancelled.
    pub(crate) fn shutdown(&self, st: &mut State) -> Vec<Completion> {
        let mut out = Vec::new();
        if let Some((irp, _)) = st.connect.take() {
            out.push((irp, STATUS_CANCELLED, 0));
        }
        out.extend(st.sends.drain(..).map(|o| (o.irp, STATUS_CANCELLED, 0)));
        out.extend(st.sendtos.drain(..).map(|o| (o.irp, STATUS_CANCELLED, 0)));
        out.extend(st.recvs.drain(..).map(|o| (o.irp, STATUS_CANCELLED, 0)));
        out.extend(st.recvfroms.drain(..).map(|o| (o.irp, STATUS_CANCELLED, 0)));
        out.extend(st.accepts.drain(..).map(|o| (o.irp, STATUS_CANCELLED, 0)));
        out.extend(st.disconnect.take().map(|o| (o.irp, STATUS_CANCELLED, 0)));
        if let Some(os) = st.os.take() {
            if st.registered {
                io().deregister(os.as_raw_fd());
            }
        }
        out
    }
}

impl State {
    pub(crate) fn recvs_empty(&self) -> bool {
        self.recvs.is_empty()
    }

    pub(crate) fn recvfroms_empty(&self) -> bool {
        self.recvfroms.is_empty()
    }

    pub(crate) fn accepts_empty(&self) -> bool {
        self.accepts.is_empty()
    }

    pub(crate) fn pump(&mut self, done: &mut Done) {
        let Some(os) = self.os.as_ref() else { return };
        if let Some((irp, info)) = self.connect {
            match os.take_error() {
                Ok(Some(e)) | Err(e) => {
                    self.connect = None;
                    self.failed = self.discard_on_connect_failure;
                    done.push((irp, crate::status::from_io_error(&e), 0));
                    return;
                }
                Ok(None) => {}
            }
            if os.peer_addr().is_ok() {
                self.connect = None;
                self.connected = true;
                done.push((irp, STATUS_SUCCESS, info));
            } else {
                return;
            }
        }
        while let Some(op) = self.sends.front_mut() {
            let total = op.buf.Length;
            if op.sent < total {
                let iov = match gather(&op.buf, op.sent, MAX_IOV) {
                    Some(v) => v,
                    None => {
                        let irp = op.irp;
                        self.sends.pop_front();
                        done.push((irp, STATUS_INVALID_PARAMETER, 0));
                        continue;
                    }
                };
                match os.send_vectored_with_flags(&iov, MSG_NOSIGNAL) {
                    Ok(n) => {
                        op.sent += n;
                        COUNTERS
                            .bytes_sent_from_mdl
                            .fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let irp = op.irp;
                        self.sends.pop_front();
                        done.push((irp, crate::status::from_io_error(&e), 0));
                        continue;
                    }
                }
            }
            if op.sent >= total {
                let (irp, n) = (op.irp, op.sent);
                self.sends.pop_front();
                done.push((irp, STATUS_SUCCESS, n));
            }
        }
        while let Some(op) = self.sendtos.front() {
            let Some(iov) = gather(&op.buf, 0, usize::MAX) else {
                let irp = op.irp;
                self.sendtos.pop_front();
                done.push((irp, STATUS_INVALID_PARAMETER, 0));
                continue;
            };
            let r = match op.to {
                Some(a) => os.send_to_vectored(&iov, &SockAddr::from(a)),
                None => os.send_vectored_with_flags(&iov, MSG_NOSIGNAL),
            };
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let irp = op.irp;
                    self.sendtos.pop_front();
                    done.push((irp, crate::status::from_io_error(&e), 0));
                }
                Ok(n) => {
                    COUNTERS
                        .bytes_sent_from_mdl
                        .fetch_add(n as u64, Ordering::SeqCst);
                    let irp = op.irp;
                    self.sendtos.pop_front();
                    done.push((irp, STATUS_SUCCESS, n));
                }
            }
        }
        self.pump_disconnect(done);
        self.pump_recvs(done);
        self.pump_recvfroms(done);
        self.pump_accepts(done);
    }

    fn pump_disconnect(&mut self, done: &mut Done) {
        if !self.sends.is_empty() {
            return;
        }
        let Some(os) = self.os.as_ref() else { return };
        let Some(op) = self.disconnect.as_mut() else {
            return;
        };
        if let Some(b) = op.buf {
            while op.sent < b.Length {
                let Some(iov) = gather(&b, op.sent, MAX_IOV) else {
                    let irp = op.irp;
                    self.disconnect = None;
                    done.push((irp, STATUS_INVALID_PARAMETER, 0));
                    return;
                };
                match os.send_vectored_with_flags(&iov, MSG_NOSIGNAL) {
                    Ok(n) => {
                        op.sent += n;
                        COUNTERS
                            .bytes_sent_from_mdl
                            .fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let irp = op.irp;
                        self.disconnect = None;
                        done.push((irp, crate::status::from_io_error(&e), 0));
                        return;
                    }
                }
            }
        }
        let (irp, sent) = (op.irp, op.sent);
        self.disconnect = None;
        let status = match os.shutdown(std::net::Shutdown::Write) {
            Ok(()) => {
                self.send_shutdown = true;
                STATUS_SUCCESS
            }
            Err(e) => crate::status::from_io_error(&e),
        };
        done.push((irp, status, sent));
    }

    fn pump_recvs(&mut self, done: &mut Done) {
        if self.ev.indicating {
            // The receive event's indication owns the peeked bytes until it returns.
            return;
        }
        while let Some(op) = self.recvs.front_mut() {
            let want = op.buf.Length - op.received;
            if want == 0 || self.eof {
                // Filled (or a zero-length receive), or the peer's FIN was already read: a
                // receive after a graceful disconnect completes with the bytes it has (0 =
                // the peer disconnected gracefully).
                let (irp, n) = (op.irp, op.received);
                self.recvs.pop_front();
                done.push((irp, STATUS_SUCCESS, n));
                continue;
            }
            let Some(os) = self.os.as_ref() else { return };
            // Straight into the client's memory: no staging copy, no allocation.
            let Some(mut iov) = gather_mut(&op.buf, op.received, MAX_IOV) else {
                let irp = op.irp;
                self.recvs.pop_front();
                done.push((irp, STATUS_INVALID_PARAMETER, 0));
                continue;
            };
            match os.recv_vectored(&mut iov) {
                Ok((0, _)) => {
                    self.eof = true;
                    continue;
                }
                Ok((n, _)) => {
                    op.received += n;
                    if !op.waitall || op.received == op.buf.Length {
                        let (irp, n) = (op.irp, op.received);
                        self.recvs.pop_front();
                        done.push((irp, STATUS_SUCCESS, n));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let irp = op.irp;
                    self.recvs.pop_front();
                    if e.kind() == std::io::ErrorKind::ConnectionReset {
                        self.ev.reset = true;
                    }
                    done.push((irp, crate::status::from_io_error(&e), 0));
                }
            }
        }
    }

    fn pump_recvfroms(&mut self, done: &mut Done) {
        if self.ev.indicating {
            return;
        }
        while let Some(op) = self.recvfroms.front() {
            let Some(os) = self.os.as_ref() else { return };
            // Straight into the client's memory; a datagram longer than the buffer is
            // truncated by the host (MSG_TRUNC), as the copy of the part that fits was.
            let Some(mut iov) = gather_mut(&op.buf, 0, usize::MAX) else {
                let irp = op.irp;
                self.recvfroms.pop_front();
                done.push((irp, STATUS_INVALID_PARAMETER, 0));
                continue;
            };
            match os.recv_from_vectored(&mut iov) {
                Ok((fit, flags, from)) => {
                    let (irp, remote) = (op.irp, op.remote);
                    self.recvfroms.pop_front();
                    if remote != 0 {
                        if let Some(a) = from.as_socket() {
                            // SAFETY: the client's nonpaged SOCKADDR buffer of the socket's
                            // family, valid until this IRP completes (WskReceiveFrom docs).
                            unsafe { super::addr::write(remote as *mut _, &a) };
                        }
                    }
                    // A datagram larger than the buffer: the part that fits, and
                    // STATUS_BUFFER_OVERFLOW (our choice, the AFD pairing of WSAEMSGSIZE on
                    // receive; unverified on Windows).
                    let status = if flags.is_truncated() {
                        STATUS_BUFFER_OVERFLOW
                    } else {
                        STATUS_SUCCESS
                    };
                    done.push((irp, status, fit));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let irp = op.irp;
                    self.recvfroms.pop_front();
                    done.push((irp, crate::status::from_io_error(&e), 0));
                }
            }
        }
    }

    fn pump_accepts(&mut self, done: &mut Done) {
        while let Some(op) = self.accepts.front() {
            let Some(os) = self.os.as_ref() else { return };
            // Conditional accept: only connections the client's inspection accepted.
            let next = if self.ev.conditional {
                match self.ev.ready.pop_front() {
                    Some(c) => Ok(c),
                    None => return,
                }
            } else {
                os.accept()
            };
            match next {
                Ok((conn, peer)) => {
                    let (irp, context, dispatch, local, remote) =
                        (op.irp, op.context, op.dispatch, op.local, op.remote);
                    self.accepts.pop_front();
                    let family = if peer.is_ipv4() {
                        Domain::IPV4
                    } else {
                        Domain::IPV6
                    };
                    if let Err(e) = conn.set_nonblocking(true) {
                        done.push((irp, crate::status::from_io_error(&e), 0));
                        continue;
                    }
                    let l = conn.local_addr().ok().and_then(|a| a.as_socket());
                    let r = peer.as_socket();
                    let sock = SimSocket::new(
                        Kind::Connection,
                        family,
                        super::connection_dispatch(),
                        self.registration,
                        context,
                        dispatch,
                        conn,
                    );
                    {
                        let mut st = sock.lock();
                        st.bound = true;
                        st.connected = true;
                        sock.ensure_registered(&mut st);
                    }
                    sock.publish();
                    // SAFETY: the client's optional nonpaged SOCKADDR buffers, valid until
                    // the IRP completes (WskAccept docs).
                    unsafe {
                        if let (true, Some(a)) = (local != 0, l) {
                            super::addr::write(local as *mut _, &a);
                        }
                        if let (true, Some(a)) = (remote != 0, r) {
                            super::addr::write(remote as *mut _, &a);
                        }
                    }
                    done.push((irp, STATUS_SUCCESS, sock.key()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let irp = op.irp;
                    self.accepts.pop_front();
                    done.push((irp, crate::status::from_io_error(&e), 0));
                }
            }
        }
    }
}

pub(crate) fn as_uninit(b: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: initialised bytes viewed as possibly-uninitialised ones; recv only writes.
    unsafe { &mut *(b as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) }
}

/// The writable regions a `WSK_BUF` describes, skipping `skip` bytes, at most `max_iov`
/// of them, ready for a vectored receive into the client's memory. The buffer was validated
/// against its MDL chain at dispatch time; None if the chain ends early.
fn gather_mut(buf: &WSK_BUF, skip: usize, max_iov: usize) -> Option<IovMut> {
    let mut out = IovMut::new();
    let mut mdl = buf.Mdl as *const MDL;
    let mut offset = buf.Offset as usize + skip;
    let mut left = buf.Length - skip;
    while left > 0 && out.len() < max_iov {
        if mdl.is_null() {
            return None;
        }
        let (va, len) = crate::mdl::mdl_region(mdl)?;
        if offset >= len {
            offset -= len;
        } else {
            let n = (len - offset).min(left);
            // SAFETY: the MDL describes locked client memory, writable for a receive, valid
            // until the IRP that carries it completes (after this receive); the regions of
            // one WSK_BUF do not overlap.
            out.push(MaybeUninitSlice::new(unsafe {
                std::slice::from_raw_parts_mut(va.add(offset).cast(), n)
            }));
            left -= n;
            offset = 0;
        }
        // SAFETY: live MDL (checked by mdl_region).
        mdl = unsafe { (*mdl).Next };
    }
    Some(out)
}

/// The byte slices a `WSK_BUF` describes, skipping `skip` bytes, at most `max_iov` slices,
/// ready for a vectored send. The buffer was validated against its MDL chain at dispatch
/// time.
fn gather(buf: &WSK_BUF, skip: usize, max_iov: usize) -> Option<Iov> {
    let mut out = Iov::new();
    let mut mdl = buf.Mdl as *const MDL;
    let mut offset = buf.Offset as usize + skip;
    let mut left = buf.Length - skip;
    while left > 0 && out.len() < max_iov {
        if mdl.is_null() {
            return None;
        }
        let (va, len) = crate::mdl::mdl_region(mdl)?;
        if offset >= len {
            offset -= len;
        } else {
            let n = (len - offset).min(left);
            // SAFETY: the MDL describes client memory that stays valid until the IRP that
            // carries it completes; the provider completes it only after this slice is used.
            out.push(IoSlice::new(unsafe {
                std::slice::from_raw_parts(va.add(offset), n)
            }));
            left -= n;
            offset = 0;
        }
        // SAFETY: live MDL (checked by mdl_region).
        mdl = unsafe { (*mdl).Next };
    }
    Some(out)
}

/// Checks a `WSK_BUF` against its MDL chain: `Offset + Length` must fit. Records the
/// violation (a bugcheck on Windows) and returns false if it does not.
pub(crate) fn validate_buf(buf: &WSK_BUF, what: &str) -> bool {
    if buf.Length == 0 {
        return true;
    }
    let mut total = 0usize;
    let mut mdl = buf.Mdl as *const MDL;
    while !mdl.is_null() {
        let Some((_, len)) = crate::mdl::mdl_region(mdl) else {
            return false;
        };
        total += len;
        // SAFETY: live MDL.
        mdl = unsafe { (*mdl).Next };
    }
    let need = buf.Offset as usize + buf.Length;
    if need > total {
        verifier::violation(
            Rule::WskBufBeyondMdl,
            format!(
                "{what}: WSK_BUF Offset {} + Length {} exceeds its MDL chain of {total} bytes",
                buf.Offset, buf.Length
            ),
        );
        return false;
    }
    true
}

/// Completes IRPs collected under a socket lock.
pub(crate) fn complete_all(done: impl IntoIterator<Item = Completion>) {
    for (irp, status, info) in done {
        let irp = irp as *mut IRP;
        // SAFETY: the provider owns these pending IRPs; clearing the cancel routine first
        // means a concurrent IoCancelIrp can no longer call it.
        unsafe { irp::set_cancel_routine(irp, std::ptr::null_mut()) };
        irp::complete(irp, status, info);
    }
}

/// Pends an IRP on a socket: IoMarkIrpPending, remember the socket in the IRP, set the
/// cancel routine, and honour a cancel that raced in. Called with the socket locked.
pub(crate) fn pend(sock: &Arc<SimSocket>, st: &mut State, irp: *mut IRP) -> Option<Completion> {
    // SAFETY: the provider owns the IRP (passed down); DriverContext belongs to the owner.
    unsafe {
        irp::mark_pending(irp);
        (*irp).Tail.Overlay.Anonymous1.Anonymous.DriverContext[0] = sock.key() as *mut c_void;
        irp::set_cancel_routine(irp, cancel_routine as *mut c_void);
        if (*irp).Cancel && !irp::set_cancel_routine(irp, std::ptr::null_mut()).is_null() {
            sock.remove_irp(st, irp as usize);
            return Some((irp as usize, STATUS_CANCELLED, 0));
        }
    }
    None
}

/// The provider's cancel routine for pending socket IRPs.
unsafe extern "system" fn cancel_routine(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: IoCancelIrp calls this with the cancel spin lock held and the IRP alive.
    let (irql, key) = unsafe {
        (
            (*irp).CancelIrql,
            (*irp).Tail.Overlay.Anonymous1.Anonymous.DriverContext[0] as usize,
        )
    };
    crate::irql::IoReleaseCancelSpinLock(irql);
    let Some(sock) = io().socket(key) else { return };
    let (found, rest) = {
        let mut st = sock.lock();
        let found = sock.remove_irp(&mut st, irp as usize);
        let rest = if std::mem::take(&mut st.failed) {
            Some(sock.shutdown(&mut st))
        } else {
            None
        };
        (found, rest)
    };
    if let Some(rest) = rest {
        sock.discard();
        complete_all(rest);
    }
    if found {
        irp::complete(irp, STATUS_CANCELLED, 0);
    }
}

/// Creates a host socket for a WSK socket of `kind` in `family`.
pub(crate) fn host_socket(kind: Kind, family: Domain) -> std::io::Result<Socket> {
    let s = match kind {
        Kind::Datagram => Socket::new(family, Type::DGRAM, Some(Protocol::UDP))?,
        Kind::Connection | Kind::Listen => Socket::new(family, Type::STREAM, Some(Protocol::TCP))?,
    };
    s.set_nonblocking(true)?;
    if family == Domain::IPV6 {
        let _ = s.set_only_v6(true);
    }
    Ok(s)
}

/// Queues a deferred completion to the I/O thread (the pending path of an operation that
/// finished during its dispatch call).
pub(crate) fn defer(irp: *mut IRP, status: NTSTATUS, info: usize) {
    io().push(Work::Complete(irp as usize, status, info));
}
