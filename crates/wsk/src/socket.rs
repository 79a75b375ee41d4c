//! WSK sockets: connection-oriented ([`StreamSocket`]) and datagram ([`DatagramSocket`]).
//!
//! Every operation owns an IRP with a completion routine. Synchronous calls (PASSIVE_LEVEL)
//! wait on a KEVENT the completion routine signals, and reuse one IRP per socket with
//! `IoReuseIrp`, so a steady-state send allocates nothing. Asynchronous calls (IRQL <=
//! DISPATCH_LEVEL) take their buffer by value and return it, with the result, to a callback
//! that runs in the completion routine at IRQL <= DISPATCH_LEVEL.

use core::ffi::c_void;
use core::net::SocketAddr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use core::time::Duration;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_CANCELLED, STATUS_INVALID_HANDLE, STATUS_MORE_PROCESSING_REQUIRED,
    STATUS_NOT_IMPLEMENTED, STATUS_PENDING,
};
use wsk_sys::*;

use crate::addr::{family_of, SockAddrBuf};
use crate::buf::{wsk_buf, MdlBuffer};
use crate::client::WskClient;
use crate::error::{check, Error, Result};
use crate::irp::{set_completion_routine, OwnedIrp, SyncWait};
use crate::pool::{PoolBox, WSK_TAG};

const SOCK_STREAM: u16 = 1;
const SOCK_DGRAM: u16 = 2;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;

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
    cached: AtomicPtr<OpBlock>,
    pub(crate) timeout: Option<Duration>,
    /// Rundown protection: the number of WSK dispatch calls in progress, plus [`CLOSING`]
    /// once close began. Close waits for the calls in progress (they are non-blocking) and
    /// then lets `WskCloseSocket` cancel whatever is still pending; no WSK routine is ever
    /// called on the socket after `WskCloseSocket`.
    active: AtomicUsize,
    /// The event-callback context block (handler + client dispatch table), or NULL. It
    /// holds one reference for this socket, dropped only after `WskCloseSocket` completed.
    events: *mut crate::events::CtxHeader,
}

const CLOSING: usize = 1 << (usize::BITS - 1);

pub(crate) struct Enter<'a>(&'a AtomicUsize);

impl Drop for Enter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

// SAFETY: a WSK socket may be used from any thread; the cache is atomic.
unsafe impl Send for Core {}
// SAFETY: as above.
unsafe impl Sync for Core {}

impl Core {
    pub(crate) fn new(raw: NonNull<WSK_SOCKET>, op: PoolBox<OpBlock>) -> Self {
        Core {
            raw,
            cached: AtomicPtr::new(op.into_raw()),
            timeout: None,
            active: AtomicUsize::new(0),
            events: core::ptr::null_mut(),
        }
    }

    /// A socket whose event context block is `events` (this socket takes over the block's
    /// reference).
    pub(crate) fn with_events(
        raw: NonNull<WSK_SOCKET>,
        op: PoolBox<OpBlock>,
        events: *mut crate::events::CtxHeader,
    ) -> Self {
        let mut c = Core::new(raw, op);
        c.events = events;
        c
    }

    /// Enters a dispatch call; fails with `STATUS_INVALID_HANDLE` once close began.
    pub(crate) fn enter(&self) -> Result<Enter<'_>> {
        let prev = self.active.fetch_add(1, Ordering::AcqRel);
        let guard = Enter(&self.active);
        if prev & CLOSING != 0 {
            return Err(Error::Closed);
        }
        Ok(guard)
    }

    pub(crate) fn basic(&self) -> &WSK_PROVIDER_BASIC_DISPATCH {
        // SAFETY: every provider table starts with WSK_PROVIDER_BASIC_DISPATCH, and the
        // socket's Dispatch is valid while the socket is open.
        unsafe { &*((*self.raw.as_ptr()).Dispatch as *const WSK_PROVIDER_BASIC_DISPATCH) }
    }

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
            Err(_) => {
                // Not started: complete our own IRP so the waiter sees STATUS_INVALID_HANDLE.
                fail_unstarted(irp);
                STATUS_INVALID_HANDLE
            }
        })
        .map(|n| (n, op.addr, op.addr2));
        self.put_op(op);
        r
    }

    /// Begins close: returns false if it already began. Then waits for dispatch calls in
    /// progress (each is non-blocking, so this is short).
    fn begin_close(&self) -> bool {
        let prev = self.active.fetch_or(CLOSING, Ordering::AcqRel);
        if prev & CLOSING != 0 {
            return false;
        }
        while self.active.load(Ordering::Acquire) & !CLOSING != 0 {
            core::hint::spin_loop();
        }
        true
    }

    fn close(&self) -> Result<()> {
        if !self.begin_close() {
            return Ok(());
        }
        let close = self.basic().WskCloseSocket.ok_or(Error::NotImplemented)?;
        let raw = self.raw.as_ptr();
        if !self.events.is_null() {
            // SAFETY: our reference keeps the block alive.
            unsafe { (*self.events).begin_close() };
        }
        let mut op = self.take_op()?;
        // WskCloseSocket completes (cancelling) every pending IRP of the socket first.
        // SAFETY: open socket, closed once; the IRP is ours until completion.
        let r = run_sync(&mut op, None, |irp, _, _, _| unsafe { close(raw, irp) });
        self.put_op(op);
        r.map(|_| ())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.active.load(Ordering::Acquire) & CLOSING != 0
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
        Ok(Core::new(raw, op))
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
        let mut events = core::mem::replace(&mut self.events, core::ptr::null_mut());
        if !self.is_closed() {
            if nt_imports::current_irql() == nt_imports::PASSIVE_LEVEL {
                self.events = events;
                let _ = self.close();
                self.events = core::ptr::null_mut();
            } else if self.begin_close() {
                if !events.is_null() {
                    // SAFETY: our reference keeps the block alive.
                    unsafe { (*events).begin_close() };
                }
                // The block's reference is dropped when the close completes: until then
                // the provider may still call back into it.
                close_async(self.raw.as_ptr(), self.basic().WskCloseSocket, events);
                events = core::ptr::null_mut();
            }
        }
        if !events.is_null() {
            // SAFETY: the socket is closed (WskCloseSocket completed, or close failed and no
            // more calls will be made); this was our reference.
            unsafe { crate::events::CtxHeader::release(events) };
        }
        let p = self.cached.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: the cached block, not in use (we are dropping the socket).
            drop(unsafe { PoolBox::from_raw(p, WSK_TAG) });
        }
    }
}

/// Completes an IRP that was armed but never handed to WSK (the socket was closing): the
/// I/O manager's own path, `IoSetNextIrpStackLocation` + `IoCompleteRequest`, so its
/// completion routine runs as usual.
pub(crate) fn fail_unstarted(irp: *mut IRP) {
    // SAFETY: our IRP, armed with a completion routine in its next stack location and not
    // given to anyone; stepping into that location and completing it runs that routine.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = STATUS_INVALID_HANDLE;
        (*irp).IoStatus.Information = 0;
        (*irp).CurrentLocation -= 1;
        let sl = &mut (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation;
        *sl = sl.sub(1);
        windows_sys::Wdk::System::SystemServices::IofCompleteRequest(irp, 0);
    }
}

