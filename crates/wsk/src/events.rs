//! WSK event callbacks, as traits a driver implements.
//!
//! - [`ConnectionEvents`] (`WskReceiveEvent`, `WskDisconnectEvent`, `WskSendBacklogEvent`)
//!   for [`StreamSocket::connect_with_events`];
//! - [`DatagramEvents`] (`WskReceiveFromEvent`) for
//!   [`DatagramSocket::bind_with_events`](crate::DatagramSocket::bind_with_events);
//! - [`ListenEvents`] (`WskAcceptEvent`, and `WskInspectEvent` / `WskAbortEvent` for
//!   conditional accept) for [`ListenSocket::bind_with_events`](crate::ListenSocket::bind_with_events) and
//!   [`ListenSocket::bind_conditional`](crate::ListenSocket::bind_conditional).
//!
//! Every callback runs at IRQL <= DISPATCH_LEVEL (the provider may call it at
//! DISPATCH_LEVEL: "The WSK subsystem calls a WSK application's WskReceiveEvent event callback
//! function at IRQL <= DISPATCH_LEVEL",
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>;
//! the same for every event), so it must not wait, touch paged memory or call synchronous
//! methods of this crate; it may start asynchronous ones.
//!
//! A socket created with events owns a nonpaged context block holding the handler and the
//! client dispatch table. The block lives until the socket is closed (`WskCloseSocket`
//! completed, after which the provider makes no more callbacks) **and** every
//! [`RetainedIndication`] of the socket was dropped; so a callback never sees a freed
//! handler.
//!
//! Events are enabled with `enable_events` and disabled one at a time with `disable_event`
//! ("a WSK application must disable each event callback function individually",
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/enabling-and-disabling-event-callback-functions>),
//! or for every socket of the client with [`WskClient::set_static_event_callbacks`].

use core::cell::Cell;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::ops::BitOr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use windows_sys::Wdk::Foundation::MDL;
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_DATA_NOT_ACCEPTED, STATUS_PENDING, STATUS_REQUEST_NOT_ACCEPTED, STATUS_SUCCESS,
};
use wsk_sys::*;

use crate::client::WskClient;
use crate::error::{check, Error, Result};
use crate::pool::{PoolBox, WSK_TAG};
use crate::socket::{Core, StreamSocket};
use crate::sync::SpinLock;
use crate::Accepted;

/// `SOL_SOCKET`.
const SOL_SOCKET: u32 = 0xffff;
/// `MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL`.
const MDL_HAS_SYSTEM_VA: i16 = 0x0001 | 0x0004;

/// A set of event callbacks (`WSK_EVENT_*` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EventSet(u32);

impl EventSet {
    /// `WSK_EVENT_RECEIVE` (connection-oriented sockets; on a listening socket: inherited by
    /// accepted sockets).
    pub const RECEIVE: EventSet = EventSet(WSK_EVENT_RECEIVE);
    /// `WSK_EVENT_DISCONNECT` (connection-oriented sockets).
    pub const DISCONNECT: EventSet = EventSet(WSK_EVENT_DISCONNECT);
    /// `WSK_EVENT_SEND_BACKLOG` (connection-oriented sockets).
    pub const SEND_BACKLOG: EventSet = EventSet(WSK_EVENT_SEND_BACKLOG);
    /// `WSK_EVENT_RECEIVE_FROM` (datagram sockets).
    pub const RECEIVE_FROM: EventSet = EventSet(WSK_EVENT_RECEIVE_FROM);
    /// `WSK_EVENT_ACCEPT` (listening sockets).
    pub const ACCEPT: EventSet = EventSet(WSK_EVENT_ACCEPT);

    /// The `WSK_EVENT_*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for EventSet {
    type Output = EventSet;
    fn bitor(self, rhs: EventSet) -> EventSet {
        EventSet(self.0 | rhs.0)
    }
}

/// One event callback, for `disable_event` (events are disabled one at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `WskReceiveEvent`.
    Receive,
    /// `WskDisconnectEvent`.
    Disconnect,
    /// `WskSendBacklogEvent`.
    SendBacklog,
    /// `WskReceiveFromEvent`.
    ReceiveFrom,
    /// `WskAcceptEvent`.
    Accept,
}

impl Event {
    /// The event's `WSK_EVENT_*` flag.
    pub const fn bits(self) -> u32 {
        match self {
            Event::Receive => WSK_EVENT_RECEIVE,
            Event::Disconnect => WSK_EVENT_DISCONNECT,
            Event::SendBacklog => WSK_EVENT_SEND_BACKLOG,
            Event::ReceiveFrom => WSK_EVENT_RECEIVE_FROM,
            Event::Accept => WSK_EVENT_ACCEPT,
        }
    }
}

