//! Connection-oriented (TCP) sockets: [`StreamSocket`].

use core::ffi::c_void;
use core::net::SocketAddr;
use core::ptr::NonNull;
use core::time::Duration;

use windows_sys::Win32::Foundation::STATUS_NOT_IMPLEMENTED;
use wsk_sys::*;

use super::*;
use crate::addr::{family_of, SockAddrBuf};
use crate::buf::{wsk_buf, MdlBuffer};
use crate::client::WskClient;
use crate::error::{Error, Result};
use crate::events::{
    connection_ctx, control_events, set_socket, table_of, ConnectionEvents, CtxHeader, Event,
    EventSet,
};
use crate::pool::PoolBox;

/// A connection-oriented (TCP) WSK socket.
pub struct StreamSocket {
    pub(crate) core: Core,
    pub(crate) fallback: bool,
}

impl StreamSocket {
    #[inline]
    pub(crate) fn dispatch(&self) -> &WSK_PROVIDER_CONNECTION_DISPATCH {
        // SAFETY: created as a connection socket, so its table is the connection table. Read from the
        // copy taken at creation (never from the socket, which close frees).
        unsafe { self.core.table() }
    }

    /// Creates, binds (to the wildcard address of `remote`'s family) and connects a TCP
    /// socket with `WskSocketConnect`. If the provider returns `STATUS_NOT_IMPLEMENTED`
    /// (Wine 8.0's netio.sys does), falls back to `WskSocket` + `WskBind` + `WskConnect`;
    /// [`StreamSocket::used_fallback`] tells which path ran.
    ///
    /// PASSIVE_LEVEL (it waits). `timeout` bounds the connect; on expiry the IRP is cancelled
    /// and `STATUS_IO_TIMEOUT` returned. Errors: `STATUS_CONNECTION_REFUSED`,
    /// `STATUS_NETWORK_UNREACHABLE`, `STATUS_HOST_UNREACHABLE`, `STATUS_IO_TIMEOUT`,
    /// `STATUS_INSUFFICIENT_RESOURCES`, or any status of the provider.
    /// Source (seed 002): <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>
    pub fn connect(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<StreamSocket> {
        require_passive()?;
        let (r, op) = Self::socket_connect_raw(
            client,
            remote,
            timeout,
            core::ptr::null_mut(),
            core::ptr::null(),
        )?;
        match r {
            Ok(info) => {
                let raw = NonNull::new(info as *mut WSK_SOCKET).ok_or(Error::InvalidParameter)?;
                // The connecting block goes: the socket allocates its own at its first
                // synchronous call (Core::new).
                drop(op);
                Ok(StreamSocket {
                    core: Core::new(raw),
                    fallback: false,
                })
            }
            Err(e) if e.status() == STATUS_NOT_IMPLEMENTED => {
                Self::connect_fallback(client, remote, timeout, op)
            }
            Err(e) => Err(e),
        }
    }

    /// `WskSocketConnect` to `remote` from the wildcard address of its family, with the
    /// client's socket context and dispatch table (NULL for none), on a fresh operation
    /// block, which is returned with the outcome (the new socket on success) so a fallback
    /// can reuse it. PASSIVE_LEVEL. Errors before the call: `STATUS_NOT_IMPLEMENTED` (no
    /// `WskSocketConnect`), `STATUS_INSUFFICIENT_RESOURCES`.
    fn socket_connect_raw(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
        ctx: *mut c_void,
        table: *const WSK_CLIENT_CONNECTION_DISPATCH,
    ) -> Result<(Result<usize>, PoolBox<OpBlock>)> {
        let socket_connect = client
            .dispatch()
            .WskSocketConnect
            .ok_or(Error::NotImplemented)?;
        let mut op = new_op()?;
        let mut local = SockAddrBuf::unspecified_like(&remote);
        let mut remote_buf = SockAddrBuf::new(remote);
        let raw_client = client.raw_client();
        let r = run_sync(&mut op, timeout, |irp, _, _, _| {
            // SAFETY: the addresses live on this frame until the synchronous call returns;
            // the caller keeps `ctx` and `table` valid for the socket's lifetime.
            unsafe {
                socket_connect(
                    raw_client,
                    SOCK_STREAM,
                    IPPROTO_TCP,
                    local.as_mut_ptr(),
                    remote_buf.as_mut_ptr(),
                    0,
                    ctx,
                    table,
                    0,
                    0,
                    core::ptr::null_mut(),
                    irp,
                )
            }
        });
        Ok((r, op))
    }

    fn connect_fallback(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
        mut op: PoolBox<OpBlock>,
    ) -> Result<StreamSocket> {
        let raw = create_socket(
            client,
            &mut op,
            family_of(&remote),
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_CONNECTION_SOCKET,
        )?;
        drop(op);
        let mut s = StreamSocket {
            core: Core::new(raw),
            fallback: true,
        };
        s.core.timeout = timeout;
        let d = *s.dispatch();
        let local = SockAddrBuf::unspecified_like(&remote);
        s.bind_with(d.WskBind, local)?;
        let connect = d.WskConnect.ok_or(Error::NotImplemented)?;
        let raw = s.core.raw.as_ptr();
        s.core.sync(timeout, |irp, _, addr| {
            *addr = SockAddrBuf::new(remote);
            // SAFETY: open socket; addr lives in the op block until completion.
            unsafe { connect(raw, addr.as_mut_ptr(), 0, irp) }
        })?;
        s.core.timeout = None;
        Ok(s)
    }

    /// Creates an unbound, unconnected TCP socket with `WskSocket`
    /// (`WSK_FLAG_CONNECTION_SOCKET`), of the address family of `family` (its address and
    /// port are ignored): the first step of the `WskSocket` + options + `WskBind` +
    /// `WskConnect` path, for options that must be set before binding or connecting. Then
    /// call [`StreamSocket::bind`] and [`StreamSocket::connect_to`].
    ///
    /// PASSIVE_LEVEL (it waits). Errors: `STATUS_INVALID_DEVICE_STATE` (above
    /// PASSIVE_LEVEL), `STATUS_INSUFFICIENT_RESOURCES`, or any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>
    pub fn create(client: &WskClient, family: &SocketAddr) -> Result<StreamSocket> {
        require_passive()?;
        let mut op = new_op()?;
        let raw = create_socket(
            client,
            &mut op,
            family_of(family),
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_CONNECTION_SOCKET,
        )?;
        drop(op);
        Ok(StreamSocket {
            core: Core::new(raw),
            fallback: false,
        })
    }

    /// Binds a socket from [`StreamSocket::create`] to `local` with `WskBind` (a wildcard
    /// address and port 0 let the stack choose at connect time). The family must be the
    /// socket's.
    ///
    /// PASSIVE_LEVEL (it waits). Errors: `STATUS_INVALID_DEVICE_STATE` (already bound, or
    /// above PASSIVE_LEVEL), `STATUS_ADDRESS_ALREADY_EXISTS`, `STATUS_INVALID_PARAMETER`
    /// (family mismatch), or any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
    pub fn bind(&self, local: SocketAddr) -> Result<()> {
        require_passive()?;
        let d = *self.dispatch();
        self.bind_with(d.WskBind, SockAddrBuf::new(local))
    }

    /// Connects a bound socket from [`StreamSocket::create`] to `remote` with `WskConnect`.
    /// The socket must have been bound with [`StreamSocket::bind`] first ("only on a
    /// connection-oriented or stream socket that the application previously bound to a
    /// local transport address by calling the WskBind function").
    ///
    /// PASSIVE_LEVEL (it waits). `timeout` bounds the connect; on expiry the IRP is
    /// cancelled and `STATUS_IO_TIMEOUT` returned. Errors: `STATUS_INVALID_DEVICE_STATE`
    /// (not bound or already connected, as the emulation reports it; the page does not name
    /// the status; also above PASSIVE_LEVEL), `STATUS_CONNECTION_REFUSED`,
    /// `STATUS_IO_TIMEOUT`, or any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect>
    pub fn connect_to(&self, remote: SocketAddr, timeout: Option<Duration>) -> Result<()> {
        require_passive()?;
        let connect = self.dispatch().WskConnect.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core
            .sync(timeout, |irp, _, addr| {
                *addr = SockAddrBuf::new(remote);
                // SAFETY: open socket; addr lives in the op block until completion.
                unsafe { connect(raw, addr.as_mut_ptr(), 0, irp) }
            })
            .map(|_| ())
    }

    fn bind_with(&self, bind: PFN_WSK_BIND, local: SockAddrBuf) -> Result<()> {
        self.core.bind(bind, local)
    }

    /// The provider's socket object, for calling WSK routines this crate does not wrap.
    /// The pointer is valid until the socket is closed; calls made through it bypass this
    /// type's rundown protection.
    pub fn as_raw(&self) -> PWSK_SOCKET {
        self.core.raw.as_ptr()
    }

    /// True if the socket was connected with `WskSocket` + `WskBind` + `WskConnect` because
    /// the provider lacks `WskSocketConnect`.
    pub fn used_fallback(&self) -> bool {
        self.fallback
    }

    /// Sets the default timeout of this socket's synchronous sends (`None`: no timeout).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.timeout = timeout;
    }

