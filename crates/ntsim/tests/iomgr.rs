//! The emulated I/O manager, driven through a tiny WDM test driver written here. The driver
//! calls kernel routines through the windows-sys declarations, as the real driver does.
#![allow(non_snake_case)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ntsim::iomgr::{
    self, IoStatus, UnicodeString, METHOD_BUFFERED, METHOD_IN_DIRECT, METHOD_NEITHER,
    METHOD_OUT_DIRECT,
};
use ntsim::verifier::{self, Rule, COUNTERS};
use windows_sys::core::GUID;
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IO_STACK_LOCATION, IRP};
use windows_sys::Wdk::System::SystemServices::{
    ExAllocatePool2, ExFreePoolWithTag, IoAcquireCancelSpinLock, IoCreateSymbolicLink,
    IoDeleteDevice, IoDeleteSymbolicLink, IoReleaseCancelSpinLock, IofCompleteRequest, MmCached,
    MmMapLockedPagesSpecifyCache, NormalPagePriority,
};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_CANCELLED, STATUS_IMAGE_ALREADY_LOADED, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_PARAMETER, STATUS_NO_SUCH_DEVICE, STATUS_OBJECT_NAME_COLLISION,
    STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_PENDING, STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL, UNICODE_STRING,
};

// wdmsec.h (wdmsec.lib): not in windows-sys.
extern "system" {
    fn IoCreateDeviceSecure(
        DriverObject: *const DRIVER_OBJECT,
        DeviceExtensionSize: u32,
        DeviceName: *const UNICODE_STRING,
        DeviceType: u32,
        DeviceCharacteristics: u32,
        Exclusive: bool,
        DefaultSDDLString: *const UNICODE_STRING,
        DeviceClassGuid: *const GUID,
        DeviceObject: *mut *mut DEVICE_OBJECT,
    ) -> NTSTATUS;
}

const SERVICE: &str = "NtsimIomgrTest";
const DEVICE_NAME: &str = "\\Device\\NtsimIomgrTest";
const LINK_NAME: &str = "\\DosDevices\\NtsimIomgrTest";
const USER_PATH: &str = "\\\\.\\NtsimIomgrTest";
const SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";
const FILE_DEVICE_TEST: u32 = 0x8337;
const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
const POOL_FLAG_NON_PAGED: u64 = 0x40;
const TAG: u32 = u32::from_le_bytes(*b"IoTs");
const SL_PENDING_RETURNED: u8 = 0x01;
const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x1;
const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x4;

const fn ctl_code(function: u32, method: u32) -> u32 {
    (FILE_DEVICE_TEST << 16) | (function << 2) | method
}
const IOCTL_ECHO: u32 = ctl_code(0x800, METHOD_BUFFERED);
const IOCTL_SUM_IN_DIRECT: u32 = ctl_code(0x801, METHOD_IN_DIRECT);
const IOCTL_PEND: u32 = ctl_code(0x802, METHOD_BUFFERED);
const IOCTL_PEND_OUT_DIRECT: u32 = ctl_code(0x803, METHOD_OUT_DIRECT);
const IOCTL_ECHO_NEITHER: u32 = ctl_code(0x804, METHOD_NEITHER);
const IOCTL_PENDING_UNMARKED: u32 = ctl_code(0x805, METHOD_BUFFERED);
const IOCTL_UNKNOWN: u32 = ctl_code(0x8FF, METHOD_BUFFERED);

// ---- the test driver ------------------------------------------------------------------

static DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(std::ptr::null_mut());
/// IRPs pended by IOCTL_PEND*, guarded by the cancel spin lock (the Mutex is only for Rust).
static PENDED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static CREATES: AtomicU32 = AtomicU32::new(0);
static CLEANUPS: AtomicU32 = AtomicU32::new(0);
static CLOSES: AtomicU32 = AtomicU32::new(0);
static CLOSED_WITH_PENDING: AtomicU32 = AtomicU32::new(0);
static UNLOADS: AtomicU32 = AtomicU32::new(0);
static REGISTRY_PATH_OK: AtomicBool = AtomicBool::new(false);
/// Misbehaviours the tests switch on.
static FORGET_DELETE_DEVICE: AtomicBool = AtomicBool::new(false);
static FAIL_ENTRY_LEAVING_DEVICE: AtomicBool = AtomicBool::new(false);

