//! Asynchronous operations: an IRP and a state block per call, taken from the socket's
//! cache ([`super::op_cache`]; steady state: no allocation) and given back by the completion
//! routine, which hands the buffer and the result back to the caller's callback.

use core::ffi::c_void;
use core::net::SocketAddr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING};
use wsk_sys::*;

use super::op_cache::{OpCache, Slot, OP_BYTES};
use super::*;
use crate::addr::SockAddrBuf;
use crate::alloc::KArc;
use crate::buf::{wsk_buf, MdlBuffer};
use crate::error::{check, Error, Result};
use crate::irp::{set_completion_routine_async, OwnedIrp};
use crate::pool::{PoolBox, WSK_TAG};

/// How an asynchronous operation hands its result back: with or without the address the
/// provider wrote into the operation's block.
pub(crate) trait Deliver<B>: Send + 'static {
    fn deliver(self, result: Result<usize>, addr: &SockAddrBuf, buf: B);
}

/// Delivers `(Result<bytes>, buffer)`.
pub(crate) struct Plain<F>(pub(crate) F);

impl<B, F: FnOnce(Result<usize>, B) + Send + 'static> Deliver<B> for Plain<F> {
    fn deliver(self, result: Result<usize>, _addr: &SockAddrBuf, buf: B) {
        (self.0)(result, buf)
    }
}

/// Delivers `(Result<(bytes, address)>, buffer)`; an unknown family is `STATUS_INVALID_PARAMETER`.
pub(crate) struct WithAddr<F>(pub(crate) F);

impl<B, F: FnOnce(Result<(usize, SocketAddr)>, B) + Send + 'static> Deliver<B> for WithAddr<F> {
    fn deliver(self, result: Result<usize>, addr: &SockAddrBuf, buf: B) {
        let r = result.and_then(|n| addr.get().map(|a| (n, a)).ok_or(Error::InvalidParameter));
        (self.0)(r, buf)
    }
}

/// A block shared by the code that starts an asynchronous IRP and the IRP's completion
/// routine: it starts with two owners, and whoever lets go last frees it. The starter needs
/// its share to tell, after the provider's routine returned, whether the completion routine
/// ran at all (see [`refused`]).
pub(crate) trait TwoOwners {
    fn owners(&self) -> &AtomicU8;
}

/// Releases one owner of the pool block `p`; the last one frees it.
///
/// # Safety
/// `p` is a live block from `PoolBox::into_raw` (tag `WSK_TAG`) whose owner count includes
/// the caller's share, which the caller gives up here.
pub(crate) unsafe fn release<T: TwoOwners>(p: *mut T) {
    // SAFETY: caller contract: the block is live while the caller's share is held.
    if unsafe { (*p).owners() }.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: the last owner: no one else refers to the block.
        drop(unsafe { PoolBox::from_raw(p, WSK_TAG) });
    }
}

/// Whether the provider's routine refused the IRP without completing it: it returned a final
/// error status and the completion routine has not run. By the IRP rules a routine that
/// returns anything but `STATUS_PENDING` has completed the IRP already, so its completion
/// routine will never run; Wine 8.0's netio.sys stubs (WskDisconnect among them) return
/// STATUS_NOT_IMPLEMENTED this way. The starter then owns the block alone. (When
/// `IoSetCompletionRoutineEx` is in use, its context for such an IRP is never released:
/// [`crate::irp::protect_completions`] is not for such providers.)
///
/// # Safety
/// `p` is live: the caller still holds its share.
pub(crate) unsafe fn refused<T: TwoOwners>(p: *const T, dispatch_status: NTSTATUS) -> bool {
    dispatch_status < 0
        && dispatch_status != STATUS_PENDING
        // SAFETY: caller contract.
        && unsafe { (*p).owners() }.load(Ordering::Acquire) == 2
}

