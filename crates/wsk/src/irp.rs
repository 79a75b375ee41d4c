//! IRPs this crate allocates, and the inline WDM routines that handle them
//! (`IoGetNextIrpStackLocation`, `IoSetCompletionRoutine`), written over windows-sys's real
//! `IRP` / `IO_STACK_LOCATION` layouts.

use core::ffi::c_void;
use core::ptr::NonNull;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IO_STACK_LOCATION, IRP, KEVENT};
use windows_sys::Wdk::System::SystemServices::{
    IoAllocateIrp, IoCancelIrp, IoFreeIrp, IoReuseIrp, KeInitializeEvent, KeResetEvent,
    KeWaitForSingleObject,
};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_TIMEOUT, STATUS_UNSUCCESSFUL};

use crate::error::{Error, Result};

/// The real signature of an IoCompletion routine
/// (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nc-wdm-io_completion_routine>).
/// windows-sys's `PIO_COMPLETION_ROUTINE` is declared without parameters, so this crate
/// stores its routines through this type.
pub type CompletionRoutine =
    unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP, *mut c_void) -> NTSTATUS;

const SL_INVOKE_ON_CANCEL: u8 = 0x20;
const SL_INVOKE_ON_SUCCESS: u8 = 0x40;
const SL_INVOKE_ON_ERROR: u8 = 0x80;

/// `IoGetNextIrpStackLocation`.
///
/// # Safety
/// `irp` is a live IRP with a stack location below the current one.
#[inline]
pub unsafe fn next_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: caller contract; CurrentStackLocation points one past the caller's location.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation
            .sub(1)
    }
}

/// `IoSetCompletionRoutine(Irp, Routine, Context, TRUE, TRUE, TRUE)`: sets the routine in the
/// next stack location, invoked on success, error and cancel.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-iosetcompletionroutine>
///
/// # Safety
/// `irp` is a live IRP this driver owns, with a next stack location.
#[inline]
pub unsafe fn set_completion_routine(
    irp: *mut IRP,
    routine: CompletionRoutine,
    context: *mut c_void,
) {
    // SAFETY: caller contract.
    unsafe {
        let sl = next_stack_location(irp);
        // SAFETY (transmute): both are non-null `extern "system"` function pointers; the
        // callee is invoked by the I/O manager with the real three-argument signature.
        (*sl).CompletionRoutine = Some(core::mem::transmute::<
            CompletionRoutine,
            unsafe extern "system" fn() -> NTSTATUS,
        >(routine));
        (*sl).Context = context;
        (*sl).Control = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
    }
}

/// An IRP allocated by this driver with `IoAllocateIrp(1, FALSE)`, freed with `IoFreeIrp`.
///
/// The WSK provider owns it between a dispatch call and its completion routine; this type's
/// users guarantee that (every operation waits for, or is handed, the completion before the
/// IRP is reused or dropped).
pub struct OwnedIrp(NonNull<IRP>);

// SAFETY: an IRP is a kernel object usable from any thread.
unsafe impl Send for OwnedIrp {}

impl OwnedIrp {
    /// `IoAllocateIrp(1, FALSE)`. IRQL <= DISPATCH_LEVEL.
    /// Errors: `STATUS_INSUFFICIENT_RESOURCES`.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateirp>
    pub fn allocate() -> Result<Self> {
        // SAFETY: plain allocation call.
        let p = unsafe { IoAllocateIrp(1, false) };
        NonNull::new(p)
            .map(OwnedIrp)
            .ok_or(Error::InsufficientResources)
    }

    /// The raw IRP.
    pub fn as_ptr(&self) -> *mut IRP {
        self.0.as_ptr()
    }

    /// `IoReuseIrp(Irp, STATUS_UNSUCCESSFUL)`: readies a completed IRP for the next
    /// operation. Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-ioreuseirp>
    pub fn reuse(&mut self) {
        // SAFETY: &mut self: no operation owns the IRP now.
        unsafe { IoReuseIrp(self.as_ptr(), STATUS_UNSUCCESSFUL) };
    }

    /// `IoStatus.Status` and `IoStatus.Information` after completion.
    pub fn io_status(&self) -> (NTSTATUS, usize) {
        // SAFETY: live IRP; read after its completion routine ran.
        unsafe {
            let s = &(*self.as_ptr()).IoStatus;
            (s.Anonymous.Status, s.Information)
        }
    }

