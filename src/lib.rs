//! `wskclient`: the Winsock Kernel client driver.
//!
//! - [`core`]: the portable device core (socket tables, IOCTL dispatch onto `wsk`).
//! - [`wdm`]: the WDM front-end (`DriverEntry`, dispatch routines, `DriverUnload`), used by
//!   the host emulation (`ntsim`) and by Wine.
//! - The KMDF front-end (windows-drivers-rs) is Windows-only and sits on the same core.
//!
//! On non-Windows hosts this crate builds as a library that `ntsim` loads in-process.
#![no_std]
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

extern crate alloc;

pub mod core;
#[cfg(all(windows, not(test)))]
mod rt;
pub mod wdm;
pub mod wide;

pub use wdm::DriverEntry;
