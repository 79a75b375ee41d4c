//! The allocation-failure sweep: counts the driver's allocations in one sequence (pool from
//! `ExAllocatePool2`/`ExAllocatePoolWithTag`, `IoAllocateIrp`, `IoAllocateMdl`, and Rust heap
//! allocations made through `wsk::alloc`) from the moment [`arm`] is called, and fails the
//! Nth one. A test runs an operation with N = 1, 2, ... until the operation no longer reaches
//! N allocations; every run must end with a clean NTSTATUS, 0 leaks and 0 violations.
//!
//! Only the routines a driver calls are counted: the emulator's own internal allocations
//! (system buffers, indication blocks, provider copies) are not, as they are not the
//! driver's failures to handle. Driver Verifier's low-resources simulation fails allocations
//! at random; this is exhaustive over the sites one operation reaches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Which allocator an allocation went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllocKind {
    /// `ExAllocatePool2` / `ExAllocatePoolWithTag`.
    Pool,
    /// `IoAllocateIrp`.
    Irp,
    /// `IoAllocateMdl`.
    Mdl,
    /// A Rust heap allocation through `wsk::alloc` (`try_box`, `KArc::try_new`, the `Vec`
    /// helpers).
    Rust,
}

/// One counted allocation: its allocator and where it came from (a pool tag, or the
/// `file:line` of the `wsk::alloc` call).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocSite {
    /// The allocator.
    pub kind: AllocKind,
    /// `tag 'WskR'` for pool, `file:line` for Rust allocations, empty for IRPs and MDLs.
    pub site: String,
}

impl std::fmt::Display for AllocSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if !self.site.is_empty() {
            write!(f, " {}", self.site)?;
        }
        Ok(())
    }
}

/// What one armed period saw.
#[derive(Debug, Clone, Default)]
pub struct SweepRun {
    /// Allocations counted while armed.
    pub allocations: u64,
    /// The allocation that was failed, if the count reached the chosen N.
    pub failed: Option<AllocSite>,
    /// Every counted allocation, in order.
    pub sites: Vec<AllocSite>,
}

struct State {
    fail_at: Option<u64>,
    run: SweepRun,
}

static ARMED: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State {
    fail_at: None,
    run: SweepRun {
        allocations: 0,
        failed: None,
        sites: Vec::new(),
    },
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts counting allocations from zero; the `fail_at`-th (1-based) fails, or none if
/// `None` (a counting run). Process-wide: allocations on every thread count, so callers
/// serialise sweeps.
pub fn arm(fail_at: Option<u64>) {
    let mut s = state();
    s.fail_at = fail_at;
    s.run = SweepRun::default();
    ARMED.store(true, Ordering::SeqCst);
}

/// Stops counting and returns what was seen since [`arm`].
pub fn disarm() -> SweepRun {
    ARMED.store(false, Ordering::SeqCst);
    let mut s = state();
    s.fail_at = None;
    std::mem::take(&mut s.run)
}

thread_local! {
    static INTERNAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (the emulator's own use of a driver-facing routine, such as the provider's
/// `IoAllocateMdl` for an indication) without counting its allocations in the sweep.
pub(crate) fn internal<R>(f: impl FnOnce() -> R) -> R {
    let was = INTERNAL.with(|c| c.replace(true));
    let r = f();
    INTERNAL.with(|c| c.set(was));
    r
}

/// Totals since process start of the allocations counted here (the code under test's own,
/// armed or not), by [`AllocKind`] in declaration order.
static OWN: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Allocation requests the code under test (a driver, `wsk`) made through the driver-facing
/// routines since the process started, by allocator: the same requests the sweep counts
/// (never the emulated kernel's own allocations on its behalf, such as the I/O manager's
/// IRPs and MDLs or `IoSetCompletionRoutineEx`'s `IoCx` context, see
/// [`crate::completion_ex::contexts_allocated`]). Counted whether or not a sweep is armed;
/// failed requests count too. Process-wide: take an [`crate::Scope`] and compare two
/// readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnAllocations {
    /// `ExAllocatePool2` / `ExAllocatePoolWithTag` calls.
    pub pool: u64,
    /// `IoAllocateIrp` calls.
    pub irps: u64,
    /// `IoAllocateMdl` calls.
    pub mdls: u64,
    /// Rust heap allocations through `wsk::alloc` (nonpaged pool in the kernel build).
    pub heap: u64,
}

impl OwnAllocations {
    /// The counts now.
    pub fn now() -> OwnAllocations {
        let g = |k: AllocKind| OWN[k as usize].load(Ordering::SeqCst);
        OwnAllocations {
            pool: g(AllocKind::Pool),
            irps: g(AllocKind::Irp),
            mdls: g(AllocKind::Mdl),
            heap: g(AllocKind::Rust),
        }
    }

    /// The allocations made since `earlier` (field by field).
    pub fn since(&self, earlier: &OwnAllocations) -> OwnAllocations {
        OwnAllocations {
            pool: self.pool - earlier.pool,
            irps: self.irps - earlier.irps,
            mdls: self.mdls - earlier.mdls,
            heap: self.heap - earlier.heap,
        }
    }

    /// All four added up.
    pub fn total(&self) -> u64 {
        self.pool + self.irps + self.mdls + self.heap
    }
}

/// Counts one allocation; true if it must fail.
pub(crate) fn should_fail(kind: AllocKind, site: impl FnOnce() -> String) -> bool {
    if INTERNAL.with(|c| c.get()) {
        return false;
    }
    OWN[kind as usize].fetch_add(1, Ordering::SeqCst);
    if !ARMED.load(Ordering::SeqCst) {
        return false;
    }
    let mut s = state();
    if !ARMED.load(Ordering::SeqCst) {
        return false;
    }
    s.run.allocations += 1;
    let site = AllocSite { kind, site: site() };
    let fail = s.fail_at == Some(s.run.allocations);
    if fail {
        s.run.failed = Some(site.clone());
    }
    s.run.sites.push(site);
    fail
}

/// Whether a sweep is counting now.
pub fn armed() -> bool {
    ARMED.load(Ordering::SeqCst)
}

/// Counts one Rust heap allocation that driver code made outside `wsk::alloc` (an
/// infallible `Box::new`, `Vec::push`, ...), as a test's global allocator attributes it;
/// true if it must fail (the allocator then returns NULL, and the infallible call aborts,
/// which is what a bug check would be in the kernel). `site` names the driver frame.
pub fn count_heap_allocation(site: impl FnOnce() -> String) -> bool {
    should_fail(AllocKind::Rust, site)
}

/// The fault hook `wsk::alloc` calls on non-Windows targets before each Rust heap
/// allocation on a kernel path: counts it in the sweep and says whether it must fail.
///
/// # Safety
/// `file` points to `file_len` bytes of UTF-8 (a `core::panic::Location` file name).
#[no_mangle]
pub unsafe extern "C" fn ntsim_rust_alloc_should_fail(
    _size: usize,
    file: *const u8,
    file_len: usize,
    line: u32,
) -> bool {
    should_fail(AllocKind::Rust, || {
        // SAFETY: caller contract.
        let bytes = unsafe { std::slice::from_raw_parts(file, file_len) };
        format!("{}:{line}", String::from_utf8_lossy(bytes))
    })
}
