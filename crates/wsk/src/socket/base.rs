//! The machinery every socket kind shares: the [`Core`] (the provider's socket, its rundown
//! protection and close), the reusable operation block of synchronous calls ([`OpBlock`],
//! [`run_sync`]) and socket creation.

use core::ffi::c_void;
use core::net::SocketAddr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use super::rundown::Rundown;
use core::time::Duration;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_CANCELLED, STATUS_INVALID_HANDLE, STATUS_MORE_PROCESSING_REQUIRED,
    STATUS_PENDING,
};
use wsk_sys::*;

use super::op_cache::OpCache;
use crate::addr::{family_of, SockAddrBuf};
use crate::alloc::KArc;
use crate::client::WskClient;
use crate::error::{check, Error, Result};
use crate::events::{set_socket, table_of, CtxHeader};
use crate::irp::{set_completion_routine_async, OwnedIrp, SyncWait};
use crate::pool::{PoolBox, WSK_TAG};

/// Per-operation state of synchronous calls: the IRP, its wait block, and the `WSK_BUF` and
/// address the provider reads until completion. Nonpaged; reused across calls.
pub(crate) struct OpBlock {
    wait: SyncWait,
    irp: OwnedIrp,
    buf: WSK_BUF,
    addr: SockAddrBuf,
    /// A second address (WskAccept returns local and remote).
    addr2: SockAddrBuf,
}

pub(crate) fn new_op() -> Result<PoolBox<OpBlock>> {
    let irp = OwnedIrp::allocate()?;
    PoolBox::try_new(
        OpBlock {
            wait: SyncWait::new(),
            irp,
            buf: WSK_BUF {
                Mdl: core::ptr::null_mut(),
                Offset: 0,
                Length: 0,
            },
            addr: SockAddrBuf::zeroed(),
            addr2: SockAddrBuf::zeroed(),
        },
        WSK_TAG,
    )
}

pub(crate) fn timeout_100ns(t: Option<Duration>) -> Option<u64> {
    t.map(|d| (d.as_nanos() / 100).min(u64::MAX as u128) as u64)
}

pub(crate) fn require_passive() -> Result<()> {
    if nt_imports::current_irql() == nt_imports::PASSIVE_LEVEL {
        Ok(())
    } else {
        Err(Error::InvalidDeviceState)
    }
}

/// Runs one synchronous operation on `op`: arm the IRP, call `start` (the WSK dispatch
/// routine), wait for completion (cancelling on timeout), and return `IoStatus.Information`.
/// The dispatch routine's own return value mirrors the IRP's status and is not needed: WSK
/// completes every IRP it accepts through the completion routine.
pub(crate) fn run_sync(
    op: &mut OpBlock,
    timeout: Option<Duration>,
    start: impl FnOnce(*mut IRP, &mut WSK_BUF, &mut SockAddrBuf, &mut SockAddrBuf) -> NTSTATUS,
) -> Result<usize> {
    require_passive()?;
    op.irp.reuse();
    let OpBlock {
        wait,
        irp,
        buf,
        addr,
        addr2,
    } = op;
    wait.arm(irp);
    let dispatch_status = start(irp.as_ptr(), buf, addr, addr2);
    // An error returned without completing the IRP: the routine refused it outright and never
    // will complete it (Wine 8.0's netio.sys stubs -- WskSocketConnect, WskGetLocalAddress,
    // WskControlSocket, WskDisconnect -- return STATUS_NOT_IMPLEMENTED this way). By the IRP
    // rules a driver returning a final status has completed the IRP already, so the event
    // would be signalled by now; waiting for it would hang forever (IoCancelIrp cannot help
    // an IRP nobody holds). The IRP stays ours.
    if dispatch_status < 0 && dispatch_status != STATUS_PENDING && !wait.completed() {
        return Err(check(dispatch_status)
            .err()
            .unwrap_or(Error::Status(dispatch_status)));
    }
    let (status, info, timed_out) = wait.wait(irp, timeout_100ns(timeout));
    if timed_out && status == STATUS_CANCELLED {
        return Err(Error::Timeout);
    }
    check(status)?;
    Ok(info)
}

