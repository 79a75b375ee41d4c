//! Kernel routines a driver imports from `ntoskrnl.exe` that `windows-sys` either lacks
//! (`KeAcquireSpinLockRaiseToDpc`, `KeReleaseSpinLock`, ...) or declares as imports of
//! **ntdll.dll** (`DbgPrint`, `DbgPrintEx`, ...), which a kernel driver must never import.
//!
//! On Windows targets every declaration here is a `raw-dylib` import of `ntoskrnl.exe`.
//! On other hosts they are plain `extern "system"` declarations that the host emulation
//! (`ntsim`) satisfies at link time.
//!
//! Inline routines of wdm.h that have no export on x64 (`KeGetCurrentIrql` reads CR8) are
//! provided as Rust functions with the same meaning.
#![no_std]
#![allow(non_snake_case, non_camel_case_types)]

use core::ffi::c_void;
use windows_sys::Win32::Foundation::NTSTATUS;

/// `KIRQL`: an interrupt request level.
pub type KIRQL = u8;
/// `PASSIVE_LEVEL` (0).
pub const PASSIVE_LEVEL: KIRQL = 0;
/// `APC_LEVEL` (1).
pub const APC_LEVEL: KIRQL = 1;
/// `DISPATCH_LEVEL` (2).
pub const DISPATCH_LEVEL: KIRQL = 2;
/// `KSPIN_LOCK`: a pointer-sized spin lock word, zero when free.
pub type KSPIN_LOCK = usize;

#[cfg_attr(
    windows,
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
extern "system" {
    /// Acquires a spin lock and raises IRQL to DISPATCH_LEVEL; returns the previous IRQL.
    /// IRQL <= DISPATCH_LEVEL. Source:
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockraisetodpc>
    pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL;
    /// Releases a spin lock and restores IRQL. Exported as `KeReleaseSpinLock` on x64.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlock>
    pub fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL);
    /// Acquires a spin lock when the caller already runs at DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockatdpclevel>
    pub fn KeAcquireSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK);
    /// Releases a spin lock taken with `KeAcquireSpinLockAtDpcLevel`; IRQL stays DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlockfromdpclevel>
    pub fn KeReleaseSpinLockFromDpcLevel(SpinLock: *mut KSPIN_LOCK);
    /// Returns the address of a system routine by name, or NULL. PASSIVE_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemroutineaddress>
    pub fn MmGetSystemRoutineAddress(
        SystemRoutineName: *const windows_sys::Win32::Foundation::UNICODE_STRING,
    ) -> *mut c_void;
    /// Stops the system with a bug check code and four parameters; never returns. Any IRQL.
    /// Drivers call it only for unrecoverable inconsistencies (the driver's panic handler).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-kebugcheckex>
    pub fn KeBugCheckEx(
        BugCheckCode: u32,
        BugCheckParameter1: usize,
        BugCheckParameter2: usize,
        BugCheckParameter3: usize,
        BugCheckParameter4: usize,
    ) -> !;
}

// wdmsec.lib is a static library of the WDK, not an ntoskrnl.exe export: on Windows the
// build that uses this links it explicitly.
extern "system" {
    /// Creates a named device object whose security descriptor comes from an SDDL string
    /// (wdmsec.h). PASSIVE_LEVEL. Source:
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdmsec/nf-wdmsec-wdmlibiocreatedevicesecure>
    pub fn IoCreateDeviceSecure(
        DriverObject: *const windows_sys::Wdk::Foundation::DRIVER_OBJECT,
        DeviceExtensionSize: u32,
        DeviceName: *const windows_sys::Win32::Foundation::UNICODE_STRING,
        DeviceType: u32,
        DeviceCharacteristics: u32,
        Exclusive: bool,
        DefaultSDDLString: *const windows_sys::Win32::Foundation::UNICODE_STRING,
        DeviceClassGuid: *const windows_sys::core::GUID,
        DeviceObject: *mut *mut windows_sys::Wdk::Foundation::DEVICE_OBJECT,
    ) -> NTSTATUS;
}

