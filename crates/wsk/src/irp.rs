//! IRPs this crate allocates, and the inline WDM routines that handle them
//! (`IoGetNextIrpStackLocation`, `IoSetCompletionRoutine`), written over windows-sys's real
//! `IRP` / `IO_STACK_LOCATION` layouts.

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

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

/// `IoGetCurrentIrpStackLocation`: the caller's own stack location of `irp`. IRQL: any.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-iogetcurrentirpstacklocation>
///
/// # Safety
/// `irp` is a live IRP the caller holds at its level (dispatched to it, or its own).
#[inline]
pub unsafe fn current_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: caller contract: a live IRP's header is readable.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation
    }
}

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

// ---------------------------------------------------------------------------------------
// Completion routines that may run after their caller returned (issue 12, defect 7)
// ---------------------------------------------------------------------------------------

/// `IoSetCompletionRoutineEx`'s signature.
type SetCompletionRoutineExFn = unsafe extern "system" fn(
    *mut DEVICE_OBJECT,
    *mut IRP,
    Option<CompletionRoutine>,
    *mut c_void,
    bool,
    bool,
    bool,
) -> NTSTATUS;

/// The routine [`protect_completions`] resolved (0: not in use).
static SET_COMPLETION_EX: AtomicUsize = AtomicUsize::new(0);
/// The driver's device object it references.
static COMPLETION_DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(core::ptr::null_mut());

// Evaluated at compile time: an out-of-range index fails the build, never the driver.
#[allow(clippy::indexing_slicing)]
static SET_COMPLETION_EX_NAME: [u16; 24] = {
    let s = b"IoSetCompletionRoutineEx";
    let mut w = [0u16; 24];
    let mut i = 0;
    while i < s.len() {
        w[i] = s[i] as u16;
        i += 1;
    }
    w
};

/// Keeps the driver loaded while any asynchronous completion routine of this crate is
/// outstanding: from now on those IRPs (asynchronous sends and receives, asynchronous
/// accepts, the close of a socket dropped above PASSIVE_LEVEL) get their routine with
/// `IoSetCompletionRoutineEx(device, ...)`, which references `device` until the routine has
/// run. `IoSetCompletionRoutine` "can be used only by drivers that can guarantee they will
/// not be unloaded before their completion routines run"; synchronous calls keep using it,
/// since their caller waits inside the driver until the routine ran.
///
/// `IoSetCompletionRoutineEx` is resolved at run time (`MmGetSystemRoutineAddress`), as
/// [`crate::pool::resolve`] does for `ExAllocatePool2`. Returns whether it is in use; when
/// it is not found the crate falls back to `IoSetCompletionRoutine` (the driver must then
/// outlive its completions, which `WskDeregister` waiting for every socket's close makes
/// likely but not certain). On Wine 8.0 `IoSetCompletionRoutineEx` is exported as a stub
/// (unimplemented): do not call this there (the Windows lane does not); that
/// `MmGetSystemRoutineAddress` returns such a stub, and what calling it does, was not
/// observed here. Call it once from `DriverEntry`, before the first socket, with a device
/// object of this driver that lives until unload. PASSIVE_LEVEL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-iosetcompletionroutineex>
pub fn protect_completions(device: *mut DEVICE_OBJECT) -> bool {
    if device.is_null() || nt_imports::current_irql() != nt_imports::PASSIVE_LEVEL {
        return false;
    }
    let name = windows_sys::Win32::Foundation::UNICODE_STRING {
        Length: (SET_COMPLETION_EX_NAME.len() * 2) as u16,
        MaximumLength: (SET_COMPLETION_EX_NAME.len() * 2) as u16,
        Buffer: SET_COMPLETION_EX_NAME.as_ptr() as *mut u16,
    };
    // SAFETY: a valid UNICODE_STRING; PASSIVE_LEVEL checked above.
    let p = unsafe { nt_imports::MmGetSystemRoutineAddress(&name) };
    COMPLETION_DEVICE.store(device, Ordering::Release);
    SET_COMPLETION_EX.store(p as usize, Ordering::Release);
    !p.is_null()
}

/// Stops using `IoSetCompletionRoutineEx` (before the device object goes away, once no
/// asynchronous operation is outstanding). PASSIVE_LEVEL.
pub fn unprotect_completions() {
    SET_COMPLETION_EX.store(0, Ordering::Release);
    COMPLETION_DEVICE.store(core::ptr::null_mut(), Ordering::Release);
}

/// Sets the completion routine of an IRP whose routine may run after the caller returned:
/// `IoSetCompletionRoutineEx` when [`protect_completions`] enabled it, else
/// `IoSetCompletionRoutine`. Invoked on success, error and cancel. IRQL <= DISPATCH_LEVEL.
/// Errors: `STATUS_INSUFFICIENT_RESOURCES` (`IoSetCompletionRoutineEx` could not allocate
/// its context; no routine is set and the IRP must not be sent).
///
/// # Safety
/// As [`set_completion_routine`].
pub(crate) unsafe fn set_completion_routine_async(
    irp: *mut IRP,
    routine: CompletionRoutine,
    context: *mut c_void,
) -> Result<()> {
    let f = SET_COMPLETION_EX.load(Ordering::Acquire);
    let device = COMPLETION_DEVICE.load(Ordering::Acquire);
    if f == 0 || device.is_null() {
        // SAFETY: caller contract.
        unsafe { set_completion_routine(irp, routine, context) };
        return Ok(());
    }
    // SAFETY: the address MmGetSystemRoutineAddress returned for IoSetCompletionRoutineEx.
    let f: SetCompletionRoutineExFn = unsafe { core::mem::transmute(f) };
    // SAFETY: caller contract; the driver's live device object.
    let status = unsafe { f(device, irp, Some(routine), context, true, true, true) };
    if status < 0 {
        return Err(crate::error::check(status)
            .err()
            .unwrap_or(Error::InsufficientResources));
    }
    Ok(())
}
