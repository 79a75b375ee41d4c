//! Fallible heap allocation for kernel paths.
//!
//! In a kernel driver the Rust global allocator is nonpaged pool (`ExAllocatePool2`), and
//! pool can run out. `Box::new`, `Arc::new`, `Vec::push` and the like call
//! `handle_alloc_error` when the allocator returns NULL, which is a panic, which is a bug
//! check. Kernel paths therefore allocate only through this module, and a failed allocation
//! is `STATUS_INSUFFICIENT_RESOURCES` for the request at hand ([`AllocError`]); the crates
//! on kernel paths ban the infallible forms with clippy's `disallowed-methods`,
//! `disallowed-types` and `disallowed-macros` (see `clippy.toml` at the workspace root).
//!
//! - [`try_box`]: `Box<T>` or an error ([`try_box_or_return`] hands the value back).
//! - `Box`, `Vec`, `String`: re-exports of the `alloc` crate's types (inside `wsk` that
//!   crate is named `rust_alloc`, as this module takes the name `alloc`).
//! - [`KArc`]: an atomically reference-counted pointer with a fallible constructor
//!   ([`KArc::try_new`]). `alloc::sync::Arc::try_new` is unstable (`allocator_api`), so this
//!   crate has its own, as the Rust-for-Linux `kernel` crate does (`kernel::sync::Arc`).
//! - [`try_with_capacity`], [`try_push`], [`try_to_vec`]: `Vec` through `Vec::try_reserve`.
//!
//! Every function here may be called at IRQL <= DISPATCH_LEVEL (the allocator is nonpaged
//! pool; see `ExAllocatePool2`: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepool2>).
//!
//! **Fault injection on the host.** On non-Windows targets each allocation first asks the
//! host emulation (`ntsim`, which defines the `extern "C"` symbol
//! `ntsim_rust_alloc_should_fail`) whether to fail, so that tests can fail the Nth
//! allocation of an operation. On Windows targets the question is compiled out: no cost.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ops::Deref;
use core::panic::Location;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicUsize, Ordering};
pub use rust_alloc::boxed::Box;
pub use rust_alloc::string::String;
pub use rust_alloc::vec::Vec;

use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_INSUFFICIENT_RESOURCES};

/// A heap allocation failed (the pool is exhausted, or a host test injected the failure).
/// Stands for `STATUS_INSUFFICIENT_RESOURCES`; converts into `NTSTATUS` and into
/// [`crate::Error::InsufficientResources`], so `?` works in either kind of function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocError;

impl AllocError {
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    pub const fn status(self) -> NTSTATUS {
        STATUS_INSUFFICIENT_RESOURCES
    }
}

impl From<AllocError> for NTSTATUS {
    fn from(_: AllocError) -> NTSTATUS {
        STATUS_INSUFFICIENT_RESOURCES
    }
}

impl From<AllocError> for crate::Error {
    fn from(_: AllocError) -> crate::Error {
        crate::Error::InsufficientResources
    }
}

impl From<rust_alloc::collections::TryReserveError> for AllocError {
    fn from(_: rust_alloc::collections::TryReserveError) -> AllocError {
        AllocError
    }
}

/// Result of a fallible allocation.
pub type AllocResult<T> = core::result::Result<T, AllocError>;

#[cfg(not(windows))]
extern "C" {
    /// Defined by the host emulation (`ntsim`): whether the allocation about to be made at
    /// `file:line` with `size` bytes should fail. Counts the allocation in ntsim's sequence.
    fn ntsim_rust_alloc_should_fail(
        size: usize,
        file: *const u8,
        file_len: usize,
        line: u32,
    ) -> bool;
}

/// Asks the fault hook whether an allocation of `size` bytes requested at `at` must fail.
/// Always `Ok` on Windows targets.
#[inline]
fn fault_point(size: usize, at: &'static Location<'static>) -> AllocResult<()> {
    #[cfg(not(windows))]
    {
        let file = at.file();
        // SAFETY: ntsim defines this symbol (linked into every host binary that runs kernel
        // code); it only reads `file` for `file_len` bytes during the call.
        if unsafe { ntsim_rust_alloc_should_fail(size, file.as_ptr(), file.len(), at.line()) } {
            return Err(AllocError);
        }
    }
    #[cfg(windows)]
    let _ = (size, at);
    Ok(())
}

/// Moves `value` into a new heap block: `Box::new` that fails instead of bug-checking.
///
/// IRQL <= DISPATCH_LEVEL (nonpaged pool). A zero-sized `T` allocates nothing and cannot
/// fail. Errors: [`AllocError`] (`STATUS_INSUFFICIENT_RESOURCES`) if the allocator returns
/// NULL; `value` is dropped then. Source (layout contract of `Box::from_raw`):
/// <https://doc.rust-lang.org/alloc/boxed/index.html#memory-layout>
#[track_caller]
pub fn try_box<T>(value: T) -> AllocResult<Box<T>> {
    try_box_or_return(value).map_err(|(e, _)| e)
}