#[cfg_attr(
    windows,
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
extern "C" {
    /// Prints to the kernel debugger, filtered by component and level. Any IRQL, but `%wZ`
    /// and other Unicode formats only at PASSIVE_LEVEL. Source:
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprintex>
    pub fn DbgPrintEx(ComponentId: u32, Level: u32, Format: *const u8, ...) -> u32;
    /// Prints to the kernel debugger. Source:
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprint>
    pub fn DbgPrint(Format: *const u8, ...) -> u32;
}

#[cfg(not(all(windows, target_arch = "x86_64")))]
extern "system" {
    #[link_name = "KeGetCurrentIrql"]
    fn host_ke_get_current_irql() -> KIRQL;
}

/// The current IRQL (`KeGetCurrentIrql`). Any IRQL.
///
/// On x64 Windows this is wdm.h's inline routine: it reads CR8. Elsewhere it calls the host
/// emulation's `KeGetCurrentIrql`. Source:
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-kegetcurrentirql>
#[inline]
pub fn current_irql() -> KIRQL {
    #[cfg(all(windows, target_arch = "x86_64"))]
    {
        let cr8: u64;
        // SAFETY: reading CR8 is how wdm.h implements KeGetCurrentIrql on x64; kernel mode only.
        unsafe {
            core::arch::asm!("mov {}, cr8", out(reg) cr8, options(nomem, nostack, preserves_flags))
        };
        cr8 as KIRQL
    }
    #[cfg(not(all(windows, target_arch = "x86_64")))]
    {
        // SAFETY: no arguments; the host emulation returns the calling thread's emulated IRQL.
        unsafe { host_ke_get_current_irql() }
    }
}

/// `IO_STACK_LOCATION.Parameters.DeviceIoControl` with wdm.h's layout:
///
/// ```c
/// struct {
///     ULONG OutputBufferLength;
///     ULONG POINTER_ALIGNMENT InputBufferLength;
///     ULONG POINTER_ALIGNMENT IoControlCode;
///     PVOID Type3InputBuffer;
/// } DeviceIoControl;
/// ```
///
/// `POINTER_ALIGNMENT` is `DECLSPEC_ALIGN(8)` on 64-bit targets, so on x64 the fields sit
/// at offsets 0, 8, 16 and 24. windows-sys 0.61's `IO_STACK_LOCATION_0_16` drops the
/// alignment (offsets 0, 4, 8, 16; microsoft/windows-rs#4404), which reads the input length
/// from padding and the control code from the input length on real Windows and on Wine.
/// Read and write these parameters only through [`device_io_control`]. Source:
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_stack_location>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DeviceIoControlParameters {
    /// `OutputBufferLength`.
    pub OutputBufferLength: u32,
    #[cfg(target_pointer_width = "64")]
    _align_input: u32,
    /// `InputBufferLength` (pointer-aligned).
    pub InputBufferLength: u32,
    #[cfg(target_pointer_width = "64")]
    _align_code: u32,
    /// `IoControlCode` (pointer-aligned).
    pub IoControlCode: u32,
    /// `Type3InputBuffer` (METHOD_NEITHER's user input pointer).
    pub Type3InputBuffer: *mut c_void,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(core::mem::offset_of!(DeviceIoControlParameters, InputBufferLength) == 8);
    assert!(core::mem::offset_of!(DeviceIoControlParameters, IoControlCode) == 16);
    assert!(core::mem::offset_of!(DeviceIoControlParameters, Type3InputBuffer) == 24);
    assert!(core::mem::size_of::<DeviceIoControlParameters>() == 32);
};
const _: () = assert!(
    core::mem::size_of::<DeviceIoControlParameters>()
        <= core::mem::size_of::<windows_sys::Wdk::Foundation::IO_STACK_LOCATION_0>()
);

