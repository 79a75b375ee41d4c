//! KMDF front-end (`kmdf` feature): a non-PnP driver with a control device, sitting on the
//! same [`crate::core`] as the WDM front-end. One link to Microsoft's WDF reference per call;
//! why non-PnP: `docs/kmdf.md`.
//!
//! On Windows this is the driver, built with windows-drivers-rs (wdk-sys 0.5.2, wdk 0.5.0).
//! On other hosts the same source compiles against `wdk-sys-standin` / `wdk-standin` (named
//! `wdk_sys` / `wdk` at the crate root) and runs on `ntsim::wdf`, which binds the WDF
//! function table as wdfldr does; [`driver_entry`] is then called by the host loader.
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

use wdk::println;
use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_DRIVER_INIT_FLAGS, _WDF_EXECUTION_LEVEL,
    _WDF_FILEOBJECT_CLASS, _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE,
    DRIVER_OBJECT, NTSTATUS, PCUNICODE_STRING, PDRIVER_OBJECT, PMDL, PVOID, PWDFDEVICE_INIT,
    STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS, ULONG, UNICODE_STRING,
    WDFDEVICE, WDFDRIVER, WDFFILEOBJECT, WDFQUEUE, WDFREQUEST, WDF_DRIVER_CONFIG,
    WDF_FILEOBJECT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES,
    WDF_OBJECT_CONTEXT_TYPE_INFO,
};

use crate::core::{Completion, DataMdl, DeviceCore, FileContext, Input};
use crate::wide::{unicode, DEVICE_NAME_W, DOS_DEVICE_NAME_W, SDDL_W};
use wskclient_ioctl::Operation;

#[cfg(windows)]
#[global_allocator]
static ALLOCATOR: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;
#[cfg(windows)]
extern crate wdk_panic;

/// The device core, created in DriverEntry in the WDFDRIVER's context ([`CoreSlot`]),
/// dropped in EvtDriverUnload.
static CORE: AtomicPtr<DeviceCore> = AtomicPtr::new(null_mut());
/// The control device, deleted in EvtDriverUnload (control devices are not PnP-removed).
static DEVICE: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(null_mut());
const FILE_DEVICE_SECURE_OPEN: ULONG = 0x100;
const MAX_INPUT: usize = wskclient_ioctl::frontend::SMALL_INPUT;

fn device_core<'a>() -> Option<&'a DeviceCore> {
    // SAFETY: set before the device exists, cleared only after it is deleted.
    unsafe { CORE.load(Ordering::Acquire).as_ref() }
}

fn size_of_u32<T>() -> ULONG {
    core::mem::size_of::<T>() as ULONG
}

/// A WDF object context type, as `WDF_DECLARE_CONTEXT_TYPE_WITH_NAME` (wdfobject.h, KMDF
/// 1.33) declares one: a static `WDF_OBJECT_CONTEXT_TYPE_INFO` whose `UniqueType` points to
/// itself. The framework allocates the context, zeroed, with each object whose attributes name
/// the type, and frees it with the object: no driver allocation.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/wdf/framework-object-context-space>
#[repr(transparent)]
struct ContextType(WDF_OBJECT_CONTEXT_TYPE_INFO);
// SAFETY: immutable static data that the framework only reads.
unsafe impl Sync for ContextType {}

/// `declare_context_type!(INFO, Type, c"Name")`: the `ContextType` static for `Type`.
macro_rules! declare_context_type {
    ($info:ident, $ty:ty, $name:literal) => {
        static $info: ContextType = ContextType(WDF_OBJECT_CONTEXT_TYPE_INFO {
            Size: core::mem::size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() as ULONG,
            ContextName: $name.as_ptr(),
            ContextSize: core::mem::size_of::<$ty>(),
            UniqueType: &$info.0,
            EvtDriverGetUniqueContextType: None,
        });
    };
}