    /// Sends `len` bytes of `buf` from `offset` with `WskSend` and waits for completion;
    /// returns the bytes sent (WSK completes a send when all bytes are sent).
    ///
    /// PASSIVE_LEVEL. The buffer is borrowed for the whole call, which returns only after the
    /// IRP completed. Steady state: no pool or IRP allocation (the socket's IRP is reused).
    /// Errors: `STATUS_CONNECTION_RESET`, `STATUS_CONNECTION_ABORTED`, `STATUS_IO_TIMEOUT`
    /// (timeout set: the IRP is cancelled), `STATUS_INVALID_PARAMETER` (range outside `buf`),
    /// `STATUS_INVALID_DEVICE_STATE` (above PASSIVE_LEVEL).
    /// Source (seed 000): <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
    pub fn send<B: MdlBuffer + ?Sized>(&self, buf: &B, offset: usize, len: usize) -> Result<usize> {
        let wb = wsk_buf(buf, offset, len)?;
        let send = self.dispatch().WskSend.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core.sync(self.core.timeout, |irp, b, _| {
            *b = wb;
            // SAFETY: open socket; the WSK_BUF lives in the op block and `buf` is borrowed
            // until completion.
            unsafe { send(raw, b, 0, irp) }
        })
    }

    /// Sends `len` bytes of `buf` from `offset` without waiting. `done(result, buf)` runs in
    /// the completion routine (IRQL <= DISPATCH_LEVEL, possibly before this call returns) and
    /// gets the buffer back. Callable at IRQL <= DISPATCH_LEVEL.
    ///
    /// Errors before the send starts come back with the buffer (`STATUS_INVALID_PARAMETER`,
    /// `STATUS_INSUFFICIENT_RESOURCES`: the socket's cache of IRPs and operation blocks could
    /// not grow); errors of the send itself reach `done`. Steady state: no allocation (the
    /// IRP and block come from the socket's cache, the IRP reused with `IoReuseIrp`; see
    /// [`crate::MAX_CACHED_OPS`] for its bound). `STATUS_INVALID_HANDLE` once close began.
    pub fn send_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<usize>, B) + Send + 'static,
    {
        let Some(send) = self.dispatch().WskSend else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        // SAFETY: open socket; the WSK_BUF lives in the async block until completion.
        start_async(
            &self.core,
            buf,
            offset,
            len,
            None,
            done,
            |irp, b, _| unsafe { send(raw, b, 0, irp) },
        )
    }

    /// Receives into `len` bytes of `buf` from `offset` with `WskReceive` and waits; returns
    /// the bytes received. With `wait_all` (`WSK_FLAG_WAITALL`) the call completes only when
    /// the range is full, the peer disconnected gracefully, the connection was aborted, or the
    /// IRP was cancelled (timeout); otherwise as soon as some bytes arrived.
    ///
    /// **`Ok(0)` for a non-empty range means the peer disconnected gracefully** (its FIN was
    /// received), as `recv` returning 0 does in Winsock
    /// (<https://learn.microsoft.com/en-us/windows/win32/api/winsock/nf-winsock-recv>: "If the
    /// connection has been gracefully closed, the return value is zero"); with `wait_all`, a
    /// count below `len` means the same.
    ///
    /// PASSIVE_LEVEL; steady state allocates nothing (the socket's IRP is reused). `buf` is
    /// borrowed mutably for the whole call, which returns only after the IRP completed.
    /// Errors: `STATUS_CONNECTION_RESET` (peer's RST), `STATUS_CONNECTION_ABORTED` (after
    /// [`StreamSocket::abort`]), `STATUS_INVALID_CONNECTION` (not connected),
    /// `STATUS_IO_TIMEOUT` (the socket's timeout expired: the IRP was cancelled and no byte
    /// is lost, since a cancelled receive completes with none), `STATUS_INVALID_PARAMETER`
    /// (range outside `buf`), `STATUS_INVALID_DEVICE_STATE` (above PASSIVE_LEVEL).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    pub fn receive<B: MdlBuffer + ?Sized>(
        &self,
        buf: &mut B,
        offset: usize,
        len: usize,
        wait_all: bool,
    ) -> Result<usize> {
        let wb = wsk_buf(&*buf, offset, len)?;
        let receive = self.dispatch().WskReceive.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        let flags = if wait_all { WSK_FLAG_WAITALL } else { 0 };
        self.core.sync(self.core.timeout, |irp, b, _| {
            *b = wb;
            // SAFETY: open socket; the WSK_BUF lives in the op block and `buf` is borrowed
            // mutably until completion.
            unsafe { receive(raw, b, flags, irp) }
        })
    }

    /// Receives without waiting; `done(result, buf)` runs in the completion routine (IRQL <=
    /// DISPATCH_LEVEL, possibly before this call returns) with the bytes received (`Ok(0)`:
    /// graceful disconnect by the peer) and the buffer. IRQL <= DISPATCH_LEVEL. Errors before
    /// the receive starts come back with the buffer; see [`StreamSocket::receive`] for the
    /// rest. A pending receive completes with `STATUS_CANCELLED` when the socket is closed.
    /// Steady state: no allocation (IRP and block from the socket's cache, as
    /// [`StreamSocket::send_async`]).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    pub fn receive_async<B, F>(
        &self,
        buf: B,
        offset: usize,
        len: usize,
        wait_all: bool,
        done: F,
    ) -> core::result::Result<(), (Error, B)>
    where
        B: MdlBuffer + Send + 'static,
        F: FnOnce(Result<usize>, B) + Send + 'static,
    {
        let Some(receive) = self.dispatch().WskReceive else {
            return Err((Error::NotImplemented, buf));
        };
        let raw = self.core.raw.as_ptr();
        let flags = if wait_all { WSK_FLAG_WAITALL } else { 0 };
        // SAFETY: open socket; the WSK_BUF lives in the async block, which owns the buffer,
        // until completion.
        start_async(
            &self.core,
            buf,
            offset,
            len,
            None,
            done,
            |irp, b, _| unsafe { receive(raw, b, flags, irp) },
        )
    }

    /// Graceful disconnect (`WskDisconnect`, no flags): queued sends go out, then the peer
    /// reads end-of-stream (FIN). Receiving stays possible until the peer disconnects too.
    /// PASSIVE_LEVEL. Errors: `STATUS_INVALID_CONNECTION` (not connected),
    /// `STATUS_INVALID_DEVICE_STATE` (already disconnected), `STATUS_IO_TIMEOUT`, any status
    /// of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
    pub fn disconnect(&self) -> Result<()> {
        self.disconnect_raw(None, 0).map(|_| ())
    }

    /// Graceful disconnect that first sends `len` bytes of `buf` from `offset` (the optional
    /// final data of `WskDisconnect`); returns the bytes of final data sent. PASSIVE_LEVEL.
    /// Errors: as [`StreamSocket::disconnect`], and `STATUS_INVALID_PARAMETER` for a range
    /// outside `buf`.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
    pub fn disconnect_with<B: MdlBuffer + ?Sized>(
        &self,
        buf: &B,
        offset: usize,
        len: usize,
    ) -> Result<usize> {
        let wb = wsk_buf(buf, offset, len)?;
        self.disconnect_raw(Some(wb), 0)
    }

    /// Abortive disconnect (`WskDisconnect` with `WSK_FLAG_ABORTIVE`): the peer sees a reset
    /// (RST); pending operations on this socket complete with `STATUS_CONNECTION_ABORTED`.
    /// The socket is then only good for closing. PASSIVE_LEVEL. Errors:
    /// `STATUS_INVALID_CONNECTION` (not connected), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
    pub fn abort(&self) -> Result<()> {
        self.disconnect_raw(None, WSK_FLAG_ABORTIVE).map(|_| ())
    }

    /// Graceful disconnect (`WskDisconnect`, no flags, no final data) without waiting:
    /// `done(result)` runs in the completion routine (IRQL <= DISPATCH_LEVEL, possibly
    /// before this call returns). The disconnect completes once the queued sends have gone
    /// out and the FIN is sent, which may be never if the peer stops reading: closing the
    /// socket (`WskCloseSocket`) then completes it, with `STATUS_CANCELLED` or the provider's
    /// status. Callable at IRQL <= DISPATCH_LEVEL. Errors before the disconnect starts are
    /// returned (`STATUS_INSUFFICIENT_RESOURCES`, `STATUS_INVALID_DEVICE_STATE` on a closing
    /// socket); those of the disconnect itself reach `done` (as [`StreamSocket::disconnect`]).
    /// Uses an IRP and block of the socket's cache, as [`StreamSocket::send_async`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
    pub fn disconnect_async<F>(&self, done: F) -> Result<()>
    where
        F: FnOnce(Result<()>) + Send + 'static,
    {
        let disconnect = self.dispatch().WskDisconnect.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        // SAFETY: open socket; no final data, so the Buffer parameter is NULL.
        start_async(
            &self.core,
            NoData,
            0,
            0,
            None,
            move |r: Result<usize>, _: NoData| done(r.map(|_| ())),
            |irp, _, _| unsafe { disconnect(raw, core::ptr::null_mut(), 0, irp) },
        )
        .map_err(|(e, _)| e)
    }

    fn disconnect_raw(&self, wb: Option<WSK_BUF>, flags: u32) -> Result<usize> {
        let disconnect = self.dispatch().WskDisconnect.ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core.sync(self.core.timeout, |irp, b, _| {
            let p = match wb {
                Some(w) => {
                    *b = w;
                    b as *mut WSK_BUF
                }
                None => core::ptr::null_mut(),
            };
            // SAFETY: open socket; the optional WSK_BUF lives in the op block and its buffer
            // is borrowed until completion.
            unsafe { disconnect(raw, p, flags, irp) }
        })
    }

    /// The local address (`WskGetLocalAddress`). PASSIVE_LEVEL.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetLocalAddress)
    }

    /// The remote address (`WskGetRemoteAddress`). PASSIVE_LEVEL.
    pub fn remote_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetRemoteAddress)
    }

    /// Closes the socket with `WskCloseSocket`, which first completes every pending
    /// operation with `STATUS_CANCELLED`. PASSIVE_LEVEL. (Dropping also closes.)
    pub fn close(&self) -> Result<()> {
        self.core.close()
    }
}

