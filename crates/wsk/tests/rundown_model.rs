//! Schedule exploration (shuttle) of the socket rundown: `src/socket/rundown.rs` is compiled
//! here unchanged against shuttle's instrumented atomics (this test crate provides the
//! `crate::sync` facade that file imports: `sync::atomic` and `sync::WaitEvent`), and a small
//! model of the socket around it (dispatch calls, close, drop, the event context's
//! reference) is run under shuttle's seeded random scheduler.
//!
//! What each execution checks:
//! - no dispatch call touches the socket after `WskCloseSocket` freed it (defect 1);
//! - the closer's stack KEVENT is set only while the closer still waits on it, and the closer
//!   never waits forever (shuttle reports a deadlock);
//! - the socket is closed exactly once, and the event context is released only after the
//!   close completed and the last reference went (defect 2);
//! - `enter` never succeeds after close began.
//!
//! The pre-fix orderings are kept as models (`Old*`) and the explorer must flag them.
//! Seeds: `WSK_SHUTTLE_SEED` (default below); every failure prints its seed and shuttle's
//! replayable schedule.

use std::panic::{catch_unwind, AssertUnwindSafe};

use shuttle::rand::Rng;
use shuttle::scheduler::RandomScheduler;
use shuttle::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use shuttle::sync::Arc;
use shuttle::{thread, Config, Runner};

/// The facade `rundown.rs` imports as `crate::sync`.
mod sync {
    pub mod atomic {
        pub use shuttle::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
    }

    use shuttle::sync::atomic::{AtomicBool, Ordering};

    /// The model of a KEVENT on the waiter's stack. Its memory is leaked on purpose so that a
    /// set after the waiter returned is a checked error here, not undefined behaviour.
    pub struct WaitEvent {
        set: AtomicBool,
        waiter_gone: AtomicBool,
    }

    impl WaitEvent {
        pub fn with<R>(f: impl FnOnce(&WaitEvent) -> R) -> R {
            let e: &'static WaitEvent = Box::leak(Box::new(WaitEvent {
                set: AtomicBool::new(false),
                waiter_gone: AtomicBool::new(false),
            }));
            let r = f(e);
            e.waiter_gone.store(true, Ordering::SeqCst);
            r
        }

        pub fn set(&self) {
            assert!(
                !self.waiter_gone.load(Ordering::SeqCst),
                "KeSetEvent on a stack event whose waiter returned"
            );
            self.set.store(true, Ordering::SeqCst);
        }

        pub fn wait(&self) {
            // A blocking wait: yields until set (shuttle reports a wait that never ends as
            // a deadlock once every thread is blocked like this).
            while !self.set.load(Ordering::SeqCst) {
                shuttle::thread::yield_now();
            }
        }
    }
}

#[allow(dead_code)]
#[path = "../src/socket/rundown.rs"]
mod rundown;

use rundown::Rundown;

const DEFAULT_SEED: u64 = 0x5eed_0012;

fn base_seed() -> u64 {
    std::env::var("WSK_SHUTTLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// Runs `f` under `iterations` random schedules from `seed`; returns the panic message of a
/// failing schedule, printing the seed.
fn explore(name: &str, seed: u64, iterations: usize, f: fn()) -> Option<String> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let runner = Runner::new(
            RandomScheduler::new_from_seed(seed, iterations),
            Config::new(),
        );
        runner.run(f)
    }));
    match r {
        Ok(n) => {
            assert_eq!(n, iterations, "{name}: schedules run");
            None
        }
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("{name}: failing schedule found with seed {seed:#x} ({iterations} schedules): {msg}");
            Some(msg)
        }
    }
}

/// The provider's socket: freed by `WskCloseSocket`.
struct Socket {
    freed: AtomicBool,
    closes: AtomicUsize,
}

impl Socket {
    fn new() -> Self {
        Socket {
            freed: AtomicBool::new(false),
            closes: AtomicUsize::new(0),
        }
    }

    /// A read of the socket (its Dispatch field, or a dispatch routine using it).
    fn touch(&self) {
        assert!(
            !self.freed.load(Ordering::SeqCst),
            "use after free: the socket was touched after WskCloseSocket"
        );
    }

    /// `WskCloseSocket`: the socket is freed.
    fn close(&self) {
        assert_eq!(
            self.closes.fetch_add(1, Ordering::SeqCst),
            0,
            "closed twice"
        );
        self.freed.store(true, Ordering::SeqCst);
    }
}

/// The event context block's reference count (`CtxHeader::refs`): the socket holds one, a
/// retained indication another; the last release frees it.
struct Context {
    refs: AtomicUsize,
    freed: AtomicBool,
}

impl Context {
    fn release(&self) {
        if self.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            assert!(
                !self.freed.swap(true, Ordering::SeqCst),
                "context freed twice"
            );
        }
    }

    fn callback(&self) {
        assert!(
            !self.freed.load(Ordering::SeqCst),
            "the provider called into a freed event context"
        );
    }
}

