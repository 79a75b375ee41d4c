//! The WDM front-end: `DriverEntry`, the IRP_MJ_CREATE / CLEANUP / CLOSE / DEVICE_CONTROL
//! dispatch routines and `DriverUnload`, over the real `DRIVER_OBJECT`, `DEVICE_OBJECT`,
//! `FILE_OBJECT` and `IO_STACK_LOCATION` layouts. It serves the host emulation and Wine; the
//! KMDF front-end sits on the same [`crate::core`].
//!
//! Sources: "Writing a DriverEntry Routine", "DispatchCreate, DispatchClose, and
//! DispatchCreateClose Routines", "DispatchCleanup Routines", "Buffer Descriptions for I/O
//! Control Codes" (learn.microsoft.com, WDM kernel-mode driver architecture).

use alloc::boxed::Box;
use core::ffi::c_void;
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use wsk::alloc::try_box_or_return;
use wsk::irp::current_stack_location;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IO_STACK_LOCATION, IRP};
use windows_sys::Wdk::System::SystemServices::{
    IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink, IoReleaseCancelSpinLock,
    IofCompleteRequest,
};
use windows_sys::Win32::Foundation::*;

use crate::core::{Completion, DataMdl, DeviceCore, FileContext, Input};
use crate::wide::{unicode, DEVICE_NAME_W, DOS_DEVICE_NAME_W};
use core::mem::MaybeUninit;
use wskclient_ioctl::{
    Operation, SocketHandle, IOCTL_WSKCLIENT_RECEIVE, IOCTL_WSKCLIENT_SEND, METHOD_IN_DIRECT,
    METHOD_OUT_DIRECT,
};

const IRP_MJ_CREATE: usize = 0x00;
const IRP_MJ_CLOSE: usize = 0x02;
const IRP_MJ_DEVICE_CONTROL: usize = 0x0e;
const IRP_MJ_CLEANUP: usize = 0x12;
const DO_DEVICE_INITIALIZING: u32 = 0x80;
const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
const SL_PENDING_RETURNED: u8 = 0x01;
const IO_NETWORK_INCREMENT: i8 = 2;
/// The device's `StackSize`: this driver's location and one for WSK (see [`create_device`]).
const FORWARD_STACK_SIZE: i8 = 2;
/// Whether SEND and RECEIVE on stream sockets forward the caller's IRP to WSK
/// ([`DeviceCore::forward_stream`]); on by default.
static FORWARD: AtomicBool = AtomicBool::new(true);

/// Turns IRP forwarding for SEND/RECEIVE on or off (off: they take the core's asynchronous
/// path with the driver's own cached IRPs, as the KMDF front-end does). For tests and
/// comparisons; any IRQL.
pub fn set_forwarding(on: bool) {
    FORWARD.store(on, Ordering::Release);
}

/// Largest input buffer any request of the contract has; longer inputs are oversized.
const MAX_INPUT: usize = wskclient_ioctl::frontend::SMALL_INPUT;

/// `DPFLTR_IHVNETWORK_ID` (dpfilter.h): the DbgPrintEx component of network drivers.
pub const DPFLTR_IHVNETWORK_ID: u32 = 80;
/// `DPFLTR_ERROR_LEVEL` (0): always passes the kernel's default debug-print filter, so the
/// driver's few lifecycle lines show on Windows without changing the filter mask, and in
/// Wine's log (`WINEDEBUG=warn+debugstr`).
pub const DPFLTR_ERROR_LEVEL: u32 = 0;

/// `kdprint!("fmt", args...)`: one line to the kernel debugger, prefixed `wskclient: `.
/// On Windows targets `DbgPrintEx(DPFLTR_IHVNETWORK_ID, DPFLTR_ERROR_LEVEL, ...)` through
/// `nt-imports` (an ntoskrnl.exe import; windows-sys would import it from ntdll.dll); the
/// format is C's (`%08x`, `%p`, `%u`; Wine does not support `%wZ`), the arguments must match
/// it. On the host it evaluates nothing but a reference to each argument.
macro_rules! kdprint {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(windows)]
        // SAFETY: a NUL-terminated format literal whose conversions match the arguments;
        // DbgPrintEx may be called at IRQL <= DIRQL with non-Unicode formats.
        #[allow(unused_unsafe)] // also used inside the dispatch routines' unsafe blocks
        unsafe {
            nt_imports::DbgPrintEx(
                $crate::wdm::DPFLTR_IHVNETWORK_ID,
                $crate::wdm::DPFLTR_ERROR_LEVEL,
                concat!("wskclient: ", $fmt, "\n\0").as_ptr()
                $(, $arg)*
            );
        }
        #[cfg(not(windows))]
        {
            $(let _ = &$arg;)*
        }
    }};
}

