//! Pool: `ExAllocatePool2`, `ExAllocatePoolWithTag`, `ExFreePoolWithTag`, `ExFreePool`,
//! with every allocation tracked by address, size and tag.

use rustc_hash::FxHashMap;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::verifier::{self, Rule, COUNTERS};

/// Pool allocations are 16-byte aligned, as on x64 Windows.
const POOL_ALIGN: usize = 16;

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

/// Live blocks by address. FxHash, not SipHash: this table is touched on every allocation
/// and free; it only grows (hashbrown never shrinks on remove), so a steady state of
/// allocations and frees does not reallocate it.
static BLOCKS: Mutex<Option<FxHashMap<usize, Block>>> = Mutex::new(None);
/// Live paged blocks, so that [`is_paged`] need not scan the table when there are none.
static LIVE_PAGED: AtomicUsize = AtomicUsize::new(0);

fn blocks() -> MutexGuard<'static, Option<FxHashMap<usize, Block>>> {
    BLOCKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Allocates tracked pool. Returns NULL for size 0 overflow or when failure injection asks.
pub(crate) fn allocate(size: usize, tag: u32, paged: bool) -> *mut c_void {
    if crate::config::take_pool_failure() {
        return std::ptr::null_mut();
    }
    let Ok(layout) = Layout::from_size_align(size.max(1), POOL_ALIGN) else {
        return std::ptr::null_mut();
    };
    // SAFETY: layout has non-zero size.
    let p = unsafe { alloc_zeroed(layout) };
    if p.is_null() {
        return p.cast();
    }
    blocks()
        .get_or_insert_with(|| FxHashMap::with_capacity_and_hasher(1024, Default::default()))
        .insert(p as usize, Block { size, tag, paged });
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
    let block = blocks().as_mut().and_then(|m| m.remove(&(p as usize)));
    let Some(block) = block else {
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
    // SAFETY: p was allocated by `allocate` with this layout and is removed from the table,
    // so it is freed exactly once.
    unsafe {
        crate::poison::fill(p.cast(), block.size);
        dealloc(
            p.cast(),
            Layout::from_size_align_unchecked(block.size.max(1), POOL_ALIGN),
        )
    };
}

/// True if `p..p+len` lies inside a live *paged* pool block.
pub(crate) fn is_paged(p: usize, len: usize) -> bool {
    if LIVE_PAGED.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let b = blocks();
    let Some(map) = b.as_ref() else { return false };
    map.iter()
        .any(|(&base, blk)| blk.paged && p >= base && p + len <= base + blk.size)
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
