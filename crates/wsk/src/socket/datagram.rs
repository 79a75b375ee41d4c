//! Datagram (UDP) sockets: [`DatagramSocket`].

use core::ffi::c_void;
use core::net::SocketAddr;
use core::time::Duration;

use wsk_sys::*;

use super::*;
use crate::addr::SockAddrBuf;
use crate::buf::{wsk_buf, MdlBuffer};
use crate::client::WskClient;
use crate::error::{Error, Result};
use crate::events::{control_events, datagram_ctx, DatagramEvents, Event, EventSet};

/// A datagram (UDP) WSK socket.
pub struct DatagramSocket {
    pub(crate) core: Core,
}

impl DatagramSocket {
    pub(crate) fn dispatch(&self) -> &WSK_PROVIDER_DATAGRAM_DISPATCH {
        // SAFETY: created as a datagram socket, so its table is the datagram table. Read from the
        // copy taken at creation (never from the socket, which close frees).
        unsafe { self.core.table() }
    }

    /// Creates a datagram socket (`WskSocket(WSK_FLAG_DATAGRAM_SOCKET)`) and binds it to
    /// `local` (`WskBind`; port 0 picks an ephemeral port). PASSIVE_LEVEL.
    /// Errors: `STATUS_ADDRESS_ALREADY_EXISTS`, `STATUS_INVALID_ADDRESS_COMPONENT`,
    /// `STATUS_INSUFFICIENT_RESOURCES`, `STATUS_NOT_IMPLEMENTED` (provider without datagram
    /// sockets), or any status of the provider.
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
    pub fn bind(client: &WskClient, local: SocketAddr) -> Result<DatagramSocket> {
        let core = Core::create(
            client,
            &local,
            SOCK_DGRAM,
            IPPROTO_UDP,
            WSK_FLAG_DATAGRAM_SOCKET,
        )?;
        let s = DatagramSocket { core };
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// Sets a fixed remote address (`SIO_WSK_SET_REMOTE_ADDRESS` through `WskControlSocket`):
    /// afterwards [`DatagramSocket::send_to`] accepts `None` as the destination, and only
    /// datagrams from that address are received. PASSIVE_LEVEL.
    /// Source (seed 001): <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sio-wsk-set-remote-address>
    pub fn set_remote(&self, remote: SocketAddr) -> Result<()> {
        self.control_address(SIO_WSK_SET_REMOTE_ADDRESS, remote)
    }

    /// Sets a fixed destination (`SIO_WSK_SET_SENDTO_ADDRESS`), with no receive filter.
    /// PASSIVE_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sio-wsk-set-sendto-address>
    pub fn set_sendto_address(&self, remote: SocketAddr) -> Result<()> {
        self.control_address(SIO_WSK_SET_SENDTO_ADDRESS, remote)
    }

    fn control_address(&self, code: u32, remote: SocketAddr) -> Result<()> {
        let control = self
            .core
            .basic()
            .WskControlSocket
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core
            .sync(self.core.timeout, |irp, _, addr| {
                *addr = SockAddrBuf::new(remote);
                let len = addr.len();
                // SAFETY: open socket; the input address lives in the op block until
                // completion.
                unsafe {
                    control(
                        raw,
                        WskIoctl,
                        code,
                        0,
                        len,
                        addr.as_mut_ptr() as *mut c_void,
                        0,
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        irp,
                    )
                }
            })
            .map(|_| ())
    }

    /// Sends one datagram of `len` bytes of `buf` from `offset` with `WskSendTo`, to `to`, or
    /// with `None` to the fixed remote / send-to address. Returns the bytes sent.
    ///
    /// PASSIVE_LEVEL; steady state allocates nothing. Errors: `STATUS_INVALID_BUFFER_SIZE`
    /// (datagram too large for the transport), `STATUS_INVALID_PARAMETER` (no destination),
    /// `STATUS_IO_TIMEOUT`, or any status of the provider.
    /// Source (seed 001): <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>
    pub fn send_to<B: MdlBuffer + ?Sized>(
        &self,
        buf: &B,
        offset: usize,
        len: usize,
        to: Option<SocketAddr>,
    ) -> Result<usize> {
        let wb = wsk_buf(buf, offset, len)?;
        let send_to = self.dispatch().WskSendTo.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core.sync(self.core.timeout, |irp, b, addr| {
            *b = wb;
            let remote = match to {
                Some(a) => {
                    *addr = SockAddrBuf::new(a);
                    addr.as_mut_ptr()
                }
                None => core::ptr::null_mut(),
            };
            // SAFETY: open socket; WSK_BUF and address live in the op block, `buf` is
            // borrowed until completion.
            unsafe { send_to(raw, b, 0, remote, 0, core::ptr::null_mut(), irp) }
        })
    }

    /// Sends one datagram without waiting; see [`StreamSocket::send_async`] for the contract
    /// of `done`, the errors and the socket's cache of IRPs and operation blocks (steady
    /// state: no allocation). IRQL <= DISPATCH_LEVEL.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>
    pub fn send_to_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        to: Option<SocketAddr>,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<usize>, B) + Send + 'static,
    {
        let Some(send_to) = self.dispatch().WskSendTo else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        let has_to = to.is_some();
        start_async(&self.core, buf, offset, len, to, done, |irp, b, addr| {
            let remote = if has_to {
                // SAFETY: addr points into the live async block.
                unsafe { (*addr).as_mut_ptr() }
            } else {
                core::ptr::null_mut()
            };
            // SAFETY: open socket; WSK_BUF and address live in the async block.
            unsafe { send_to(raw, b, 0, remote, 0, core::ptr::null_mut(), irp) }
        })
    }

