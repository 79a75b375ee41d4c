//! Seeded schedule exploration: when a seed is set ([`set_seed`]), the I/O manager and the
//! WSK provider take their timing and ordering choices from it instead of from the fixed
//! [`crate::config::CompletionMode`]:
//!
//! - per WSK operation, whether an operation that finished during its dispatch call completes
//!   inline (its completion routine runs before the call returns) or pends and completes later
//!   from the provider's I/O thread;
//! - the order in which the I/O thread runs its queued completions, and whether each one is
//!   put off by one more round (so completions are reordered and delayed by k rounds);
//! - a `CancelIoEx` injected just before the dispatch routine runs (only `Irp->Cancel` is set,
//!   as when the cancel wins the race against the dispatch routine setting its cancel routine)
//!   or just after it returned `STATUS_PENDING`;
//! - a few `yield`s at the hook points ([`Point`]), which shift thread interleavings.
//!
//! Each decision is a hash of the seed, the hook point and how many decisions that point has
//! made, so a seed always makes the same sequence of choices at each point. Real sockets and
//! OS threads still decide the rest of the timing: a replayed seed makes the same choices,
//! which makes a failure found with it likely, not certain, to recur.
//!
//! Without a seed (the default, and after [`crate::config::reset`]) nothing changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::CompletionMode;

/// A hook point where a schedule makes a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Point {
    /// `DeviceIoControl` has resolved its handle, before it builds its IRP.
    HandleReferenced = 0,
    /// `CloseHandle` has closed the handle, before it sends IRP_MJ_CLEANUP.
    HandleClosed = 1,
    /// The I/O manager is about to call the dispatch routine of a DEVICE_CONTROL IRP.
    BeforeDispatch = 2,
    /// The dispatch routine of a DEVICE_CONTROL IRP returned `STATUS_PENDING`.
    AfterDispatch = 3,
    /// The WSK provider chooses the completion path of an operation.
    ProviderCompletion = 4,
    /// The provider's I/O thread orders and delays its queued completions.
    IoThread = 5,
    /// The provider is about to complete an IRP.
    Complete = 6,
    /// The provider has made a new socket visible to its I/O thread, and the dispatch
    /// routine does not hold the socket's lock: the I/O thread may run a round on it now.
    Published = 7,
}

const POINTS: usize = 8;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SEED: AtomicU64 = AtomicU64::new(0);
static DRAWS: [AtomicU64; POINTS] = [const { AtomicU64::new(0) }; POINTS];

/// How many choices of each kind the schedules made (cumulative, for reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Cancels injected before a dispatch routine ran.
    pub cancels_before_dispatch: u64,
    /// Cancels injected after a dispatch routine returned `STATUS_PENDING`.
    pub cancels_after_dispatch: u64,
    /// Operations completed inline by the provider's choice.
    pub inline_completions: u64,
    /// Operations pended by the provider's choice.
    pub pended_completions: u64,
    /// Queued completions put off by one I/O-thread round.
    pub delayed_completions: u64,
    /// I/O-thread batches reordered.
    pub reordered_batches: u64,
    /// `yield`s inserted at hook points.
    pub yields: u64,
    /// Rounds of the I/O thread run at a [`Point::Published`] hook.
    pub io_rounds: u64,
}

struct Counters {
    cancels_before_dispatch: AtomicU64,
    cancels_after_dispatch: AtomicU64,
    inline_completions: AtomicU64,
    pended_completions: AtomicU64,
    delayed_completions: AtomicU64,
    reordered_batches: AtomicU64,
    yields: AtomicU64,
    io_rounds: AtomicU64,
}

static COUNTERS: Counters = Counters {
    cancels_before_dispatch: AtomicU64::new(0),
    cancels_after_dispatch: AtomicU64::new(0),
    inline_completions: AtomicU64::new(0),
    pended_completions: AtomicU64::new(0),
    delayed_completions: AtomicU64::new(0),
    reordered_batches: AtomicU64::new(0),
    yields: AtomicU64::new(0),
    io_rounds: AtomicU64::new(0),
};

/// The cumulative counts of the choices made so far.
pub fn stats() -> Stats {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Stats {
        cancels_before_dispatch: l(&COUNTERS.cancels_before_dispatch),
        cancels_after_dispatch: l(&COUNTERS.cancels_after_dispatch),
        inline_completions: l(&COUNTERS.inline_completions),
        pended_completions: l(&COUNTERS.pended_completions),
        delayed_completions: l(&COUNTERS.delayed_completions),
        reordered_batches: l(&COUNTERS.reordered_batches),
        yields: l(&COUNTERS.yields),
        io_rounds: l(&COUNTERS.io_rounds),
    }
}

