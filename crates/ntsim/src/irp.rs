//! The I/O manager's IRP routines: `IoAllocateIrp`, `IoFreeIrp`, `IoReuseIrp`, `IoCancelIrp`,
//! `IofCompleteRequest`, with the IRP laid out as Windows lays it out (the `IRP` header from
//! windows-sys followed by `StackCount` `IO_STACK_LOCATION`s) and completion walking the stack
//! locations as Windows does.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IO_STACK_LOCATION, IRP};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_MORE_PROCESSING_REQUIRED};

use crate::irql;
use crate::lookaside::{Freed, Slab};
use crate::verifier::{self, Rule, COUNTERS};

/// `IO_TYPE_IRP`.
pub const IO_TYPE_IRP: i16 = 6;
/// `SL_PENDING_RETURNED`.
pub const SL_PENDING_RETURNED: u8 = 0x01;
/// `SL_INVOKE_ON_CANCEL`.
pub const SL_INVOKE_ON_CANCEL: u8 = 0x20;
/// `SL_INVOKE_ON_SUCCESS`.
pub const SL_INVOKE_ON_SUCCESS: u8 = 0x40;
/// `SL_INVOKE_ON_ERROR`.
pub const SL_INVOKE_ON_ERROR: u8 = 0x80;

/// The real signature of an IoCompletion routine (windows-sys's metadata declares
/// `PIO_COMPLETION_ROUTINE` without parameters).
pub type CompletionRoutine =
    unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP, *mut c_void) -> NTSTATUS;

/// Who allocated an IRP, which decides what happens when completion unwinds past the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `IoAllocateIrp` by a driver: it must stop completion with
    /// `STATUS_MORE_PROCESSING_REQUIRED` and free or reuse the IRP itself.
    Driver,
    /// The emulated I/O manager (a user-mode request): completion ends in I/O completion.
    IoManager,
}

#[derive(Clone, Copy)]
struct Info {
    origin: Origin,
    /// Levels the IRP was passed down (`IoCallDriver`, or the WSK provider taking it) and
    /// not yet unwound by completion: 0 while its allocator holds it. A driver-allocated
    /// IRP goes down one level (to the provider); an I/O-manager IRP goes to the driver and
    /// may be forwarded from there to the provider ("Using IRPs with Winsock Kernel
    /// Functions": an IRP the I/O manager passed down, with a stack location left for WSK).
    depth: u8,
    /// The WSK provider holds it (the last level): passing it down again is a double send.
    at_provider: bool,
    /// An I/O-manager IRP's request (what `iomgr::user` keeps for its I/O completion), as
    /// `Arc::into_raw` gave it; 0 if none.
    request: usize,
}

/// IRPs, from lookaside lists by size (see [`crate::lookaside`]): each slot's header says
/// whether the IRP is live and holds its [`Info`], so the IRP routines check an IRP with an
/// address-range lookup, not a hash table, and a steady state of IRPs allocates nothing.
static IRPS: Mutex<Slab<Info>> = Mutex::new(Slab::new());

fn irps() -> MutexGuard<'static, Slab<Info>> {
    IRPS.lock().unwrap_or_else(|p| p.into_inner())
}

fn irp_size(stack: i8) -> usize {
    std::mem::size_of::<IRP>() + stack.max(0) as usize * std::mem::size_of::<IO_STACK_LOCATION>()
}

