//! The I/O manager for devices: driver loading (`DriverEntry` / `DriverUnload`), device
//! objects and symbolic links, `IofCallDriver`, and user-mode handles whose `CreateFile`,
//! `DeviceIoControl`, `CancelIoEx` and `CloseHandle` become IRPs built as Windows builds them
//! (see "Buffer descriptions for I/O control codes" for the transfer methods).
//!
//! A test loads the driver with [`load_driver`], opens `\\.\Name` with [`open`], and issues
//! requests through the [`UserHandle`]; the driver sees the same DRIVER_OBJECT,
//! DEVICE_OBJECT, FILE_OBJECT, IRP and IO_STACK_LOCATION layouts it sees on Windows.

mod objects;
mod port;
mod user;
pub mod ustr;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_INVALID_PARAMETER};

pub use objects::{
    device_sddl, device_security, load_driver, symbolic_links, DriverEntry, IoCreateDevice,
    IoCreateDeviceSecure, IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink, LoadedDriver,
    WdmlibIoCreateDeviceSecure, DO_BUFFERED_IO, DO_DEVICE_INITIALIZING, DO_DIRECT_IO, DO_EXCLUSIVE,
    IO_TYPE_DEVICE, IO_TYPE_DRIVER, IRP_MJ_COUNT,
};
pub(crate) use objects::{is_device, set_device_security};
pub use port::{CompletionPacket, CompletionPort};
pub use user::{
    open, stats, IoGetCurrentProcess, IoStatus, Overlapped, Stats, UserHandle, IO_TYPE_FILE,
    IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL, KERNEL_MODE,
    METHOD_BUFFERED, METHOD_IN_DIRECT, METHOD_NEITHER, METHOD_OUT_DIRECT, USER_MODE,
};
pub use ustr::UnicodeString;

pub(crate) use user::io_completion;

use crate::irql;
use crate::verifier::{self, Rule};

/// `IofCallDriver` (what the `IoCallDriver` macro calls): passes the IRP down one stack
/// location (`IoSetNextIrpStackLocation`), sets that location's `DeviceObject`, and calls
/// the device's driver's dispatch routine for the location's major function.
///
/// # Safety
/// `DeviceObject` is a live device object; `Irp` a live IRP whose next stack location the
/// caller filled.
#[no_mangle]
pub unsafe extern "system" fn IofCallDriver(
    DeviceObject: *const DEVICE_OBJECT,
    Irp: *mut IRP,
) -> NTSTATUS {
    if irql::current() > irql::DISPATCH_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("IoCallDriver at IRQL {}", irql::current()),
        );
    }
    if DeviceObject.is_null() || !objects::is_device(DeviceObject) {
        verifier::violation(
            Rule::DriverObject,
            format!("IoCallDriver({DeviceObject:p}, {Irp:p}): not a live device object"),
        );
        return STATUS_INVALID_PARAMETER;
    }
    if !crate::irp::pass_down(Irp, "IoCallDriver", false) {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: live IRP, now at the stack location IoCallDriver moved to; live device whose
    // driver object outlives it.
    unsafe {
        let sl = crate::irp::current_stack_location(Irp);
        (*sl).DeviceObject = DeviceObject as *mut DEVICE_OBJECT;
        let major = (*sl).MajorFunction as usize;
        let driver = (*DeviceObject).DriverObject;
        if major >= IRP_MJ_COUNT || driver.is_null() {
            verifier::violation(
                Rule::DriverObject,
                format!("IoCallDriver: major function {major} or driver object {driver:p} invalid"),
            );
            return (objects::default_dispatch())(DeviceObject, Irp);
        }
        let dispatch = (*driver).MajorFunction[major].unwrap_or(objects::default_dispatch());
        dispatch(DeviceObject, Irp)
    }
}