/// Closes a socket without waiting (used when a socket is dropped above PASSIVE_LEVEL).
/// `events` (may be NULL) is an event context reference released once the close completed.
pub(crate) fn close_async(
    raw: PWSK_SOCKET,
    close: PFN_WSK_CLOSE_SOCKET,
    events: *mut crate::events::CtxHeader,
) {
    unsafe extern "system" fn done(
        _d: *mut DEVICE_OBJECT,
        irp: *mut IRP,
        c: *mut c_void,
    ) -> NTSTATUS {
        // SAFETY: the IRP was leaked to this routine by close_async.
        drop(unsafe { OwnedIrp::from_raw(irp) });
        if !c.is_null() {
            // SAFETY: the reference close_async was given; the socket is closed now.
            unsafe { crate::events::CtxHeader::release(c as *mut crate::events::CtxHeader) };
        }
        STATUS_MORE_PROCESSING_REQUIRED
    }
    let (Some(close), Ok(irp)) = (close, OwnedIrp::allocate()) else {
        // The socket cannot be closed: keep the context block (leaked) rather than free
        // memory the provider may still call into.
        return;
    };
    let irp = irp.into_raw();
    // SAFETY: fresh IRP; the routine frees it.
    unsafe {
        set_completion_routine(irp, done, events as *mut c_void);
        close(raw, irp);
    }
}

/// How an asynchronous operation hands its result back: with or without the address the
/// provider wrote into the operation's block.
pub(crate) trait Deliver<B>: Send + 'static {
    fn deliver(self, result: Result<usize>, addr: &SockAddrBuf, buf: B);
}

/// Delivers `(Result<bytes>, buffer)`.
pub(crate) struct Plain<F>(F);

impl<B, F: FnOnce(Result<usize>, B) + Send + 'static> Deliver<B> for Plain<F> {
    fn deliver(self, result: Result<usize>, _addr: &SockAddrBuf, buf: B) {
        (self.0)(result, buf)
    }
}

/// Delivers `(Result<(bytes, address)>, buffer)`; an unknown family is `STATUS_INVALID_PARAMETER`.
pub(crate) struct WithAddr<F>(F);

impl<B, F: FnOnce(Result<(usize, SocketAddr)>, B) + Send + 'static> Deliver<B> for WithAddr<F> {
    fn deliver(self, result: Result<usize>, addr: &SockAddrBuf, buf: B) {
        let r = result.and_then(|n| addr.get().map(|a| (n, a)).ok_or(Error::InvalidParameter));
        (self.0)(r, buf)
    }
}

/// State of one asynchronous operation; freed in its completion routine.
pub(crate) struct AsyncOp<B, D> {
    irp: Option<OwnedIrp>,
    wsk_buf: WSK_BUF,
    addr: SockAddrBuf,
    buf: Option<B>,
    done: Option<D>,
}