/// Initialises an IRP header as `IoInitializeIrp` does: zero the packet, then set Type,
/// Size, StackCount, CurrentLocation = StackCount + 1 and CurrentStackLocation one past the
/// last stack location.
///
/// # Safety
/// `irp` points to `irp_size(stack)` writable bytes.
unsafe fn initialize(irp: *mut IRP, size: usize, stack: i8, allocation_flags: u8) {
    // SAFETY: caller contract.
    unsafe {
        std::ptr::write_bytes(irp.cast::<u8>(), 0, size);
        (*irp).Type = IO_TYPE_IRP;
        (*irp).Size = size as u16;
        (*irp).StackCount = stack;
        (*irp).CurrentLocation = stack + 1;
        (*irp).AllocationFlags = allocation_flags;
        let first = irp.add(1).cast::<IO_STACK_LOCATION>();
        (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation = first.add(stack as usize);
    }
}

/// Allocates an IRP; used by `IoAllocateIrp` and by the emulated I/O manager.
pub(crate) fn allocate(stack: i8, origin: Origin) -> *mut IRP {
    if stack < 1 {
        return std::ptr::null_mut();
    }
    let size = irp_size(stack);
    let info = Info {
        origin,
        depth: 0,
        at_provider: false,
        request: 0,
    };
    let Some(irp) = irps().alloc(size, info) else {
        return std::ptr::null_mut();
    };
    let irp = irp.cast::<IRP>();
    // SAFETY: a fresh slot of `size` bytes, ours until returned. Not zeroed by the slab:
    // `initialize` zeroes the whole packet, as IoInitializeIrp does.
    unsafe { initialize(irp, size, stack, 0) };
    if origin == Origin::Driver {
        COUNTERS.irp_allocations.fetch_add(1, Ordering::SeqCst);
    }
    COUNTERS.live_irps.fetch_add(1, Ordering::SeqCst);
    irp
}

/// The IRP's origin, if it is live.
pub(crate) fn origin(irp: *const IRP) -> Option<Origin> {
    irps().live(irp as usize).map(|i| i.origin)
}

/// Records an I/O-manager IRP's request (`Arc::into_raw`), for [`take_request`] at I/O
/// completion. False if the IRP is not live.
pub(crate) fn set_request(irp: *const IRP, request: usize) -> bool {
    match irps().live(irp as usize) {
        Some(i) => {
            i.request = request;
            true
        }
        None => false,
    }
}

/// Takes back what [`set_request`] recorded (0 if nothing, or if the IRP is not live).
pub(crate) fn take_request(irp: *const IRP) -> usize {
    irps()
        .live(irp as usize)
        .map_or(0, |i| std::mem::take(&mut i.request))
}

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` is live.
pub unsafe fn current_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: caller contract.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation
    }
}

/// Passes an IRP down one level, as `IoCallDriver` does before calling the next driver and as
/// the WSK provider does when it takes a client's IRP (`to_provider`):
/// `IoSetNextIrpStackLocation`, and the IRP now belongs to the lower level until it is
/// completed. Returns false (and records a violation) if the IRP is not live, is already with
/// the provider, is a driver-allocated IRP already passed down, or has no stack location left
/// (on Windows the lower level would write its stack location before the packet: pool
/// corruption).
pub(crate) fn pass_down(irp: *mut IRP, who: &str, to_provider: bool) -> bool {
    {
        let mut g = irps();
        let Some(info) = g.live(irp as usize) else {
            drop(g);
            verifier::violation(Rule::DoubleFree, format!("{who}: IRP {irp:p} is not live"));
            return false;
        };
        if info.at_provider || (info.depth > 0 && info.origin == Origin::Driver) {
            drop(g);
            verifier::violation(
                Rule::MultipleIrpComplete,
                format!("{who}: IRP {irp:p} is already owned by a lower driver"),
            );
            return false;
        }
        info.depth += 1;
        info.at_provider = to_provider;
    }
    // SAFETY: live IRP (checked above).
    unsafe {
        if (*irp).CurrentLocation <= 1 {
            verifier::violation(
                Rule::NoMoreStackLocations,
                format!("{who}: IRP {irp:p} has no stack location left"),
            );
            if let Some(i) = irps().live(irp as usize) {
                i.depth -= 1;
                i.at_provider = false;
            }
            return false;
        }
        (*irp).CurrentLocation -= 1;
        let sl = &mut (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation;
        *sl = sl.sub(1);
    }
    true
}

/// One level of a completing IRP unwound (its completion stepped up one stack location).
fn unwound(irp: *mut IRP) {
    if let Some(i) = irps().live(irp as usize) {
        i.depth = i.depth.saturating_sub(1);
    }
}

/// `IoMarkIrpPending`: sets SL_PENDING_RETURNED in the current stack location.
///
/// An IRP that has no current stack location -- already completed back past its top
/// location, or never passed down -- has its "current" location one past the end of the
/// packet: marking it would write past the IRP (heap corruption on the host, pool corruption
/// on Windows). That is recorded as [`Rule::IrpTouchedAfterCompletion`] and nothing is written.
///
/// # Safety
/// `irp` is live.
pub unsafe fn mark_pending(irp: *mut IRP) {
    // SAFETY: caller contract: a live IRP's header is readable.
    let (location, count) = unsafe { ((*irp).CurrentLocation, (*irp).StackCount) };
    if location < 1 || location > count {
        verifier::violation(
            Rule::IrpTouchedAfterCompletion,
            format!(
                "IoMarkIrpPending({irp:p}) with CurrentLocation {location} of {count}: the IRP is not at a stack location (completed already, or never passed down); the write would land past the packet"
            ),
        );
        return;
    }
    // SAFETY: caller contract; the current location is inside the packet (checked above).
    unsafe { (*current_stack_location(irp)).Control |= SL_PENDING_RETURNED };
}

/// Sets `IoStatus` and completes the IRP at DISPATCH_LEVEL, as a provider completing from its
/// DPC-level path would.
pub(crate) fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) {
    crate::sched::point(crate::sched::Point::Complete);
    // SAFETY: the caller (the provider) owns the pending IRP.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = status;
        (*irp).IoStatus.Information = information;
    }
    irql::with_raised(irql::DISPATCH_LEVEL.max(irql::current()), || {
        // SAFETY: as above.
        unsafe { IofCompleteRequest(irp, 0) }
    });
}

/// `IoSetCancelRoutine`: atomically exchanges the IRP's cancel routine.
///
/// # Safety
/// `irp` is live.
pub unsafe fn set_cancel_routine(irp: *mut IRP, routine: *mut c_void) -> *mut c_void {
    // SAFETY: CancelRoutine is a pointer-sized, aligned field of a live IRP.
    let slot = unsafe { AtomicPtr::from_ptr(std::ptr::addr_of_mut!((*irp).CancelRoutine).cast()) };
    slot.swap(routine, Ordering::SeqCst)
}

/// `IoAllocateIrp`.
#[no_mangle]
pub extern "system" fn IoAllocateIrp(stack_size: i8, _charge_quota: bool) -> *mut IRP {
    if irql::current() > irql::DISPATCH_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            "IoAllocateIrp above DISPATCH_LEVEL",
        );
    }
    if crate::config::take_irp_failure()
        || crate::faults::should_fail(crate::faults::AllocKind::Irp, String::new)
    {
        return std::ptr::null_mut();
    }
    allocate(stack_size, Origin::Driver)
}

/// Frees an IRP of any origin (the I/O manager uses this for its own IRPs).
pub(crate) fn free(irp: *const IRP, who: &str) {
    // Poisons the packet and parks its slot: a later use of this IRP finds it not live
    // (and, under ASan, unaddressable).
    let freed = irps().free_if(irp as usize, |i| i.depth == 0);
    match freed {
        Freed::NotLive => {
            verifier::violation(Rule::DoubleFree, format!("{who}({irp:p}): not a live IRP"))
        }
        Freed::Refused => verifier::violation(
            Rule::IrpFreedWhilePending,
            format!("{who}({irp:p}) while a lower driver still owns it"),
        ),
        Freed::Done(_) => {
            COUNTERS.live_irps.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// `IoFreeIrp`.
#[no_mangle]
pub extern "system" fn IoFreeIrp(irp: *const IRP) {
    free(irp, "IoFreeIrp")
}

/// `IoReuseIrp`: reinitialises an IRP for reuse, keeping its allocation flags, and sets
/// `IoStatus.Status`.
///
/// # Safety
/// `irp` is a live IRP the caller holds.
#[no_mangle]
pub unsafe extern "system" fn IoReuseIrp(irp: *mut IRP, status: NTSTATUS) {
    let size = {
        let mut g = irps();
        match g.get(irp as usize).filter(|h| h.live) {
            None => {
                drop(g);
                verifier::violation(
                    Rule::DoubleFree,
                    format!("IoReuseIrp({irp:p}): not a live IRP"),
                );
                return;
            }
            Some(h) if h.data.depth > 0 => {
                drop(g);
                verifier::violation(
                    Rule::IrpReusedWhilePending,
                    format!("IoReuseIrp({irp:p}) while a lower driver still owns it"),
                );
                return;
            }
            Some(h) => h.size,
        }
    };
    // SAFETY: live IRP held by the caller.
    unsafe {
        let stack = (*irp).StackCount;
        let flags = (*irp).AllocationFlags;
        initialize(irp, size, stack, flags);
        (*irp).IoStatus.Anonymous.Status = status;
    }
}

/// `IoCancelIrp`: sets `Cancel`, and calls the cancel routine (with the cancel spin lock
/// held, which the routine releases) if one is set. Returns whether a routine was called.
///
/// # Safety
/// `irp` is a live IRP; keeping it alive during the call is the caller's duty.
#[no_mangle]
pub unsafe extern "system" fn IoCancelIrp(irp: *const IRP) -> bool {
    let irp = irp as *mut IRP;
    // "IRQL: <= DISPATCH_LEVEL" (nf-wdm-iocancelirp).
    irql::require_at_most("IoCancelIrp", irql::DISPATCH_LEVEL);
    if origin(irp).is_none() {
        verifier::violation(
            Rule::DoubleFree,
            format!("IoCancelIrp({irp:p}): not a live IRP"),
        );
        return false;
    }
    let mut old = 0u8;
    // SAFETY: valid out pointer.
    unsafe { crate::irql::IoAcquireCancelSpinLock(&mut old) };
    // SAFETY: live IRP.
    unsafe { (*irp).Cancel = true };
    // SAFETY: live IRP.
    let routine = unsafe { set_cancel_routine(irp, std::ptr::null_mut()) };
    if routine.is_null() {
        crate::irql::IoReleaseCancelSpinLock(old);
        return false;
    }
    // SAFETY: live IRP; the routine pointer was stored as a DRIVER_CANCEL.
    unsafe {
        (*irp).CancelIrql = old;
        let dev = if (*irp).CurrentLocation <= (*irp).StackCount {
            (*current_stack_location(irp)).DeviceObject
        } else {
            std::ptr::null_mut()
        };
        let f: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP) =
            std::mem::transmute(routine);
        f(dev, irp);
    }
    true
}

/// `IofCompleteRequest` calls under way, nested ones included.
static COMPLETING: AtomicUsize = AtomicUsize::new(0);

/// Counts one `IofCompleteRequest` for as long as it runs.
struct Completing;

impl Completing {
    fn begin() -> Completing {
        COMPLETING.fetch_add(1, Ordering::SeqCst);
        Completing
    }
}

impl Drop for Completing {
    fn drop(&mut self) {
        COMPLETING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `IofCompleteRequest` calls under way on any thread (a nested call counts again).
///
/// A request can reach its requester before the call that completed it has returned: in
/// ntsim the I/O manager queues the user's completion (event, completion port packet) while
/// the completion routines below are still on the stack, and `IoSetCompletionRoutineEx`
/// frees its `IoCx` context only after the driver's routine returned (the order its wrapper
/// must have on Windows too, since it runs the routine first; not observed there). Counters
/// read as soon as a requester sees its completion can therefore still show that context.
pub fn completions_in_progress() -> usize {
    COMPLETING.load(Ordering::SeqCst)
}

/// Waits until no `IofCompleteRequest` call is under way, at most `timeout`; true if none
/// is. For reading the kernel's counters at a quiet moment (no new completion must be
/// started meanwhile for this to mean anything); yields between checks.
pub fn wait_for_completions(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if completions_in_progress() == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

/// `IofCompleteRequest`: walks the stack locations from the current one upwards, setting
/// `PendingReturned` from each location's `SL_PENDING_RETURNED`, calling each completion
/// routine whose `SL_INVOKE_ON_*` bits match the status (and `Cancel`), propagating
/// IoMarkIrpPending where no routine runs, and stopping when a routine returns
/// `STATUS_MORE_PROCESSING_REQUIRED`. An I/O-manager IRP that unwinds past the top gets I/O
/// completion; a driver-allocated one breaks a rule.
///
/// # Safety
/// `irp` is a live IRP owned by the caller's level.
#[no_mangle]
pub unsafe extern "system" fn IofCompleteRequest(irp: *const IRP, _boost: i8) {
    let irp = irp as *mut IRP;
    // "IRQL: <= DISPATCH_LEVEL" (nf-wdm-iocompleterequest).
    irql::require_at_most("IoCompleteRequest", irql::DISPATCH_LEVEL);
    let _completing = Completing::begin();
    let origin = {
        let mut g = irps();
        let Some(info) = g.live(irp as usize) else {
            drop(g);
            verifier::violation(
                Rule::MultipleIrpComplete,
                format!("IoCompleteRequest({irp:p}): not a live IRP"),
            );
            return;
        };
        if info.depth == 0 {
            drop(g);
            verifier::violation(
                Rule::MultipleIrpComplete,
                format!("IoCompleteRequest({irp:p}) on an IRP that is not pending below"),
            );
            return;
        }
        // Completed by its lowest holder: whoever gets it back from a completion routine
        // (STATUS_MORE_PROCESSING_REQUIRED) holds it at that level.
        info.at_provider = false;
        // The loop below unwinds its first level under this lock already (one lookup
        // fewer): it runs at least once exactly when the IRP is at a stack location.
        // SAFETY: live IRP (checked above); its header is readable.
        let at_location = unsafe { (*irp).CurrentLocation <= (*irp).StackCount };
        if at_location {
            info.depth = info.depth.saturating_sub(1);
        }
        (info.origin, at_location)
    };
    let (origin, mut first_unwound) = origin;
    // SAFETY: live IRP, now being completed by its owner.
    unsafe {
        if !set_cancel_routine(irp, std::ptr::null_mut()).is_null() {
            verifier::violation(
                Rule::CompleteWithCancelRoutine,
                format!("IRP {irp:p} completed with a cancel routine still set"),
            );
        }
        let status = (*irp).IoStatus.Anonymous.Status;
        while (*irp).CurrentLocation <= (*irp).StackCount {
            let sl = current_stack_location(irp);
            (*irp).PendingReturned = (*sl).Control & SL_PENDING_RETURNED != 0;
            // IoSkipCurrentIrpStackLocation: step up to the caller's location.
            if !std::mem::take(&mut first_unwound) {
                unwound(irp);
            }
            (*irp).CurrentLocation += 1;
            (*irp)
                .Tail
                .Overlay
                .Anonymous2
                .Anonymous
                .CurrentStackLocation = sl.add(1);
            let control = (*sl).Control;
            let routine = (*sl).CompletionRoutine;
            let context = (*sl).Context;
            (*sl).Control = 0;
            (*sl).CompletionRoutine = None;
            let invoke = (status >= 0 && control & SL_INVOKE_ON_SUCCESS != 0)
                || (status < 0 && control & SL_INVOKE_ON_ERROR != 0)
                || ((*irp).Cancel && control & SL_INVOKE_ON_CANCEL != 0);
            match routine {
                Some(r) if invoke => {
                    let dev = if (*irp).CurrentLocation <= (*irp).StackCount {
                        (*current_stack_location(irp)).DeviceObject
                    } else {
                        std::ptr::null_mut()
                    };
                    let f: CompletionRoutine = std::mem::transmute(r);
                    let is_top = (*irp).CurrentLocation > (*irp).StackCount;
                    let ret = f(dev, irp, context);
                    if ret == STATUS_MORE_PROCESSING_REQUIRED {
                        return;
                    }
                    if is_top && origin == Origin::Driver {
                        verifier::violation(
                            Rule::CompletionRoutineStatus,
                            format!(
                                "completion routine of driver-allocated IRP {irp:p} returned {ret:#010x}, not STATUS_MORE_PROCESSING_REQUIRED"
                            ),
                        );
                        return;
                    }
                }
                _ => {
                    if (*irp).PendingReturned && (*irp).CurrentLocation <= (*irp).StackCount {
                        mark_pending(irp);
                    }
                }
            }
        }
    }
    match origin {
        Origin::IoManager => crate::iomgr::io_completion(irp),
        Origin::Driver => verifier::violation(
            Rule::CompletionRoutineStatus,
            format!("driver-allocated IRP {irp:p} completed with no completion routine to stop it"),
        ),
    }
}
