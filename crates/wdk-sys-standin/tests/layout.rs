//! The stand-in's x64 layouts against the published KMDF headers and against windows-sys.
//!
//! WDF figures: from the declarations in Microsoft's public KMDF **1.33** headers
//! (github.com/microsoft/Windows-Driver-Frameworks, `src/publicinc/wdf/kmdf/1.33/`, the
//! version `Cargo.toml` targets: `target-kmdf-version-minor = 33`), laid out by the x64 rules
//! (natural alignment; `ULONG`/enums 4 bytes, pointers and `size_t` 8, `BOOLEAN`/`CHAR` 1).
//! The header and structure are named at each check. Function-table indices: `wdffuncenum.h`
//! of KMDF 1.33 (`WdfFunctionTableNumEntries = 458`).
//!
//! Kernel structures (`DRIVER_OBJECT`, `FILE_OBJECT`, `MDL`, `UNICODE_STRING`): compared
//! field by field with windows-sys 0.61 (generated from Microsoft's Windows metadata), whose
//! layouts `ntsim` hands to the driver.
#![cfg(target_pointer_width = "64")]

use std::mem::{offset_of, size_of};

use wdk_sys_standin::*;

#[test]
fn wdf_driver_config_matches_wdfdriver_h() {
    // wdfdriver.h (KMDF 1.33), WDF_DRIVER_CONFIG.
    assert_eq!(size_of::<WDF_DRIVER_CONFIG>(), 32);
    assert_eq!(offset_of!(WDF_DRIVER_CONFIG, Size), 0);
    assert_eq!(offset_of!(WDF_DRIVER_CONFIG, EvtDriverDeviceAdd), 8);
    assert_eq!(offset_of!(WDF_DRIVER_CONFIG, EvtDriverUnload), 16);
    assert_eq!(offset_of!(WDF_DRIVER_CONFIG, DriverInitFlags), 24);
    assert_eq!(offset_of!(WDF_DRIVER_CONFIG, DriverPoolTag), 28);
    // wdfdriver.h: WDF_DRIVER_INIT_FLAGS.
    assert_eq!(_WDF_DRIVER_INIT_FLAGS::WdfDriverInitNonPnpDriver, 1);
}

#[test]
fn wdf_fileobject_config_matches_wdfdevice_h() {
    // wdfdevice.h (KMDF 1.33), WDF_FILEOBJECT_CONFIG.
    assert_eq!(size_of::<WDF_FILEOBJECT_CONFIG>(), 40);
    assert_eq!(offset_of!(WDF_FILEOBJECT_CONFIG, Size), 0);
    assert_eq!(offset_of!(WDF_FILEOBJECT_CONFIG, EvtDeviceFileCreate), 8);
    assert_eq!(offset_of!(WDF_FILEOBJECT_CONFIG, EvtFileClose), 16);
    assert_eq!(offset_of!(WDF_FILEOBJECT_CONFIG, EvtFileCleanup), 24);
    assert_eq!(
        offset_of!(WDF_FILEOBJECT_CONFIG, AutoForwardCleanupClose),
        32
    );
    assert_eq!(offset_of!(WDF_FILEOBJECT_CONFIG, FileObjectClass), 36);
    // wdfdevice.h: WDF_FILEOBJECT_CLASS; wdftypes.h: WDF_TRI_STATE.
    assert_eq!(
        _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
        4
    );
    assert_eq!(_WDF_TRI_STATE::WdfUseDefault, 2);
}

