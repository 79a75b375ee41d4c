//! Negative case for `pecheck`: `DbgPrint` from windows-sys imports ntdll.dll.
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// `DriverEntry`: prints once through windows-sys's `DbgPrint` (an ntdll.dll import).
///
/// # Safety
/// Never loaded; the image exists only to be rejected by the PE check.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    _driver: *mut core::ffi::c_void,
    _path: *const core::ffi::c_void,
) -> i32 {
    // SAFETY: a NUL-terminated format without conversions.
    unsafe {
        windows_sys::Wdk::System::SystemServices::DbgPrint(c"ntdll-negative\n".as_ptr().cast())
    };
    0
}
