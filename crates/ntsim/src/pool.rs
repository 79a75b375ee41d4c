//! Pool: `ExAllocatePool2`, `ExAllocatePoolWithTag`, `ExFreePoolWithTag`, `ExFreePool`,
//! with every allocation tracked by address, size and tag.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::lookaside::Slab;
use crate::verifier::{self, Rule, COUNTERS};

/// Pool allocations are 16-byte aligned, as on x64 Windows: the lookaside slots are.
const _: () = assert!(crate::lookaside::GRANULE == 16);

/// `POOL_FLAG_NON_PAGED` (`ExAllocatePool2` flags).
pub const POOL_FLAG_NON_PAGED: u64 = 0x40;
/// `POOL_FLAG_PAGED`.
pub const POOL_FLAG_PAGED: u64 = 0x100;
/// `POOL_FLAG_UNINITIALIZED`.
pub const POOL_FLAG_UNINITIALIZED: u64 = 0x2;
/// `POOL_FLAG_RAISE_ON_FAILURE`.
pub const POOL_FLAG_RAISE_ON_FAILURE: u64 = 0x20;

#[derive(Clone, Copy)]
struct Block {
    size: usize,
    tag: u32,
    paged: bool,
}

/// Pool blocks, from lookaside lists by size (see [`crate::lookaside`], after the per-size
/// lists Windows is described to serve small pool allocations from): each slot's header says
/// whether the block is live and holds its size, tag and pool type, so a free is checked
/// with an address-range lookup, not a hash table, and a steady state of allocations and
/// frees allocates no heap.
/// A freed block is poisoned and parked (under ASan, unaddressable); blocks over 4 KiB are
/// their own heap blocks, freed for real.
static BLOCKS: Mutex<Slab<Block>> = Mutex::new(Slab::new());
/// Live paged blocks, so that [`is_paged`] need not scan the table when there are none.
static LIVE_PAGED: AtomicUsize = AtomicUsize::new(0);

fn blocks() -> MutexGuard<'static, Slab<Block>> {
    BLOCKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Allocates tracked pool. Returns NULL for size 0 overflow or when failure injection asks.
pub(crate) fn allocate(size: usize, tag: u32, paged: bool) -> *mut c_void {
    if crate::config::take_pool_failure() {
        return std::ptr::null_mut();
    }
    if isize::try_from(size).is_err() {
        return std::ptr::null_mut();
    }
    let Some(p) = blocks().alloc(size.max(1), Block { size, tag, paged }) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a fresh slot of size.max(1) bytes, ours until freed; zeroed as the zeroed
    // allocation before the lookaside lists was.
    unsafe { std::ptr::write_bytes(p, 0, size.max(1)) };
    if paged {
        LIVE_PAGED.fetch_add(1, Ordering::Relaxed);
    }
    COUNTERS.pool_allocations.fetch_add(1, Ordering::SeqCst);
    COUNTERS
        .live_pool_bytes
        .fetch_add(size as u64, Ordering::SeqCst);
    verifier::pool_add(tag, size as u64);
    p.cast()
}

/// Frees tracked pool; `tag` of `None` skips the tag check (`ExFreePool`).
pub(crate) fn free(p: *mut c_void, tag: Option<u32>) {
    // Poisons the block and parks its slot (or frees a large block).
    let freed = blocks().free(p as usize);
    let Some(block) = freed.map(|h| h.data) else {
        verifier::violation(
            Rule::DoubleFree,
            format!("pool free of {p:p}: not allocated, or already freed"),
        );
        return;
    };
    if let Some(tag) = tag {
        if tag != block.tag {
            verifier::violation(
                Rule::PoolTagMismatch,
                format!(
                    "ExFreePoolWithTag({p:p}, '{}') of a block tagged '{}'",
                    verifier::tag_str(tag),
                    verifier::tag_str(block.tag)
                ),
            );
        }
    }
    if block.paged {
        LIVE_PAGED.fetch_sub(1, Ordering::Relaxed);
    }
    COUNTERS
        .live_pool_bytes
        .fetch_sub(block.size as u64, Ordering::SeqCst);
    verifier::pool_sub(block.tag, block.size as u64);
}

