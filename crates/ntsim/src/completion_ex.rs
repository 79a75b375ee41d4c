//! `IoSetCompletionRoutineEx`: sets a completion routine that the I/O manager wraps so that
//! the driver's device object stays referenced (and the driver image loaded) until the
//! routine has run; the reference and a small nonpaged context are the routine's cost, and
//! the call fails with `STATUS_INSUFFICIENT_RESOURCES` when that context cannot be
//! allocated. Resolved through `MmGetSystemRoutineAddress`, as drivers must on systems that
//! may lack it (and as on Wine 8.0, whose export is a stub: [`set_available`] hides it).
//! Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-iosetcompletionroutineex>

use rustc_hash::FxHashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};

use crate::irp::CompletionRoutine;

/// Pool tag of the wrapper contexts (leak-checked like any pool).
pub const CONTEXT_TAG: u32 = u32::from_le_bytes(*b"IoCx");

static AVAILABLE: AtomicBool = AtomicBool::new(true);
static FAILURES: AtomicU32 = AtomicU32::new(0);
static CONTEXTS: AtomicU64 = AtomicU64::new(0);
static REFS: Mutex<Option<FxHashMap<usize, usize>>> = Mutex::new(None);

fn refs() -> MutexGuard<'static, Option<FxHashMap<usize, usize>>> {
    REFS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `MmGetSystemRoutineAddress` finds `IoSetCompletionRoutineEx` (default true).
pub fn set_available(available: bool) {
    AVAILABLE.store(available, Ordering::SeqCst);
}

pub(crate) fn available() -> bool {
    AVAILABLE.load(Ordering::SeqCst)
}

/// Makes the next `n` calls fail with `STATUS_INSUFFICIENT_RESOURCES`.
pub fn fail_next(n: u32) {
    FAILURES.store(n, Ordering::SeqCst);
}

/// References `IoSetCompletionRoutineEx` holds on `device` (routines set, not yet run).
pub fn device_references(device: *const DEVICE_OBJECT) -> usize {
    refs()
        .as_ref()
        .and_then(|m| m.get(&(device as usize)).copied())
        .unwrap_or(0)
}

/// Contexts (pool tag `IoCx`) `IoSetCompletionRoutineEx` has allocated since the process
/// started: the kernel's allocations on a driver's behalf, one per successful call, which
/// [`crate::faults::OwnAllocations`] does not count as the driver's.
pub fn contexts_allocated() -> u64 {
    CONTEXTS.load(Ordering::SeqCst)
}

#[repr(C)]
struct Wrapped {
    routine: CompletionRoutine,
    context: *mut c_void,
    device: usize,
}

/// The I/O manager's wrapper: runs the driver's routine, then drops the device reference
/// and frees the context.
unsafe extern "system" fn wrapper(
    dev: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    let w = context as *mut Wrapped;
    // SAFETY: the context block IoSetCompletionRoutineEx allocated; this runs once.
    let (routine, ctx, device) = unsafe { ((*w).routine, (*w).context, (*w).device) };
    // SAFETY: the driver's routine with its own context.
    let status = unsafe { routine(dev, irp, ctx) };
    crate::pool::free(w.cast(), Some(CONTEXT_TAG));
    let mut g = refs();
    if let Some(n) = g.as_mut().and_then(|m| m.get_mut(&device)) {
        *n -= 1;
        if *n == 0 {
            g.as_mut().map(|m| m.remove(&device));
        }
    }
    status
}

/// `IoSetCompletionRoutineEx`.
///
/// # Safety
/// `irp` is a live IRP the caller owns, with a next stack location.
#[no_mangle]
pub unsafe extern "system" fn IoSetCompletionRoutineEx(
    device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    routine: Option<CompletionRoutine>,
    context: *mut c_void,
    on_success: bool,
    on_error: bool,
    on_cancel: bool,
) -> NTSTATUS {
    let Some(routine) = routine else {
        return STATUS_INVALID_PARAMETER;
    };
    if device.is_null() || irp.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if FAILURES
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let w =
        crate::pool::allocate(std::mem::size_of::<Wrapped>(), CONTEXT_TAG, false) as *mut Wrapped;
    if w.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    CONTEXTS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: fresh pool block of Wrapped's size (16-byte aligned).
    unsafe {
        w.write(Wrapped {
            routine,
            context,
            device: device as usize,
        })
    };
    *refs()
        .get_or_insert_with(FxHashMap::default)
        .entry(device as usize)
        .or_insert(0) += 1;
    // SAFETY: caller contract: the next stack location is the caller's to set.
    unsafe {
        let sl = (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation
            .sub(1);
        (*sl).CompletionRoutine = Some(std::mem::transmute::<
            CompletionRoutine,
            unsafe extern "system" fn() -> NTSTATUS,
        >(wrapper));
        (*sl).Context = w.cast();
        (*sl).Control = (if on_success {
            crate::irp::SL_INVOKE_ON_SUCCESS
        } else {
            0
        }) | (if on_error {
            crate::irp::SL_INVOKE_ON_ERROR
        } else {
            0
        }) | (if on_cancel {
            crate::irp::SL_INVOKE_ON_CANCEL
        } else {
            0
        });
    }
    STATUS_SUCCESS
}
