//! The host verifier: live-object accounting and rule checks.
//!
//! Windows reports a broken kernel rule with a bugcheck; here a broken rule is recorded as a
//! [`Violation`], printed at once to stderr, and fails the test at its final
//! [`Scope::assert_clean`]. Live IRPs, MDLs, pool bytes (by tag) and sockets are counted so
//! that every test can prove it leaked nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A kernel rule the verifier checks. The bugcheck Windows raises for it is named in the doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A driver-allocated IRP's completion routine returned something other than
    /// `STATUS_MORE_PROCESSING_REQUIRED`: the I/O manager would complete it to a thread that
    /// never issued it (memory corruption or bugcheck 0x44 on Windows).
    CompletionRoutineStatus,
    /// `IoFreeIrp` on an IRP that a driver below still owns.
    IrpFreedWhilePending,
    /// `IoReuseIrp` on an IRP that a driver below still owns.
    IrpReusedWhilePending,
    /// An IRP completed twice (MULTIPLE_IRP_COMPLETE_REQUESTS, 0x44).
    MultipleIrpComplete,
    /// An IRP completed with its cancel routine still set (Driver Verifier 0xC9/0x20A).
    CompleteWithCancelRoutine,
    /// A dispatch routine's return disagrees with the IRP's pending state: it called
    /// `IoMarkIrpPending` (SL_PENDING_RETURNED set) and returned a status other than
    /// `STATUS_PENDING`, or returned `STATUS_PENDING` without it. Driver Verifier reports this
    /// as bugcheck 0xC9 (DRIVER_VERIFIER_IOMANAGER_VIOLATION); without the verifier, I/O
    /// completion runs twice or never (the IoMarkIrpPending page: "the driver must return
    /// STATUS_PENDING").
    PendingStatusMismatch,
    /// A wait on something that is not a dispatcher object (a FILE_OBJECT given to
    /// `KeWaitForSingleObject`): Windows reads a DISPATCHER_HEADER that is not there.
    NotADispatcherObject,
    /// An asynchronous `ZwReadFile` still in flight when its handle was closed or the test
    /// ended: on Windows the read later writes the caller's IO_STATUS_BLOCK and buffer, which
    /// the caller has freed or reused (memory corruption).
    AsyncIoOutstanding,
    /// An IRP passed on with no stack location left (NO_MORE_IRP_STACK_LOCATIONS, 0x35).
    NoMoreStackLocations,
    /// A `WSK_BUF` whose `Offset + Length` runs past its MDL chain (a bugcheck on Windows).
    WskBufBeyondMdl,
    /// An MDL handed to I/O that is neither locked nor built for nonpaged pool.
    MdlNotLocked,
    /// `IoFreeMdl` on an MDL whose pages are still locked.
    MdlFreedLocked,
    /// A wait with a non-zero timeout above APC_LEVEL (IRQL_NOT_LESS_OR_EQUAL / 0xC4).
    WaitAboveApcLevel,
    /// A routine called above its documented IRQL.
    IrqlNotLessOrEqual,
    /// An object freed twice, or a pointer that was never allocated (BAD_POOL_CALLER, 0xC2).
    DoubleFree,
    /// `ExFreePoolWithTag` with a tag other than the allocation's (BAD_POOL_CALLER, 0xC2).
    PoolTagMismatch,
    /// A spin lock acquired by the thread that already holds it (a deadlock on Windows).
    SpinLockRecursion,
    /// A spin lock released by a thread that does not hold it.
    SpinLockNotOwned,
    /// A WSK call on a socket after `WskCloseSocket`, or on something that is not a socket.
    InvalidSocket,
    /// `WskDeregister` could not finish because sockets or captured NPIs are still alive.
    DeregisterBlocked,
    /// Data indications kept by the client (receive callback returned STATUS_PENDING) and
    /// never handed back with `WskRelease` before the socket closed.
    IndicationNotReleased,
    /// A wait with no timeout that did not end within the emulator's hang limit.
    HangSuspected,
    /// A device-object or driver-object rule (unload with devices left, and the like).
    DriverObject,
    /// A security descriptor given to `WskSocket`/`WskSocketConnect`/`SO_WSK_SECURITY` or
    /// released with `WSK_RELEASE_SD` that is not a live cached copy from `WSK_CACHE_SD`
    /// (the WskSocketConnect docs require a cached copy; releasing one twice is a double free).
    SecurityDescriptorNotCached,
    /// A kernel handle (`ZwClose`) or object reference (`ObDereferenceObject`) a driver never
    /// released by the end of a test (`ntsim::file`; leaks the object on Windows).
    ObjectReferenceLeak,
    /// KMDF: a request completed twice (KMDF Verifier; a bugcheck 0x10D on Windows).
    WdfRequestCompletedTwice,
    /// KMDF: a request completed while cancelable (without `WdfRequestUnmarkCancelable`), or
    /// after `WdfRequestUnmarkCancelable` returned STATUS_CANCELLED but before its
    /// `EvtRequestCancel` ran (KMDF Verifier: "Completing Cancelable WDFREQUEST").
    WdfCompleteCancelable,
    /// KMDF: requests still outstanding when their device is deleted or the driver unloads.
    WdfRequestOutstanding,
    /// KMDF: a WDF function called above its documented maximum IRQL.
    WdfIrql,
    /// KMDF: another misuse of a WDF function (an invalid or stale handle, an uninitialised
    /// structure size, a request the driver does not own).
    WdfApi,
    /// An IRP touched by a lower level after it completed it (for instance
    /// `IoMarkIrpPending` on an IRP whose completion already unwound its stack locations:
    /// the write lands past the packet, corrupting the pool on Windows and the heap here).
    IrpTouchedAfterCompletion,
    /// An I/O-manager IRP came back to I/O completion with different
    /// `Parameters.DeviceIoControl` in the driver's stack location than the I/O manager put
    /// there before dispatch. Windows' I/O manager is not documented to read them then;
    /// Wine 8.0's completion path does (a forwarded SEND whose location held a `WSK_BUF`
    /// killed winedevice.exe: "wine client error: partial write"), so ntsim holds drivers to
    /// leaving them as they were.
    StackLocationClobbered,
}

