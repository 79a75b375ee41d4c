//! Host stand-in for **exactly the wdk-sys 0.5.2 items that `src/kmdf.rs` uses**, so that the
//! KMDF front-end compiles (and runs against `ntsim`'s WDF model) on Linux. The driver crate
//! names it `wdk_sys` on non-Windows hosts (`extern crate wdk_sys_standin as wdk_sys;`), so
//! `kmdf.rs` keeps `use wdk_sys::...` verbatim. Windows builds use the real wdk-sys.
//!
//! Names, types and shapes are those wdk-sys 0.5.2 generates with wdk-build 0.6.0's bindgen
//! settings (`wdk-build/src/bindgen.rs`, `BuilderExt::wdk_default`) for a KMDF 1.33 driver on
//! x86_64-pc-windows-msvc:
//! - C enums become modules of constants (`EnumVariation::ModuleConsts`): `_WDF_TRI_STATE::Type`
//!   is `c_int` (MSVC enums are `int`) and `WDF_TRI_STATE = _WDF_TRI_STATE::Type`;
//! - `typedef struct _X {..} X, *PX;` becomes `struct _X` plus `type X = _X; type PX = *mut _X`;
//! - function typedefs (`EVT_WDF_*`, `PFN_WDF*`) become `Option<unsafe extern "C" fn(..)>`;
//! - `DECLARE_HANDLE(WDFDEVICE)` becomes `struct WDFDEVICE__ { unused: c_int }` and
//!   `type WDFDEVICE = *mut WDFDEVICE__`;
//! - structs derive `Default` (`derive_default(true)`); those holding a union get a zeroing
//!   `Default`, as bindgen writes it;
//! - the function table symbol `WdfFunctions_01033` is renamed `WdfFunctions`
//!   (`WdkCallbacks::generated_name_override`), and `WdfFunctionCount` sizes it (KMDF >= 1.25:
//!   wdk-sys `build.rs`, `generate_wdf_function_count`).
//!
//! Windows' `ULONG`/`LONG` are 32-bit (`c_ulong`/`c_long` on Windows), so they are `u32`/`i32`
//! here, not the Linux `c_ulong`/`c_long`; `CHAR` is `i8` (Windows' `c_char`).
//!
//! Deliberate differences from wdk-sys, none of which `kmdf.rs` can observe:
//! - only the items `kmdf.rs` names (directly or in the signatures of the WDF functions and
//!   callbacks it uses) exist; `_WDFFUNCENUM` lists only the indices of those functions;
//! - kernel structures that `kmdf.rs` only passes by pointer (`DEVICE_OBJECT`, `IRP`,
//!   `DRIVER_EXTENSION`, ...) are opaque, and `DISPATCHER_HEADER` is an opaque blob of its size;
//! - `WdfFunctions`, `WdfDriverGlobals` and `WdfFunctionCount` are extern statics that
//!   `ntsim::wdf` defines (as wdfldr fills the real ones when it binds the driver).
//!
//! Layouts are checked against the KMDF 1.33 public headers in `tests/layout.rs` and by the
//! compile-time asserts at the end of this file.
#![no_std]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    clippy::upper_case_acronyms
)]

use core::ffi::{c_int, c_void};

#[doc(hidden)]
pub use wdk_macros_standin as __proc_macros;

/// Calls a WDF function by name through the bound WDF function table, as wdk-sys 0.5.2's
/// `call_unsafe_wdf_function_binding!` does: `WdfFunctions[<Name>TableIndex]` transmuted to
/// `PFN_<NAME>`, called with `WdfDriverGlobals` first. Must be used in an `unsafe` context;
/// the arguments must follow the WDF function's documented rules (IRQL, object states).
#[macro_export]
macro_rules! call_unsafe_wdf_function_binding {
    ( $($tt:tt)* ) => {
        $crate::__proc_macros::call_unsafe_wdf_function_binding!($crate, $($tt)*)
    };
}

// ---- Base types (ntdef.h / basetsd.h, Windows x64 sizes) ----

/// `PVOID`.
pub type PVOID = *mut c_void;
/// `HANDLE`.
pub type HANDLE = *mut c_void;
/// `CHAR` (`char`, signed on Windows).
pub type CHAR = i8;
/// `CCHAR`.
pub type CCHAR = i8;
/// `UCHAR`.
pub type UCHAR = u8;
/// `BOOLEAN` (`UCHAR`).
pub type BOOLEAN = UCHAR;
/// `CSHORT` (`short`).
pub type CSHORT = i16;
/// `USHORT`.
pub type USHORT = u16;
/// `WCHAR` (`wchar_t`, 16-bit on Windows).
pub type WCHAR = u16;
/// `PWCH`.
pub type PWCH = *mut WCHAR;
/// `ULONG` (`unsigned long`, 32-bit on Windows).
pub type ULONG = u32;
/// `LONG` (`long`, 32-bit on Windows).
pub type LONG = i32;
/// `LONGLONG`.
pub type LONGLONG = i64;
/// `NTSTATUS` (`LONG`).
pub type NTSTATUS = LONG;
/// `ULONG_PTR` (`unsigned __int64` on x64).
pub type ULONG_PTR = u64;
/// `KSPIN_LOCK` (`ULONG_PTR`).
pub type KSPIN_LOCK = ULONG_PTR;
/// `DEVICE_TYPE` (`ULONG`).
pub type DEVICE_TYPE = ULONG;
/// `KPROCESSOR_MODE` (`CCHAR`): `KernelMode` 0, `UserMode` 1.
pub type KPROCESSOR_MODE = CCHAR;
/// `LPCSTR`.
pub type LPCSTR = *const CHAR;

/// `UNICODE_STRING` (ntdef.h): `Length`/`MaximumLength` in bytes, `Buffer` not necessarily
/// NUL-terminated. A type of its own, distinct from windows-sys's `UNICODE_STRING`, as in
/// wdk-sys.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _UNICODE_STRING {
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: PWCH,
}
impl Default for _UNICODE_STRING {
    fn default() -> Self {
        Self {
            Length: 0,
            MaximumLength: 0,
            Buffer: core::ptr::null_mut(),
        }
    }
}
/// `UNICODE_STRING`.
pub type UNICODE_STRING = _UNICODE_STRING;
/// `PUNICODE_STRING`.
pub type PUNICODE_STRING = *mut UNICODE_STRING;
/// `PCUNICODE_STRING`.
pub type PCUNICODE_STRING = *const UNICODE_STRING;