/// [`try_box`] that hands `value` back on failure, for a caller that must still dispose of
/// it (complete a request it holds, undo a count).
///
/// IRQL <= DISPATCH_LEVEL. Errors: [`AllocError`] with the value.
#[track_caller]
pub fn try_box_or_return<T>(value: T) -> core::result::Result<Box<T>, (AllocError, T)> {
    let layout = Layout::new::<T>();
    let ptr: NonNull<T> = if layout.size() == 0 {
        NonNull::dangling()
    } else {
        if let Err(e) = fault_point(layout.size(), Location::caller()) {
            return Err((e, value));
        }
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { rust_alloc::alloc::alloc(layout) };
        match NonNull::new(raw.cast::<T>()) {
            Some(p) => p,
            None => return Err((AllocError, value)),
        }
    };
    // SAFETY: `ptr` is a fresh block from the global allocator with `Layout::new::<T>()`
    // (or dangling and well aligned for a zero-sized T), valid for a write of T; Box's
    // documented memory layout lets it take ownership of exactly such a pointer.
    unsafe {
        ptr.as_ptr().write(value);
        Ok(Box::from_raw(ptr.as_ptr()))
    }
}

/// An empty `Vec` with room for `capacity` elements, or an error.
///
/// IRQL <= DISPATCH_LEVEL. Errors: [`AllocError`] if the allocation fails or the size
/// overflows `isize::MAX`. Source: <https://doc.rust-lang.org/alloc/vec/struct.Vec.html#method.try_reserve_exact>
#[track_caller]
pub fn try_with_capacity<T>(capacity: usize) -> AllocResult<Vec<T>> {
    let mut v = Vec::new();
    if capacity > 0 && core::mem::size_of::<T>() > 0 {
        fault_point(
            capacity.saturating_mul(core::mem::size_of::<T>()),
            Location::caller(),
        )?;
    }
    v.try_reserve_exact(capacity)?;
    Ok(v)
}

/// Appends `value` to `v`, growing it fallibly. On error `v` is unchanged and `value` is
/// dropped.
///
/// IRQL <= DISPATCH_LEVEL. Errors: [`AllocError`] if growing fails.
#[track_caller]
pub fn try_push<T>(v: &mut Vec<T>, value: T) -> AllocResult<()> {
    if v.len() == v.capacity() {
        if core::mem::size_of::<T>() > 0 {
            fault_point(
                v.capacity()
                    .max(4)
                    .saturating_mul(core::mem::size_of::<T>()),
                Location::caller(),
            )?;
        }
        v.try_reserve(1)?;
    }
    // Cannot allocate: try_reserve above guaranteed room for one more element.
    #[allow(clippy::disallowed_methods)]
    v.push(value);
    Ok(())
}

/// A new `Vec` holding clones of `s`: `<[T]>::to_vec` that fails instead of bug-checking.
///
/// IRQL <= DISPATCH_LEVEL. Errors: [`AllocError`] if the allocation fails.
#[track_caller]
pub fn try_to_vec<T: Clone>(s: &[T]) -> AllocResult<Vec<T>> {
    let mut v = try_with_capacity(s.len())?;
    // Cannot allocate: the capacity is exactly s.len().
    #[allow(clippy::disallowed_methods)]
    v.extend_from_slice(s);
    Ok(v)
}

/// Appends clones of `s` to `v`, growing it fallibly. On error `v` is unchanged.
///
/// IRQL <= DISPATCH_LEVEL. Errors: [`AllocError`] if growing fails.
#[track_caller]
pub fn try_extend_from_slice<T: Clone>(v: &mut Vec<T>, s: &[T]) -> AllocResult<()> {
    if v.capacity() - v.len() < s.len() {
        if core::mem::size_of::<T>() > 0 {
            fault_point(
                v.len()
                    .saturating_add(s.len())
                    .saturating_mul(core::mem::size_of::<T>()),
                Location::caller(),
            )?;
        }
        v.try_reserve(s.len())?;
    }
    // Cannot allocate: try_reserve above made room for s.len() more elements.
    #[allow(clippy::disallowed_methods)]
    v.extend_from_slice(s);
    Ok(())
}

/// The reference count at which a [`KArc`] saturates: it is pinned there, never reaches
/// zero, and the value leaks instead of being freed while referenced (as the Linux
/// kernel's `refcount_t` does). Reaching it needs `isize::MAX` leaked clones. Clone and drop
/// are one atomic add each; one that finds the count at or above this value stores it back
/// (concurrent ones may leave it a few above or below for a moment: still about 2^63 away
/// from both zero and overflow).
const SATURATED: usize = isize::MAX as usize;

/// The heap block of a [`KArc`]: the count and the value.
struct KArcInner<T> {
    count: AtomicUsize,
    value: T,
}