/// One recorded rule violation.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// What happened, with addresses.
    pub detail: String,
}

#[derive(Default)]
struct State {
    violations: Vec<Violation>,
    pool_by_tag: BTreeMap<u32, (u64, u64)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    violations: Vec::new(),
    pool_by_tag: BTreeMap::new(),
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Monotonic counters (totals since process start) and live gauges.
pub struct Counters {
    /// IRPs allocated by `IoAllocateIrp` (total).
    pub irp_allocations: AtomicU64,
    /// IRPs live now (allocated, not freed), including I/O-manager IRPs.
    pub live_irps: AtomicU64,
    /// MDLs allocated by `IoAllocateMdl` (total).
    pub mdl_allocations: AtomicU64,
    /// MDLs live now.
    pub live_mdls: AtomicU64,
    /// Pool allocations (total).
    pub pool_allocations: AtomicU64,
    /// Pool bytes live now.
    pub live_pool_bytes: AtomicU64,
    /// WSK sockets live now (created, not closed).
    pub live_sockets: AtomicU64,
    /// Bytes of MDL-described client data the provider read straight from client memory.
    pub bytes_sent_from_mdl: AtomicU64,
    /// Bytes of user data the I/O manager copied (METHOD_BUFFERED system buffers).
    pub io_manager_bytes_copied: AtomicU64,
}

/// The global counters.
pub static COUNTERS: Counters = Counters {
    irp_allocations: AtomicU64::new(0),
    live_irps: AtomicU64::new(0),
    mdl_allocations: AtomicU64::new(0),
    live_mdls: AtomicU64::new(0),
    pool_allocations: AtomicU64::new(0),
    live_pool_bytes: AtomicU64::new(0),
    live_sockets: AtomicU64::new(0),
    bytes_sent_from_mdl: AtomicU64::new(0),
    io_manager_bytes_copied: AtomicU64::new(0),
};

/// Records a violation and prints it, as a bugcheck would stop the machine.
pub fn violation(rule: Rule, detail: impl Into<String>) {
    let detail = detail.into();
    eprintln!("*** ntsim verifier: {rule:?}: {detail}");
    state().violations.push(Violation { rule, detail });
}

pub(crate) fn pool_add(tag: u32, bytes: u64) {
    let mut s = state();
    let e = s.pool_by_tag.entry(tag).or_default();
    e.0 += bytes;
    e.1 += 1;
}

pub(crate) fn pool_sub(tag: u32, bytes: u64) {
    let mut s = state();
    if let Some(e) = s.pool_by_tag.get_mut(&tag) {
        // An emptied tag keeps its entry (with zeros, hidden from snapshots), so that a tag
        // whose only block is allocated and freed per request costs no tree node each time.
        e.0 = e.0.saturating_sub(bytes);
        e.1 = e.1.saturating_sub(1);
    }
}

/// A point-in-time view of the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Live IRPs.
    pub live_irps: u64,
    /// Live MDLs.
    pub live_mdls: u64,
    /// Live pool bytes.
    pub live_pool_bytes: u64,
    /// Live pool bytes and allocation counts by tag (tag as its four characters).
    pub pool_by_tag: BTreeMap<String, (u64, u64)>,
    /// Live WSK sockets.
    pub live_sockets: u64,
    /// Total IRP allocations so far.
    pub irp_allocations: u64,
    /// Total pool allocations so far.
    pub pool_allocations: u64,
    /// Total MDL allocations so far.
    pub mdl_allocations: u64,
    /// Violations recorded so far (rules only).
    pub violations: usize,
}