/// `LARGE_INTEGER` (winnt.h).
#[repr(C)]
#[derive(Copy, Clone)]
pub union _LARGE_INTEGER {
    pub u: _LARGE_INTEGER__bindgen_ty_1,
    pub QuadPart: LONGLONG,
}
/// The `u` member of `LARGE_INTEGER`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _LARGE_INTEGER__bindgen_ty_1 {
    pub LowPart: ULONG,
    pub HighPart: LONG,
}
/// `LARGE_INTEGER`.
pub type LARGE_INTEGER = _LARGE_INTEGER;

/// `LIST_ENTRY`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _LIST_ENTRY {
    pub Flink: *mut _LIST_ENTRY,
    pub Blink: *mut _LIST_ENTRY,
}
/// `LIST_ENTRY`.
pub type LIST_ENTRY = _LIST_ENTRY;

/// `DISPATCHER_HEADER` (wdm.h): opaque here, 24 bytes on x64.
#[repr(C, align(8))]
#[derive(Debug, Copy, Clone)]
pub struct _DISPATCHER_HEADER {
    pub _bindgen_opaque_blob: [u64; 3],
}
/// `KEVENT` (wdm.h).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _KEVENT {
    pub Header: _DISPATCHER_HEADER,
}
/// `KEVENT`.
pub type KEVENT = _KEVENT;

macro_rules! opaque {
    ($($(#[$m:meta])* $name:ident;)*) => {$(
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Copy, Clone)]
        pub struct $name {
            _unused: [u8; 0],
        }
    )*};
}

opaque! {
    /// `DEVICE_OBJECT`: opaque in the stand-in (`kmdf.rs` never dereferences it).
    _DEVICE_OBJECT;
    /// `IRP`: opaque in the stand-in.
    _IRP;
    /// `DRIVER_EXTENSION`: opaque in the stand-in.
    _DRIVER_EXTENSION;
    /// `FAST_IO_DISPATCH`: opaque in the stand-in.
    _FAST_IO_DISPATCH;
    /// `VPB`: opaque in the stand-in.
    _VPB;
    /// `SECTION_OBJECT_POINTERS`: opaque in the stand-in.
    _SECTION_OBJECT_POINTERS;
    /// `IO_COMPLETION_CONTEXT`: opaque in the stand-in.
    _IO_COMPLETION_CONTEXT;
    /// `EPROCESS`: opaque (as in the WDK headers).
    _EPROCESS;
    /// `WDFDEVICE_INIT`: opaque (as in wdftypes.h).
    WDFDEVICE_INIT;
}

/// `PDEVICE_OBJECT`.
pub type PDEVICE_OBJECT = *mut _DEVICE_OBJECT;
/// `DRIVER_INITIALIZE`.
pub type DRIVER_INITIALIZE = Option<
    unsafe extern "C" fn(
        DriverObject: *mut _DRIVER_OBJECT,
        RegistryPath: PUNICODE_STRING,
    ) -> NTSTATUS,
>;
/// `PDRIVER_INITIALIZE`.
pub type PDRIVER_INITIALIZE = DRIVER_INITIALIZE;
/// `DRIVER_STARTIO`.
pub type DRIVER_STARTIO =
    Option<unsafe extern "C" fn(DeviceObject: *mut _DEVICE_OBJECT, Irp: *mut _IRP)>;
/// `PDRIVER_STARTIO`.
pub type PDRIVER_STARTIO = DRIVER_STARTIO;
/// `DRIVER_UNLOAD`.
pub type DRIVER_UNLOAD = Option<unsafe extern "C" fn(DriverObject: *mut _DRIVER_OBJECT)>;
/// `PDRIVER_UNLOAD`.
pub type PDRIVER_UNLOAD = DRIVER_UNLOAD;
/// `DRIVER_DISPATCH`.
pub type DRIVER_DISPATCH =
    Option<unsafe extern "C" fn(DeviceObject: *mut _DEVICE_OBJECT, Irp: *mut _IRP) -> NTSTATUS>;
/// `PDRIVER_DISPATCH`.
pub type PDRIVER_DISPATCH = DRIVER_DISPATCH;

/// `DRIVER_OBJECT` (wdm.h). `MajorFunction` has `IRP_MJ_MAXIMUM_FUNCTION + 1` = 28 entries.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _DRIVER_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: PDEVICE_OBJECT,
    pub Flags: ULONG,
    pub DriverStart: PVOID,
    pub DriverSize: ULONG,
    pub DriverSection: PVOID,
    pub DriverExtension: *mut _DRIVER_EXTENSION,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: PUNICODE_STRING,
    pub FastIoDispatch: *mut _FAST_IO_DISPATCH,
    pub DriverInit: PDRIVER_INITIALIZE,
    pub DriverStartIo: PDRIVER_STARTIO,
    pub DriverUnload: PDRIVER_UNLOAD,
    pub MajorFunction: [PDRIVER_DISPATCH; 28usize],
}
/// `DRIVER_OBJECT`.
pub type DRIVER_OBJECT = _DRIVER_OBJECT;
/// `PDRIVER_OBJECT`.
pub type PDRIVER_OBJECT = *mut _DRIVER_OBJECT;

