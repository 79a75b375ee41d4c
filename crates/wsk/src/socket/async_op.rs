//! Asynchronous operations: an IRP and a state block per call, freed in the completion
//! routine, which hands the buffer and the result back to the caller's callback.

use core::ffi::c_void;
use core::net::SocketAddr;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_CANCELLED, STATUS_MORE_PROCESSING_REQUIRED};
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
    // SAFETY: p is the live block; the completion routine frees it exactly once.
    unsafe {
        let _ = start(irp_ptr, &mut (*p).wsk_buf, &mut (*p).addr);
    }
    drop(guard);
    Ok(())
}
