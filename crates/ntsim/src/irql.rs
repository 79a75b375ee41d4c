//! Per-thread emulated IRQL (`KeGetCurrentIrql`), and the spin-lock routines that raise it.
//!
//! Every host thread starts at PASSIVE_LEVEL. The WSK provider raises to DISPATCH_LEVEL
//! around IRP completion and event callbacks, as the Windows provider may.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::verifier::{self, Rule};

/// `PASSIVE_LEVEL`.
pub const PASSIVE_LEVEL: u8 = 0;
/// `APC_LEVEL`.
pub const APC_LEVEL: u8 = 1;
/// `DISPATCH_LEVEL`.
pub const DISPATCH_LEVEL: u8 = 2;

thread_local! {
    static IRQL: Cell<u8> = const { Cell::new(PASSIVE_LEVEL) };
}

/// The calling thread's emulated IRQL.
pub fn current() -> u8 {
    IRQL.with(|c| c.get())
}

/// Sets the calling thread's IRQL, returning the old one.
pub fn set(irql: u8) -> u8 {
    IRQL.with(|c| c.replace(irql))
}

/// Runs `f` at `irql` (which must not be below the current IRQL), then restores it.
pub fn with_raised<R>(irql: u8, f: impl FnOnce() -> R) -> R {
    let old = current();
    if irql < old {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("raise to IRQL {irql} from higher IRQL {old}"),
        );
    }
    set(irql.max(old));
    let r = f();
    set(old);
    r
}

/// Records an [`Rule::IrqlNotLessOrEqual`] violation if the calling thread's IRQL is above
/// `max`, the highest IRQL the routine's documentation allows (the bugcheck Windows raises,
/// IRQL_NOT_LESS_OR_EQUAL 0x0A or Driver Verifier's 0xC4, depends on what the routine touches).
pub fn require_at_most(routine: &str, max: u8) {
    let now = current();
    if now > max {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("{routine} called at IRQL {now}; its documented maximum is {max}"),
        );
    }
}

/// `KeGetCurrentIrql`.
#[no_mangle]
pub extern "system" fn KeGetCurrentIrql() -> u8 {
    current()
}

fn spin_acquire(lock: *mut usize) {
    // SAFETY: KSPIN_LOCK is a pointer-sized, pointer-aligned word the caller owns for the
    // lock's lifetime; every access to it goes through atomics here.
    let word = unsafe { AtomicUsize::from_ptr(lock) };
    let me = thread_id();
    loop {
        match word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return,
            Err(owner) if owner == me => {
                verifier::violation(
                    Rule::SpinLockRecursion,
                    format!("spin lock {lock:p} acquired recursively (would deadlock)"),
                );
                return;
            }
            Err(_) => std::hint::spin_loop(),
        }
    }
}

fn spin_release(lock: *mut usize) {
    // SAFETY: as in spin_acquire.
    let word = unsafe { AtomicUsize::from_ptr(lock) };
    let prev = word.swap(0, Ordering::Release);
    if prev != thread_id() {
        verifier::violation(
            Rule::SpinLockNotOwned,
            format!("spin lock {lock:p} released by a thread that does not hold it"),
        );
    }
}

fn thread_id() -> usize {
    thread_local! { static ID: u8 = const { 0 }; }
    ID.with(|b| b as *const u8 as usize)
}

/// `KeInitializeSpinLock`.
///
/// # Safety
/// `lock` points to a writable KSPIN_LOCK.
#[no_mangle]
pub unsafe extern "system" fn KeInitializeSpinLock(lock: *mut usize) {
    // SAFETY: caller contract.
    unsafe { lock.write(0) };
}

/// `KeAcquireSpinLockRaiseToDpc`.
///
/// # Safety
/// `lock` points to an initialised KSPIN_LOCK that outlives the hold.
#[no_mangle]
pub unsafe extern "system" fn KeAcquireSpinLockRaiseToDpc(lock: *mut usize) -> u8 {
    let old = current();
    if old > DISPATCH_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("KeAcquireSpinLockRaiseToDpc at IRQL {old}"),
        );
    }
    set(DISPATCH_LEVEL);
    spin_acquire(lock);
    old
}

/// `KeReleaseSpinLock`.
///
/// # Safety
/// `lock` is held by the caller.
#[no_mangle]
pub unsafe extern "system" fn KeReleaseSpinLock(lock: *mut usize, new_irql: u8) {
    spin_release(lock);
    set(new_irql);
}

/// `KeAcquireSpinLockAtDpcLevel`.
///
/// # Safety
/// `lock` points to an initialised KSPIN_LOCK.
#[no_mangle]
pub unsafe extern "system" fn KeAcquireSpinLockAtDpcLevel(lock: *mut usize) {
    if current() < DISPATCH_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("KeAcquireSpinLockAtDpcLevel at IRQL {}", current()),
        );
    }
    spin_acquire(lock);
}

/// `KeReleaseSpinLockFromDpcLevel`.
///
/// # Safety
/// `lock` is held by the caller.
#[no_mangle]
pub unsafe extern "system" fn KeReleaseSpinLockFromDpcLevel(lock: *mut usize) {
    spin_release(lock);
}

static CANCEL_LOCK: AtomicUsize = AtomicUsize::new(0);

/// `IoAcquireCancelSpinLock`: the system-wide cancel spin lock.
///
/// # Safety
/// `irql` is writable.
#[no_mangle]
pub unsafe extern "system" fn IoAcquireCancelSpinLock(irql: *mut u8) {
    // SAFETY: the static lock word lives forever.
    let old = unsafe { KeAcquireSpinLockRaiseToDpc(CANCEL_LOCK.as_ptr()) };
    // SAFETY: caller contract.
    unsafe { irql.write(old) };
}

/// `IoReleaseCancelSpinLock`.
#[no_mangle]
pub extern "system" fn IoReleaseCancelSpinLock(irql: u8) {
    // SAFETY: the static lock word lives forever; the caller holds it.
    unsafe { KeReleaseSpinLock(CANCEL_LOCK.as_ptr(), irql) };
}