unsafe extern "system" fn async_completion<B, D>(
    _dev: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS
where
    D: Deliver<B>,
{
    // SAFETY: context is the AsyncOp leaked by start_async; this routine runs once.
    let mut op = unsafe { PoolBox::from_raw(context as *mut AsyncOp<B, D>, WSK_TAG) };
    let (status, info) = op
        .irp
        .as_ref()
        .map_or((STATUS_CANCELLED, 0), |i| i.io_status());
    let result = check(status).map(|_| info);
    let buf = op.buf.take();
    let done = op.done.take();
    let addr = op.addr;
    drop(op); // frees the IRP (IoFreeIrp inside a completion routine, as in seed 000)
    if let (Some(buf), Some(done)) = (buf, done) {
        done.deliver(result, &addr, buf);
    }
    STATUS_MORE_PROCESSING_REQUIRED
}

/// Starts an asynchronous operation on `buf` (`len` bytes from `offset`): allocates the IRP
/// and the state block, sets the completion routine, and calls `start`. On a failure before
/// the dispatch call, `done` is not called and the buffer is returned in the error.
pub(crate) fn start_async<B, F>(
    core: &Core,
    buf: B,
    offset: usize,
    len: usize,
    addr: Option<SocketAddr>,
    done: F,
    start: impl FnOnce(*mut IRP, *mut WSK_BUF, *mut SockAddrBuf) -> NTSTATUS,
) -> core::result::Result<(), (Error, B)>
where
    B: MdlBuffer + Send + 'static,
    F: FnOnce(Result<usize>, B) + Send + 'static,
{
    start_async_with(core, buf, offset, len, addr, Plain(done), start)
}

pub(crate) fn start_async_with<B, D>(
    core: &Core,
    buf: B,
    offset: usize,
    len: usize,
    addr: Option<SocketAddr>,
    done: D,
    start: impl FnOnce(*mut IRP, *mut WSK_BUF, *mut SockAddrBuf) -> NTSTATUS,
) -> core::result::Result<(), (Error, B)>
where
    B: MdlBuffer + Send + 'static,
    D: Deliver<B>,
{
    let wb = match wsk_buf(&buf, offset, len) {
        Ok(w) => w,
        Err(e) => return Err((e, buf)),
    };
    let guard = match core.enter() {
        Ok(g) => g,
        Err(e) => return Err((e, buf)),
    };
    let irp = match OwnedIrp::allocate() {
        Ok(i) => i,
        Err(e) => return Err((e, buf)),
    };
    let irp_ptr = irp.as_ptr();
    let op = AsyncOp::<B, D> {
        irp: Some(irp),
        wsk_buf: wb,
        addr: addr.map_or(SockAddrBuf::zeroed(), SockAddrBuf::new),
        buf: None,
        done: None,
    };
    let mut op = match PoolBox::try_new(op, WSK_TAG) {
        Ok(o) => o,
        Err(e) => return Err((e, buf)),
    };
    op.buf = Some(buf);
    op.done = Some(done);
    let p = op.into_raw();
    // SAFETY: p is the live block; the completion routine frees it exactly once.
    unsafe {
        set_completion_routine(irp_ptr, async_completion::<B, D>, p as *mut c_void);
        let _ = start(irp_ptr, &mut (*p).wsk_buf, &mut (*p).addr);
    }
    drop(guard);
    Ok(())
}

/// A connection-oriented (TCP) WSK socket.
pub struct StreamSocket {
    pub(crate) core: Core,
    pub(crate) fallback: bool,
}

impl StreamSocket {
    pub(crate) fn dispatch(&self) -> &WSK_PROVIDER_CONNECTION_DISPATCH {
        // SAFETY: created as a connection socket, so Dispatch is the connection table.
        unsafe { &*((*self.core.raw.as_ptr()).Dispatch as *const WSK_PROVIDER_CONNECTION_DISPATCH) }
    }

    /// Creates, binds (to the wildcard address of `remote`'s family) and connects a TCP
    /// socket with `WskSocketConnect`. If the provider returns `STATUS_NOT_IMPLEMENTED`
    /// (Wine 8.0's netio.sys does), falls back to `WskSocket` + `WskBind` + `WskConnect`;
    /// [`StreamSocket::used_fallback`] tells which path ran.
    ///
    /// PASSIVE_LEVEL (it waits). `timeout` bounds the connect; on expiry the IRP is cancelled
    /// and `STATUS_IO_TIMEOUT` returned. Errors: `STATUS_CONNECTION_REFUSED`,
    /// `STATUS_NETWORK_UNREACHABLE`, `STATUS_HOST_UNREACHABLE`, `STATUS_IO_TIMEOUT`,
    /// `STATUS_INSUFFICIENT_RESOURCES`, or any status of the provider.
    /// Source (seed 002): <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>
    pub fn connect(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<StreamSocket> {
        require_passive()?;
        let (r, op) = Self::socket_connect_raw(
            client,
            remote,
            timeout,
            core::ptr::null_mut(),
            core::ptr::null(),
        )?;
        match r {
            Ok(info) => {
                let raw = NonNull::new(info as *mut WSK_SOCKET).ok_or(Error::InvalidParameter)?;
                Ok(StreamSocket {
                    core: Core::new(raw, op),
                    fallback: false,
                })
            }
            Err(e) if e.status() == STATUS_NOT_IMPLEMENTED => {
                Self::connect_fallback(client, remote, timeout, op)
            }
            Err(e) => Err(e),
        }
    }

    /// `WskSocketConnect` to `remote` from the wildcard address of its family, with the
    /// client's socket context and dispatch table (NULL for none), on a fresh operation
    /// block, which is returned with the outcome (the new socket on success) so a fallback
    /// can reuse it. PASSIVE_LEVEL. Errors before the call: `STATUS_NOT_IMPLEMENTED` (no
    /// `WskSocketConnect`), `STATUS_INSUFFICIENT_RESOURCES`.
    fn socket_connect_raw(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
        ctx: *mut c_void,
        table: *const WSK_CLIENT_CONNECTION_DISPATCH,
    ) -> Result<(Result<usize>, PoolBox<OpBlock>)> {
        let socket_connect = client
            .dispatch()
            .WskSocketConnect
            .ok_or(Error::NotImplemented)?;
        let mut op = new_op()?;
        let mut local = SockAddrBuf::unspecified_like(&remote);
        let mut remote_buf = SockAddrBuf::new(remote);
        let raw_client = client.raw_client();
        let r = run_sync(&mut op, timeout, |irp, _, _, _| {
            // SAFETY: the addresses live on this frame until the synchronous call returns;
            // the caller keeps `ctx` and `table` valid for the socket's lifetime.
            unsafe {
                socket_connect(
                    raw_client,
                    SOCK_STREAM,
                    IPPROTO_TCP,
                    local.as_mut_ptr(),
                    remote_buf.as_mut_ptr(),
                    0,
                    ctx,
                    table,
                    0,
                    0,
                    core::ptr::null_mut(),
                    irp,
                )
            }
        });
        Ok((r, op))
    }

    fn connect_fallback(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
        mut op: PoolBox<OpBlock>,
    ) -> Result<StreamSocket> {
        let raw = create_socket(
            client,
            &mut op,
            family_of(&remote),
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_CONNECTION_SOCKET,
        )?;
        let mut s = StreamSocket {
            core: Core::new(raw, op),
            fallback: true,
        };
        s.core.timeout = timeout;
        let d = *s.dispatch();
        let local = SockAddrBuf::unspecified_like(&remote);
        s.bind_with(d.WskBind, local)?;
        let connect = d.WskConnect.ok_or(Error::NotImplemented)?;
        let raw = s.core.raw.as_ptr();
        s.core.sync(timeout, |irp, _, addr| {
            *addr = SockAddrBuf::new(remote);
            // SAFETY: open socket; addr lives in the op block until completion.
            unsafe { connect(raw, addr.as_mut_ptr(), 0, irp) }
        })?;
        s.core.timeout = None;
        Ok(s)
    }

    /// Creates an unbound, unconnected TCP socket with `WskSocket`
    /// (`WSK_FLAG_CONNECTION_SOCKET`), of the address family of `family` (its address and
    /// port are ignored): the first step of the `WskSocket` + options + `WskBind` +
    /// `WskConnect` path, for options that must be set before binding or connecting. Then
    /// call [`StreamSocket::bind`] and [`StreamSocket::connect_to`].
    ///
    /// PASSIVE_LEVEL (it waits). Errors: `STATUS_INVALID_DEVICE_STATE` (above
    /// PASSIVE_LEVEL), `STATUS_INSUFFICIENT_RESOURCES`, or any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>
    pub fn create(client: &WskClient, family: &SocketAddr) -> Result<StreamSocket> {
        require_passive()?;
        let mut op = new_op()?;
        let raw = create_socket(
            client,
            &mut op,
            family_of(family),
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_CONNECTION_SOCKET,
        )?;
        Ok(StreamSocket {
            core: Core::new(raw, op),
            fallback: false,
        })
    }

    /// Binds a socket from [`StreamSocket::create`] to `local` with `WskBind` (a wildcard
    /// address and port 0 let the stack choose at connect time). The family must be the
    /// socket's.
    ///
    /// PASSIVE_LEVEL (it waits). Errors: `STATUS_INVALID_DEVICE_STATE` (already bound, or
    /// above PASSIVE_LEVEL), `STATUS_ADDRESS_ALREADY_EXISTS`, `STATUS_INVALID_PARAMETER`
    /// (family mismatch), or any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
    pub fn bind(&self, local: SocketAddr) -> Result<()> {
        require_passive()?;
        let d = *self.dispatch();
        self.bind_with(d.WskBind, SockAddrBuf::new(local))
    }

    /// Connects a bound socket from [`StreamSocket::create`] to `remote` with `WskConnect`.
    /// The socket must have been bound with [`StreamSocket::bind`] first ("only on a
    /// connection-oriented or stream socket that the application previously bound to a
    /// local transport address by calling the WskBind function").
    ///
    /// PASSIVE_LEVEL (it waits). `timeout` bounds the connect; on expiry the IRP is
    /// cancelled and `STATUS_IO_TIMEOUT` returned. Errors: `STATUS_INVALID_DEVICE_STATE`
    /// (not bound or already connected, as the emulation reports it; the page does not name
    /// the status; also above PASSIVE_LEVEL), `STATUS_CONNECTION_REFUSED`,
    /// `STATUS_IO_TIMEOUT`, or any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect>
    pub fn connect_to(&self, remote: SocketAddr, timeout: Option<Duration>) -> Result<()> {
        require_passive()?;
        let connect = self.dispatch().WskConnect.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core
            .sync(timeout, |irp, _, addr| {
                *addr = SockAddrBuf::new(remote);
                // SAFETY: open socket; addr lives in the op block until completion.
                unsafe { connect(raw, addr.as_mut_ptr(), 0, irp) }
            })
            .map(|_| ())
    }

    fn bind_with(&self, bind: PFN_WSK_BIND, local: SockAddrBuf) -> Result<()> {
        self.core.bind(bind, local)
    }

    /// The provider's socket object, for calling WSK routines this crate does not wrap.
    /// The pointer is valid until the socket is closed; calls made through it bypass this
    /// type's rundown protection.
    pub fn as_raw(&self) -> PWSK_SOCKET {
        self.core.raw.as_ptr()
    }

    /// True if the socket was connected with `WskSocket` + `WskBind` + `WskConnect` because
    /// the provider lacks `WskSocketConnect`.
    pub fn used_fallback(&self) -> bool {
        self.fallback
    }

    /// Sets the default timeout of this socket's synchronous sends (`None`: no timeout).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.timeout = timeout;
    }

    /// Sends `len` bytes of `buf` from `offset` with `WskSend` and waits for completion;
    /// returns the bytes sent (WSK completes a send when all bytes are sent).
    ///
    /// PASSIVE_LEVEL. The buffer is borrowed for the whole call, which returns only after the
    /// IRP completed. Steady state: no pool or IRP allocation (the socket's IRP is reused).
    /// Errors: `STATUS_CONNECTION_RESET`, `STATUS_CONNECTION_ABORTED`, `STATUS_IO_TIMEOUT`
    /// (timeout set: the IRP is cancelled), `STATUS_INVALID_PARAMETER` (range outside `buf`),
    /// `STATUS_INVALID_DEVICE_STATE` (above PASSIVE_LEVEL).
    /// Source (seed 000): <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
    pub fn send<B: MdlBuffer + ?Sized>(&self, buf: &B, offset: usize, len: usize) -> Result<usize> {
        let wb = wsk_buf(buf, offset, len)?;
        let send = self.dispatch().WskSend.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core.sync(self.core.timeout, |irp, b, _| {
            *b = wb;
            // SAFETY: open socket; the WSK_BUF lives in the op block and `buf` is borrowed
            // until completion.
            unsafe { send(raw, b, 0, irp) }
        })
    }

    /// Sends `len` bytes of `buf` from `offset` without waiting. `done(result, buf)` runs in
    /// the completion routine (IRQL <= DISPATCH_LEVEL, possibly before this call returns) and
    /// gets the buffer back. Callable at IRQL <= DISPATCH_LEVEL.
    ///
    /// Errors before the send starts come back with the buffer (`STATUS_INVALID_PARAMETER`,
    /// `STATUS_INSUFFICIENT_RESOURCES`); errors of the send itself reach `done`.
    /// Allocates one IRP and one small nonpaged block per call.
    pub fn send_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<usize>, B) + Send + 'static,
    {
        let Some(send) = self.dispatch().WskSend else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        // SAFETY: open socket; the WSK_BUF lives in the async block until completion.
        start_async(
            &self.core,
            buf,
            offset,
            len,
            None,
            done,
            |irp, b, _| unsafe { send(raw, b, 0, irp) },
        )
    }

    /// Receives into `len` bytes of `buf` from `offset` with `WskReceive` and waits; returns
    /// the bytes received. With `wait_all` (`WSK_FLAG_WAITALL`) the call completes only when
    /// the range is full, the peer disconnected gracefully, the connection was aborted, or the
    /// IRP was cancelled (timeout); otherwise as soon as some bytes arrived.
    ///
    /// **`Ok(0)` for a non-empty range means the peer disconnected gracefully** (its FIN was
    /// received), as `recv` returning 0 does in Winsock
    /// (<https://learn.microsoft.com/en-us/windows/win32/api/winsock/nf-winsock-recv>: "If the
    /// connection has been gracefully closed, the return value is zero"); with `wait_all`, a
    /// count below `len` means the same.
    ///
    /// PASSIVE_LEVEL; steady state allocates nothing (the socket's IRP is reused). `buf` is
    /// borrowed mutably for the whole call, which returns only after the IRP completed.
    /// Errors: `STATUS_CONNECTION_RESET` (peer's RST), `STATUS_CONNECTION_ABORTED` (after
    /// [`StreamSocket::abort`]), `STATUS_INVALID_CONNECTION` (not connected),
    /// `STATUS_IO_TIMEOUT` (the socket's timeout expired: the IRP was cancelled and no byte
    /// is lost, since a cancelled receive completes with none), `STATUS_INVALID_PARAMETER`
    /// (range outside `buf`), `STATUS_INVALID_DEVICE_STATE` (above PASSIVE_LEVEL).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    pub fn receive<B: MdlBuffer + ?Sized>(
        &self,
        buf: &mut B,
        offset: usize,
        len: usize,
        wait_all: bool,
    ) -> Result<usize> {
        let wb = wsk_buf(&*buf, offset, len)?;
        let receive = self.dispatch().WskReceive.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        let flags = if wait_all { WSK_FLAG_WAITALL } else { 0 };
        self.core.sync(self.core.timeout, |irp, b, _| {
            *b = wb;
            // SAFETY: open socket; the WSK_BUF lives in the op block and `buf` is borrowed
            // mutably until completion.
            unsafe { receive(raw, b, flags, irp) }
        })
    }

    /// Receives without waiting; `done(result, buf)` runs in the completion routine (IRQL <=
    /// DISPATCH_LEVEL, possibly before this call returns) with the bytes received (`Ok(0)`:
    /// graceful disconnect by the peer) and the buffer. IRQL <= DISPATCH_LEVEL. Errors before
    /// the receive starts come back with the buffer; see [`StreamSocket::receive`] for the
    /// rest. A pending receive completes with `STATUS_CANCELLED` when the socket is closed.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    pub fn receive_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        wait_all: bool,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<usize>, B) + Send + 'static,
    {
        let Some(receive) = self.dispatch().WskReceive else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        let flags = if wait_all { WSK_FLAG_WAITALL } else { 0 };
        // SAFETY: open socket; the WSK_BUF lives in the async block, which owns the buffer,
        // until completion.
        start_async(
            &self.core,
            buf,
            offset,
            len,
            None,
            done,
            |irp, b, _| unsafe { receive(raw, b, flags, irp) },
        )
    }

    /// Graceful disconnect (`WskDisconnect`, no flags): queued sends go out, then the peer
    /// reads end-of-stream (FIN). Receiving stays possible until the peer disconnects too.
    /// PASSIVE_LEVEL. Errors: `STATUS_INVALID_CONNECTION` (not connected),
    /// `STATUS_INVALID_DEVICE_STATE` (already disconnected), `STATUS_IO_TIMEOUT`, any status
    /// of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
    pub fn disconnect(&self) -> Result<()> {
        self.disconnect_raw(None, 0).map(|_| ())
    }

    /// Graceful disconnect that first sends `len` bytes of `buf` from `offset` (the optional
    /// final data of `WskDisconnect`); returns the bytes of final data sent. PASSIVE_LEVEL.
    /// Errors: as [`StreamSocket::disconnect`], and `STATUS_INVALID_PARAMETER` for a range
    /// outside `buf`.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
    pub fn disconnect_with<B: MdlBuffer + ?Sized>(
        &self,
        buf: &B,
        offset: usize,
        len: usize,
    ) -> Result<usize> {
        let wb = wsk_buf(buf, offset, len)?;
        self.disconnect_raw(Some(wb), 0)
    }

    /// Abortive disconnect (`WskDisconnect` with `WSK_FLAG_ABORTIVE`): the peer sees a reset
    /// (RST); pending operations on this socket complete with `STATUS_CONNECTION_ABORTED`.
    /// The socket is then only good for closing. PASSIVE_LEVEL. Errors:
    /// `STATUS_INVALID_CONNECTION` (not connected), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
    pub fn abort(&self) -> Result<()> {
        self.disconnect_raw(None, WSK_FLAG_ABORTIVE).map(|_| ())
    }

    fn disconnect_raw(&self, wb: Option<WSK_BUF>, flags: u32) -> Result<usize> {
        let disconnect = self.dispatch().WskDisconnect.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core.sync(self.core.timeout, |irp, b, _| {
            let p = match wb {
                Some(w) => {
                    *b = w;
                    b as *mut WSK_BUF
                }
                None => core::ptr::null_mut(),
            };
            // SAFETY: open socket; the optional WSK_BUF lives in the op block and its buffer
            // is borrowed until completion.
            unsafe { disconnect(raw, p, flags, irp) }
        })
    }

    /// The local address (`WskGetLocalAddress`). PASSIVE_LEVEL.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetLocalAddress)
    }

    /// The remote address (`WskGetRemoteAddress`). PASSIVE_LEVEL.
    pub fn remote_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetRemoteAddress)
    }

    /// Closes the socket with `WskCloseSocket`, which first completes every pending
    /// operation with `STATUS_CANCELLED`. PASSIVE_LEVEL. (Dropping also closes.)
    pub fn close(&self) -> Result<()> {
        self.core.close()
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

/// A datagram (UDP) WSK socket.
pub struct DatagramSocket {
    pub(crate) core: Core,
}

impl DatagramSocket {
    pub(crate) fn dispatch(&self) -> &WSK_PROVIDER_DATAGRAM_DISPATCH {
        // SAFETY: created as a datagram socket, so Dispatch is the datagram table.
        unsafe { &*((*self.core.raw.as_ptr()).Dispatch as *const WSK_PROVIDER_DATAGRAM_DISPATCH) }
    }

    /// Creates a datagram socket (`WskSocket(WSK_FLAG_DATAGRAM_SOCKET)`) and binds it to
    /// `local` (`WskBind`; port 0 picks an ephemeral port). PASSIVE_LEVEL.
    /// Errors: `STATUS_ADDRESS_ALREADY_EXISTS`, `STATUS_INVALID_ADDRESS_COMPONENT`,
    /// `STATUS_INSUFFICIENT_RESOURCES`, `STATUS_NOT_IMPLEMENTED` (provider without datagram
    /// sockets), or any status of the provider.
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
    pub fn bind(client: &WskClient, local: SocketAddr) -> Result<DatagramSocket> {
        let core = Core::create(
            client,
            &local,
            SOCK_DGRAM,
            IPPROTO_UDP,
            WSK_FLAG_DATAGRAM_SOCKET,
        )?;
        let s = DatagramSocket { core };
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// Sets a fixed remote address (`SIO_WSK_SET_REMOTE_ADDRESS` through `WskControlSocket`):
    /// afterwards [`DatagramSocket::send_to`] accepts `None` as the destination, and only
    /// datagrams from that address are received. PASSIVE_LEVEL.
    /// Source (seed 001): <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sio-wsk-set-remote-address>
    pub fn set_remote(&self, remote: SocketAddr) -> Result<()> {
        self.control_address(SIO_WSK_SET_REMOTE_ADDRESS, remote)
    }

    /// Sets a fixed destination (`SIO_WSK_SET_SENDTO_ADDRESS`), with no receive filter.
    /// PASSIVE_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sio-wsk-set-sendto-address>
    pub fn set_sendto_address(&self, remote: SocketAddr) -> Result<()> {
        self.control_address(SIO_WSK_SET_SENDTO_ADDRESS, remote)
    }

    fn control_address(&self, code: u32, remote: SocketAddr) -> Result<()> {
        let control = self
            .core
            .basic()
            .WskControlSocket
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core
            .sync(self.core.timeout, |irp, _, addr| {
                *addr = SockAddrBuf::new(remote);
                let len = addr.len();
                // SAFETY: open socket; the input address lives in the op block until
                // completion.
                unsafe {
                    control(
                        raw,
                        WskIoctl,
                        code,
                        0,
                        len,
                        addr.as_mut_ptr() as *mut c_void,
                        0,
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        irp,
                    )
                }
            })
            .map(|_| ())
    }

    /// Sends one datagram of `len` bytes of `buf` from `offset` with `WskSendTo`, to `to`, or
    /// with `None` to the fixed remote / send-to address. Returns the bytes sent.
    ///
    /// PASSIVE_LEVEL; steady state allocates nothing. Errors: `STATUS_INVALID_BUFFER_SIZE`
    /// (datagram too large for the transport), `STATUS_INVALID_PARAMETER` (no destination),
    /// `STATUS_IO_TIMEOUT`, or any status of the provider.
    /// Source (seed 001): <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>
    pub fn send_to<B: MdlBuffer + ?Sized>(
        &self,
        buf: &B,
        offset: usize,
        len: usize,
        to: Option<SocketAddr>,
    ) -> Result<usize> {
        let wb = wsk_buf(buf, offset, len)?;
        let send_to = self.dispatch().WskSendTo.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core.sync(self.core.timeout, |irp, b, addr| {
            *b = wb;
            let remote = match to {
                Some(a) => {
                    *addr = SockAddrBuf::new(a);
                    addr.as_mut_ptr()
                }
                None => core::ptr::null_mut(),
            };
            // SAFETY: open socket; WSK_BUF and address live in the op block, `buf` is
            // borrowed until completion.
            unsafe { send_to(raw, b, 0, remote, 0, core::ptr::null_mut(), irp) }
        })
    }

    /// Sends one datagram without waiting; see [`StreamSocket::send_async`] for the contract
    /// of `done`. IRQL <= DISPATCH_LEVEL.
    pub fn send_to_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        to: Option<SocketAddr>,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<usize>, B) + Send + 'static,
    {
        let Some(send_to) = self.dispatch().WskSendTo else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        let has_to = to.is_some();
        start_async(&self.core, buf, offset, len, to, done, |irp, b, addr| {
            let remote = if has_to {
                // SAFETY: addr points into the live async block.
                unsafe { (*addr).as_mut_ptr() }
            } else {
                core::ptr::null_mut()
            };
            // SAFETY: open socket; WSK_BUF and address live in the async block.
            unsafe { send_to(raw, b, 0, remote, 0, core::ptr::null_mut(), irp) }
        })
    }

    /// Receives one datagram into `len` bytes of `buf` from `offset` with `WskReceiveFrom`
    /// and waits; returns its length and the sender's address.
    ///
    /// PASSIVE_LEVEL; steady state allocates nothing. Errors: `STATUS_IO_TIMEOUT` (the
    /// socket's timeout expired; the IRP was cancelled), `STATUS_BUFFER_OVERFLOW` (the
    /// datagram was larger than `len`: the emulator's choice, see
    /// `docs/ntstatus-mapping.md`), `STATUS_INVALID_DEVICE_STATE` (not bound, or above
    /// PASSIVE_LEVEL), `STATUS_INVALID_PARAMETER` (range outside `buf`, or an address of an
    /// unknown family), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
    pub fn receive_from<B: MdlBuffer + ?Sized>(
        &self,
        buf: &mut B,
        offset: usize,
        len: usize,
    ) -> Result<(usize, SocketAddr)> {
        let wb = wsk_buf(&*buf, offset, len)?;
        let receive_from = self
            .dispatch()
            .WskReceiveFrom
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        let (n, from) = self.core.sync_addr(self.core.timeout, |irp, b, addr| {
            *b = wb;
            *addr = SockAddrBuf::zeroed();
            // SAFETY: open socket; WSK_BUF and the address buffer (28 bytes, enough for
            // either family) live in the op block, `buf` is borrowed until completion.
            unsafe {
                receive_from(
                    raw,
                    b,
                    0,
                    addr.as_mut_ptr(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    irp,
                )
            }
        })?;
        Ok((n, from.get().ok_or(Error::InvalidParameter)?))
    }

    /// Receives one datagram without waiting; `done(result, buf)` runs in the completion
    /// routine (IRQL <= DISPATCH_LEVEL) with `(length, sender)` and the buffer. IRQL <=
    /// DISPATCH_LEVEL. A pending receive completes with `STATUS_CANCELLED` when the socket
    /// closes. Errors as [`DatagramSocket::receive_from`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
    pub fn receive_from_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<(usize, SocketAddr)>, B) + Send + 'static,
    {
        let Some(receive_from) = self.dispatch().WskReceiveFrom else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        start_async_with(
            &self.core,
            buf,
            offset,
            len,
            None,
            WithAddr(done),
            |irp, b, addr| {
                // SAFETY: open socket; WSK_BUF and address live in the async block until
                // completion.
                unsafe {
                    receive_from(
                        raw,
                        b,
                        0,
                        (*addr).as_mut_ptr(),
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        irp,
                    )
                }
            },
        )
    }

    /// Sets the default timeout of this socket's synchronous calls.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.timeout = timeout;
    }

    /// The bound local address (`WskGetLocalAddress`). PASSIVE_LEVEL.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetLocalAddress)
    }

    /// Closes the socket (`WskCloseSocket`). PASSIVE_LEVEL. (Dropping also closes.)
    pub fn close(&self) -> Result<()> {
        self.core.close()
    }
}

