//! Nonpaged pool allocations with a tag (`ExAllocatePool2(POOL_FLAG_NON_PAGED)`), owned by a
//! Rust value and freed with `ExFreePoolWithTag` on drop.

use core::ffi::c_void;
use core::ptr::NonNull;

use windows_sys::Wdk::System::SystemServices::{ExAllocatePool2, ExFreePoolWithTag};

use crate::error::{Error, Result};

/// `POOL_FLAG_NON_PAGED`.
const POOL_FLAG_NON_PAGED: u64 = 0x40;

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
        // SAFETY: plain allocation call; pool blocks are 16-byte aligned on x64.
        let p = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, size, tag) } as *mut T;
        let ptr = NonNull::new(p).ok_or(Error::InsufficientResources)?;
        debug_assert!(core::mem::align_of::<T>() <= 16);
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