/// The `Parameters.DeviceIoControl` of stack location `sl`, with the correct layout.
///
/// # Safety
/// `sl` points to a live `IO_STACK_LOCATION` the caller may access (read, or write while
/// building the IRP).
pub unsafe fn device_io_control(
    sl: *mut windows_sys::Wdk::Foundation::IO_STACK_LOCATION,
) -> *mut DeviceIoControlParameters {
    // SAFETY: the Parameters union is at least as large as DeviceIoControlParameters (checked
    // above) and pointer-aligned; addr_of_mut! creates no intermediate reference.
    unsafe { core::ptr::addr_of_mut!((*sl).Parameters) as *mut DeviceIoControlParameters }
}

/// `NT_SUCCESS`: true for success and informational statuses.
#[inline]
pub const fn nt_success(status: NTSTATUS) -> bool {
    status >= 0
}

// File routines on a handle: windows-sys declares the Zw* routines as ntdll.dll imports, but a
// driver imports them from ntoskrnl.exe (TRANSMIT_FILE, src/core/transmit.rs).
#[cfg_attr(
    windows,
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
extern "system" {
    /// Reads `Length` bytes from `ByteOffset` of an open file into `Buffer`; PASSIVE_LEVEL.
    /// `IoStatusBlock.Information` = bytes read; `STATUS_END_OF_FILE` at or past the end.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwreadfile>
    pub fn ZwReadFile(
        FileHandle: windows_sys::Win32::Foundation::HANDLE,
        Event: windows_sys::Win32::Foundation::HANDLE,
        ApcRoutine: *const c_void,
        ApcContext: *const c_void,
        IoStatusBlock: *mut windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
        Buffer: *mut c_void,
        Length: u32,
        ByteOffset: *const i64,
        Key: *const u32,
    ) -> NTSTATUS;
    /// Queries information about an open file (`FileStandardInformation` = 5 gives
    /// `EndOfFile`); PASSIVE_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwqueryinformationfile>
    pub fn ZwQueryInformationFile(
        FileHandle: windows_sys::Win32::Foundation::HANDLE,
        IoStatusBlock: *mut windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
        FileInformation: *mut c_void,
        Length: u32,
        FileInformationClass: i32,
    ) -> NTSTATUS;
    /// Creates an event object (`EventType` 0 notification, 1 synchronization) and a handle
    /// to it (`OBJ_KERNEL_HANDLE` in the attributes: a kernel handle); PASSIVE_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwcreateevent>
    pub fn ZwCreateEvent(
        EventHandle: *mut windows_sys::Win32::Foundation::HANDLE,
        DesiredAccess: u32,
        ObjectAttributes: *const windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES,
        EventType: i32,
        InitialState: bool,
    ) -> NTSTATUS;
    /// Waits for an object by handle (an event: until set); `Timeout` relative when negative,
    /// 100 ns units, NULL = no limit. Returns STATUS_SUCCESS or STATUS_TIMEOUT. IRQL <=
    /// APC_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwwaitforsingleobject>
    pub fn ZwWaitForSingleObject(
        Handle: windows_sys::Win32::Foundation::HANDLE,
        Alertable: bool,
        Timeout: *const i64,
    ) -> NTSTATUS;
    /// Closes a kernel handle; PASSIVE_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose>
    pub fn ZwClose(Handle: windows_sys::Win32::Foundation::HANDLE) -> NTSTATUS;
    /// `IoFileObjectType`: a data export of type `POBJECT_TYPE *` (wdm.h:
    /// `extern POBJECT_TYPE *IoFileObjectType;`); drivers pass `*IoFileObjectType` as the
    /// object type of `ObReferenceObjectByHandle`.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-obreferenceobjectbyhandle>
    pub static IoFileObjectType: *const *mut c_void;
}

