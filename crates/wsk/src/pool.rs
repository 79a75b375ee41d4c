//! Nonpaged pool allocations with a tag (`ExAllocatePool2(POOL_FLAG_NON_PAGED)`), owned by a
//! Rust value and freed with `ExFreePoolWithTag` on drop.

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use windows_sys::Wdk::System::SystemServices::{ExAllocatePoolWithTag, ExFreePoolWithTag};
use windows_sys::Win32::Foundation::UNICODE_STRING;

use crate::error::{Error, Result};

/// `POOL_FLAG_NON_PAGED`.
const POOL_FLAG_NON_PAGED: u64 = 0x40;
/// `NonPagedPoolNx`.
const NON_PAGED_POOL_NX: i32 = 512;

type ExAllocatePool2Fn = unsafe extern "system" fn(u64, usize, u32) -> *mut c_void;

/// `ExAllocatePool2` as resolved by [`resolve`]: 0 = not (yet) available.
static EX_ALLOCATE_POOL2: AtomicUsize = AtomicUsize::new(0);

// Evaluated at compile time: an out-of-range index fails the build, never the driver.
#[allow(clippy::indexing_slicing)]
static NAME: [u16; 15] = {
    let b = b"ExAllocatePool2";
    let mut w = [0u16; 15];
    let mut i = 0;
    while i < 15 {
        w[i] = b[i] as u16;
        i += 1;
    }
    w
};

/// Looks up `ExAllocatePool2` with `MmGetSystemRoutineAddress`. The driver never imports
/// it, so it loads on Windows before version 2004 and on Wine 8.0, which lack it; there
/// allocations fall back to `ExAllocatePoolWithTag(NonPagedPoolNx)` plus zeroing. Called by
/// [`crate::WskClient::register`]; call it yourself earlier if you allocate before.
/// PASSIVE_LEVEL. Returns whether `ExAllocatePool2` is available.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/kernel/updating-deprecated-exallocatepool-calls>
pub fn resolve() -> bool {
    let name = UNICODE_STRING {
        Length: (NAME.len() * 2) as u16,
        MaximumLength: (NAME.len() * 2) as u16,
        Buffer: NAME.as_ptr() as *mut u16,
    };
    // SAFETY: a valid UNICODE_STRING; PASSIVE_LEVEL per this function's contract.
    let p = unsafe { nt_imports::MmGetSystemRoutineAddress(&name) };
    EX_ALLOCATE_POOL2.store(p as usize, Ordering::Release);
    !p.is_null()
}

/// Allocates `size` zeroed bytes of nonpaged, no-execute pool tagged `tag`, or NULL.
/// IRQL <= DISPATCH_LEVEL. Uses `ExAllocatePool2` when [`resolve`] found it, else
/// `ExAllocatePoolWithTag(NonPagedPoolNx)` and zeroes the block itself.
pub fn allocate_nonpaged(size: usize, tag: u32) -> *mut c_void {
    let f = EX_ALLOCATE_POOL2.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: the address MmGetSystemRoutineAddress returned for ExAllocatePool2.
        let f: ExAllocatePool2Fn = unsafe { core::mem::transmute(f) };
        // SAFETY: plain allocation call.
        return unsafe { f(POOL_FLAG_NON_PAGED, size, tag) };
    }
    // SAFETY: plain allocation call.
    let p = unsafe { ExAllocatePoolWithTag(NON_PAGED_POOL_NX, size, tag) };
    if !p.is_null() {
        // SAFETY: a fresh block of `size` bytes.
        unsafe { core::ptr::write_bytes(p as *mut u8, 0, size) };
    }
    p
}

/// Frees a block from [`allocate_nonpaged`]. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `p` came from `allocate_nonpaged` with `tag` and is freed once.
pub unsafe fn free(p: *mut c_void, tag: u32) {
    // SAFETY: caller contract.
    unsafe { ExFreePoolWithTag(p, tag) };
}

/// Builds a pool tag from four ASCII characters, as `!poolused` shows them (`b"Wsk "`).
pub const fn tag(t: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*t)
}

/// The pool tag of this crate's own allocations: `WskR`.
pub const WSK_TAG: u32 = tag(b"WskR");

/// A value of `T` in nonpaged pool. Safe to touch at DISPATCH_LEVEL.
pub struct PoolBox<T> {
    ptr: NonNull<T>,
    tag: u32,
}

// SAFETY: PoolBox owns its T like Box does.
unsafe impl<T: Send> Send for PoolBox<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for PoolBox<T> {}

impl<T> PoolBox<T> {
    /// Moves `value` into a new nonpaged pool block tagged `tag`.
    ///
    /// IRQL <= DISPATCH_LEVEL. Errors: `STATUS_INSUFFICIENT_RESOURCES` if the pool is
    /// exhausted. Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepool2>
    pub fn try_new(value: T, tag: u32) -> Result<Self> {
        let size = core::mem::size_of::<T>().max(1);
        let p = allocate_nonpaged(size, tag) as *mut T;
        let ptr = NonNull::new(p).ok_or(Error::InsufficientResources)?;
        // Pool blocks are 16-byte aligned: a T needing more fails the build, not the driver.
        const { assert!(core::mem::align_of::<T>() <= 16) };
        // SAFETY: fresh block of size_of::<T>() bytes, suitably aligned.
        unsafe { ptr.as_ptr().write(value) };
        Ok(PoolBox { ptr, tag })
    }

    /// The stable address of the value (it never moves while the box lives).
    pub fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// Gives up ownership; the block must be rebuilt with [`PoolBox::from_raw`].
    pub fn into_raw(self) -> *mut T {
        let p = self.ptr.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Rebuilds a box from [`PoolBox::into_raw`].
    ///
    /// # Safety
    /// `p` came from `into_raw` with this `tag` and is not owned elsewhere.
    pub unsafe fn from_raw(p: *mut T, tag: u32) -> Self {
        // SAFETY: caller contract (non-NULL from into_raw).
        PoolBox {
            ptr: unsafe { NonNull::new_unchecked(p) },
            tag,
        }
    }
}

impl<T> core::ops::Deref for PoolBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: owned, initialised value.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> core::ops::DerefMut for PoolBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: owned, initialised value, unique access through &mut self.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for PoolBox<T> {
    fn drop(&mut self) {
        // SAFETY: owned value, dropped once, then its block freed with its own tag.
        unsafe {
            core::ptr::drop_in_place(self.ptr.as_ptr());
            ExFreePoolWithTag(self.ptr.as_ptr() as *mut c_void, self.tag);
        }
    }
}