/// Mirrors `WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(attributes, type)` (wdfobject.h, KMDF
/// 1.33): `WDF_OBJECT_ATTRIBUTES_INIT`, then `ContextTypeInfo` = the type's `UniqueType`
/// (`WDF_OBJECT_ATTRIBUTES_SET_CONTEXT_TYPE`). Any IRQL.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfobject/nf-wdfobject-wdf_object_attributes_init_context_type>
fn object_attributes_init_context_type(info: &'static ContextType) -> WDF_OBJECT_ATTRIBUTES {
    let mut attributes = object_attributes_init();
    attributes.ContextTypeInfo = info.0.UniqueType;
    attributes
}

/// The context of `object` of type `info` (`WdfObjectGetTypedContext`), or `None` if the
/// object has none of that type. IRQL <= DISPATCH_LEVEL.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfobject/nf-wdfobject-wdfobjectgettypedcontextworker>
fn typed_context<'a, T>(object: PVOID, info: &'static ContextType) -> Option<&'a T> {
    // SAFETY: a live framework object of ours; the type info is a static declaration.
    let p = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            object as _,
            info.0.UniqueType
        )
    };
    // SAFETY: the framework's context memory for `T`, zeroed at creation (every `T` here is
    // valid all-zero) and alive as long as the object, which outlives the caller's use.
    unsafe { (p as *const T).as_ref() }
}

/// The WDFDRIVER's context: the device core, created in DriverEntry (no allocation: the
/// framework provides the memory), dropped in EvtDriverUnload. Zeroed: `ready` false.
#[repr(C)]
struct CoreSlot {
    ready: AtomicBool,
    core: UnsafeCell<MaybeUninit<DeviceCore>>,
}
declare_context_type!(CORE_SLOT_TYPE, CoreSlot, c"CoreSlot");

/// A framework file object's context: the core's file context, set in EvtDeviceFileCreate,
/// taken in EvtFileClose. Zeroed: `ready` false.
#[repr(C)]
struct FileSlot {
    ready: AtomicBool,
    ctx: UnsafeCell<MaybeUninit<FileContext>>,
}
declare_context_type!(FILE_SLOT_TYPE, FileSlot, c"FileSlot");

/// A request's context (every request of the device has one: WdfDeviceInitSetRequestAttributes):
/// what the core's completion and EvtRequestCancel share, kept in the request itself as
/// Microsoft's KMDF echo sample keeps its `CancelCompletionOwnershipCount`, so the cancel
/// callback always finds it (no global list to search, no allocation).
/// - `owners`: 2 while the request is cancelable; the completion (when
///   WdfRequestUnmarkCancelable returns STATUS_CANCELLED) and EvtRequestCancel each release
///   one, and whoever releases the last completes the request, once;
/// - `status`, `info`: what the completion stored, completed with;
/// - `socket`: the handle the request names (input bytes 8..16, as src/wdm.rs keeps it), read
///   at dispatch so the cancel callback never reads a METHOD_BUFFERED buffer a response may
///   have overwritten.
#[repr(C)]
struct RequestContext {
    cancelable: AtomicBool,
    owners: AtomicU8,
    status: AtomicI32,
    info: AtomicUsize,
    socket: AtomicU64,
}
declare_context_type!(REQUEST_CONTEXT_TYPE, RequestContext, c"RequestContext");

/// wdk-sys's UNICODE_STRING over a static UTF-16 name: the WDF functions take wdk-sys's type,
/// not the windows-sys one [`unicode`] builds (issue 11, defect 1).
fn wdf_unicode(s: &'static [u16]) -> UNICODE_STRING {
    let w = unicode(s);
    UNICODE_STRING {
        Length: w.Length,
        MaximumLength: w.MaximumLength,
        Buffer: w.Buffer,
    }
}

