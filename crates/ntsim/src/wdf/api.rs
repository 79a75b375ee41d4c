//! The WDF functions the model implements, as entries of the function table a driver calls
//! through (`WdfFunctions_01033[WdfXxxTableIndex]`, first argument the driver globals). Each
//! checks its documented maximum IRQL (the `_IRQL_requires_max_` annotation of its KMDF 1.33
//! header) and reports a call above it as [`Rule::WdfIrql`].
//!
//! Sources: the learn.microsoft.com reference page of each function (named in its doc).

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::c_void;
use std::ptr::null_mut;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, FILE_OBJECT, IRP, MDL};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_BUFFER_TOO_SMALL, STATUS_CANCELLED, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_DEVICE_STATE,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS, UNICODE_STRING,
};

use super::io::{self, fx_driver_cancel};
use super::object::{self, fx, Device, DeviceInit, Driver, Kind, Object, Owner, Queue};
use super::types::*;
use crate::iomgr::{self, UnicodeString};
use crate::irp;
use crate::irql::{self, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::verifier::{self, Rule};

const METHOD_BUFFERED: u32 = 0;
const METHOD_IN_DIRECT: u32 = 1;
const METHOD_OUT_DIRECT: u32 = 2;
const USER_MODE: i8 = 1;

fn require_irql(routine: &str, max: u8) {
    let now = irql::current();
    if now > max {
        verifier::violation(
            Rule::WdfIrql,
            format!("{routine} called at IRQL {now}; its maximum is {max}"),
        );
    }
}

fn api_violation(detail: String) {
    verifier::violation(Rule::WdfApi, detail);
}

/// A live request's IRP (owned by the driver), or a violation.
fn driver_request(routine: &str, request: WDFREQUEST) -> Option<(*mut IRP, u8)> {
    let h = request as usize;
    let mut fx = fx();
    if fx.completed.contains(&h) {
        drop(fx);
        api_violation(format!(
            "{routine}({h:#x}): the request was completed already"
        ));
        return None;
    }
    match fx.request(h) {
        Some(r) if r.owner == Owner::Driver => Some((r.irp as *mut IRP, r.major)),
        Some(_) => {
            drop(fx);
            api_violation(format!(
                "{routine}({h:#x}): the request is in a queue, not the driver's"
            ));
            None
        }
        None => {
            drop(fx);
            api_violation(format!("{routine}({h:#x}): not a WDFREQUEST"));
            None
        }
    }
}

/// `WdfDriverCreate` (wdfdriver.h). PASSIVE_LEVEL. Creates the framework driver object and
/// takes over the driver object's dispatch table and unload routine: every `MajorFunction`
/// entry becomes the framework's dispatch routine; a non-PnP driver
/// (`WdfDriverInitNonPnpDriver`) is unloadable only if it gives `EvtDriverUnload`.
/// Errors: STATUS_INFO_LENGTH_MISMATCH (config or attributes size), STATUS_INVALID_DEVICE_STATE
/// (called twice).
pub unsafe extern "C" fn WdfDriverCreate(
    _globals: PWDF_DRIVER_GLOBALS,
    driver_object: *mut DRIVER_OBJECT,
    _registry_path: *const UNICODE_STRING,
    attributes: *const WDF_OBJECT_ATTRIBUTES,
    config: *const WDF_DRIVER_CONFIG,
    driver: *mut WDFDRIVER,
) -> NTSTATUS {
    require_irql("WdfDriverCreate", PASSIVE_LEVEL);
    if config.is_null() || driver_object.is_null() {
        api_violation("WdfDriverCreate: NULL DriverObject or DriverConfig".into());
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: caller contract: a readable config.
    let c = unsafe { *config };
    if c.Size as usize != std::mem::size_of::<WDF_DRIVER_CONFIG>() {
        api_violation(format!(
            "WdfDriverCreate: WDF_DRIVER_CONFIG.Size {} (use WDF_DRIVER_CONFIG_INIT)",
            c.Size
        ));
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    // SAFETY: caller contract.
    let attrs = match unsafe { object::read_attributes("WdfDriverCreate", attributes) } {
        Ok(a) => a,
        Err(s) => return s,
    };
    // SAFETY: caller contract.
    let context = match unsafe { object::allocate_context(attrs.as_ref()) } {
        Ok(c) => c,
        Err(s) => return s,
    };
    let h = {
        let mut fx = fx();
        if fx.driver.is_some() {
            drop(fx);
            api_violation("WdfDriverCreate called twice".into());
            return STATUS_INVALID_DEVICE_STATE;
        }
        // KMDF's default ExecutionLevel for a driver object is Dispatch.
        let passive = attrs.is_some_and(|a| a.ExecutionLevel == execution_level::PASSIVE);
        let h = fx.insert(Object {
            kind: Kind::Driver(Driver {
                driver_object: driver_object as usize,
                unload: c.EvtDriverUnload,
                passive,
            }),
            context,
            cleanup: attrs.and_then(|a| a.EvtCleanupCallback),
            destroy: attrs.and_then(|a| a.EvtDestroyCallback),
        });
        fx.driver = Some(h);
        h
    };
    super::set_globals_driver(h);
    if c.DriverInitFlags & WDF_DRIVER_INIT_NO_DISPATCH_OVERRIDE == 0 {
        // SAFETY: the driver object being initialised in DriverEntry.
        unsafe {
            (*driver_object).MajorFunction = [Some(io::fx_dispatch); iomgr::IRP_MJ_COUNT];
            let unloadable = c.DriverInitFlags & WDF_DRIVER_INIT_NON_PNP_DRIVER == 0
                || c.EvtDriverUnload.is_some();
            (*driver_object).DriverUnload = if unloadable {
                Some(super::fx_driver_unload)
            } else {
                None
            };
        }
    }
    if !driver.is_null() {
        // SAFETY: caller contract: writable out pointer.
        unsafe { *driver = h as WDFDRIVER };
    }
    STATUS_SUCCESS
}

/// `WdfControlDeviceInitAllocate` (wdfcontrol.h). PASSIVE_LEVEL. A `WDFDEVICE_INIT` for a
/// control device with its default SDDL security descriptor; NULL if the SDDL is missing
/// or not an SDDL string ("D:..."), or for an unknown driver handle.
pub unsafe extern "C" fn WdfControlDeviceInitAllocate(
    _globals: PWDF_DRIVER_GLOBALS,
    driver: WDFDRIVER,
    sddl: *const UNICODE_STRING,
) -> PWDFDEVICE_INIT {
    require_irql("WdfControlDeviceInitAllocate", PASSIVE_LEVEL);
    if fx().driver != Some(driver as usize) {
        api_violation(format!(
            "WdfControlDeviceInitAllocate({driver:p}): not the WDFDRIVER"
        ));
        return null_mut();
    }
    // SAFETY: caller contract: NULL or a readable UNICODE_STRING.
    let s = if sddl.is_null() {
        None
    } else {
        // SAFETY: a non-NULL UNICODE_STRING from the driver (the WDF contract).
        unsafe { iomgr::ustr::read(sddl) }
    };
    let Some(s) = s.filter(|s| s.starts_with("D:")) else {
        api_violation("WdfControlDeviceInitAllocate: SDDLString is not an SDDL string".into());
        return null_mut();
    };
    let init = Box::new(DeviceInit {
        sddl: Some(UnicodeString::new(&s)),
        ..DeviceInit::default()
    });
    let p = &*init as *const DeviceInit as usize;
    fx().inits.insert(p, init);
    p as PWDFDEVICE_INIT
}

/// Runs `f` on a live `WDFDEVICE_INIT`, or reports a violation.
fn with_init<R>(
    routine: &str,
    init: PWDFDEVICE_INIT,
    f: impl FnOnce(&mut DeviceInit) -> R,
) -> Option<R> {
    let mut fx = fx();
    match fx.inits.get_mut(&(init as usize)) {
        Some(i) => Some(f(i)),
        None => {
            drop(fx);
            api_violation(format!("{routine}({init:p}): not a live WDFDEVICE_INIT (freed, or consumed by WdfDeviceCreate)"));
            None
        }
    }
}

/// `WdfDeviceInitSetDeviceType` (wdfdevice.h). IRQL <= DISPATCH_LEVEL.
pub unsafe extern "C" fn WdfDeviceInitSetDeviceType(
    _g: PWDF_DRIVER_GLOBALS,
    init: PWDFDEVICE_INIT,
    device_type: u32,
) {
    require_irql("WdfDeviceInitSetDeviceType", DISPATCH_LEVEL);
    with_init("WdfDeviceInitSetDeviceType", init, |i| {
        i.device_type = device_type
    });
}

/// `WdfDeviceInitSetCharacteristics` (wdfdevice.h). IRQL <= DISPATCH_LEVEL. `or_in_values`:
/// OR into the current characteristics instead of replacing them.
pub unsafe extern "C" fn WdfDeviceInitSetCharacteristics(
    _g: PWDF_DRIVER_GLOBALS,
    init: PWDFDEVICE_INIT,
    characteristics: u32,
    or_in_values: u8,
) {
    require_irql("WdfDeviceInitSetCharacteristics", DISPATCH_LEVEL);
    with_init("WdfDeviceInitSetCharacteristics", init, |i| {
        i.characteristics = if or_in_values != 0 {
            i.characteristics | characteristics
        } else {
            characteristics
        }
    });
}

/// `WdfDeviceInitSetFileObjectConfig` (wdfdevice.h). IRQL <= DISPATCH_LEVEL. The file-object
/// callbacks and the attributes (context type) of every file object of the device.
pub unsafe extern "C" fn WdfDeviceInitSetFileObjectConfig(
    _g: PWDF_DRIVER_GLOBALS,
    init: PWDFDEVICE_INIT,
    config: *const WDF_FILEOBJECT_CONFIG,
    attributes: *const WDF_OBJECT_ATTRIBUTES,
) {
    require_irql("WdfDeviceInitSetFileObjectConfig", DISPATCH_LEVEL);
    if config.is_null() {
        api_violation("WdfDeviceInitSetFileObjectConfig: NULL FileObjectConfig".into());
        return;
    }
    // SAFETY: caller contract: a readable config.
    let c = unsafe { *config };
    if c.Size as usize != std::mem::size_of::<WDF_FILEOBJECT_CONFIG>() {
        api_violation(format!(
            "WdfDeviceInitSetFileObjectConfig: Size {} (use WDF_FILEOBJECT_CONFIG_INIT)",
            c.Size
        ));
        return;
    }
    // SAFETY: caller contract.
    let Ok(attrs) =
        (unsafe { object::read_attributes("WdfDeviceInitSetFileObjectConfig", attributes) })
    else {
        return;
    };
    with_init("WdfDeviceInitSetFileObjectConfig", init, |i| {
        i.file_config = Some(c);
        i.file_attributes = attrs;
    });
}

/// `WdfDeviceInitSetRequestAttributes` (wdfdevice.h). IRQL <= DISPATCH_LEVEL. The attributes
/// (context type) of every request the framework creates for the device.
pub unsafe extern "C" fn WdfDeviceInitSetRequestAttributes(
    _g: PWDF_DRIVER_GLOBALS,
    init: PWDFDEVICE_INIT,
    attributes: *const WDF_OBJECT_ATTRIBUTES,
) {
    require_irql("WdfDeviceInitSetRequestAttributes", DISPATCH_LEVEL);
    // SAFETY: caller contract.
    let Ok(attrs) =
        (unsafe { object::read_attributes("WdfDeviceInitSetRequestAttributes", attributes) })
    else {
        return;
    };
    with_init("WdfDeviceInitSetRequestAttributes", init, |i| {
        i.request_attributes = attrs
    });
}

/// `WdfDeviceInitAssignName` (wdfdevice.h). PASSIVE_LEVEL. Errors: STATUS_INVALID_PARAMETER
/// (no such init), STATUS_OBJECT_NAME_INVALID (unreadable name).
pub unsafe extern "C" fn WdfDeviceInitAssignName(
    _g: PWDF_DRIVER_GLOBALS,
    init: PWDFDEVICE_INIT,
    name: *const UNICODE_STRING,
) -> NTSTATUS {
    require_irql("WdfDeviceInitAssignName", PASSIVE_LEVEL);
    // SAFETY: caller contract: NULL or a readable UNICODE_STRING.
    let n = if name.is_null() {
        None
    } else {
        // SAFETY: a non-NULL UNICODE_STRING from the driver (the WDF contract).
        unsafe { iomgr::ustr::read(name) }
    };
    with_init("WdfDeviceInitAssignName", init, |i| {
        i.name = n.as_deref().map(UnicodeString::new);
        STATUS_SUCCESS
    })
    .unwrap_or(STATUS_INVALID_PARAMETER)
}

/// `WdfDeviceInitFree` (wdfdevice.h). IRQL <= DISPATCH_LEVEL. Frees an init that
/// `WdfDeviceCreate` did not consume.
pub unsafe extern "C" fn WdfDeviceInitFree(_g: PWDF_DRIVER_GLOBALS, init: PWDFDEVICE_INIT) {
    require_irql("WdfDeviceInitFree", DISPATCH_LEVEL);
    let removed = fx().inits.remove(&(init as usize));
    if removed.is_none() {
        api_violation(format!("WdfDeviceInitFree({init:p}): not a live WDFDEVICE_INIT (freed twice, or consumed by WdfDeviceCreate)"));
    }
}

fn level_of(attrs: Option<&WDF_OBJECT_ATTRIBUTES>, parent_passive: bool) -> bool {
    match attrs.map(|a| a.ExecutionLevel) {
        Some(execution_level::PASSIVE) => true,
        Some(execution_level::DISPATCH) => false,
        _ => parent_passive,
    }
}

/// `WdfDeviceCreate` (wdfdevice.h). PASSIVE_LEVEL. Creates the device object
/// (`IoCreateDeviceSecure` with the init's name, type, characteristics and SDDL) and
/// consumes the init (`*init` becomes NULL) on success; on failure the init is still the
/// driver's. Errors: those of `IoCreateDeviceSecure`, STATUS_INFO_LENGTH_MISMATCH.
pub unsafe extern "C" fn WdfDeviceCreate(
    _g: PWDF_DRIVER_GLOBALS,
    init: *mut PWDFDEVICE_INIT,
    attributes: *const WDF_OBJECT_ATTRIBUTES,
    device: *mut WDFDEVICE,
) -> NTSTATUS {
    require_irql("WdfDeviceCreate", PASSIVE_LEVEL);
    if init.is_null() || device.is_null() {
        api_violation("WdfDeviceCreate: NULL DeviceInit or Device".into());
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: caller contract: readable.
    let p = unsafe { *init } as usize;
    // SAFETY: caller contract.
    let attrs = match unsafe { object::read_attributes("WdfDeviceCreate", attributes) } {
        Ok(a) => a,
        Err(s) => return s,
    };
    let (driver_object, driver_passive, name, sddl, device_type, characteristics) = {
        let mut fx = fx();
        let Some(i) = fx.inits.get(&p) else {
            drop(fx);
            api_violation(format!(
                "WdfDeviceCreate({p:#x}): not a live WDFDEVICE_INIT"
            ));
            return STATUS_INVALID_PARAMETER;
        };
        let (name, sddl) = (
            i.name.as_ref().map(|n| n.to_string_lossy()),
            i.sddl.as_ref().map(|s| s.to_string_lossy()),
        );
        let (t, c) = (i.device_type, i.characteristics);
        let d = fx.driver_rec().map(|d| (d.driver_object, d.passive));
        let Some((drv, passive)) = d else {
            return STATUS_INVALID_DEVICE_STATE;
        };
        (drv, passive, name, sddl, t, c)
    };
    // SAFETY: caller contract.
    let context = match unsafe { object::allocate_context(attrs.as_ref()) } {
        Ok(c) => c,
        Err(s) => return s,
    };
    let name_us = name.as_deref().map(UnicodeString::new);
    let sddl_us = UnicodeString::new(sddl.as_deref().unwrap_or("D:P"));
    let mut dev = null_mut();
    // SAFETY: the driver object is live; the strings outlive the call.
    let status = unsafe {
        iomgr::IoCreateDeviceSecure(
            driver_object as *const DRIVER_OBJECT,
            0,
            name_us.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            device_type,
            characteristics,
            false,
            sddl_us.as_ptr(),
            std::ptr::null(),
            &mut dev,
        )
    };
    if status < 0 {
        return status;
    }
    let mut fx = fx();
    let (file_config, file_attributes, request_attributes) = match fx.inits.remove(&p) {
        Some(i) => (i.file_config, i.file_attributes, i.request_attributes),
        None => (None, None, None),
    };
    let h = fx.insert(Object {
        kind: Kind::Device(Device {
            device_object: dev as usize,
            name: name_us,
            passive: level_of(attrs.as_ref(), driver_passive),
            file_config,
            file_attributes,
            request_attributes,
            default_queue: None,
            links: Vec::new(),
        }),
        context,
        cleanup: attrs.and_then(|a| a.EvtCleanupCallback),
        destroy: attrs.and_then(|a| a.EvtDestroyCallback),
    });
    fx.by_device_object.insert(dev as usize, h);
    // SAFETY: caller contract: writable.
    unsafe {
        *init = null_mut();
        *device = h as WDFDEVICE;
    }
    STATUS_SUCCESS
}

/// `WdfDeviceCreateSymbolicLink` (wdfdevice.h). PASSIVE_LEVEL. A link to the device's name,
/// deleted by the framework with the device. Errors: STATUS_INVALID_DEVICE_STATE (unnamed
/// device), those of `IoCreateSymbolicLink`.
pub unsafe extern "C" fn WdfDeviceCreateSymbolicLink(
    _g: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
    link: *const UNICODE_STRING,
) -> NTSTATUS {
    require_irql("WdfDeviceCreateSymbolicLink", PASSIVE_LEVEL);
    let name = fx()
        .device(device as usize)
        .map(|d| d.name.as_ref().map(|n| n.to_string_lossy()));
    let Some(name) = name else {
        api_violation(format!(
            "WdfDeviceCreateSymbolicLink({device:p}): not a WDFDEVICE"
        ));
        return STATUS_INVALID_PARAMETER;
    };
    let Some(name) = name else {
        return STATUS_INVALID_DEVICE_STATE;
    };
    // SAFETY: caller contract: a readable UNICODE_STRING.
    let Some(l) = (if link.is_null() {
        None
    } else {
        // SAFETY: a non-NULL UNICODE_STRING from the driver (the WDF contract).
        unsafe { iomgr::ustr::read(link) }
    }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let (l_us, n_us) = (UnicodeString::new(&l), UnicodeString::new(&name));
    // SAFETY: both strings outlive the call.
    let status = unsafe { iomgr::IoCreateSymbolicLink(l_us.as_ptr(), n_us.as_ptr()) };
    if status >= 0 {
        if let Some(d) = fx().device(device as usize) {
            d.links.push(l_us);
        }
    }
    status
}

/// `WdfIoQueueCreate` (wdfio.h). IRQL <= DISPATCH_LEVEL. Parallel queues present at most
/// `Settings.Parallel.NumberOfPresentedRequests` requests at once (0: none, ever, as
/// FxIoQueue::DispatchEvents compares `m_DriverIoCount >= m_MaxParallelQueuePresentedRequests`;
/// `WDF_IO_QUEUE_CONFIG_INIT*` set it to (ULONG)-1), sequential ones one. The queue's callback
/// IRQL follows its `ExecutionLevel` (inherited from the device, then the driver).
/// Errors: STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_PARAMETER (a sequential or manual
/// queue with NumberOfPresentedRequests, a manual queue with callbacks),
/// STATUS_INVALID_DEVICE_STATE (a second default queue).
pub unsafe extern "C" fn WdfIoQueueCreate(
    _g: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
    config: *const WDF_IO_QUEUE_CONFIG,
    attributes: *const WDF_OBJECT_ATTRIBUTES,
    queue: *mut WDFQUEUE,
) -> NTSTATUS {
    require_irql("WdfIoQueueCreate", DISPATCH_LEVEL);
    if config.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: caller contract: readable.
    let c = unsafe { *config };
    if c.Size as usize != std::mem::size_of::<WDF_IO_QUEUE_CONFIG>() {
        api_violation(format!(
            "WdfIoQueueCreate: WDF_IO_QUEUE_CONFIG.Size {} (use WDF_IO_QUEUE_CONFIG_INIT*)",
            c.Size
        ));
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    // SAFETY: caller contract.
    let attrs = match unsafe { object::read_attributes("WdfIoQueueCreate", attributes) } {
        Ok(a) => a,
        Err(s) => return s,
    };
    let has_callbacks = c.EvtIoDefault.is_some()
        || c.EvtIoDeviceControl.is_some()
        || c.EvtIoRead.is_some()
        || c.EvtIoWrite.is_some();
    let max_presented = match c.DispatchType {
        dispatch_type::PARALLEL => c.NumberOfPresentedRequests,
        dispatch_type::SEQUENTIAL if c.NumberOfPresentedRequests == 0 => 1,
        dispatch_type::MANUAL if c.NumberOfPresentedRequests == 0 && !has_callbacks => 0,
        _ => return STATUS_INVALID_PARAMETER,
    };
    // SAFETY: caller contract.
    let context = match unsafe { object::allocate_context(attrs.as_ref()) } {
        Ok(c) => c,
        Err(s) => return s,
    };
    let mut fx = fx();
    let Some(d) = fx.device(device as usize) else {
        drop(fx);
        api_violation(format!("WdfIoQueueCreate({device:p}): not a WDFDEVICE"));
        return STATUS_INVALID_PARAMETER;
    };
    if c.DefaultQueue != 0 && d.default_queue.is_some() {
        return STATUS_INVALID_DEVICE_STATE;
    }
    let passive = level_of(attrs.as_ref(), d.passive);
    let h = fx.insert(Object {
        kind: Kind::Queue(Queue {
            device: device as usize,
            passive,
            max_presented,
            presented: 0,
            waiting: Default::default(),
            evt_io_device_control: c.EvtIoDeviceControl,
            evt_io_default: c.EvtIoDefault,
        }),
        context,
        cleanup: attrs.and_then(|a| a.EvtCleanupCallback),
        destroy: attrs.and_then(|a| a.EvtDestroyCallback),
    });
    if c.DefaultQueue != 0 {
        if let Some(d) = fx.device(device as usize) {
            d.default_queue = Some(h);
        }
    }
    if !queue.is_null() {
        // SAFETY: caller contract: writable.
        unsafe { *queue = h as WDFQUEUE };
    }
    STATUS_SUCCESS
}

/// `WdfControlFinishInitializing` (wdfcontrol.h). IRQL <= DISPATCH_LEVEL. Clears
/// DO_DEVICE_INITIALIZING: the control device accepts opens.
pub unsafe extern "C" fn WdfControlFinishInitializing(_g: PWDF_DRIVER_GLOBALS, device: WDFDEVICE) {
    require_irql("WdfControlFinishInitializing", DISPATCH_LEVEL);
    let dev = fx().device(device as usize).map(|d| d.device_object);
    match dev {
        // SAFETY: our live device object.
        Some(d) => unsafe {
            (*(d as *mut windows_sys::Wdk::Foundation::DEVICE_OBJECT)).Flags &=
                !iomgr::DO_DEVICE_INITIALIZING
        },
        None => api_violation(format!(
            "WdfControlFinishInitializing({device:p}): not a WDFDEVICE"
        )),
    }
}

/// `WdfObjectDelete` (wdfobject.h). IRQL <= DISPATCH_LEVEL. Deletes a device (its queues,
/// symbolic links and device object; requests still outstanding on it break
/// [`Rule::WdfRequestOutstanding`] and are cancelled by the model) or a queue. Requests, file
/// objects and the driver object are the framework's to delete (a violation).
pub unsafe extern "C" fn WdfObjectDelete(_g: PWDF_DRIVER_GLOBALS, object: WDFOBJECT) {
    require_irql("WdfObjectDelete", DISPATCH_LEVEL);
    let h = object as usize;
    let kind = fx().objects.get(&h).map(|o| o.kind.name());
    match kind {
        Some("WDFDEVICE") => super::delete_device(h, "WdfObjectDelete"),
        Some("WDFQUEUE") => super::delete_queue(h, "WdfObjectDelete"),
        Some(k) => api_violation(format!(
            "WdfObjectDelete({h:#x}): a {k} is the framework's to delete"
        )),
        None => api_violation(format!(
            "WdfObjectDelete({h:#x}): not a live framework object (deleted twice?)"
        )),
    }
}

/// `WdfObjectGetTypedContextWorker` (wdfobject.h). Any IRQL. The object's context if it was
/// declared with this type, else NULL.
pub unsafe extern "C" fn WdfObjectGetTypedContextWorker(
    _g: PWDF_DRIVER_GLOBALS,
    handle: WDFOBJECT,
    type_info: *const WDF_OBJECT_CONTEXT_TYPE_INFO,
) -> *mut c_void {
    let p = object::context_of(&fx(), handle as usize, type_info as usize);
    match p {
        Some(p) => p,
        None => {
            api_violation(format!(
                "WdfObjectGetTypedContextWorker({handle:p}): no context of that type"
            ));
            null_mut()
        }
    }
}

/// `WdfDeviceWdmGetDeviceObject` (wdfdevice.h): the WDM `DEVICE_OBJECT` behind a framework
/// device. IRQL <= DISPATCH_LEVEL.
pub unsafe extern "C" fn WdfDeviceWdmGetDeviceObject(
    _g: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
) -> *mut DEVICE_OBJECT {
    require_irql("WdfDeviceWdmGetDeviceObject", DISPATCH_LEVEL);
    let wdm = fx().device(device as usize).map(|d| d.device_object);
    match wdm {
        Some(w) => w as *mut DEVICE_OBJECT,
        None => {
            api_violation(format!(
                "WdfDeviceWdmGetDeviceObject({device:p}): not a WDFDEVICE"
            ));
            null_mut()
        }
    }
}

/// `WdfFileObjectWdmGetFileObject` (wdffileobject.h). IRQL <= DISPATCH_LEVEL.
pub unsafe extern "C" fn WdfFileObjectWdmGetFileObject(
    _g: PWDF_DRIVER_GLOBALS,
    file: WDFFILEOBJECT,
) -> *mut FILE_OBJECT {
    require_irql("WdfFileObjectWdmGetFileObject", DISPATCH_LEVEL);
    let wdm = fx().file(file as usize).map(|f| f.wdm);
    match wdm {
        Some(w) => w as *mut FILE_OBJECT,
        None => {
            api_violation(format!(
                "WdfFileObjectWdmGetFileObject({file:p}): not a WDFFILEOBJECT"
            ));
            null_mut()
        }
    }
}

/// `WdfRequestComplete` (wdfrequest.h). IRQL <= DISPATCH_LEVEL.
pub unsafe extern "C" fn WdfRequestComplete(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    status: NTSTATUS,
) {
    require_irql("WdfRequestComplete", DISPATCH_LEVEL);
    io::complete_by_driver("WdfRequestComplete", request as usize, status, 0);
}

/// `WdfRequestCompleteWithInformation` (wdfrequest.h). IRQL <= DISPATCH_LEVEL.
pub unsafe extern "C" fn WdfRequestCompleteWithInformation(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    status: NTSTATUS,
    information: usize,
) {
    require_irql("WdfRequestCompleteWithInformation", DISPATCH_LEVEL);
    io::complete_by_driver(
        "WdfRequestCompleteWithInformation",
        request as usize,
        status,
        information,
    );
}

/// `WdfRequestMarkCancelableEx` (wdfrequest.h). IRQL <= DISPATCH_LEVEL. STATUS_SUCCESS: the
/// request is cancelable, and `EvtRequestCancel` runs if it is cancelled;
/// STATUS_CANCELLED: it was cancelled already (the callback will not run: the driver
/// completes it). STATUS_INVALID_DEVICE_REQUEST: not a driver-owned request.
pub unsafe extern "C" fn WdfRequestMarkCancelableEx(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    cancel: PFN_WDF_REQUEST_CANCEL,
) -> NTSTATUS {
    require_irql("WdfRequestMarkCancelableEx", DISPATCH_LEVEL);
    let Some((irp, _)) = driver_request("WdfRequestMarkCancelableEx", request) else {
        return STATUS_INVALID_DEVICE_REQUEST;
    };
    if cancel.is_none() {
        api_violation("WdfRequestMarkCancelableEx: NULL EvtRequestCancel".into());
        return STATUS_INVALID_PARAMETER;
    }
    {
        let mut fx = fx();
        let Some(r) = fx.request(request as usize) else {
            return STATUS_INVALID_DEVICE_REQUEST;
        };
        if r.cancel.is_some() || r.cancel_claimed {
            drop(fx);
            api_violation(format!(
                "WdfRequestMarkCancelableEx({request:p}): already cancelable"
            ));
            return STATUS_INVALID_DEVICE_REQUEST;
        }
        r.cancel = cancel;
    }
    // SAFETY: live IRP the framework holds for the request.
    unsafe {
        irp::set_cancel_routine(irp, fx_driver_cancel as *mut c_void);
        if (*irp).Cancel && !irp::set_cancel_routine(irp, null_mut()).is_null() {
            if let Some(r) = fx().request(request as usize) {
                r.cancel = None;
            }
            return STATUS_CANCELLED;
        }
    }
    STATUS_SUCCESS
}

/// `WdfRequestUnmarkCancelable` (wdfrequest.h). IRQL <= DISPATCH_LEVEL. STATUS_SUCCESS: the
/// request is no longer cancelable and `EvtRequestCancel` will not run; STATUS_CANCELLED:
/// it was cancelled and `EvtRequestCancel` runs (or ran) — the driver must not complete it
/// before that. STATUS_INVALID_DEVICE_REQUEST: not cancelable (a violation).
pub unsafe extern "C" fn WdfRequestUnmarkCancelable(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
) -> NTSTATUS {
    require_irql("WdfRequestUnmarkCancelable", DISPATCH_LEVEL);
    let Some((irp, _)) = driver_request("WdfRequestUnmarkCancelable", request) else {
        return STATUS_INVALID_DEVICE_REQUEST;
    };
    {
        let mut fx = fx();
        let Some(r) = fx.request(request as usize) else {
            return STATUS_INVALID_DEVICE_REQUEST;
        };
        if r.cancel_claimed {
            drop(fx);
            super::note_unmark_cancelled();
            return STATUS_CANCELLED;
        }
        if r.cancel.is_none() {
            drop(fx);
            api_violation(format!(
                "WdfRequestUnmarkCancelable({request:p}): the request is not cancelable"
            ));
            return STATUS_INVALID_DEVICE_REQUEST;
        }
    }
    // SAFETY: live IRP the framework holds for the request.
    if unsafe { irp::set_cancel_routine(irp, null_mut()) }.is_null() {
        // The cancel routine runs now: it claims the request and calls EvtRequestCancel.
        super::note_unmark_cancelled();
        return STATUS_CANCELLED;
    }
    if let Some(r) = fx().request(request as usize) {
        r.cancel = None;
    }
    STATUS_SUCCESS
}

/// `WdfRequestGetFileObject` (wdfrequest.h). IRQL <= DISPATCH_LEVEL. NULL if the request has
/// no framework file object.
pub unsafe extern "C" fn WdfRequestGetFileObject(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
) -> WDFFILEOBJECT {
    require_irql("WdfRequestGetFileObject", DISPATCH_LEVEL);
    let file = fx().request(request as usize).and_then(|r| r.file);
    file.map_or(null_mut(), |f| f as WDFFILEOBJECT)
}

/// `WdfRequestGetRequestorMode` (wdfrequest.h). IRQL <= DISPATCH_LEVEL. The IRP's
/// `RequestorMode` (UserMode = 1, KernelMode = 0).
pub unsafe extern "C" fn WdfRequestGetRequestorMode(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
) -> i8 {
    require_irql("WdfRequestGetRequestorMode", DISPATCH_LEVEL);
    match driver_request("WdfRequestGetRequestorMode", request) {
        // SAFETY: live IRP.
        Some((irp, _)) => unsafe { (*irp).RequestorMode },
        None => USER_MODE,
    }
}

/// The IOCTL parameters of a driver-owned device-control request.
fn ioctl_of(routine: &str, request: WDFREQUEST) -> Result<(*mut IRP, u32, usize, usize), NTSTATUS> {
    let Some((irp, major)) = driver_request(routine, request) else {
        return Err(STATUS_INVALID_DEVICE_REQUEST);
    };
    if major != 0x0e {
        return Err(STATUS_INVALID_DEVICE_REQUEST);
    }
    // SAFETY: a live IRP_MJ_DEVICE_CONTROL IRP at the framework's stack location.
    let p = unsafe { *nt_imports::device_io_control(irp::current_stack_location(irp)) };
    Ok((
        irp,
        p.IoControlCode,
        p.InputBufferLength as usize,
        p.OutputBufferLength as usize,
    ))
}

/// `WdfRequestRetrieveInputBuffer` (wdfrequest.h). IRQL <= DISPATCH_LEVEL. METHOD_BUFFERED
/// and the direct methods: the system buffer. Errors: STATUS_BUFFER_TOO_SMALL (no input, or
/// shorter than `minimum`), STATUS_INVALID_DEVICE_REQUEST (METHOD_NEITHER from user mode,
/// not a device control), STATUS_INVALID_PARAMETER (NULL `buffer`).
pub unsafe extern "C" fn WdfRequestRetrieveInputBuffer(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    minimum: usize,
    buffer: *mut *mut c_void,
    length: *mut usize,
) -> NTSTATUS {
    require_irql("WdfRequestRetrieveInputBuffer", DISPATCH_LEVEL);
    if buffer.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let (irp, code, in_len, _) = match ioctl_of("WdfRequestRetrieveInputBuffer", request) {
        Ok(x) => x,
        Err(s) => return s,
    };
    if in_len == 0 || in_len < minimum {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: live IRP.
    let p = unsafe {
        match code & 3 {
            METHOD_BUFFERED | METHOD_IN_DIRECT | METHOD_OUT_DIRECT => {
                (*irp).AssociatedIrp.SystemBuffer
            }
            _ if (*irp).RequestorMode == USER_MODE => return STATUS_INVALID_DEVICE_REQUEST,
            _ => {
                (*nt_imports::device_io_control(irp::current_stack_location(irp))).Type3InputBuffer
            }
        }
    };
    // SAFETY: caller contract: writable out pointers.
    unsafe {
        *buffer = p;
        if !length.is_null() {
            *length = in_len;
        }
    }
    STATUS_SUCCESS
}

/// `WdfRequestRetrieveOutputBuffer` (wdfrequest.h). IRQL <= DISPATCH_LEVEL. METHOD_BUFFERED:
/// the system buffer; direct methods: the system address of the IRP's MDL. Errors as
/// [`WdfRequestRetrieveInputBuffer`] (METHOD_NEITHER: STATUS_INVALID_DEVICE_REQUEST).
pub unsafe extern "C" fn WdfRequestRetrieveOutputBuffer(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    minimum: usize,
    buffer: *mut *mut c_void,
    length: *mut usize,
) -> NTSTATUS {
    require_irql("WdfRequestRetrieveOutputBuffer", DISPATCH_LEVEL);
    if buffer.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let (irp, code, _, out_len) = match ioctl_of("WdfRequestRetrieveOutputBuffer", request) {
        Ok(x) => x,
        Err(s) => return s,
    };
    if out_len == 0 || out_len < minimum {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: live IRP; its MDL (direct methods) is locked by the I/O manager.
    let p = unsafe {
        match code & 3 {
            METHOD_BUFFERED => (*irp).AssociatedIrp.SystemBuffer,
            METHOD_IN_DIRECT | METHOD_OUT_DIRECT => match crate::mdl::mdl_region((*irp).MdlAddress)
            {
                Some((va, _)) => va.cast(),
                None => return STATUS_INSUFFICIENT_RESOURCES,
            },
            _ => return STATUS_INVALID_DEVICE_REQUEST,
        }
    };
    // SAFETY: caller contract: writable out pointers.
    unsafe {
        *buffer = p;
        if !length.is_null() {
            *length = out_len;
        }
    }
    STATUS_SUCCESS
}

/// `WdfRequestRetrieveOutputWdmMdl` (wdfrequest.h). IRQL <= DISPATCH_LEVEL. Direct methods:
/// the IRP's MDL; METHOD_BUFFERED: an MDL the framework builds over the system buffer (freed
/// at completion). Errors: STATUS_BUFFER_TOO_SMALL (no output), STATUS_INVALID_DEVICE_REQUEST
/// (METHOD_NEITHER), STATUS_INSUFFICIENT_RESOURCES.
pub unsafe extern "C" fn WdfRequestRetrieveOutputWdmMdl(
    _g: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    mdl: *mut *mut MDL,
) -> NTSTATUS {
    require_irql("WdfRequestRetrieveOutputWdmMdl", DISPATCH_LEVEL);
    if mdl.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let (irp, code, _, out_len) = match ioctl_of("WdfRequestRetrieveOutputWdmMdl", request) {
        Ok(x) => x,
        Err(s) => return s,
    };
    if out_len == 0 {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: live IRP.
    let m = unsafe {
        match code & 3 {
            METHOD_IN_DIRECT | METHOD_OUT_DIRECT => (*irp).MdlAddress,
            METHOD_BUFFERED => {
                let existing = fx().request(request as usize).map_or(0, |r| r.built_mdl);
                if existing != 0 {
                    existing as *mut MDL
                } else {
                    let m = crate::mdl::IoAllocateMdl(
                        (*irp).AssociatedIrp.SystemBuffer,
                        out_len as u32,
                        false,
                        false,
                        null_mut(),
                    );
                    if m.is_null() {
                        return STATUS_INSUFFICIENT_RESOURCES;
                    }
                    crate::mdl::MmBuildMdlForNonPagedPool(m);
                    if let Some(r) = fx().request(request as usize) {
                        r.built_mdl = m as usize;
                    }
                    m
                }
            }
            _ => return STATUS_INVALID_DEVICE_REQUEST,
        }
    };
    // SAFETY: caller contract: writable.
    unsafe { *mdl = m };
    STATUS_SUCCESS
}
