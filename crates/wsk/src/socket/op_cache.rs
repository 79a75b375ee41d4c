//! The per-socket cache of IRPs and operation blocks of asynchronous operations
//! (`send_async`, `send_to_async`, `receive_async`, `receive_from_async`, `disconnect_async`),
//! so that a steady-state operation allocates nothing (issue 13, item 1).
//!
//! **Items.** One cache item is a [`Slot`]: an IRP from `IoAllocateIrp(1, FALSE)` and a
//! nonpaged pool block of [`OP_BYTES`] bytes (16-byte aligned) in which the operation's state
//! block (`AsyncOp<B, D>`, generic over the caller's buffer and callback) is constructed in
//! place. An item is taken by an operation, and given back by whichever of the operation's
//! two owners (the starter, the completion routine) lets go last; a taken IRP is readied with
//! `IoReuseIrp` (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-ioreuseirp>).
//! Fixed-size raw blocks rather than a cache per `AsyncOp<B, D>` type: the socket does not
//! know its callers' types, and one type-erased list serves them all. A state block that does
//! not fit (a large buffer type or callback) is allocated on its own for that operation, with
//! its own IRP, and both are freed at its completion (the pre-cache path).
//!
//! **Bound.** A socket keeps at most [`MAX_CACHED_OPS`] items (idle plus in flight). Growth
//! happens when an operation finds no idle item and the socket has fewer; beyond the bound an
//! operation allocates its own IRP and block and frees them at completion. The bound caps
//! the nonpaged memory an idle socket retains after a burst (16 × (IRP + block) ≈ 16 × 0.5
//! KiB per socket at most; with thousands of sockets the cost per socket matters) while
//! covering the concurrency a driver client keeps on one socket (a receive and a few sends
//! in flight, far below 16).
//!
//! **Lifetime.** The cache is shared ([`KArc`]) by its socket and by every operation in
//! flight that uses an item. Closing the socket ([`OpCache::close`]) frees the idle items
//! and marks the cache closed: an operation that completes afterwards (for example one
//! cancelled by a `WskCloseSocket` that the socket's drop did not wait for) frees its item
//! instead of giving it back, and the last reference frees the cache itself. Nothing is
//! touched after it was freed.
//!
//! **Locking.** Items are given back from completion routines at DISPATCH_LEVEL, so the
//! list lives in nonpaged memory (the Rust heap of a driver is nonpaged pool) behind a
//! [`SpinLock`] that raises IRQL; IRPs and pool are freed outside the lock.

use core::mem::MaybeUninit;
use core::ptr::NonNull;

use windows_sys::Wdk::Foundation::IRP;

use crate::alloc::KArc;
use crate::error::{Error, Result};
use crate::irp::OwnedIrp;
use crate::pool::PoolBox;
use crate::sync::SpinLock;

/// The most IRP + operation-block pairs one socket keeps (idle plus in flight); see the
/// module documentation for why. Operations beyond it allocate and free their own.
pub const MAX_CACHED_OPS: usize = 16;

/// Bytes of the in-place operation block of a cache item (16-byte aligned). Measured on the
/// host (x86_64): the driver's SEND, SEND_TO and RECEIVE blocks (a request's MDL and
/// completion handle as the buffer, a callback holding the statistics reference) are 128 to
/// 136 bytes, a `NonPagedBuffer` with a small closure 144; 192 leaves room for its
/// RECEIVE_FROM block (about 170) without making an idle item cost more than it must.
pub const OP_BYTES: usize = 192;

/// Pool tag of cache items (`WskO` in a pool dump).
pub const OP_CACHE_TAG: u32 = crate::pool::tag(b"WskO");

/// One cache item: the in-place operation block (first, so it is 16-byte aligned in the
/// 16-byte aligned pool block) and its IRP.
#[repr(C, align(16))]
pub(crate) struct Slot {
    storage: MaybeUninit<[u8; OP_BYTES]>,
    irp: OwnedIrp,
    /// The next idle item (valid only while this one is idle).
    next: *mut Slot,
}

impl Slot {
    /// A new item: `IoAllocateIrp` and a pool block. IRQL <= DISPATCH_LEVEL.
    /// Errors: `STATUS_INSUFFICIENT_RESOURCES`.
    fn allocate() -> Result<NonNull<Slot>> {
        let irp = OwnedIrp::allocate()?;
        let slot = PoolBox::try_new(
            Slot {
                storage: MaybeUninit::uninit(),
                irp,
                next: core::ptr::null_mut(),
            },
            OP_CACHE_TAG,
        )?;
        // SAFETY: into_raw never returns NULL (the box held a live block).
        Ok(unsafe { NonNull::new_unchecked(slot.into_raw()) })
    }

    /// Frees an item (its IRP with `IoFreeIrp`, its block). IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    /// `slot` came from [`Slot::allocate`], holds no live operation and is freed once.
    unsafe fn free(slot: NonNull<Slot>) {
        // SAFETY: caller contract.
        drop(unsafe { PoolBox::from_raw(slot.as_ptr(), OP_CACHE_TAG) });
    }