/// `FILE_OBJECT` (wdm.h).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _FILE_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: PDEVICE_OBJECT,
    pub Vpb: *mut _VPB,
    pub FsContext: PVOID,
    pub FsContext2: PVOID,
    pub SectionObjectPointer: *mut _SECTION_OBJECT_POINTERS,
    pub PrivateCacheMap: PVOID,
    pub FinalStatus: NTSTATUS,
    pub RelatedFileObject: *mut _FILE_OBJECT,
    pub LockOperation: BOOLEAN,
    pub DeletePending: BOOLEAN,
    pub ReadAccess: BOOLEAN,
    pub WriteAccess: BOOLEAN,
    pub DeleteAccess: BOOLEAN,
    pub SharedRead: BOOLEAN,
    pub SharedWrite: BOOLEAN,
    pub SharedDelete: BOOLEAN,
    pub Flags: ULONG,
    pub FileName: UNICODE_STRING,
    pub CurrentByteOffset: LARGE_INTEGER,
    pub Waiters: ULONG,
    pub Busy: ULONG,
    pub LastLock: PVOID,
    pub Lock: KEVENT,
    pub Event: KEVENT,
    pub CompletionContext: *mut _IO_COMPLETION_CONTEXT,
    pub IrpListLock: KSPIN_LOCK,
    pub IrpList: LIST_ENTRY,
    pub FileObjectExtension: PVOID,
}
/// `FILE_OBJECT`.
pub type FILE_OBJECT = _FILE_OBJECT;
/// `PFILE_OBJECT`.
pub type PFILE_OBJECT = *mut _FILE_OBJECT;

/// `MDL` (wdm.h).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _MDL {
    pub Next: *mut _MDL,
    pub Size: CSHORT,
    pub MdlFlags: CSHORT,
    pub Process: *mut _EPROCESS,
    pub MappedSystemVa: PVOID,
    pub StartVa: PVOID,
    pub ByteCount: ULONG,
    pub ByteOffset: ULONG,
}
/// `MDL`.
pub type MDL = _MDL;
/// `PMDL`.
pub type PMDL = *mut _MDL;

// ---- NTSTATUS values (ntstatus.h), as wdk-sys's constants.rs declares them ----

/// `STATUS_SUCCESS`.
pub const STATUS_SUCCESS: NTSTATUS = 0;
/// `STATUS_NOT_IMPLEMENTED` (0xC0000002).
pub const STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC000_0002_u32 as NTSTATUS;
/// `STATUS_INSUFFICIENT_RESOURCES` (0xC000009A).
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as NTSTATUS;
/// `STATUS_CANCELLED` (0xC0000120).
pub const STATUS_CANCELLED: NTSTATUS = 0xC000_0120_u32 as NTSTATUS;
/// `STATUS_INVALID_DEVICE_STATE` (0xC0000184).
pub const STATUS_INVALID_DEVICE_STATE: NTSTATUS = 0xC000_0184_u32 as NTSTATUS;
/// `STATUS_INVALID_BUFFER_SIZE` (0xC0000206).
pub const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = 0xC000_0206_u32 as NTSTATUS;

// ---- WDF handles and enums (wdftypes.h, wdfdriver.h, wdfdevice.h, wdfio.h, wdfobject.h) ----

macro_rules! wdf_handles {
    ($($(#[$m:meta])* $inner:ident => $name:ident;)*) => {$(
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Default, Copy, Clone)]
        pub struct $inner {
            pub unused: c_int,
        }
        $(#[$m])*
        pub type $name = *mut $inner;
    )*};
}

wdf_handles! {
    /// `WDFDRIVER` (`DECLARE_HANDLE`).
    WDFDRIVER__ => WDFDRIVER;
    /// `WDFDEVICE` (`DECLARE_HANDLE`).
    WDFDEVICE__ => WDFDEVICE;
    /// `WDFQUEUE` (`DECLARE_HANDLE`).
    WDFQUEUE__ => WDFQUEUE;
    /// `WDFREQUEST` (`DECLARE_HANDLE`).
    WDFREQUEST__ => WDFREQUEST;
    /// `WDFFILEOBJECT` (`DECLARE_HANDLE`).
    WDFFILEOBJECT__ => WDFFILEOBJECT;
}

/// `WDFOBJECT` (`HANDLE`): any framework object.
pub type WDFOBJECT = HANDLE;
/// `PWDFDEVICE_INIT`.
pub type PWDFDEVICE_INIT = *mut WDFDEVICE_INIT;

/// `WDF_TRI_STATE` (wdftypes.h).
pub mod _WDF_TRI_STATE {
    /// The enum's integer type (MSVC: `int`).
    pub type Type = core::ffi::c_int;
    pub const WdfFalse: Type = 0;
    pub const WdfTrue: Type = 1;
    pub const WdfUseDefault: Type = 2;
}
/// `WDF_TRI_STATE`.
pub type WDF_TRI_STATE = _WDF_TRI_STATE::Type;

/// `WDF_DRIVER_INIT_FLAGS` (wdfdriver.h).
pub mod _WDF_DRIVER_INIT_FLAGS {
    /// The enum's integer type (MSVC: `int`).
    pub type Type = core::ffi::c_int;
    pub const WdfDriverInitNonPnpDriver: Type = 1;
    pub const WdfDriverInitNoDispatchOverride: Type = 2;
    pub const WdfVerifyOn: Type = 4;
    pub const WdfVerifierOn: Type = 8;
}
/// `WDF_DRIVER_INIT_FLAGS`.
pub type WDF_DRIVER_INIT_FLAGS = _WDF_DRIVER_INIT_FLAGS::Type;

/// `WDF_FILEOBJECT_CLASS` (wdfdevice.h).
pub mod _WDF_FILEOBJECT_CLASS {
    /// The enum's integer type (MSVC: `int`).
    pub type Type = core::ffi::c_int;
    pub const WdfFileObjectInvalid: Type = 0;
    pub const WdfFileObjectNotRequired: Type = 1;
    pub const WdfFileObjectWdfCanUseFsContext: Type = 2;
    pub const WdfFileObjectWdfCanUseFsContext2: Type = 3;
    pub const WdfFileObjectWdfCannotUseFsContexts: Type = 4;
    pub const WdfFileObjectCanBeOptional: Type = -2_147_483_648;
}
/// `WDF_FILEOBJECT_CLASS`.
pub type WDF_FILEOBJECT_CLASS = _WDF_FILEOBJECT_CLASS::Type;