/// Where an operation's block and IRP live, and so how they are disposed of.
enum Home {
    /// In an item of the socket's cache ([`OpCache`]): given back to it. The reference keeps
    /// the cache alive while the operation is in flight (the socket may be gone).
    Cached {
        cache: KArc<OpCache>,
        slot: NonNull<Slot>,
    },
    /// Its own IRP, with the block in its own pool block (`WSK_TAG`): both freed (the block
    /// did not fit [`OP_BYTES`], or the socket's cache is at [`super::op_cache::MAX_CACHED_OPS`]).
    Own(OwnedIrp),
}

/// State of one asynchronous operation, disposed of by the last of its two owners (the
/// starter and the completion routine): given back to the socket's cache, or freed.
pub(crate) struct AsyncOp<B, D> {
    /// The operation's IRP (owned by `home`).
    irp: *mut IRP,
    wsk_buf: WSK_BUF,
    addr: SockAddrBuf,
    buf: Option<B>,
    done: Option<D>,
    owners: AtomicU8,
    home: Option<Home>,
}

impl<B, D> TwoOwners for AsyncOp<B, D> {
    fn owners(&self) -> &AtomicU8 {
        &self.owners
    }
}

impl<B, D> AsyncOp<B, D> {
    /// Whether the block is built in a cache item: it fits [`OP_BYTES`] and the item's
    /// 16-byte alignment. Decided per type at compile time.
    const FITS: bool =
        core::mem::size_of::<Self>() <= OP_BYTES && core::mem::align_of::<Self>() <= 16;
}

/// Disposes of the block `p` and its IRP: gives the cache item back, or frees both.
///
/// # Safety
/// `p` is a live block from [`start_async_with`] that no one else refers to any more (both
/// owners let go, or the completion routine will never run); its IRP is not with the
/// provider.
unsafe fn dispose<B, D>(p: *mut AsyncOp<B, D>) {
    // SAFETY: caller contract.
    match unsafe { (*p).home.take() } {
        Some(Home::Cached { cache, slot }) => {
            // SAFETY: the block was built in place in `slot`; dropped once here, after which
            // the item is given back once.
            unsafe {
                core::ptr::drop_in_place(p);
                cache.put(slot);
            }
        }
        Some(Home::Own(irp)) => {
            // SAFETY: a block from PoolBox::into_raw with WSK_TAG.
            drop(unsafe { PoolBox::from_raw(p, WSK_TAG) });
            drop(irp); // IoFreeIrp
        }
        // Unreachable: every block is built with a home. Leaked rather than guessed at.
        None => {}
    }
}

/// Releases one owner of the operation `p`; the last one disposes of it.
///
/// # Safety
/// `p` is live and the caller's share is counted in its owners; the caller gives it up.
unsafe fn release_op<B, D>(p: *mut AsyncOp<B, D>) {
    // SAFETY: caller contract: the block is live while the caller's share is held.
    if unsafe { (*p).owners() }.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: the last owner: no one else refers to the block.
        unsafe { dispose(p) };
    }
}

