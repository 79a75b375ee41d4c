//! A model of the Kernel-Mode Driver Framework (KMDF 1.33) for exactly what a non-PnP driver
//! with one control device uses: the driver object, the control device, its default queue,
//! requests and file objects. It sits on the kernel objects and the I/O manager
//! ([`crate::iomgr`]), never on the WSK provider.
//!
//! A KMDF driver calls the framework through a function table (`WdfFunctions_01033`, indexed
//! by `WdfXxxTableIndex`, first argument `WdfDriverGlobals`), which wdfldr fills when it
//! binds the driver; here [`load_driver`] binds the table to this model and loads the driver
//! through the I/O manager. The framework owns the driver object's dispatch table and turns
//! the I/O manager's IRPs into callbacks:
//! - IRP_MJ_CREATE / CLEANUP / CLOSE: `EvtDeviceFileCreate` (with a request the driver
//!   completes), `EvtFileCleanup` (then requests of that file object still waiting in a queue
//!   are cancelled), `EvtFileClose` (then the file object and its context go);
//! - IRP_MJ_DEVICE_CONTROL: a request into the default queue; a parallel queue presents at
//!   most `NumberOfPresentedRequests` at once (0: never), the rest wait, cancelable;
//! - callbacks run at the IRQL their object's `ExecutionLevel` gives: PASSIVE_LEVEL for
//!   `WdfExecutionLevelPassive`, else (KMDF's default, `WdfExecutionLevelDispatch`: "IRQL <=
//!   DISPATCH_LEVEL") at [`set_dispatch_callback_irql`], DISPATCH_LEVEL by default;
//! - a driver-owned request marked cancelable (`WdfRequestMarkCancelableEx`) gets
//!   `EvtRequestCancel` when its IRP is cancelled; `WdfRequestUnmarkCancelable` returns
//!   STATUS_CANCELLED once that callback is due (it runs, or ran);
//! - unload: `EvtDriverUnload`, then the framework deletes what the driver left (its control
//!   devices with their links and queues).
//!
//! KMDF Verifier-style rules ([`crate::verifier::Rule`]): `WdfRequestCompletedTwice`,
//! `WdfCompleteCancelable` (completed while cancelable, or before a due `EvtRequestCancel`),
//! `WdfRequestOutstanding` (requests left when a device is deleted or the driver unloads),
//! `WdfIrql` (a WDF function above its documented IRQL), `WdfApi` (other misuse).
//!
//! What the model does not capture: PnP and power (no FDOs, no power-managed queues), I/O
//! targets, synchronization scopes and presentation locks, `EvtIoInCallerContext`, sequential
//! queues' and manual queues' finer points, the framework's own allocations failing, and
//! timing (callbacks run on the thread that triggers them, or a worker thread for a passive
//! callback from above PASSIVE_LEVEL).
//!
//! Sources: learn.microsoft.com's WDF reference (one page per function, named in
//! [`api`]'s docs), "Using Control Device Objects", "Framework File Objects", "Canceling I/O
//! Requests", and the framework's documented behaviour in the open-source KMDF
//! (github.com/microsoft/Windows-Driver-Frameworks: FxIoQueue, FxRequest, FxPkgGeneral,
//! FxDriver), read for facts.

pub mod api;
mod io;
mod object;
pub mod types;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use windows_sys::Wdk::Foundation::DRIVER_OBJECT;
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_CANCELLED, STATUS_IMAGE_ALREADY_LOADED, UNICODE_STRING,
};

use crate::iomgr::{self, DriverEntry, LoadedDriver};
use crate::irql;
use crate::verifier::{self, Rule};
use object::{fx, Kind};
use types::*;

/// `WdfFunctionTableNumEntries` (wdffuncenum.h, KMDF 1.33).
pub const WDF_FUNCTION_TABLE_NUM_ENTRIES: usize = 458;