/// A listening (TCP) WSK socket: `WskSocket(WSK_FLAG_LISTEN_SOCKET)` + `WskBind`, after
/// which it listens ("After a WSK application binds a listening socket to a local transport
/// address, the socket begins listening for incoming connections":
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections>).
pub struct ListenSocket {
    pub(crate) core: Core,
}

/// A connection accepted by [`ListenSocket::accept`], with its addresses (the kernel
/// counterpart of `GetAcceptExSockaddrs`).
pub struct Accepted {
    /// The connected socket.
    pub socket: StreamSocket,
    /// Its local address (the listener's address, with a concrete IP if it listened on the
    /// wildcard).
    pub local: SocketAddr,
    /// The remote peer's address.
    pub remote: SocketAddr,
}

impl ListenSocket {
    pub(crate) fn dispatch(&self) -> &WSK_PROVIDER_LISTEN_DISPATCH {
        // SAFETY: created as a listening socket, so Dispatch is the listen table.
        unsafe { &*((*self.core.raw.as_ptr()).Dispatch as *const WSK_PROVIDER_LISTEN_DISPATCH) }
    }

    /// Creates a listening socket of `local`'s family and binds it to `local` (port 0 picks
    /// an ephemeral port); it listens from then on. PASSIVE_LEVEL.
    /// Errors: `STATUS_ADDRESS_ALREADY_EXISTS` (address in use),
    /// `STATUS_INVALID_ADDRESS_COMPONENT`, `STATUS_INSUFFICIENT_RESOURCES`, any status of the
    /// provider.
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
    pub fn bind(client: &WskClient, local: SocketAddr) -> Result<ListenSocket> {
        let core = Core::create(
            client,
            &local,
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_LISTEN_SOCKET,
        )?;
        let s = ListenSocket { core };
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// Accepts one incoming connection (`WskAccept`), waiting for it (bounded by the
    /// socket's timeout, see [`ListenSocket::set_timeout`]). The accepted socket has no event
    /// callbacks. PASSIVE_LEVEL.
    ///
    /// Errors: `STATUS_CANCELLED` when the listening socket is closed while the accept is
    /// pending (WskCloseSocket cancels pending operations), `STATUS_IO_TIMEOUT`,
    /// `STATUS_INSUFFICIENT_RESOURCES`, any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
    pub fn accept(&self) -> Result<Accepted> {
        let accept = self.dispatch().WskAccept.ok_or(Error::NotImplemented)?;
        // The accepted socket's op block is allocated first, so that an accepted socket never
        // has to be dropped for want of memory.
        let op = new_op()?;
        let raw = self.core.raw.as_ptr();
        let (info, local, remote) = self.core.sync_addr2(self.core.timeout, |irp, _, l, r| {
            *l = SockAddrBuf::zeroed();
            *r = SockAddrBuf::zeroed();
            // SAFETY: open socket; both address buffers live in the op block until
            // completion.
            unsafe {
                accept(
                    raw,
                    0,
                    core::ptr::null_mut(),
                    core::ptr::null(),
                    l.as_mut_ptr(),
                    r.as_mut_ptr(),
                    irp,
                )
            }
        })?;
        let raw = NonNull::new(info as *mut WSK_SOCKET).ok_or(Error::InvalidParameter)?;
        let socket = StreamSocket {
            core: Core::new(raw, op),
            fallback: false,
        };
        let local = local.get().ok_or(Error::InvalidParameter)?;
        let remote = remote.get().ok_or(Error::InvalidParameter)?;
        Ok(Accepted {
            socket,
            local,
            remote,
        })
    }

    /// Accepts one incoming connection without waiting: `done(result)` runs in the
    /// completion routine (IRQL <= DISPATCH_LEVEL, possibly before this call returns) with the
    /// [`Accepted`] connection. A socket dropped in `done` is closed without waiting. When
    /// this call returns `Ok`, the accept is queued at the provider: closing the listening
    /// socket then completes it with `STATUS_CANCELLED` (WskCloseSocket "cancels and
    /// completes all pending IRPs from prior calls to the socket's functions":
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>).
    /// IRQL <= DISPATCH_LEVEL. Errors before the start: `STATUS_INSUFFICIENT_RESOURCES`,
    /// `STATUS_INVALID_HANDLE` (closing); later ones reach `done`.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
    pub fn accept_async<F>(&self, done: F) -> Result<()>
    where
        F: FnOnce(Result<Accepted>) + Send + 'static,
    {
        let accept = self.dispatch().WskAccept.ok_or(Error::NotImplemented)?;
        let guard = self.core.enter()?;
        let op = new_op()?;
        let irp = OwnedIrp::allocate()?;
        let irp_ptr = irp.as_ptr();
        let block = PoolBox::try_new(
            AcceptBlock {
                irp: Some(irp),
                local: SockAddrBuf::zeroed(),
                remote: SockAddrBuf::zeroed(),
                op: Some(op),
                done: Some(done),
            },
            WSK_TAG,
        )?;
        let p = block.into_raw();
        let raw = self.core.raw.as_ptr();
        // SAFETY: p is the live block; the completion routine frees it exactly once; the
        // address buffers live in it until completion.
        unsafe {
            set_completion_routine(irp_ptr, accept_completion::<F>, p as *mut c_void);
            let _ = accept(
                raw,
                0,
                core::ptr::null_mut(),
                core::ptr::null(),
                (*p).local.as_mut_ptr(),
                (*p).remote.as_mut_ptr(),
                irp_ptr,
            );
        }
        drop(guard);
        Ok(())
    }