/// An atomically reference-counted pointer with a fallible constructor: `Arc<T>` for
/// kernel paths.
///
/// [`KArc::try_new`] fails with [`AllocError`] instead of bug-checking; `clone` and `drop`
/// never allocate and may be called at IRQL <= DISPATCH_LEVEL (the value is dropped by the
/// last `drop`, at that caller's IRQL). `Send`/`Sync` exactly when `Arc<T>` is: `T: Send +
/// Sync`. Source (the semantics mirrored):
/// <https://doc.rust-lang.org/alloc/sync/struct.Arc.html>
pub struct KArc<T> {
    ptr: NonNull<KArcInner<T>>,
    // Owns a KArcInner<T> for drop check.
    _owns: PhantomData<KArcInner<T>>,
}

// SAFETY: as for Arc: sending a KArc gives another thread shared access to T (needs Sync)
// and possibly the last drop of T (needs Send).
unsafe impl<T: Send + Sync> Send for KArc<T> {}
// SAFETY: as for Arc: &KArc lets another thread clone it, which has the effects above.
unsafe impl<T: Send + Sync> Sync for KArc<T> {}

impl<T> KArc<T> {
    /// Moves `value` into a new reference-counted heap block with a count of 1.
    ///
    /// IRQL <= DISPATCH_LEVEL. Errors: [`AllocError`] (`STATUS_INSUFFICIENT_RESOURCES`) if
    /// the allocation fails; `value` is dropped then.
    #[track_caller]
    pub fn try_new(value: T) -> AllocResult<Self> {
        let inner = try_box(KArcInner {
            count: AtomicUsize::new(1),
            value,
        })?;
        Ok(KArc {
            ptr: NonNull::from(Box::leak(inner)),
            _owns: PhantomData,
        })
    }

    fn inner(&self) -> &KArcInner<T> {
        // SAFETY: the block stays allocated while any KArc (this one) holds a count.
        unsafe { self.ptr.as_ref() }
    }

    /// Whether `a` and `b` point to the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// The number of `KArc`s to this value now (another thread may change it at once).
    pub fn strong_count(this: &Self) -> usize {
        this.inner().count.load(Ordering::Acquire)
    }

    /// Gives up this reference without dropping it: the pointer to the value, to be turned
    /// back into a `KArc` by [`KArc::from_raw`] exactly once (for example through a
    /// completion routine's context pointer).
    pub fn into_raw(this: Self) -> *const T {
        let inner = this.ptr.as_ptr();
        core::mem::forget(this);
        // SAFETY: `inner` points to a live KArcInner; addr_of! takes the field address
        // without creating a reference.
        unsafe { core::ptr::addr_of!((*inner).value) }
    }

    /// Rebuilds the `KArc` given up by [`KArc::into_raw`].
    ///
    /// # Safety
    /// `ptr` came from `KArc::<T>::into_raw` and that reference has not been rebuilt yet.
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        let offset = core::mem::offset_of!(KArcInner<T>, value);
        // SAFETY: caller contract: `ptr` is the `value` field of a live KArcInner<T>, so
        // stepping back by the field offset stays inside that block and is non-NULL.
        let inner = unsafe { ptr.cast::<u8>().sub(offset) } as *mut KArcInner<T>;
        KArc {
            // SAFETY: see above (inside a live allocation, so non-NULL).
            ptr: unsafe { NonNull::new_unchecked(inner) },
            _owns: PhantomData,
        }
    }
}

impl<T> Clone for KArc<T> {
    /// Adds a reference; never allocates. IRQL: any.
    fn clone(&self) -> Self {
        // Relaxed as in Arc::clone: a new reference is made from an existing one, which
        // already keeps the value alive; no other memory is published by the increment.
        let count = &self.inner().count;
        if count.fetch_add(1, Ordering::Relaxed) >= SATURATED {
            // Saturated (see SATURATED): pinned, never freed.
            count.store(SATURATED, Ordering::Relaxed);
        }
        KArc {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for KArc<T> {
    #[inline]
    fn drop(&mut self) {
        // Release as in Arc::drop: every use of the value through this reference happens
        // before the decrement that lets another thread free it.
        let count = &self.inner().count;
        let old = count.fetch_sub(1, Ordering::Release);
        if old == 1 {
            // SAFETY: the count reached zero: this was the last reference.
            unsafe { self.drop_slow() };
        } else if old >= SATURATED {
            // Saturated (see SATURATED): pinned, never freed.
            count.store(SATURATED, Ordering::Relaxed);
        }
    }
}

impl<T> KArc<T> {
    /// The last reference went away: frees the value. Out of line, so that the drop of
    /// every other reference (a lookup's, a completion's) stays the decrement inline.
    ///
    /// # Safety
    /// The count reached zero through this reference's decrement.
    #[cold]
    #[inline(never)]
    unsafe fn drop_slow(&mut self) {
        // Acquire: the other references' uses happen before the free below.
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero, so this is the last reference; the block came
        // from try_box (Box::leak) and is rebuilt and dropped exactly once.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

impl<T> Deref for KArc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> AsRef<T> for KArc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for KArc<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&**self, f)
    }
}