unsafe extern "system" fn async_completion<B, D>(
    _dev: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS
where
    D: Deliver<B>,
{
    let p = context as *mut AsyncOp<B, D>;
    // SAFETY: context is the block start_async_with built, live while this routine holds its
    // share; this routine runs once and is the only one to touch these fields (the starter
    // reads only `owners` until it lets go). The IRP is back from the provider.
    let (status, info, buf, done, addr) = unsafe {
        let s = &(*(*p).irp).IoStatus;
        (
            s.Anonymous.Status,
            s.Information,
            (*p).buf.take(),
            (*p).done.take(),
            (*p).addr,
        )
    };
    // SAFETY: our share, given up here (the item goes back to the cache, or block and IRP
    // are freed, inside a completion routine as in seed 000); nothing of it is used after.
    unsafe { release_op(p) };
    let result = check(status).map(|_| info);
    if let (Some(buf), Some(done)) = (buf, done) {
        done.deliver(result, &addr, buf);
    }
    STATUS_MORE_PROCESSING_REQUIRED
}

/// Starts an asynchronous operation on `buf` (`len` bytes from `offset`): takes an IRP and a
/// state block from the socket's cache (or allocates them), sets the completion routine,
/// and calls `start`. On a failure before the dispatch call, `done` is not called and the
/// buffer is returned in the error.
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

/// Builds the operation block: in an item of the socket's cache when it fits and the cache
/// has or may grow one, else in its own pool block with its own IRP. IRQL <= DISPATCH_LEVEL.
/// Errors: `STATUS_INSUFFICIENT_RESOURCES` (nothing is left allocated), `STATUS_INVALID_HANDLE`
/// (the cache was closed).
fn build<B, D>(core: &Core, wsk_buf: WSK_BUF, addr: SockAddrBuf) -> Result<*mut AsyncOp<B, D>> {
    let op = |irp: *mut IRP, home: Home| AsyncOp::<B, D> {
        irp,
        wsk_buf,
        addr,
        buf: None,
        done: None,
        owners: AtomicU8::new(2),
        home: Some(home),
    };
    if AsyncOp::<B, D>::FITS {
        let cache = core.op_cache()?;
        if let Some(slot) = cache.take()? {
            // SAFETY: a live item held by us alone.
            let (irp, at) = unsafe { (Slot::irp(slot), Slot::storage(slot)) };
            let p = at.cast::<AsyncOp<B, D>>();
            // SAFETY: FITS: the storage has room for the block at its alignment (16-byte
            // aligned storage, align_of <= 16); it holds no live value.
            unsafe { p.write(op(irp, Home::Cached { cache, slot })) };
            return Ok(p);
        }
    }
    let irp = OwnedIrp::allocate()?;
    let irp_ptr = irp.as_ptr();
    let b = PoolBox::try_new(op(irp_ptr, Home::Own(irp)), WSK_TAG)?;
    Ok(b.into_raw())
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
    let a = addr.map_or(SockAddrBuf::zeroed(), SockAddrBuf::new);
    let p = match build::<B, D>(core, wb, a) {
        Ok(p) => p,
        Err(e) => return Err((e, buf)),
    };
    // SAFETY: p is the live block, ours alone until the IRP is sent.
    let irp_ptr = unsafe {
        (*p).buf = Some(buf);
        (*p).done = Some(done);
        (*p).irp
    };
    // The routine may run after this call returned (and after the caller's own frames are
    // gone): set it so that it keeps the driver loaded when that is enabled.
    // SAFETY: our IRP (fresh or reused) with a free next stack location; the block outlives
    // the routine.
    let set = unsafe { set_completion_routine_async(irp_ptr, async_completion::<B, D>, p.cast()) };
    if let Err(e) = set {
        // Nothing was started: take the buffer back; the block and IRP are disposed of.
        // SAFETY: ours alone; the IRP was never sent.
        let buf = unsafe { (*p).buf.take() };
        // SAFETY: as above.
        unsafe { dispose(p) };
        return match buf {
            Some(buf) => Err((e, buf)),
            None => Ok(()),
        };
    }
    // SAFETY: p is the live block (our share is held until the end of this function); the
    // WSK_BUF and address buffer live in it until the completion routine ran.
    let dispatch_status = unsafe { start(irp_ptr, &mut (*p).wsk_buf, &mut (*p).addr) };
    // SAFETY: our share is still held.
    if unsafe { refused(p, dispatch_status) } {
        // SAFETY: the completion routine will never run: the block (and the IRP) is ours
        // alone; the buffer goes back to the caller, `done` is not called.
        let buf = unsafe { (*p).buf.take() };
        // SAFETY: as above.
        unsafe { dispose(p) };
        drop(guard);
        let e = check(dispatch_status)
            .err()
            .unwrap_or(Error::Status(dispatch_status));
        return match buf {
            Some(buf) => Err((e, buf)),
            None => Ok(()),
        };
    }
    // SAFETY: our share, given up here.
    unsafe { release_op(p) };
    drop(guard);
    Ok(())
}
