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

/// The atomics of the rundown protocol ([`crate::socket`]'s `Rundown`). The kernel build uses
/// `core`'s; the schedule explorer (`tests/rundown_model.rs`) compiles the same protocol
/// source against shuttle's instrumented atomics by providing its own `crate::sync`.
pub(crate) mod atomic {
    pub(crate) use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
}

/// A notification KEVENT for one waiter at PASSIVE_LEVEL, set from any IRQL <=
/// DISPATCH_LEVEL. It must not move once initialised, so it only exists inside
/// [`WaitEvent::with`], on the waiter's stack (the pattern of IRP completion events).
pub(crate) struct WaitEvent(UnsafeCell<windows_sys::Wdk::Foundation::KEVENT>);

impl WaitEvent {
    /// Runs `f` with a fresh, unsignalled event that lives (unmoved) until `f` returns.
    pub(crate) fn with<R>(f: impl FnOnce(&WaitEvent) -> R) -> R {
        // SAFETY: KEVENT is plain data; KeInitializeEvent gives it its state before use.
        let e = WaitEvent(UnsafeCell::new(unsafe { core::mem::zeroed() }));
        // SAFETY: our event, initialised in place where it stays. NotificationEvent = 0.
        unsafe { windows_sys::Wdk::System::SystemServices::KeInitializeEvent(e.0.get(), 0, false) };
        f(&e)
    }

    /// Signals the event (`KeSetEvent`). IRQL <= DISPATCH_LEVEL. After this returns, the
    /// caller must not touch the event again (its waiter may have returned).
    pub(crate) fn set(&self) {
        // SAFETY: a live, initialised event (the waiter is still inside `with`).
        unsafe { windows_sys::Wdk::System::SystemServices::KeSetEvent(self.0.get(), 0, false) };
    }

    /// Waits for the event without a timeout (`KeWaitForSingleObject`, Executive,
    /// KernelMode). PASSIVE_LEVEL.
    pub(crate) fn wait(&self) {
        // SAFETY: a live, initialised event; callers run at PASSIVE_LEVEL.
        unsafe {
            windows_sys::Wdk::System::SystemServices::KeWaitForSingleObject(
                self.0.get() as *const core::ffi::c_void,
                0,
                0,
                false,
                core::ptr::null(),
            )
        };
    }
}

// SAFETY: a KEVENT is signalled and waited on from any thread; the kernel serialises it.
unsafe impl Sync for WaitEvent {}
