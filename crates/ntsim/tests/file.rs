//! The emulated object manager: handle tables, type and access checks, references that keep
//! an object alive after its handle closes, ZwReadFile / ZwQueryInformationFile on a kernel
//! handle.

use std::ffi::c_void;

use ntsim::file::{self as f, Access};
use windows_sys::Win32::Foundation::*;
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

fn file_type() -> *const c_void {
    &f::FILE_TYPE as *const f::ObjectType as *const c_void
}

#[test]
fn reference_checks_type_access_and_outlives_the_handle() {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    let path = std::env::temp_dir().join(format!("ntsim-file-{}.bin", std::process::id()));
    std::fs::write(&path, b"0123456789").unwrap();
    let r = f::open_file(&path, Access::Read).unwrap();
    let w = f::open_file(&path, Access::Write).unwrap();
    let e = f::create_event();
    let mut obj: *mut c_void = std::ptr::null_mut();
    // SAFETY: the emulated kernel routine under test, with valid out pointers to locals and
    // handles/objects this test owns.
    let by = |h: u64, mode: i8, obj: &mut *mut c_void| unsafe {
        f::ObReferenceObjectByHandle(
            h as HANDLE,
            f::FILE_READ_DATA,
            file_type(),
            mode,
            obj,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(by(0x7777, f::USER_MODE, &mut obj), STATUS_INVALID_HANDLE);
    assert_eq!(by(e, f::USER_MODE, &mut obj), STATUS_OBJECT_TYPE_MISMATCH);
    assert_eq!(by(w, f::USER_MODE, &mut obj), STATUS_ACCESS_DENIED);
    assert_eq!(by(r, f::USER_MODE, &mut obj), STATUS_SUCCESS);
    // The caller closes its handle: the reference keeps the object.
    assert_eq!(f::close_handle(r), STATUS_SUCCESS);
    assert_eq!(f::close_handle(r), STATUS_INVALID_HANDLE);
    let mut kh: HANDLE = std::ptr::null_mut();
    // SAFETY: the emulated kernel routine under test, with valid out pointers to locals and
    // handles/objects this test owns.
    let s = unsafe {
        f::ObOpenObjectByPointer(
            obj,
            f::OBJ_KERNEL_HANDLE,
            std::ptr::null(),
            f::FILE_READ_DATA,
            file_type(),
            f::KERNEL_MODE,
            &mut kh,
        )
    };
    assert_eq!(s, STATUS_SUCCESS);
    assert!(
        (kh as u64) >> 63 == 1,
        "kernel handles have the high bit set"
    );
    assert_eq!(
        by(kh as u64, f::USER_MODE, &mut std::ptr::null_mut()),
        STATUS_INVALID_HANDLE,
        "a kernel handle is not valid for UserMode"
    );
    let mut iosb = IO_STATUS_BLOCK::default();
    let mut buf = [0u8; 4];
    let off: i64 = 3;
    // SAFETY: the emulated kernel routine under test, with valid out pointers to locals and
    // handles/objects this test owns.
    let s = unsafe {
        f::ZwReadFile(
            kh,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            &mut iosb,
            buf.as_mut_ptr().cast(),
            4,
            &off,
            std::ptr::null(),
        )
    };
    assert_eq!((s, iosb.Information, &buf), (STATUS_SUCCESS, 4, b"3456"));
    let off: i64 = 10;
    // SAFETY: the emulated kernel routine under test, with valid out pointers to locals and
    // handles/objects this test owns.
    let s = unsafe {
        f::ZwReadFile(
            kh,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            &mut iosb,
            buf.as_mut_ptr().cast(),
            4,
            &off,
            std::ptr::null(),
        )
    };
    assert_eq!(s, STATUS_END_OF_FILE);
    let mut info = f::FileStandardInformation::default();
    // SAFETY: the emulated kernel routine under test, with valid out pointers to locals and
    // handles/objects this test owns.
    let s = unsafe {
        f::ZwQueryInformationFile(
            kh,
            &mut iosb,
            (&mut info as *mut f::FileStandardInformation).cast(),
            24,
            f::FILE_STANDARD_INFORMATION_CLASS,
        )
    };
    assert_eq!((s, info.end_of_file), (STATUS_SUCCESS, 10));
    // SAFETY: the emulated kernel routine under test, with valid out pointers to locals and
    // handles/objects this test owns.
    assert_eq!(unsafe { f::ZwClose(kh) }, STATUS_SUCCESS);
    assert_eq!(
        f::live().objects,
        3,
        "read file (referenced), write file, event"
    );
    // SAFETY: the emulated kernel routine under test, with valid out pointers to locals and
    // handles/objects this test owns.
    assert_eq!(unsafe { f::ObfDereferenceObject(obj) }, 0);
    assert_eq!(f::close_handle(w), STATUS_SUCCESS);
    assert_eq!(f::close_handle(e), STATUS_SUCCESS);
    assert_eq!(f::live(), f::Live::default());
    std::fs::remove_file(&path).unwrap();
    scope.assert_clean();
}