/// Renders a pool tag as its four characters, as `!poolused` shows it.
pub fn tag_str(tag: u32) -> String {
    tag.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}

/// Takes a snapshot of the counters.
pub fn snapshot() -> Snapshot {
    let s = state();
    let c = &COUNTERS;
    Snapshot {
        live_irps: c.live_irps.load(Ordering::SeqCst),
        live_mdls: c.live_mdls.load(Ordering::SeqCst),
        live_pool_bytes: c.live_pool_bytes.load(Ordering::SeqCst),
        pool_by_tag: s
            .pool_by_tag
            .iter()
            .filter(|(_, v)| v.1 != 0)
            .map(|(t, v)| (tag_str(*t), *v))
            .collect(),
        live_sockets: c.live_sockets.load(Ordering::SeqCst),
        irp_allocations: c.irp_allocations.load(Ordering::SeqCst),
        pool_allocations: c.pool_allocations.load(Ordering::SeqCst),
        mdl_allocations: c.mdl_allocations.load(Ordering::SeqCst),
        violations: s.violations.len(),
    }
}

/// Removes and returns every recorded violation.
pub fn take_violations() -> Vec<Violation> {
    std::mem::take(&mut state().violations)
}

/// The violations recorded so far, without removing them.
pub fn violations() -> Vec<Violation> {
    state().violations.clone()
}

/// Serialises tests that share the process-wide emulated kernel, and checks that each one
/// ends with nothing leaked and no rule broken.
///
/// `cargo test` runs tests on several threads of one process; the emulated kernel is one
/// per process (as a kernel is one per machine), so tests take a `Scope` first.
pub struct Scope {
    _guard: MutexGuard<'static, ()>,
    base: Snapshot,
}

static SCOPE_LOCK: Mutex<()> = Mutex::new(());

impl Scope {
    /// Takes the process-wide test lock, resets the emulator's switches to their defaults,
    /// drops violations left by an earlier failed test, and records the live-object baseline.
    pub fn begin() -> Scope {
        let guard = SCOPE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        crate::config::reset();
        let stale = take_violations();
        if !stale.is_empty() {
            eprintln!(
                "ntsim: dropping {} violation(s) left by an earlier test",
                stale.len()
            );
        }
        Scope {
            _guard: guard,
            base: snapshot(),
        }
    }

    /// The baseline taken at [`Scope::begin`].
    pub fn baseline(&self) -> &Snapshot {
        &self.base
    }

    /// Live objects now minus the baseline: (IRPs, MDLs, pool bytes, sockets).
    pub fn leaks(&self) -> (i64, i64, i64, i64) {
        let now = snapshot();
        (
            now.live_irps as i64 - self.base.live_irps as i64,
            now.live_mdls as i64 - self.base.live_mdls as i64,
            now.live_pool_bytes as i64 - self.base.live_pool_bytes as i64,
            now.live_sockets as i64 - self.base.live_sockets as i64,
        )
    }

    /// Panics (failing the test) unless no IRP, MDL, pool byte or socket leaked since
    /// [`Scope::begin`] and no rule was broken. Waits (bounded, 5 s) for the provider's I/O
    /// thread to finish releasing objects whose IRPs already completed.
    pub fn assert_clean(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.leaks() != (0, 0, 0, 0) && std::time::Instant::now() < deadline {
            crate::wait_quiescent(std::time::Duration::from_millis(50));
        }
        crate::file::check_released();
        let v = violations();
        let leaks = self.leaks();
        let now = snapshot();
        assert!(
            v.is_empty(),
            "verifier violations: {v:#?}\nsnapshot: {now:#?}"
        );
        assert_eq!(
            leaks,
            (0, 0, 0, 0),
            "leaked (IRPs, MDLs, pool bytes, sockets); snapshot now: {now:#?}, baseline: {:#?}",
            self.base
        );
    }
}