/// The deliberate type error of the negative compile check (`tests/kmdf_negative.rs`): built
/// only with `--cfg wskclient_kmdf_type_error`, it passes windows-sys's `UNICODE_STRING`
/// where the WDF call takes wdk-sys's `PCUNICODE_STRING` (issue 11, defect 1), which must
/// fail to compile with E0308.
#[cfg(wskclient_kmdf_type_error)]
fn kmdf_type_error(driver: WDFDRIVER) -> PWDFDEVICE_INIT {
    let sddl = unicode(&SDDL_W);
    // SAFETY: never compiles.
    unsafe { call_unsafe_wdf_function_binding!(WdfControlDeviceInitAllocate, driver, &sddl) }
}

/// DriverEntry: WdfDriverCreate (non-PnP), the WSK registration, then the control device.
/// PASSIVE_LEVEL. Returns WdfDriverCreate's, `DeviceCore::new`'s or the control device's
/// failure status. Source:
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/wdf/driverentry-for-kmdf-drivers>
///
/// # Safety
/// Called once per load, as the system calls DriverEntry: `registry_path` points to the
/// service's registry path, valid during the call, and the WDF function table is bound.
#[cfg_attr(windows, export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: size_of_u32::<WDF_DRIVER_CONFIG>(),
        EvtDriverUnload: Some(evt_driver_unload),
        DriverInitFlags: _WDF_DRIVER_INIT_FLAGS::WdfDriverInitNonPnpDriver as ULONG,
        ..WDF_DRIVER_CONFIG::default()
    };
    let mut wdf_driver: WDFDRIVER = null_mut();
    // The device core lives in the driver object's context.
    let mut driver_attributes = object_attributes_init_context_type(&CORE_SLOT_TYPE);
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdriver/nf-wdfdriver-wdfdrivercreate
    // SAFETY: DriverEntry's own arguments and locals that outlive the call.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver as PDRIVER_OBJECT,
            registry_path,
            &mut driver_attributes,
            &mut config,
            &mut wdf_driver
        )
    };
    if status < 0 {
        return status;
    }
    let Some(slot) = typed_context::<CoreSlot>(wdf_driver as _, &CORE_SLOT_TYPE) else {
        return STATUS_INSUFFICIENT_RESOURCES;
    };
    let core = match DeviceCore::new() {
        Ok(c) => c,
        Err(s) => return s,
    };
    // SAFETY: the driver context, ours, zeroed and not yet initialised.
    let core = unsafe { (*slot.core.get()).write(core) as *mut DeviceCore };
    slot.ready.store(true, Ordering::Release);
    CORE.store(core, Ordering::Release);
    let status = create_control_device(wdf_driver);
    if status < 0 {
        drop_core();
    }
    println!("wskclient: KMDF DriverEntry -> {status:#010x}");
    status
}