/// What sockets of both kinds share: the provider's socket, a cached operation block, and a
/// default timeout.
pub(crate) struct Core {
    pub(crate) raw: NonNull<WSK_SOCKET>,
    /// The socket's provider dispatch table (`WSK_SOCKET.Dispatch`), read once at creation,
    /// while the socket is certainly open. Every later read of a routine goes through this
    /// copy, never through `raw`: once `WskCloseSocket` ran, "the WSK subsystem deallocates
    /// the socket", so reading `raw->Dispatch` (even only to find out that the call must be
    /// refused) would be a use after free (issue 12, defect 1). The table itself belongs to
    /// the provider and outlives its sockets; routines read from it are only *called* inside
    /// the rundown ([`Core::enter`]).
    table: NonNull<c_void>,
    cached: AtomicPtr<OpBlock>,
    /// The cache of IRPs and operation blocks of asynchronous operations
    /// ([`super::op_cache`]), made at the first one: NULL, or this socket's reference from
    /// `KArc::into_raw`, released by the drop.
    op_cache: AtomicPtr<OpCache>,
    pub(crate) timeout: Option<Duration>,
    /// Rundown protection ([`Rundown`]): close waits for the dispatch calls in progress
    /// (they are non-blocking) and then lets `WskCloseSocket` cancel whatever is still
    /// pending; no WSK routine is ever called on the socket after `WskCloseSocket`.
    rundown: Rundown,
    /// The event-callback context block (handler + client dispatch table), or NULL. It
    /// holds one reference for this socket, dropped only after `WskCloseSocket` completed.
    events: *mut crate::events::CtxHeader,
    /// Set once `WskCloseSocket` completed: only then may `events` be released.
    close_completed: AtomicBool,
}

/// Stands in for a NULL provider dispatch table: every routine absent, so each call fails
/// with `STATUS_NOT_IMPLEMENTED` (the largest provider table, all `None`).
static NULL_TABLE: NullTable = NullTable([0; 16]);

#[repr(C, align(8))]
struct NullTable([usize; 16]);

const _: () = assert!(
    core::mem::size_of::<NullTable>() >= core::mem::size_of::<WSK_PROVIDER_CONNECTION_DISPATCH>()
        && core::mem::size_of::<NullTable>()
            >= core::mem::size_of::<WSK_PROVIDER_LISTEN_DISPATCH>()
        && core::mem::size_of::<NullTable>()
            >= core::mem::size_of::<WSK_PROVIDER_DATAGRAM_DISPATCH>()
);

/// A dispatch call in progress (see [`Core::enter`]); exits the rundown on drop.
pub(crate) struct Enter<'a>(&'a Rundown);

impl Drop for Enter<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.exit();
    }
}

// SAFETY: a WSK socket may be used from any thread; the cache is atomic.
unsafe impl Send for Core {}
// SAFETY: as above.
unsafe impl Sync for Core {}

impl Core {
    /// A Core for the open socket `raw` (its dispatch table is read now). It holds no
    /// operation block yet: the first synchronous call (or the close) allocates one, so a
    /// socket used only asynchronously -- an idle connection with one RECEIVE pending --
    /// never carries the synchronous block's IRP and 400-odd bytes of pool.
    pub(crate) fn new(raw: NonNull<WSK_SOCKET>) -> Self {
        // SAFETY: `raw` was just returned by the provider and is open. A NULL table (no
        // provider returns one) reads as a table without routines.
        let table = unsafe { (*raw.as_ptr()).Dispatch };
        Core {
            raw,
            table: NonNull::new(table as *mut c_void).unwrap_or(NonNull::from(&NULL_TABLE).cast()),
            cached: AtomicPtr::new(core::ptr::null_mut()),
            op_cache: AtomicPtr::new(core::ptr::null_mut()),
            timeout: None,
            rundown: Rundown::new(),
            events: core::ptr::null_mut(),
            close_completed: AtomicBool::new(false),
        }
    }

    /// A socket whose event context block is `events` (this socket takes over the block's
    /// reference).
    pub(crate) fn with_events(
        raw: NonNull<WSK_SOCKET>,
        events: *mut crate::events::CtxHeader,
    ) -> Self {
        let mut c = Core::new(raw);
        c.events = events;
        c
    }

