//! Forwarding a caller's IRP to WSK: the third origin of the IRP passed to a WSK function in
//! "Using IRPs with Winsock Kernel Functions"
//! (<https://learn.microsoft.com/en-us/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>):
//! "an IRP that was passed down to the WSK application by the I/O manager", provided it has
//! at least one stack location left for the WSK subsystem. The operation then allocates
//! nothing: no IRP, no operation block, and no `IoSetCompletionRoutineEx` context.
//!
//! The `WSK_BUF`, which WSK may read until the IRP completes, lives in the caller's own
//! current stack location's `Parameters` (the first 24 bytes on x64), with the ownership
//! count that decides who completes the IRP towards the I/O manager in the `WSK_BUF`'s
//! padding ([`ForwardSlot`]). The lower level (WSK) only uses its own location, the next
//! one. Not `Tail.Overlay.DriverContext`: that belongs to whichever driver holds the IRP,
//! which is WSK while the request is pending.
//!
//! **The location is given back as it was.** The I/O manager filled that location before
//! dispatch, and whoever completes the request above our level may read it again: Wine
//! 8.0's I/O manager has its own completion routine in the caller's location, and with the
//! `WSK_BUF` still there the first forwarded SEND of the Wine lane killed winedevice.exe
//! ("wine client error: partial write 94208"); with the write-back below the lane passes with
//! forwarding on (observed in the Wine lane). Windows' I/O manager is not documented to read
//! it after dispatch; nobody observed whether it does. So once WSK has completed the IRP (it
//! reads the `WSK_BUF` no more), the last owner zeroes the slot's bytes and lets the caller
//! write its original parameters back ([`ForwardedCompletion::restore`]) before completion
//! continues upward: the completion routine when it lets completion continue, the forwarding
//! call before its `IofCompleteRequest` when the routine returned
//! `STATUS_MORE_PROCESSING_REQUIRED`, and before a refusal is returned. On x64 the last 8
//! bytes (`Parameters.DeviceIoControl.Type3InputBuffer`, which an I/O manager may fill with
//! the caller's input pointer for any transfer method) are never written. ntsim's I/O
//! manager checks this for every request it built (`Rule::StackLocationClobbered`;
//! tests/forwarded_stack_location.rs).
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
use core::sync::atomic::{AtomicU32, Ordering};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IO_STACK_LOCATION, IRP, MDL};
use windows_sys::Wdk::System::SystemServices::IofCompleteRequest;
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING, STATUS_SUCCESS,
};
use wsk_sys::WSK_BUF;

use super::base::Core;
use crate::error::{check, Error, Result};
use crate::irp::{current_stack_location, set_completion_routine};

const SL_PENDING_RETURNED: u8 = 0x01;
/// `IO_NETWORK_INCREMENT` (wdm.h): the priority boost of a completed network request.
const IO_NETWORK_INCREMENT: i8 = 2;

/// What a forwarded request's owner learns when WSK completes it, and how its stack location
/// is given back.
///
/// # Safety
/// [`ForwardedCompletion::done`] runs in an I/O completion routine (IRQL <= DISPATCH_LEVEL,
/// any thread), once per forwarded IRP, before the IRP continues to the I/O manager; it must
/// not complete, free or otherwise touch the IRP, and `context` must be valid then.
/// [`ForwardedCompletion::restore`] writes only the location's `Parameters`.
pub unsafe trait ForwardedCompletion {
    /// WSK completed the request with `status` and `IoStatus.Information` = `information`
    /// (bytes sent or received). `context` is the pointer given to the forwarding call.
    ///
    /// # Safety
    /// Called only by the completion routine, with the forwarding call's `context`.
    unsafe fn done(context: *mut c_void, status: NTSTATUS, information: usize);

    /// Writes back the `Parameters` the I/O manager had put in the caller's stack location
    /// `location` before dispatch (for an `IRP_MJ_DEVICE_CONTROL`: OutputBufferLength,
    /// InputBufferLength, IoControlCode). `len` is the byte count given to the forwarding
    /// call. On entry the first 24 bytes of `Parameters` are zero (x64; 16 on x86) and, on
    /// x64, the last 8 (`Type3InputBuffer`) are as the I/O manager left them. Called once per
    /// forwarded IRP, after WSK completed or refused it, before completion continues past
    /// the caller's level (or the refusal is returned). IRQL <= DISPATCH_LEVEL; cannot fail.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_stack_location>
    ///
    /// # Safety
    /// Called only by the forwarding code, with the caller's live current stack location.
    unsafe fn restore(location: *mut IO_STACK_LOCATION, len: usize);
}

/// The forwarding state kept in the caller's current stack location's `Parameters`: the
/// `WSK_BUF` WSK reads (this struct has `WSK_BUF`'s field offsets; WSK gets a pointer to it),
/// and the ownership count of two (the forwarding call and the completion routine; the last
/// one completes the IRP towards the I/O manager). On x64 the count lives in the 4 bytes of
/// `WSK_BUF` padding after `Offset`, which WSK does not read, so the slot ends at byte 24
/// and `Parameters.DeviceIoControl.Type3InputBuffer` (bytes 24..32) is never touched. On x86
/// (no padding in `WSK_BUF`) the count follows it, over Type3InputBuffer; this project does
/// not build x86.
#[repr(C)]
struct ForwardSlot {
    mdl: *mut MDL,
    offset: u32,
    #[cfg(target_pointer_width = "64")]
    owners: AtomicU32,
    length: usize,
    #[cfg(not(target_pointer_width = "64"))]
    owners: AtomicU32,
}