/// The control device `\Device\WskClient` (SDDL: SYSTEM and Administrators), its symbolic
/// link, file-object callbacks and a parallel default queue.
fn create_control_device(driver: WDFDRIVER) -> NTSTATUS {
    let (sddl, name, link) = (
        wdf_unicode(&SDDL_W),
        wdf_unicode(&DEVICE_NAME_W),
        wdf_unicode(&DOS_DEVICE_NAME_W),
    );
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfcontrol/nf-wdfcontrol-wdfcontroldeviceinitallocate
    // SAFETY: our driver handle and a UNICODE_STRING over static memory.
    let mut init: PWDFDEVICE_INIT =
        unsafe { call_unsafe_wdf_function_binding!(WdfControlDeviceInitAllocate, driver, &sddl) };
    if init.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let mut file_config = WDF_FILEOBJECT_CONFIG {
        Size: size_of_u32::<WDF_FILEOBJECT_CONFIG>(),
        EvtDeviceFileCreate: Some(evt_file_create),
        EvtFileClose: Some(evt_file_close),
        EvtFileCleanup: Some(evt_file_cleanup),
        AutoForwardCleanupClose: _WDF_TRI_STATE::WdfUseDefault,
        FileObjectClass: _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
    };
    let mut file_attributes = object_attributes_init_context_type(&FILE_SLOT_TYPE);
    let mut request_attributes = object_attributes_init_context_type(&REQUEST_CONTEXT_TYPE);
    let mut device: WDFDEVICE = null_mut();
    // SAFETY: `init` is ours until WdfDeviceCreate consumes it (or WdfDeviceInitFree below).
    let status = unsafe {
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdeviceinitsetdevicetype
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetDeviceType,
            init,
            wskclient_ioctl::FILE_DEVICE_WSKCLIENT
        );
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdeviceinitsetcharacteristics
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetCharacteristics,
            init,
            FILE_DEVICE_SECURE_OPEN,
            1
        );
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdeviceinitsetfileobjectconfig
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetFileObjectConfig,
            init,
            &mut file_config,
            &mut file_attributes
        );
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdeviceinitsetrequestattributes
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetRequestAttributes,
            init,
            &mut request_attributes
        );
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdeviceinitassignname
        let s = call_unsafe_wdf_function_binding!(WdfDeviceInitAssignName, init, &name);
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdevicecreate
        if s < 0 {
            s
        } else {
            call_unsafe_wdf_function_binding!(
                WdfDeviceCreate,
                &mut init,
                WDF_NO_OBJECT_ATTRIBUTES,
                &mut device
            )
        }
    };
    if status < 0 {
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdeviceinitfree
        // SAFETY: WdfDeviceCreate failed or was not called, so `init` is still ours.
        unsafe { call_unsafe_wdf_function_binding!(WdfDeviceInitFree, init) };
        return status;
    }
    // Control devices have no power states: their queues must not be power managed.
    let mut queue_config =
        io_queue_config_init_default_queue(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel);
    queue_config.PowerManaged = _WDF_TRI_STATE::WdfFalse;
    queue_config.EvtIoDeviceControl = Some(evt_io_device_control);
    // The core waits on KEVENTs and TRANSMIT_FILE calls ObReferenceObjectByHandle/ZwReadFile
    // in EvtIoDeviceControl: PASSIVE_LEVEL is required, which KMDF guarantees only with
    // WdfExecutionLevelPassive (the driver object's default is WdfExecutionLevelDispatch,
    // "IRQL <= DISPATCH_LEVEL"). Set on the queue (KMDF 1.9 and later), so its callbacks,
    // EvtRequestCancel of its requests included, run at PASSIVE_LEVEL.
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfobject/ne-wdfobject-_wdf_execution_level
    let mut queue_attributes = object_attributes_init();
    queue_attributes.ExecutionLevel = _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive;
    let mut queue: WDFQUEUE = null_mut();
    // SAFETY: the device just created; locals outlive the calls.
    let status = unsafe {
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdevicecreatesymboliclink
        let s = call_unsafe_wdf_function_binding!(WdfDeviceCreateSymbolicLink, device, &link);
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfio/nf-wdfio-wdfioqueuecreate
        if s < 0 {
            s
        } else {
            call_unsafe_wdf_function_binding!(
                WdfIoQueueCreate,
                device,
                &mut queue_config,
                &mut queue_attributes,
                &mut queue
            )
        }
    };
    if status < 0 {
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfobject/nf-wdfobject-wdfobjectdelete
        // SAFETY: our control device, not yet in use.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, device as _) };
        return status;
    }
    DEVICE.store(device as _, Ordering::Release);
    // wsk's asynchronous completion routines may run after the operation's caller returned:
    // set them with IoSetCompletionRoutineEx on this device so that each keeps the driver
    // loaded until it ran (issue 12, defect 7).
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdevicewdmgetdeviceobject
    // SAFETY: our control device, just created.
    let wdm = unsafe { call_unsafe_wdf_function_binding!(WdfDeviceWdmGetDeviceObject, device) };
    let _ = wsk::irp::protect_completions(wdm.cast());
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfcontrol/nf-wdfcontrol-wdfcontrolfinishinitializing
    // SAFETY: our control device.
    unsafe { call_unsafe_wdf_function_binding!(WdfControlFinishInitializing, device) };
    STATUS_SUCCESS
}