    /// Enters a dispatch call; fails with `STATUS_INVALID_HANDLE` once close began.
    #[inline]
    pub(crate) fn enter(&self) -> Result<Enter<'_>> {
        if self.rundown.enter() {
            Ok(Enter(&self.rundown))
        } else {
            Err(Error::Closed)
        }
    }

    /// The socket's provider dispatch table, as `T` (one of the `WSK_PROVIDER_*_DISPATCH`
    /// tables; the caller picks the one of the socket's kind). Read from the copy taken at
    /// creation, never from the socket: valid after close too.
    ///
    /// # Safety
    /// `T` is the table type of this socket's kind (or `WSK_PROVIDER_BASIC_DISPATCH`, the
    /// prefix of all of them).
    pub(crate) unsafe fn table<T>(&self) -> &T {
        // SAFETY: caller contract; the provider's table outlives its sockets.
        unsafe { &*(self.table.as_ptr() as *const T) }
    }

    pub(crate) fn basic(&self) -> &WSK_PROVIDER_BASIC_DISPATCH {
        // SAFETY: every provider table starts with WSK_PROVIDER_BASIC_DISPATCH.
        unsafe { self.table() }
    }

    /// A reference to the socket's cache of asynchronous operations, made on first use
    /// (two racing first uses keep one). IRQL <= DISPATCH_LEVEL.
    /// Errors: `STATUS_INSUFFICIENT_RESOURCES` (the first use could not allocate it).
    pub(crate) fn op_cache(&self) -> Result<KArc<OpCache>> {
        let mut p = self.op_cache.load(Ordering::Acquire);
        if p.is_null() {
            let new = KArc::into_raw(OpCache::try_new()?) as *mut OpCache;
            match self.op_cache.compare_exchange(
                core::ptr::null_mut(),
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => p = new,
                Err(theirs) => {
                    // SAFETY: ours from into_raw just above, never published.
                    drop(unsafe { KArc::from_raw(new) });
                    p = theirs;
                }
            }
        }
        // SAFETY: the socket's reference (from into_raw) lives until the drop, and &self
        // outlives this borrow; ManuallyDrop keeps that reference, the clone is the caller's.
        let ours = core::mem::ManuallyDrop::new(unsafe { KArc::from_raw(p) });
        Ok(KArc::clone(&ours))
    }

    /// Closes the cache of asynchronous operations once no operation can start any more
    /// (the rundown began): frees its idle items. IRQL <= DISPATCH_LEVEL.
    fn close_op_cache(&self) {
        let p = self.op_cache.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: the socket's reference keeps the cache alive until the drop.
            unsafe { (*p).close() };
        }
    }

    /// The socket's synchronous operation block, allocated on the first use (a socket is
    /// created without one: see [`Core::new`]); in the steady state the cached block, so
    /// synchronous calls allocate nothing. Two concurrent synchronous calls: the second
    /// gets a block of its own, freed by [`Core::put_op`] when the slot is taken.
    /// Errors: `STATUS_INSUFFICIENT_RESOURCES` (the first use could not allocate it).
    pub(crate) fn take_op(&self) -> Result<PoolBox<OpBlock>> {
        let p = self.cached.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if p.is_null() {
            new_op()
        } else {
            // SAFETY: the slot holds blocks from PoolBox::into_raw with WSK_TAG.
            Ok(unsafe { PoolBox::from_raw(p, WSK_TAG) })
        }
    }

    pub(crate) fn put_op(&self, op: PoolBox<OpBlock>) {
        let p = op.into_raw();
        if self
            .cached
            .compare_exchange(
                core::ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: our block, not stored: free it.
            drop(unsafe { PoolBox::from_raw(p, WSK_TAG) });
        }
    }

    pub(crate) fn sync(
        &self,
        timeout: Option<Duration>,
        start: impl FnOnce(*mut IRP, &mut WSK_BUF, &mut SockAddrBuf) -> NTSTATUS,
    ) -> Result<usize> {
        self.sync_addr(timeout, start).map(|(n, _)| n)
    }

    /// Like [`Core::sync`], also returning the op block's address after completion (where
    /// address-returning routines wrote it).
    pub(crate) fn sync_addr(
        &self,
        timeout: Option<Duration>,
        start: impl FnOnce(*mut IRP, &mut WSK_BUF, &mut SockAddrBuf) -> NTSTATUS,
    ) -> Result<(usize, SockAddrBuf)> {
        self.sync_addr2(timeout, |irp, b, a, _| start(irp, b, a))
            .map(|(n, a, _)| (n, a))
    }

    /// Like [`Core::sync_addr`] with both of the op block's addresses.
    pub(crate) fn sync_addr2(
        &self,
        timeout: Option<Duration>,
        start: impl FnOnce(*mut IRP, &mut WSK_BUF, &mut SockAddrBuf, &mut SockAddrBuf) -> NTSTATUS,
    ) -> Result<(usize, SockAddrBuf, SockAddrBuf)> {
        let mut op = self.take_op()?;
        let r = run_sync(&mut op, timeout, |irp, b, a, a2| match self.enter() {
            // The guard ends when the dispatch call returns; the wait that follows is outside.
            Ok(_guard) => start(irp, b, a, a2),
            // Not started: the IRP never left us and is not completed, so run_sync returns
            // this status without waiting (its path for a routine that refused the IRP).
            Err(_) => STATUS_INVALID_HANDLE,
        })
        .map(|n| (n, op.addr, op.addr2));
        self.put_op(op);
        r
    }

    /// Closes the socket: waits for dispatch calls in progress, then `WskCloseSocket`
    /// (which cancels what is still pending) and waits for it. PASSIVE_LEVEL.
    ///
    /// Everything that can fail (IRQL, the routine, the operation block) is checked *before*
    /// close begins, so a failed close leaves the socket open and closable again (by a later
    /// close or the drop); once close began, `WskCloseSocket` is called (issue 12, defect 2).
    /// A second close is a no-op. A socket that never made a synchronous call allocates its
    /// operation block here (`STATUS_INSUFFICIENT_RESOURCES` if it cannot: the socket stays
    /// open, and the drop then closes it without waiting, with an IRP of its own).
    pub(crate) fn close(&self) -> Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        require_passive()?;
        let close = self.basic().WskCloseSocket.ok_or(Error::NotImplemented)?;
        let mut op = self.take_op()?;
        if !self.rundown.close_and_wait() {
            self.put_op(op);
            return Ok(());
        }
        // No operation starts any more: the idle IRPs and blocks go now; those of operations
        // still pending go when WskCloseSocket below has completed them.
        self.close_op_cache();
        let raw = self.raw.as_ptr();
        if !self.events.is_null() {
            // SAFETY: our reference keeps the block alive.
            unsafe { (*self.events).begin_close() };
        }
        // WskCloseSocket completes (cancelling) every pending IRP of the socket first.
        // SAFETY: open socket, closed once; the IRP is ours until completion.
        let r = run_sync(&mut op, None, |irp, _, _, _| unsafe { close(raw, irp) });
        self.put_op(op);
        if r.is_ok() {
            self.close_completed.store(true, Ordering::Release);
        }
        r.map(|_| ())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.rundown.is_closing()
    }

    pub(crate) fn local_address(&self, get: PFN_WSK_GET_LOCAL_ADDRESS) -> Result<SocketAddr> {
        let get = get.ok_or(Error::NotImplemented)?;
        let raw = self.raw.as_ptr();
        let (_, out) = self.sync_addr(self.timeout, |irp, _, addr| {
            *addr = SockAddrBuf::zeroed();
            // SAFETY: open socket; addr lives in the op block until completion.
            unsafe { get(raw, addr.as_mut_ptr(), irp) }
        })?;
        out.get().ok_or(Error::InvalidParameter)
    }
}