impl StreamSocket {
    /// Like [`StreamSocket::connect`] (`WskSocketConnect`, with the `WskSocket` + `WskBind` +
    /// `WskConnect` fallback), giving the socket `handler` for its event callbacks. No event
    /// is enabled yet (except static ones); call [`StreamSocket::enable_events`]. The handler
    /// lives until the socket is closed and every retained indication dropped.
    ///
    /// PASSIVE_LEVEL. Errors: as [`StreamSocket::connect`].
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/enabling-and-disabling-event-callback-functions>
    pub fn connect_with_events<H: ConnectionEvents>(
        client: &WskClient,
        remote: SocketAddr,
        timeout: Option<Duration>,
        handler: H,
    ) -> Result<StreamSocket> {
        require_passive()?;
        let hdr = connection_ctx(handler)?;
        let ctx = hdr.as_ptr() as *mut c_void;
        let table =
            table_of(hdr, WSK_FLAG_CONNECTION_SOCKET) as *const WSK_CLIENT_CONNECTION_DISPATCH;
        // The context block outlives the socket (released after close).
        let r = Self::socket_connect_raw(client, remote, timeout, ctx, table)
            .and_then(|(r, op)| r.map(|info| (info, op)));
        match r {
            Ok((info, op)) => match NonNull::new(info as *mut WSK_SOCKET) {
                Some(raw) => {
                    set_socket(hdr, raw);
                    drop(op);
                    Ok(StreamSocket {
                        core: Core::with_events(raw, hdr.as_ptr()),
                        fallback: false,
                    })
                }
                None => {
                    // SAFETY: no socket: ours is the only reference.
                    unsafe { CtxHeader::release(hdr.as_ptr()) };
                    Err(Error::InvalidParameter)
                }
            },
            Err(e) if e.status() == STATUS_NOT_IMPLEMENTED => {
                let any = SockAddrBuf::unspecified_like(&remote);
                let core = create_with_events(
                    client,
                    &remote,
                    SOCK_STREAM,
                    IPPROTO_TCP,
                    WSK_FLAG_CONNECTION_SOCKET,
                    hdr,
                )?;
                let s = StreamSocket {
                    core,
                    fallback: true,
                };
                let d = *s.dispatch();
                s.core.bind(d.WskBind, any)?;
                s.connect_to(remote, timeout)?;
                Ok(s)
            }
            Err(e) => {
                // SAFETY: no socket: ours is the only reference.
                unsafe { CtxHeader::release(hdr.as_ptr()) };
                Err(e)
            }
        }
    }

