//! `ntsim`: a host emulation of the ntoskrnl.exe and netio.sys (WSK provider) routines a WSK
//! client driver imports, so that the driver's own source runs in `cargo test` on Linux
//! against real TCP and UDP peers.
//!
//! The driver and the `wsk` crate call kernel routines through `windows-sys` / `wsk-sys`
//! declarations; on a non-Windows host those are plain `extern "system"` symbols, and this
//! crate defines them with `#[no_mangle]` over the real windows-sys layouts (IRP,
//! IO_STACK_LOCATION, MDL, KEVENT, ...). Linking this crate into a test binary is what
//! substitutes it for the kernel.
//!
//! Alongside the emulation sits a verifier ([`verifier`]) that counts live IRPs, MDLs, pool
//! bytes and sockets and records broken kernel rules, as Driver Verifier or a bugcheck would
//! report them.
//!
//! Host only: the driver and `wsk` never depend on this crate.
#![allow(non_snake_case, clippy::missing_safety_doc)]

pub mod completion_ex;
pub mod config;
pub mod event;
pub mod faults;
pub mod file;
pub mod heap;
pub mod iomgr;
pub mod irp;
pub mod irql;
mod lookaside;
pub mod mdl;
pub mod poison;
pub mod pool;
pub mod processor;
pub mod sched;
pub mod security;
pub mod status;
pub mod time;
pub mod verifier;
pub mod wdf;
pub mod workitem;
pub mod wsk;

pub use verifier::Scope;
pub use wsk::wait_quiescent;

/// Forces every emulated kernel routine into the link. Test binaries and the embedded device
/// call this once (it is cheap) so that no linker drops this crate's objects.
pub fn link() {
    let _ = wsk::live_registrations();
    let _ = faults::ntsim_rust_alloc_should_fail as unsafe extern "C" fn(_, _, _, _) -> _;
    let _ = workitem::IoQueueWorkItem as unsafe extern "system" fn(_, _, _, _);
    let _ = processor::KeGetCurrentProcessorNumberEx as unsafe extern "system" fn(_) -> _;
}