/// Mirrors `WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE` (wdfio.h, KMDF 1.33): the structure
/// zeroed, `Size`, `PowerManaged = WdfUseDefault`, `DefaultQueue = TRUE`, `DispatchType`,
/// and for a parallel queue `Settings.Parallel.NumberOfPresentedRequests = (ULONG)-1` (no
/// limit; 0 would make the framework present no request at all). Any IRQL.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfio/nf-wdfio-wdf_io_queue_config_init_default_queue>
fn io_queue_config_init_default_queue(
    dispatch_type: _WDF_IO_QUEUE_DISPATCH_TYPE::Type,
) -> WDF_IO_QUEUE_CONFIG {
    let mut config = WDF_IO_QUEUE_CONFIG {
        Size: size_of_u32::<WDF_IO_QUEUE_CONFIG>(),
        PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
        DefaultQueue: 1,
        DispatchType: dispatch_type,
        // RtlZeroMemory: bindgen's Default for this structure is all zero.
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    if dispatch_type == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel {
        config.Settings.Parallel.NumberOfPresentedRequests = ULONG::MAX;
    }
    config
}

/// Mirrors `WDF_OBJECT_ATTRIBUTES_INIT` (wdfobject.h, KMDF 1.33): the structure zeroed,
/// `Size`, `ExecutionLevel = WdfExecutionLevelInheritFromParent`, `SynchronizationScope =
/// WdfSynchronizationScopeInheritFromParent`. Any IRQL.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfobject/nf-wdfobject-wdf_object_attributes_init>
fn object_attributes_init() -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: size_of_u32::<WDF_OBJECT_ATTRIBUTES>(),
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        // RtlZeroMemory: bindgen's Default for this structure is all zero.
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

/// Drops the device core (in the driver context): no device is left to use it.
fn drop_core() {
    let p = CORE.swap(null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: the core DriverEntry wrote into the driver context; dropped once (CORE is
        // swapped out above); the context memory itself is the framework's.
        unsafe { core::ptr::drop_in_place(p) };
    }
}

/// EvtDriverUnload: delete the control device (every file object is closed by now), then
/// drop the core, which deregisters from WSK.
extern "C" fn evt_driver_unload(_driver: WDFDRIVER) {
    let device = DEVICE.swap(null_mut(), Ordering::AcqRel);
    if !device.is_null() {
        // Every file object is closed, so no asynchronous operation can start any more.
        wsk::irp::unprotect_completions();
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/wdf/using-control-device-objects
        // SAFETY: our control device; the framework does not delete it for a non-PnP driver.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, device as _) };
    }
    drop_core();
    println!("wskclient: KMDF unloaded");
}

/// The core's file context of a framework file object, once EvtDeviceFileCreate set it.
fn file_context<'a>(file: WDFFILEOBJECT) -> Option<&'a FileContext> {
    let slot = typed_context::<FileSlot>(file as _, &FILE_SLOT_TYPE)?;
    // SAFETY: `ready` is set after the context was written, cleared before it is taken.
    slot.ready
        .load(Ordering::Acquire)
        .then(|| unsafe { (*slot.ctx.get()).assume_init_ref() })
}

extern "C" fn evt_file_create(_device: WDFDEVICE, request: WDFREQUEST, file: WDFFILEOBJECT) {
    let status = match device_core().map(DeviceCore::open_file) {
        Some(Ok(ctx)) => match typed_context::<FileSlot>(file as _, &FILE_SLOT_TYPE) {
            Some(slot) => {
                // SAFETY: the new file object's context, zeroed and ours to initialise.
                unsafe { (*slot.ctx.get()).write(ctx) };
                slot.ready.store(true, Ordering::Release);
                STATUS_SUCCESS
            }
            None => {
                if let Some(core) = device_core() {
                    core.close_file(ctx);
                }
                STATUS_INSUFFICIENT_RESOURCES
            }
        },
        Some(Err(s)) => s,
        None => STATUS_INSUFFICIENT_RESOURCES,
    };
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestcomplete
    // SAFETY: the create request the framework handed us.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, status) };
}

/// EvtFileCleanup: closes the file object's sockets; WskCloseSocket cancels their pending
/// IRPs, which completes the file object's pending requests.
extern "C" fn evt_file_cleanup(file: WDFFILEOBJECT) {
    if let (Some(core), Some(ctx)) = (device_core(), file_context(file)) {
        core.cleanup_file(ctx);
    }
}

/// EvtFileClose: the file object's last callback; its file context is taken and closed (the
/// context memory goes with the file object).
extern "C" fn evt_file_close(file: WDFFILEOBJECT) {
    let slot = typed_context::<FileSlot>(file as _, &FILE_SLOT_TYPE);
    if let (Some(core), Some(slot)) = (device_core(), slot) {
        if slot.ready.swap(false, Ordering::AcqRel) {
            // SAFETY: written in evt_file_create (`ready` was set); taken once.
            core.close_file(unsafe { (*slot.ctx.get()).assume_init_read() });
        }
    }
}

/// A framework request the core completes (through its [`RequestContext`]).
struct KmdfCompletion(WDFREQUEST);
// SAFETY: a WDFREQUEST may be completed from any thread at IRQL <= DISPATCH_LEVEL.
unsafe impl Send for KmdfCompletion {}

fn request_context<'a>(request: WDFREQUEST) -> Option<&'a RequestContext> {
    typed_context::<RequestContext>(request as _, &REQUEST_CONTEXT_TYPE)
}

/// Completes `request` with `status` and `information` (the request and its context go).
fn complete_request(request: WDFREQUEST, status: NTSTATUS, information: usize) {
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestcompletewithinformation
    // SAFETY: the request is completed exactly once, by its single remaining owner.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request,
            status,
            information as _
        )
    };
}