    /// Sets the timeout of [`ListenSocket::accept`] (`None`: wait indefinitely).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.timeout = timeout;
    }

    /// The bound local address (`WskGetLocalAddress`). PASSIVE_LEVEL.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetLocalAddress)
    }

    /// Closes the socket (`WskCloseSocket`); a pending accept completes with
    /// `STATUS_CANCELLED`. PASSIVE_LEVEL. (Dropping also closes.)
    pub fn close(&self) -> Result<()> {
        self.core.close()
    }
}

/// State of one asynchronous accept; freed in its completion routine.
struct AcceptBlock<F> {
    irp: Option<OwnedIrp>,
    local: SockAddrBuf,
    remote: SockAddrBuf,
    /// The accepted socket's op block, allocated before the accept starts.
    op: Option<PoolBox<OpBlock>>,
    done: Option<F>,
}

unsafe extern "system" fn accept_completion<F>(
    _dev: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS
where
    F: FnOnce(Result<Accepted>) + Send + 'static,
{
    // SAFETY: context is the AcceptBlock leaked by accept_async; this routine runs once.
    let mut b = unsafe { PoolBox::from_raw(context as *mut AcceptBlock<F>, WSK_TAG) };
    let (status, info) = b
        .irp
        .as_ref()
        .map_or((STATUS_CANCELLED, 0), |i| i.io_status());
    let (op, done, local, remote) = (b.op.take(), b.done.take(), b.local, b.remote);
    drop(b);
    let result = check(status).and_then(|_| {
        let raw = NonNull::new(info as *mut WSK_SOCKET).ok_or(Error::InvalidParameter)?;
        let op = op.ok_or(Error::InsufficientResources)?;
        let socket = StreamSocket {
            core: Core::new(raw, op),
            fallback: false,
        };
        // On a decoding failure `socket` drops here, which closes it.
        let local = local.get().ok_or(Error::InvalidParameter)?;
        let remote = remote.get().ok_or(Error::InvalidParameter)?;
        Ok(Accepted {
            socket,
            local,
            remote,
        })
    });
    if let Some(done) = done {
        done(result);
    }
    STATUS_MORE_PROCESSING_REQUIRED
}

// ---------------------------------------------------------------------------------------
// Sockets with event callbacks (see crate::events)
// ---------------------------------------------------------------------------------------

use crate::events::{
    connection_ctx, control_events, datagram_ctx, listen_ctx, set_socket, table_of,
    ConnectionEvents, CtxHeader, DatagramEvents, Event, EventSet, InspectId, ListenEvents,
};

/// Creates a socket of `local`'s family with an event context block (whose reference the
/// returned Core owns; on failure the block is released).
fn create_with_events(
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
            Ok(Core::with_events(raw, op, hdr.as_ptr()))
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
    fn disable_event(&self, ev: u32) -> Result<()> {
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

impl StreamSocket {
    /// Like [`StreamSocket::connect`] (`WskSocketConnect`, with the `WskSocket` + `WskBind` +
    /// `WskConnect` fallback), giving the socket `handler` for its event callbacks. No event
    /// is enabled yet (except static ones); call [`StreamSocket::enable_events`]. The handler
    /// lives until the socket is closed and every retained indication dropped.
    ///
    /// PASSIVE_LEVEL. Errors: as [`StreamSocket::connect`].
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/enabling-and-disabling-event-callback-functions>
    pub fn connect_with_events<H: ConnectionEvents>(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
        handler: H,
    ) -> Result<StreamSocket> {
        require_passive()?;
        let hdr = connection_ctx(handler)?;
        let ctx = hdr.as_ptr() as *mut c_void;
        let table =
            table_of(hdr, WSK_FLAG_CONNECTION_SOCKET) as *const WSK_CLIENT_CONNECTION_DISPATCH;
        // The context block outlives the socket (released after close).
        let r = Self::socket_connect_raw(client, remote, timeout, ctx, table)
            .and_then(|(r, op)| r.map(|info| (info, op)));
        match r {
            Ok((info, op)) => match NonNull::new(info as *mut WSK_SOCKET) {
                Some(raw) => {
                    set_socket(hdr, raw);
                    Ok(StreamSocket {
                        core: Core::with_events(raw, op, hdr.as_ptr()),
                        fallback: false,
                    })
                }
                None => {
                    // SAFETY: no socket: ours is the only reference.
                    unsafe { CtxHeader::release(hdr.as_ptr()) };
                    Err(Error::InvalidParameter)
                }
            },
            Err(e) if e.status() == STATUS_NOT_IMPLEMENTED => {
                let any = SockAddrBuf::unspecified_like(&remote);
                let core = create_with_events(
                    client,
                    &remote,
                    SOCK_STREAM,
                    IPPROTO_TCP,
                    WSK_FLAG_CONNECTION_SOCKET,
                    hdr,
                )?;
                let s = StreamSocket {
                    core,
                    fallback: true,
                };
                let d = *s.dispatch();
                s.core.bind(d.WskBind, any)?;
                s.connect_to(remote, timeout)?;
                Ok(s)
            }
            Err(e) => {
                // SAFETY: no socket: ours is the only reference.
                unsafe { CtxHeader::release(hdr.as_ptr()) };
                Err(e)
            }
        }
    }

    /// Enables connection event callbacks (`SO_WSK_EVENT_CALLBACK`, several at once; no IRP).
    /// The socket must be connected and have a handler.
    ///
    /// IRQL <= DISPATCH_LEVEL. Errors: `STATUS_INVALID_PARAMETER` (an event not valid for a
    /// connection socket), `STATUS_INVALID_DEVICE_STATE` (not connected: the emulation's
    /// status), `STATUS_INVALID_HANDLE` (closing), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn enable_events(&self, events: EventSet) -> Result<()> {
        control_events(&self.core, events.bits())
    }

    /// Disables one event callback (`SO_WSK_EVENT_CALLBACK` with `WSK_EVENT_DISABLE`), with an
    /// IRP, waiting for completion (the provider completes it once no call to the callback
    /// is in progress). PASSIVE_LEVEL. Errors: `STATUS_INVALID_DEVICE_STATE` for a static
    /// event (the emulation's status; the docs say static events "cannot be disabled"), any
    /// status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn disable_event(&self, event: Event) -> Result<()> {
        self.core.disable_event(event.bits())
    }
}

impl DatagramSocket {
    /// Like [`DatagramSocket::bind`], giving the socket `handler` for `WskReceiveFromEvent`.
    /// No event is enabled yet (except static ones); call [`DatagramSocket::enable_events`].
    /// PASSIVE_LEVEL. Errors: as [`DatagramSocket::bind`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_datagram_dispatch>
    pub fn bind_with_events<H: DatagramEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: H,
    ) -> Result<DatagramSocket> {
        let hdr = datagram_ctx(handler)?;
        let core = create_with_events(
            client,
            &local,
            SOCK_DGRAM,
            IPPROTO_UDP,
            WSK_FLAG_DATAGRAM_SOCKET,
            hdr,
        )?;
        let s = DatagramSocket { core };
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// Enables `WskReceiveFromEvent` (`EventSet::RECEIVE_FROM`). IRQL <= DISPATCH_LEVEL.
    /// Errors: as [`StreamSocket::enable_events`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn enable_events(&self, events: EventSet) -> Result<()> {
        control_events(&self.core, events.bits())
    }

    /// Disables one event; see [`StreamSocket::disable_event`]. PASSIVE_LEVEL.
    pub fn disable_event(&self, event: Event) -> Result<()> {
        self.core.disable_event(event.bits())
    }

    /// The provider's socket object (valid until the socket is closed; calls through it
    /// bypass this type's rundown protection).
    pub fn as_raw(&self) -> PWSK_SOCKET {
        self.core.raw.as_ptr()
    }
}