/// `WdfFunctions_01033`: the function table of the bound driver (NULL until
/// [`load_driver`] binds it), as wdfldr fills it.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut WdfFunctions_01033: *const Option<unsafe extern "C" fn()> = std::ptr::null();

/// `WdfDriverGlobals`: the bound driver's globals, passed first to every WDF function.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut WdfDriverGlobals: PWDF_DRIVER_GLOBALS = std::ptr::null_mut();

/// `WdfFunctionCount` (KMDF >= 1.25): the number of table entries.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut WdfFunctionCount: u32 = WDF_FUNCTION_TABLE_NUM_ENTRIES as u32;

struct Globals(std::cell::UnsafeCell<WDF_DRIVER_GLOBALS>);
// SAFETY: written only by WdfDriverCreate (once per load, before any other use).
unsafe impl Sync for Globals {}
static GLOBALS: Globals = Globals(std::cell::UnsafeCell::new(WDF_DRIVER_GLOBALS {
    Driver: std::ptr::null_mut(),
    DriverFlags: 0,
    DriverTag: 0,
    DriverName: [0; 32],
    DisplaceDriverUnload: 0,
}));

pub(crate) fn set_globals_driver(h: usize) {
    // SAFETY: see `Globals`.
    unsafe { (*GLOBALS.0.get()).Driver = h as WDFDRIVER };
}

type Entry = Option<unsafe extern "C" fn()>;

macro_rules! entries {
    ($table:ident, $($index:literal => $f:path),* $(,)?) => {
        $(
            // SAFETY: stored as WDFFUNC; the driver transmutes it back to the PFN type of the
            // same index, which is this function's signature.
            $table[$index] = Some(unsafe { std::mem::transmute::<*const (), unsafe extern "C" fn()>($f as *const ()) });
        )*
    };
}

fn table() -> &'static [Entry; WDF_FUNCTION_TABLE_NUM_ENTRIES] {
    static TABLE: OnceLock<[Entry; WDF_FUNCTION_TABLE_NUM_ENTRIES]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: [Entry; WDF_FUNCTION_TABLE_NUM_ENTRIES] = [None; WDF_FUNCTION_TABLE_NUM_ENTRIES];
        // Indices: WDFFUNCENUM of wdffuncenum.h, KMDF 1.33.
        entries!(t,
            25 => api::WdfControlDeviceInitAllocate,
            27 => api::WdfControlFinishInitializing,
            31 => api::WdfDeviceWdmGetDeviceObject,
            54 => api::WdfDeviceInitFree,
            66 => api::WdfDeviceInitSetDeviceType,
            67 => api::WdfDeviceInitAssignName,
            70 => api::WdfDeviceInitSetCharacteristics,
            71 => api::WdfDeviceInitSetFileObjectConfig,
            72 => api::WdfDeviceInitSetRequestAttributes,
            75 => api::WdfDeviceCreate,
            80 => api::WdfDeviceCreateSymbolicLink,
            116 => api::WdfDriverCreate,
            140 => api::WdfFileObjectWdmGetFileObject,
            152 => api::WdfIoQueueCreate,
            202 => api::WdfObjectGetTypedContextWorker,
            208 => api::WdfObjectDelete,
            256 => api::WdfRequestUnmarkCancelable,
            263 => api::WdfRequestComplete,
            265 => api::WdfRequestCompleteWithInformation,
            269 => api::WdfRequestRetrieveInputBuffer,
            270 => api::WdfRequestRetrieveOutputBuffer,
            272 => api::WdfRequestRetrieveOutputWdmMdl,
            277 => api::WdfRequestGetFileObject,
            280 => api::WdfRequestGetRequestorMode,
            393 => api::WdfRequestMarkCancelableEx,
        );
        t
    })
}

