//! The KMDF 1.33 structures and callback types the model reads, laid out as the public KMDF
//! headers declare them (`wdfdriver.h`, `wdfdevice.h`, `wdfio.h`, `wdfobject.h`,
//! `wdfrequest.h` of Windows-Driver-Frameworks, `src/publicinc/wdf/kmdf/1.33`; x64 layout).
//! Handles are opaque pointers, as wdk-sys declares them.

#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::c_void;

/// `WDFOBJECT` and the other framework handles: opaque, never dereferenced by a driver.
pub type WDFOBJECT = *mut c_void;
/// `WDFDRIVER`.
pub type WDFDRIVER = WDFOBJECT;
/// `WDFDEVICE`.
pub type WDFDEVICE = WDFOBJECT;
/// `WDFQUEUE`.
pub type WDFQUEUE = WDFOBJECT;
/// `WDFREQUEST`.
pub type WDFREQUEST = WDFOBJECT;
/// `WDFFILEOBJECT`.
pub type WDFFILEOBJECT = WDFOBJECT;
/// `PWDFDEVICE_INIT`: an opaque framework allocation.
pub type PWDFDEVICE_INIT = *mut c_void;
/// `PWDF_DRIVER_GLOBALS`: what every WDF function takes first.
pub type PWDF_DRIVER_GLOBALS = *mut WDF_DRIVER_GLOBALS;

/// `WDF_DRIVER_GLOBALS` (wdfglobals.h).
#[repr(C)]
pub struct WDF_DRIVER_GLOBALS {
    /// `Driver`.
    pub Driver: WDFDRIVER,
    /// `DriverFlags`.
    pub DriverFlags: u32,
    /// `DriverTag`.
    pub DriverTag: u32,
    /// `DriverName`.
    pub DriverName: [u8; 32],
    /// `DisplaceDriverUnload`.
    pub DisplaceDriverUnload: u8,
}

/// `EVT_WDF_DRIVER_UNLOAD`.
pub type PFN_WDF_DRIVER_UNLOAD = Option<unsafe extern "C" fn(WDFDRIVER)>;
/// `EVT_WDF_DRIVER_DEVICE_ADD`.
pub type PFN_WDF_DRIVER_DEVICE_ADD =
    Option<unsafe extern "C" fn(WDFDRIVER, PWDFDEVICE_INIT) -> i32>;
/// `EVT_WDF_DEVICE_FILE_CREATE`.
pub type PFN_WDF_DEVICE_FILE_CREATE =
    Option<unsafe extern "C" fn(WDFDEVICE, WDFREQUEST, WDFFILEOBJECT)>;
/// `EVT_WDF_FILE_CLOSE` / `EVT_WDF_FILE_CLEANUP`.
pub type PFN_WDF_FILE_EVENT = Option<unsafe extern "C" fn(WDFFILEOBJECT)>;
/// `EVT_WDF_IO_QUEUE_IO_DEFAULT`.
pub type PFN_WDF_IO_QUEUE_IO_DEFAULT = Option<unsafe extern "C" fn(WDFQUEUE, WDFREQUEST)>;
/// `EVT_WDF_IO_QUEUE_IO_READ` / `_WRITE`.
pub type PFN_WDF_IO_QUEUE_IO_READ_WRITE = Option<unsafe extern "C" fn(WDFQUEUE, WDFREQUEST, usize)>;
/// `EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL` (also the internal one): queue, request,
/// OutputBufferLength, InputBufferLength, IoControlCode.
pub type PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL =
    Option<unsafe extern "C" fn(WDFQUEUE, WDFREQUEST, usize, usize, u32)>;