/// `WDF_IO_QUEUE_DISPATCH_TYPE` (wdfio.h).
pub mod _WDF_IO_QUEUE_DISPATCH_TYPE {
    /// The enum's integer type (MSVC: `int`).
    pub type Type = core::ffi::c_int;
    pub const WdfIoQueueDispatchInvalid: Type = 0;
    pub const WdfIoQueueDispatchSequential: Type = 1;
    pub const WdfIoQueueDispatchParallel: Type = 2;
    pub const WdfIoQueueDispatchManual: Type = 3;
    pub const WdfIoQueueDispatchMax: Type = 4;
}
/// `WDF_IO_QUEUE_DISPATCH_TYPE`.
pub type WDF_IO_QUEUE_DISPATCH_TYPE = _WDF_IO_QUEUE_DISPATCH_TYPE::Type;

/// `WDF_EXECUTION_LEVEL` (wdfobject.h).
pub mod _WDF_EXECUTION_LEVEL {
    /// The enum's integer type (MSVC: `int`).
    pub type Type = core::ffi::c_int;
    pub const WdfExecutionLevelInvalid: Type = 0;
    pub const WdfExecutionLevelInheritFromParent: Type = 1;
    pub const WdfExecutionLevelPassive: Type = 2;
    pub const WdfExecutionLevelDispatch: Type = 3;
}
/// `WDF_EXECUTION_LEVEL`.
pub type WDF_EXECUTION_LEVEL = _WDF_EXECUTION_LEVEL::Type;

/// `WDF_SYNCHRONIZATION_SCOPE` (wdfobject.h).
pub mod _WDF_SYNCHRONIZATION_SCOPE {
    /// The enum's integer type (MSVC: `int`).
    pub type Type = core::ffi::c_int;
    pub const WdfSynchronizationScopeInvalid: Type = 0;
    pub const WdfSynchronizationScopeInheritFromParent: Type = 1;
    pub const WdfSynchronizationScopeDevice: Type = 2;
    pub const WdfSynchronizationScopeQueue: Type = 3;
    pub const WdfSynchronizationScopeNone: Type = 4;
}
/// `WDF_SYNCHRONIZATION_SCOPE`.
pub type WDF_SYNCHRONIZATION_SCOPE = _WDF_SYNCHRONIZATION_SCOPE::Type;

// ---- Event callback types ----

/// `EVT_WDF_DRIVER_DEVICE_ADD` (wdfdriver.h), PASSIVE_LEVEL.
pub type EVT_WDF_DRIVER_DEVICE_ADD =
    Option<unsafe extern "C" fn(Driver: WDFDRIVER, DeviceInit: PWDFDEVICE_INIT) -> NTSTATUS>;
/// `PFN_WDF_DRIVER_DEVICE_ADD`.
pub type PFN_WDF_DRIVER_DEVICE_ADD = EVT_WDF_DRIVER_DEVICE_ADD;
/// `EVT_WDF_DRIVER_UNLOAD` (wdfdriver.h), PASSIVE_LEVEL.
pub type EVT_WDF_DRIVER_UNLOAD = Option<unsafe extern "C" fn(Driver: WDFDRIVER)>;
/// `PFN_WDF_DRIVER_UNLOAD`.
pub type PFN_WDF_DRIVER_UNLOAD = EVT_WDF_DRIVER_UNLOAD;
/// `EVT_WDF_DEVICE_FILE_CREATE` (wdfdevice.h), PASSIVE_LEVEL.
pub type EVT_WDF_DEVICE_FILE_CREATE =
    Option<unsafe extern "C" fn(Device: WDFDEVICE, Request: WDFREQUEST, FileObject: WDFFILEOBJECT)>;
/// `PFN_WDF_DEVICE_FILE_CREATE`.
pub type PFN_WDF_DEVICE_FILE_CREATE = EVT_WDF_DEVICE_FILE_CREATE;
/// `EVT_WDF_FILE_CLOSE` (wdfdevice.h), PASSIVE_LEVEL.
pub type EVT_WDF_FILE_CLOSE = Option<unsafe extern "C" fn(FileObject: WDFFILEOBJECT)>;
/// `PFN_WDF_FILE_CLOSE`.
pub type PFN_WDF_FILE_CLOSE = EVT_WDF_FILE_CLOSE;
/// `EVT_WDF_FILE_CLEANUP` (wdfdevice.h), PASSIVE_LEVEL.
pub type EVT_WDF_FILE_CLEANUP = Option<unsafe extern "C" fn(FileObject: WDFFILEOBJECT)>;
/// `PFN_WDF_FILE_CLEANUP`.
pub type PFN_WDF_FILE_CLEANUP = EVT_WDF_FILE_CLEANUP;
/// `EVT_WDF_IO_QUEUE_IO_DEFAULT` (wdfio.h), <= DISPATCH_LEVEL.
pub type EVT_WDF_IO_QUEUE_IO_DEFAULT =
    Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST)>;
/// `PFN_WDF_IO_QUEUE_IO_DEFAULT`.
pub type PFN_WDF_IO_QUEUE_IO_DEFAULT = EVT_WDF_IO_QUEUE_IO_DEFAULT;
/// `EVT_WDF_IO_QUEUE_IO_READ` (wdfio.h), <= DISPATCH_LEVEL; `Length` in bytes.
pub type EVT_WDF_IO_QUEUE_IO_READ =
    Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST, Length: usize)>;
/// `PFN_WDF_IO_QUEUE_IO_READ`.
pub type PFN_WDF_IO_QUEUE_IO_READ = EVT_WDF_IO_QUEUE_IO_READ;
/// `EVT_WDF_IO_QUEUE_IO_WRITE` (wdfio.h), <= DISPATCH_LEVEL; `Length` in bytes.
pub type EVT_WDF_IO_QUEUE_IO_WRITE =
    Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST, Length: usize)>;
/// `PFN_WDF_IO_QUEUE_IO_WRITE`.
pub type PFN_WDF_IO_QUEUE_IO_WRITE = EVT_WDF_IO_QUEUE_IO_WRITE;
/// `EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL` (wdfio.h), <= DISPATCH_LEVEL; lengths in bytes.
pub type EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL = Option<
    unsafe extern "C" fn(
        Queue: WDFQUEUE,
        Request: WDFREQUEST,
        OutputBufferLength: usize,
        InputBufferLength: usize,
        IoControlCode: ULONG,
    ),
