//! The IOCTL contract between the `wskclient` driver and its console app `wskctl`.
//!
//! Everything a caller of `\\.\WskClient` and the driver's `IRP_MJ_DEVICE_CONTROL`
//! dispatch routine must agree on lives here, and nothing else:
//!
//! * [`ctl`]: `CTL_CODE` arithmetic, the device type, device names and the
//!   `IOCTL_WSKCLIENT_*` codes ([`Operation`] enumerates them);
//! * [`message`]: the versioned, fixed-layout request and response structs and
//!   the parsers the driver and the app use on raw buffers;
//! * [`listen`]: the structs of the listen / accept / receive / disconnect /
//!   receive-from operations;
//! * [`InetAddress`]: a 28-byte `SOCKADDR_INET`-compatible address;
//! * [`SocketHandle`]: the opaque handle the driver hands out for each socket;
//! * [`status`]: the NTSTATUS values the contract uses and their names;
//! * [`ContractError`]: every way a request can be malformed, with the NTSTATUS
//!   the driver completes it with ([`ContractError::ntstatus`]).
//!
//! Byte order: every integer field is native-endian (little-endian on every
//! architecture Windows runs on), except the ports inside [`InetAddress`], which
//! are in network byte order exactly as in `SOCKADDR_IN` / `SOCKADDR_IN6`.
//!
//! The full contract, with byte offsets and the error table, is in `docs/ioctl.md`
//! at the workspace root.
#![no_std]
#![deny(missing_docs)]
// The driver parses every request with this crate at PASSIVE/DISPATCH_LEVEL: no panic paths.
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

pub mod address;
pub mod ctl;
pub mod error;
pub mod frontend;
pub mod handle;
pub mod listen;
pub mod message;
pub mod names;
pub mod options;
pub mod status;
pub mod transmit;

pub use address::{InetAddress, AF_INET, AF_INET6, AF_UNSPEC};
pub use ctl::*;
pub use error::ContractError;
pub use handle::{SocketHandle, MAX_SOCKETS_PER_FILE};
pub use listen::*;
pub use message::*;
pub use status::ntstatus_name;