#[test]
fn wdf_io_queue_config_matches_wdfio_h() {
    // wdfio.h (KMDF 1.33), WDF_IO_QUEUE_CONFIG.
    assert_eq!(size_of::<WDF_IO_QUEUE_CONFIG>(), 96);
    let offsets = [
        (offset_of!(WDF_IO_QUEUE_CONFIG, Size), 0),
        (offset_of!(WDF_IO_QUEUE_CONFIG, DispatchType), 4),
        (offset_of!(WDF_IO_QUEUE_CONFIG, PowerManaged), 8),
        (offset_of!(WDF_IO_QUEUE_CONFIG, AllowZeroLengthRequests), 12),
        (offset_of!(WDF_IO_QUEUE_CONFIG, DefaultQueue), 13),
        (offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoDefault), 16),
        (offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoRead), 24),
        (offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoWrite), 32),
        (offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoDeviceControl), 40),
        (
            offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoInternalDeviceControl),
            48,
        ),
        (offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoStop), 56),
        (offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoResume), 64),
        (offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoCanceledOnQueue), 72),
        (offset_of!(WDF_IO_QUEUE_CONFIG, Settings), 80),
        (offset_of!(WDF_IO_QUEUE_CONFIG, Driver), 88),
    ];
    for (i, (got, want)) in offsets.iter().enumerate() {
        assert_eq!(got, want, "field #{i} of WDF_IO_QUEUE_CONFIG");
    }
    // Settings.Parallel.NumberOfPresentedRequests: a ULONG at the union's start.
    assert_eq!(size_of::<_WDF_IO_QUEUE_CONFIG__bindgen_ty_1>(), 4);
    // wdfio.h: WDF_IO_QUEUE_DISPATCH_TYPE.
    assert_eq!(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel, 2);
}

#[test]
fn wdf_object_attributes_match_wdfobject_h() {
    // wdfobject.h (KMDF 1.33), WDF_OBJECT_ATTRIBUTES.
    assert_eq!(size_of::<WDF_OBJECT_ATTRIBUTES>(), 56);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, Size), 0);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, EvtCleanupCallback), 8);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, EvtDestroyCallback), 16);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, ExecutionLevel), 24);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, SynchronizationScope), 28);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, ParentObject), 32);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, ContextSizeOverride), 40);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, ContextTypeInfo), 48);
    // wdfobject.h: WDF_EXECUTION_LEVEL.
    assert_eq!(_WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive, 2);
    // wdfobject.h (KMDF 1.33), WDF_OBJECT_CONTEXT_TYPE_INFO.
    assert_eq!(size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>(), 40);
    assert_eq!(offset_of!(WDF_OBJECT_CONTEXT_TYPE_INFO, Size), 0);
    assert_eq!(offset_of!(WDF_OBJECT_CONTEXT_TYPE_INFO, ContextName), 8);
    assert_eq!(offset_of!(WDF_OBJECT_CONTEXT_TYPE_INFO, ContextSize), 16);
    assert_eq!(offset_of!(WDF_OBJECT_CONTEXT_TYPE_INFO, UniqueType), 24);
    assert_eq!(
        offset_of!(WDF_OBJECT_CONTEXT_TYPE_INFO, EvtDriverGetUniqueContextType),
        32
    );
}

#[test]
fn wdf_driver_globals_match_wdfglobals_h() {
    // wdfglobals.h (KMDF 1.33), WDF_DRIVER_GLOBALS; WDF_DRIVER_GLOBALS_NAME_LEN = 32.
    assert_eq!(size_of::<WDF_DRIVER_GLOBALS>(), 56);
    assert_eq!(offset_of!(WDF_DRIVER_GLOBALS, Driver), 0);
    assert_eq!(offset_of!(WDF_DRIVER_GLOBALS, DriverFlags), 8);
    assert_eq!(offset_of!(WDF_DRIVER_GLOBALS, DriverTag), 12);
    assert_eq!(offset_of!(WDF_DRIVER_GLOBALS, DriverName), 16);
    assert_eq!(offset_of!(WDF_DRIVER_GLOBALS, DisplaceDriverUnload), 48);
    assert_eq!(WDF_DRIVER_GLOBALS_NAME_LEN, 32);
}

