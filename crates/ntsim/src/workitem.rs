//! Work items: `IoAllocateWorkItem`, `IoQueueWorkItem`, `IoFreeWorkItem`. A work item is a
//! small nonpaged block (pool tag `IoWi`, so a work item never freed is a pool leak in
//! `Scope::assert_clean`); allocating it is one of the driver's counted allocations (the
//! `ntsim::faults` sweep can fail it, as `IoAllocateIrp`). Queuing runs the routine at
//! PASSIVE_LEVEL on a worker thread (a new host thread per item: the system worker threads'
//! ordering is not modelled) and holds a reference on the item's device object from the
//! queue until the routine has returned, as the I/O manager does so that the driver cannot
//! unload under a running routine; ntsim's driver unload waits for those references
//! ([`wait_driver_idle`]) before it calls `DriverUnload`.
//! Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitem>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeworkitem>.

use rustc_hash::FxHashMap;
use std::ffi::c_void;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, PIO_WORKITEM};
use windows_sys::Wdk::System::SystemServices::{PIO_WORKITEM_ROUTINE, WORK_QUEUE_TYPE};

use crate::verifier::{self, Rule};

/// Pool tag of work items.
pub const WORK_ITEM_TAG: u32 = u32::from_le_bytes(*b"IoWi");

/// `IO_WORKITEM_ROUTINE`.
type WorkItemRoutine = unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut c_void);

#[repr(C)]
struct Item {
    device: usize,
    queued: bool,
}

/// Device references held by queued or running work items, by driver object, and by device.
struct Refs {
    by_driver: FxHashMap<usize, usize>,
    by_device: FxHashMap<usize, usize>,
}

static REFS: Mutex<Option<Refs>> = Mutex::new(None);
static IDLE: Condvar = Condvar::new();

fn refs() -> MutexGuard<'static, Option<Refs>> {
    REFS.lock().unwrap_or_else(|p| p.into_inner())
}

fn adjust(driver: usize, device: usize, up: bool) {
    let mut g = refs();
    let r = g.get_or_insert_with(|| Refs {
        by_driver: FxHashMap::default(),
        by_device: FxHashMap::default(),
    });
    for (map, key) in [(&mut r.by_driver, driver), (&mut r.by_device, device)] {
        let n = map.entry(key).or_insert(0);
        if up {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&key);
            }
        }
    }
    IDLE.notify_all();
}

/// References queued or running work items hold on `device` now.
pub fn device_references(device: *const DEVICE_OBJECT) -> usize {
    refs()
        .as_ref()
        .and_then(|r| r.by_device.get(&(device as usize)).copied())
        .unwrap_or(0)
}

/// Waits (at most `limit`) until no work item of `driver`'s devices is queued or running;
/// false on timeout (recorded as a violation by the caller's unload).
pub(crate) fn wait_driver_idle(driver: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut g = refs();
    loop {
        let busy = g
            .as_ref()
            .and_then(|r| r.by_driver.get(&driver).copied())
            .unwrap_or(0);
        if busy == 0 {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        g = IDLE
            .wait_timeout(g, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// `IoAllocateWorkItem`: NULL when the block cannot be allocated (or the fault sweep fails
/// it). IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `device` is a live device object.
#[no_mangle]
pub unsafe extern "system" fn IoAllocateWorkItem(device: *const DEVICE_OBJECT) -> PIO_WORKITEM {
    crate::irql::require_at_most("IoAllocateWorkItem", crate::irql::DISPATCH_LEVEL);
    if device.is_null() {
        verifier::violation(Rule::DriverObject, "IoAllocateWorkItem(NULL device)");
        return 0;
    }
    if crate::faults::should_fail(crate::faults::AllocKind::Pool, || {
        "tag 'IoWi' (IoAllocateWorkItem)".to_string()
    }) {
        return 0;
    }
    let p = crate::pool::allocate(std::mem::size_of::<Item>(), WORK_ITEM_TAG, false) as *mut Item;
    if p.is_null() {
        return 0;
    }
    // SAFETY: a fresh pool block of Item's size, 16-byte aligned.
    unsafe {
        p.write(Item {
            device: device as usize,
            queued: false,
        })
    };
    p as PIO_WORKITEM
}

/// `IoFreeWorkItem`. A work item may be freed by its own routine.
///
/// # Safety
/// `item` came from `IoAllocateWorkItem` and is freed once.
#[no_mangle]
pub unsafe extern "system" fn IoFreeWorkItem(item: PIO_WORKITEM) {
    crate::pool::free(item as *mut c_void, Some(WORK_ITEM_TAG));
}

/// `IoQueueWorkItem`: references the item's device and runs `routine(device, context)` at
/// PASSIVE_LEVEL on a worker thread; the reference is released when the routine returns.
/// Queuing an item whose routine has not started yet is a violation. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `item` is a live work item; `routine` has the `IO_WORKITEM_ROUTINE` signature.
#[no_mangle]
pub unsafe extern "system" fn IoQueueWorkItem(
    item: PIO_WORKITEM,
    routine: PIO_WORKITEM_ROUTINE,
    _queue: WORK_QUEUE_TYPE,
    context: *const c_void,
) {
    crate::irql::require_at_most("IoQueueWorkItem", crate::irql::DISPATCH_LEVEL);
    let it = item as *mut Item;
    let Some(routine) = routine else {
        verifier::violation(Rule::DriverObject, "IoQueueWorkItem without a routine");
        return;
    };
    // SAFETY: the documented signature of a work item routine (windows-sys declares the
    // pointer without parameters).
    let routine: WorkItemRoutine = unsafe { std::mem::transmute(routine) };
    // SAFETY: caller contract: a live item.
    let device = unsafe {
        if (*it).queued {
            verifier::violation(Rule::DriverObject, "IoQueueWorkItem: item already queued");
            return;
        }
        (*it).queued = true;
        (*it).device
    };
    // SAFETY: the item's device is live (the driver's own device object).
    let driver = unsafe { (*(device as *const DEVICE_OBJECT)).DriverObject as usize };
    adjust(driver, device, true);
    let context = context as usize;
    let item = item as usize;
    std::thread::spawn(move || {
        // The routine may free the item: mark it started before it runs.
        // SAFETY: live until the routine frees it.
        unsafe { (*(item as *mut Item)).queued = false };
        crate::irql::set(crate::irql::PASSIVE_LEVEL);
        // SAFETY: the driver's routine with its own context.
        unsafe { routine(device as *mut DEVICE_OBJECT, context as *mut c_void) };
        if crate::irql::current() != crate::irql::PASSIVE_LEVEL {
            verifier::violation(
                Rule::IrqlNotLessOrEqual,
                "work item routine returned above PASSIVE_LEVEL",
            );
        }
        adjust(driver, device, false);
    });
}
