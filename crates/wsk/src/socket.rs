//! WSK sockets: connection-oriented ([`StreamSocket`]) and datagram ([`DatagramSocket`]).
//!
//! Every operation owns an IRP with a completion routine. Synchronous calls (PASSIVE_LEVEL)
//! wait on a KEVENT the completion routine signals, and reuse one IRP per socket with
//! `IoReuseIrp`, so a steady-state send allocates nothing. Asynchronous calls (IRQL <=
//! DISPATCH_LEVEL) take their buffer by value and return it, with the result, to a callback
//! that runs in the completion routine at IRQL <= DISPATCH_LEVEL; their IRPs and operation
//! blocks come from a bounded per-socket cache (`op_cache`), so they allocate nothing in the
//! steady state either.

mod async_op;
mod base;
mod datagram;
mod forward;
mod listen;
mod op_cache;
mod rundown;
mod stream;

pub(crate) use async_op::*;
pub(crate) use base::*;
pub use datagram::DatagramSocket;
pub use forward::ForwardedCompletion;
pub use listen::{Accepted, ListenSocket};
pub use op_cache::{MAX_CACHED_OPS, OP_BYTES, OP_CACHE_TAG};
pub use stream::StreamSocket;

const SOCK_STREAM: u16 = 1;
const SOCK_DGRAM: u16 = 2;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
