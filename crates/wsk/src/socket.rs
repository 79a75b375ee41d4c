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
    STATUS_NOT_IMPLEMENTED,
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
struct OpBlock {
    wait: SyncWait,
    irp: OwnedIrp,
    buf: WSK_BUF,
    addr: SockAddrBuf,
}

fn new_op() -> Result<PoolBox<OpBlock>> {
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
        },
        WSK_TAG,
    )
}

fn timeout_100ns(t: Option<Duration>) -> Option<u64> {
    t.map(|d| (d.as_nanos() / 100).min(u64::MAX as u128) as u64)
}

fn require_passive() -> Result<()> {
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
fn run_sync(
    op: &mut OpBlock,
    timeout: Option<Duration>,
    start: impl FnOnce(*mut IRP, &mut WSK_BUF, &mut SockAddrBuf) -> NTSTATUS,
) -> Result<usize> {
    require_passive()?;
    op.irp.reuse();
    let OpBlock { wait, irp, buf, addr } = op;
    wait.arm(irp);
    let _ = start(irp.as_ptr(), buf, addr);
    let (status, info, timed_out) = wait.wait(irp, timeout_100ns(timeout));
    if timed_out && status == STATUS_CANCELLED {
        return Err(Error::Timeout);
    }
    check(status)?;
    Ok(info)
}

/// What sockets of both kinds share: the provider's socket, a cached operation block, and a
/// default timeout.
struct Core {
    raw: NonNull<WSK_SOCKET>,
    cached: AtomicPtr<OpBlock>,
    timeout: Option<Duration>,
    /// Rundown protection: the number of WSK dispatch calls in progress, plus [`CLOSING`]
    /// once close began. Close waits for the calls in progress (they are non-blocking) and
    /// then lets `WskCloseSocket` cancel whatever is still pending; no WSK routine is ever
    /// called on the socket after `WskCloseSocket`.
    active: AtomicUsize,
}

const CLOSING: usize = 1 << (usize::BITS - 1);

struct Enter<'a>(&'a AtomicUsize);

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
    fn new(raw: NonNull<WSK_SOCKET>, op: PoolBox<OpBlock>) -> Self {
        Core {
            raw,
            cached: AtomicPtr::new(op.into_raw()),
            timeout: None,
            active: AtomicUsize::new(0),
        }
    }

    /// Enters a dispatch call; fails with `STATUS_INVALID_HANDLE` once close began.
    fn enter(&self) -> Result<Enter<'_>> {
        let prev = self.active.fetch_add(1, Ordering::AcqRel);
        let guard = Enter(&self.active);
        if prev & CLOSING != 0 {
            return Err(Error::Closed);
        }
        Ok(guard)
    }

    fn basic(&self) -> &WSK_PROVIDER_BASIC_DISPATCH {
        // SAFETY: every provider table starts with WSK_PROVIDER_BASIC_DISPATCH, and the
        // socket's Dispatch is valid while the socket is open.
        unsafe { &*((*self.raw.as_ptr()).Dispatch as *const WSK_PROVIDER_BASIC_DISPATCH) }
    }

    fn take_op(&self) -> Result<PoolBox<OpBlock>> {
        let p = self.cached.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if p.is_null() {
            new_op()
        } else {
            // SAFETY: the slot holds blocks from PoolBox::into_raw with WSK_TAG.
            Ok(unsafe { PoolBox::from_raw(p, WSK_TAG) })
        }
    }

    fn put_op(&self, op: PoolBox<OpBlock>) {
        let p = op.into_raw();
        if self
            .cached
            .compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: our block, not stored: free it.
            drop(unsafe { PoolBox::from_raw(p, WSK_TAG) });
        }
    }

    fn sync(
        &self,
        timeout: Option<Duration>,
        start: impl FnOnce(*mut IRP, &mut WSK_BUF, &mut SockAddrBuf) -> NTSTATUS,
    ) -> Result<usize> {
        self.sync_addr(timeout, start).map(|(n, _)| n)
    }

    /// Like [`Core::sync`], also returning the op block's address after completion (where
    /// address-returning routines wrote it).
    fn sync_addr(
        &self,
        timeout: Option<Duration>,
        start: impl FnOnce(*mut IRP, &mut WSK_BUF, &mut SockAddrBuf) -> NTSTATUS,
    ) -> Result<(usize, SockAddrBuf)> {
        let mut op = self.take_op()?;
        let r = run_sync(&mut op, timeout, |irp, b, a| match self.enter() {
            // The guard ends when the dispatch call returns; the wait that follows is outside.
            Ok(_guard) => start(irp, b, a),
            Err(_) => {
                // Not started: complete our own IRP so the waiter sees STATUS_INVALID_HANDLE.
                fail_unstarted(irp);
                STATUS_INVALID_HANDLE
            }
        })
        .map(|n| (n, op.addr));
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
        let mut op = self.take_op()?;
        // WskCloseSocket completes (cancelling) every pending IRP of the socket first.
        // SAFETY: open socket, closed once; the IRP is ours until completion.
        let r = run_sync(&mut op, None, |irp, _, _| unsafe { close(raw, irp) });
        self.put_op(op);
        r.map(|_| ())
    }

    fn is_closed(&self) -> bool {
        self.active.load(Ordering::Acquire) & CLOSING != 0
    }

    fn local_address(&self, get: PFN_WSK_GET_LOCAL_ADDRESS) -> Result<SocketAddr> {
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

impl Drop for Core {
    fn drop(&mut self) {
        if !self.is_closed() {
            if nt_imports::current_irql() == nt_imports::PASSIVE_LEVEL {
                let _ = self.close();
            } else if self.begin_close() {
                close_async(self.raw.as_ptr(), self.basic().WskCloseSocket);
            }
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
fn fail_unstarted(irp: *mut IRP) {
    // SAFETY: our IRP, armed with a completion routine in its next stack location and not
    // given to anyone; stepping into that location and completing it runs that routine.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = STATUS_INVALID_HANDLE;
        (*irp).IoStatus.Information = 0;
        (*irp).CurrentLocation -= 1;
        let sl = &mut (*irp).Tail.Overlay.Anonymous2.Anonymous.CurrentStackLocation;
        *sl = sl.sub(1);
        windows_sys::Wdk::System::SystemServices::IofCompleteRequest(irp, 0);
    }
}

/// Closes a socket without waiting (used when a socket is dropped above PASSIVE_LEVEL).
fn close_async(raw: PWSK_SOCKET, close: PFN_WSK_CLOSE_SOCKET) {
    unsafe extern "system" fn done(_d: *mut DEVICE_OBJECT, irp: *mut IRP, _c: *mut c_void) -> NTSTATUS {
        // SAFETY: the IRP was leaked to this routine by close_async.
        drop(unsafe { OwnedIrp::from_raw(irp) });
        STATUS_MORE_PROCESSING_REQUIRED
    }
    let (Some(close), Ok(irp)) = (close, OwnedIrp::allocate()) else {
        return;
    };
    let irp = irp.into_raw();
    // SAFETY: fresh IRP; the routine frees it.
    unsafe {
        set_completion_routine(irp, done, core::ptr::null_mut());
        close(raw, irp);
    }
}

/// State of one asynchronous operation; freed in its completion routine.
struct AsyncOp<B, F> {
    irp: Option<OwnedIrp>,
    wsk_buf: WSK_BUF,
    addr: SockAddrBuf,
    buf: Option<B>,
    done: Option<F>,
}

unsafe extern "system" fn async_completion<B, F>(
    _dev: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS
where
    F: FnOnce(Result<usize>, B),
{
    // SAFETY: context is the AsyncOp leaked by start_async; this routine runs once.
    let mut op = unsafe { PoolBox::from_raw(context as *mut AsyncOp<B, F>, WSK_TAG) };
    let (status, info) = op.irp.as_ref().map_or((STATUS_CANCELLED, 0), |i| i.io_status());
    let result = check(status).map(|_| info);
    let buf = op.buf.take();
    let done = op.done.take();
    drop(op); // frees the IRP (IoFreeIrp inside a completion routine, as in seed 000)
    if let (Some(buf), Some(done)) = (buf, done) {
        done(result, buf);
    }
    STATUS_MORE_PROCESSING_REQUIRED
}

/// Starts an asynchronous operation on `buf` (`len` bytes from `offset`): allocates the IRP
/// and the state block, sets the completion routine, and calls `start`. On a failure before
/// the dispatch call, `done` is not called and the buffer is returned in the error.
fn start_async<B, F>(
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
    let op = AsyncOp::<B, F> {
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
        set_completion_routine(irp_ptr, async_completion::<B, F>, p as *mut c_void);
        let _ = start(irp_ptr, &mut (*p).wsk_buf, &mut (*p).addr);
    }
    drop(guard);
    Ok(())
}

/// A connection-oriented (TCP) WSK socket.
pub struct StreamSocket {
    core: Core,
    fallback: bool,
}

impl StreamSocket {
    fn dispatch(&self) -> &WSK_PROVIDER_CONNECTION_DISPATCH {
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
    pub fn connect(client: &WskClient, remote: SocketAddr, timeout: Option<Duration>) -> Result<StreamSocket> {
        require_passive()?;
        let socket_connect = client.dispatch().WskSocketConnect.ok_or(Error::NotImplemented)?;
        let mut op = new_op()?;
        let mut local = SockAddrBuf::unspecified_like(&remote);
        let mut remote_buf = SockAddrBuf::new(remote);
        let raw_client = client.raw_client();
        let r = run_sync(&mut op, timeout, |irp, _, _| {
            // SAFETY: addresses live on this frame until the synchronous call returns.
            unsafe {
                socket_connect(
                    raw_client,
                    SOCK_STREAM,
                    IPPROTO_TCP,
                    local.as_mut_ptr(),
                    remote_buf.as_mut_ptr(),
                    0,
                    core::ptr::null_mut(),
                    core::ptr::null(),
                    0,
                    0,
                    core::ptr::null_mut(),
                    irp,
                )
            }
        });
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

    fn connect_fallback(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
        mut op: PoolBox<OpBlock>,
    ) -> Result<StreamSocket> {
        let raw = create_socket(client, &mut op, family_of(&remote), SOCK_STREAM, IPPROTO_TCP, WSK_FLAG_CONNECTION_SOCKET)?;
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

    fn bind_with(&self, bind: PFN_WSK_BIND, local: SockAddrBuf) -> Result<()> {
        let bind = bind.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core
            .sync(self.core.timeout, |irp, _, addr| {
                *addr = local;
                // SAFETY: open socket; addr lives in the op block until completion.
                unsafe { bind(raw, addr.as_mut_ptr(), 0, irp) }
            })
            .map(|_| ())
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
    pub fn send_async<B, F>(&self, buf: B, offset: usize, len: usize, done: F) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<usize>, B) + Send + 'static,
    {
        let Some(send) = self.dispatch().WskSend else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        // SAFETY: open socket; the WSK_BUF lives in the async block until completion.
        start_async(&self.core, buf, offset, len, None, done, |irp, b, _| unsafe { send(raw, b, 0, irp) })
    }

    /// The local address (`WskGetLocalAddress`). PASSIVE_LEVEL.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetLocalAddress)
    }

    /// The remote address (`WskGetRemoteAddress`). PASSIVE_LEVEL.
    pub fn remote_address(&self) -> Result<SocketAddr> {
        self.core
            .local_address(self.dispatch().WskGetRemoteAddress)
    }

    /// Closes the socket with `WskCloseSocket`, which first completes every pending
    /// operation with `STATUS_CANCELLED`. PASSIVE_LEVEL. (Dropping also closes.)
    pub fn close(&self) -> Result<()> {
        self.core.close()
    }
}

fn create_socket(
    client: &WskClient,
    op: &mut OpBlock,
    family: u16,
    socket_type: u16,
    protocol: u32,
    flags: u32,
) -> Result<NonNull<WSK_SOCKET>> {
    let socket = client.dispatch().WskSocket.ok_or(Error::NotImplemented)?;
    let raw_client = client.raw_client();
    let info = run_sync(op, None, |irp, _, _| {
        // SAFETY: plain WskSocket call; no context or callbacks.
        unsafe {
            socket(
                raw_client,
                family,
                socket_type,
                protocol,
                flags,
                core::ptr::null_mut(),
                core::ptr::null(),
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
    core: Core,
}

impl DatagramSocket {
    fn dispatch(&self) -> &WSK_PROVIDER_DATAGRAM_DISPATCH {
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
        require_passive()?;
        let mut op = new_op()?;
        let raw = create_socket(client, &mut op, family_of(&local), SOCK_DGRAM, IPPROTO_UDP, WSK_FLAG_DATAGRAM_SOCKET)?;
        let s = DatagramSocket {
            core: Core::new(raw, op),
        };
        let bind = s.dispatch().WskBind.ok_or(Error::NotImplemented)?;
        let rawp = s.core.raw.as_ptr();
        s.core.sync(None, |irp, _, addr| {
            *addr = SockAddrBuf::new(local);
            // SAFETY: open socket; addr lives in the op block until completion.
            unsafe { bind(rawp, addr.as_mut_ptr(), 0, irp) }
        })?;
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
        let control = self.core.basic().WskControlSocket.ok_or(Error::NotImplemented)?;
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
