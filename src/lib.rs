//! `wskclient`: the Winsock Kernel client driver.
//!
//! - [`core`]: the portable device core (socket tables, IOCTL dispatch onto `wsk`).
//! - [`wdm`]: the WDM front-end (`DriverEntry`, dispatch routines, `DriverUnload`), used by
//!   the host emulation (`ntsim`) and by Wine.
//! - `kmdf` (Windows targets, `kmdf` feature, the default): the KMDF front-end
//!   (windows-drivers-rs), on the same core. `--no-default-features` builds the WDM variant.
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

pub mod core;
// WINDOWS-ONLY: the KMDF front-end. Compact layout, kept within issue 5's 300-line review
// target; rustfmt would spread it over ~460 lines.
#[cfg(all(windows, feature = "kmdf"))]
#[rustfmt::skip]
mod kmdf;
// The WDM build's kernel runtime (panic handler, allocator); KMDF uses wdk-panic/wdk-alloc.
#[cfg(all(windows, not(feature = "kmdf"), not(test)))]
mod rt;
#[cfg(not(all(windows, feature = "kmdf")))]
pub mod wdm;
pub mod wide;

#[cfg(not(all(windows, feature = "kmdf")))]
pub use wdm::DriverEntry;