/// The device extension: the device core.
struct Extension {
    core: DeviceCore,
}

unsafe fn extension(dev: *const DEVICE_OBJECT) -> *mut Extension {
    // SAFETY: our device; DriverEntry initialised its extension.
    unsafe { (*dev).DeviceExtension as *mut Extension }
}

unsafe fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    // SAFETY: caller owns the IRP and completes it once.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = status;
        (*irp).IoStatus.Information = information;
        IofCompleteRequest(irp, 0);
    }
    status
}

/// A pending DEVICE_CONTROL IRP, completed by the core (possibly from a WSK completion at
/// DISPATCH_LEVEL).
///
/// The IRP is cancelable. Its cancel routine cannot complete it, because the WSK IRP behind
/// it may still read the request's buffer: it aborts the request's socket instead, which
/// makes WSK complete promptly. The completion and the cancel routine race through an
/// ownership count of 2 kept in `Tail.Overlay.DriverContext[0]` (ours while we own the IRP):
/// whoever releases the last ownership completes the IRP, once, with the status the core
/// stored in `IoStatus`.
struct IrpCompletion(NonNull<IRP>);

// SAFETY: an IRP may be completed from any thread.
unsafe impl Send for IrpCompletion {}

/// `Tail.Overlay.DriverContext[i]` of an IRP this driver owns.
unsafe fn driver_context(irp: *mut IRP, i: usize) -> *mut *mut c_void {
    // SAFETY: caller passes an IRP it owns; DriverContext has 4 slots.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .Anonymous1
            .Anonymous
            .DriverContext
            .as_mut_ptr()
            .add(i)
    }
}

/// The ownership count of a pending IRP.
unsafe fn owners<'a>(irp: *mut IRP) -> &'a AtomicUsize {
    // SAFETY: a pointer-sized, aligned slot of an IRP we own, only accessed atomically.
    unsafe { AtomicUsize::from_ptr(driver_context(irp, 0).cast()) }
}

/// `IoSetCancelRoutine`: atomically exchanges the IRP's cancel routine.
unsafe fn set_cancel_routine(irp: *mut IRP, routine: *mut c_void) -> *mut c_void {
    // SAFETY: CancelRoutine is a pointer-sized, aligned field of a live IRP.
    let slot = unsafe { AtomicPtr::from_ptr(core::ptr::addr_of_mut!((*irp).CancelRoutine).cast()) };
    slot.swap(routine, Ordering::AcqRel)
}

impl Completion for IrpCompletion {
    fn complete(self, status: NTSTATUS, information: usize) {
        let irp = self.0.as_ptr();
        // SAFETY: the IRP was marked pending; the ownership count decides who completes it.
        unsafe {
            (*irp).IoStatus.Anonymous.Status = status;
            (*irp).IoStatus.Information = information;
            let cancel_pending = set_cancel_routine(irp, null_mut()).is_null();
            if !cancel_pending || owners(irp).fetch_sub(1, Ordering::AcqRel) == 1 {
                IofCompleteRequest(irp, IO_NETWORK_INCREMENT);
            }
        }
    }
}