/// Binds the function table and the driver globals (what wdfldr's `WdfVersionBind` does
/// before the driver's DriverEntry runs).
fn bind() {
    // SAFETY: the statics are written here, before the driver reads them; one KMDF driver is
    // loaded at a time (enforced by `load_driver`).
    unsafe {
        WdfFunctions_01033 = table().as_ptr();
        WdfDriverGlobals = GLOBALS.0.get();
        WdfFunctionCount = WDF_FUNCTION_TABLE_NUM_ENTRIES as u32;
    }
}

/// The globals a driver passes to WDF functions (for tests that call [`api`] directly).
pub fn driver_globals() -> PWDF_DRIVER_GLOBALS {
    GLOBALS.0.get()
}

static DISPATCH_CALLBACK_IRQL: AtomicU8 = AtomicU8::new(irql::DISPATCH_LEVEL);
static HOLD_CANCELS: AtomicBool = AtomicBool::new(false);

/// The IRQL at which callbacks of objects with `WdfExecutionLevelDispatch` (KMDF's default)
/// run: DISPATCH_LEVEL by default, the highest "IRQL <= DISPATCH_LEVEL" allows, so that code
/// needing PASSIVE_LEVEL fails here as it may on Windows. Reset by [`load_driver`].
pub fn set_dispatch_callback_irql(irql: u8) {
    DISPATCH_CALLBACK_IRQL.store(irql, Ordering::SeqCst);
}

pub(crate) fn dispatch_callback_irql() -> u8 {
    DISPATCH_CALLBACK_IRQL.load(Ordering::SeqCst)
}

/// Holds back `EvtRequestCancel` callbacks: a cancelled driver-cancelable request is claimed
/// (`WdfRequestUnmarkCancelable` returns STATUS_CANCELLED from then on) but its callback
/// waits for [`release_cancel_callbacks`], as FxIoQueue defers cancel callbacks to its
/// dispatch loop. This opens the window in which a completion races the cancel callback.
/// Reset by [`load_driver`].
pub fn hold_cancel_callbacks(hold: bool) {
    HOLD_CANCELS.store(hold, Ordering::SeqCst);
    if !hold {
        release_cancel_callbacks();
    }
}

pub(crate) fn cancel_callbacks_held() -> bool {
    HOLD_CANCELS.load(Ordering::SeqCst)
}

/// Delivers the held `EvtRequestCancel` callbacks (on this thread). Returns how many were due.
pub fn release_cancel_callbacks() -> usize {
    let held = std::mem::take(&mut fx().held_cancels);
    let n = held.len();
    for r in held {
        io::deliver_cancel(r);
    }
    n
}

static UNMARK_CANCELLED: (Mutex<u64>, std::sync::Condvar) =
    (Mutex::new(0), std::sync::Condvar::new());

pub(crate) fn note_unmark_cancelled() {
    *UNMARK_CANCELLED.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    UNMARK_CANCELLED.1.notify_all();
}