/// Completes `request` with what its context holds.
fn finish(request: WDFREQUEST, ctx: &RequestContext) {
    let (status, info) = (
        ctx.status.load(Ordering::Acquire),
        ctx.info.load(Ordering::Acquire),
    );
    complete_request(request, status, info);
}

impl Completion for KmdfCompletion {
    fn complete(self, status: NTSTATUS, information: usize) {
        let request = self.0;
        let Some(ctx) = request_context(request) else {
            return complete_request(request, status, information);
        };
        ctx.status.store(status, Ordering::Release);
        ctx.info.store(information, Ordering::Release);
        if !ctx.cancelable.load(Ordering::Acquire) {
            return finish(request, ctx);
        }
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestunmarkcancelable
        // SAFETY: a request we marked cancelable and have not completed.
        let s = unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, request) };
        // STATUS_CANCELLED: EvtRequestCancel runs (or ran) and releases its ownership; the
        // last of the two owners completes. The context stays with the request meanwhile.
        if s != STATUS_CANCELLED || ctx.owners.fetch_sub(1, Ordering::AcqRel) == 1 {
            finish(request, ctx);
        }
    }
}

/// EvtRequestCancel: the WSK IRP still uses the request's buffer, so the request cannot be
/// completed here; the request's socket is aborted (our choice, docs/ioctl.md
/// "Cancellation"), which makes WSK complete the IRP promptly. Then this callback releases
/// its ownership; if the completion already released its own, the request completes here.
extern "C" fn evt_request_cancel(request: WDFREQUEST) {
    let Some(ctx) = request_context(request) else {
        return;
    };
    if let (Some(core), Some(file)) = (device_core(), request_file(request)) {
        core.abort_socket(
            file,
            wskclient_ioctl::SocketHandle::from_raw(ctx.socket.load(Ordering::Acquire)),
        );
    }
    if ctx.owners.fetch_sub(1, Ordering::AcqRel) == 1 {
        finish(request, ctx);
    }
}

