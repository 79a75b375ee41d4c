//! ntsim's work items: the routine runs at PASSIVE_LEVEL on another thread, the device stays
//! referenced until it returns, a work item never freed is a leak, and the allocation sweep
//! can fail `IoAllocateWorkItem`.

use std::ffi::c_void;
use std::sync::mpsc;
use std::time::Duration;

use ntsim::workitem::{device_references, IoAllocateWorkItem, IoFreeWorkItem, IoQueueWorkItem};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, PIO_WORKITEM};

/// The verifier's counters are process-wide: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Ctx {
    item: PIO_WORKITEM,
    started: mpsc::Sender<(u8, std::thread::ThreadId)>,
    go: mpsc::Receiver<()>,
}

unsafe extern "system" fn routine(_dev: *mut DEVICE_OBJECT, context: *mut c_void) {
    // SAFETY: the Box the test leaked for this call.
    let ctx = unsafe { Box::from_raw(context as *mut Ctx) };
    let _ = ctx
        .started
        .send((ntsim::irql::current(), std::thread::current().id()));
    let _ = ctx.go.recv_timeout(Duration::from_secs(10));
    // SAFETY: our item, freed by its own routine.
    unsafe { IoFreeWorkItem(ctx.item) };
}

fn queue(item: PIO_WORKITEM, ctx: Box<Ctx>) {
    let r: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut c_void) = routine;
    // SAFETY: a live item; the routine has IO_WORKITEM_ROUTINE's signature.
    unsafe {
        IoQueueWorkItem(
            item,
            Some(std::mem::transmute::<
                unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut c_void),
                unsafe extern "system" fn(),
            >(r)),
            1,
            Box::into_raw(ctx) as *const c_void,
        )
    };
}

#[test]
fn routine_runs_at_passive_on_a_worker_and_holds_the_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    ntsim::link();
    let scope = ntsim::Scope::begin();
    // SAFETY: DEVICE_OBJECT is plain data; the model only reads DriverObject (NULL here).
    let mut dev: DEVICE_OBJECT = unsafe { std::mem::zeroed() };
    let devp = &mut dev as *mut DEVICE_OBJECT;
    // SAFETY: a live (test) device object.
    let item = unsafe { IoAllocateWorkItem(devp) };
    assert_ne!(item, 0);
    assert_eq!(device_references(devp), 0, "no reference before queuing");
    let (stx, srx) = mpsc::channel();
    let (gtx, grx) = mpsc::channel();
    let ctx = Box::new(Ctx {
        item,
        started: stx,
        go: grx,
    });
    ntsim::irql::with_raised(ntsim::irql::DISPATCH_LEVEL, || queue(item, ctx));
    let (irql, tid) = srx
        .recv_timeout(Duration::from_secs(10))
        .expect("routine ran");
    assert_eq!(irql, ntsim::irql::PASSIVE_LEVEL);
    assert_ne!(tid, std::thread::current().id());
    assert_eq!(
        device_references(devp),
        1,
        "referenced while the routine runs"
    );
    gtx.send(()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while device_references(devp) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "reference never released"
        );
        std::thread::yield_now();
    }
    scope.assert_clean();
}

#[test]
fn a_work_item_never_freed_is_a_leak_and_the_sweep_can_fail_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    ntsim::link();
    let scope = ntsim::Scope::begin();
    // SAFETY: as above.
    let mut dev: DEVICE_OBJECT = unsafe { std::mem::zeroed() };
    let devp = &mut dev as *mut DEVICE_OBJECT;
    // SAFETY: a live (test) device object.
    let item = unsafe { IoAllocateWorkItem(devp) };
    assert_ne!(item, 0);
    assert_ne!(scope.leaks().2, 0, "the live work item counts as pool");
    // SAFETY: our item, never queued.
    unsafe { IoFreeWorkItem(item) };
    assert_eq!(scope.leaks(), (0, 0, 0, 0));
    ntsim::faults::arm(Some(1));
    // SAFETY: as above.
    let failed = unsafe { IoAllocateWorkItem(devp) };
    let run = ntsim::faults::disarm();
    assert_eq!(failed, 0, "the sweep fails IoAllocateWorkItem");
    assert!(
        run.failed.as_ref().is_some_and(|s| s.site.contains("IoWi")),
        "{run:?}"
    );
    scope.assert_clean();
}