/// `EVT_WDF_IO_QUEUE_IO_STOP`.
pub type PFN_WDF_IO_QUEUE_IO_STOP = Option<unsafe extern "C" fn(WDFQUEUE, WDFREQUEST, u32)>;
/// `EVT_WDF_IO_QUEUE_IO_RESUME` / `_CANCELED_ON_QUEUE`.
pub type PFN_WDF_IO_QUEUE_IO_REQUEST = Option<unsafe extern "C" fn(WDFQUEUE, WDFREQUEST)>;
/// `EVT_WDF_REQUEST_CANCEL`.
pub type PFN_WDF_REQUEST_CANCEL = Option<unsafe extern "C" fn(WDFREQUEST)>;
/// `EVT_WDF_OBJECT_CONTEXT_CLEANUP` / `_DESTROY`.
pub type PFN_WDF_OBJECT_CONTEXT = Option<unsafe extern "C" fn(WDFOBJECT)>;

/// `WDF_DRIVER_CONFIG` (wdfdriver.h): 32 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WDF_DRIVER_CONFIG {
    /// `Size`.
    pub Size: u32,
    /// `EvtDriverDeviceAdd`.
    pub EvtDriverDeviceAdd: PFN_WDF_DRIVER_DEVICE_ADD,
    /// `EvtDriverUnload`.
    pub EvtDriverUnload: PFN_WDF_DRIVER_UNLOAD,
    /// `DriverInitFlags` (`WDF_DRIVER_INIT_FLAGS`).
    pub DriverInitFlags: u32,
    /// `DriverPoolTag`.
    pub DriverPoolTag: u32,
}

/// `WdfDriverInitNonPnpDriver`.
pub const WDF_DRIVER_INIT_NON_PNP_DRIVER: u32 = 0x1;
/// `WdfDriverInitNoDispatchOverride`.
pub const WDF_DRIVER_INIT_NO_DISPATCH_OVERRIDE: u32 = 0x2;

/// `WDF_EXECUTION_LEVEL`.
pub mod execution_level {
    /// `WdfExecutionLevelInvalid`.
    pub const INVALID: i32 = 0;
    /// `WdfExecutionLevelInheritFromParent`.
    pub const INHERIT_FROM_PARENT: i32 = 1;
    /// `WdfExecutionLevelPassive`.
    pub const PASSIVE: i32 = 2;
    /// `WdfExecutionLevelDispatch`.
    pub const DISPATCH: i32 = 3;
}

/// `WDF_OBJECT_ATTRIBUTES` (wdfobject.h): 56 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WDF_OBJECT_ATTRIBUTES {
    /// `Size`.
    pub Size: u32,
    /// `EvtCleanupCallback`.
    pub EvtCleanupCallback: PFN_WDF_OBJECT_CONTEXT,
    /// `EvtDestroyCallback`.
    pub EvtDestroyCallback: PFN_WDF_OBJECT_CONTEXT,
    /// `ExecutionLevel` (`WDF_EXECUTION_LEVEL`).
    pub ExecutionLevel: i32,
    /// `SynchronizationScope` (`WDF_SYNCHRONIZATION_SCOPE`).
    pub SynchronizationScope: i32,
    /// `ParentObject`.
    pub ParentObject: WDFOBJECT,
    /// `ContextSizeOverride`.
    pub ContextSizeOverride: usize,
    /// `ContextTypeInfo`.
    pub ContextTypeInfo: *const WDF_OBJECT_CONTEXT_TYPE_INFO,
}

/// `WDF_OBJECT_CONTEXT_TYPE_INFO` (wdfobject.h): 40 bytes.
#[repr(C)]
pub struct WDF_OBJECT_CONTEXT_TYPE_INFO {
    /// `Size`.
    pub Size: u32,
    /// `ContextName` (`PCHAR`).
    pub ContextName: *const u8,
    /// `ContextSize`.
    pub ContextSize: usize,
    /// `UniqueType`: the type's identity (points to the declared info itself).
    pub UniqueType: *const WDF_OBJECT_CONTEXT_TYPE_INFO,
    /// `EvtDriverGetUniqueContextType`.
    pub EvtDriverGetUniqueContextType: *const c_void,
}

