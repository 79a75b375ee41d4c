//! `wsk`: a safe Winsock Kernel (WSK) client for Rust kernel drivers.
//!
//! - [`WskClient`]: registration (`WskRegister` + `WskCaptureProviderNPI`).
//! - [`StreamSocket`]: `WskSocketConnect` (with a `WskSocket` + `WskBind` + `WskConnect`
//!   fallback), `WskSend`, `WskCloseSocket`.
//!   `WskReceive` (`WSK_FLAG_WAITALL`), `WskDisconnect` (graceful, with optional final data,
//!   and abortive).
//! - [`DatagramSocket`]: `WskSocket` + `WskBind`, `WskSendTo`, `WskReceiveFrom`, fixed
//!   remote addresses.
//! - [`ListenSocket`]: `WskSocket(WSK_FLAG_LISTEN_SOCKET)` + `WskBind`, `WskAccept` with
//!   the accepted connection's local and remote addresses ([`Accepted`]).
//! - [`buf`]: MDL-described buffers whose types keep them alive until their IRP completes.
//!
//! Every operation owns an IRP whose completion routine returns
//! `STATUS_MORE_PROCESSING_REQUIRED`. Synchronous calls need PASSIVE_LEVEL; asynchronous
//! calls need IRQL <= DISPATCH_LEVEL and call back at IRQL <= DISPATCH_LEVEL.
//!
//! All kernel calls go through `windows-sys` / `wsk-sys` declarations, so the same source
//! builds for the Windows target and, on a Linux host, links against `ntsim`'s emulation.
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
// No infallible allocation on kernel paths (clippy.toml's lists; issue 12 defect 6).
#![cfg_attr(
    not(test),
    deny(
        clippy::disallowed_methods,
        clippy::disallowed_types,
        clippy::disallowed_macros
    )
)]
#![warn(missing_docs)]

// Renamed because this crate's fallible-allocation module is `wsk::alloc` (a root module
// and an `extern crate` cannot share a name): the standard `alloc` crate is `rust_alloc`
// here, and `crate::alloc` re-exports its `Box`, `Vec` and `String`.
extern crate alloc as rust_alloc;

pub mod addr;
pub mod alloc;
pub mod buf;
mod client;
pub mod control;
mod error;
pub mod events;
pub mod irp;
pub mod names;
pub mod pool;
mod socket;
pub mod sync;

pub use buf::{BorrowedMdl, BufferChain, MdlBuffer, NonPagedBuffer};
pub use client::WskClient;
pub use error::{check, Error, Result};
pub use socket::{Accepted, DatagramSocket, ListenSocket, StreamSocket};