impl Core {
    /// `WskBind` to `local` (the table's `WskBind`), waiting for completion. PASSIVE_LEVEL.
    pub(crate) fn bind(&self, bind: PFN_WSK_BIND, local: SockAddrBuf) -> Result<()> {
        let bind = bind.ok_or(Error::NotImplemented)?;
        let raw = self.raw.as_ptr();
        self.sync(self.timeout, |irp, _, addr| {
            *addr = local;
            // SAFETY: open socket; addr lives in the op block until completion.
            unsafe { bind(raw, addr.as_mut_ptr(), 0, irp) }
        })
        .map(|_| ())
    }

    /// `WskSocket` of `local`'s family with the given type, protocol and `WSK_FLAG_*`.
    /// PASSIVE_LEVEL.
    pub(crate) fn create(
        client: &WskClient,
        local: &SocketAddr,
        socket_type: u16,
        protocol: u32,
        flags: u32,
    ) -> Result<Core> {
        let (raw, op) = Core::create_raw(
            client,
            local,
            socket_type,
            protocol,
            flags,
            core::ptr::null_mut(),
            core::ptr::null(),
        )?;
        // The creating block goes: the socket allocates its own at its first synchronous call.
        drop(op);
        Ok(Core::new(raw))
    }

    /// [`Core::create`] with the client's socket context and dispatch table (NULL for
    /// none; when given, valid until the socket is closed): the new socket and the operation
    /// block that created it. PASSIVE_LEVEL.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_raw(
        client: &WskClient,
        local: &SocketAddr,
        socket_type: u16,
        protocol: u32,
        flags: u32,
        context: *mut c_void,
        dispatch: *const c_void,
    ) -> Result<(NonNull<WSK_SOCKET>, PoolBox<OpBlock>)> {
        require_passive()?;
        let mut op = new_op()?;
        let raw = create_socket_ctx(
            client,
            &mut op,
            family_of(local),
            socket_type,
            protocol,
            flags,
            context,
            dispatch,
        )?;
        Ok((raw, op))
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if !self.is_closed() && nt_imports::current_irql() == nt_imports::PASSIVE_LEVEL {
            let _ = self.close();
        }
        if !self.is_closed() {
            // Above PASSIVE_LEVEL, or the close could not start (no memory for its
            // operation block): close without waiting. No dispatch call is in progress (they
            // borrow the socket), so beginning the close waits for nothing.
            self.close_without_waiting();
        }
        let events = core::mem::replace(&mut self.events, core::ptr::null_mut());
        if !events.is_null() && self.close_completed.load(Ordering::Acquire) {
            // SAFETY: WskCloseSocket completed, so the provider makes no more callbacks
            // into the block; this was our reference.
            unsafe { crate::events::CtxHeader::release(events) };
        }
        // Otherwise the reference went to the pending close's completion routine, or the
        // socket could not be closed at all: the block is kept (leaked) rather than freed
        // under a provider that may still call into it.
        let p = self.cached.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: the cached block, not in use (we are dropping the socket).
            drop(unsafe { PoolBox::from_raw(p, WSK_TAG) });
        }
        let c = self.op_cache.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !c.is_null() {
            // SAFETY: the socket's reference from into_raw, released once here. Closed again
            // (idempotent) for a socket that could not be closed: its idle items go; the
            // cache itself goes with the last operation in flight.
            let c = unsafe { KArc::from_raw(c) };
            c.close();
            drop(c);
        }
    }
}