>;
/// `PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL`.
pub type PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL = EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL;
/// `EVT_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL` (wdfio.h), <= DISPATCH_LEVEL.
pub type EVT_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL = Option<
    unsafe extern "C" fn(
        Queue: WDFQUEUE,
        Request: WDFREQUEST,
        OutputBufferLength: usize,
        InputBufferLength: usize,
        IoControlCode: ULONG,
    ),
>;
/// `PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL`.
pub type PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL = EVT_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL;
/// `EVT_WDF_IO_QUEUE_IO_STOP` (wdfio.h), <= DISPATCH_LEVEL.
pub type EVT_WDF_IO_QUEUE_IO_STOP =
    Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST, ActionFlags: ULONG)>;
/// `PFN_WDF_IO_QUEUE_IO_STOP`.
pub type PFN_WDF_IO_QUEUE_IO_STOP = EVT_WDF_IO_QUEUE_IO_STOP;
/// `EVT_WDF_IO_QUEUE_IO_RESUME` (wdfio.h), <= DISPATCH_LEVEL.
pub type EVT_WDF_IO_QUEUE_IO_RESUME =
    Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST)>;
/// `PFN_WDF_IO_QUEUE_IO_RESUME`.
pub type PFN_WDF_IO_QUEUE_IO_RESUME = EVT_WDF_IO_QUEUE_IO_RESUME;
/// `EVT_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE` (wdfio.h), <= DISPATCH_LEVEL.
pub type EVT_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE =
    Option<unsafe extern "C" fn(Queue: WDFQUEUE, Request: WDFREQUEST)>;
/// `PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE`.
pub type PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE = EVT_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE;
/// `EVT_WDF_REQUEST_CANCEL` (wdfrequest.h), <= DISPATCH_LEVEL.
pub type EVT_WDF_REQUEST_CANCEL = Option<unsafe extern "C" fn(Request: WDFREQUEST)>;
/// `PFN_WDF_REQUEST_CANCEL`.
pub type PFN_WDF_REQUEST_CANCEL = EVT_WDF_REQUEST_CANCEL;
/// `EVT_WDF_OBJECT_CONTEXT_CLEANUP` (wdfobject.h).
pub type EVT_WDF_OBJECT_CONTEXT_CLEANUP = Option<unsafe extern "C" fn(Object: WDFOBJECT)>;
/// `PFN_WDF_OBJECT_CONTEXT_CLEANUP`.
pub type PFN_WDF_OBJECT_CONTEXT_CLEANUP = EVT_WDF_OBJECT_CONTEXT_CLEANUP;
/// `EVT_WDF_OBJECT_CONTEXT_DESTROY` (wdfobject.h).
pub type EVT_WDF_OBJECT_CONTEXT_DESTROY = Option<unsafe extern "C" fn(Object: WDFOBJECT)>;
/// `PFN_WDF_OBJECT_CONTEXT_DESTROY`.
pub type PFN_WDF_OBJECT_CONTEXT_DESTROY = EVT_WDF_OBJECT_CONTEXT_DESTROY;
/// `PFN_GET_UNIQUE_CONTEXT_TYPE` (wdfobject.h).
pub type PFN_GET_UNIQUE_CONTEXT_TYPE =
    Option<unsafe extern "C" fn() -> PCWDF_OBJECT_CONTEXT_TYPE_INFO>;

// ---- WDF structures ----

/// `WDF_DRIVER_CONFIG` (wdfdriver.h). `Size` in bytes; `DriverInitFlags` a combination of
/// `WDF_DRIVER_INIT_FLAGS`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_DRIVER_CONFIG {
    pub Size: ULONG,
    pub EvtDriverDeviceAdd: PFN_WDF_DRIVER_DEVICE_ADD,
    pub EvtDriverUnload: PFN_WDF_DRIVER_UNLOAD,
    pub DriverInitFlags: ULONG,
    pub DriverPoolTag: ULONG,
}
/// `WDF_DRIVER_CONFIG`.
pub type WDF_DRIVER_CONFIG = _WDF_DRIVER_CONFIG;
/// `PWDF_DRIVER_CONFIG`.
pub type PWDF_DRIVER_CONFIG = *mut _WDF_DRIVER_CONFIG;

/// `WDF_FILEOBJECT_CONFIG` (wdfdevice.h).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_FILEOBJECT_CONFIG {
    pub Size: ULONG,
    pub EvtDeviceFileCreate: PFN_WDF_DEVICE_FILE_CREATE,
    pub EvtFileClose: PFN_WDF_FILE_CLOSE,
    pub EvtFileCleanup: PFN_WDF_FILE_CLEANUP,
    pub AutoForwardCleanupClose: WDF_TRI_STATE,
    pub FileObjectClass: WDF_FILEOBJECT_CLASS,
}
/// `WDF_FILEOBJECT_CONFIG`.
pub type WDF_FILEOBJECT_CONFIG = _WDF_FILEOBJECT_CONFIG;
/// `PWDF_FILEOBJECT_CONFIG`.
pub type PWDF_FILEOBJECT_CONFIG = *mut _WDF_FILEOBJECT_CONFIG;

