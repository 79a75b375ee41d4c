//! Event callbacks: `SO_WSK_EVENT_CALLBACK` (enable / disable), `WSK_SET_STATIC_EVENT_CALLBACKS`,
//! `SO_CONDITIONAL_ACCEPT`, and the provider side that calls a client's event callbacks:
//! `WskReceiveEvent` (over provider-owned nonpaged buffers and MDLs, retained lists given
//! back with `WskRelease`), `WskDisconnectEvent`, `WskSendBacklogEvent`,
//! `WskReceiveFromEvent`, `WskAcceptEvent`, `WskInspectEvent` / `WskAbortEvent` with
//! `WskInspectComplete`.
//!
//! How it is emulated:
//! - Callbacks run only on the provider's I/O thread, at DISPATCH_LEVEL, with no ntsim lock
//!   held (the client may call WskReceive / WskSend / WskRelease / WskControlSocket from
//!   inside them). At most one callback per socket runs at a time.
//! - Stream data is *peeked* from the host socket, indicated, and then consumed as far as the
//!   client accepted it; what the client did not accept stays in the host socket for a later
//!   `WskReceive`. While an indication is in progress, queued receives do not read.
//! - Pending `WskReceive` / `WskReceiveFrom` / `WskAccept` IRPs take precedence over the
//!   indications ("The WSK subsystem calls the application's WskReceiveEvent event callback
//!   function only if there are no IRPs queued from pending calls to the WskReceive function",
//!   <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>;
//!   the same rule for WskAccept on
//!   <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>).
//! - Send backlog: `WskSendBacklogEvent` is called once after it is enabled on a connected
//!   socket, with the host socket's `SO_SNDBUF` as the ideal backlog, and again whenever that
//!   value is seen to change (checked on every pass of the I/O thread over the socket).
//!   Linux does not report TCP's ideal backlog; this is our approximation.
//! - Conditional accept: the host socket *accepts the TCP connection first* (Linux has no
//!   hook before the handshake completes), then `WskInspectEvent` is called; a rejected
//!   connection is closed with an RST (SO_LINGER 0), so the peer sees a reset rather than a
//!   refused SYN. On Windows the inspect decision is asked for when the connection request
//!   arrives, before the connection is accepted
//!   (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event>);
//!   what the peer then sees on a reject was not observed here. A pended connection whose peer goes away
//!   (FIN or RST seen on the host socket) is reported with `WskAbortEvent`.

use std::cell::RefCell;
use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::ffi::c_void;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use socket2::{Domain, SockAddr, Socket};
use windows_sys::Wdk::Foundation::MDL;
use windows_sys::Win32::Foundation::*;
use windows_sys::Win32::Networking::WinSock::SOL_SOCKET;
use wsk_sys::*;

use super::io::{io, Work};
use super::socket::{complete_all, Kind, SimSocket, State};
use crate::verifier::{self, Rule};

/// Pool tag of provider-owned indication buffers ('WskI').
pub const INDICATION_TAG: u32 = u32::from_le_bytes(*b"WskI");
/// Most bytes indicated in one `WskReceiveEvent` / one datagram buffer.
const MAX_INDICATION: usize = 64 * 1024;
/// Bytes per element of a `WSK_DATA_INDICATION` list (so lists have several elements).
const CHUNK: usize = 16 * 1024;
/// The connection-oriented events.
pub(crate) const CONNECTION_EVENTS: u32 =
    WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG;

/// Per-socket event state (inside the socket's lock).
#[derive(Default)]
pub(crate) struct EventState {
    /// Enabled events.
    pub(crate) enabled: u32,
    /// Events enabled by `WSK_SET_STATIC_EVENT_CALLBACKS` (cannot be disabled).
    pub(crate) static_mask: u32,
    /// Listening sockets: connection-oriented events enabled on the listener, inherited by
    /// sockets accepted through `WskAcceptEvent` (and never disabled on the listener).
    pub(crate) inherit: u32,
    /// Indications stop until the client posts a `WskReceive` / `WskReceiveFrom`.
    pub(crate) recv_blocked: bool,
    /// A receive indication is in progress: queued receives must not read the host socket.
    pub(crate) indicating: bool,
    /// The peer's RST was seen.
    pub(crate) reset: bool,
    disconnect_indicated: bool,
    backlog_sent: Option<usize>,
    /// An accepted socket whose `WskAcceptEvent` has not returned yet: no events.
    pub(crate) accepting: bool,
    /// `SO_CONDITIONAL_ACCEPT` was set (listening sockets, before bind).
    pub(crate) conditional: bool,
    serial: u32,
    inspects: Vec<Inspection>,
    /// Connections accepted by inspection, waiting for `WskAccept` or `WskAcceptEvent`.
    pub(crate) ready: VecDeque<(Socket, SockAddr)>,
    /// Callbacks of this socket running now.
    in_progress: usize,
    /// The socket is closing: no more callbacks.
    pub(crate) closing: bool,
}

impl EventState {
    /// The state of a new socket: `static_events` enabled, and fixed.
    pub(crate) fn with_static(static_events: u32) -> Self {
        EventState {
            enabled: static_events,
            static_mask: static_events,
            ..Default::default()
        }
    }
}

/// A connection under conditional-accept inspection.
struct Inspection {
    id: WSK_INSPECT_ID,
    conn: Socket,
    peer: SockAddr,
    /// The client answered `WskInspectPend`; waiting for `WskInspectComplete`.
    pended: bool,
    /// A `WskInspectComplete` verdict that arrived while `WskInspectEvent` was still running
    /// (from another thread); applied when the event returns `WskInspectPend`.
    early: Option<bool>,
}