impl Core {
    /// Starts `WskCloseSocket` with an IRP freed by its completion routine, which also
    /// releases the event context reference (if any) once the close completed. The IRP is
    /// allocated before close begins: without one the socket stays open (and is leaked with
    /// its context) rather than half closed. Any IRQL <= DISPATCH_LEVEL.
    fn close_without_waiting(&mut self) {
        unsafe extern "system" fn done(
            _d: *mut DEVICE_OBJECT,
            irp: *mut IRP,
            c: *mut c_void,
        ) -> NTSTATUS {
            // SAFETY: the IRP was leaked to this routine by close_without_waiting.
            drop(unsafe { OwnedIrp::from_raw(irp) });
            if !c.is_null() {
                // SAFETY: the reference we were given; the socket is closed now.
                unsafe { crate::events::CtxHeader::release(c as *mut crate::events::CtxHeader) };
            }
            STATUS_MORE_PROCESSING_REQUIRED
        }
        let (Some(close), Ok(irp)) = (self.basic().WskCloseSocket, OwnedIrp::allocate()) else {
            return;
        };
        // Everything that can fail comes before close begins: the IRP, then its routine
        // (which gets our context reference once the close is under way).
        // SAFETY: fresh IRP with a free next stack location.
        if unsafe { set_completion_routine_async(irp.as_ptr(), done, self.events as *mut c_void) }
            .is_err()
        {
            // Not closed: the socket and its context stay (leaked) rather than half closed.
            return;
        }
        // No call is in progress (&mut self), so the rundown begins without waiting.
        if !self.rundown.close_now() {
            // Unreachable in practice (see above). The routine was set but the IRP is never
            // sent; if IoSetCompletionRoutineEx set it, its small context leaks with it.
            return;
        }
        self.close_op_cache();
        let events = core::mem::replace(&mut self.events, core::ptr::null_mut());
        if !events.is_null() {
            // SAFETY: our reference keeps the block alive.
            unsafe { (*events).begin_close() };
        }
        let irp = irp.into_raw();
        // SAFETY: fresh IRP, freed by the routine (which also releases `events`); open
        // socket, closed once.
        unsafe { close(self.raw.as_ptr(), irp) };
    }
}