/// `WDF_IO_QUEUE_CONFIG` (wdfio.h).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG {
    pub Size: ULONG,
    pub DispatchType: WDF_IO_QUEUE_DISPATCH_TYPE,
    pub PowerManaged: WDF_TRI_STATE,
    pub AllowZeroLengthRequests: BOOLEAN,
    pub DefaultQueue: BOOLEAN,
    pub EvtIoDefault: PFN_WDF_IO_QUEUE_IO_DEFAULT,
    pub EvtIoRead: PFN_WDF_IO_QUEUE_IO_READ,
    pub EvtIoWrite: PFN_WDF_IO_QUEUE_IO_WRITE,
    pub EvtIoDeviceControl: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    pub EvtIoInternalDeviceControl: PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL,
    pub EvtIoStop: PFN_WDF_IO_QUEUE_IO_STOP,
    pub EvtIoResume: PFN_WDF_IO_QUEUE_IO_RESUME,
    pub EvtIoCanceledOnQueue: PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE,
    pub Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1,
    pub Driver: WDFDRIVER,
}
/// The anonymous `Settings` union of `WDF_IO_QUEUE_CONFIG`.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
    pub Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1,
}
/// `Settings.Parallel` of `WDF_IO_QUEUE_CONFIG`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1 {
    pub NumberOfPresentedRequests: ULONG,
}
impl Default for _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
    fn default() -> Self {
        Self {
            Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1::default(),
        }
    }
}
impl Default for _WDF_IO_QUEUE_CONFIG {
    /// All zero, as bindgen's `Default` for a structure holding a union (not
    /// `WDF_IO_QUEUE_CONFIG_INIT*`).
    fn default() -> Self {
        Self {
            Size: 0,
            DispatchType: 0,
            PowerManaged: 0,
            AllowZeroLengthRequests: 0,
            DefaultQueue: 0,
            EvtIoDefault: None,
            EvtIoRead: None,
            EvtIoWrite: None,
            EvtIoDeviceControl: None,
            EvtIoInternalDeviceControl: None,
            EvtIoStop: None,
            EvtIoResume: None,
            EvtIoCanceledOnQueue: None,
            Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1::default(),
            Driver: core::ptr::null_mut(),
        }
    }
}
/// `WDF_IO_QUEUE_CONFIG`.
pub type WDF_IO_QUEUE_CONFIG = _WDF_IO_QUEUE_CONFIG;
/// `PWDF_IO_QUEUE_CONFIG`.
pub type PWDF_IO_QUEUE_CONFIG = *mut _WDF_IO_QUEUE_CONFIG;

/// `WDF_OBJECT_CONTEXT_TYPE_INFO` (wdfobject.h). `ContextSize` in bytes.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_CONTEXT_TYPE_INFO {
    pub Size: ULONG,
    pub ContextName: LPCSTR,
    pub ContextSize: usize,
    pub UniqueType: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    pub EvtDriverGetUniqueContextType: PFN_GET_UNIQUE_CONTEXT_TYPE,
}
impl Default for _WDF_OBJECT_CONTEXT_TYPE_INFO {
    fn default() -> Self {
        Self {
            Size: 0,
            ContextName: core::ptr::null(),
            ContextSize: 0,
            UniqueType: core::ptr::null(),
            EvtDriverGetUniqueContextType: None,
        }
    }
}
/// `WDF_OBJECT_CONTEXT_TYPE_INFO`.
pub type WDF_OBJECT_CONTEXT_TYPE_INFO = _WDF_OBJECT_CONTEXT_TYPE_INFO;
/// `PWDF_OBJECT_CONTEXT_TYPE_INFO`.
pub type PWDF_OBJECT_CONTEXT_TYPE_INFO = *mut _WDF_OBJECT_CONTEXT_TYPE_INFO;
/// `PCWDF_OBJECT_CONTEXT_TYPE_INFO`.
pub type PCWDF_OBJECT_CONTEXT_TYPE_INFO = *const _WDF_OBJECT_CONTEXT_TYPE_INFO;

/// `WDF_OBJECT_ATTRIBUTES` (wdfobject.h). `ContextSizeOverride` in bytes.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_ATTRIBUTES {
    pub Size: ULONG,
    pub EvtCleanupCallback: PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    pub EvtDestroyCallback: PFN_WDF_OBJECT_CONTEXT_DESTROY,
    pub ExecutionLevel: WDF_EXECUTION_LEVEL,
    pub SynchronizationScope: WDF_SYNCHRONIZATION_SCOPE,
    pub ParentObject: WDFOBJECT,
    pub ContextSizeOverride: usize,
    pub ContextTypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
}
impl Default for _WDF_OBJECT_ATTRIBUTES {
    fn default() -> Self {
        Self {
            Size: 0,
            EvtCleanupCallback: None,
            EvtDestroyCallback: None,
            ExecutionLevel: 0,
            SynchronizationScope: 0,
            ParentObject: core::ptr::null_mut(),
            ContextSizeOverride: 0,
            ContextTypeInfo: core::ptr::null(),
        }
    }
}
/// `WDF_OBJECT_ATTRIBUTES`.
pub type WDF_OBJECT_ATTRIBUTES = _WDF_OBJECT_ATTRIBUTES;
/// `PWDF_OBJECT_ATTRIBUTES`.
pub type PWDF_OBJECT_ATTRIBUTES = *mut _WDF_OBJECT_ATTRIBUTES;

/// `WDF_DRIVER_GLOBALS_NAME_LEN` (wdfglobals.h).
pub const WDF_DRIVER_GLOBALS_NAME_LEN: u32 = 32;

/// `WDF_DRIVER_GLOBALS` (wdfglobals.h): the framework's per-driver block that every WDF
/// function receives first.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_DRIVER_GLOBALS {
    pub Driver: WDFDRIVER,
    pub DriverFlags: ULONG,
    pub DriverTag: ULONG,
    pub DriverName: [CHAR; 32usize],
    pub DisplaceDriverUnload: BOOLEAN,
}
/// `WDF_DRIVER_GLOBALS`.
pub type WDF_DRIVER_GLOBALS = _WDF_DRIVER_GLOBALS;
/// `PWDF_DRIVER_GLOBALS`.
pub type PWDF_DRIVER_GLOBALS = *mut _WDF_DRIVER_GLOBALS;

/// `WDF_NO_OBJECT_ATTRIBUTES` (wdk-sys `constants.rs`).
pub const WDF_NO_OBJECT_ATTRIBUTES: PWDF_OBJECT_ATTRIBUTES = core::ptr::null_mut();
/// `WDF_NO_HANDLE` (wdk-sys `constants.rs`).
pub const WDF_NO_HANDLE: PVOID = core::ptr::null_mut();

// ---- The function table (wdf.h, wdffuncenum.h) ----