/// True if `p..p+len` lies inside a live *paged* pool block.
pub(crate) fn is_paged(p: usize, len: usize) -> bool {
    if LIVE_PAGED.load(Ordering::Relaxed) == 0 {
        return false;
    }
    blocks().any_live(|base, blk| blk.paged && p >= base && p + len <= base + blk.size)
}

/// The allocation-failure sweep's question for a driver's pool allocation.
fn pool_fault(tag: u32) -> bool {
    crate::faults::should_fail(crate::faults::AllocKind::Pool, || {
        format!("tag '{}'", verifier::tag_str(tag))
    })
}

/// `ExAllocatePool2`.
#[no_mangle]
pub extern "system" fn ExAllocatePool2(flags: u64, size: usize, tag: u32) -> *mut c_void {
    if flags & POOL_FLAG_NON_PAGED != 0 && crate::irql::current() > crate::irql::DISPATCH_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            "ExAllocatePool2 above DISPATCH_LEVEL",
        );
    }
    if flags & POOL_FLAG_PAGED != 0 && crate::irql::current() > crate::irql::APC_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            "paged ExAllocatePool2 above APC_LEVEL",
        );
    }
    if pool_fault(tag) {
        return std::ptr::null_mut();
    }
    allocate(size, tag, flags & POOL_FLAG_PAGED != 0)
}

/// `ExAllocatePoolWithTag` (pool type 0 = NonPagedPool, 1 = PagedPool, 512 = NonPagedPoolNx).
#[no_mangle]
pub extern "system" fn ExAllocatePoolWithTag(pool_type: i32, size: usize, tag: u32) -> *mut c_void {
    if pool_fault(tag) {
        return std::ptr::null_mut();
    }
    allocate(size, tag, pool_type & 1 == 1)
}

/// `ExFreePoolWithTag`.
#[no_mangle]
pub extern "system" fn ExFreePoolWithTag(p: *mut c_void, tag: u32) {
    free(p, Some(tag))
}

/// `ExFreePool`.
#[no_mangle]
pub extern "system" fn ExFreePool(p: *mut c_void) {
    free(p, None)
}

/// `MmGetSystemRoutineAddress`: the address of an emulated routine by name, or NULL. Knows
/// `ExAllocatePool2` (unless [`crate::config::set_ex_allocate_pool2_available`] hid it, as on
/// Wine 8.0 or Windows before 2004) and `ExAllocatePoolWithTag`.
///
/// # Safety
/// `name` is a valid UNICODE_STRING.
#[no_mangle]
pub unsafe extern "system" fn MmGetSystemRoutineAddress(
    name: *const windows_sys::Win32::Foundation::UNICODE_STRING,
) -> *mut c_void {
    if crate::irql::current() > crate::irql::PASSIVE_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            "MmGetSystemRoutineAddress above PASSIVE_LEVEL",
        );
    }
    // SAFETY: caller contract.
    let n = unsafe {
        let u = &*name;
        String::from_utf16_lossy(std::slice::from_raw_parts(u.Buffer, u.Length as usize / 2))
    };
    match n.as_str() {
        "ExAllocatePool2" if crate::config::ex_allocate_pool2_available() => {
            ExAllocatePool2 as *mut c_void
        }
        "ExAllocatePoolWithTag" => ExAllocatePoolWithTag as *mut c_void,
        "ZwCancelIoFileEx" => crate::file::ZwCancelIoFileEx as *mut c_void,
        "IoSetCompletionRoutineEx" if crate::completion_ex::available() => {
            crate::completion_ex::IoSetCompletionRoutineEx as *mut c_void
        }
        _ => std::ptr::null_mut(),
    }
}