/// The cancel routine of a pending DEVICE_CONTROL IRP (called by IoCancelIrp with the cancel
/// spin lock held, at DISPATCH_LEVEL): aborts the request's socket, so its WSK IRP
/// completes with STATUS_CANCELLED, then releases its ownership. For ACCEPT that is the
/// listening socket (docs/ioctl.md, "Cancellation": our choice, and a known deviation).
unsafe extern "system" fn cancel_device_control(dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: IoCancelIrp's contract: the IRP is alive, the cancel spin lock held.
    unsafe {
        IoReleaseCancelSpinLock((*irp).CancelIrql);
        let ctx = *driver_context(irp, 1) as *const FileContext;
        let handle = SocketHandle::from_raw(*driver_context(irp, 2) as u64);
        if let Some(ctx) = ctx.as_ref() {
            (*extension(dev)).core.abort_socket(ctx, handle);
        }
        if owners(irp).fetch_sub(1, Ordering::AcqRel) == 1 {
            IofCompleteRequest(irp, IO_NETWORK_INCREMENT);
        }
    }
}

/// `DriverEntry`: registers with WSK, creates `\Device\WskClient` (DACL: SYSTEM and
/// Administrators only, see [`create_device`]) and `\DosDevices\WskClient`, and sets the dispatch routines.
/// PASSIVE_LEVEL.
///
/// # Safety
/// Called by the I/O manager with a valid DRIVER_OBJECT.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _registry: *const UNICODE_STRING,
) -> NTSTATUS {
    let core = match DeviceCore::new() {
        Ok(c) => c,
        Err(s) => {
            kdprint!("DriverEntry: WSK registration failed, status %08x", s);
            return s;
        }
    };
    kdprint!(
        "DriverEntry: WSK registered, provider version %04x",
        u32::from(core.provider_version())
    );
    let name = unicode(&DEVICE_NAME_W);
    let link = unicode(&DOS_DEVICE_NAME_W);
    let mut dev: *mut DEVICE_OBJECT = null_mut();
    // SAFETY: documented call with locals that outlive it.
    let status = unsafe { create_device(driver, &name, &mut dev) };
    if status < 0 {
        kdprint!("DriverEntry: device creation failed, status %08x", status);
        return status;
    }
    // SAFETY: the extension is zeroed storage of size_of::<Extension>() bytes, ours to fill.
    unsafe { extension(dev).write(Extension { core }) };
    // SAFETY: both names are valid UNICODE_STRINGs.
    let status = unsafe { IoCreateSymbolicLink(&link, &name) };
    if status < 0 {
        // SAFETY: undo the device creation.
        unsafe {
            core::ptr::drop_in_place(extension(dev));
            IoDeleteDevice(dev);
        }
        return status;
    }
    // SAFETY: our driver object, being initialised.
    unsafe {
        let mf = &mut (*driver).MajorFunction;
        if let Some(f) = mf.get_mut(IRP_MJ_CREATE) {
            *f = Some(dispatch_create);
        }
        if let Some(f) = mf.get_mut(IRP_MJ_CLOSE) {
            *f = Some(dispatch_close);
        }
        if let Some(f) = mf.get_mut(IRP_MJ_CLEANUP) {
            *f = Some(dispatch_cleanup);
        }
        if let Some(f) = mf.get_mut(IRP_MJ_DEVICE_CONTROL) {
            *f = Some(dispatch_device_control);
        }
        (*driver).DriverUnload = Some(driver_unload);
        (*dev).Flags &= !DO_DEVICE_INITIALIZING;
    }
    protect_completions(dev);
    kdprint!("DriverEntry: device \\Device\\WskClient created, link \\DosDevices\\WskClient");
    STATUS_SUCCESS
}

