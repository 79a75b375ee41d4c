//! `wskclient`: the Winsock Kernel client driver.
//!
//! - [`core`]: the portable device core (socket tables, IOCTL dispatch onto `wsk`).
//! - [`wdm`]: the WDM front-end (`DriverEntry`, dispatch routines, `DriverUnload`), used by
//!   the host emulation (`ntsim`) and by Wine.
//! - [`kmdf`] (`kmdf` feature, the default): the KMDF front-end (windows-drivers-rs), on the
//!   same core. On Windows it is the driver; on the host it compiles against stand-ins for the
//!   wdk crates and runs on `ntsim::wdf`. `--no-default-features` builds the WDM variant.
//!
//! On non-Windows hosts this crate builds as a library that `ntsim` loads in-process.
// no_std for the kernel (Windows targets). On the host the library links std only so that
// its cdylib target (required by wdk-build's packaging flow) has an allocator and panic
// handler; driver code uses core/alloc only, which the lints below enforce.
#![cfg_attr(windows, no_std)]
#![deny(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
// No infallible allocation (clippy.toml's lists; host test code is exempt).
#![cfg_attr(
    not(test),
    deny(
        clippy::disallowed_methods,
        clippy::disallowed_types,
        clippy::disallowed_macros
    )
)]

extern crate alloc;

// On non-Windows hosts the KMDF front-end compiles against stand-ins for exactly the
// wdk-sys / wdk items it uses, under the same names, so src/kmdf.rs keeps `use wdk_sys::..`.
#[cfg(all(not(windows), feature = "kmdf"))]
extern crate wdk_standin as wdk;
#[cfg(all(not(windows), feature = "kmdf"))]
extern crate wdk_sys_standin as wdk_sys;

pub mod core;
// The KMDF front-end (`kmdf` feature): the driver on Windows; on the host it is compiled
// against the stand-ins and loaded through `ntsim::wdf`.
#[cfg(feature = "kmdf")]
pub mod kmdf;
// The WDM build's kernel runtime (panic handler, allocator); KMDF uses wdk-panic/wdk-alloc.
#[cfg(all(windows, not(feature = "kmdf"), not(test)))]
mod rt;
#[cfg(not(all(windows, feature = "kmdf")))]
pub mod wdm;
pub mod wide;

#[cfg(not(all(windows, feature = "kmdf")))]
pub use wdm::DriverEntry;

/// The KMDF front-end's DriverEntry ([`kmdf::driver_entry`]) with the I/O manager's
/// signature (windows-sys's `DRIVER_OBJECT` and `UNICODE_STRING`), for the host's KMDF loader
/// (`ntsim::wdf::load_driver`). Host only; PASSIVE_LEVEL; returns DriverEntry's status.
///
/// # Safety
/// As [`kmdf::driver_entry`]: a live driver object and registry path, the WDF function table
/// bound.
#[cfg(all(not(windows), feature = "kmdf"))]
#[allow(non_snake_case)] // named as the WDM front-end's `DriverEntry`
pub unsafe extern "system" fn KmdfDriverEntry(
    driver: *mut windows_sys::Wdk::Foundation::DRIVER_OBJECT,
    registry_path: *const windows_sys::Win32::Foundation::UNICODE_STRING,
) -> windows_sys::Win32::Foundation::NTSTATUS {
    // SAFETY: the caller's contract; wdk-sys's DRIVER_OBJECT and UNICODE_STRING have
    // windows-sys's layouts (crates/wdk-sys-standin/tests/layout.rs).
    unsafe { kmdf::driver_entry(&mut *driver.cast(), registry_path.cast()) }
}