    /// Enables connection event callbacks (`SO_WSK_EVENT_CALLBACK`, several at once; no IRP).
    /// The socket must be connected and have a handler.
    ///
    /// IRQL <= DISPATCH_LEVEL. Errors: `STATUS_INVALID_PARAMETER` (an event not valid for a
    /// connection socket), `STATUS_INVALID_DEVICE_STATE` (not connected: the emulation's
    /// status), `STATUS_INVALID_HANDLE` (closing), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn enable_events(&self, events: EventSet) -> Result<()> {
        control_events(&self.core, events.bits())
    }

    /// Disables one event callback (`SO_WSK_EVENT_CALLBACK` with `WSK_EVENT_DISABLE`), with an
    /// IRP, waiting for completion (the provider completes it once no call to the callback
    /// is in progress). PASSIVE_LEVEL. Errors: `STATUS_INVALID_DEVICE_STATE` for a static
    /// event (the emulation's status; the docs say static events "cannot be disabled"), any
    /// status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn disable_event(&self, event: Event) -> Result<()> {
        self.core.disable_event(event.bits())
    }
}

/// The empty buffer of an operation that carries no data (a disconnect without final data):
/// no MDL, length 0.
struct NoData;

// SAFETY: describes no bytes; a NULL MDL with length 0 is never dereferenced.
unsafe impl MdlBuffer for NoData {
    fn mdl(&self) -> *mut windows_sys::Wdk::Foundation::MDL {
        core::ptr::null_mut()
    }
    fn len(&self) -> usize {
        0
    }
}