/// What a receive callback did with the indicated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveAction {
    /// All of it was consumed (`STATUS_SUCCESS`).
    AcceptAll,
    /// The first `n` bytes were consumed (`STATUS_SUCCESS` with `*BytesAccepted = n`); the
    /// provider then stops indicating until the next `WskReceive`, which gets the rest.
    /// Connection sockets only (datagram callbacks treat it as `AcceptAll`).
    Accept(usize),
    /// Nothing consumed (`STATUS_DATA_NOT_ACCEPTED`): the data stays with the transport and
    /// indications stop until the next `WskReceive` / `WskReceiveFrom`.
    NotAccepted,
}

/// Verdict of [`ListenEvents::on_inspect`] (`WSK_INSPECT_ACTION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectAction {
    /// `WskInspectAccept`: establish the connection.
    Accept,
    /// `WskInspectReject`: drop it.
    Reject,
    /// `WskInspectPend`: decide later with [`ListenSocket::inspect_complete`](crate::ListenSocket::inspect_complete).
    Pend,
}

/// Identifies a connection request under inspection (`WSK_INSPECT_ID`, copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InspectId(pub WSK_INSPECT_ID);

/// Event callbacks of a connection-oriented socket. Every method runs at IRQL <=
/// DISPATCH_LEVEL, at most one at a time per socket (as the emulation calls them; Windows
/// documents no such serialisation, so a handler must be `Sync`).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_connection_dispatch>
pub trait ConnectionEvents: Send + Sync + 'static {
    /// `WskReceiveEvent`: data arrived. Read it during the call, or keep it with
    /// [`ReceivedData::retain`] (the callback then returns `STATUS_PENDING` whatever it
    /// answers). IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>
    fn on_receive(&self, data: ReceivedData<'_>) -> ReceiveAction {
        let _ = data;
        ReceiveAction::NotAccepted
    }

    /// `WskDisconnectEvent`: the peer disconnected; `abortive` if it reset the connection
    /// (`WSK_FLAG_ABORTIVE`). IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect_event>
    fn on_disconnect(&self, abortive: bool) {
        let _ = abortive;
    }

    /// `WskSendBacklogEvent`: the ideal send backlog (bytes of send data to keep
    /// outstanding) changed. IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_backlog_event>
    fn on_send_backlog(&self, ideal_bytes: usize) {
        let _ = ideal_bytes;
    }
}

/// Event callbacks of a datagram socket. IRQL <= DISPATCH_LEVEL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_datagram_dispatch>
pub trait DatagramEvents: Send + Sync + 'static {
    /// `WskReceiveFromEvent`: datagrams arrived, each with its sender. Read them during the
    /// call or keep them with [`ReceivedDatagrams::retain`]. IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event>
    fn on_receive_from(&self, data: ReceivedDatagrams<'_>) -> ReceiveAction;
}

/// Event callbacks of a listening socket. IRQL <= DISPATCH_LEVEL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_listen_dispatch>
pub trait ListenEvents: Send + Sync + 'static {
    /// The handler type of accepted sockets.
    type Connection: ConnectionEvents;

    /// `WskAcceptEvent`, first half: a connection was accepted from `remote` on `local`.
    /// Return its handler to take it, `None` to have it closed
    /// (`STATUS_REQUEST_NOT_ACCEPTED`). Connection events enabled on the listening socket
    /// are already enabled on it. IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>
    fn on_accept(&self, local: SocketAddr, remote: SocketAddr) -> Option<Self::Connection>;

    /// `WskAcceptEvent`, second half: the accepted socket, now owned by the driver (dropping
    /// it closes it without waiting). Called within the same event, after `on_accept`
    /// returned a handler. IRQL <= DISPATCH_LEVEL.
    fn on_accepted(&self, accepted: Accepted);

    /// `WskInspectEvent` (conditional accept only): accept, reject or pend the request.
    /// IRQL <= DISPATCH_LEVEL. Default: accept.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event>
    fn on_inspect(&self, local: SocketAddr, remote: SocketAddr, id: InspectId) -> InspectAction {
        let _ = (local, remote, id);
        InspectAction::Accept
    }

    /// `WskAbortEvent` (conditional accept only): the request `id` was dropped by the peer
    /// before the decision. IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_abort_event>
    fn on_abort(&self, id: InspectId) {
        let _ = id;
    }
}

// ---------------------------------------------------------------------------------------
// The context block
// ---------------------------------------------------------------------------------------

/// How many indication lists a socket's driver may retain at once (a further `retain`
/// fails with `STATUS_INSUFFICIENT_RESOURCES`; the handler then refuses the data).
pub const MAX_RETAINED: usize = 64;

/// The retained lists of one socket, by head address (bit 0 set: a datagram list), and
/// whether close began. Under the header's spin lock: close releases every list still held
/// *before* `WskCloseSocket`, which does not ("the WSK subsystem does not release
/// retained ... when the socket is closed": WskRelease page), and a retained list is read or
/// released only while it is in the table.
struct Retained {
    closed: bool,
    heads: [usize; MAX_RETAINED],
}