/// `WDF_FILEOBJECT_CONFIG` (wdfdevice.h): 40 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WDF_FILEOBJECT_CONFIG {
    /// `Size`.
    pub Size: u32,
    /// `EvtDeviceFileCreate`.
    pub EvtDeviceFileCreate: PFN_WDF_DEVICE_FILE_CREATE,
    /// `EvtFileClose`.
    pub EvtFileClose: PFN_WDF_FILE_EVENT,
    /// `EvtFileCleanup`.
    pub EvtFileCleanup: PFN_WDF_FILE_EVENT,
    /// `AutoForwardCleanupClose` (`WDF_TRI_STATE`).
    pub AutoForwardCleanupClose: i32,
    /// `FileObjectClass` (`WDF_FILEOBJECT_CLASS`).
    pub FileObjectClass: i32,
}

/// `WDF_IO_QUEUE_DISPATCH_TYPE`.
pub mod dispatch_type {
    /// `WdfIoQueueDispatchSequential`.
    pub const SEQUENTIAL: i32 = 1;
    /// `WdfIoQueueDispatchParallel`.
    pub const PARALLEL: i32 = 2;
    /// `WdfIoQueueDispatchManual`.
    pub const MANUAL: i32 = 3;
}

/// `WDF_IO_QUEUE_CONFIG` (wdfio.h, KMDF 1.9 and later): 96 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WDF_IO_QUEUE_CONFIG {
    /// `Size`.
    pub Size: u32,
    /// `DispatchType` (`WDF_IO_QUEUE_DISPATCH_TYPE`).
    pub DispatchType: i32,
    /// `PowerManaged` (`WDF_TRI_STATE`).
    pub PowerManaged: i32,
    /// `AllowZeroLengthRequests`.
    pub AllowZeroLengthRequests: u8,
    /// `DefaultQueue`.
    pub DefaultQueue: u8,
    /// `EvtIoDefault`.
    pub EvtIoDefault: PFN_WDF_IO_QUEUE_IO_DEFAULT,
    /// `EvtIoRead`.
    pub EvtIoRead: PFN_WDF_IO_QUEUE_IO_READ_WRITE,
    /// `EvtIoWrite`.
    pub EvtIoWrite: PFN_WDF_IO_QUEUE_IO_READ_WRITE,
    /// `EvtIoDeviceControl`.
    pub EvtIoDeviceControl: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    /// `EvtIoInternalDeviceControl`.
    pub EvtIoInternalDeviceControl: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    /// `EvtIoStop`.
    pub EvtIoStop: PFN_WDF_IO_QUEUE_IO_STOP,
    /// `EvtIoResume`.
    pub EvtIoResume: PFN_WDF_IO_QUEUE_IO_REQUEST,
    /// `EvtIoCanceledOnQueue`.
    pub EvtIoCanceledOnQueue: PFN_WDF_IO_QUEUE_IO_REQUEST,
    /// `Settings.Parallel.NumberOfPresentedRequests`.
    pub NumberOfPresentedRequests: u32,
    /// `Driver`.
    pub Driver: WDFDRIVER,
}

const _: () = {
    assert!(std::mem::size_of::<WDF_DRIVER_CONFIG>() == 32);
    assert!(std::mem::size_of::<WDF_OBJECT_ATTRIBUTES>() == 56);
    assert!(std::mem::size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() == 40);
    assert!(std::mem::size_of::<WDF_FILEOBJECT_CONFIG>() == 40);
    assert!(std::mem::size_of::<WDF_IO_QUEUE_CONFIG>() == 96);
    assert!(std::mem::offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoDeviceControl) == 40);
    assert!(std::mem::offset_of!(WDF_IO_QUEUE_CONFIG, NumberOfPresentedRequests) == 80);
    assert!(std::mem::offset_of!(WDF_OBJECT_ATTRIBUTES, ExecutionLevel) == 24);
    assert!(std::mem::offset_of!(WDF_OBJECT_ATTRIBUTES, ContextTypeInfo) == 48);
};
