//! Rundown protection of a socket: dispatch calls *enter* before they touch the provider's
//! socket and *exit* when the call returned; close *begins* the rundown (no enter succeeds
//! afterwards) and waits until every call in progress has exited, then calls
//! `WskCloseSocket`, after which nothing may touch the socket ("the WSK subsystem
//! deallocates the socket"). The counterpart of `ExAcquireRundownProtection` /
//! `ExWaitForRundownProtectionRelease`, without their allocation.
//!
//! The closer never spins: at PASSIVE_LEVEL it waits on a KEVENT on its own stack, which the
//! last caller to exit sets (spinning at DISPATCH_LEVEL against a holder preempted on the
//! same CPU would never end: bugcheck 0x133, issue 12 defect 3). A close above
//! PASSIVE_LEVEL only happens in the socket's drop, when no call can be in progress (calls
//! borrow the socket), so it never needs to wait.
//!
//! This file uses only `crate::sync::atomic` and `crate::sync::WaitEvent`, so that
//! `tests/rundown_model.rs` compiles it unchanged against shuttle's atomics and explores its
//! interleavings.

use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use crate::sync::WaitEvent;

/// The state's high bit: close began.
pub(crate) const CLOSING: usize = 1 << (usize::BITS - 1);

/// Marks a rundown begun without a waiter (above PASSIVE_LEVEL): never signalled.
const NO_WAITER: *mut WaitEvent = core::ptr::dangling_mut::<WaitEvent>();

/// The rundown state of one socket.
pub(crate) struct Rundown {
    /// Calls in progress, plus [`CLOSING`] once close began.
    state: AtomicUsize,
    /// The closer's event (set before [`CLOSING`]; claims the close: one closer only).
    waiter: AtomicPtr<WaitEvent>,
}

impl Rundown {
    /// No call in progress, not closing.
    pub(crate) const fn new() -> Self {
        Rundown {
            state: AtomicUsize::new(0),
            waiter: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Enters a call: false once close began (then nothing was counted). Any IRQL.
    #[inline]
    pub(crate) fn enter(&self) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & CLOSING != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Exits a call entered with [`Rundown::enter`]; the last one out after close began
    /// wakes the closer. Any IRQL <= DISPATCH_LEVEL.
    #[inline]
    pub(crate) fn exit(&self) {
        if self.state.fetch_sub(1, Ordering::AcqRel) == CLOSING | 1 {
            self.wake_closer();
        }
    }

    /// The last call out after close began: sets the closer's event. Out of line: the
    /// path of every dispatch call stays the decrement and one comparison.
    #[cold]
    #[inline(never)]
    fn wake_closer(&self) {
        // The closer claimed `waiter` before it set CLOSING, and it waits (it saw this
        // call in progress), so the event is alive until it is set.
        let w = self.waiter.load(Ordering::Acquire);
        if !w.is_null() && w != NO_WAITER {
            // SAFETY: the closer's event, alive until set (see above).
            unsafe { (*w).set() };
        }
    }

    /// True once close began.
    pub(crate) fn is_closing(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSING != 0
    }

    /// Begins the rundown and waits (on a KEVENT) until every call in progress exited.
    /// False if another close began it first (then nothing waits). PASSIVE_LEVEL.
    pub(crate) fn close_and_wait(&self) -> bool {
        WaitEvent::with(|event| {
            let w = event as *const WaitEvent as *mut WaitEvent;
            if !self.claim(w) {
                return false;
            }
            let prev = self.state.fetch_or(CLOSING, Ordering::AcqRel);
            if prev & !CLOSING != 0 {
                event.wait();
            }
            true
        })
    }

    /// Begins the rundown without waiting: false if close already began. For the drop above
    /// PASSIVE_LEVEL, where no call is in progress (calls borrow the socket); returns
    /// false too (and begins nothing) if one were.
    pub(crate) fn close_now(&self) -> bool {
        if self.state.load(Ordering::Acquire) != 0 || !self.claim(NO_WAITER) {
            return false;
        }
        let prev = self.state.fetch_or(CLOSING, Ordering::AcqRel);
        prev & !CLOSING == 0
    }

    fn claim(&self, w: *mut WaitEvent) -> bool {
        self.waiter
            .compare_exchange(
                core::ptr::null_mut(),
                w,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}