/// Bytes of an `IO_STACK_LOCATION`'s `Parameters` union: 4 pointers (wdm.h: the largest
/// member, e.g. `Parameters.Others.Argument1..4`).
const PARAMETERS_BYTES: usize = 4 * core::mem::size_of::<usize>();

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ForwardSlot>() <= PARAMETERS_BYTES);
    assert!(align_of::<ForwardSlot>() <= align_of::<usize>());
    assert!(offset_of!(ForwardSlot, mdl) == offset_of!(WSK_BUF, Mdl));
    assert!(offset_of!(ForwardSlot, offset) == offset_of!(WSK_BUF, Offset));
    assert!(offset_of!(ForwardSlot, length) == offset_of!(WSK_BUF, Length));
    #[cfg(target_pointer_width = "64")]
    assert!(size_of::<ForwardSlot>() == 24 && size_of::<WSK_BUF>() == 24);
};

/// The slot in `irp`'s current stack location.
///
/// # Safety
/// `irp` is live and its current location is a real one (not one past the end).
#[inline]
unsafe fn slot(irp: *mut IRP) -> *mut ForwardSlot {
    // SAFETY: caller contract; Parameters is pointer-aligned and PARAMETERS_BYTES long.
    unsafe {
        let sl = current_stack_location(irp);
        core::ptr::addr_of_mut!((*sl).Parameters).cast::<ForwardSlot>()
    }
}

/// Gives the caller's current stack location back as the I/O manager filled it: zeroes the
/// slot's bytes of `Parameters` and calls `D::restore` with the slot's length.
///
/// # Safety
/// As [`slot`]; WSK is done with the `WSK_BUF` (it completed or refused the IRP) and the
/// other owner is done with the count.
#[inline]
unsafe fn give_back<D: ForwardedCompletion>(irp: *mut IRP) {
    // SAFETY: caller contract: the slot is ours alone now. The location is read once: the
    // writes below go through raw pointers the compiler cannot tell apart from the IRP.
    unsafe {
        let location = current_stack_location(irp);
        let slot = core::ptr::addr_of_mut!((*location).Parameters).cast::<ForwardSlot>();
        let len = (*slot).length;
        core::ptr::write_bytes(slot.cast::<u8>(), 0, core::mem::size_of::<ForwardSlot>());
        D::restore(location, len);
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
            // The forwarding call has returned: completion goes on to the I/O manager, with
            // our location as it filled it (WSK is done with the WSK_BUF). The classic rule
            // for a routine that lets completion continue: propagate the lower level's
            // pending state (our dispatch routine marked its location pending already, so
            // this sets a bit that is set).
            give_back::<D>(irp);
            if (*irp).PendingReturned {
                (*current_stack_location(irp)).Control |= SL_PENDING_RETURNED;
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
#[inline(always)]
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
            mdl: mdl.as_ptr(),
            offset: 0,
            owners: AtomicU32::new(2),
            length: len,
        });
        set_completion_routine(irp, forwarded_completion::<D>, context);
    }
    // The slot has WSK_BUF's field offsets (checked above) and lives in our stack location
    // until completion: WSK reads Mdl, Offset and Length through this pointer, never the
    // padding where the count lives.
    let status = start(irp, slot.cast::<WSK_BUF>());
    // SAFETY: the IRP is live until our share is given up below: the routine lets completion
    // continue only as the last owner.
    let owners = unsafe { &(*slot).owners };
    if status < 0 && status != STATUS_PENDING && owners.load(Ordering::Acquire) == 2 {
        // Refused without completing it (a routine returning a final status has completed the
        // IRP by then, so its completion routine would have run): the IRP never left us. Our
        // location goes back as it was before the caller completes the IRP.
        // SAFETY: the IRP is ours; WSK refused it, so it reads no WSK_BUF.
        return Err(unsafe { refused::<D>(irp, status) });
    }
    if owners.fetch_sub(1, Ordering::AcqRel) == 1 {
        // The routine ran and kept the IRP (STATUS_MORE_PROCESSING_REQUIRED): complete it
        // from our level, with our location as the I/O manager filled it; it is marked
        // pending, so the I/O manager sees it so.
        // SAFETY: ours again (WSK completed it: it reads no WSK_BUF); completed once.
        unsafe {
            give_back::<D>(irp);
            IofCompleteRequest(irp, IO_NETWORK_INCREMENT)
        };
    }
    Ok(())
}

/// The refusal path of [`forward`], out of line: gives the location back and maps `status`.
///
/// # Safety
/// As [`give_back`]: WSK refused the IRP without completing it.
#[cold]
#[inline(never)]
unsafe fn refused<D: ForwardedCompletion>(irp: *mut IRP, status: NTSTATUS) -> Error {
    // SAFETY: caller contract.
    unsafe { give_back::<D>(irp) };
    check(status).err().unwrap_or(Error::Status(status))
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
    #[inline(always)]
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
    #[inline(always)]
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