/// Starts the schedule of `seed` (its decision counters restart at 0), or with `None`
/// returns to the fixed behaviour of [`crate::config`].
pub fn set_seed(seed: Option<u64>) {
    for d in &DRAWS {
        d.store(0, Ordering::SeqCst);
    }
    SEED.store(seed.unwrap_or(0), Ordering::SeqCst);
    ENABLED.store(seed.is_some(), Ordering::SeqCst);
}

/// The seed of the running schedule, if one is set.
pub fn seed() -> Option<u64> {
    ENABLED
        .load(Ordering::SeqCst)
        .then(|| SEED.load(Ordering::SeqCst))
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next decision word of `point`, if a schedule runs.
fn draw(point: Point) -> Option<u64> {
    let seed = seed()?;
    let n = DRAWS[point as usize].fetch_add(1, Ordering::Relaxed);
    Some(mix(seed ^ mix(((point as u64) << 56) ^ n)))
}

/// The seed's profile, in [0, 4): how aggressive each kind of choice is, so that some seeds
/// cancel often and others rarely, some pend everything and others complete inline.
fn profile(shift: u32) -> u64 {
    (mix(SEED.load(Ordering::Relaxed)) >> shift) & 3
}

/// A yield point: 0 to 3 `yield_now`s, as the schedule says.
pub fn point(point: Point) {
    if let Some(r) = draw(point) {
        let n = r & 3;
        for _ in 0..n {
            std::thread::yield_now();
        }
        COUNTERS.yields.fetch_add(n, Ordering::Relaxed);
    }
}

/// Whether the schedule injects a cancel at `point` (BeforeDispatch or AfterDispatch).
pub(crate) fn inject_cancel(point: Point) -> bool {
    let Some(r) = draw(point) else {
        return false;
    };
    // Profile 0: never; 1: 1 in 16; 2: 1 in 4; 3: 1 in 2.
    let cancel = match profile(if point == Point::BeforeDispatch { 0 } else { 2 }) {
        0 => false,
        1 => r % 16 == 0,
        2 => r % 4 == 0,
        _ => r % 2 == 0,
    };
    if cancel {
        let c = if point == Point::BeforeDispatch {
            &COUNTERS.cancels_before_dispatch
        } else {
            &COUNTERS.cancels_after_dispatch
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
    cancel
}

/// The completion path of one provider operation: the schedule's choice, or the configured
/// [`crate::config::completion_mode`] without a schedule.
pub(crate) fn completion_mode() -> CompletionMode {
    let Some(r) = draw(Point::ProviderCompletion) else {
        return crate::config::completion_mode();
    };
    // Profile 0: always pending; 3: always inline; 1, 2: mixed per operation.
    let inline = match profile(4) {
        0 => false,
        1 => r % 4 == 0,
        2 => r % 4 != 0,
        _ => true,
    };
    if inline {
        COUNTERS.inline_completions.fetch_add(1, Ordering::Relaxed);
        CompletionMode::Inline
    } else {
        COUNTERS.pended_completions.fetch_add(1, Ordering::Relaxed);
        CompletionMode::Pending
    }
}

/// Reorders an I/O-thread batch (a seeded Fisher-Yates shuffle); no-op without a schedule.
pub(crate) fn shuffle<T>(items: &mut [T]) {
    if items.len() < 2 {
        return;
    }
    let Some(mut r) = draw(Point::IoThread) else {
        return;
    };
    for i in (1..items.len()).rev() {
        r = mix(r);
        items.swap(i, (r % (i as u64 + 1)) as usize);
    }
    COUNTERS.reordered_batches.fetch_add(1, Ordering::Relaxed);
}

/// Whether to put a queued completion off by one I/O-thread round (so a completion is
/// delayed by k rounds with probability 2^-k under the most aggressive profile).
pub(crate) fn delay_completion() -> bool {
    let Some(r) = draw(Point::IoThread) else {
        return false;
    };
    let delay = match profile(6) {
        0 => false,
        1 => r % 8 == 0,
        2 => r % 4 == 0,
        _ => r % 2 == 0,
    };
    if delay {
        COUNTERS.delayed_completions.fetch_add(1, Ordering::Relaxed);
    }
    delay
}

/// Whether the I/O thread runs a round at `point` (as if a readiness edge arrived while the
/// dispatching thread was preempted there): 1 in 2 under a schedule, never without one.
pub(crate) fn io_round(point: Point) -> bool {
    let round = draw(point).is_some_and(|r| r % 2 == 0);
    if round {
        COUNTERS.io_rounds.fetch_add(1, Ordering::Relaxed);
    }
    round
}