// ---------------------------------------------------------------------------------------
// Global state: static callbacks per registration, retained indication lists
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct ClientState {
    static_mask: u32,
    created_socket: bool,
}

static CLIENTS: Mutex<Option<FxHashMap<usize, ClientState>>> = Mutex::new(None);

fn clients() -> MutexGuard<'static, Option<FxHashMap<usize, ClientState>>> {
    CLIENTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One provider-owned element of an indication list: a pool block (header + data) and the
/// MDL over its data.
struct IndBlock {
    block: *mut c_void,
    mdl: *mut MDL,
}

/// A list of indication elements (data or datagram).
struct IndList {
    blocks: Vec<IndBlock>,
}

// SAFETY: the blocks are provider-owned pool memory, reachable only through this value (or
// the client, under the WSK contract, until it calls WskRelease).
unsafe impl Send for IndList {}

impl IndList {
    fn head(&self) -> *mut c_void {
        self.blocks
            .first()
            .map_or(std::ptr::null_mut(), |b| b.block)
    }

    fn free(self) {
        for b in self.blocks {
            // SAFETY: MDL built by this module over the block; freed once (unlocked first if
            // it was built locked-but-unmapped).
            unsafe {
                if (*b.mdl).MdlFlags & crate::mdl::MDL_PAGES_LOCKED != 0 {
                    crate::mdl::MmUnlockPages(b.mdl);
                }
                crate::mdl::IoFreeMdl(b.mdl)
            };
            crate::pool::free(b.block, Some(INDICATION_TAG));
        }
    }
}

static UNMAPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes the provider indicate data in MDLs whose pages are locked but not mapped to a
/// system address (`MDL_PAGES_LOCKED`, `MappedSystemVa` NULL), as buffers from a lower
/// driver may be; a client must map them (`MmGetSystemAddressForMdlSafe` semantics) before
/// it reads them. Global: use it from a test binary of its own. Off by default.
pub fn set_indications_unmapped(on: bool) {
    UNMAPPED.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Retained lists: head address -> (socket key, list).
static RETAINED: Mutex<Option<FxHashMap<usize, (usize, IndList)>>> = Mutex::new(None);

fn retained() -> MutexGuard<'static, Option<FxHashMap<usize, (usize, IndList)>>> {
    RETAINED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Signalled when a callback returns (for disable and close, which wait for them).
static CALLBACK_LOCK: Mutex<()> = Mutex::new(());
static CALLBACK_DONE: Condvar = Condvar::new();

thread_local! {
    /// Sockets whose callback runs on this thread now.
    static IN_CALLBACK: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn in_callback_of(key: usize) -> bool {
    IN_CALLBACK.with(|v| v.borrow().contains(&key))
}

/// Waits (bounded by the hang limit) until no callback of `sock` runs on another thread.
/// Called without the socket lock.
fn wait_callbacks(sock: &Arc<SimSocket>) {
    let key = sock.key();
    if in_callback_of(key) {
        return;
    }
    let deadline = Instant::now() + crate::config::hang_limit();
    let mut g = CALLBACK_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    while sock.lock().ev.in_progress > 0 {
        let now = Instant::now();
        if now >= deadline {
            drop(g);
            verifier::violation(
                Rule::HangSuspected,
                format!("socket {key:#x}: an event callback did not return"),
            );
            return;
        }
        g = CALLBACK_DONE
            .wait_timeout(
                g,
                (deadline - now).min(std::time::Duration::from_millis(50)),
            )
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn callback_returned() {
    let _g = CALLBACK_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    CALLBACK_DONE.notify_all();
}

/// Called by [`SimSocket::new`]: records that the registration created a socket and returns
/// the static events that apply to a socket of `kind`.
pub(crate) fn socket_created(registration: usize, kind: Kind) -> u32 {
    let mut g = clients();
    let c = g
        .get_or_insert_with(FxHashMap::default)
        .entry(registration)
        .or_default();
    c.created_socket = true;
    c.static_mask & category_mask(kind)
}

/// Forgets a registration's static callbacks (`WskDeregister`).
pub(crate) fn registration_gone(registration: usize) {
    if let Some(m) = clients().as_mut() {
        m.remove(&registration);
    }
}

fn category_mask(kind: Kind) -> u32 {
    match kind {
        Kind::Connection => CONNECTION_EVENTS,
        Kind::Datagram => WSK_EVENT_RECEIVE_FROM,
        Kind::Listen => WSK_EVENT_ACCEPT,
    }
}

/// Reads a `WSK_EVENT_CALLBACK_CONTROL`; `Err(status)` for a short or NULL buffer or an NPI
/// other than `NPI_WSK_INTERFACE_ID` (extension interfaces are not emulated:
/// `STATUS_NOT_SUPPORTED`, our choice).
fn read_control(in_size: usize, in_buf: *mut c_void) -> Result<u32, NTSTATUS> {
    if in_buf.is_null() || in_size < std::mem::size_of::<WSK_EVENT_CALLBACK_CONTROL>() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: the client's input buffer holds a WSK_EVENT_CALLBACK_CONTROL (size checked).
    let c = unsafe { std::ptr::read_unaligned(in_buf as *const WSK_EVENT_CALLBACK_CONTROL) };
    if c.NpiId.is_null() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: NpiId points to an NPIID (GUID) per the structure's contract.
    let id = unsafe { std::ptr::read_unaligned(c.NpiId) };
    let wsk = NPI_WSK_INTERFACE_ID;
    if (id.data1, id.data2, id.data3, id.data4) != (wsk.data1, wsk.data2, wsk.data3, wsk.data4) {
        return Err(STATUS_NOT_SUPPORTED);
    }
    Ok(c.EventMask)
}

/// The event-related `WskControlSocket` requests (`SO_WSK_EVENT_CALLBACK`,
/// `SO_CONDITIONAL_ACCEPT`): `Some(status)` if this module handled the request, `None`
/// if it is not an event request. [`super::control`] calls this before its own options and
/// completes the IRP (if any) with the returned status.
///
/// Statuses (the SO_WSK_EVENT_CALLBACK page names none for refusals, so these are our
/// choices): `STATUS_INVALID_PARAMETER` for a bad buffer, an event not valid for the
/// socket's category, or a disable that names other than exactly one event ("a WSK
/// application must disable each event callback function independently",
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>);
/// `STATUS_INVALID_DEVICE_STATE` before bind (listening, datagram) or connect (connection),
/// for disabling a static event ("cannot be disabled or re-enabled later",
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-set-static-event-callbacks>),
/// and for disabling connection events on a listening socket ("they cannot be disabled on
/// the listening socket", SO_WSK_EVENT_CALLBACK page). A disable called from inside one of
/// the socket's own callbacks returns `STATUS_EVENT_PENDING` (the page's status for a
/// disable while a call is in progress and no IRP); from another thread it waits for the
/// running callback and returns `STATUS_SUCCESS`.
pub(crate) fn control_socket(
    sock: &Arc<SimSocket>,
    request: WSK_CONTROL_SOCKET_TYPE,
    code: u32,
    level: u32,
    in_size: usize,
    in_buf: *mut c_void,
) -> Option<NTSTATUS> {
    if request != WskSetOption || level != SOL_SOCKET as u32 {
        return None;
    }
    match code {
        SO_WSK_EVENT_CALLBACK => Some(event_callback(sock, in_size, in_buf)),
        c if c == SO_CONDITIONAL_ACCEPT as u32 => Some(conditional_accept(sock, in_size, in_buf)),
        _ => None,
    }
}

/// `SO_CONDITIONAL_ACCEPT` (a ULONG, non-zero = on): listening sockets only, before bind
/// ("by setting the SO_CONDITIONAL_ACCEPT socket option for the socket before binding the
/// socket", seed 003 /
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/enabling-and-disabling-event-callback-functions>).
/// Other socket kinds: `STATUS_INVALID_PARAMETER`; after bind: `STATUS_INVALID_DEVICE_STATE`
/// (both our choice).
fn conditional_accept(sock: &Arc<SimSocket>, in_size: usize, in_buf: *mut c_void) -> NTSTATUS {
    if sock.kind != Kind::Listen || in_buf.is_null() || in_size < 4 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: a ULONG input buffer (size checked).
    let on = unsafe { std::ptr::read_unaligned(in_buf as *const u32) } != 0;
    let mut st = sock.lock();
    if st.bound {
        return STATUS_INVALID_DEVICE_STATE;
    }
    st.ev.conditional = on;
    STATUS_SUCCESS
}

fn event_callback(sock: &Arc<SimSocket>, in_size: usize, in_buf: *mut c_void) -> NTSTATUS {
    let mask = match read_control(in_size, in_buf) {
        Ok(m) => m,
        Err(s) => return s,
    };
    let valid = match sock.kind {
        Kind::Listen => WSK_EVENT_ACCEPT | CONNECTION_EVENTS,
        k => category_mask(k),
    };
    let mut st = sock.lock();
    let ready = match sock.kind {
        Kind::Connection => st.connected,
        _ => st.bound,
    };
    if !ready {
        return STATUS_INVALID_DEVICE_STATE;
    }
    if mask & WSK_EVENT_DISABLE != 0 {
        let ev = mask & !WSK_EVENT_DISABLE;
        if ev.count_ones() != 1 || ev & !valid != 0 {
            return STATUS_INVALID_PARAMETER;
        }
        if ev & st.ev.static_mask != 0 {
            return STATUS_INVALID_DEVICE_STATE;
        }
        if sock.kind == Kind::Listen && ev & CONNECTION_EVENTS != 0 {
            return STATUS_INVALID_DEVICE_STATE;
        }
        st.ev.enabled &= !ev;
        let running = st.ev.in_progress > 0;
        drop(st);
        if running && in_callback_of(sock.key()) {
            return STATUS_EVENT_PENDING;
        }
        wait_callbacks(sock);
        return STATUS_SUCCESS;
    }
    if mask == 0 || mask & !valid != 0 {
        return STATUS_INVALID_PARAMETER;
    }
    if sock.kind == Kind::Listen {
        st.ev.inherit |= mask & CONNECTION_EVENTS;
        st.ev.enabled |= mask & WSK_EVENT_ACCEPT;
    } else {
        if mask & WSK_EVENT_SEND_BACKLOG != 0 && st.ev.enabled & WSK_EVENT_SEND_BACKLOG == 0 {
            st.ev.backlog_sent = None;
        }
        st.ev.enabled |= mask;
    }
    drop(st);
    io().push(Work::Kick(sock.key()));
    STATUS_SUCCESS
}

/// The event-related `WskControlClient` requests (`WSK_SET_STATIC_EVENT_CALLBACKS`):
/// `Some(status)` if handled, `None` otherwise. [`super::control`] calls this first and
/// completes the IRP (if any) with the returned status.
///
/// The page requires it "before it creates any sockets"
/// (<https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-set-static-event-callbacks>)
/// but names no status for a late call: the emulation refuses it with
/// `STATUS_INVALID_DEVICE_STATE` (our choice). Bad input: `STATUS_INVALID_PARAMETER`.
pub(crate) fn control_client(
    client: PWSK_CLIENT,
    code: u32,
    in_size: usize,
    in_buf: *mut c_void,
) -> Option<NTSTATUS> {
    if code != WSK_SET_STATIC_EVENT_CALLBACKS {
        return None;
    }
    let mask = match read_control(in_size, in_buf) {
        Ok(m) => m,
        Err(s) => return Some(s),
    };
    let all = CONNECTION_EVENTS | WSK_EVENT_RECEIVE_FROM | WSK_EVENT_ACCEPT;
    if mask == 0 || mask & !all != 0 {
        return Some(STATUS_INVALID_PARAMETER);
    }
    let mut g = clients();
    let c = g
        .get_or_insert_with(FxHashMap::default)
        .entry(client as usize)
        .or_default();
    if c.created_socket {
        return Some(STATUS_INVALID_DEVICE_STATE);
    }
    c.static_mask |= mask;
    Some(STATUS_SUCCESS)
}

// ---------------------------------------------------------------------------------------
// Close, WskRelease, WskInspectComplete
// ---------------------------------------------------------------------------------------

/// `WskCloseSocket` of `sock` (already removed from the socket table and shut down): waits
/// for a running callback, drops connections under inspection (with RST), and reclaims
/// indication lists the client still retains, recording `IndicationNotReleased` for each.
pub(crate) fn on_close(sock: &Arc<SimSocket>) {
    {
        let mut st = sock.lock();
        st.ev.closing = true;
        for i in st.ev.inspects.drain(..) {
            io().deregister(std::os::fd::AsRawFd::as_raw_fd(&i.conn));
            let _ = i.conn.set_linger(Some(std::time::Duration::ZERO));
        }
        st.ev.ready.clear();
    }
    wait_callbacks(sock);
    let key = sock.key();
    let mine: Vec<(usize, IndList)> = {
        let mut g = retained();
        let Some(m) = g.as_mut() else { return };
        let heads: Vec<usize> = m
            .iter()
            .filter(|(_, (k, _))| *k == key)
            .map(|(h, _)| *h)
            .collect();
        heads
            .into_iter()
            .filter_map(|h| m.remove(&h).map(|(_, l)| (h, l)))
            .collect()
    };
    for (head, list) in mine {
        verifier::violation(
            Rule::IndicationNotReleased,
            format!(
                "socket {key:#x} closed with indication list {head:#x} retained (STATUS_PENDING \
                 from its receive event) and never given back with WskRelease; the provider \
                 reclaimed it"
            ),
        );
        list.free();
    }
}

/// `WskRelease` (connection and datagram dispatch tables): gives back a list the client
/// retained by returning `STATUS_PENDING` from its receive event. A list the provider does
/// not hold as retained is a `DoubleFree` violation and `STATUS_INVALID_PARAMETER`.
/// Source: <https://learn.microsoft.com/en-us/previous-versions/windows/hardware/drivers/ff571144(v=vs.85)>
pub(crate) unsafe extern "system" fn wsk_release(
    socket: PWSK_SOCKET,
    list: *mut c_void,
) -> NTSTATUS {
    let Some(sock) = super::lookup(socket, "WskRelease") else {
        return STATUS_INVALID_HANDLE;
    };
    let entry = retained().as_mut().and_then(|m| m.remove(&(list as usize)));
    match entry {
        Some((key, l)) if key == sock.key() => {
            l.free();
            STATUS_SUCCESS
        }
        Some((key, l)) => {
            // Released through another socket: put it back and refuse.
            retained()
                .get_or_insert_with(FxHashMap::default)
                .insert(list as usize, (key, l));
            STATUS_INVALID_PARAMETER
        }
        None => {
            verifier::violation(
                Rule::DoubleFree,
                format!("WskRelease({list:p}): not an indication list the client retains"),
            );
            STATUS_INVALID_PARAMETER
        }
    }
}

/// `WskRelease` for connection sockets.
pub(crate) unsafe extern "system" fn wsk_release_data(
    socket: PWSK_SOCKET,
    list: PWSK_DATA_INDICATION,
) -> NTSTATUS {
    // SAFETY: same contract.
    unsafe { wsk_release(socket, list as *mut c_void) }
}

/// `WskRelease` for datagram sockets.
pub(crate) unsafe extern "system" fn wsk_release_datagram(
    socket: PWSK_SOCKET,
    list: PWSK_DATAGRAM_INDICATION,
) -> NTSTATUS {
    // SAFETY: same contract.
    unsafe { wsk_release(socket, list as *mut c_void) }
}

/// `WskInspectComplete`: the verdict on a connection the client pended in `WskInspectEvent`.
/// `WskInspectAccept` hands it on (to a queued `WskAccept` or `WskAcceptEvent`);
/// `WskInspectReject` closes it with RST. An unknown or already aborted id, or an action
/// other than accept/reject: `STATUS_INVALID_PARAMETER` (our choice; the page says the
/// connection is then not established). Not a conditional-accept listening socket:
/// `STATUS_INVALID_DEVICE_STATE` (our choice). A verdict that arrives while the request's
/// `WskInspectEvent` is still running (another thread) is kept and applied when the event
/// returns `WskInspectPend` (our choice; the docs do not cover that race).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_complete>
pub(crate) unsafe extern "system" fn wsk_inspect_complete(
    socket: PWSK_SOCKET,
    id: PWSK_INSPECT_ID,
    action: WSK_INSPECT_ACTION,
    irp: PIRP,
) -> NTSTATUS {
    if !super::take_irp(irp, "WskInspectComplete") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = super::lookup(socket, "WskInspectComplete") else {
        return super::finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if id.is_null() || !(action == WskInspectAccept || action == WskInspectReject) {
        return super::finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: the client's WSK_INSPECT_ID.
    let id = unsafe { *id };
    let mut st = sock.lock();
    if sock.kind != Kind::Listen || !st.ev.conditional {
        return super::finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    let Some(p) = st.ev.inspects.iter().position(|i| i.id == id) else {
        return super::finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    let pended = st.ev.inspects.get(p).is_some_and(|i| i.pended);
    if !pended {
        // The inspect event is still running: remember the verdict for its return.
        return match st.ev.inspects.get_mut(p) {
            Some(i) if i.early.is_none() => {
                i.early = Some(action == WskInspectAccept);
                drop(st);
                super::finish(irp, STATUS_SUCCESS, 0)
            }
            _ => {
                drop(st);
                super::finish(irp, STATUS_INVALID_PARAMETER, 0)
            }
        };
    }
    let i = st.ev.inspects.remove(p);
    resolve(&mut st, i, action == WskInspectAccept);
    let mut done = super::socket::Done::new();
    st.pump(&mut done);
    drop(st);
    complete_all(done);
    io().push(Work::Kick(sock.key()));
    super::finish(irp, STATUS_SUCCESS, 0)
}

fn resolve(st: &mut State, i: Inspection, accept: bool) {
    io().deregister(std::os::fd::AsRawFd::as_raw_fd(&i.conn));
    if accept {
        st.ev.ready.push_back((i.conn, i.peer));
    } else {
        // Reject: RST, so the peer sees the refusal.
        let _ = i.conn.set_linger(Some(std::time::Duration::ZERO));
    }
}

// ---------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------

/// One callback to make, decided under the socket lock and made without it.
enum Call {
    Receive {
        list: IndList,
        bytes: usize,
    },
    Disconnect {
        flags: u32,
    },
    Backlog {
        size: usize,
    },
    ReceiveFrom {
        list: IndList,
    },
    Accept {
        new: Arc<SimSocket>,
        local: SocketAddr,
        remote: SocketAddr,
    },
    Inspect {
        id: WSK_INSPECT_ID,
        local: SocketAddr,
        remote: SocketAddr,
    },
    Abort {
        id: WSK_INSPECT_ID,
    },
}

/// Makes the socket's due event callbacks (I/O thread, after its queued operations ran).
pub(crate) fn deliver(sock: &Arc<SimSocket>) {
    for _ in 0..64 {
        let call = {
            let mut st = sock.lock();
            if st.ev.closing || st.ev.accepting || st.os.is_none() || sock.client_dispatch() == 0 {
                return;
            }
            let c = match sock.kind {
                Kind::Connection => next_connection(sock, &mut st),
                Kind::Datagram => next_datagram(sock, &mut st),
                Kind::Listen => next_listen(sock, &mut st),
            };
            if c.is_some() {
                st.ev.in_progress += 1;
            }
            c
        };
        let Some(call) = call else { return };
        run(sock, call);
    }
    // More may be due: come back after other sockets had their turn.
    io().push(Work::Kick(sock.key()));
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
    )
}

fn next_connection(sock: &Arc<SimSocket>, st: &mut State) -> Option<Call> {
    // SAFETY: the client's dispatch table (non-NULL, checked by the caller) stays valid
    // while the socket is open (WskSocket / WskAcceptEvent contract).
    let table = unsafe { *(sock.client_dispatch() as *const WSK_CLIENT_CONNECTION_DISPATCH) };
    if !st.connected {
        return None;
    }
    let enabled = st.ev.enabled;
    let os = st.os.as_ref()?;
    if enabled & WSK_EVENT_SEND_BACKLOG != 0 && table.WskSendBacklogEvent.is_some() {
        if let Ok(size) = os.send_buffer_size() {
            if st.ev.backlog_sent != Some(size) {
                st.ev.backlog_sent = Some(size);
                return Some(Call::Backlog { size });
            }
        }
    }
    if enabled & WSK_EVENT_RECEIVE != 0
        && table.WskReceiveEvent.is_some()
        && st.recvs_empty()
        && !st.ev.recv_blocked
        && !st.eof
        && !st.ev.reset
    {
        let mut tmp = vec![0u8; MAX_INDICATION];
        match os.peek(super::socket::as_uninit(&mut tmp)) {
            Ok(0) => st.eof = true,
            Ok(n) => {
                let list = build_data_list(&tmp[..n])?;
                st.ev.indicating = true;
                return Some(Call::Receive { list, bytes: n });
            }
            Err(e) if is_reset(&e) => st.ev.reset = true,
            Err(_) => {}
        }
    }
    if enabled & WSK_EVENT_DISCONNECT != 0
        && table.WskDisconnectEvent.is_some()
        && !st.ev.disconnect_indicated
    {
        if !st.eof && !st.ev.reset && st.recvs_empty() {
            let mut one = [0u8; 1];
            match os.peek(super::socket::as_uninit(&mut one)) {
                Ok(0) => st.eof = true,
                Err(e) if is_reset(&e) => st.ev.reset = true,
                _ => {}
            }
        }
        if st.ev.reset || st.eof {
            st.ev.disconnect_indicated = true;
            let flags = if st.ev.reset { WSK_FLAG_ABORTIVE } else { 0 };
            return Some(Call::Disconnect { flags });
        }
    }
    None
}

fn next_datagram(sock: &Arc<SimSocket>, st: &mut State) -> Option<Call> {
    // SAFETY: as in next_connection.
    let table = unsafe { *(sock.client_dispatch() as *const WSK_CLIENT_DATAGRAM_DISPATCH) };
    if st.ev.enabled & WSK_EVENT_RECEIVE_FROM == 0
        || table.WskReceiveFromEvent.is_none()
        || !st.recvfroms_empty()
        || st.ev.recv_blocked
    {
        return None;
    }
    let os = st.os.as_ref()?;
    let mut tmp = vec![0u8; MAX_INDICATION];
    match os.peek_from(super::socket::as_uninit(&mut tmp)) {
        Ok((n, from)) => {
            let from = from.as_socket()?;
            let list = build_datagram(&tmp[..n], &from)?;
            st.ev.indicating = true;
            Some(Call::ReceiveFrom { list })
        }
        Err(_) => None,
    }
}

fn next_listen(sock: &Arc<SimSocket>, st: &mut State) -> Option<Call> {
    // SAFETY: as in next_connection.
    let table = unsafe { *(sock.client_dispatch() as *const WSK_CLIENT_LISTEN_DISPATCH) };
    let local = st
        .os
        .as_ref()?
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())?;
    if st.ev.conditional && table.WskInspectEvent.is_some() {
        // A pended connection whose peer went away: WskAbortEvent.
        let gone = st.ev.inspects.iter().position(|i| {
            let mut one = [0u8; 1];
            i.pended
                && match i.conn.peek(super::socket::as_uninit(&mut one)) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                }
        });
        if let Some(p) = gone {
            let i = st.ev.inspects.remove(p);
            io().deregister(std::os::fd::AsRawFd::as_raw_fd(&i.conn));
            if table.WskAbortEvent.is_some() {
                return Some(Call::Abort { id: i.id });
            }
        }
        // A new connection: accepted by the host (see the module docs), then inspected.
        if let Ok((conn, peer)) = st.os.as_ref()?.accept() {
            let remote = peer.as_socket()?;
            let _ = conn.set_nonblocking(true);
            st.ev.serial = st.ev.serial.wrapping_add(1);
            let id = WSK_INSPECT_ID {
                Key: sock.key(),
                SerialNumber: st.ev.serial,
            };
            let local = conn
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .unwrap_or(local);
            // Watched by the I/O thread under the listener's token, for WskAbortEvent.
            let _ = io().register(std::os::fd::AsRawFd::as_raw_fd(&conn), sock.key());
            st.ev.inspects.push(Inspection {
                id,
                conn,
                peer,
                pended: false,
                early: None,
            });
            return Some(Call::Inspect { id, local, remote });
        }
    }
    if st.ev.enabled & WSK_EVENT_ACCEPT == 0
        || table.WskAcceptEvent.is_none()
        || !st.accepts_empty()
    {
        return None;
    }
    let (conn, peer) = if st.ev.conditional && table.WskInspectEvent.is_some() {
        st.ev.ready.pop_front()?
    } else {
        st.os.as_ref()?.accept().ok()?
    };
    let remote = peer.as_socket()?;
    let local = conn
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(local);
    let _ = conn.set_nonblocking(true);
    let family = if remote.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let new = SimSocket::new(
        Kind::Connection,
        family,
        super::connection_dispatch(),
        sock.registration,
        0,
        0,
        conn,
    );
    {
        let mut nst = new.lock();
        nst.bound = true;
        nst.connected = true;
        nst.ev.accepting = true;
        // Inherited from the listener (SO_WSK_EVENT_CALLBACK page), plus static ones.
        nst.ev.enabled |= st.ev.inherit;
        new.ensure_registered(&mut nst);
    }
    new.publish();
    Some(Call::Accept { new, local, remote })
}

/// Allocates one provider-owned element: a nonpaged pool block of `header + data` bytes
/// and an MDL over its data part.
fn alloc_block(header: usize, data: &[u8]) -> Option<IndBlock> {
    let block = crate::pool::allocate(header + data.len(), INDICATION_TAG, false);
    if block.is_null() {
        return None;
    }
    // SAFETY: the block has header + data.len() bytes.
    let va = unsafe { (block as *mut u8).add(header) };
    // SAFETY: as above; the data part is ours to fill.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), va, data.len()) };
    // SAFETY: va..va+len is nonpaged pool owned by this block.
    let mdl = crate::faults::internal(|| unsafe {
        crate::mdl::IoAllocateMdl(
            va as *const c_void,
            data.len() as u32,
            false,
            false,
            std::ptr::null_mut(),
        )
    });
    if mdl.is_null() {
        crate::pool::free(block, Some(INDICATION_TAG));
        return None;
    }
    if UNMAPPED.load(std::sync::atomic::Ordering::SeqCst) {
        // SAFETY: fresh MDL over nonpaged pool: locked, not mapped.
        unsafe { crate::mdl::MmProbeAndLockPages(mdl, 0, 0) };
    } else {
        // SAFETY: fresh MDL over nonpaged pool.
        unsafe { crate::mdl::MmBuildMdlForNonPagedPool(mdl) };
    }
    Some(IndBlock { block, mdl })
}

/// A `WSK_DATA_INDICATION` list over `data`, in elements of at most [`CHUNK`] bytes.
fn build_data_list(data: &[u8]) -> Option<IndList> {
    let header = std::mem::size_of::<WSK_DATA_INDICATION>();
    let mut list = IndList { blocks: Vec::new() };
    for chunk in data.chunks(CHUNK) {
        match alloc_block(header, chunk) {
            Some(b) => list.blocks.push(b),
            None => {
                list.free();
                return None;
            }
        }
    }
    let n = list.blocks.len();
    for (i, b) in list.blocks.iter().enumerate() {
        let next = if i + 1 < n {
            list.blocks[i + 1].block as *mut WSK_DATA_INDICATION
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: the block's header space holds a WSK_DATA_INDICATION (pool blocks are
        // 16-byte aligned).
        unsafe {
            *(b.block as *mut WSK_DATA_INDICATION) = WSK_DATA_INDICATION {
                Next: next,
                Buffer: WSK_BUF {
                    Mdl: b.mdl,
                    Offset: 0,
                    Length: (*b.mdl).ByteCount as usize,
                },
            }
        };
    }
    Some(list)
}

/// One `WSK_DATAGRAM_INDICATION` over `data`, with the sender's SOCKADDR in the same block.
fn build_datagram(data: &[u8], from: &SocketAddr) -> Option<IndList> {
    let ind = std::mem::size_of::<WSK_DATAGRAM_INDICATION>();
    let header = ind + 32;
    let b = alloc_block(header, data)?;
    // SAFETY: the header space holds the indication followed by a 32-byte SOCKADDR area.
    unsafe {
        let sa =
            (b.block as *mut u8).add(ind) as *mut windows_sys::Win32::Networking::WinSock::SOCKADDR;
        super::addr::write(sa, from);
        *(b.block as *mut WSK_DATAGRAM_INDICATION) = WSK_DATAGRAM_INDICATION {
            Next: std::ptr::null_mut(),
            Buffer: WSK_BUF {
                Mdl: b.mdl,
                Offset: 0,
                Length: data.len(),
            },
            ControlInfo: std::ptr::null_mut(),
            ControlInfoLength: 0,
            RemoteAddress: sa,
        };
    }
    Some(IndList { blocks: vec![b] })
}

/// A SOCKADDR buffer large enough for either family, for callback arguments.
#[repr(C, align(8))]
struct SockAddrBuf([u8; 32]);

impl SockAddrBuf {
    fn new(a: &SocketAddr) -> Self {
        let mut b = SockAddrBuf([0; 32]);
        // SAFETY: 32 bytes hold a SOCKADDR_IN or SOCKADDR_IN6.
        unsafe { super::addr::write(b.0.as_mut_ptr() as *mut _, a) };
        b
    }

    fn ptr(&mut self) -> PSOCKADDR {
        self.0.as_mut_ptr() as PSOCKADDR
    }
}

/// Runs `f` as a callback of `key`: at DISPATCH_LEVEL, marked as in a callback of the
/// socket on this thread.
fn as_callback<R>(key: usize, f: impl FnOnce() -> R) -> R {
    IN_CALLBACK.with(|v| v.borrow_mut().push(key));
    let r = crate::irql::with_raised(crate::irql::DISPATCH_LEVEL, f);
    IN_CALLBACK.with(|v| {
        let mut v = v.borrow_mut();
        if let Some(p) = v.iter().rposition(|&k| k == key) {
            v.remove(p);
        }
    });
    r
}

/// Lends a list to the client for a receive callback: it is entered in the retained table
/// *before* the call, so a `WskRelease` from another thread that races the callback's return
/// finds it.
fn lend(sock: &Arc<SimSocket>, list: IndList) -> usize {
    let head = list.head() as usize;
    retained()
        .get_or_insert_with(FxHashMap::default)
        .insert(head, (sock.key(), list));
    head
}

fn run(sock: &Arc<SimSocket>, call: Call) {
    let key = sock.key();
    let ctx = sock.context() as *mut c_void;
    let disp = sock.client_dispatch();
    match call {
        Call::Receive { list, bytes } => {
            // SAFETY: checked non-NULL in deliver; valid while the socket is open.
            let cb = unsafe { (*(disp as *const WSK_CLIENT_CONNECTION_DISPATCH)).WskReceiveEvent };
            let mut accepted = bytes;
            let head = lend(sock, list) as PWSK_DATA_INDICATION;
            let status = match cb {
                // SAFETY: the client's callback with its context and a list the provider
                // owns until the callback returns (or the client releases it).
                Some(f) => as_callback(key, || unsafe {
                    f(ctx, WSK_FLAG_AT_DISPATCH_LEVEL, head, bytes, &mut accepted)
                }),
                None => STATUS_DATA_NOT_ACCEPTED,
            };
            finish_receive(sock, head as usize, bytes, status, accepted, false);
        }
        Call::ReceiveFrom { list } => {
            // SAFETY: as above.
            let cb =
                unsafe { (*(disp as *const WSK_CLIENT_DATAGRAM_DISPATCH)).WskReceiveFromEvent };
            let head = lend(sock, list) as PWSK_DATAGRAM_INDICATION;
            let status = match cb {
                // SAFETY: as above.
                Some(f) => as_callback(key, || unsafe { f(ctx, WSK_FLAG_AT_DISPATCH_LEVEL, head) }),
                None => STATUS_DATA_NOT_ACCEPTED,
            };
            finish_receive(sock, head as usize, 0, status, 0, true);
        }
        Call::Disconnect { flags } => {
            // SAFETY: as above.
            let cb =
                unsafe { (*(disp as *const WSK_CLIENT_CONNECTION_DISPATCH)).WskDisconnectEvent };
            if let Some(f) = cb {
                // SAFETY: the client's callback with its context.
                as_callback(key, || unsafe { f(ctx, flags) });
            }
            end_call(sock);
        }
        Call::Backlog { size } => {
            // SAFETY: as above.
            let cb =
                unsafe { (*(disp as *const WSK_CLIENT_CONNECTION_DISPATCH)).WskSendBacklogEvent };
            if let Some(f) = cb {
                // SAFETY: the client's callback with its context.
                as_callback(key, || unsafe { f(ctx, size) });
            }
            end_call(sock);
        }
        Call::Accept { new, local, remote } => {
            // SAFETY: as above.
            let cb = unsafe { (*(disp as *const WSK_CLIENT_LISTEN_DISPATCH)).WskAcceptEvent };
            let (mut l, mut r) = (SockAddrBuf::new(&local), SockAddrBuf::new(&remote));
            let mut out_ctx: *mut c_void = std::ptr::null_mut();
            let mut out_disp: *const WSK_CLIENT_CONNECTION_DISPATCH = std::ptr::null();
            let status = match cb {
                // SAFETY: the client's callback; the addresses live for the call, the new
                // socket is published and owned by the client if it returns STATUS_SUCCESS.
                Some(f) => as_callback(key, || unsafe {
                    f(
                        ctx,
                        WSK_FLAG_AT_DISPATCH_LEVEL,
                        l.ptr(),
                        r.ptr(),
                        new.key() as PWSK_SOCKET,
                        &mut out_ctx,
                        &mut out_disp,
                    )
                }),
                None => STATUS_REQUEST_NOT_ACCEPTED,
            };
            if status == STATUS_SUCCESS {
                new.set_client(out_ctx as usize, out_disp as usize);
                new.lock().ev.accepting = false;
                io().push(Work::Kick(new.key()));
            } else if io().sockets().remove(&new.key()).is_some() {
                // STATUS_REQUEST_NOT_ACCEPTED: "the WSK subsystem will close the accepted
                // socket on behalf of the WSK application" (WskAcceptEvent docs).
                let rest = {
                    let mut nst = new.lock();
                    new.shutdown(&mut nst)
                };
                complete_all(rest);
                new.closed();
            }
            end_call(sock);
        }
        Call::Inspect { id, local, remote } => {
            // SAFETY: as above.
            let cb = unsafe { (*(disp as *const WSK_CLIENT_LISTEN_DISPATCH)).WskInspectEvent };
            let (mut l, mut r) = (SockAddrBuf::new(&local), SockAddrBuf::new(&remote));
            let mut idc = id;
            let action = match cb {
                // SAFETY: the client's callback; the addresses and id live for the call.
                Some(f) => as_callback(key, || unsafe { f(ctx, l.ptr(), r.ptr(), &mut idc) }),
                None => WskInspectAccept,
            };
            let mut st = sock.lock();
            if let Some(p) = st.ev.inspects.iter().position(|i| i.id == id) {
                let early = st.ev.inspects.get(p).and_then(|i| i.early);
                if let (true, Some(accept)) = (action == WskInspectPend, early) {
                    let i = st.ev.inspects.remove(p);
                    resolve(&mut st, i, accept);
                } else if action == WskInspectPend {
                    if let Some(i) = st.ev.inspects.get_mut(p) {
                        i.pended = true;
                    }
                } else {
                    let i = st.ev.inspects.remove(p);
                    resolve(&mut st, i, action == WskInspectAccept);
                }
            }
            let mut done = super::socket::Done::new();
            st.pump(&mut done);
            drop(st);
            complete_all(done);
            end_call(sock);
        }
        Call::Abort { id } => {
            // SAFETY: as above.
            let cb = unsafe { (*(disp as *const WSK_CLIENT_LISTEN_DISPATCH)).WskAbortEvent };
            let mut idc = id;
            if let Some(f) = cb {
                // SAFETY: the client's callback; the id lives for the call.
                as_callback(key, || unsafe { f(ctx, &mut idc) });
            }
            end_call(sock);
        }
    }
}

fn end_call(sock: &Arc<SimSocket>) {
    sock.lock().ev.in_progress -= 1;
    callback_returned();
}

/// Applies a receive callback's verdict (`WskReceiveEvent` docs): `STATUS_SUCCESS`
/// consumes `accepted` bytes (all by default; a partial accept stops indications until the
/// next WskReceive); `STATUS_PENDING` consumes everything and the client retains the list
/// until `WskRelease`; `STATUS_DATA_NOT_ACCEPTED` (or anything else) leaves the data in the
/// transport and stops indications until the next WskReceive. Datagram sockets apply the
/// same rules per datagram (our reading of the WskReceiveFromEvent page).
fn finish_receive(
    sock: &Arc<SimSocket>,
    head: usize,
    bytes: usize,
    status: NTSTATUS,
    accepted: usize,
    datagram: bool,
) {
    let mut st = sock.lock();
    st.ev.indicating = false;
    let consume = match status {
        STATUS_SUCCESS => {
            let n = accepted.min(bytes);
            if !datagram && n < bytes {
                // Stopped until a WskReceive; one already queued (posted during the
                // callback) counts.
                st.ev.recv_blocked = st.recvs_empty();
            }
            Some(n)
        }
        STATUS_PENDING => Some(bytes),
        _ => {
            st.ev.recv_blocked = if datagram {
                st.recvfroms_empty()
            } else {
                st.recvs_empty()
            };
            None
        }
    };
    if let (Some(n), Some(os)) = (consume, st.os.as_ref()) {
        let mut tmp = vec![0u8; n.max(1)];
        if datagram {
            let _ = os.recv_from(super::socket::as_uninit(&mut tmp));
        } else {
            let mut left = n;
            while left > 0 {
                let k = left.min(tmp.len());
                let Some(slice) = tmp.get_mut(..k) else { break };
                match os.recv(super::socket::as_uninit(slice)) {
                    Ok(0) | Err(_) => break,
                    Ok(got) => left -= got,
                }
            }
        }
    }
    if status != STATUS_PENDING {
        // Not retained: take the lent list back (unless the client already released it).
        let lent = retained().as_mut().and_then(|m| m.remove(&head));
        if let Some((_, list)) = lent {
            list.free();
        }
    }
    let mut done = super::socket::Done::new();
    st.pump(&mut done);
    st.ev.in_progress -= 1;
    drop(st);
    complete_all(done);
    callback_returned();
}

/// Live indication lists the clients retain (for tests and leak reports).
pub fn retained_indications() -> usize {
    retained().as_ref().map_or(0, |m| m.len())
}
