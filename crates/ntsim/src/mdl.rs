//! MDLs: `IoAllocateMdl`, `IoFreeMdl`, `MmBuildMdlForNonPagedPool`, `MmProbeAndLockPages`,
//! `MmUnlockPages`. Host memory is one address space, so an MDL's system address is its
//! virtual address; what is emulated is the bookkeeping and its rules.

use std::alloc::Layout;
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use windows_sys::Wdk::Foundation::{IRP, MDL};

use crate::lookaside::{Freed, Slab};
use crate::verifier::{self, Rule, COUNTERS};

/// `PAGE_SIZE` on x64.
pub const PAGE_SIZE: usize = 4096;
/// `MDL_MAPPED_TO_SYSTEM_VA`.
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
/// `MDL_PAGES_LOCKED`.
pub const MDL_PAGES_LOCKED: i16 = 0x0002;
/// `MDL_SOURCE_IS_NONPAGED_POOL`.
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
/// `MDL_ALLOCATED_FIXED_SIZE`.
pub const MDL_ALLOCATED_FIXED_SIZE: i16 = 0x0008;

/// MDLs, from lookaside lists by size (see [`crate::lookaside`]): each slot's header says
/// whether the MDL is live, so checking an MDL is an address-range lookup, not a hash table,
/// and a steady state of MDLs allocates nothing.
static LIVE: Mutex<Slab<()>> = Mutex::new(Slab::new());

fn live() -> MutexGuard<'static, Slab<()>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

fn pages_spanned(va: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    ((va & (PAGE_SIZE - 1)) + len).div_ceil(PAGE_SIZE)
}

fn layout_for(pages: usize) -> Layout {
    let size = std::mem::size_of::<MDL>() + pages * std::mem::size_of::<usize>();
    Layout::from_size_align(size, 8).unwrap_or(Layout::new::<MDL>())
}

/// The system address and byte count an MDL describes, checking that it may be used for I/O.
pub(crate) fn mdl_region(mdl: *const MDL) -> Option<(*mut u8, usize)> {
    // SAFETY: callers pass an MDL that the verifier tracks as live (checked just below first).
    if !is_live(mdl) {
        verifier::violation(
            Rule::DoubleFree,
            format!("I/O on freed or unknown MDL {mdl:p}"),
        );
        return None;
    }
    // SAFETY: live MDL allocated by IoAllocateMdl.
    let m = unsafe { &*mdl };
    if m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
        verifier::violation(
            Rule::MdlNotLocked,
            format!(
                "MDL {mdl:p} used for I/O without MmProbeAndLockPages or MmBuildMdlForNonPagedPool"
            ),
        );
    }
    let va = (m.StartVa as usize + m.ByteOffset as usize) as *mut u8;
    Some((va, m.ByteCount as usize))
}

pub(crate) fn is_live(mdl: *const MDL) -> bool {
    live().live(mdl as usize).is_some()
}

/// `IoAllocateMdl`.
///
/// # Safety
/// `irp`, if not NULL, is a live IRP.
#[no_mangle]
pub unsafe extern "system" fn IoAllocateMdl(
    va: *const c_void,
    length: u32,
    secondary: bool,
    _charge_quota: bool,
    irp: *mut IRP,
) -> *mut MDL {
    if crate::faults::should_fail(crate::faults::AllocKind::Mdl, String::new) {
        return std::ptr::null_mut();
    }
    let pages = pages_spanned(va as usize, length as usize);
    let layout = layout_for(pages);
    let Some(mdl) = live().alloc(layout.size(), ()) else {
        return std::ptr::null_mut();
    };
    let mdl = mdl.cast::<MDL>();
    // SAFETY: a fresh slot of layout.size() bytes (large enough for MDL), ours until
    // returned; zeroed first, as a zeroed allocation was.
    unsafe {
        std::ptr::write_bytes(mdl.cast::<u8>(), 0, layout.size());
        (*mdl).Size = layout.size() as i16;
        (*mdl).StartVa = ((va as usize) & !(PAGE_SIZE - 1)) as *mut c_void;
        (*mdl).ByteOffset = (va as usize & (PAGE_SIZE - 1)) as u32;
        (*mdl).ByteCount = length;
        (*mdl).MdlFlags = MDL_ALLOCATED_FIXED_SIZE;
    }
    COUNTERS.mdl_allocations.fetch_add(1, Ordering::SeqCst);
    COUNTERS.live_mdls.fetch_add(1, Ordering::SeqCst);
    if !irp.is_null() {
        // SAFETY: caller contract: live IRP.
        unsafe {
            if !secondary {
                (*irp).MdlAddress = mdl;
            } else {
                let mut tail = (*irp).MdlAddress;
                if tail.is_null() {
                    (*irp).MdlAddress = mdl;
                } else {
                    while !(*tail).Next.is_null() {
                        tail = (*tail).Next;
                    }
                    (*tail).Next = mdl;
                }
            }
        }
    }
    mdl
}

