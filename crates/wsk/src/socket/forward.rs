//! Forwarding a caller's IRP to WSK: the third origin of the IRP passed to a WSK function in
//! "Using IRPs with Winsock Kernel Functions"
//! (<https://learn.microsoft.com/en-us/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>):
//! "an IRP that was passed down to the WSK application by the I/O manager", provided it has
//! at least one stack location left for the WSK subsystem. The operation then allocates
//! nothing: no IRP, no operation block, and no `IoSetCompletionRoutineEx` context.
//!
//! The `WSK_BUF`, which WSK may read until the IRP completes, lives in the caller's own
//! current stack location's `Parameters` (32 bytes on x64, 16 on x86), with the ownership
//! count that decides who completes the IRP towards the I/O manager ([`ForwardSlot`]). That
//! location is the caller's while it owns it: the I/O manager filled it before dispatch and
//! reads nothing of it afterwards (its I/O completion works from the IRP header: `IoStatus`,
//! `UserBuffer`, `MdlAddress`, `Flags`; ntsim's does the same, and so does Wine 8.0's
//! `dispatch_irp_completion`, which reads `UserBuffer` and `IoStatus`: read in Wine's source,
//! observed in the Wine lane), and the lower level (WSK) only uses its own location, the next
//! one. Not `Tail.Overlay.DriverContext`: that belongs to whichever driver holds the IRP,
//! which is WSK while the request is pending.
//!
//! **Why no `IoSetCompletionRoutineEx`.** That routine exists so that a driver cannot be
//! unloaded between the moment its completion routine is called and the moment it returns.
//! A forwarded IRP was built by the I/O manager for a file object of this driver's device,
//! and that IRP holds a reference on the file object (taken by the system service before
//! dispatch, released by I/O completion, which runs only after `IoCompleteRequest` has called
//! every completion routine and they have returned -- or, when a routine returned
//! `STATUS_MORE_PROCESSING_REQUIRED`, after the driver's own later `IoCompleteRequest`). While
//! the file object is referenced, it is not closed, so `IRP_MJ_CLOSE` has not been sent, the
//! device object keeps a reference, and `DriverUnload` cannot run: the driver's code and its
//! device extension (where the completion context lives) outlive the routine. Hence plain
//! `IoSetCompletionRoutine`, with all three `Invoke*` flags TRUE. (Reasoned from the I/O
//! manager's documented object lifetimes -- "Life Cycle of a File Object", "Unloading a
//! driver" -- not observed on Windows.)

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IO_STACK_LOCATION, IRP, MDL};
use windows_sys::Wdk::System::SystemServices::IofCompleteRequest;
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING, STATUS_SUCCESS,
};
use wsk_sys::WSK_BUF;

use super::base::Core;
use crate::error::{check, Error, Result};
use crate::irp::set_completion_routine;

const SL_PENDING_RETURNED: u8 = 0x01;
/// `IO_NETWORK_INCREMENT` (wdm.h): the priority boost of a completed network request.
const IO_NETWORK_INCREMENT: i8 = 2;

/// What a forwarded request's owner learns when WSK completes it.
///
/// # Safety
/// [`ForwardedCompletion::done`] runs in an I/O completion routine (IRQL <= DISPATCH_LEVEL,
/// any thread), once per forwarded IRP, before the IRP continues to the I/O manager; it must
/// not complete, free or otherwise touch the IRP, and `context` must be valid then.
pub unsafe trait ForwardedCompletion {
    /// WSK completed the request with `status` and `IoStatus.Information` = `information`
    /// (bytes sent or received). `context` is the pointer given to the forwarding call.
    ///
    /// # Safety
    /// Called only by the completion routine, with the forwarding call's `context`.
    unsafe fn done(context: *mut c_void, status: NTSTATUS, information: usize);
}

/// The forwarding state kept in the caller's current stack location's `Parameters`: the
/// `WSK_BUF` WSK reads, and the ownership count of two (the forwarding call and the
/// completion routine; the last one completes the IRP towards the I/O manager).
#[repr(C)]
struct ForwardSlot {
    buf: WSK_BUF,
    owners: AtomicUsize,
}