/// Creates the control device with `IoCreateDevice` (FILE_DEVICE_SECURE_OPEN) and restricts
/// it to SYSTEM and Administrators ([`secure_device`]; the DACL of `crate::wide::SDDL`). The
/// same code runs on the host emulation, which records the DACL, and in the Windows-target
/// WDM build (the one Wine loads), which cannot use wdmsec.lib's `IoCreateDeviceSecure` (a
/// WDK static library). On failure the device is deleted. PASSIVE_LEVEL.
unsafe fn create_device(
    driver: *mut DRIVER_OBJECT,
    name: &UNICODE_STRING,
    dev: &mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    let ext = core::mem::size_of::<Extension>() as u32;
    // SAFETY: forwarded caller contract.
    let status = unsafe {
        windows_sys::Wdk::System::SystemServices::IoCreateDevice(
            driver,
            ext,
            name,
            wskclient_ioctl::FILE_DEVICE_WSKCLIENT,
            FILE_DEVICE_SECURE_OPEN,
            false,
            dev,
        )
    };
    if status < 0 {
        return status;
    }
    // One stack location more than this driver's own: the I/O manager builds the device's
    // IRPs with `StackSize` locations (IoAllocateIrp(DeviceObject->StackSize) in
    // NtDeviceIoControlFile), so each DEVICE_CONTROL IRP arrives with a free location below
    // ours, which WSK needs when SEND and RECEIVE forward the IRP to it ("Using IRPs with
    // Winsock Kernel Functions": at least one remaining stack location for WSK).
    // SAFETY: the device just created; StackSize is set before any IRP is built for it.
    unsafe { (**dev).StackSize = FORWARD_STACK_SIZE };
    // SAFETY: the device just created, not yet visible to anyone but its name.
    let status = unsafe { secure_device(*dev) };
    if status == STATUS_NOT_IMPLEMENTED {
        // Only an emulated kernel answers so (Wine's ObOpenObjectByPointer refuses what it
        // does not implement; Windows implements every routine used). Such kernels do not
        // enforce device ACLs: keep the device, and say so.
        kdprint!(
            "DriverEntry: device DACL not applied (not implemented by this kernel), status %08x",
            status
        );
        return STATUS_SUCCESS;
    }
    if status < 0 {
        // Fail closed: never leave a device any user may open.
        kdprint!(
            "DriverEntry: device DACL could not be applied, status %08x",
            status
        );
        // SAFETY: our device, with no extension written and no file object open yet.
        unsafe { windows_sys::Wdk::System::SystemServices::IoDeleteDevice(*dev) };
        *dev = null_mut();
    }
    status
}

/// A SID with up to two sub-authorities (winnt.h `SID` layout: Revision 1,
/// SubAuthorityCount, 6-byte IdentifierAuthority, SubAuthority[] as little-endian ULONGs).
#[repr(C, align(4))]
struct Sid2([u8; 16]);

/// `S-1-5-18`: LocalSystem (SDDL `SY`). SECURITY_NT_AUTHORITY = {0,0,0,0,0,5},
/// SECURITY_LOCAL_SYSTEM_RID = 18.
const SID_SYSTEM: Sid2 = Sid2([1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0, 0, 0, 0, 0]);
/// `S-1-5-32-544`: BUILTIN\Administrators (SDDL `BA`). SECURITY_BUILTIN_DOMAIN_RID = 32,
/// DOMAIN_ALIAS_RID_ADMINS = 544 (0x220).
const SID_ADMINISTRATORS: Sid2 = Sid2([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0]);
const SECURITY_DESCRIPTOR_REVISION: u32 = 1;
const ACL_REVISION: u32 = 2;
const SE_DACL_PROTECTED: u16 = 0x1000;
const DACL_SECURITY_INFORMATION: u32 = 0x0000_0004;
const GENERIC_ALL: u32 = 0x1000_0000;
const WRITE_DAC: u32 = 0x0004_0000;
const OBJ_KERNEL_HANDLE: u32 = 0x0200;
const KERNEL_MODE: i8 = 0;