pub(crate) fn create_socket(
    client: &WskClient,
    op: &mut OpBlock,
    family: u16,
    socket_type: u16,
    protocol: u32,
    flags: u32,
) -> Result<NonNull<WSK_SOCKET>> {
    create_socket_ctx(
        client,
        op,
        family,
        socket_type,
        protocol,
        flags,
        core::ptr::null_mut(),
        core::ptr::null(),
    )
}

/// `WskSocket` with a socket context and client dispatch table (both NULL for none; when
/// given, they must stay valid until the socket is closed).
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_socket_ctx(
    client: &WskClient,
    op: &mut OpBlock,
    family: u16,
    socket_type: u16,
    protocol: u32,
    flags: u32,
    context: *mut c_void,
    dispatch: *const c_void,
) -> Result<NonNull<WSK_SOCKET>> {
    let socket = client.dispatch().WskSocket.ok_or(Error::NotImplemented)?;
    let raw_client = client.raw_client();
    let info = run_sync(op, None, |irp, _, _, _| {
        // SAFETY: WskSocket; the context and table outlive the socket (caller contract).
        unsafe {
            socket(
                raw_client,
                family,
                socket_type,
                protocol,
                flags,
                context,
                dispatch,
                0,
                0,
                core::ptr::null_mut(),
                irp,
            )
        }
    })?;
    NonNull::new(info as *mut WSK_SOCKET).ok_or(Error::InvalidParameter)
}

/// Creates a socket of `local`'s family with an event context block (whose reference the
/// returned Core owns; on failure the block is released).
pub(crate) fn create_with_events(
    client: &WskClient,
    local: &SocketAddr,
    socket_type: u16,
    protocol: u32,
    flags: u32,
    hdr: NonNull<CtxHeader>,
) -> Result<Core> {
    let r = Core::create_raw(
        client,
        local,
        socket_type,
        protocol,
        flags,
        hdr.as_ptr() as *mut c_void,
        table_of(hdr, flags),
    );
    match r {
        Ok((raw, op)) => {
            set_socket(hdr, raw);
            drop(op);
            Ok(Core::with_events(raw, hdr.as_ptr()))
        }
        Err(e) => {
            // SAFETY: no socket was created: ours is the only reference.
            unsafe { CtxHeader::release(hdr.as_ptr()) };
            Err(e)
        }
    }
}

impl Core {
    /// Disables one event with an IRP (optional per the SO_WSK_EVENT_CALLBACK page), waiting
    /// for completion. PASSIVE_LEVEL.
    pub(crate) fn disable_event(&self, ev: u32) -> Result<()> {
        let control = self.basic().WskControlSocket.ok_or(Error::NotImplemented)?;
        let raw = self.raw.as_ptr();
        self.sync(self.timeout, |irp, b, _| {
            // The WSK_EVENT_CALLBACK_CONTROL lives in the op block's WSK_BUF storage (same
            // size, 16 bytes) until completion.
            let c = b as *mut WSK_BUF as *mut WSK_EVENT_CALLBACK_CONTROL;
            // SAFETY: 16-byte, 8-aligned storage in the op block; open socket.
            unsafe {
                c.write(WSK_EVENT_CALLBACK_CONTROL {
                    NpiId: &NPI_WSK_INTERFACE_ID,
                    EventMask: ev | WSK_EVENT_DISABLE,
                });
                control(
                    raw,
                    WskSetOption,
                    SO_WSK_EVENT_CALLBACK,
                    0xffff,
                    core::mem::size_of::<WSK_EVENT_CALLBACK_CONTROL>(),
                    c as *mut c_void,
                    0,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    irp,
                )
            }
        })
        .map(|_| ())
    }
}

const _: () =
    assert!(core::mem::size_of::<WSK_EVENT_CALLBACK_CONTROL>() <= core::mem::size_of::<WSK_BUF>());
