//! Counting the calling thread's heap allocations, for tests that assert a path allocates
//! nothing on the host (the I/O manager's and the driver's steady state): a `GlobalAlloc`
//! that forwards to the system allocator and counts, per thread, every `alloc`,
//! `alloc_zeroed` and `realloc`. A test binary installs it with
//! `#[global_allocator] static GLOBAL: ntsim::heap::Counting = ntsim::heap::Counting;` and
//! reads [`thread_allocations`] before and after; other test threads do not disturb the
//! count. Host only: the driver's own allocations are pool, counted by the verifier.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The counting allocator (see the module documentation).
pub struct Counting;

fn count() {
    // try_with: a thread being torn down may still allocate; it is simply not counted.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// thread-local Cell with a const initialiser (no allocation, no destructor, no re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: caller contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: caller contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: caller contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: caller contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Heap allocations the calling thread made through [`Counting`] since it started (0 if
/// the binary does not install it).
pub fn thread_allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}
