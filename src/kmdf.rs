//! KMDF front-end (`kmdf` feature): a non-PnP driver with a control device, sitting on the
//! same [`crate::core`] as the WDM front-end. One link to Microsoft's WDF reference per call;
//! why non-PnP: `docs/kmdf.md`.
//!
//! On Windows this is the driver, built with windows-drivers-rs (wdk-sys 0.5.2, wdk 0.5.0).
//! On other hosts the same source compiles against `wdk-sys-standin` / `wdk-standin` (named
//! `wdk_sys` / `wdk` at the crate root) and runs on `ntsim::wdf`, which binds the WDF
//! function table as wdfldr does; [`driver_entry`] is then called by the host loader.
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

use wdk::println;
use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_DRIVER_INIT_FLAGS, _WDF_FILEOBJECT_CLASS,
    _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_TRI_STATE, DRIVER_OBJECT, NTSTATUS, PCUNICODE_STRING,
    PDRIVER_OBJECT, PMDL, PVOID, PWDFDEVICE_INIT, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_SUCCESS, ULONG, UNICODE_STRING, WDFDEVICE, WDFDRIVER, WDFFILEOBJECT, WDFQUEUE,
    WDFREQUEST, WDF_DRIVER_CONFIG, WDF_FILEOBJECT_CONFIG, WDF_IO_QUEUE_CONFIG,
    WDF_NO_OBJECT_ATTRIBUTES,
};
use wsk::alloc::{try_box, try_box_or_return, try_extend_from_slice, try_push, KArc};
use wsk::sync::SpinLock;

use crate::core::{Completion, DataMdl, DeviceCore, FileContext};
use crate::wide::{unicode, DEVICE_NAME_W, DOS_DEVICE_NAME_W, SDDL_W};
use wskclient_ioctl::Operation;

#[cfg(windows)]
#[global_allocator]
static ALLOCATOR: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;
#[cfg(windows)]
extern crate wdk_panic;

/// The device core, created in DriverEntry, dropped in EvtDriverUnload.
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
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfdriver/nf-wdfdriver-wdfdrivercreate
    // SAFETY: DriverEntry's own arguments and locals that outlive the call.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver as PDRIVER_OBJECT,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &mut config,
            &mut wdf_driver
        )
    };
    if status < 0 {
        return status;
    }
    let core = match DeviceCore::new() {
        Ok(c) => c,
        Err(s) => return s,
    };
    let core = match try_box(core) {
        Ok(c) => c,
        Err(e) => return e.into(),
    };
    CORE.store(Box::into_raw(core), Ordering::Release);
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
            WDF_NO_OBJECT_ATTRIBUTES
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
    let mut queue_config = WDF_IO_QUEUE_CONFIG {
        Size: size_of_u32::<WDF_IO_QUEUE_CONFIG>(),
        DefaultQueue: 1,
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        PowerManaged: _WDF_TRI_STATE::WdfFalse,
        EvtIoDeviceControl: Some(evt_io_device_control),
        ..WDF_IO_QUEUE_CONFIG::default()
    };
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
                WDF_NO_OBJECT_ATTRIBUTES,
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
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfcontrol/nf-wdfcontrol-wdfcontrolfinishinitializing
    // SAFETY: our control device.
    unsafe { call_unsafe_wdf_function_binding!(WdfControlFinishInitializing, device) };
    STATUS_SUCCESS
}

