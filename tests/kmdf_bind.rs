//! The KMDF front-end (`src/kmdf.rs`), compiled on the host against `wdk-sys-standin`, runs on
//! `ntsim::wdf`: every WDF call indexes the function table the model binds at
//! `WdfFunctions_01033` and passes `WdfDriverGlobals` first, as a KMDF driver reaches
//! Wdf01000.sys through the table wdfldr binds. (Requests through the front-end: the driver
//! tests; this file checks the binding and the load/open/close/unload path.)
#![cfg(feature = "kmdf")]

use ntsim::{iomgr, wdf};
use wdk_sys_standin::_WDFFUNCENUM::*;

/// The table indices of the WDF functions src/kmdf.rs calls (wdffuncenum.h, KMDF 1.33).
const CALLED_BY_KMDF_RS: [Type; 23] = [
    WdfControlDeviceInitAllocateTableIndex,
    WdfControlFinishInitializingTableIndex,
    WdfDeviceWdmGetDeviceObjectTableIndex,
    WdfDeviceInitFreeTableIndex,
    WdfDeviceInitSetDeviceTypeTableIndex,
    WdfDeviceInitAssignNameTableIndex,
    WdfDeviceInitSetCharacteristicsTableIndex,
    WdfDeviceInitSetFileObjectConfigTableIndex,
    WdfDeviceCreateTableIndex,
    WdfDeviceCreateSymbolicLinkTableIndex,
    WdfDriverCreateTableIndex,
    WdfFileObjectWdmGetFileObjectTableIndex,
    WdfIoQueueCreateTableIndex,
    WdfObjectDeleteTableIndex,
    WdfRequestUnmarkCancelableTableIndex,
    WdfRequestCompleteTableIndex,
    WdfRequestCompleteWithInformationTableIndex,
    WdfRequestRetrieveInputBufferTableIndex,
    WdfRequestRetrieveOutputBufferTableIndex,
    WdfRequestRetrieveOutputWdmMdlTableIndex,
    WdfRequestGetFileObjectTableIndex,
    WdfRequestGetRequestorModeTableIndex,
    WdfRequestMarkCancelableExTableIndex,
];

#[test]
fn kmdf_front_end_loads_opens_closes_and_unloads_on_the_model() {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    let driver = wdf::load_driver(wskclient::KmdfDriverEntry, "wskclient").expect("DriverEntry");
    // SAFETY: bound by load_driver; the driver does not write them.
    let (table, count, globals) = unsafe {
        (
            wdf::WdfFunctions_01033,
            wdf::WdfFunctionCount,
            wdf::WdfDriverGlobals,
        )
    };
    assert_eq!(count, 458, "WdfFunctionTableNumEntries of KMDF 1.33");
    assert_eq!(globals, wdf::driver_globals());
    // SAFETY: the model's table of `count` entries.
    let entries = unsafe { std::slice::from_raw_parts(table, count as usize) };
    for index in CALLED_BY_KMDF_RS {
        assert!(
            entries.get(index as usize).copied().flatten().is_some(),
            "table entry {index} (a function kmdf.rs calls) is bound"
        );
    }
    assert_eq!(
        iomgr::device_sddl("\\Device\\WskClient").as_deref(),
        Some(wskclient::wide::SDDL),
        "WdfControlDeviceInitAllocate got the SDDL as wdk-sys's UNICODE_STRING"
    );
    let h = iomgr::open(wskclient_ioctl::USER_PATH).expect("EvtDeviceFileCreate accepted");
    drop(h);
    driver
        .unload()
        .expect("EvtDriverUnload deleted the control device");
    assert_eq!(wdf::live_objects(), 0, "every framework object deleted");
    scope.assert_clean();
}