/// The non-generic head of every context block: reference count, the retained lists, the
/// socket, and the client dispatch tables (the provider keeps their address while the
/// socket is open).
#[repr(C)]
pub(crate) struct CtxHeader {
    refs: AtomicUsize,
    retained: SpinLock<Retained>,
    raw: AtomicPtr<WSK_SOCKET>,
    conn: WSK_CLIENT_CONNECTION_DISPATCH,
    dgram: WSK_CLIENT_DATAGRAM_DISPATCH,
    listen: WSK_CLIENT_LISTEN_DISPATCH,
    free: unsafe fn(*mut CtxHeader),
}

#[repr(C)]
struct EventCtx<H> {
    hdr: CtxHeader,
    handler: H,
}

unsafe fn free_ctx<H>(p: *mut CtxHeader) {
    // SAFETY: p is the header of an EventCtx<H> from PoolBox::into_raw (repr(C), first).
    drop(unsafe { PoolBox::from_raw(p as *mut EventCtx<H>, WSK_TAG) });
}

impl CtxHeader {
    fn alloc<H: 'static>(handler: H) -> Result<NonNull<CtxHeader>> {
        let b = PoolBox::try_new(
            EventCtx {
                hdr: CtxHeader {
                    refs: AtomicUsize::new(1),
                    retained: SpinLock::new(Retained {
                        closed: false,
                        heads: [0; MAX_RETAINED],
                    }),
                    raw: AtomicPtr::new(core::ptr::null_mut()),
                    conn: WSK_CLIENT_CONNECTION_DISPATCH::default(),
                    dgram: WSK_CLIENT_DATAGRAM_DISPATCH::default(),
                    listen: WSK_CLIENT_LISTEN_DISPATCH::default(),
                    free: free_ctx::<H>,
                },
                handler,
            },
            WSK_TAG,
        )?;
        NonNull::new(b.into_raw() as *mut CtxHeader).ok_or(Error::InsufficientResources)
    }

    /// Adds a reference.
    fn add_ref(&self) {
        self.refs.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops a reference; frees the block with the last one. Any IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    /// `p` is a live block and the caller owns one reference.
    pub(crate) unsafe fn release(p: *mut CtxHeader) {
        // SAFETY: live block per the contract.
        if unsafe { (*p).refs.fetch_sub(1, Ordering::AcqRel) } == 1 {
            // SAFETY: last reference.
            unsafe { ((*p).free)(p) };
        }
    }

    /// Records a list the driver retains. Errors: `STATUS_INVALID_HANDLE` (close began),
    /// `STATUS_INSUFFICIENT_RESOURCES` ([`MAX_RETAINED`] lists held). IRQL <= DISPATCH_LEVEL.
    fn track(&self, head: usize) -> Result<()> {
        let mut g = self.retained.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        let slot = g
            .heads
            .iter_mut()
            .find(|h| **h == 0)
            .ok_or(Error::InsufficientResources)?;
        *slot = head;
        Ok(())
    }

    /// Gives a retained list back with the socket's `WskRelease`. Called with the retained
    /// table locked and the list in it, so close has not released it nor called
    /// `WskCloseSocket` yet: the socket is open.
    fn release_list(&self, head: usize) {
        let raw = self.raw.load(Ordering::Acquire);
        if raw.is_null() {
            return;
        }
        let list = head & !1;
        // SAFETY: the socket is open (see above) and the list is ours to give back.
        unsafe {
            if head & 1 != 0 {
                let d = &*((*raw).Dispatch as *const WSK_PROVIDER_DATAGRAM_DISPATCH);
                if let Some(rel) = d.WskRelease {
                    rel(raw, list as PWSK_DATAGRAM_INDICATION);
                }
            } else {
                let d = &*((*raw).Dispatch as *const WSK_PROVIDER_CONNECTION_DISPATCH);
                if let Some(rel) = d.WskRelease {
                    rel(raw, list as PWSK_DATA_INDICATION);
                }
            }
        }
    }

    /// Called by the socket's close before `WskCloseSocket`: releases every list the driver
    /// still retains (their [`RetainedIndication`]s read as closed from now on) and refuses
    /// further retains. Never waits: the table's spin lock is held only for short copies
    /// and releases. IRQL <= DISPATCH_LEVEL.
    pub(crate) fn begin_close(&self) {
        let mut g = self.retained.lock();
        g.closed = true;
        for i in 0..MAX_RETAINED {
            let Some(h) = g.heads.get_mut(i).map(core::mem::take) else {
                break;
            };
            if h != 0 {
                self.release_list(h);
            }
        }
    }

    fn handler<H>(ctx: *mut c_void) -> Option<&'static H> {
        // SAFETY: the provider passes the SocketContext we gave it: an EventCtx<H> that lives
        // until the socket is closed, after which no callback is made.
        (!ctx.is_null()).then(|| unsafe { &(*(ctx as *const EventCtx<H>)).handler })
    }
}

// ---------------------------------------------------------------------------------------
// Indications
// ---------------------------------------------------------------------------------------