#[test]
fn function_table_indices_match_wdffuncenum_h() {
    // wdffuncenum.h (KMDF 1.33), enum _WDFFUNCENUM.
    use _WDFFUNCENUM::*;
    let want = [
        (WdfControlDeviceInitAllocateTableIndex, 25),
        (WdfControlFinishInitializingTableIndex, 27),
        (WdfDeviceWdmGetDeviceObjectTableIndex, 31),
        (WdfDeviceInitFreeTableIndex, 54),
        (WdfDeviceInitSetDeviceTypeTableIndex, 66),
        (WdfDeviceInitAssignNameTableIndex, 67),
        (WdfDeviceInitSetCharacteristicsTableIndex, 70),
        (WdfDeviceInitSetFileObjectConfigTableIndex, 71),
        (WdfDeviceInitSetRequestAttributesTableIndex, 72),
        (WdfDeviceCreateTableIndex, 75),
        (WdfDeviceCreateSymbolicLinkTableIndex, 80),
        (WdfDriverCreateTableIndex, 116),
        (WdfFileObjectWdmGetFileObjectTableIndex, 140),
        (WdfIoQueueCreateTableIndex, 152),
        (WdfObjectGetTypedContextWorkerTableIndex, 202),
        (WdfObjectDeleteTableIndex, 208),
        (WdfRequestUnmarkCancelableTableIndex, 256),
        (WdfRequestCompleteTableIndex, 263),
        (WdfRequestCompleteWithInformationTableIndex, 265),
        (WdfRequestRetrieveInputBufferTableIndex, 269),
        (WdfRequestRetrieveOutputBufferTableIndex, 270),
        (WdfRequestRetrieveOutputWdmMdlTableIndex, 272),
        (WdfRequestGetFileObjectTableIndex, 277),
        (WdfRequestGetRequestorModeTableIndex, 280),
        (WdfRequestMarkCancelableExTableIndex, 393),
        (WdfFunctionTableNumEntries, 458),
    ];
    for (i, (got, want)) in want.iter().enumerate() {
        assert_eq!(got, want, "entry #{i}");
    }
}

/// Asserts that two structures have the same size and the same offsets for the listed
/// fields.
macro_rules! same_layout {
    ($a:ty, $b:ty, [$($f:ident),* $(,)?]) => {{
        assert_eq!(size_of::<$a>(), size_of::<$b>(), "size of {}", stringify!($a));
        assert_eq!(std::mem::align_of::<$a>(), std::mem::align_of::<$b>());
        $(assert_eq!(
            offset_of!($a, $f),
            offset_of!($b, $f),
            "{}.{}",
            stringify!($a),
            stringify!($f)
        );)*
    }};
}

#[test]
fn kernel_structures_match_windows_sys() {
    use windows_sys::Wdk::Foundation as ws;
    same_layout!(
        UNICODE_STRING,
        windows_sys::Win32::Foundation::UNICODE_STRING,
        [Length, MaximumLength, Buffer]
    );
    same_layout!(
        DRIVER_OBJECT,
        ws::DRIVER_OBJECT,
        [
            Type,
            Size,
            DeviceObject,
            Flags,
            DriverStart,
            DriverSize,
            DriverSection,
            DriverExtension,
            DriverName,
            HardwareDatabase,
            FastIoDispatch,
            DriverInit,
            DriverStartIo,
            DriverUnload,
            MajorFunction,
        ]
    );
    same_layout!(
        FILE_OBJECT,
        ws::FILE_OBJECT,
        [
            Type,
            Size,
            DeviceObject,
            Vpb,
            FsContext,
            FsContext2,
            SectionObjectPointer,
            PrivateCacheMap,
            FinalStatus,
            RelatedFileObject,
            LockOperation,
            DeletePending,
            ReadAccess,
            WriteAccess,
            DeleteAccess,
            SharedRead,
            SharedWrite,
            SharedDelete,
            Flags,
            FileName,
            CurrentByteOffset,
            Waiters,
            Busy,
            LastLock,
            Lock,
            Event,
            CompletionContext,
            IrpListLock,
            IrpList,
            FileObjectExtension,
        ]
    );
    same_layout!(
        MDL,
        ws::MDL,
        [
            Next,
            Size,
            MdlFlags,
            Process,
            MappedSystemVa,
            StartVa,
            ByteCount,
            ByteOffset
        ]
    );
}