fn drop_core() {
    let p = CORE.swap(null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: from Box::into_raw in DriverEntry; no device is left to use it.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// EvtDriverUnload: delete the control device (every file object is closed by now), then
/// drop the core, which deregisters from WSK.
extern "C" fn evt_driver_unload(_driver: WDFDRIVER) {
    let device = DEVICE.swap(null_mut(), Ordering::AcqRel);
    if !device.is_null() {
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/wdf/using-control-device-objects
        // SAFETY: our control device; the framework does not delete it for a non-PnP driver.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, device as _) };
    }
    drop_core();
    println!("wskclient: KMDF unloaded");
}

/// The WDM file object behind a framework file object; its FsContext holds our context
/// (FileObjectClass WdfFileObjectWdfCannotUseFsContexts leaves FsContext to the driver).
fn file_slot(file: WDFFILEOBJECT) -> *mut PVOID {
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdffileobject/nf-wdffileobject-wdffileobjectwdmgetfileobject
    // SAFETY: a live framework file object.
    let wdm = unsafe { call_unsafe_wdf_function_binding!(WdfFileObjectWdmGetFileObject, file) };
    if wdm.is_null() {
        null_mut()
    } else {
        // SAFETY: a live WDM file object; FsContext is the driver's (see above).
        unsafe { &mut (*wdm).FsContext }
    }
}

extern "C" fn evt_file_create(_device: WDFDEVICE, request: WDFREQUEST, file: WDFFILEOBJECT) {
    let status = match device_core().map(|c| (c, c.open_file().map(try_box_or_return))) {
        Some((_, Ok(Ok(ctx)))) => {
            let slot = file_slot(file);
            if !slot.is_null() {
                // SAFETY: FsContext of a file object being created, ours to set.
                unsafe { *slot = Box::into_raw(ctx) as PVOID };
            }
            STATUS_SUCCESS
        }
        Some((core, Ok(Err((e, ctx))))) => {
            core.close_file(ctx);
            e.into()
        }
        Some((_, Err(s))) => s,
        None => STATUS_INSUFFICIENT_RESOURCES,
    };
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestcomplete
    // SAFETY: the create request the framework handed us.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, status) };
}

/// EvtFileCleanup: closes the file object's sockets; WskCloseSocket cancels their pending
/// IRPs, which completes the file object's pending requests.
extern "C" fn evt_file_cleanup(file: WDFFILEOBJECT) {
    let slot = file_slot(file);
    if let (Some(core), false) = (device_core(), slot.is_null()) {
        // SAFETY: the context set in evt_file_create lives until evt_file_close.
        if let Some(ctx) = unsafe { (*slot as *const FileContext).as_ref() } {
            core.cleanup_file(ctx);
        }
    }
}

/// EvtFileClose: the file object's last callback; its context is freed.
extern "C" fn evt_file_close(file: WDFFILEOBJECT) {
    let slot = file_slot(file);
    if let (Some(core), false) = (device_core(), slot.is_null()) {
        // SAFETY: CLOSE is the file object's last callback: the context is ours to free.
        let p = unsafe { core::mem::replace(&mut *slot, null_mut()) } as *mut FileContext;
        if !p.is_null() {
            // SAFETY: from Box::into_raw in evt_file_create, taken out of FsContext above.
            core.close_file(*unsafe { Box::from_raw(p) });
        }
    }
}

/// A framework request the core completes. Pended requests are cancelable; the cancel
/// callback and the WSK completion race for it through `owners`: whoever finishes second
/// completes the request, with the status the WSK completion stored.
/// `socket`: the handle the request names (bytes 8..16 of its input, as in src/wdm.rs), read at
/// dispatch so the cancel routine never reads a METHOD_BUFFERED buffer the response may overwrite.
struct Pending {
    request: WDFREQUEST,
    cancelable: AtomicBool,
    owners: AtomicU8,
    status: AtomicI32,
    info: AtomicUsize,
    socket: AtomicU64,
}
static CANCELABLE: SpinLock<Vec<KArc<Pending>>> = SpinLock::new(Vec::new());
struct KmdfCompletion(KArc<Pending>);
// SAFETY: a WDFREQUEST may be completed from any thread at IRQL <= DISPATCH_LEVEL.
unsafe impl Send for KmdfCompletion {}
// SAFETY: as above; the other fields are atomics.
unsafe impl Send for Pending {}
// SAFETY: as above.
unsafe impl Sync for Pending {}

fn finish(p: &Pending) {
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestcompletewithinformation
    // SAFETY: the request is completed exactly once, by whoever releases the last owner.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            p.request,
            p.status.load(Ordering::Acquire),
            p.info.load(Ordering::Acquire) as _
        )
    };
}

impl Completion for KmdfCompletion {
    fn complete(self, status: NTSTATUS, information: usize) {
        let p = self.0;
        p.status.store(status, Ordering::Release);
        p.info.store(information, Ordering::Release);
        if !p.cancelable.load(Ordering::Acquire) {
            return finish(&p);
        }
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestunmarkcancelable
        // SAFETY: a request we marked cancelable and have not completed.
        let s = unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, p.request) };
        CANCELABLE.lock().retain(|q| !KArc::ptr_eq(q, &p));
        // STATUS_CANCELLED: EvtRequestCancel runs (or ran); the second owner completes.
        if s != STATUS_CANCELLED || p.owners.fetch_sub(1, Ordering::AcqRel) == 1 {
            finish(&p);
        }
    }
}

/// EvtRequestCancel: the WSK IRP still uses the request's buffer, so the request cannot be
/// completed here; the request's socket is aborted (our choice, docs/ioctl.md
/// "Cancellation"), which makes WSK complete the IRP promptly.
extern "C" fn evt_request_cancel(request: WDFREQUEST) {
    let found = CANCELABLE
        .lock()
        .iter()
        .find(|q| q.request == request)
        .cloned();
    if let Some(p) = found {
        if let (Some(core), Some(ctx)) = (device_core(), request_file(request)) {
            core.abort_socket(
                ctx,
                wskclient_ioctl::SocketHandle::from_raw(p.socket.load(Ordering::Acquire)),
            );
        }
        if p.owners.fetch_sub(1, Ordering::AcqRel) == 1 {
            finish(&p);
        }
    }
}