    /// Gives up ownership (the completion routine frees it).
    pub fn into_raw(self) -> *mut IRP {
        let p = self.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Rebuilds from [`OwnedIrp::into_raw`].
    ///
    /// # Safety
    /// `p` came from `into_raw` and is not owned elsewhere.
    pub unsafe fn from_raw(p: *mut IRP) -> Self {
        // SAFETY: caller contract.
        OwnedIrp(unsafe { NonNull::new_unchecked(p) })
    }
}

impl Drop for OwnedIrp {
    fn drop(&mut self) {
        // SAFETY: owned IRP no operation holds (see the type's contract).
        unsafe { IoFreeIrp(self.as_ptr()) };
    }
}

/// A synchronous-wait block: a KEVENT signalled by the IRP's completion routine. Lives in
/// nonpaged pool, since the completion routine touches it at DISPATCH_LEVEL.
#[repr(C)]
pub(crate) struct SyncWait {
    event: KEVENT,
}

/// Completion routine of synchronous operations: signals the waiter's event and stops
/// completion (`STATUS_MORE_PROCESSING_REQUIRED`), so the waiter keeps the IRP.
unsafe extern "system" fn sync_completion(
    _dev: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: context is the SyncWait the waiter keeps alive until this routine has run.
    unsafe {
        windows_sys::Wdk::System::SystemServices::KeSetEvent(context as *mut KEVENT, 0, false)
    };
    windows_sys::Win32::Foundation::STATUS_MORE_PROCESSING_REQUIRED
}

impl SyncWait {
    pub(crate) fn new() -> Self {
        // SAFETY: KEVENT is plain data; KeInitializeEvent below gives it its state.
        let mut w = SyncWait {
            event: unsafe { core::mem::zeroed() },
        };
        // SAFETY: initialising storage we own. NotificationEvent = 0.
        unsafe { KeInitializeEvent(&mut w.event, 0, false) };
        w
    }

    /// Arms the IRP: resets the event and sets the completion routine with this block as
    /// context. The block must not move until [`SyncWait::wait`] returns.
    pub(crate) fn arm(&mut self, irp: &mut OwnedIrp) {
        // SAFETY: our event; our IRP, not yet given to the provider.
        unsafe {
            KeResetEvent(&mut self.event);
            set_completion_routine(
                irp.as_ptr(),
                sync_completion,
                self as *mut Self as *mut c_void,
            );
        }
    }

    /// Whether the completion routine has already signalled: a zero-timeout wait on the
    /// notification event (which does not reset it). PASSIVE_LEVEL (any IRQL <= DISPATCH_LEVEL
    /// is allowed for a zero timeout).
    pub(crate) fn completed(&mut self) -> bool {
        let zero: i64 = 0;
        // SAFETY: our event, alive across the call; a zero timeout never blocks.
        let s = unsafe {
            KeWaitForSingleObject(
                &mut self.event as *mut KEVENT as *const c_void,
                0,
                0,
                false,
                &zero,
            )
        };
        s != STATUS_TIMEOUT
    }

    /// Waits for the completion routine after the dispatch call returned `dispatch_status`.
    /// With a timeout (100 ns units), an expired wait cancels the IRP with `IoCancelIrp`,
    /// waits for its completion (which the provider must deliver), and reports
    /// `STATUS_IO_TIMEOUT` unless the operation completed anyway. PASSIVE_LEVEL.
    ///
    /// No use-after-free: the IRP and this block stay owned by the waiting thread until the
    /// completion routine has signalled, and the routine touches nothing else.
    pub(crate) fn wait(
        &mut self,
        irp: &OwnedIrp,
        timeout_100ns: Option<u64>,
    ) -> (NTSTATUS, usize, bool) {
        let event = &mut self.event as *mut KEVENT as *const c_void;
        let mut timed_out = false;
        if let Some(t) = timeout_100ns {
            let rel: i64 = -(t.min(i64::MAX as u64) as i64);
            // SAFETY: our event, alive across the wait; PASSIVE_LEVEL checked by callers.
            let s = unsafe { KeWaitForSingleObject(event, 0, 0, false, &rel) };
            if s == STATUS_TIMEOUT {
                timed_out = true;
                // SAFETY: the IRP stays allocated until we free or reuse it, which happens
                // only after its completion routine has signalled below.
                unsafe { IoCancelIrp(irp.as_ptr()) };
            }
        }
        if timed_out || timeout_100ns.is_none() {
            // SAFETY: as above; the provider completes every IRP it accepted, and a cancelled
            // one promptly, so this wait ends.
            unsafe { KeWaitForSingleObject(event, 0, 0, false, core::ptr::null()) };
        }
        let (status, info) = irp.io_status();
        (status, info, timed_out)
    }
}