/// Gives `mdl` a system address if it has none (`MmGetSystemAddressForMdlSafe` semantics:
/// an MDL already mapped, or built over nonpaged pool, keeps its address; otherwise
/// `MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NULL, FALSE,
/// NormalPagePriority | MdlMappingNoExecute)`; the mapping belongs to the MDL and goes with
/// it). False if it cannot be mapped. IRQL <= DISPATCH_LEVEL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe>
fn map_mdl(mdl: *mut MDL) -> bool {
    // SAFETY: a provider MDL of a live indication list (locked pages, per the WSK contract).
    let m = unsafe { &*mdl };
    if m.MdlFlags & MDL_HAS_SYSTEM_VA != 0 && !m.MappedSystemVa.is_null() {
        return true;
    }
    const MM_CACHED: i32 = 1;
    const NORMAL_PAGE_PRIORITY: u32 = 16;
    const MDL_MAPPING_NO_EXECUTE: u32 = 0x4000_0000;
    // SAFETY: as above; KernelMode (0) mapping of locked pages, not bugchecking on failure.
    let va = unsafe {
        windows_sys::Wdk::System::SystemServices::MmMapLockedPagesSpecifyCache(
            mdl,
            0,
            MM_CACHED,
            core::ptr::null(),
            0,
            NORMAL_PAGE_PRIORITY | MDL_MAPPING_NO_EXECUTE,
        )
    };
    !va.is_null()
}

/// Maps every MDL of every element of an indication list (`next` gives an element's
/// successor and its `WSK_BUF`); false if one cannot be mapped (the handler must then not
/// see the list: its bytes would read as missing while it may accept them).
fn map_list<E>(head: *mut E, next: impl Fn(&E) -> (*mut E, &WSK_BUF)) -> bool {
    let mut p = head;
    while !p.is_null() {
        // SAFETY: a live provider list element.
        let (n, buf) = next(unsafe { &*p });
        let mut mdl = buf.Mdl;
        while !mdl.is_null() {
            if !map_mdl(mdl) {
                return false;
            }
            // SAFETY: a live provider MDL chain.
            mdl = unsafe { (*mdl).Next };
        }
        p = n;
    }
    true
}

/// The bytes an MDL describes (mapped beforehand by [`map_list`]; an MDL without a system
/// address, which that excludes, would read as empty).
fn mdl_bytes<'a>(mdl: *mut MDL, offset: usize, len: usize) -> &'a [u8] {
    if mdl.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: a provider MDL in a live indication list.
    let m = unsafe { &*mdl };
    if m.MdlFlags & MDL_HAS_SYSTEM_VA == 0 || m.MappedSystemVa.is_null() {
        return &[];
    }
    let avail = (m.ByteCount as usize).saturating_sub(offset);
    // SAFETY: MappedSystemVa maps ByteCount bytes of nonpaged memory that stays valid while
    // the indication list is held (during the callback, or until WskRelease).
    unsafe {
        core::slice::from_raw_parts((m.MappedSystemVa as *const u8).add(offset), len.min(avail))
    }
}

/// Calls `f` with each contiguous piece of a `WSK_BUF`.
fn for_each_piece(buf: &WSK_BUF, mut f: impl FnMut(&[u8])) {
    let mut mdl = buf.Mdl;
    let mut offset = buf.Offset as usize;
    let mut left = buf.Length;
    while left > 0 && !mdl.is_null() {
        // SAFETY: a provider MDL of a live list.
        let count = unsafe { (*mdl).ByteCount } as usize;
        if offset >= count {
            offset -= count;
        } else {
            let piece = mdl_bytes(mdl, offset, (count - offset).min(left));
            left -= piece.len().max(1).min(left);
            f(piece);
            offset = 0;
        }
        // SAFETY: as above.
        mdl = unsafe { (*mdl).Next };
    }
}

/// Copies a data indication list into `out`, skipping `skip` bytes; returns bytes copied.
fn copy_data_list(head: *mut WSK_DATA_INDICATION, skip: usize, out: &mut [u8]) -> usize {
    let mut skip = skip;
    let mut n = 0;
    let mut p = head;
    while !p.is_null() && n < out.len() {
        // SAFETY: a live provider list element.
        let e = unsafe { &*p };
        for_each_piece(&e.Buffer, |piece| {
            let piece = if skip >= piece.len() {
                skip -= piece.len();
                return;
            } else {
                let s = piece.get(skip..).unwrap_or(&[]);
                skip = 0;
                s
            };
            let room = out.len() - n;
            let k = piece.len().min(room);
            if let (Some(dst), Some(src)) = (out.get_mut(n..n + k), piece.get(..k)) {
                dst.copy_from_slice(src);
            }
            n += k;
        });
        p = e.Next;
    }
    n
}

/// Data indicated to [`ConnectionEvents::on_receive`], valid during the callback.
pub struct ReceivedData<'a> {
    head: *mut WSK_DATA_INDICATION,
    bytes: usize,
    hdr: *mut CtxHeader,
    retained: &'a Cell<bool>,
}

impl<'a> ReceivedData<'a> {
    /// Bytes indicated (`BytesIndicated`).
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// True if no bytes were indicated.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Copies the indicated bytes from `skip` into `out`; returns the bytes copied.
    pub fn copy_to(&self, skip: usize, out: &mut [u8]) -> usize {
        copy_data_list(self.head, skip, out)
    }

