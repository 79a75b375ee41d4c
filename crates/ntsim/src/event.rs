//! Dispatcher objects: `KeInitializeEvent`, `KeSetEvent`, `KeClearEvent`, `KeResetEvent`,
//! `KeWaitForSingleObject` (relative timeouts in 100 ns units), `KeDelayExecutionThread`.
//!
//! The event's state lives where Windows keeps it, in the caller's KEVENT
//! (`Header.SignalState`); one process-wide condition variable wakes waiters.

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use windows_sys::Wdk::Foundation::KEVENT;
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_SUCCESS, STATUS_TIMEOUT};

use crate::irql;
use crate::verifier::{self, Rule};

/// `NotificationEvent`.
pub const NOTIFICATION_EVENT: i32 = 0;
/// `SynchronizationEvent`.
pub const SYNCHRONIZATION_EVENT: i32 = 1;

static LOCK: Mutex<()> = Mutex::new(());
static WAKE: Condvar = Condvar::new();

fn signal_state(event: *mut KEVENT) -> &'static AtomicI32 {
    // SAFETY: the caller passes a live, initialised KEVENT; SignalState is an aligned i32 that
    // is only accessed atomically here while the event lives.
    unsafe { AtomicI32::from_ptr(std::ptr::addr_of_mut!((*event).Header.SignalState)) }
}

fn event_type(event: *mut KEVENT) -> u8 {
    // SAFETY: the first byte of DISPATCHER_HEADER is Type.
    unsafe { *(event as *const u8) }
}

/// `KeInitializeEvent`.
///
/// # Safety
/// `event` points to writable KEVENT storage.
#[no_mangle]
pub unsafe extern "system" fn KeInitializeEvent(event: *mut KEVENT, kind: i32, state: bool) {
    // SAFETY: caller contract; zero then set Type and SignalState as Windows does.
    unsafe {
        std::ptr::write_bytes(event, 0, 1);
        *(event as *mut u8) = kind as u8;
        (*event).Header.SignalState = state as i32;
    }
}

/// `KeSetEvent`: returns the previous state.
///
/// # Safety
/// `event` is an initialised KEVENT.
#[no_mangle]
pub unsafe extern "system" fn KeSetEvent(event: *mut KEVENT, _increment: i32, _wait: bool) -> i32 {
    if irql::current() > irql::DISPATCH_LEVEL {
        verifier::violation(Rule::IrqlNotLessOrEqual, "KeSetEvent above DISPATCH_LEVEL");
    }
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let prev = signal_state(event).swap(1, Ordering::SeqCst);
    WAKE.notify_all();
    prev
}

/// `KeClearEvent`.
///
/// # Safety
/// `event` is an initialised KEVENT.
#[no_mangle]
pub unsafe extern "system" fn KeClearEvent(event: *mut KEVENT) {
    signal_state(event).store(0, Ordering::SeqCst);
}

/// `KeResetEvent`: returns the previous state.
///
/// # Safety
/// `event` is an initialised KEVENT.
#[no_mangle]
pub unsafe extern "system" fn KeResetEvent(event: *mut KEVENT) -> i32 {
    signal_state(event).swap(0, Ordering::SeqCst)
}

/// Converts a KeWaitXxx timeout (NULL = infinite; negative = relative, 100 ns units;
/// positive = absolute system time) into a deadline.
fn deadline(timeout: *const i64) -> Option<Instant> {
    if timeout.is_null() {
        return None;
    }
    // SAFETY: non-NULL timeout points to a LARGE_INTEGER per the API contract.
    let t = unsafe { *timeout };
    let now = Instant::now();
    if t <= 0 {
        Some(now + Duration::from_nanos(t.unsigned_abs().saturating_mul(100)))
    } else {
        let sys_now = crate::time::system_time_100ns();
        let rel = t.saturating_sub(sys_now).max(0) as u64;
        Some(now + Duration::from_nanos(rel.saturating_mul(100)))
    }
}

fn check_wait_irql(timeout: *const i64) {
    // SAFETY: as in deadline().
    let zero = !timeout.is_null() && unsafe { *timeout } == 0;
    if !zero && irql::current() > irql::APC_LEVEL {
        verifier::violation(
            Rule::WaitAboveApcLevel,
            format!("wait with non-zero timeout at IRQL {}", irql::current()),
        );
    }
}

/// `KeWaitForSingleObject` on an event. Returns `STATUS_SUCCESS` or `STATUS_TIMEOUT`.
///
/// # Safety
/// `object` is an initialised KEVENT.
#[no_mangle]
pub unsafe extern "system" fn KeWaitForSingleObject(
    object: *const c_void,
    _reason: i32,
    _mode: i8,
    alertable: bool,
    timeout: *const i64,
) -> NTSTATUS {
    if crate::file::is_file_object(object) {
        // A FILE_OBJECT starts with Type/Size, not a DISPATCHER_HEADER: Windows would wait on
        // garbage. Waiting for a file's I/O means an event given to the I/O, or
        // ZwWaitForSingleObject on the file handle (the object's Event).
        verifier::violation(
            Rule::NotADispatcherObject,
            format!("KeWaitForSingleObject({object:p}): a FILE_OBJECT is not a dispatcher object"),
        );
        return STATUS_SUCCESS;
    }
    // SAFETY: forwarded caller contract.
    unsafe { wait_for_event(object, alertable, timeout) }
}

/// The wait of `KeWaitForSingleObject` on an initialised KEVENT (also used by
/// `ZwWaitForSingleObject`).
///
/// # Safety
/// `object` is an initialised KEVENT that outlives the wait.
pub(crate) unsafe fn wait_for_event(
    object: *const c_void,
    _alertable: bool,
    timeout: *const i64,
) -> NTSTATUS {
    check_wait_irql(timeout);
    let event = object as *mut KEVENT;
    let state = signal_state(event);
    let sync = event_type(event) == SYNCHRONIZATION_EVENT as u8;
    let limit = deadline(timeout);
    let hang_limit = Instant::now() + crate::config::hang_limit();
    let mut hang_reported = false;
    let mut g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let signalled = if sync {
            state
                .compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        } else {
            state.load(Ordering::SeqCst) != 0
        };
        if signalled {
            return STATUS_SUCCESS;
        }
        let now = Instant::now();
        let until = match limit {
            Some(d) if now >= d => return STATUS_TIMEOUT,
            Some(d) => d,
            None => {
                if now >= hang_limit && !hang_reported {
                    verifier::violation(
                        Rule::HangSuspected,
                        format!("KeWaitForSingleObject({object:p}, infinite) still waiting"),
                    );
                    hang_reported = true;
                }
                now + Duration::from_millis(100)
            }
        };
        g = WAKE
            .wait_timeout(g, until - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// `KeDelayExecutionThread`: sleeps for a relative interval (100 ns units, negative).
///
/// # Safety
/// `interval` points to a LARGE_INTEGER.
#[no_mangle]
pub unsafe extern "system" fn KeDelayExecutionThread(
    _mode: i8,
    _alertable: bool,
    interval: *const i64,
) -> NTSTATUS {
    check_wait_irql(interval);
    if let Some(d) = deadline(interval) {
        std::thread::sleep(d.saturating_duration_since(Instant::now()));
    }
    STATUS_SUCCESS
}
