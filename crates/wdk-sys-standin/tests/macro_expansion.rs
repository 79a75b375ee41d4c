//! `call_unsafe_wdf_function_binding!` expands as wdk-macros 0.5.2 does: it calls the entry
//! `WdfFunctions[<Name>TableIndex]` (a table of `WdfFunctionCount` entries), typed as
//! `PFN_<NAME>`, with `WdfDriverGlobals` first and the arguments after it. This test binary
//! defines the three symbols itself (as ntsim does for the driver) with a table whose every
//! entry records its own index, so a wrong index, a missing globals pointer or a reordered
//! argument shows.
#![allow(non_upper_case_globals)]

use std::sync::Mutex;

use wdk_sys_standin::*;

const ENTRIES: usize = _WDFFUNCENUM::WdfFunctionTableNumEntries as usize;

#[no_mangle]
static mut WdfFunctions_01033: *const WDFFUNC = std::ptr::null();
#[no_mangle]
static mut WdfDriverGlobals: PWDF_DRIVER_GLOBALS = std::ptr::null_mut();
#[no_mangle]
static mut WdfFunctionCount: ULONG = 0;

/// (entry index, globals, request, status, information) of a call.
type Call = (usize, usize, usize, i32, u64);
static SEEN: Mutex<Vec<Call>> = Mutex::new(Vec::new());

unsafe extern "C" fn complete(g: PWDF_DRIVER_GLOBALS, r: WDFREQUEST, s: NTSTATUS) {
    SEEN.lock()
        .unwrap()
        .push((263, g as usize, r as usize, s, 0));
}

unsafe extern "C" fn complete_with_information(
    g: PWDF_DRIVER_GLOBALS,
    r: WDFREQUEST,
    s: NTSTATUS,
    i: ULONG_PTR,
) {
    SEEN.lock()
        .unwrap()
        .push((265, g as usize, r as usize, s, i));
}

unsafe extern "C" fn wrong_entry() {
    panic!("the macro called an entry other than the function's index");
}

#[test]
fn calls_the_indexed_entry_with_the_globals_first() {
    let mut table: Vec<WDFFUNC> = vec![Some(wrong_entry); ENTRIES];
    let c: PFN_WDFREQUESTCOMPLETE = Some(complete);
    let ci: PFN_WDFREQUESTCOMPLETEWITHINFORMATION = Some(complete_with_information);
    // SAFETY: Option<fn> to Option<fn>, same size; transmuted back by the macro.
    unsafe {
        table[263] = std::mem::transmute::<PFN_WDFREQUESTCOMPLETE, WDFFUNC>(c);
        table[265] = std::mem::transmute::<PFN_WDFREQUESTCOMPLETEWITHINFORMATION, WDFFUNC>(ci);
    }
    let mut globals = WDF_DRIVER_GLOBALS::default();
    let request = 0x1234usize as WDFREQUEST;
    // SAFETY: the test owns these symbols; single-threaded test.
    unsafe {
        WdfFunctions_01033 = table.as_ptr();
        WdfFunctionCount = ENTRIES as ULONG;
        WdfDriverGlobals = &mut globals;
    }
    // SAFETY: the entries above have these signatures.
    unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestComplete, request, STATUS_CANCELLED);
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request,
            STATUS_SUCCESS,
            42,
        );
    }
    let g = &mut globals as *mut _ as usize;
    assert_eq!(
        *SEEN.lock().unwrap(),
        [
            (263, g, 0x1234, STATUS_CANCELLED, 0),
            (265, g, 0x1234, STATUS_SUCCESS, 42)
        ]
    );
}