// Security descriptors, to restrict a device created with IoCreateDevice (wdmsec.lib's
// IoCreateDeviceSecure is a WDK static library, not an export). Every routine here is a
// documented kernel-mode routine of wdm.h / ntifs.h (pages linked below); windows-sys
// declares them as ntdll.dll imports. Wine 8.0's ntoskrnl.exe exports all five (its
// ntoskrnl.exe.spec, and the Windows lane loads the driver with them); SeExports and
// ObSetSecurityObjectByPointer are stubs there, so they are not used. That Windows'
// ntoskrnl.exe exports them is from the documentation only, not observed here.
#[cfg_attr(
    windows,
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
extern "system" {
    /// Initialises an absolute security descriptor (no owner, group, SACL or DACL) in the
    /// caller's `SECURITY_DESCRIPTOR`; `Revision` = 1. Any IRQL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcreatesecuritydescriptor>
    pub fn RtlCreateSecurityDescriptor(SecurityDescriptor: *mut c_void, Revision: u32) -> NTSTATUS;
    /// Initialises an empty ACL of `AclLength` bytes; `AclRevision` = `ACL_REVISION` (2).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtlcreateacl>
    pub fn RtlCreateAcl(Acl: *mut c_void, AclLength: u32, AclRevision: u32) -> NTSTATUS;
    /// Appends an ACCESS_ALLOWED_ACE granting `AccessMask` to `Sid`; fails with
    /// `STATUS_ALLOTTED_SPACE_EXCEEDED` when the ACL has no room.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtladdaccessallowedace>
    pub fn RtlAddAccessAllowedAce(
        Acl: *mut c_void,
        AceRevision: u32,
        AccessMask: u32,
        Sid: *const c_void,
    ) -> NTSTATUS;
    /// Sets the DACL of an absolute security descriptor (the ACL is referenced, not copied).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlsetdaclsecuritydescriptor>
    pub fn RtlSetDaclSecurityDescriptor(
        SecurityDescriptor: *mut c_void,
        DaclPresent: bool,
        Dacl: *const c_void,
        DaclDefaulted: bool,
    ) -> NTSTATUS;
    /// Sets the parts of an object's security descriptor that `SecurityInformation` names
    /// (`DACL_SECURITY_INFORMATION` = 4) through a handle opened with `WRITE_DAC`;
    /// PASSIVE_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwsetsecurityobject>
    pub fn ZwSetSecurityObject(
        Handle: windows_sys::Win32::Foundation::HANDLE,
        SecurityInformation: u32,
        SecurityDescriptor: *const c_void,
    ) -> NTSTATUS;
}

/// `ZwCancelIoFileEx` (ntifs.h): cancels the pending I/O of a file handle whose
/// IO_STATUS_BLOCK is `IoRequestToCancel` (NULL: all of it). Resolved at run time with
/// `MmGetSystemRoutineAddress(L"ZwCancelIoFileEx")`, not imported: its ntoskrnl.exe export is
/// not verified here (Wine 8.0 exports it).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-ntcanceliofileex>
pub type ZwCancelIoFileExFn = unsafe extern "system" fn(
    FileHandle: windows_sys::Win32::Foundation::HANDLE,
    IoRequestToCancel: *const windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
    IoStatusBlock: *mut windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
) -> NTSTATUS;

/// `FILE_STANDARD_INFORMATION` (wdm.h), 24 bytes on x64.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/ns-wdm-_file_standard_information>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FILE_STANDARD_INFORMATION {
    /// `AllocationSize`, bytes.
    pub AllocationSize: i64,
    /// `EndOfFile`: the file size, bytes.
    pub EndOfFile: i64,
    /// `NumberOfLinks`.
    pub NumberOfLinks: u32,
    /// `DeletePending`.
    pub DeletePending: u8,
    /// `Directory`.
    pub Directory: u8,
}

/// `FileStandardInformation` (5) of `FILE_INFORMATION_CLASS`.
#[allow(non_upper_case_globals)]
pub const FileStandardInformation: i32 = 5;
