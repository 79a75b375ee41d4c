//! A spin lock that raises IRQL to DISPATCH_LEVEL (`KeAcquireSpinLockRaiseToDpc` /
//! `KeReleaseSpinLock`), for data touched both at PASSIVE_LEVEL and in completion routines.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use nt_imports::{KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock, KIRQL, KSPIN_LOCK};

/// Mutual exclusion at IRQL <= DISPATCH_LEVEL. Hold it briefly: no waits, no paged memory,
/// no WSK calls that may complete inline into code that takes the same lock.
/// The lock itself must live in nonpaged memory (as any `KSPIN_LOCK`).
pub struct SpinLock<T> {
    lock: UnsafeCell<KSPIN_LOCK>,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by the kernel spin lock.
unsafe impl<T: Send> Send for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A free lock around `value` (`KeInitializeSpinLock` sets the word to zero).
    pub const fn new(value: T) -> Self {
        SpinLock {
            lock: UnsafeCell::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Acquires the lock, raising to DISPATCH_LEVEL until the guard drops.
    /// IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockraisetodpc>
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: the lock word lives as long as self.
        let old = unsafe { KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        SpinLockGuard { lock: self, old }
    }
}

/// Holds a [`SpinLock`]; releases it and restores IRQL on drop.
pub struct SpinLockGuard<'a, T> {
    lock: &'a SpinLock<T>,
    old: KIRQL,
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: held by this guard.
        unsafe { KeReleaseSpinLock(self.lock.lock.get(), self.old) };
    }
}