/// The fixed protocol (as `Core` in `src/socket/base.rs`): the dispatch table is a copy
/// taken at creation, the socket is touched only inside enter/exit; close begins the
/// rundown only after its fallible steps, waits, then `WskCloseSocket`.
struct Core {
    socket: Socket,
    rundown: Rundown,
    ctx: Context,
    close_completed: AtomicBool,
}

impl Core {
    fn new() -> Self {
        Core {
            socket: Socket::new(),
            rundown: Rundown::new(),
            ctx: Context {
                refs: AtomicUsize::new(1),
                freed: AtomicBool::new(false),
            },
            close_completed: AtomicBool::new(false),
        }
    }

    fn call(&self) -> bool {
        // (the dispatch table copy is read here: no access to the socket)
        if !self.rundown.enter() {
            return false;
        }
        self.socket.touch();
        self.ctx.callback();
        self.rundown.exit();
        true
    }

    /// `fail`: a fallible step (IRQL check, operation block) fails.
    fn close(&self, fail: bool) -> Result<(), ()> {
        if self.rundown.is_closing() {
            return Ok(());
        }
        if fail {
            return Err(());
        }
        if !self.rundown.close_and_wait() {
            return Ok(());
        }
        self.socket.close();
        self.close_completed.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn drop_socket(&self) {
        if !self.rundown.is_closing() {
            let _ = self.close(false);
        }
        if self.close_completed.load(Ordering::SeqCst) {
            self.ctx.release();
        }
    }
}

/// Two callers race a close (which may fail first) and the drop; a retained indication
/// holds a context reference released on another thread.
fn fixed_protocol() {
    let core = Arc::new(Core::new());
    core.ctx.refs.fetch_add(1, Ordering::SeqCst); // a retained indication
    let mut hs = Vec::new();
    for _ in 0..2 {
        let c = core.clone();
        hs.push(thread::spawn(move || {
            for _ in 0..2 {
                c.call();
            }
        }));
    }
    let c = core.clone();
    hs.push(thread::spawn(move || c.ctx.release()));
    let fail = shuttle::rand::thread_rng().gen::<bool>();
    let _ = core.close(fail);
    for h in hs {
        h.join().unwrap();
    }
    core.drop_socket();
    assert_eq!(
        core.socket.closes.load(Ordering::SeqCst),
        1,
        "socket leaked"
    );
    assert!(core.ctx.freed.load(Ordering::SeqCst), "context leaked");
    assert!(!core.rundown.enter(), "enter succeeded after close");
}

/// Defect 1's ordering: the socket's Dispatch is read before `enter`.
fn old_defect1_protocol() {
    let core = Arc::new(Core::new());
    let c = core.clone();
    let h = thread::spawn(move || {
        c.socket.touch(); // self.dispatch() read (*raw).Dispatch first
        if c.rundown.enter() {
            c.socket.touch();
            c.rundown.exit();
        }
    });
    let _ = core.close(false);
    h.join().unwrap();
}

/// Defect 2's ordering: CLOSING is set before the fallible steps; the drop then skips the
/// close and releases the context the provider still holds.
fn old_defect2_protocol() {
    let core = Arc::new(Core::new());
    let c = core.clone();
    let h = thread::spawn(move || {
        // The provider indicates an event a little later.
        c.ctx.callback();
    });
    let fail = shuttle::rand::thread_rng().gen::<bool>();
    // Old Core::close: begin_close (CLOSING) first, then take_op()? / require_passive()?.
    let began = core.rundown.close_now();
    if began && !fail {
        core.socket.close();
        core.close_completed.store(true, Ordering::SeqCst);
    }
    // Old Drop: is_closed() (CLOSING) => no close; the context reference is released.
    if !core.rundown.is_closing() {
        let _ = core.close(false);
    }
    core.ctx.release();
    h.join().unwrap();
    assert_eq!(
        core.socket.closes.load(Ordering::SeqCst),
        1,
        "socket leaked"
    );
}

#[test]
fn rundown_protocol_holds_in_10000_schedules() {
    let seed = base_seed();
    let start = std::time::Instant::now();
    let failure = explore("fixed protocol", seed, 10_000, fixed_protocol);
    assert!(failure.is_none(), "seed {seed:#x}: {failure:?}");
    eprintln!(
        "rundown model: 10000 schedules (seed {seed:#x}) in {:.2?}",
        start.elapsed()
    );
}

#[test]
fn explorer_flags_the_pre_fix_defect_1_ordering() {
    let seed = base_seed();
    let f = explore("old defect 1", seed, 10_000, old_defect1_protocol);
    assert!(
        f.as_deref().is_some_and(|m| m.contains("use after free")),
        "the explorer did not flag defect 1's ordering: {f:?}"
    );
}

#[test]
fn explorer_flags_the_pre_fix_defect_2_ordering() {
    let seed = base_seed();
    let f = explore("old defect 2", seed, 10_000, old_defect2_protocol);
    assert!(
        f.as_deref()
            .is_some_and(|m| m.contains("socket leaked") || m.contains("freed event context")),
        "the explorer did not flag defect 2's ordering: {f:?}"
    );
}