/// Sets the device's DACL to `D:P(A;;GA;;;SY)(A;;GA;;;BA)` (`crate::wide::SDDL`): an
/// absolute security descriptor on the stack (`RtlCreateSecurityDescriptor`), an ACL with
/// two ACCESS_ALLOWED ACEs granting GENERIC_ALL to SYSTEM and Administrators (`RtlCreateAcl`,
/// `RtlAddAccessAllowedAce`; the object manager maps generic rights with the object type's
/// generic mapping when it stores them: paper only), protected from inheritance
/// (SE_DACL_PROTECTED, the `P`), set through a kernel handle to the device
/// (`ObOpenObjectByPointer(WRITE_DAC, OBJ_KERNEL_HANDLE, KernelMode)`, `ZwSetSecurityObject`,
/// `ZwClose`). PASSIVE_LEVEL. Errors: those of the routines (the first failure).
unsafe fn secure_device(dev: *mut DEVICE_OBJECT) -> NTSTATUS {
    use windows_sys::Win32::Security::SECURITY_DESCRIPTOR;
    // ACL header (8) + ACE headers and masks (2 x 8) + SIDs (12 + 16) = 52 bytes.
    #[repr(C, align(4))]
    struct AclBuf([u8; 64]);
    let mut acl = AclBuf([0; 64]);
    // SAFETY: SECURITY_DESCRIPTOR is plain data; RtlCreateSecurityDescriptor initialises it.
    let mut sd: SECURITY_DESCRIPTOR = unsafe { core::mem::zeroed() };
    let sd_ptr = core::ptr::addr_of_mut!(sd).cast::<c_void>();
    let acl_ptr = acl.0.as_mut_ptr().cast::<c_void>();
    // SAFETY: documented calls on locals that outlive them (the descriptor references the
    // ACL until ZwSetSecurityObject has copied both).
    unsafe {
        let mut s = nt_imports::RtlCreateSecurityDescriptor(sd_ptr, SECURITY_DESCRIPTOR_REVISION);
        if s >= 0 {
            s = nt_imports::RtlCreateAcl(acl_ptr, acl.0.len() as u32, ACL_REVISION);
        }
        for sid in [&SID_SYSTEM, &SID_ADMINISTRATORS] {
            if s >= 0 {
                s = nt_imports::RtlAddAccessAllowedAce(
                    acl_ptr,
                    ACL_REVISION,
                    GENERIC_ALL,
                    sid.0.as_ptr().cast(),
                );
            }
        }
        if s >= 0 {
            s = nt_imports::RtlSetDaclSecurityDescriptor(sd_ptr, true, acl_ptr, false);
        }
        if s < 0 {
            return s;
        }
        // "P": SE_DACL_PROTECTED in the descriptor's Control (winnt.h layout).
        (*sd_ptr.cast::<SECURITY_DESCRIPTOR>()).Control |= SE_DACL_PROTECTED;
        let mut handle: HANDLE = null_mut();
        let s = windows_sys::Wdk::Storage::FileSystem::ObOpenObjectByPointer(
            dev as *const c_void,
            OBJ_KERNEL_HANDLE,
            core::ptr::null(),
            WRITE_DAC,
            0, // ObjectType: NULL (optional; a device object)
            KERNEL_MODE,
            &mut handle,
        );
        if s < 0 {
            return s;
        }
        let s = nt_imports::ZwSetSecurityObject(
            handle,
            DACL_SECURITY_INFORMATION,
            sd_ptr as *const c_void,
        );
        nt_imports::ZwClose(handle);
        s
    }
}

/// Lets wsk set its asynchronous completion routines (which may run after the operation's
/// caller returned) with `IoSetCompletionRoutineEx` on `dev`, so that each keeps the driver
/// loaded until it ran (issue 12, defect 7; `wsk::irp::protect_completions`). Host builds
/// only: this front-end's Windows build is the one the Wine lane loads, and Wine 8.0's
/// ntoskrnl.exe exports `IoSetCompletionRoutineEx` as a stub (its .spec; what calling it does
/// was not observed here). The KMDF front-end, the build users install, always enables it.
/// PASSIVE_LEVEL.
fn protect_completions(dev: *mut DEVICE_OBJECT) {
    #[cfg(not(windows))]
    let _ = wsk::irp::protect_completions(dev);
    #[cfg(windows)]
    let _ = dev;
}

/// `DriverUnload`: deletes the symbolic link, drops the core (every file object is closed by
/// now, so every socket is; `WskDeregister` then returns at once), deletes the device.
unsafe extern "system" fn driver_unload(driver: *const DRIVER_OBJECT) {
    let link = unicode(&DOS_DEVICE_NAME_W);
    // SAFETY: the device DriverEntry created, with its initialised extension.
    unsafe {
        IoDeleteSymbolicLink(&link);
        let dev = (*driver).DeviceObject;
        if !dev.is_null() {
            // Every file object is closed: no asynchronous operation can start any more.
            wsk::irp::unprotect_completions();
            core::ptr::drop_in_place(extension(dev));
            IoDeleteDevice(dev);
        }
    }
    kdprint!("DriverUnload: WSK deregistered, device deleted");
}

