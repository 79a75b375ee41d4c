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
//!
//! # Example
//!
//! Register, connect, send, close. On Windows this runs at PASSIVE_LEVEL in a driver (for
//! example in `DriverEntry` or a work item). This doctest runs on the host: `ntsim` (a
//! dev-dependency of this crate, not published) links in place of the kernel and serves WSK
//! over real OS sockets, so the bytes are checked at a real loopback peer, and its verifier
//! then checks that no IRP, MDL, pool byte or socket leaked.
//!
//! ```
//! # ntsim::link();
//! # let scope = ntsim::Scope::begin();
//! use std::io::Read;
//! use std::time::Duration;
//! use wsk::{NonPagedBuffer, StreamSocket, WskClient};
//!
//! let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
//!
//! // WskRegister + WskCaptureProviderNPI, waiting up to 10 s for the provider.
//! let client = WskClient::register(10_000)?;
//! let sock = StreamSocket::connect(&client, peer.local_addr()?, Some(Duration::from_secs(5)))?;
//! // Nonpaged pool with its own MDL, tagged "Exmp".
//! let buf = NonPagedBuffer::from_slice(b"hello from the kernel", wsk::pool::tag(b"Exmp"))?;
//! assert_eq!(sock.send(&buf, 0, 21)?, 21);
//! sock.close()?; // WskCloseSocket: the peer reads the bytes, then end of stream.
//! drop((sock, buf));
//! drop(client); // WskReleaseProviderNPI + WskDeregister
//!
//! let (mut conn, _) = peer.accept()?;
//! let mut got = Vec::new();
//! conn.read_to_end(&mut got)?;
//! assert_eq!(got, b"hello from the kernel");
//! # scope.assert_clean();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # From a windows-drivers-rs (`wdk-sys`) driver
//!
//! `wsk` speaks `windows-sys` types. A driver built on `wdk-sys` passes its pointers with a
//! pointer cast: `wdk_sys::PMDL` (`*mut wdk_sys::_MDL`, bindgen's translation of wdm.h) and
//! `*mut windows_sys::Wdk::Foundation::MDL` (generated from Microsoft's metadata) point to
//! the same C structure with the same `#[repr(C)]` layout, so `mdl.cast()` is sound; the
//! same holds for `PIRP` and `DEVICE_OBJECT`. For example, the MDL of a pending
//! `METHOD_IN_DIRECT` request as the buffer of a send:
//!
//! ```ignore
//! let mut mdl: wdk_sys::PMDL = core::ptr::null_mut();
//! // WdfRequestRetrieveOutputWdmMdl(request, &mut mdl) (or Irp->MdlAddress in WDM)
//! let mdl = core::ptr::NonNull::new(mdl.cast::<windows_sys::Wdk::Foundation::MDL>())
//!     .ok_or(wsk::Error::InvalidParameter)?;
//! // SAFETY: the I/O manager keeps the request's MDL locked until the request completes,
//! // and this borrow ends before we complete it.
//! let data = unsafe { wsk::BorrowedMdl::new(mdl, len) };
//! socket.send(&data, 0, len)?;
//! ```
//!
//! The crate's README has the guide (Cargo.toml, registration in `DriverEntry`, a send from
//! a request's MDL); the repository's `examples/wdk_sys_driver.rs` runs it on the host.
//!
//! # MSRV and semver
//!
//! Rust 1.85 (`rust-version`; checked with clippy's `incompatible_msrv` lint). Before 1.0,
//! a release that breaks the public API or raises the MSRV bumps the minor version (0.1 →
//! 0.2); fixes and additions bump the patch version. See `CHANGELOG.md`.
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
pub use socket::{
    Accepted, DatagramSocket, ForwardedCompletion, ListenSocket, StreamSocket, MAX_CACHED_OPS,
    OP_BYTES, OP_CACHE_TAG,
};
