//! Asynchronous operations: an IRP and a state block per call, freed in the completion
//! routine, which hands the buffer and the result back to the caller's callback.

use core::ffi::c_void;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicU8, Ordering};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_CANCELLED, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING,
};
use wsk_sys::*;

use super::*;
use crate::addr::SockAddrBuf;
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

/// State of one asynchronous operation; freed by the last of its two owners (the starter and
/// the completion routine).
pub(crate) struct AsyncOp<B, D> {
    irp: Option<OwnedIrp>,
    wsk_buf: WSK_BUF,
    addr: SockAddrBuf,
    buf: Option<B>,
    done: Option<D>,
    owners: AtomicU8,
}

impl<B, D> TwoOwners for AsyncOp<B, D> {
    fn owners(&self) -> &AtomicU8 {
        &self.owners
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
    // SAFETY: context is the AsyncOp leaked by start_async, live while this routine holds
    // its share; this routine runs once and is the only one to touch these fields (the
    // starter reads only `owners` until it lets go).
    let (irp, buf, done, addr) = unsafe {
        (
            (*p).irp.take(),
            (*p).buf.take(),
            (*p).done.take(),
            (*p).addr,
        )
    };
    let (status, info) = irp
        .as_ref()
        .map_or((STATUS_CANCELLED, 0), |i| i.io_status());
    drop(irp); // IoFreeIrp inside a completion routine, as in seed 000
               // SAFETY: our share, given up here; nothing of the block is used after.
    unsafe { release(p) };
    let result = check(status).map(|_| info);
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
        owners: AtomicU8::new(2),
    };
    let mut op = match PoolBox::try_new(op, WSK_TAG) {
        Ok(o) => o,
        Err(e) => return Err((e, buf)),
    };
    op.buf = Some(buf);
    op.done = Some(done);
    // The routine may run after this call returned (and after the caller's own frames are
    // gone): set it so that it keeps the driver loaded when that is enabled.
    // SAFETY: our IRP with a free next stack location; the block outlives the routine.
    let set = unsafe {
        set_completion_routine_async(
            irp_ptr,
            async_completion::<B, D>,
            &mut *op as *mut AsyncOp<B, D> as *mut c_void,
        )
    };
    if let Err(e) = set {
        // Nothing was started: take the buffer back; the block and IRP are freed here.
        return match op.buf.take() {
            Some(buf) => Err((e, buf)),
            None => Ok(()),
        };
    }
    let p = op.into_raw();
    // SAFETY: p is the live block (our share is held until the end of this function); the
    // WSK_BUF and address buffer live in it until the completion routine ran.
    let dispatch_status = unsafe { start(irp_ptr, &mut (*p).wsk_buf, &mut (*p).addr) };
    // SAFETY: our share is still held.
    if unsafe { refused(p, dispatch_status) } {
        // SAFETY: the completion routine will never run: the block (and the IRP in it) is
        // ours alone; the buffer goes back to the caller, `done` is not called.
        let mut op = unsafe { PoolBox::from_raw(p, WSK_TAG) };
        drop(guard);
        let e = check(dispatch_status)
            .err()
            .unwrap_or(Error::Status(dispatch_status));
        return match op.buf.take() {
            Some(buf) => Err((e, buf)),
            None => Ok(()),
        };
    }
    // SAFETY: our share, given up here.
    unsafe { release(p) };
    drop(guard);
    Ok(())
}