    /// Where an operation block of up to [`OP_BYTES`] bytes is built.
    ///
    /// # Safety
    /// `slot` is a live item.
    pub(crate) unsafe fn storage(slot: NonNull<Slot>) -> *mut u8 {
        // SAFETY: caller contract; addr_of_mut! makes no reference.
        unsafe { core::ptr::addr_of_mut!((*slot.as_ptr()).storage).cast() }
    }

    /// The item's IRP.
    ///
    /// # Safety
    /// `slot` is a live item.
    pub(crate) unsafe fn irp(slot: NonNull<Slot>) -> *mut IRP {
        // SAFETY: caller contract.
        unsafe { (*slot.as_ptr()).irp.as_ptr() }
    }
}

struct Items {
    /// Idle items, linked through `Slot::next`.
    idle: *mut Slot,
    /// Items alive (idle plus in flight), at most [`MAX_CACHED_OPS`].
    count: usize,
    /// Set by [`OpCache::close`]: items given back are freed.
    closed: bool,
}

// SAFETY: the raw pointers are items owned by the cache, used under its lock from any thread.
unsafe impl Send for Items {}

/// A socket's cache of IRPs and operation blocks (see the module documentation).
pub(crate) struct OpCache {
    items: SpinLock<Items>,
}

impl OpCache {
    /// A new, empty cache in its shared block. IRQL <= DISPATCH_LEVEL.
    /// Errors: `STATUS_INSUFFICIENT_RESOURCES`.
    pub(crate) fn try_new() -> Result<KArc<OpCache>> {
        Ok(KArc::try_new(OpCache {
            items: SpinLock::new(Items {
                idle: core::ptr::null_mut(),
                count: 0,
                closed: false,
            }),
        })?)
    }

    /// An item for one operation: an idle one with its IRP readied by `IoReuseIrp`, or a new
    /// one while the socket has fewer than [`MAX_CACHED_OPS`]; `None` at the bound (the
    /// operation then allocates its own). IRQL <= DISPATCH_LEVEL.
    /// Errors: `STATUS_INSUFFICIENT_RESOURCES` (growth failed; nothing changed),
    /// `STATUS_INVALID_HANDLE` (the cache was closed with its socket).
    pub(crate) fn take(&self) -> Result<Option<NonNull<Slot>>> {
        let mut g = self.items.lock();
        if g.closed {
            return Err(Error::Closed);
        }
        if let Some(slot) = NonNull::new(g.idle) {
            // SAFETY: an idle item of this cache, under the lock.
            g.idle = unsafe { (*slot.as_ptr()).next };
            drop(g);
            // SAFETY: an idle item's IRP completed (or was never sent): no one else holds
            // it; IoReuseIrp is callable at IRQL <= DISPATCH_LEVEL.
            unsafe { (*slot.as_ptr()).irp.reuse() };
            return Ok(Some(slot));
        }
        if g.count >= MAX_CACHED_OPS {
            return Ok(None);
        }
        g.count += 1;
        drop(g);
        Slot::allocate().map(Some).inspect_err(|_| {
            self.items.lock().count -= 1;
        })
    }

    /// Gives back an item taken with [`OpCache::take`] whose operation is over (its block
    /// dropped, its IRP completed or never sent): kept for the next operation, or freed if
    /// the cache was closed. IRQL <= DISPATCH_LEVEL (completion routines).
    ///
    /// # Safety
    /// `slot` came from this cache's `take` and is given back once.
    pub(crate) unsafe fn put(&self, slot: NonNull<Slot>) {
        let mut g = self.items.lock();
        if g.closed {
            g.count -= 1;
            drop(g);
            // SAFETY: caller contract: ours alone now.
            unsafe { Slot::free(slot) };
            return;
        }
        // SAFETY: caller contract: ours alone now; linked under the lock.
        unsafe { (*slot.as_ptr()).next = g.idle };
        g.idle = slot.as_ptr();
    }

    /// Closes the cache with its socket: frees the idle items; items of operations still in
    /// flight are freed when they are given back. Idempotent. IRQL <= DISPATCH_LEVEL.
    pub(crate) fn close(&self) {
        let mut g = self.items.lock();
        g.closed = true;
        let idle = core::mem::replace(&mut g.idle, core::ptr::null_mut());
        let mut n = 0;
        let mut p = idle;
        while let Some(slot) = NonNull::new(p) {
            // SAFETY: an idle item, unlinked from the list under the lock.
            p = unsafe { (*slot.as_ptr()).next };
            n += 1;
        }
        g.count -= n;
        drop(g);
        free_list(idle);
    }
}

/// Frees a list of idle items.
fn free_list(mut p: *mut Slot) {
    while let Some(slot) = NonNull::new(p) {
        // SAFETY: an unlinked idle item: read its link, then free it once.
        unsafe {
            p = (*slot.as_ptr()).next;
            Slot::free(slot);
        }
    }
}

impl Drop for OpCache {
    /// The last reference: no operation is in flight, so every item left is idle.
    fn drop(&mut self) {
        let idle = core::mem::replace(&mut self.items.lock().idle, core::ptr::null_mut());
        free_list(idle);
    }
}