fn request_file<'a>(request: WDFREQUEST) -> Option<&'a FileContext> {
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestgetfileobject
    // SAFETY: a live request of our queue; its file object outlives it.
    let file = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, request) };
    let slot = if file.is_null() {
        null_mut()
    } else {
        file_slot(file)
    };
    if slot.is_null() {
        None
    } else {
        // SAFETY: the context lives until EvtFileClose, after every request of the file.
        unsafe { (*slot as *const FileContext).as_ref() }
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
    let pending = match KArc::try_new(Pending {
        request,
        cancelable: AtomicBool::new(false),
        owners: AtomicU8::new(2),
        status: AtomicI32::new(0),
        info: AtomicUsize::new(0),
        socket: AtomicU64::new(0),
    }) {
        Ok(p) => p,
        Err(e) => {
            // SAFETY: the request the framework handed us, not completed yet.
            unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, e.into()) };
            return;
        }
    };
    let (Some(core), Some(file)) = (device_core(), request_file(request)) else {
        return KmdfCompletion(pending).complete(wdk_sys::STATUS_INVALID_DEVICE_STATE, 0);
    };
    let mut input = [0u8; MAX_INPUT + 1];
    let n = input_len.min(MAX_INPUT + 1);
    // CONNECT_WITH_DATA, RESOLVE and TRANSMIT_* carry data inline: copied whole (bounded by
    // Operation::max_input), as src/wdm.rs does; METHOD_BUFFERED shares one
    // buffer for input and output, so the input is copied before the response is written.
    let op = Operation::from_code(code);
    let mut large: Vec<u8> = Vec::new();
    if let Some((buf, len)) = (n > 0).then(|| retrieve(request, true)).flatten() {
        // SAFETY: the framework's input buffer holds `len` >= n bytes.
        unsafe { core::ptr::copy_nonoverlapping(buf as *const u8, input.as_mut_ptr(), n.min(len)) };
        if let Some(op) = op.filter(|o| o.max_input() > MAX_INPUT && input_len > MAX_INPUT) {
            if input_len > op.max_input() || len < input_len {
                return KmdfCompletion(pending).complete(wdk_sys::STATUS_INVALID_BUFFER_SIZE, 0);
            }
            if large.try_reserve_exact(input_len).is_err() {
                return KmdfCompletion(pending).complete(wdk_sys::STATUS_INSUFFICIENT_RESOURCES, 0);
            }
            // SAFETY: as above, `len` >= input_len bytes.
            let whole = unsafe { core::slice::from_raw_parts(buf as *const u8, input_len) };
            if let Err(e) = try_extend_from_slice(&mut large, whole) {
                return KmdfCompletion(pending).complete(e.into(), 0);
            }
        }
    }
    let input: &[u8] = if large.is_empty() {
        input.get(..n).unwrap_or(&[])
    } else {
        &large
    };
    let method = wskclient_ioctl::method_of(code);
    let (mut output, mut data): (&mut [u8], Option<DataMdl>) = (&mut [], None);
    if method == wskclient_ioctl::METHOD_BUFFERED && output_len > 0 {
        if let Some((buf, len)) = retrieve(request, false) {
            // SAFETY: the framework's output buffer of `len` bytes, ours until completion.
            output = unsafe { core::slice::from_raw_parts_mut(buf as *mut u8, len) };
        }
    } else if method == wskclient_ioctl::METHOD_IN_DIRECT
        || method == wskclient_ioctl::METHOD_OUT_DIRECT
    {
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
        .filter(|_| op.is_some_and(|o| o.names_socket()))
        .map_or(0, |b| {
            b.iter().rev().fold(0u64, |h, &x| (h << 8) | u64::from(x))
        });
    pending.socket.store(socket, Ordering::Release);
    let pushed = try_push(&mut CANCELABLE.lock(), pending.clone());
    if let Err(e) = pushed {
        return KmdfCompletion(pending).complete(e.into(), 0);
    }
    pending.cancelable.store(true, Ordering::Release);
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
        CANCELABLE.lock().retain(|q| !KArc::ptr_eq(q, &pending));
        pending.status.store(STATUS_CANCELLED, Ordering::Release);
        return finish(&pending);
    }
    // The originator's mode decides the access check on a caller's file handle (TRANSMIT_*).
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdfrequest/nf-wdfrequest-wdfrequestgetrequestormode
    // SAFETY: a request we own and have not completed.
    let mode =
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetRequestorMode, request) } as i8;
    // SAFETY: `output` is the framework's output buffer, valid and ours until the request
    // completes (device_control's contract).
    unsafe {
        core.device_control_from(
            mode,
            file,
            code,
            input,
            output,
            data,
            KmdfCompletion(pending),
        )
    };
}