fn reset_driver() {
    DEVICE.store(std::ptr::null_mut(), Ordering::SeqCst);
    PENDED.lock().unwrap().clear();
    for c in [&CREATES, &CLEANUPS, &CLOSES, &CLOSED_WITH_PENDING, &UNLOADS] {
        c.store(0, Ordering::SeqCst);
    }
    REGISTRY_PATH_OK.store(false, Ordering::SeqCst);
    FORGET_DELETE_DEVICE.store(false, Ordering::SeqCst);
    FAIL_ENTRY_LEAVING_DEVICE.store(false, Ordering::SeqCst);
}

/// `IoGetCurrentIrpStackLocation`.
unsafe fn current_sl(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: caller passes a live IRP it owns.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation
    }
}

/// Sets IoStatus and completes.
unsafe fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    // SAFETY: caller owns the IRP.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = status;
        (*irp).IoStatus.Information = information;
        IofCompleteRequest(irp, 0);
    }
    status
}

/// `IoSetCancelRoutine`: InterlockedExchangePointer on Irp->CancelRoutine.
unsafe fn set_cancel_routine(irp: *mut IRP, routine: *mut c_void) -> *mut c_void {
    // SAFETY: CancelRoutine is a pointer-sized, aligned field of a live IRP.
    let slot = unsafe {
        AtomicPtr::<c_void>::from_ptr(std::ptr::addr_of_mut!((*irp).CancelRoutine).cast())
    };
    slot.swap(routine, Ordering::SeqCst)
}

