//! `wsk::alloc`: the fallible allocation toolkit for kernel paths. Values are dropped
//! exactly once (counted), references cross threads, and an allocation that ntsim's sweep
//! fails comes back as STATUS_INSUFFICIENT_RESOURCES with the value dropped and nothing
//! changed.

use std::sync::atomic::{AtomicUsize, Ordering};

use ntsim::faults::{self, AllocKind};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_INSUFFICIENT_RESOURCES};
use wsk::alloc::{try_box, try_push, try_to_vec, try_with_capacity, AllocError, KArc};

/// The sweep counter is process-wide: `Scope` serialises the tests (and disarms it).
fn scope() -> ntsim::Scope {
    ntsim::link();
    ntsim::Scope::begin()
}

/// Counts its drops in the given counter.
struct Counted<'a>(&'a AtomicUsize, u64);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn try_box_owns_and_drops_once() {
    let scope = scope();
    let drops = AtomicUsize::new(0);
    let b = try_box(Counted(&drops, 42)).expect("allocation");
    assert_eq!(b.1, 42);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(b);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Zero-sized: no allocation, so nothing to fail, and no sweep count.
    faults::arm(Some(1));
    let z = try_box(()).expect("ZST never fails");
    let run = faults::disarm();
    assert_eq!(*z, ());
    assert_eq!(run.allocations, 0);

    // Over-aligned values get a correctly aligned block.
    #[repr(align(64))]
    struct Big([u8; 64]);
    let big = try_box(Big([7; 64])).expect("allocation");
    assert_eq!(&*big as *const Big as usize % 64, 0);
    assert_eq!(big.0[63], 7);
    scope.assert_clean();
}

#[test]
fn injected_failure_is_insufficient_resources_and_drops_the_value() {
    let scope = scope();
    let drops = AtomicUsize::new(0);
    faults::arm(Some(1));
    let line = line!() + 1;
    let r = try_box(Counted(&drops, 1));
    let run = faults::disarm();
    let e = r.err().expect("the first allocation was failed");
    assert_eq!(e, AllocError);
    assert_eq!(NTSTATUS::from(e), STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(
        wsk::Error::from(e).status(),
        STATUS_INSUFFICIENT_RESOURCES,
        "converts into wsk::Error too"
    );
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the value was dropped once"
    );
    let failed = run.failed.expect("recorded");
    assert_eq!(failed.kind, AllocKind::Rust);
    assert!(
        failed.site.ends_with(&format!("alloc.rs:{line}")),
        "the site is the caller's file:line (track_caller): {failed}"
    );

    // The second allocation fails, the first and third succeed.
    faults::arm(Some(2));
    let a = try_box(1u32);
    let b = KArc::try_new(Counted(&drops, 2));
    let c = try_to_vec(&[1u8, 2, 3]);
    let run = faults::disarm();
    assert_eq!(run.allocations, 3);
    assert!(a.is_ok() && b.is_err() && c.is_ok());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    scope.assert_clean();
}

#[test]
fn karc_clones_across_threads_and_drops_once() {
    let scope = scope();
    let drops = AtomicUsize::new(0);
    // 'static counter for the threads.
    static THREAD_DROPS: AtomicUsize = AtomicUsize::new(0);
    let a = KArc::try_new(Counted(&THREAD_DROPS, 9)).expect("allocation");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let mine = a.clone();
            std::thread::spawn(move || {
                let mut sum = 0;
                for _ in 0..10_000 {
                    let c = mine.clone();
                    sum += c.1;
                }
                sum
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread"), 90_000);
    }
    assert_eq!(KArc::strong_count(&a), 1, "every clone was dropped");
    assert_eq!(THREAD_DROPS.load(Ordering::SeqCst), 0);
    let b = a.clone();
    assert!(KArc::ptr_eq(&a, &b));
    drop(a);
    assert_eq!(THREAD_DROPS.load(Ordering::SeqCst), 0, "b still holds it");
    // Through a raw pointer and back (a completion context).
    let raw = KArc::into_raw(b);
    // SAFETY: from into_raw just above, rebuilt once.
    let b = unsafe { KArc::from_raw(raw) };
    assert_eq!(b.1, 9);
    drop(b);
    assert_eq!(
        THREAD_DROPS.load(Ordering::SeqCst),
        1,
        "freed by the last drop"
    );

    let z = KArc::try_new(Counted(&drops, 0)).expect("allocation");
    let z2 = z.clone();
    drop(z);
    drop(z2);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    fn send_sync<T: Send + Sync>() {}
    send_sync::<KArc<std::sync::Mutex<u32>>>();
    scope.assert_clean();
}

#[test]
fn vec_helpers_grow_fallibly_and_leave_the_vec_unchanged_on_failure() {
    let scope = scope();
    let mut v: Vec<u64> = try_with_capacity(3).expect("allocation");
    assert!(v.capacity() >= 3);
    for i in 0..100 {
        try_push(&mut v, i).expect("allocation");
    }
    assert_eq!(v.iter().sum::<u64>(), 4950);
    let copy = try_to_vec(&v).expect("allocation");
    assert_eq!(copy, v);

    // Full vec: the next push must grow, and that growth fails.
    let mut full: Vec<u64> = try_with_capacity(2).expect("allocation");
    while full.len() < full.capacity() {
        try_push(&mut full, 5).expect("within capacity");
    }
    let before = full.clone();
    faults::arm(Some(1));
    let r = try_push(&mut full, 6);
    let run = faults::disarm();
    assert_eq!(r, Err(AllocError));
    assert_eq!(full, before, "unchanged");
    assert_eq!(run.allocations, 1);

    // Pushing within capacity does not allocate, so it is not counted.
    let mut roomy: Vec<u8> = try_with_capacity(8).expect("allocation");
    faults::arm(Some(1));
    try_push(&mut roomy, 1).expect("no allocation needed");
    assert_eq!(faults::disarm().allocations, 0);

    // A capacity overflow is an error, not a panic.
    assert_eq!(try_with_capacity::<u64>(usize::MAX).err(), Some(AllocError));
    scope.assert_clean();
}