/// `WDFFUNC` (wdf.h): an entry of the WDF function table.
pub type WDFFUNC = Option<unsafe extern "C" fn()>;

/// `WDFFUNCENUM` (wdffuncenum.h, KMDF 1.33): the table indices of the WDF functions
/// `kmdf.rs` calls or the KMDF model offers for it (and the table size). The real enum has
/// every function.
pub mod _WDFFUNCENUM {
    /// The enum's integer type (MSVC: `int`).
    pub type Type = core::ffi::c_int;
    pub const WdfControlDeviceInitAllocateTableIndex: Type = 25;
    pub const WdfControlFinishInitializingTableIndex: Type = 27;
    pub const WdfDeviceWdmGetDeviceObjectTableIndex: Type = 31;
    pub const WdfDeviceInitFreeTableIndex: Type = 54;
    pub const WdfDeviceInitSetDeviceTypeTableIndex: Type = 66;
    pub const WdfDeviceInitAssignNameTableIndex: Type = 67;
    pub const WdfDeviceInitSetCharacteristicsTableIndex: Type = 70;
    pub const WdfDeviceInitSetFileObjectConfigTableIndex: Type = 71;
    pub const WdfDeviceInitSetRequestAttributesTableIndex: Type = 72;
    pub const WdfDeviceCreateTableIndex: Type = 75;
    pub const WdfDeviceCreateSymbolicLinkTableIndex: Type = 80;
    pub const WdfDriverCreateTableIndex: Type = 116;
    pub const WdfFileObjectWdmGetFileObjectTableIndex: Type = 140;
    pub const WdfIoQueueCreateTableIndex: Type = 152;
    pub const WdfObjectGetTypedContextWorkerTableIndex: Type = 202;
    pub const WdfObjectDeleteTableIndex: Type = 208;
    pub const WdfRequestUnmarkCancelableTableIndex: Type = 256;
    pub const WdfRequestCompleteTableIndex: Type = 263;
    pub const WdfRequestCompleteWithInformationTableIndex: Type = 265;
    pub const WdfRequestRetrieveInputBufferTableIndex: Type = 269;
    pub const WdfRequestRetrieveOutputBufferTableIndex: Type = 270;
    pub const WdfRequestRetrieveOutputWdmMdlTableIndex: Type = 272;
    pub const WdfRequestGetFileObjectTableIndex: Type = 277;
    pub const WdfRequestGetRequestorModeTableIndex: Type = 280;
    pub const WdfRequestMarkCancelableExTableIndex: Type = 393;
    pub const WdfFunctionTableNumEntries: Type = 458;
}

extern "C" {
    /// `WdfFunctions` (wdf.h: `#define WdfFunctions WdfFunctions_01033`): the function table
    /// wdfldr fills when it binds the driver. On the host, `ntsim::wdf` defines it.
    #[link_name = "WdfFunctions_01033"]
    pub static mut WdfFunctions: *const WDFFUNC;
    /// `WdfDriverGlobals` (wdffuncenum.h): this driver's globals, passed first to every WDF
    /// function. On the host, `ntsim::wdf` defines it.
    pub static mut WdfDriverGlobals: PWDF_DRIVER_GLOBALS;
    /// `WdfFunctionCount` (wdffuncenum.h, KMDF >= 1.25): the number of usable table entries.
    /// On the host, `ntsim::wdf` defines it.
    pub static mut WdfFunctionCount: ULONG;
}

/// What wdk-sys's `wdf` module exposes to the macro.
pub mod wdf {
    #[doc(hidden)]
    pub mod __private {
        /// The number of entries in `WdfFunctions` (KMDF >= 1.25: `WdfFunctionCount`), as
        /// wdk-sys 0.5.2's generated `get_wdf_function_count`.
        #[allow(clippy::must_use_candidate)]
        pub fn get_wdf_function_count() -> usize {
            // SAFETY: written only by the binding, before the driver runs.
            (unsafe { crate::WdfFunctionCount }) as usize
        }
    }
}

// ---- The WDF functions kmdf.rs calls: PFN_ types as bindgen generates them ----

/// `PFN_WDFDRIVERCREATE` (wdfdriver.h).
pub type PFN_WDFDRIVERCREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DriverObject: PDRIVER_OBJECT,
        RegistryPath: PCUNICODE_STRING,
        DriverAttributes: PWDF_OBJECT_ATTRIBUTES,
        DriverConfig: PWDF_DRIVER_CONFIG,
        Driver: *mut WDFDRIVER,
    ) -> NTSTATUS,
>;
/// `PFN_WDFCONTROLDEVICEINITALLOCATE` (wdfcontrol.h).
pub type PFN_WDFCONTROLDEVICEINITALLOCATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Driver: WDFDRIVER,
        SDDLString: *const UNICODE_STRING,
    ) -> PWDFDEVICE_INIT,
>;
/// `PFN_WDFCONTROLFINISHINITIALIZING` (wdfcontrol.h).
pub type PFN_WDFCONTROLFINISHINITIALIZING =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Device: WDFDEVICE)>;
/// `PFN_WDFDEVICEINITSETDEVICETYPE` (wdfdevice.h).
pub type PFN_WDFDEVICEINITSETDEVICETYPE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        DeviceType: DEVICE_TYPE,
    ),
>;
/// `PFN_WDFDEVICEINITSETCHARACTERISTICS` (wdfdevice.h).
pub type PFN_WDFDEVICEINITSETCHARACTERISTICS = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        DeviceCharacteristics: ULONG,
        OrInValues: BOOLEAN,
    ),
>;
/// `PFN_WDFDEVICEINITSETFILEOBJECTCONFIG` (wdfdevice.h).
pub type PFN_WDFDEVICEINITSETFILEOBJECTCONFIG = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        FileObjectConfig: PWDF_FILEOBJECT_CONFIG,
        FileObjectAttributes: PWDF_OBJECT_ATTRIBUTES,
    ),