/// Bytes of an `IO_STACK_LOCATION`'s `Parameters` union: 4 pointers (wdm.h: the largest
/// member, e.g. `Parameters.Others.Argument1..4`).
const PARAMETERS_BYTES: usize = 4 * core::mem::size_of::<usize>();

const _: () = assert!(core::mem::size_of::<ForwardSlot>() <= PARAMETERS_BYTES);
const _: () = assert!(core::mem::align_of::<ForwardSlot>() <= core::mem::align_of::<usize>());

/// The slot in `irp`'s current stack location.
///
/// # Safety
/// `irp` is live and its current location is a real one (not one past the end).
unsafe fn slot(irp: *mut IRP) -> *mut ForwardSlot {
    // SAFETY: caller contract; Parameters is pointer-aligned and PARAMETERS_BYTES long.
    unsafe {
        let sl: *mut IO_STACK_LOCATION = (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation;
        core::ptr::addr_of_mut!((*sl).Parameters).cast::<ForwardSlot>()
    }
}

/// The completion routine of a forwarded IRP (set in the next stack location, WSK's). Runs
/// with the caller's location current again.
unsafe extern "system" fn forwarded_completion<D: ForwardedCompletion>(
    _dev: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the IRP is live and ours again during its completion routine; the slot was
    // written by `forward` in our stack location, which nobody else writes.
    unsafe {
        let (status, information) = (
            (*irp).IoStatus.Anonymous.Status,
            (*irp).IoStatus.Information,
        );
        D::done(context, status, information);
        if (*slot(irp)).owners.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The forwarding call has returned: completion goes on to the I/O manager. The
            // classic rule for a routine that lets completion continue: propagate the lower
            // level's pending state (our dispatch routine marked its location pending already,
            // so this sets a bit that is set).
            if (*irp).PendingReturned {
                let sl: *mut IO_STACK_LOCATION = (*irp)
                    .Tail
                    .Overlay
                    .Anonymous2
                    .Anonymous
                    .CurrentStackLocation;
                (*sl).Control |= SL_PENDING_RETURNED;
            }
            STATUS_SUCCESS
        } else {
            // The forwarding call is still in the WSK routine: it completes the IRP when that
            // returns (IoCompleteRequest from our level).
            STATUS_MORE_PROCESSING_REQUIRED
        }
    }
}

/// Forwards `irp` with `start(irp, wsk_buf)` (the WSK routine). See the public callers.
///
/// # Safety
/// As [`super::StreamSocket::receive_forwarded`].
unsafe fn forward<D: ForwardedCompletion>(
    core: &Core,
    irp: NonNull<IRP>,
    mdl: NonNull<MDL>,
    len: usize,
    context: *mut c_void,
    start: impl FnOnce(*mut IRP, *mut WSK_BUF) -> NTSTATUS,
) -> Result<()> {
    let irp = irp.as_ptr();
    // SAFETY: caller contract: a live IRP dispatched to the caller.
    let (location, count) = unsafe { ((*irp).CurrentLocation, (*irp).StackCount) };
    if location <= 1 || location > count {
        // No stack location left for WSK (or none of ours): WSK would write before the packet.
        return Err(Error::InvalidParameter);
    }
    let _guard = core.enter()?;
    // SAFETY: our current location (checked above); WSK reads the WSK_BUF until completion
    // and the location stays ours until then.
    let slot = unsafe { slot(irp) };
    // SAFETY: as above; the next location exists (checked above) and is free.
    unsafe {
        slot.write(ForwardSlot {
            buf: WSK_BUF {
                Mdl: mdl.as_ptr(),
                Offset: 0,
                Length: len,
            },
            owners: AtomicUsize::new(2),
        });
        set_completion_routine(irp, forwarded_completion::<D>, context);
    }
    // SAFETY: the slot's WSK_BUF lives in our stack location until completion.
    let status = start(irp, unsafe { core::ptr::addr_of_mut!((*slot).buf) });
    // SAFETY: the IRP is live until our share is given up below: the routine lets completion
    // continue only as the last owner.
    let owners = unsafe { &(*slot).owners };
    if status < 0 && status != STATUS_PENDING && owners.load(Ordering::Acquire) == 2 {
        // Refused without completing it (a routine returning a final status has completed the
        // IRP by then, so its completion routine would have run): the IRP never left us.
        return Err(check(status).err().unwrap_or(Error::Status(status)));
    }
    if owners.fetch_sub(1, Ordering::AcqRel) == 1 {
        // The routine ran and kept the IRP (STATUS_MORE_PROCESSING_REQUIRED): complete it
        // from our level; our location is marked pending, so the I/O manager sees it so.
        // SAFETY: ours again; completed once.
        unsafe { IofCompleteRequest(irp, IO_NETWORK_INCREMENT) };
    }
    Ok(())
}