impl ListenSocket {
    /// Like [`ListenSocket::bind`], giving the socket `handler` for `WskAcceptEvent`. Enable
    /// it with [`ListenSocket::enable_events`] (`EventSet::ACCEPT`); connection events
    /// enabled on the listening socket are inherited by sockets accepted through the event
    /// (SO_WSK_EVENT_CALLBACK page). PASSIVE_LEVEL. Errors: as [`ListenSocket::bind`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn bind_with_events<L: ListenEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: L,
    ) -> Result<ListenSocket> {
        Self::bind_events(client, local, handler, false)
    }

    /// Like [`ListenSocket::bind_with_events`] in conditional-accept mode: sets
    /// `SO_CONDITIONAL_ACCEPT` before binding, so each incoming connection is first shown to
    /// [`ListenEvents::on_inspect`] (and [`ListenEvents::on_abort`] if the peer leaves before
    /// a pended decision). PASSIVE_LEVEL. Errors: as [`ListenSocket::bind`], or any status
    /// of the option.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections>
    pub fn bind_conditional<L: ListenEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: L,
    ) -> Result<ListenSocket> {
        Self::bind_events(client, local, handler, true)
    }

    fn bind_events<L: ListenEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: L,
        conditional: bool,
    ) -> Result<ListenSocket> {
        let hdr = listen_ctx(handler)?;
        let core = create_with_events(
            client,
            &local,
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_LISTEN_SOCKET,
            hdr,
        )?;
        let s = ListenSocket { core };
        if conditional {
            s.set_conditional_accept()?;
        }
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// `SO_CONDITIONAL_ACCEPT` = 1, before bind.
    fn set_conditional_accept(&self) -> Result<()> {
        let control = self
            .core
            .basic()
            .WskControlSocket
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core
            .sync(self.core.timeout, |irp, b, _| {
                let v = b as *mut WSK_BUF as *mut u32;
                // SAFETY: the ULONG lives in the op block until completion; open socket.
                unsafe {
                    v.write(1);
                    control(
                        raw,
                        WskSetOption,
                        SO_CONDITIONAL_ACCEPT as u32,
                        0xffff,
                        4,
                        v as *mut c_void,
                        0,
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        irp,
                    )
                }
            })
            .map(|_| ())
    }

    /// Enables listening-socket events: `EventSet::ACCEPT`, and connection events to be
    /// inherited by accepted sockets (which cannot be disabled on the listener afterwards).
    /// IRQL <= DISPATCH_LEVEL. Errors: as [`StreamSocket::enable_events`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn enable_events(&self, events: EventSet) -> Result<()> {
        control_events(&self.core, events.bits())
    }

    /// Disables one event; see [`StreamSocket::disable_event`]. PASSIVE_LEVEL.
    pub fn disable_event(&self, event: Event) -> Result<()> {
        self.core.disable_event(event.bits())
    }

    /// Completes a pended inspection (`WskInspectComplete`): `accept` establishes the
    /// connection (it then reaches a pending `accept` or `ListenEvents::on_accept`), else it
    /// is dropped. PASSIVE_LEVEL. Errors: `STATUS_INVALID_PARAMETER` (unknown or aborted id,
    /// as the emulation reports it), `STATUS_FILE_FORCED_CLOSED` (socket no longer
    /// functional, per the docs), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_complete>
    pub fn inspect_complete(&self, id: InspectId, accept: bool) -> Result<()> {
        let complete = self
            .dispatch()
            .WskInspectComplete
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        let action = if accept {
            WskInspectAccept
        } else {
            WskInspectReject
        };
        self.core
            .sync(self.core.timeout, |irp, b, _| {
                let p = b as *mut WSK_BUF as *mut WSK_INSPECT_ID;
                // SAFETY: the id lives in the op block (16 bytes <= WSK_BUF) until completion.
                unsafe {
                    p.write(id.0);
                    complete(raw, p, action, irp)
                }
            })
            .map(|_| ())
    }

    /// The provider's socket object (valid until the socket is closed).
    pub fn as_raw(&self) -> PWSK_SOCKET {
        self.core.raw.as_ptr()
    }
}