>;
/// `PFN_WDFDEVICEINITSETREQUESTATTRIBUTES` (wdfdevice.h).
pub type PFN_WDFDEVICEINITSETREQUESTATTRIBUTES = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        RequestAttributes: PWDF_OBJECT_ATTRIBUTES,
    ),
>;
/// `PFN_WDFOBJECTGETTYPEDCONTEXTWORKER` (wdfobject.h; `FASTCALL`, which x64 ignores): what
/// a `WDF_DECLARE_CONTEXT_TYPE` accessor calls.
pub type PFN_WDFOBJECTGETTYPEDCONTEXTWORKER = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Handle: WDFOBJECT,
        TypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    ) -> PVOID,
>;
/// `PFN_WDFDEVICEINITASSIGNNAME` (wdfdevice.h).
pub type PFN_WDFDEVICEINITASSIGNNAME = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        DeviceName: PCUNICODE_STRING,
    ) -> NTSTATUS,
>;
/// `PFN_WDFDEVICEINITFREE` (wdfdevice.h).
pub type PFN_WDFDEVICEINITFREE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, DeviceInit: PWDFDEVICE_INIT)>;
/// `PFN_WDFDEVICECREATE` (wdfdevice.h).
pub type PFN_WDFDEVICECREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: *mut PWDFDEVICE_INIT,
        DeviceAttributes: PWDF_OBJECT_ATTRIBUTES,
        Device: *mut WDFDEVICE,
    ) -> NTSTATUS,
>;
/// `PFN_WDFDEVICECREATESYMBOLICLINK` (wdfdevice.h).
pub type PFN_WDFDEVICECREATESYMBOLICLINK = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Device: WDFDEVICE,
        SymbolicLinkName: PCUNICODE_STRING,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOQUEUECREATE` (wdfio.h).
pub type PFN_WDFIOQUEUECREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Device: WDFDEVICE,
        Config: PWDF_IO_QUEUE_CONFIG,
        QueueAttributes: PWDF_OBJECT_ATTRIBUTES,
        Queue: *mut WDFQUEUE,
    ) -> NTSTATUS,
>;
/// `PFN_WDFOBJECTDELETE` (wdfobject.h).
pub type PFN_WDFOBJECTDELETE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Object: WDFOBJECT)>;
/// `PFN_WDFDEVICEWDMGETDEVICEOBJECT` (wdfdevice.h).
pub type PFN_WDFDEVICEWDMGETDEVICEOBJECT = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Device: WDFDEVICE) -> PDEVICE_OBJECT,
>;
/// `PFN_WDFFILEOBJECTWDMGETFILEOBJECT` (wdffileobject.h).
pub type PFN_WDFFILEOBJECTWDMGETFILEOBJECT = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        FileObject: WDFFILEOBJECT,
    ) -> PFILE_OBJECT,
>;
/// `PFN_WDFREQUESTCOMPLETE` (wdfrequest.h).
pub type PFN_WDFREQUESTCOMPLETE = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST, Status: NTSTATUS),
>;
/// `PFN_WDFREQUESTCOMPLETEWITHINFORMATION` (wdfrequest.h).
pub type PFN_WDFREQUESTCOMPLETEWITHINFORMATION = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        Status: NTSTATUS,
        Information: ULONG_PTR,
    ),
>;
/// `PFN_WDFREQUESTUNMARKCANCELABLE` (wdfrequest.h).
pub type PFN_WDFREQUESTUNMARKCANCELABLE = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTMARKCANCELABLEEX` (wdfrequest.h).
pub type PFN_WDFREQUESTMARKCANCELABLEEX = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
    ) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTGETFILEOBJECT` (wdfrequest.h).
pub type PFN_WDFREQUESTGETFILEOBJECT = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> WDFFILEOBJECT,
>;
/// `PFN_WDFREQUESTRETRIEVEINPUTBUFFER` (wdfrequest.h). Lengths in bytes.
pub type PFN_WDFREQUESTRETRIEVEINPUTBUFFER = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        MinimumRequiredLength: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER` (wdfrequest.h). Lengths in bytes.
pub type PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        MinimumRequiredSize: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTRETRIEVEOUTPUTWDMMDL` (wdfrequest.h).
pub type PFN_WDFREQUESTRETRIEVEOUTPUTWDMMDL = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        Mdl: *mut PMDL,
    ) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTGETREQUESTORMODE` (wdfrequest.h).
pub type PFN_WDFREQUESTGETREQUESTORMODE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
    ) -> KPROCESSOR_MODE,
>;

// ---- Compile-time layout checks (x64; figures and sources in tests/layout.rs) ----

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<WDF_DRIVER_CONFIG>() == 32);
    assert!(offset_of!(WDF_DRIVER_CONFIG, EvtDriverUnload) == 16);
    assert!(offset_of!(WDF_DRIVER_CONFIG, DriverInitFlags) == 24);
    assert!(size_of::<WDF_FILEOBJECT_CONFIG>() == 40);
    assert!(offset_of!(WDF_FILEOBJECT_CONFIG, FileObjectClass) == 36);
    assert!(size_of::<WDF_IO_QUEUE_CONFIG>() == 96);
    assert!(offset_of!(WDF_IO_QUEUE_CONFIG, DefaultQueue) == 13);
    assert!(offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoDeviceControl) == 40);
    assert!(offset_of!(WDF_IO_QUEUE_CONFIG, Settings) == 80);
    assert!(offset_of!(WDF_IO_QUEUE_CONFIG, Driver) == 88);
    assert!(size_of::<WDF_OBJECT_ATTRIBUTES>() == 56);
    assert!(offset_of!(WDF_OBJECT_ATTRIBUTES, ExecutionLevel) == 24);
    assert!(size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() == 40);
    assert!(size_of::<WDF_DRIVER_GLOBALS>() == 56);
    assert!(offset_of!(WDF_DRIVER_GLOBALS, DisplaceDriverUnload) == 48);
    assert!(offset_of!(FILE_OBJECT, FsContext) == 24);
    assert!(size_of::<FILE_OBJECT>() == 216);
    assert!(size_of::<DRIVER_OBJECT>() == 336);
    assert!(size_of::<MDL>() == 48);
};