impl super::StreamSocket {
    /// Receives into the caller's request: forwards `irp`, an IRP the I/O manager passed
    /// down to the caller, to `WskReceive`, with the `WSK_BUF` (`mdl`, offset 0, `len`
    /// bytes) in the caller's current stack location's `Parameters`, and an
    /// `IoSetCompletionRoutine` routine in the next location that calls `D::done(context,
    /// status, bytes)` and lets completion continue to the I/O manager, with WSK's
    /// `IoStatus` (Status, and Information = bytes received; `Ok(0)` semantics as
    /// [`super::StreamSocket::receive`]). Allocates nothing. The socket's rundown is held for
    /// the call only: closing the socket completes a pending forwarded IRP with
    /// `STATUS_CANCELLED`, and `IoCancelIrp` cancels it through the provider (WSK owns its
    /// cancellation while it holds it: the IRP must carry no cancel routine of the caller).
    ///
    /// `Ok(())`: the IRP is WSK's or already completed; the caller must not touch it again.
    /// `Err`: not started, the IRP is still the caller's and `D::done` is not called:
    /// `STATUS_INVALID_HANDLE` (close began), `STATUS_INVALID_PARAMETER` (no free stack
    /// location below the caller's), `STATUS_NOT_IMPLEMENTED`, or the status of a WSK routine
    /// that refused the IRP without completing it.
    ///
    /// IRQL <= DISPATCH_LEVEL.
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    ///
    /// # Safety
    /// `irp` is live, was dispatched to the caller by the I/O manager, is owned by the caller
    /// (no cancel routine of the caller set), has a free next stack location, and the caller
    /// has marked it pending (`IoMarkIrpPending`) and will return `STATUS_PENDING` from its
    /// dispatch routine. `mdl` describes at least `len` bytes locked until the IRP completes
    /// (the I/O manager's `Irp->MdlAddress` of a direct-I/O request). The caller's current
    /// stack location's `Parameters` are no longer read by the caller once this is called.
    /// `context` is valid until `D::done` ran (see the module documentation).
    pub unsafe fn receive_forwarded<D: ForwardedCompletion>(
        &self,
        irp: NonNull<IRP>,
        mdl: NonNull<MDL>,
        len: usize,
        wait_all: bool,
        context: *mut c_void,
    ) -> Result<()> {
        let receive = self.dispatch().WskReceive.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        let flags = if wait_all {
            wsk_sys::WSK_FLAG_WAITALL
        } else {
            0
        };
        // SAFETY: caller contract; open socket (inside the rundown); the WSK_BUF lives in the
        // caller's stack location until completion.
        unsafe {
            forward::<D>(&self.core, irp, mdl, len, context, |irp, b| {
                receive(raw, b, flags, irp)
            })
        }
    }

    /// Sends the caller's request: as [`super::StreamSocket::receive_forwarded`] with
    /// `WskSend` (no flags); Information = bytes sent (WSK completes a send when all bytes
    /// are sent). Allocates nothing. IRQL <= DISPATCH_LEVEL.
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
    ///
    /// # Safety
    /// As [`super::StreamSocket::receive_forwarded`].
    pub unsafe fn send_forwarded<D: ForwardedCompletion>(
        &self,
        irp: NonNull<IRP>,
        mdl: NonNull<MDL>,
        len: usize,
        context: *mut c_void,
    ) -> Result<()> {
        let send = self.dispatch().WskSend.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        // SAFETY: as receive_forwarded.
        unsafe {
            forward::<D>(&self.core, irp, mdl, len, context, |irp, b| {
                send(raw, b, 0, irp)
            })
        }
    }
}