    /// Calls `f` with each contiguous piece of the data, in order.
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) {
        let mut p = self.head;
        while !p.is_null() {
            // SAFETY: a live provider list element.
            let e = unsafe { &*p };
            for_each_piece(&e.Buffer, &mut f);
            p = e.Next;
        }
    }

    /// Keeps the list after the callback returns (`STATUS_PENDING`): the provider considers
    /// all of it consumed, and it goes back to the provider with `WskRelease` when the
    /// [`RetainedIndication`] is dropped, or when the socket closes, whichever comes first
    /// (close gives back every list still held before `WskCloseSocket`, which does not).
    ///
    /// Errors (the list is then *not* retained; the handler's own action applies, so return
    /// [`ReceiveAction::NotAccepted`] to keep the data with the transport):
    /// `STATUS_INSUFFICIENT_RESOURCES` ([`MAX_RETAINED`] lists held), `STATUS_INVALID_HANDLE`
    /// (the socket is closing). IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_data_indication_list>
    pub fn retain(self) -> Result<RetainedIndication> {
        // SAFETY: the block is alive during the callback.
        let hdr = unsafe { &*self.hdr };
        hdr.track(self.head as usize)?;
        self.retained.set(true);
        // A reference for the retained list.
        hdr.add_ref();
        Ok(RetainedIndication {
            head: self.head as *mut c_void,
            bytes: self.bytes,
            hdr: self.hdr,
            datagram: false,
        })
    }
}

/// One datagram of a [`ReceivedDatagrams`] indication.
pub struct Datagram<'a> {
    /// The sender.
    pub remote: Option<SocketAddr>,
    buf: WSK_BUF,
    _life: PhantomData<&'a ()>,
}

impl Datagram<'_> {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.buf.Length
    }

    /// True for an empty datagram.
    pub fn is_empty(&self) -> bool {
        self.buf.Length == 0
    }

    /// Copies the datagram into `out`; returns the bytes copied.
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        for_each_piece(&self.buf, |piece| {
            let k = piece.len().min(out.len() - n);
            if let (Some(dst), Some(src)) = (out.get_mut(n..n + k), piece.get(..k)) {
                dst.copy_from_slice(src);
            }
            n += k;
        });
        n
    }
}

/// Datagrams indicated to [`DatagramEvents::on_receive_from`], valid during the callback.
pub struct ReceivedDatagrams<'a> {
    head: *mut WSK_DATAGRAM_INDICATION,
    hdr: *mut CtxHeader,
    retained: &'a Cell<bool>,
}