fn request_file<'a>(request: WDFREQUEST) -> Option<&'a FileContext> {
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestgetfileobject
    // SAFETY: a live request of our queue; its file object outlives it.
    let file = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, request) };
    if file.is_null() {
        None
    } else {
        // The context lives until EvtFileClose, after every request of the file.
        file_context(file)
    }
}

fn retrieve(request: WDFREQUEST, input: bool) -> Option<(PVOID, usize)> {
    let (mut buf, mut len): (PVOID, usize) = (null_mut(), 0);
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestretrieveinputbuffer
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestretrieveoutputbuffer
    // SAFETY: out pointers to locals.
    let s = unsafe {
        if input {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveInputBuffer,
                request,
                0,
                &mut buf,
                &mut len
            )
        } else {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveOutputBuffer,
                request,
                0,
                &mut buf,
                &mut len
            )
        }
    };
    (s >= 0 && !buf.is_null()).then_some((buf, len))
}

/// EvtIoDeviceControl: decode the request per its METHOD and hand it to the core.
extern "C" fn evt_io_device_control(
    _queue: WDFQUEUE,
    request: WDFREQUEST,
    output_len: usize,
    input_len: usize,
    code: ULONG,
) {
    let Some(ctx) = request_context(request) else {
        return complete_request(request, wdk_sys::STATUS_INVALID_DEVICE_STATE, 0);
    };
    ctx.cancelable.store(false, Ordering::Relaxed);
    ctx.owners.store(2, Ordering::Relaxed);
    ctx.status.store(0, Ordering::Relaxed);
    ctx.info.store(0, Ordering::Relaxed);
    ctx.socket.store(0, Ordering::Release);
    let (Some(core), Some(file)) = (device_core(), request_file(request)) else {
        return complete_request(request, wdk_sys::STATUS_INVALID_DEVICE_STATE, 0);
    };
    // The code is decoded here, once; the core takes the operation.
    let op = Operation::from_code(code);
    let method = wskclient_ioctl::method_of(code);
    let direct =
        method == wskclient_ioctl::METHOD_IN_DIRECT || method == wskclient_ioctl::METHOD_OUT_DIRECT;
    // METHOD_BUFFERED shares one buffer for input and output, and a response overwrites it:
    // such an input is copied first, only its bytes (at most MAX_INPUT + 1: one more is
    // already oversized) into uninitialised stack storage. CONNECT_WITH_DATA, RESOLVE and
    // TRANSMIT_* carry data inline: copied whole (bounded by Operation::max_input) into pool.
    let mut small = MaybeUninit::<[u8; MAX_INPUT + 1]>::uninit();
    let large: Vec<u8>;
    let mut input: &[u8] = &[];
    if let Some((buf, len)) = (input_len > 0).then(|| retrieve(request, true)).flatten() {
        let buf = buf as *const u8;
        if direct {
            // METHOD_IN_DIRECT / METHOD_OUT_DIRECT (SEND, SEND_TO, RECEIVE): the framework's
            // input buffer is the system buffer, which holds only the input (the data travels
            // in the MDL) and which nothing writes: parsed in place, no copy.
            // SAFETY: the framework's input buffer of `len` bytes, alive until the request
            // completes; the core reads the input only before it completes the request.
            input = unsafe { core::slice::from_raw_parts(buf, input_len.min(len)) };
        } else if let Some(op) = op.filter(|o| o.max_input() > MAX_INPUT && input_len > MAX_INPUT) {
            if input_len > op.max_input() || len < input_len {
                return complete_request(request, wdk_sys::STATUS_INVALID_BUFFER_SIZE, 0);
            }
            // SAFETY: the framework's input buffer holds `len` >= input_len bytes.
            let whole = unsafe { core::slice::from_raw_parts(buf, input_len) };
            match wsk::alloc::try_to_vec(whole) {
                Ok(v) => large = v,
                Err(e) => return complete_request(request, e.into(), 0),
            }
            input = &large;
        } else {
            let n = input_len.min(MAX_INPUT + 1).min(len);
            let dst = small.as_mut_ptr().cast::<u8>();
            // SAFETY: the framework's input buffer holds `len` >= n bytes; `small` has room
            // for MAX_INPUT + 1 >= n; the `n` bytes copied are then initialised and the rest
            // of `small` is never read.
            input = unsafe {
                core::ptr::copy_nonoverlapping(buf, dst, n);
                core::slice::from_raw_parts(dst, n)
            };
        }
    }
    let (mut output, mut data): (&mut [u8], Option<DataMdl>) = (&mut [], None);
    if method == wskclient_ioctl::METHOD_BUFFERED && output_len > 0 {
        if let Some((buf, len)) = retrieve(request, false) {
            // SAFETY: the framework's output buffer of `len` bytes, ours until completion.
            output = unsafe { core::slice::from_raw_parts_mut(buf as *mut u8, len) };
        }
    } else if direct {
        let mut mdl: PMDL = null_mut();
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestretrieveoutputwdmmdl
        // SAFETY: out pointer to a local; the MDL lives until the request completes.
        let s = unsafe {
            call_unsafe_wdf_function_binding!(WdfRequestRetrieveOutputWdmMdl, request, &mut mdl)
        };
        if s >= 0 {
            data = NonNull::new(mdl.cast()).map(|mdl| DataMdl {
                mdl,
                len: output_len,
            });
        }
    }
    // Every request is cancelable while the core holds it (as in src/wdm.rs): remember the
    // socket it names, then mark it.
    let socket = input
        .get(8..16)
        .filter(|_| op.is_some_and(Operation::names_socket))
        .map_or(0, |b| {
            b.iter().rev().fold(0u64, |h, &x| (h << 8) | u64::from(x))
        });
    ctx.socket.store(socket, Ordering::Release);
    ctx.cancelable.store(true, Ordering::Release);
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestmarkcancelableex
    // SAFETY: a request we own and have not completed.
    let s = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestMarkCancelableEx,
            request,
            Some(evt_request_cancel)
        )
    };
    if s < 0 {
        // STATUS_CANCELLED: cancelled already; nothing started, the callback will not run.
        ctx.cancelable.store(false, Ordering::Release);
        return complete_request(request, STATUS_CANCELLED, 0);
    }
    // The originator's mode decides the access check on a caller's file handle (TRANSMIT_*).
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestgetrequestormode
    // SAFETY: a request we own and have not completed.
    let mode =
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetRequestorMode, request) } as i8;
    // The WDM device object lets TRANSMIT_FILE pend on a work item (src/core/transmit.rs).
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdevice/nf-wdfdevice-wdfdevicewdmgetdeviceobject
    let wdf_device = DEVICE.load(Ordering::Acquire);
    let device = if wdf_device.is_null() {
        None
    } else {
        // SAFETY: our control device, live until EvtDriverUnload (after every request).
        let d = unsafe {
            call_unsafe_wdf_function_binding!(WdfDeviceWdmGetDeviceObject, wdf_device as WDFDEVICE)
        };
        NonNull::new(d.cast())
    };
    // The core gets the in-place input as a pointer (completing the request frees the buffer
    // while the input is still its argument) and a copy as a slice.
    let input = if direct {
        // SAFETY: the framework's input buffer, `input.len()` bytes nobody writes, alive until
        // the request completes.
        unsafe { Input::in_place(input.as_ptr(), input.len()) }
    } else {
        Input::copied(input)
    };
    // SAFETY: `output` is the framework's output buffer, valid and ours until the request
    // completes (device_control's contract); `device` is our live device object.
    unsafe {
        core.device_control_on(
            device,
            mode,
            file,
            op,
            input,
            output,
            data,
            KmdfCompletion(request),
        )
    };
}