    /// Receives one datagram into `len` bytes of `buf` from `offset` with `WskReceiveFrom`
    /// and waits; returns its length and the sender's address.
    ///
    /// PASSIVE_LEVEL; steady state allocates nothing. Errors: `STATUS_IO_TIMEOUT` (the
    /// socket's timeout expired; the IRP was cancelled), `STATUS_BUFFER_OVERFLOW` (the
    /// datagram was larger than `len`: the emulator's choice, see
    /// `docs/ntstatus-mapping.md`), `STATUS_INVALID_DEVICE_STATE` (not bound, or above
    /// PASSIVE_LEVEL), `STATUS_INVALID_PARAMETER` (range outside `buf`, or an address of an
    /// unknown family), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
    pub fn receive_from<B: MdlBuffer + ?Sized>(
        &self,
        buf: &mut B,
        offset: usize,
        len: usize,
    ) -> Result<(usize, SocketAddr)> {
        let wb = wsk_buf(&*buf, offset, len)?;
        let receive_from = self
            .dispatch()
            .WskReceiveFrom
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        let (n, from) = self.core.sync_addr(self.core.timeout, |irp, b, addr| {
            *b = wb;
            *addr = SockAddrBuf::zeroed();
            // SAFETY: open socket; WSK_BUF and the address buffer (28 bytes, enough for
            // either family) live in the op block, `buf` is borrowed until completion.
            unsafe {
                receive_from(
                    raw,
                    b,
                    0,
                    addr.as_mut_ptr(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    irp,
                )
            }
        })?;
        Ok((n, from.get().ok_or(Error::InvalidParameter)?))
    }

    /// Receives one datagram without waiting; `done(result, buf)` runs in the completion
    /// routine (IRQL <= DISPATCH_LEVEL) with `(length, sender)` and the buffer. IRQL <=
    /// DISPATCH_LEVEL. A pending receive completes with `STATUS_CANCELLED` when the socket
    /// closes. Errors as [`DatagramSocket::receive_from`]; steady state: no allocation (IRP
    /// and block from the socket's cache, as [`StreamSocket::send_async`]).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
    pub fn receive_from_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<(usize, SocketAddr)>, B) + Send + 'static,
    {
        let Some(receive_from) = self.dispatch().WskReceiveFrom else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        start_async_with(
            &self.core,
            buf,
            offset,
            len,
            None,
            WithAddr(done),
            |irp, b, addr| {
                // SAFETY: open socket; WSK_BUF and address live in the async block until
                // completion.
                unsafe {
                    receive_from(
                        raw,
                        b,
                        0,
                        (*addr).as_mut_ptr(),
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        irp,
                    )
                }
            },
        )
    }

    /// Sets the default timeout of this socket's synchronous calls.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.timeout = timeout;
    }

    /// The bound local address (`WskGetLocalAddress`). PASSIVE_LEVEL.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetLocalAddress)
    }

    /// Closes the socket (`WskCloseSocket`). PASSIVE_LEVEL. (Dropping also closes.)
    pub fn close(&self) -> Result<()> {
        self.core.close()
    }
}

impl DatagramSocket {
    /// Like [`DatagramSocket::bind`], giving the socket `handler` for `WskReceiveFromEvent`.
    /// No event is enabled yet (except static ones); call [`DatagramSocket::enable_events`].
    /// PASSIVE_LEVEL. Errors: as [`DatagramSocket::bind`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_datagram_dispatch>
    pub fn bind_with_events<H: DatagramEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: H,
    ) -> Result<DatagramSocket> {
        let hdr = datagram_ctx(handler)?;
        let core = create_with_events(
            client,
            &local,
            SOCK_DGRAM,
            IPPROTO_UDP,
            WSK_FLAG_DATAGRAM_SOCKET,
            hdr,
        )?;
        let s = DatagramSocket { core };
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// Enables `WskReceiveFromEvent` (`EventSet::RECEIVE_FROM`). IRQL <= DISPATCH_LEVEL.
    /// Errors: as [`StreamSocket::enable_events`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn enable_events(&self, events: EventSet) -> Result<()> {
        control_events(&self.core, events.bits())
    }

    /// Disables one event; see [`StreamSocket::disable_event`]. PASSIVE_LEVEL.
    pub fn disable_event(&self, event: Event) -> Result<()> {
        self.core.disable_event(event.bits())
    }

    /// The provider's socket object (valid until the socket is closed; calls through it
    /// bypass this type's rundown protection).
    pub fn as_raw(&self) -> PWSK_SOCKET {
        self.core.raw.as_ptr()
    }
}