unsafe extern "system" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the I/O manager passes a valid registry path for the duration of the call.
    let path = unsafe { iomgr::ustr::read(registry_path) };
    REGISTRY_PATH_OK.store(
        path.as_deref()
            == Some("\\Registry\\Machine\\System\\CurrentControlSet\\Services\\NtsimIomgrTest"),
        Ordering::SeqCst,
    );
    let name = UnicodeString::new(DEVICE_NAME);
    let sddl = UnicodeString::new(SDDL);
    let link = UnicodeString::new(LINK_NAME);
    let mut dev = std::ptr::null_mut();
    // SAFETY: valid arguments; the strings live across the calls.
    unsafe {
        let st = IoCreateDeviceSecure(
            driver,
            16,
            name.as_ptr(),
            FILE_DEVICE_TEST,
            FILE_DEVICE_SECURE_OPEN,
            false,
            sddl.as_ptr(),
            std::ptr::null(),
            &mut dev,
        );
        if st < 0 {
            return st;
        }
        let st = IoCreateSymbolicLink(link.as_ptr(), name.as_ptr());
        if FAIL_ENTRY_LEAVING_DEVICE.load(Ordering::SeqCst) {
            return STATUS_UNSUCCESSFUL; // forgets IoDeleteSymbolicLink and IoDeleteDevice
        }
        if st < 0 {
            IoDeleteDevice(dev);
            return st;
        }
        DEVICE.store(dev, Ordering::SeqCst);
        let d = &mut *driver;
        d.MajorFunction[iomgr::IRP_MJ_CREATE as usize] = Some(dispatch_create);
        d.MajorFunction[iomgr::IRP_MJ_CLOSE as usize] = Some(dispatch_close);
        d.MajorFunction[iomgr::IRP_MJ_CLEANUP as usize] = Some(dispatch_cleanup);
        d.MajorFunction[iomgr::IRP_MJ_DEVICE_CONTROL as usize] = Some(dispatch_device_control);
        d.DriverUnload = Some(driver_unload);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn driver_unload(_driver: *const DRIVER_OBJECT) {
    let link = UnicodeString::new(LINK_NAME);
    // SAFETY: our own link and device.
    unsafe {
        IoDeleteSymbolicLink(link.as_ptr());
        let dev = DEVICE.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !FORGET_DELETE_DEVICE.load(Ordering::SeqCst) {
            IoDeleteDevice(dev);
        }
    }
    UNLOADS.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "system" fn dispatch_create(_dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    CREATES.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the I/O manager's IRP, ours until completed; its file object is live.
    unsafe {
        let file = (*current_sl(irp)).FileObject;
        let ctx = ExAllocatePool2(POOL_FLAG_NON_PAGED, 32, TAG);
        if ctx.is_null() {
            return complete(
                irp,
                windows_sys::Win32::Foundation::STATUS_INSUFFICIENT_RESOURCES,
                0,
            );
        }
        (*file).FsContext = ctx;
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn dispatch_close(_dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    CLOSES.fetch_add(1, Ordering::SeqCst);
    // SAFETY: as in dispatch_create.
    unsafe {
        let file = (*current_sl(irp)).FileObject;
        let pending_on_file = PENDED
            .lock()
            .unwrap()
            .iter()
            .filter(|&&p| (*current_sl(p as *mut IRP)).FileObject == file)
            .count();
        CLOSED_WITH_PENDING.fetch_add(pending_on_file as u32, Ordering::SeqCst);
        ExFreePoolWithTag((*file).FsContext, TAG);
        (*file).FsContext = std::ptr::null_mut();
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn dispatch_cleanup(_dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    CLEANUPS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: as in dispatch_create; pended IRPs whose cancel routine we take back are ours.
    unsafe {
        let file = (*current_sl(irp)).FileObject;
        let mut old = 0u8;
        IoAcquireCancelSpinLock(&mut old);
        let mut mine = Vec::new();
        PENDED.lock().unwrap().retain(|&p| {
            let p = p as *mut IRP;
            // A NULL cancel routine means IoCancelIrp has it: its routine will complete it.
            if (*current_sl(p)).FileObject == file
                && !set_cancel_routine(p, std::ptr::null_mut()).is_null()
            {
                mine.push(p);
                false
            } else {
                true
            }
        });
        IoReleaseCancelSpinLock(old);
        for p in mine {
            complete(p, STATUS_CANCELLED, 0);
        }
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn cancel_routine(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: called with the cancel spin lock held; the IRP is ours (pended).
    unsafe {
        PENDED.lock().unwrap().retain(|&p| p != irp as usize);
        IoReleaseCancelSpinLock((*irp).CancelIrql);
        complete(irp, STATUS_CANCELLED, 0);
    }
}

/// Pends an IRP with a cancel routine, the classic way (under the cancel spin lock).
unsafe fn pend(irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the IRP is ours until completed.
    unsafe {
        let mut old = 0u8;
        IoAcquireCancelSpinLock(&mut old);
        if (*irp).Cancel {
            IoReleaseCancelSpinLock(old);
            return complete(irp, STATUS_CANCELLED, 0);
        }
        let routine: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP) = cancel_routine;
        set_cancel_routine(irp, routine as *mut c_void);
        PENDED.lock().unwrap().push(irp as usize);
        (*current_sl(irp)).Control |= SL_PENDING_RETURNED; // IoMarkIrpPending
        IoReleaseCancelSpinLock(old);
    }
    STATUS_PENDING
}

unsafe extern "system" fn dispatch_device_control(
    _dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the I/O manager's IRP, ours until completed; buffers as the method describes.
    unsafe {
        let sl = current_sl(irp);
        let p = *nt_imports::device_io_control(sl);
        let (in_len, out_len) = (p.InputBufferLength as usize, p.OutputBufferLength as usize);
        match p.IoControlCode {
            IOCTL_ECHO => {
                // Input and output share the system buffer: the input is the output.
                complete(irp, STATUS_SUCCESS, in_len.min(out_len))
            }
            IOCTL_SUM_IN_DIRECT => {
                let mdl = (*irp).MdlAddress;
                if mdl.is_null() {
                    return complete(irp, STATUS_INVALID_PARAMETER, 0);
                }
                // MmGetSystemAddressForMdlSafe
                let va = if (*mdl).MdlFlags
                    & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL)
                    != 0
                {
                    (*mdl).MappedSystemVa
                } else {
                    MmMapLockedPagesSpecifyCache(
                        mdl,
                        0,
                        MmCached,
                        std::ptr::null(),
                        0,
                        NormalPagePriority as u32,
                    )
                };
                if va.is_null() {
                    return complete(
                        irp,
                        windows_sys::Win32::Foundation::STATUS_INSUFFICIENT_RESOURCES,
                        0,
                    );
                }
                let data = std::slice::from_raw_parts(va as *const u8, (*mdl).ByteCount as usize);
                let sum: u64 = data.iter().map(|&b| b as u64).sum();
                complete(irp, STATUS_SUCCESS, sum as usize)
            }
            IOCTL_PEND | IOCTL_PEND_OUT_DIRECT => pend(irp),
            IOCTL_ECHO_NEITHER => {
                let n = in_len.min(out_len);
                if n > 0 {
                    std::ptr::copy_nonoverlapping(
                        p.Type3InputBuffer as *const u8,
                        (*irp).UserBuffer as *mut u8,
                        n,
                    );
                }
                complete(irp, STATUS_SUCCESS, n)
            }
            IOCTL_PENDING_UNMARKED => {
                // Bug on purpose: completes, then returns STATUS_PENDING without IoMarkIrpPending.
                complete(irp, STATUS_SUCCESS, 0);
                STATUS_PENDING
            }
            _ => complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0),
        }
    }
}

// ---- tests ----------------------------------------------------------------------------

fn load() -> iomgr::LoadedDriver {
    iomgr::load_driver(driver_entry, SERVICE).expect("DriverEntry")
}

#[test]
fn load_open_echo_close_unload() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    assert!(REGISTRY_PATH_OK.load(Ordering::SeqCst));
    assert_eq!(iomgr::device_sddl(DEVICE_NAME).as_deref(), Some(SDDL));
    assert_eq!(iomgr::device_sddl(LINK_NAME).as_deref(), Some(SDDL));
    // SAFETY: the driver object and its device are live while loaded.
    unsafe {
        let d = &*drv.driver_object();
        assert_eq!(d.Type, iomgr::IO_TYPE_DRIVER);
        let dev = &*d.DeviceObject;
        assert_eq!(dev.Type, iomgr::IO_TYPE_DEVICE);
        assert_eq!(dev.StackSize, 1);
        assert_eq!(dev.DriverObject, drv.driver_object());
        assert!(!dev.DeviceExtension.is_null());
        assert_eq!(
            dev.Flags & iomgr::DO_DEVICE_INITIALIZING,
            0,
            "cleared after DriverEntry"
        );
    }

    let h = iomgr::open(USER_PATH).expect("open");
    assert_eq!(CREATES.load(Ordering::SeqCst), 1);
    // SAFETY: the file object lives while the handle does.
    assert!(!unsafe { (*h.file_object()).FsContext }.is_null());

    let copied = COUNTERS.io_manager_bytes_copied.load(Ordering::SeqCst);
    let input = b"hello, driver";
    let mut out = [0u8; 32];
    let st = h.device_io_control(IOCTL_ECHO, input, &mut out);
    assert_eq!(
        st,
        IoStatus {
            status: STATUS_SUCCESS,
            information: input.len()
        }
    );
    assert_eq!(&out[..input.len()], input);
    assert!(out[input.len()..].iter().all(|&b| b == 0));
    // Copied in, then Information bytes copied out.
    assert_eq!(
        COUNTERS.io_manager_bytes_copied.load(Ordering::SeqCst) - copied,
        2 * input.len() as u64
    );

    let mut out = [0u8; 5];
    let st = h.device_io_control(IOCTL_ECHO_NEITHER, b"neither", &mut out);
    assert_eq!(
        st,
        IoStatus {
            status: STATUS_SUCCESS,
            information: 5
        }
    );
    assert_eq!(&out, b"neith");

    let st = h.device_io_control(IOCTL_UNKNOWN, &[], &mut []);
    assert_eq!(st.status, STATUS_INVALID_DEVICE_REQUEST);

    drop(h);
    assert_eq!(CLEANUPS.load(Ordering::SeqCst), 1);
    assert_eq!(CLOSES.load(Ordering::SeqCst), 1);

    drv.unload().expect("unload");
    assert_eq!(UNLOADS.load(Ordering::SeqCst), 1);
    assert_eq!(
        iomgr::open(USER_PATH).unwrap_err(),
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    assert_eq!(iomgr::device_sddl(DEVICE_NAME), None);
    scope.assert_clean();
}

#[test]
fn in_direct_is_zero_copy() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    let h = iomgr::open(USER_PATH).expect("open");
    let mut data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let expected: u64 = data.iter().map(|&b| b as u64).sum();
    let copied = COUNTERS.io_manager_bytes_copied.load(Ordering::SeqCst);
    let st = h.device_io_control(IOCTL_SUM_IN_DIRECT, &[1, 2, 3, 4], &mut data);
    assert_eq!(
        st,
        IoStatus {
            status: STATUS_SUCCESS,
            information: expected as usize
        }
    );
    // Only the 4-byte input went through a system buffer; the data was read via the MDL.
    assert_eq!(
        COUNTERS.io_manager_bytes_copied.load(Ordering::SeqCst) - copied,
        4
    );
    assert_eq!(iomgr::stats().system_buffer_bytes, 0);
    drop(h);
    drv.unload().expect("unload");
    scope.assert_clean();
}

#[test]
fn overlapped_pend_then_cancel_io() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    let h = iomgr::open(USER_PATH).expect("open");
    let base = verifier::snapshot();

    let a = h.device_io_control_overlapped(IOCTL_PEND, vec![7; 16], vec![0; 16]);
    let b = h.device_io_control_overlapped(IOCTL_PEND_OUT_DIRECT, Vec::new(), vec![0; 3 * 4096]);
    assert!(!a.is_complete() && !b.is_complete());
    assert_eq!(a.wait(Duration::from_millis(50)), None);
    assert_eq!(h.pending_requests(), 2);
    let now = verifier::snapshot();
    assert_eq!(now.live_irps, base.live_irps + 2);
    assert_eq!(
        now.live_mdls,
        base.live_mdls + 1,
        "the OUT_DIRECT buffer's MDL is live while pending"
    );

    h.cancel_io();
    let sa = a
        .wait(Duration::from_secs(5))
        .expect("cancelled IRP completes");
    let sb = b
        .wait(Duration::from_secs(5))
        .expect("cancelled IRP completes");
    assert_eq!(
        sa,
        IoStatus {
            status: STATUS_CANCELLED,
            information: 0
        }
    );
    assert_eq!(sb.status, STATUS_CANCELLED);
    assert_eq!(
        a.output(),
        vec![0; 16],
        "an error status copies nothing back"
    );
    assert_eq!(h.pending_requests(), 0);
    let now = verifier::snapshot();
    assert_eq!(
        (now.live_irps, now.live_mdls),
        (base.live_irps, base.live_mdls)
    );
    drop(h);
    drv.unload().expect("unload");
    scope.assert_clean();
}

#[test]
fn close_handle_with_pending_irp_runs_cleanup_first() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    let h = iomgr::open(USER_PATH).expect("open");
    let ov = h.device_io_control_overlapped(IOCTL_PEND, vec![1; 8], vec![0; 8]);
    assert!(!ov.is_complete());
    drop(h);
    assert_eq!(ov.status().map(|s| s.status), Some(STATUS_CANCELLED));
    assert_eq!(CLEANUPS.load(Ordering::SeqCst), 1);
    assert_eq!(CLOSES.load(Ordering::SeqCst), 1);
    assert_eq!(
        CLOSED_WITH_PENDING.load(Ordering::SeqCst),
        0,
        "IRP_MJ_CLOSE only after every IRP completed"
    );
    drv.unload().expect("unload");
    scope.assert_clean();
}

#[test]
fn unload_is_deferred_while_a_handle_is_open() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    let h = iomgr::open(USER_PATH).expect("open");
    assert_eq!(drv.open_handles(), 1);
    let err = drv.unload().expect_err("handle open");
    assert!(err.contains("handle"), "{err}");
    assert_eq!(UNLOADS.load(Ordering::SeqCst), 0);
    // Unload pending: new opens fail, the open handle still works.
    assert_eq!(iomgr::open(USER_PATH).unwrap_err(), STATUS_NO_SUCH_DEVICE);
    let mut out = [0u8; 2];
    assert_eq!(
        h.device_io_control(IOCTL_ECHO, b"ok", &mut out).status,
        STATUS_SUCCESS
    );
    drop(h);
    assert_eq!(
        UNLOADS.load(Ordering::SeqCst),
        1,
        "the deferred unload ran on the last close"
    );
    assert_eq!(
        iomgr::open(USER_PATH).unwrap_err(),
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    scope.assert_clean();
}

#[test]
fn open_of_unknown_path_fails() {
    let scope = ntsim::Scope::begin();
    assert_eq!(
        iomgr::open("\\\\.\\NoSuchDeviceHere").unwrap_err(),
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    assert_eq!(
        iomgr::open("\\Device\\NoSuchDeviceHere").unwrap_err(),
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    assert_eq!(
        iomgr::open("relative").unwrap_err(),
        STATUS_OBJECT_NAME_INVALID
    );
    scope.assert_clean();
}

#[test]
fn names_collide_and_drivers_load_once() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    assert_eq!(
        iomgr::load_driver(driver_entry, SERVICE).unwrap_err(),
        STATUS_IMAGE_ALREADY_LOADED
    );
    let link = UnicodeString::new("\\??\\NtsimIomgrTest");
    let dev = UnicodeString::new(DEVICE_NAME);
    let nope = UnicodeString::new("\\DosDevices\\NtsimNoSuchLink");
    // SAFETY: valid strings, PASSIVE_LEVEL.
    unsafe {
        assert_eq!(
            IoCreateSymbolicLink(link.as_ptr(), dev.as_ptr()),
            STATUS_OBJECT_NAME_COLLISION
        );
        assert_eq!(
            IoDeleteSymbolicLink(nope.as_ptr()),
            STATUS_OBJECT_NAME_NOT_FOUND
        );
    }
    // Plain IoCreateDevice, through the windows-sys declaration: a duplicate name collides;
    // an unnamed device is linked into the driver's list and deleted again.
    let mut extra = std::ptr::null_mut();
    // SAFETY: valid arguments; the driver object is live; PASSIVE_LEVEL.
    unsafe {
        use windows_sys::Wdk::System::SystemServices::IoCreateDevice;
        let d = drv.driver_object();
        let st = IoCreateDevice(d, 0, dev.as_ptr(), FILE_DEVICE_TEST, 0, false, &mut extra);
        assert_eq!(st, STATUS_OBJECT_NAME_COLLISION);
        let st = IoCreateDevice(
            d,
            8,
            std::ptr::null(),
            FILE_DEVICE_TEST,
            0,
            false,
            &mut extra,
        );
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(
            (*d).DeviceObject,
            extra,
            "inserted at the head of the device list"
        );
        assert_eq!(
            (*extra).Flags & iomgr::DO_DEVICE_INITIALIZING,
            iomgr::DO_DEVICE_INITIALIZING
        );
        IoDeleteDevice(extra);
        assert_ne!((*d).DeviceObject, extra);
    }
    // The Win32 and native spellings reach the same device.
    drop(iomgr::open("\\??\\NtsimIomgrTest").expect("open via \\??"));
    drop(iomgr::open(DEVICE_NAME).expect("open via \\Device"));
    drv.unload().expect("unload");
    scope.assert_clean();
}

#[test]
fn unload_without_io_delete_device_is_a_violation() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    FORGET_DELETE_DEVICE.store(true, Ordering::SeqCst);
    let drv = load();
    drv.unload().expect("unload runs");
    let v = verifier::take_violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, Rule::DriverObject);
    assert!(v[0].detail.contains("IoDeleteDevice"), "{v:#?}");
    // The I/O manager deleted it: the name is free again.
    assert_eq!(
        iomgr::open(USER_PATH).unwrap_err(),
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    scope.assert_clean();
}

#[test]
fn failed_driver_entry_that_leaves_a_device_is_a_violation() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    FAIL_ENTRY_LEAVING_DEVICE.store(true, Ordering::SeqCst);
    assert_eq!(
        iomgr::load_driver(driver_entry, SERVICE).unwrap_err(),
        STATUS_UNSUCCESSFUL
    );
    let v = verifier::take_violations();
    assert_eq!(v.len(), 2, "device and symbolic link: {v:#?}");
    assert!(v.iter().all(|v| v.rule == Rule::DriverObject));
    assert_eq!(
        iomgr::open(USER_PATH).unwrap_err(),
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    assert_eq!(iomgr::device_sddl(DEVICE_NAME), None);
    scope.assert_clean();
}

#[test]
fn io_delete_device_of_unknown_device_is_a_violation() {
    let scope = ntsim::Scope::begin();
    // SAFETY: DEVICE_OBJECT is plain data; zeroed is a valid (never created) value.
    let fake: Box<DEVICE_OBJECT> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: IoDeleteDevice only looks the address up.
    unsafe { IoDeleteDevice(&*fake) };
    let v = verifier::take_violations();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rule, Rule::DriverObject);
    scope.assert_clean();
}

#[test]
fn pending_returned_without_mark_is_a_violation() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    let h = iomgr::open(USER_PATH).expect("open");
    let st = h.device_io_control(IOCTL_PENDING_UNMARKED, &[], &mut []);
    assert_eq!(st.status, STATUS_SUCCESS);
    let v = verifier::take_violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].detail.contains("IoMarkIrpPending"), "{v:#?}");
    drop(h);
    drv.unload().expect("unload");
    scope.assert_clean();
}

#[test]
fn concurrent_cancels_race_with_completion() {
    let scope = ntsim::Scope::begin();
    reset_driver();
    let drv = load();
    let h = iomgr::open(USER_PATH).expect("open");
    for round in 0..200 {
        let ovs: Vec<_> = (0..4)
            .map(|i| {
                let code = if i % 2 == 0 {
                    IOCTL_PEND
                } else {
                    IOCTL_PEND_OUT_DIRECT
                };
                h.device_io_control_overlapped(code, vec![i as u8; 4], vec![0; 64])
            })
            .collect();
        std::thread::scope(|s| {
            s.spawn(|| h.cancel_io());
            s.spawn(|| ovs.iter().rev().for_each(|o| o.cancel()));
        });
        for o in &ovs {
            let st = o
                .wait(Duration::from_secs(5))
                .unwrap_or_else(|| panic!("round {round}: not completed"));
            assert_eq!(st.status, STATUS_CANCELLED);
        }
        assert_eq!(h.pending_requests(), 0);
    }
    drop(h);
    drv.unload().expect("unload");
    scope.assert_clean();
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<iomgr::UserHandle>();
    check::<iomgr::Overlapped>();
    check::<iomgr::LoadedDriver>();
}