unsafe extern "system" fn dispatch_create(dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: our device and a create IRP with its file object.
    unsafe {
        let ext = &*extension(dev);
        let file = (*current_stack_location(irp)).FileObject;
        if file.is_null() {
            return complete(irp, STATUS_INVALID_PARAMETER, 0);
        }
        // A closure, not the function path, so that the allocation's site (track_caller)
        // is this line for the allocation-failure sweep.
        #[allow(clippy::redundant_closure)]
        match ext.core.open_file().map(|ctx| try_box_or_return(ctx)) {
            Ok(Ok(ctx)) => {
                (*file).FsContext = Box::into_raw(ctx) as *mut c_void;
                complete(irp, STATUS_SUCCESS, 0)
            }
            Ok(Err((e, ctx))) => {
                ext.core.close_file(ctx);
                complete(irp, e.into(), 0)
            }
            Err(s) => complete(irp, s, 0),
        }
    }
}

unsafe fn file_context(irp: *mut IRP) -> *mut FileContext {
    // SAFETY: IRP of a file object opened by dispatch_create.
    unsafe {
        let file = (*current_stack_location(irp)).FileObject;
        if file.is_null() {
            return null_mut();
        }
        (*file).FsContext as *mut FileContext
    }
}

unsafe extern "system" fn dispatch_cleanup(dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: our device; the file context lives until IRP_MJ_CLOSE.
    unsafe {
        let ctx = file_context(irp);
        if !ctx.is_null() {
            (*extension(dev)).core.cleanup_file(&*ctx);
        }
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn dispatch_close(dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: our device; CLOSE is the last IRP of the file object, so the context is ours to
    // free.
    unsafe {
        let ctx = file_context(irp);
        if !ctx.is_null() {
            let file = (*current_stack_location(irp)).FileObject;
            (*file).FsContext = null_mut();
            (*extension(dev)).core.close_file(*Box::from_raw(ctx));
        }
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn dispatch_device_control(
    dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: our device and a DEVICE_CONTROL IRP built by the I/O manager per its METHOD.
    unsafe {
        let sl = current_stack_location(irp);
        let ctx = file_context(irp);
        if ctx.is_null() {
            return complete(irp, STATUS_INVALID_DEVICE_STATE, 0);
        }
        // Not windows-sys's Parameters.DeviceIoControl: its x64 layout is wrong (see
        // nt_imports::DeviceIoControlParameters). Read in place: a forwarded request reads
        // only the lengths, before its location holds the WSK_BUF.
        let p = nt_imports::device_io_control(sl);
        // SEND / RECEIVE on a stream socket: the IRP itself goes to WskSend / WskReceive
        // when it has a stack location left for WSK (the device's StackSize gives it one).
        // These two are recognised by their whole codes, each path then knows its operation
        // at compile time; every other code is decoded once, by device_control.
        if FORWARD.load(Ordering::Acquire) && (*irp).CurrentLocation > 1 {
            match (*p).IoControlCode {
                IOCTL_WSKCLIENT_SEND => {
                    return forward_stream(dev, irp, sl, &*ctx, Operation::Send, p)
                }
                IOCTL_WSKCLIENT_RECEIVE => {
                    return forward_stream(dev, irp, sl, &*ctx, Operation::Receive, p)
                }
                _ => {}
            }
        }
        device_control(dev, irp, sl, &*ctx, *p)
    }
}

/// SEND or RECEIVE forwarded to WSK ([`DeviceCore::forward_stream`]): the hot path of the
/// data requests, kept apart from [`device_control`]'s buffer handling. The IRP gets no
/// cancel routine of ours: WSK owns its cancellation while it holds it, so CancelIoEx
/// cancels just this request. Our location's Parameters hold the WSK_BUF while WSK has the
/// IRP (the lengths are read from `p` before); they are written back as the I/O manager
/// filled them before completion continues past us (Wine's I/O manager reads them then:
/// wsk's forward.rs, `ForwardedCompletion::restore`). Returns STATUS_PENDING (the IRP is
/// marked pending, whoever completes it). PASSIVE_LEVEL.
///
/// # Safety
/// `irp` is the DEVICE_CONTROL IRP of `op` (its code is IOCTL_WSKCLIENT_SEND or
/// IOCTL_WSKCLIENT_RECEIVE, so METHOD_IN_DIRECT / METHOD_OUT_DIRECT: the code fixes the
/// method) dispatched to our device `dev`, with a free stack location below `sl`, its
/// current one; `ctx` its file's context; `p` points to its Parameters.DeviceIoControl (in
/// `sl`).
#[inline(always)]
unsafe fn forward_stream(
    dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
    sl: *mut IO_STACK_LOCATION,
    ctx: &FileContext,
    op: Operation,
    p: *const nt_imports::DeviceIoControlParameters,
) -> NTSTATUS {
    // SAFETY: caller contract.
    unsafe {
        // Read before the core writes the WSK_BUF over them.
        let (in_len, out_len) = ((*p).InputBufferLength, (*p).OutputBufferLength);
        // IoMarkIrpPending before anyone can complete it (WSK may complete it inline).
        (*sl).Control |= SL_PENDING_RETURNED;
        if (*irp).Cancel {
            // Cancelled before dispatch (IoCancelIrp found no cancel routine): nothing
            // started, complete it as every other request does (device_control).
            complete(irp, STATUS_CANCELLED, 0);
            return STATUS_PENDING;
        }
        // The direct methods' system buffer holds the `InputBufferLength` input bytes only
        // (the data travels in Irp->MdlAddress), and nothing writes it: parsed in place, no
        // copy; it lives until the IRP completes, which the core may do before it returns
        // (hence an `Input`, not a slice).
        let input = Input::in_place(
            (*irp).AssociatedIrp.SystemBuffer as *const u8,
            in_len as usize,
        );
        let data = NonNull::new((*irp).MdlAddress).map(|mdl| DataMdl {
            mdl,
            len: out_len as usize,
        });
        let started = (*extension(dev)).core.forward_stream(
            ctx,
            op,
            input,
            data,
            NonNull::new_unchecked(irp),
        );
        if let Err(status) = started {
            complete(irp, status, 0);
        }
        STATUS_PENDING
    }
}

/// Every DEVICE_CONTROL request but a forwarded SEND/RECEIVE: decodes the code, copies the
/// input as its method needs, makes the IRP cancelable and hands it to the core, which
/// completes it. Returns STATUS_PENDING (the IRP is marked pending, whoever completes it).
/// PASSIVE_LEVEL.
///
/// # Safety
/// `irp` is a DEVICE_CONTROL IRP dispatched to our device `dev`, `sl` its current stack
/// location, `ctx` its file's context and `p` its Parameters.DeviceIoControl.
#[inline(never)]
unsafe fn device_control(
    dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
    sl: *mut IO_STACK_LOCATION,
    ctx: &FileContext,
    p: nt_imports::DeviceIoControlParameters,
) -> NTSTATUS {
    // SAFETY: caller contract; the IRP was built by the I/O manager per its METHOD.
    unsafe {
        // The code is decoded here, once; the core takes the operation.
        let op = Operation::from_code(p.IoControlCode);
        let (in_len, out_len) = (p.InputBufferLength as usize, p.OutputBufferLength as usize);
        let sysbuf = (*irp).AssociatedIrp.SystemBuffer as *mut u8;
        let method = wskclient_ioctl::method_of(p.IoControlCode);
        let direct = method == METHOD_IN_DIRECT || method == METHOD_OUT_DIRECT;
        // METHOD_BUFFERED shares the system buffer between input and output, and a response
        // overwrites it: such an input is copied first, only its `in_len` bytes (at most
        // MAX_INPUT + 1: one more is already oversized) into uninitialised stack storage.
        let mut small = MaybeUninit::<[u8; MAX_INPUT + 1]>::uninit();
        // CONNECT_WITH_DATA, RESOLVE, TRANSMIT_FILE and TRANSMIT_PACKETS carry data inline:
        // their input may exceed MAX_INPUT, up to the operation's maximum, and is copied whole
        // into a pool block.
        let large: wsk::alloc::Vec<u8>;
        let input: &[u8] = if sysbuf.is_null() || in_len == 0 {
            &[]
        } else if direct {
            // METHOD_IN_DIRECT / METHOD_OUT_DIRECT (SEND, SEND_TO, RECEIVE): the system buffer
            // holds the `in_len` input bytes only (the data travels in Irp->MdlAddress), and
            // nothing writes it: parsed in place, no copy. It lives until the IRP completes,
            // and the core reads the input only before it completes the request.
            core::slice::from_raw_parts(sysbuf, in_len)
        } else if let Some(op) = op.filter(|o| o.max_input() > MAX_INPUT && in_len > MAX_INPUT) {
            if in_len > op.max_input() {
                return complete(irp, STATUS_INVALID_BUFFER_SIZE, 0);
            }
            match wsk::alloc::try_to_vec(core::slice::from_raw_parts(sysbuf, in_len)) {
                Ok(v) => large = v,
                Err(e) => return complete(irp, e.into(), 0),
            }
            large.as_slice()
        } else {
            let n = in_len.min(MAX_INPUT + 1);
            let dst = small.as_mut_ptr().cast::<u8>();
            core::ptr::copy_nonoverlapping(sysbuf, dst, n);
            // The first `n` bytes were just initialised; the rest is never read.
            core::slice::from_raw_parts(dst, n)
        };
        let (output, data): (&mut [u8], Option<DataMdl>) = match method {
            wskclient_ioctl::METHOD_BUFFERED if !sysbuf.is_null() && out_len > 0 => {
                (core::slice::from_raw_parts_mut(sysbuf, out_len), None)
            }
            METHOD_IN_DIRECT | METHOD_OUT_DIRECT => (
                &mut [],
                NonNull::new((*irp).MdlAddress).map(|mdl| DataMdl { mdl, len: out_len }),
            ),
            _ => (&mut [], None),
        };
        // IoMarkIrpPending before anyone can complete it: the core may complete it inline or
        // later from a WSK completion routine.
        (*sl).Control |= SL_PENDING_RETURNED;
        // Cancelable: remember the file and the socket the request names (requests that name
        // one carry it right after the 8-byte header; 0 for the others), then set the cancel
        // routine.
        let names_socket = op.is_some_and(Operation::names_socket);
        let handle = input.get(8..16).filter(|_| names_socket).map_or(0, |b| {
            let mut h = [0u8; 8];
            h.copy_from_slice(b);
            u64::from_le_bytes(h)
        });
        owners(irp).store(2, Ordering::Release);
        *driver_context(irp, 1) = ctx as *const FileContext as *mut c_void;
        *driver_context(irp, 2) = handle as usize as *mut c_void;
        set_cancel_routine(irp, cancel_device_control as *mut c_void);
        if (*irp).Cancel && !set_cancel_routine(irp, null_mut()).is_null() {
            // Cancelled before the routine was set: nothing started yet. The IRP is marked
            // pending, so the dispatch routine returns STATUS_PENDING even though it completed
            // the IRP itself ("If a driver calls IoMarkIrpPending, it must return
            // STATUS_PENDING": IoMarkIrpPending page; Driver Verifier bugcheck 0xC9).
            complete(irp, STATUS_CANCELLED, 0);
            return STATUS_PENDING;
        }
        let request = IrpCompletion(NonNull::new_unchecked(irp));
        // The requestor mode decides the access check on file handles a request carries.
        let mode = (*irp).RequestorMode;
        // With the device object, TRANSMIT_FILE pends on a work item (src/core/transmit.rs).
        let device = NonNull::new(dev.cast_mut());
        // The core gets the in-place input as a pointer (it may complete the IRP, which frees
        // the system buffer, while the input is still its argument) and a copy as a slice.
        let input = if direct {
            Input::in_place(input.as_ptr(), input.len())
        } else {
            Input::copied(input)
        };
        (*extension(dev))
            .core
            .device_control_on(device, mode, ctx, op, input, output, data, request);
        STATUS_PENDING
    }
}