/// How many `WdfRequestUnmarkCancelable` calls have returned STATUS_CANCELLED so far (in this
/// process).
pub fn unmark_cancelled_count() -> u64 {
    *UNMARK_CANCELLED.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits (at most `timeout`) until [`unmark_cancelled_count`] reaches `n`; whether it did.
pub fn wait_unmark_cancelled(n: u64, timeout: std::time::Duration) -> bool {
    let g = UNMARK_CANCELLED.0.lock().unwrap_or_else(|p| p.into_inner());
    let (g, _) = UNMARK_CANCELLED
        .1
        .wait_timeout_while(g, timeout, |c| *c < n)
        .unwrap_or_else(|p| p.into_inner());
    *g >= n
}

/// Framework requests alive now (presented, waiting in a queue, or being created).
pub fn live_requests() -> usize {
    fx().live_requests().len()
}

/// Framework objects alive now (driver, devices, queues, requests, file objects).
pub fn live_objects() -> usize {
    fx().objects.len()
}

/// The requests presented to the driver and not yet completed, per queue, and the requests
/// waiting: (presented, waiting) of the first device's default queue.
pub fn default_queue_counts() -> Option<(u32, usize)> {
    let mut fx = fx();
    let devices: Vec<usize> = fx.by_device_object.values().copied().collect();
    let q = devices
        .into_iter()
        .find_map(|d| fx.device(d).and_then(|d| d.default_queue))?;
    fx.queue(q).map(|q| (q.presented, q.waiting.len()))
}

static ENTRY: Mutex<Option<DriverEntry>> = Mutex::new(None);

/// Loads a KMDF driver: binds the WDF function table to this model (as wdfldr does), then
/// loads the driver through the I/O manager ([`iomgr::load_driver`]), which calls its
/// DriverEntry at PASSIVE_LEVEL. If DriverEntry fails, the framework deletes what it created
/// (its WDFDRIVER and control devices) and the status is returned. One KMDF driver at a
/// time: STATUS_IMAGE_ALREADY_LOADED otherwise. Resets [`set_dispatch_callback_irql`] and
/// [`hold_cancel_callbacks`] to their defaults.
pub fn load_driver(entry: DriverEntry, service_name: &str) -> Result<LoadedDriver, NTSTATUS> {
    if fx().driver.is_some() {
        return Err(STATUS_IMAGE_ALREADY_LOADED);
    }
    set_dispatch_callback_irql(irql::DISPATCH_LEVEL);
    HOLD_CANCELS.store(false, Ordering::SeqCst);
    bind();
    *ENTRY.lock().unwrap_or_else(|p| p.into_inner()) = Some(entry);
    iomgr::load_driver(fx_driver_entry, service_name)
}

/// `FxDriverEntry`: calls the driver's DriverEntry; on failure the framework's objects go.
unsafe extern "system" fn fx_driver_entry(
    driver: *mut DRIVER_OBJECT,
    registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    let entry = ENTRY.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(entry) = entry else {
        return windows_sys::Win32::Foundation::STATUS_INVALID_PARAMETER;
    };
    // SAFETY: the I/O manager's arguments, forwarded.
    let status = unsafe { entry(driver, registry_path) };
    if status < 0 {
        teardown("failed DriverEntry");
    }
    status
}

/// The framework's DriverUnload (`FxDriver::Unload`): `EvtDriverUnload`, then the framework
/// deletes the driver's remaining objects.
pub(crate) unsafe extern "system" fn fx_driver_unload(_driver: *const DRIVER_OBJECT) {
    let (h, unload) = {
        let mut fx = fx();
        let h = fx.driver;
        (h, fx.driver_rec().and_then(|d| d.unload))
    };
    if let (Some(h), Some(unload)) = (h, unload) {
        // SAFETY: the driver's callback with its WDFDRIVER, at PASSIVE_LEVEL (the I/O
        // manager calls DriverUnload there).
        unsafe { unload(h as WDFDRIVER) };
    }
    teardown("unload");
}

/// Deletes every framework object of the driver, reporting requests and inits left behind.
fn teardown(when: &str) {
    let devices: Vec<usize> = fx()
        .objects
        .iter()
        .filter(|(_, o)| matches!(o.kind, Kind::Device(_)))
        .map(|(&h, _)| h)
        .collect();
    for d in devices {
        delete_device(d, when);
    }
    report_outstanding(&format!("driver {when}"), None);
    let inits = std::mem::take(&mut fx().inits);
    if !inits.is_empty() {
        verifier::violation(
            Rule::WdfApi,
            format!("driver {when}: {} WDFDEVICE_INIT(s) neither consumed by WdfDeviceCreate nor freed with WdfDeviceInitFree", inits.len()),
        );
    }
    let rest: Vec<usize> = fx().objects.keys().copied().collect();
    for o in rest {
        object::destroy(o);
    }
    let mut fx = fx();
    fx.driver = None;
    fx.by_file_object.clear();
    fx.by_irp.clear();
    drop(fx);
    set_globals_driver(0);
}

/// Reports (and cancels, so the host can go on) requests still alive on `device` (or on any
/// device): KMDF Verifier's "request outstanding" check.
fn report_outstanding(when: &str, device: Option<usize>) {
    let outstanding: Vec<usize> = {
        let mut fx = fx();
        let live = fx.live_requests();
        let queues_of_device: Vec<usize> = fx
            .objects
            .iter()
            .filter_map(|(&h, o)| match &o.kind {
                Kind::Queue(q) if device.is_none_or(|d| q.device == d) => Some(h),
                _ => None,
            })
            .collect();
        live.into_iter()
            .filter(|&r| {
                let Some(req) = fx.request(r) else {
                    return false;
                };
                let (q, f) = (req.queue, req.file);
                device.is_none()
                    || q.is_some_and(|q| queues_of_device.contains(&q))
                    || f.is_some_and(|f| fx.file(f).is_some_and(|f| Some(f.device) == device))
            })
            .collect()
    };
    if outstanding.is_empty() {
        return;
    }
    verifier::violation(
        Rule::WdfRequestOutstanding,
        format!(
            "{when}: {} request(s) still outstanding: {outstanding:#x?}",
            outstanding.len()
        ),
    );
    for r in outstanding {
        let irp = fx().request(r).map_or(0, |r| r.irp);
        // SAFETY: a live IRP the framework holds: take any cancel routine off.
        unsafe { crate::irp::set_cancel_routine(irp as *mut _, std::ptr::null_mut()) };
        io::finish(r, STATUS_CANCELLED, 0);
    }
}

/// Deletes a device: its outstanding requests are reported, its queues, symbolic links and
/// device object go, then the device object itself.
pub(crate) fn delete_device(h: usize, when: &str) {
    report_outstanding(&format!("{when}: WDFDEVICE {h:#x} deleted"), Some(h));
    let (dev, links, queues) = {
        let mut fx = fx();
        let queues: Vec<usize> = fx
            .objects
            .iter()
            .filter_map(|(&q, o)| match &o.kind {
                Kind::Queue(x) if x.device == h => Some(q),
                _ => None,
            })
            .collect();
        let Some(d) = fx.device(h) else {
            return;
        };
        let dev = d.device_object;
        let links = std::mem::take(&mut d.links);
        fx.by_device_object.remove(&dev);
        (dev, links, queues)
    };
    for q in queues {
        object::destroy(q);
    }
    for l in &links {
        // SAFETY: a link this device created.
        unsafe { iomgr::IoDeleteSymbolicLink(l.as_ptr()) };
    }
    // SAFETY: the device object WdfDeviceCreate created.
    unsafe { iomgr::IoDeleteDevice(dev as *const _) };
    object::destroy(h);
}

/// Deletes a queue; requests waiting in it are cancelled, presented ones reported.
pub(crate) fn delete_queue(h: usize, when: &str) {
    let waiting: Vec<usize> = fx()
        .queue(h)
        .map(|q| q.waiting.drain(..).collect())
        .unwrap_or_default();
    for r in waiting {
        let irp = fx().request(r).map_or(0, |r| r.irp);
        // SAFETY: a live queued IRP.
        if !unsafe { crate::irp::set_cancel_routine(irp as *mut _, std::ptr::null_mut()) }.is_null()
        {
            io::finish(r, STATUS_CANCELLED, 0);
        }
    }
    let presented = fx().queue(h).map_or(0, |q| q.presented);
    if presented > 0 {
        verifier::violation(
            Rule::WdfRequestOutstanding,
            format!(
                "{when}: WDFQUEUE {h:#x} deleted with {presented} presented request(s) outstanding"
            ),
        );
    }
    let mut fx = fx();
    let devices: Vec<usize> = fx.by_device_object.values().copied().collect();
    for d in devices {
        if let Some(d) = fx.device(d) {
            if d.default_queue == Some(h) {
                d.default_queue = None;
            }
        }
    }
    drop(fx);
    object::destroy(h);
}