/// `IoFreeMdl`.
///
/// # Safety
/// `mdl` came from `IoAllocateMdl`.
#[no_mangle]
pub unsafe extern "system" fn IoFreeMdl(mdl: *mut MDL) {
    let mut locked = false;
    // Poisons the MDL and parks its slot: a later use of it finds it not live (and, under
    // ASan, unaddressable).
    let freed = live().free_if(mdl as usize, |_| {
        // SAFETY: live MDL (its slot is checked first), still unpoisoned while this runs.
        locked = unsafe { (*mdl).MdlFlags } & MDL_PAGES_LOCKED != 0;
        true
    });
    if !matches!(freed, Freed::Done(_)) {
        verifier::violation(
            Rule::DoubleFree,
            format!("IoFreeMdl({mdl:p}): not a live MDL"),
        );
        return;
    }
    if locked {
        verifier::violation(
            Rule::MdlFreedLocked,
            format!("IoFreeMdl({mdl:p}) with pages still locked (MmUnlockPages missing)"),
        );
    }
    COUNTERS.live_mdls.fetch_sub(1, Ordering::SeqCst);
}

/// `MmBuildMdlForNonPagedPool`. The buffer must be nonpaged pool (checked against the pool
/// table) or the caller's own static/stack memory, which the host cannot tell apart.
///
/// # Safety
/// `mdl` is a live MDL.
#[no_mangle]
pub unsafe extern "system" fn MmBuildMdlForNonPagedPool(mdl: *mut MDL) {
    if !is_live(mdl) {
        verifier::violation(
            Rule::DoubleFree,
            format!("MmBuildMdlForNonPagedPool({mdl:p}): not live"),
        );
        return;
    }
    // SAFETY: live MDL.
    let (va, len) = unsafe {
        (
            (*mdl).StartVa as usize + (*mdl).ByteOffset as usize,
            (*mdl).ByteCount as usize,
        )
    };
    if crate::pool::is_paged(va, len) {
        verifier::violation(
            Rule::MdlNotLocked,
            format!("MmBuildMdlForNonPagedPool({mdl:p}) on paged pool"),
        );
    }
    // SAFETY: live MDL.
    unsafe {
        (*mdl).MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
        (*mdl).MappedSystemVa =
            ((*mdl).StartVa as usize + (*mdl).ByteOffset as usize) as *mut c_void;
    }
}

/// `MmProbeAndLockPages`.
///
/// # Safety
/// `mdl` is a live MDL.
#[no_mangle]
pub unsafe extern "system" fn MmProbeAndLockPages(mdl: *mut MDL, _mode: i8, _op: i32) {
    if !is_live(mdl) {
        verifier::violation(
            Rule::DoubleFree,
            format!("MmProbeAndLockPages({mdl:p}): not live"),
        );
        return;
    }
    if crate::irql::current() > crate::irql::DISPATCH_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            "MmProbeAndLockPages above DISPATCH_LEVEL",
        );
    }
    // SAFETY: live MDL.
    unsafe { (*mdl).MdlFlags |= MDL_PAGES_LOCKED };
}

/// `MmProbeAndLockPages` for the I/O manager's own MDL, just allocated by it and not yet
/// seen by any driver (no liveness lookup needed): at PASSIVE_LEVEL, in the caller's
/// context, as `NtDeviceIoControlFile` locks a direct-I/O buffer.
///
/// # Safety
/// `mdl` was just returned by `IoAllocateMdl` to the caller.
pub(crate) unsafe fn lock_new(mdl: *mut MDL) {
    // SAFETY: caller contract.
    unsafe { (*mdl).MdlFlags |= MDL_PAGES_LOCKED };
}

/// `MmUnlockPages`.
///
/// # Safety
/// `mdl` is a live, locked MDL.
#[no_mangle]
pub unsafe extern "system" fn MmUnlockPages(mdl: *mut MDL) {
    if !is_live(mdl) {
        verifier::violation(
            Rule::DoubleFree,
            format!("MmUnlockPages({mdl:p}): not live"),
        );
        return;
    }
    // SAFETY: live MDL.
    unsafe {
        if (*mdl).MdlFlags & MDL_PAGES_LOCKED == 0 {
            verifier::violation(
                Rule::MdlNotLocked,
                format!("MmUnlockPages({mdl:p}) of unlocked MDL"),
            );
        }
        (*mdl).MdlFlags &= !MDL_PAGES_LOCKED;
    }
}

/// `MmMapLockedPagesSpecifyCache`: returns the MDL's address (host memory is flat).
///
/// # Safety
/// `mdl` is a live, locked MDL.
#[no_mangle]
pub unsafe extern "system" fn MmMapLockedPagesSpecifyCache(
    mdl: *mut MDL,
    _mode: i8,
    _cache: i32,
    _requested: *const c_void,
    _bugcheck: u32,
    _priority: u32,
) -> *mut c_void {
    match mdl_region(mdl) {
        Some((va, _)) => {
            // SAFETY: live MDL.
            unsafe {
                (*mdl).MappedSystemVa = va.cast();
                (*mdl).MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
            }
            va.cast()
        }
        None => std::ptr::null_mut(),
    }
}