impl<'a> ReceivedDatagrams<'a> {
    /// Calls `f` with each datagram, in order.
    pub fn for_each(&self, mut f: impl FnMut(&Datagram<'_>)) {
        let mut p = self.head;
        while !p.is_null() {
            // SAFETY: a live provider list element.
            let e = unsafe { &*p };
            let d = Datagram {
                remote: read_sockaddr(e.RemoteAddress),
                buf: e.Buffer,
                _life: PhantomData,
            };
            f(&d);
            p = e.Next;
        }
    }

    /// Keeps the list after the callback returns; see [`ReceivedData::retain`] (same errors).
    pub fn retain(self) -> Result<RetainedIndication> {
        // SAFETY: the block is alive during the callback.
        let hdr = unsafe { &*self.hdr };
        hdr.track(self.head as usize | 1)?;
        self.retained.set(true);
        hdr.add_ref();
        let mut bytes = 0;
        self.for_each(|d| bytes += d.len());
        Ok(RetainedIndication {
            head: self.head as *mut c_void,
            bytes,
            hdr: self.hdr,
            datagram: true,
        })
    }
}

/// An indication list the driver kept (`STATUS_PENDING` from the receive event). Dropping
/// it gives the list back with `WskRelease` (any IRQL <= DISPATCH_LEVEL). Reads go through
/// [`RetainedIndication::copy_to`], which fails once the socket began closing, so a read
/// never touches memory the provider reclaimed.
/// Source: <https://learn.microsoft.com/en-us/previous-versions/windows/hardware/drivers/ff571144(v=vs.85)>
pub struct RetainedIndication {
    head: *mut c_void,
    bytes: usize,
    hdr: *mut CtxHeader,
    datagram: bool,
}

// SAFETY: the list is provider memory handed to us until WskRelease; the header is
// reference counted with atomics.
unsafe impl Send for RetainedIndication {}
// SAFETY: reads only.
unsafe impl Sync for RetainedIndication {}

impl RetainedIndication {
    /// Bytes in the list.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Copies the list's bytes (datagram lists: all datagrams back to back) from `skip`
    /// into `out`. Errors: `STATUS_INVALID_HANDLE` once the socket began closing.
    /// IRQL <= DISPATCH_LEVEL.
    pub fn copy_to(&self, skip: usize, out: &mut [u8]) -> Result<usize> {
        // SAFETY: we own a reference to the header.
        let hdr = unsafe { &*self.hdr };
        // Held across the copy: close cannot give the list back meanwhile.
        let g = hdr.retained.lock();
        if !g.heads.contains(&self.key()) {
            return Err(Error::Closed);
        }
        let n = if self.datagram {
            let mut n = 0;
            let mut skip = skip;
            let mut p = self.head as *mut WSK_DATAGRAM_INDICATION;
            while !p.is_null() {
                // SAFETY: a retained provider list (not yet released, socket not closing).
                let e = unsafe { &*p };
                let d = Datagram {
                    remote: None,
                    buf: e.Buffer,
                    _life: PhantomData,
                };
                let mut tmp_skip = skip.min(d.len());
                skip -= tmp_skip;
                for_each_piece(&e.Buffer, |piece| {
                    let piece = piece.get(tmp_skip.min(piece.len())..).unwrap_or(&[]);
                    tmp_skip = tmp_skip.saturating_sub(piece.len());
                    let k = piece.len().min(out.len() - n);
                    if let (Some(dst), Some(src)) = (out.get_mut(n..n + k), piece.get(..k)) {
                        dst.copy_from_slice(src);
                    }
                    n += k;
                });
                p = e.Next;
            }
            n
        } else {
            copy_data_list(self.head as *mut WSK_DATA_INDICATION, skip, out)
        };
        drop(g);
        Ok(n)
    }
}

impl RetainedIndication {
    /// The list's key in the retained table.
    fn key(&self) -> usize {
        self.head as usize | usize::from(self.datagram)
    }
}

impl Drop for RetainedIndication {
    fn drop(&mut self) {
        // SAFETY: we own a reference to the header.
        let hdr = unsafe { &*self.hdr };
        {
            let mut g = hdr.retained.lock();
            let key = self.key();
            if let Some(slot) = g.heads.iter_mut().find(|h| **h == key) {
                *slot = 0;
                // Still held (close has not given it back): the socket is open.
                hdr.release_list(key);
            }
        }
        // SAFETY: our reference.
        unsafe { CtxHeader::release(self.hdr) };
    }
}

fn read_sockaddr(sa: *const SOCKADDR) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    let p = sa as *const u8;
    let mut b = [0u8; 28];
    // SAFETY: the provider's SOCKADDR: at least the family is readable.
    let family = unsafe { u16::from_le_bytes([*p, *p.add(1)]) };
    let len = match family {
        crate::addr::AF_INET => 16,
        crate::addr::AF_INET6 => 28,
        _ => return None,
    };
    // SAFETY: a SOCKADDR_IN(6) of `len` bytes.
    unsafe { core::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), len) };
    let port = u16::from_be_bytes([b[2], b[3]]);
    if family == crate::addr::AF_INET {
        Some(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(b[4], b[5], b[6], b[7]),
            port,
        )))
    } else {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(b.get(8..24)?);
        let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let scope = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            flow,
            scope,
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Trampolines (the client dispatch tables' entries)
// ---------------------------------------------------------------------------------------

unsafe extern "system" fn receive_event<H: ConnectionEvents>(
    ctx: *mut c_void,
    _flags: u32,
    list: PWSK_DATA_INDICATION,
    bytes: usize,
    accepted: *mut usize,
) -> NTSTATUS {
    let Some(h) = CtxHeader::handler::<H>(ctx) else {
        return STATUS_DATA_NOT_ACCEPTED;
    };
    if list.is_null() {
        // The socket is no longer functional; the driver learns it from its next call.
        return STATUS_SUCCESS;
    }
    if !map_list(list, |e: &WSK_DATA_INDICATION| (e.Next, &e.Buffer)) {
        // Unreadable now: the data stays with the transport (a later WskReceive, or the
        // next indication, gets it).
        return STATUS_DATA_NOT_ACCEPTED;
    }
    let retained = Cell::new(false);
    let action = h.on_receive(ReceivedData {
        head: list,
        bytes,
        hdr: ctx as *mut CtxHeader,
        retained: &retained,
    });
    if retained.get() {
        return STATUS_PENDING;
    }
    match action {
        ReceiveAction::AcceptAll => STATUS_SUCCESS,
        ReceiveAction::Accept(n) => {
            if !accepted.is_null() {
                // SAFETY: the provider's BytesAccepted variable.
                unsafe { *accepted = n.min(bytes) };
            }
            STATUS_SUCCESS
        }
        ReceiveAction::NotAccepted => STATUS_DATA_NOT_ACCEPTED,
    }
}

unsafe extern "system" fn disconnect_event<H: ConnectionEvents>(
    ctx: *mut c_void,
    flags: u32,
) -> NTSTATUS {
    if let Some(h) = CtxHeader::handler::<H>(ctx) {
        h.on_disconnect(flags & WSK_FLAG_ABORTIVE != 0);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn send_backlog_event<H: ConnectionEvents>(
    ctx: *mut c_void,
    ideal: usize,
) -> NTSTATUS {
    if let Some(h) = CtxHeader::handler::<H>(ctx) {
        h.on_send_backlog(ideal);
    }
    // "must always return STATUS_SUCCESS" (WskSendBacklogEvent docs).
    STATUS_SUCCESS
}

unsafe extern "system" fn receive_from_event<H: DatagramEvents>(
    ctx: *mut c_void,
    _flags: u32,
    list: PWSK_DATAGRAM_INDICATION,
) -> NTSTATUS {
    let Some(h) = CtxHeader::handler::<H>(ctx) else {
        return STATUS_DATA_NOT_ACCEPTED;
    };
    if list.is_null() {
        return STATUS_SUCCESS;
    }
    if !map_list(list, |e: &WSK_DATAGRAM_INDICATION| (e.Next, &e.Buffer)) {
        // Unreadable: refused (datagrams are then dropped by the transport), never accepted
        // unread.
        return STATUS_DATA_NOT_ACCEPTED;
    }
    let retained = Cell::new(false);
    let action = h.on_receive_from(ReceivedDatagrams {
        head: list,
        hdr: ctx as *mut CtxHeader,
        retained: &retained,
    });
    if retained.get() {
        return STATUS_PENDING;
    }
    match action {
        ReceiveAction::AcceptAll | ReceiveAction::Accept(_) => STATUS_SUCCESS,
        ReceiveAction::NotAccepted => STATUS_DATA_NOT_ACCEPTED,
    }
}

unsafe extern "system" fn accept_event<L: ListenEvents>(
    ctx: *mut c_void,
    _flags: u32,
    local: PSOCKADDR,
    remote: PSOCKADDR,
    socket: PWSK_SOCKET,
    out_ctx: *mut *mut c_void,
    out_disp: *mut *const WSK_CLIENT_CONNECTION_DISPATCH,
) -> NTSTATUS {
    let Some(l) = CtxHeader::handler::<L>(ctx) else {
        return STATUS_REQUEST_NOT_ACCEPTED;
    };
    let (Some(raw), Some(local), Some(remote)) = (
        NonNull::new(socket),
        read_sockaddr(local),
        read_sockaddr(remote),
    ) else {
        return STATUS_REQUEST_NOT_ACCEPTED;
    };
    if out_ctx.is_null() || out_disp.is_null() {
        return STATUS_REQUEST_NOT_ACCEPTED;
    }
    let Some(handler) = l.on_accept(local, remote) else {
        return STATUS_REQUEST_NOT_ACCEPTED;
    };
    let Ok(hdr) = connection_ctx(handler) else {
        return STATUS_REQUEST_NOT_ACCEPTED;
    };
    // SAFETY: fresh block; the provider keeps the context and table until the socket closes,
    // and the StreamSocket below holds the block's reference until then.
    unsafe {
        (*hdr.as_ptr()).raw.store(raw.as_ptr(), Ordering::Release);
        *out_ctx = hdr.as_ptr() as *mut c_void;
        *out_disp = &(*hdr.as_ptr()).conn;
    }
    let socket = StreamSocket {
        core: Core::with_events(raw, hdr.as_ptr()),
        fallback: false,
    };
    l.on_accepted(Accepted {
        socket,
        local,
        remote,
    });
    STATUS_SUCCESS
}

unsafe extern "system" fn inspect_event<L: ListenEvents>(
    ctx: *mut c_void,
    local: PSOCKADDR,
    remote: PSOCKADDR,
    id: PWSK_INSPECT_ID,
) -> WSK_INSPECT_ACTION {
    let Some(l) = CtxHeader::handler::<L>(ctx) else {
        return WskInspectReject;
    };
    let (Some(local), Some(remote), false) =
        (read_sockaddr(local), read_sockaddr(remote), id.is_null())
    else {
        return WskInspectReject;
    };
    // SAFETY: the provider's WSK_INSPECT_ID, copied (valid only during the call).
    let id = InspectId(unsafe { *id });
    match l.on_inspect(local, remote, id) {
        InspectAction::Accept => WskInspectAccept,
        InspectAction::Reject => WskInspectReject,
        InspectAction::Pend => WskInspectPend,
    }
}

unsafe extern "system" fn abort_event<L: ListenEvents>(
    ctx: *mut c_void,
    id: PWSK_INSPECT_ID,
) -> NTSTATUS {
    if let (Some(l), false) = (CtxHeader::handler::<L>(ctx), id.is_null()) {
        // SAFETY: the provider's WSK_INSPECT_ID.
        l.on_abort(InspectId(unsafe { *id }));
    }
    STATUS_SUCCESS
}

/// A context block for a connection socket with handler `H`.
pub(crate) fn connection_ctx<H: ConnectionEvents>(h: H) -> Result<NonNull<CtxHeader>> {
    let p = CtxHeader::alloc(h)?;
    // SAFETY: fresh block, not shared yet.
    unsafe {
        (*p.as_ptr()).conn = WSK_CLIENT_CONNECTION_DISPATCH {
            WskReceiveEvent: Some(receive_event::<H>),
            WskDisconnectEvent: Some(disconnect_event::<H>),
            WskSendBacklogEvent: Some(send_backlog_event::<H>),
        };
    }
    Ok(p)
}

/// A context block for a datagram socket with handler `H`.
pub(crate) fn datagram_ctx<H: DatagramEvents>(h: H) -> Result<NonNull<CtxHeader>> {
    let p = CtxHeader::alloc(h)?;
    // SAFETY: fresh block.
    unsafe {
        (*p.as_ptr()).dgram = WSK_CLIENT_DATAGRAM_DISPATCH {
            WskReceiveFromEvent: Some(receive_from_event::<H>),
        };
    }
    Ok(p)
}

/// A context block for a listening socket with handler `L`.
pub(crate) fn listen_ctx<L: ListenEvents>(l: L) -> Result<NonNull<CtxHeader>> {
    let p = CtxHeader::alloc(l)?;
    // SAFETY: fresh block.
    unsafe {
        (*p.as_ptr()).listen = WSK_CLIENT_LISTEN_DISPATCH {
            WskAcceptEvent: Some(accept_event::<L>),
            WskInspectEvent: Some(inspect_event::<L>),
            WskAbortEvent: Some(abort_event::<L>),
        };
    }
    Ok(p)
}

/// The dispatch table pointer of a block, for the given socket kind (`WSK_FLAG_*_SOCKET`).
pub(crate) fn table_of(hdr: NonNull<CtxHeader>, flags: u32) -> *const c_void {
    let p = hdr.as_ptr();
    // SAFETY: live block; the tables live in it.
    unsafe {
        match flags {
            WSK_FLAG_DATAGRAM_SOCKET => &(*p).dgram as *const _ as *const c_void,
            WSK_FLAG_LISTEN_SOCKET => &(*p).listen as *const _ as *const c_void,
            _ => &(*p).conn as *const _ as *const c_void,
        }
    }
}

/// Records the socket a block belongs to (for `WskRelease`).
pub(crate) fn set_socket(hdr: NonNull<CtxHeader>, raw: NonNull<WSK_SOCKET>) {
    // SAFETY: live block.
    unsafe { (*hdr.as_ptr()).raw.store(raw.as_ptr(), Ordering::Release) };
}

// ---------------------------------------------------------------------------------------
// Enable / disable (SO_WSK_EVENT_CALLBACK) and static callbacks
// ---------------------------------------------------------------------------------------

/// `WskControlSocket(WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET)` with `mask`, without
/// an IRP (enabling takes none: "A WSK application does not specify a pointer to an IRP when
/// calling the WskControlSocket function to enable event callback functions",
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>).
/// IRQL <= DISPATCH_LEVEL. `STATUS_EVENT_PENDING` (a disable while the callback runs) is
/// success.
pub(crate) fn control_events(core: &Core, mask: u32) -> Result<()> {
    let control = core.basic().WskControlSocket.ok_or(Error::NotImplemented)?;
    let _guard = core.enter()?;
    let mut c = WSK_EVENT_CALLBACK_CONTROL {
        NpiId: &NPI_WSK_INTERFACE_ID,
        EventMask: mask,
    };
    // SAFETY: open socket (rundown held); the input lives on this frame and no IRP is given,
    // so the call finishes before it returns.
    let status = unsafe {
        control(
            core.raw.as_ptr(),
            WskSetOption,
            SO_WSK_EVENT_CALLBACK,
            SOL_SOCKET,
            core::mem::size_of::<WSK_EVENT_CALLBACK_CONTROL>(),
            &mut c as *mut _ as *mut c_void,
            0,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    };
    check(status)
}

impl WskClient {
    /// Enables `events` on every socket this client creates from now on
    /// (`WskControlClient(WSK_SET_STATIC_EVENT_CALLBACKS)`); they can never be disabled on
    /// those sockets. Must be called before the client's first socket exists ("it must do so
    /// before it creates any sockets"); the docs name no status for a late call (the
    /// emulation returns `STATUS_INVALID_DEVICE_STATE`). Sockets still need a handler (the
    /// `*_with_events` constructors) for the callbacks to reach the driver.
    /// IRQL <= DISPATCH_LEVEL (no IRP: "The Irp parameter must be NULL").
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-set-static-event-callbacks>
    pub fn set_static_event_callbacks(&self, events: EventSet) -> Result<()> {
        let control = self
            .dispatch()
            .WskControlClient
            .ok_or(Error::NotImplemented)?;
        let mut c = WSK_EVENT_CALLBACK_CONTROL {
            NpiId: &NPI_WSK_INTERFACE_ID,
            EventMask: events.bits(),
        };
        // SAFETY: captured NPI; input on this frame; no IRP, so the call is synchronous.
        let status = unsafe {
            control(
                self.raw_client(),
                WSK_SET_STATIC_EVENT_CALLBACKS,
                core::mem::size_of::<WSK_EVENT_CALLBACK_CONTROL>(),
                &mut c as *mut _ as *mut c_void,
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        check(status)
    }
}
