//! Listening (TCP) sockets: [`ListenSocket`] and [`Accepted`].

use core::ffi::c_void;
use core::net::SocketAddr;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU8;
use core::time::Duration;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_CANCELLED, STATUS_MORE_PROCESSING_REQUIRED};
use wsk_sys::*;

use super::*;
use crate::addr::SockAddrBuf;
use crate::client::WskClient;
use crate::error::{check, Error, Result};
use crate::events::{control_events, listen_ctx, Event, EventSet, InspectId, ListenEvents};
use crate::irp::{set_completion_routine_async, OwnedIrp};
use crate::pool::{PoolBox, WSK_TAG};

/// A listening (TCP) WSK socket: `WskSocket(WSK_FLAG_LISTEN_SOCKET)` + `WskBind`, after
/// which it listens ("After a WSK application binds a listening socket to a local transport
/// address, the socket begins listening for incoming connections":
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections>).
pub struct ListenSocket {
    pub(crate) core: Core,
}

/// A connection accepted by [`ListenSocket::accept`], with its addresses (the kernel
/// counterpart of `GetAcceptExSockaddrs`).
pub struct Accepted {
    /// The connected socket.
    pub socket: StreamSocket,
    /// Its local address (the listener's address, with a concrete IP if it listened on the
    /// wildcard).
    pub local: SocketAddr,
    /// The remote peer's address.
    pub remote: SocketAddr,
}

impl ListenSocket {
    pub(crate) fn dispatch(&self) -> &WSK_PROVIDER_LISTEN_DISPATCH {
        // SAFETY: created as a listen socket, so its table is the listen table. Read from the
        // copy taken at creation (never from the socket, which close frees).
        unsafe { self.core.table() }
    }

    /// Creates a listening socket of `local`'s family and binds it to `local` (port 0 picks
    /// an ephemeral port); it listens from then on. PASSIVE_LEVEL.
    /// Errors: `STATUS_ADDRESS_ALREADY_EXISTS` (address in use),
    /// `STATUS_INVALID_ADDRESS_COMPONENT`, `STATUS_INSUFFICIENT_RESOURCES`, any status of the
    /// provider.
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
    pub fn bind(client: &WskClient, local: SocketAddr) -> Result<ListenSocket> {
        let core = Core::create(
            client,
            &local,
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_LISTEN_SOCKET,
        )?;
        let s = ListenSocket { core };
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// Accepts one incoming connection (`WskAccept`), waiting for it (bounded by the
    /// socket's timeout, see [`ListenSocket::set_timeout`]). The accepted socket has no event
    /// callbacks. PASSIVE_LEVEL.
    ///
    /// Errors: `STATUS_CANCELLED` when the listening socket is closed while the accept is
    /// pending (WskCloseSocket cancels pending operations), `STATUS_IO_TIMEOUT`,
    /// `STATUS_INSUFFICIENT_RESOURCES`, any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
    pub fn accept(&self) -> Result<Accepted> {
        let accept = self.dispatch().WskAccept.ok_or(Error::NotImplemented)?;
        // The accepted socket gets no op block: it allocates one at its first synchronous
        // call or its close (Core::new).
        let raw = self.core.raw.as_ptr();
        let (info, local, remote) = self.core.sync_addr2(self.core.timeout, |irp, _, l, r| {
            *l = SockAddrBuf::zeroed();
            *r = SockAddrBuf::zeroed();
            // SAFETY: open socket; both address buffers live in the op block until
            // completion.
            unsafe {
                accept(
                    raw,
                    0,
                    core::ptr::null_mut(),
                    core::ptr::null(),
                    l.as_mut_ptr(),
                    r.as_mut_ptr(),
                    irp,
                )
            }
        })?;
        let raw = NonNull::new(info as *mut WSK_SOCKET).ok_or(Error::InvalidParameter)?;
        let socket = StreamSocket {
            core: Core::new(raw),
            fallback: false,
        };
        let local = local.get().ok_or(Error::InvalidParameter)?;
        let remote = remote.get().ok_or(Error::InvalidParameter)?;
        Ok(Accepted {
            socket,
            local,
            remote,
        })
    }

    /// Accepts one incoming connection without waiting: `done(result)` runs in the
    /// completion routine (IRQL <= DISPATCH_LEVEL, possibly before this call returns) with the
    /// [`Accepted`] connection. A socket dropped in `done` is closed without waiting. When
    /// this call returns `Ok`, the accept is queued at the provider: closing the listening
    /// socket then completes it with `STATUS_CANCELLED` (WskCloseSocket "cancels and
    /// completes all pending IRPs from prior calls to the socket's functions":
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>).
    /// IRQL <= DISPATCH_LEVEL. Errors before the start: `STATUS_INSUFFICIENT_RESOURCES`,
    /// `STATUS_INVALID_HANDLE` (closing); later ones reach `done`.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
    pub fn accept_async<F>(&self, done: F) -> Result<()>
    where
        F: FnOnce(Result<Accepted>) + Send + 'static,
    {
        let accept = self.dispatch().WskAccept.ok_or(Error::NotImplemented)?;
        let guard = self.core.enter()?;
        let irp = OwnedIrp::allocate()?;
        let irp_ptr = irp.as_ptr();
        let block = PoolBox::try_new(
            AcceptBlock {
                irp: Some(irp),
                local: SockAddrBuf::zeroed(),
                remote: SockAddrBuf::zeroed(),
                done: Some(done),
                owners: AtomicU8::new(2),
            },
            WSK_TAG,
        )?;
        let mut block = block;
        // SAFETY: our IRP with a free next stack location; the block outlives the routine.
        // On failure nothing was started and the block (with the IRP) is freed here.
        unsafe {
            set_completion_routine_async(
                irp_ptr,
                accept_completion::<F>,
                &mut *block as *mut AcceptBlock<F> as *mut c_void,
            )?
        };
        let p = block.into_raw();
        let raw = self.core.raw.as_ptr();
        // SAFETY: p is the live block (our share is held until the end of this function);
        // the address buffers live in it until the completion routine ran.
        let dispatch_status = unsafe {
            accept(
                raw,
                0,
                core::ptr::null_mut(),
                core::ptr::null(),
                (*p).local.as_mut_ptr(),
                (*p).remote.as_mut_ptr(),
                irp_ptr,
            )
        };
        // SAFETY: our share is still held.
        if unsafe { refused(p, dispatch_status) } {
            // SAFETY: the completion routine will never run: the block (with its IRP) is
            // ours alone; `done` is not called.
            drop(unsafe { PoolBox::from_raw(p, WSK_TAG) });
            drop(guard);
            return Err(check(dispatch_status)
                .err()
                .unwrap_or(Error::Status(dispatch_status)));
        }
        // SAFETY: our share, given up here.
        unsafe { release(p) };
        drop(guard);
        Ok(())
    }

    /// Sets the timeout of [`ListenSocket::accept`] (`None`: wait indefinitely).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.timeout = timeout;
    }

    /// The bound local address (`WskGetLocalAddress`). PASSIVE_LEVEL.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.core.local_address(self.dispatch().WskGetLocalAddress)
    }

    /// Closes the socket (`WskCloseSocket`); a pending accept completes with
    /// `STATUS_CANCELLED`. PASSIVE_LEVEL. (Dropping also closes.)
    pub fn close(&self) -> Result<()> {
        self.core.close()
    }
}

/// State of one asynchronous accept; freed by the last of its two owners (`accept_async`
/// and the completion routine).
struct AcceptBlock<F> {
    irp: Option<OwnedIrp>,
    local: SockAddrBuf,
    remote: SockAddrBuf,
    done: Option<F>,
    owners: AtomicU8,
}

impl<F> TwoOwners for AcceptBlock<F> {
    fn owners(&self) -> &AtomicU8 {
        &self.owners
    }
}

unsafe extern "system" fn accept_completion<F>(
    _dev: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS
where
    F: FnOnce(Result<Accepted>) + Send + 'static,
{
    let p = context as *mut AcceptBlock<F>;
    // SAFETY: context is the AcceptBlock leaked by accept_async, live while this routine
    // holds its share; this routine runs once and is the only one to touch these fields
    // (accept_async reads only `owners` until it lets go).
    let (irp, done, local, remote) =
        unsafe { ((*p).irp.take(), (*p).done.take(), (*p).local, (*p).remote) };
    let (status, info) = irp
        .as_ref()
        .map_or((STATUS_CANCELLED, 0), |i| i.io_status());
    drop(irp); // IoFreeIrp inside a completion routine
               // SAFETY: our share, given up here; nothing of the block is used after.
    unsafe { release(p) };
    let result = check(status).and_then(|_| {
        let raw = NonNull::new(info as *mut WSK_SOCKET).ok_or(Error::InvalidParameter)?;
        // No op block: the socket allocates one at its first synchronous call (Core::new).
        let socket = StreamSocket {
            core: Core::new(raw),
            fallback: false,
        };
        // On a decoding failure `socket` drops here, which closes it.
        let local = local.get().ok_or(Error::InvalidParameter)?;
        let remote = remote.get().ok_or(Error::InvalidParameter)?;
        Ok(Accepted {
            socket,
            local,
            remote,
        })
    });
    if let Some(done) = done {
        done(result);
    }
    STATUS_MORE_PROCESSING_REQUIRED
}

impl ListenSocket {
    /// Like [`ListenSocket::bind`], giving the socket `handler` for `WskAcceptEvent`. Enable
    /// it with [`ListenSocket::enable_events`] (`EventSet::ACCEPT`); connection events
    /// enabled on the listening socket are inherited by sockets accepted through the event
    /// (SO_WSK_EVENT_CALLBACK page). PASSIVE_LEVEL. Errors: as [`ListenSocket::bind`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn bind_with_events<L: ListenEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: L,
    ) -> Result<ListenSocket> {
        Self::bind_events(client, local, handler, false)
    }

    /// Like [`ListenSocket::bind_with_events`] in conditional-accept mode: sets
    /// `SO_CONDITIONAL_ACCEPT` before binding, so each incoming connection is first shown to
    /// [`ListenEvents::on_inspect`] (and [`ListenEvents::on_abort`] if the peer leaves before
    /// a pended decision). PASSIVE_LEVEL. Errors: as [`ListenSocket::bind`], or any status
    /// of the option.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections>
    pub fn bind_conditional<L: ListenEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: L,
    ) -> Result<ListenSocket> {
        Self::bind_events(client, local, handler, true)
    }

    fn bind_events<L: ListenEvents>(
        client: &WskClient,
        local: SocketAddr,
        handler: L,
        conditional: bool,
    ) -> Result<ListenSocket> {
        let hdr = listen_ctx(handler)?;
        let core = create_with_events(
            client,
            &local,
            SOCK_STREAM,
            IPPROTO_TCP,
            WSK_FLAG_LISTEN_SOCKET,
            hdr,
        )?;
        let s = ListenSocket { core };
        if conditional {
            s.set_conditional_accept()?;
        }
        s.core.bind(s.dispatch().WskBind, SockAddrBuf::new(local))?;
        Ok(s)
    }

    /// `SO_CONDITIONAL_ACCEPT` = 1, before bind.
    fn set_conditional_accept(&self) -> Result<()> {
        let control = self
            .core
            .basic()
            .WskControlSocket
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        self.core
            .sync(self.core.timeout, |irp, b, _| {
                let v = b as *mut WSK_BUF as *mut u32;
                // SAFETY: the ULONG lives in the op block until completion; open socket.
                unsafe {
                    v.write(1);
                    control(
                        raw,
                        WskSetOption,
                        SO_CONDITIONAL_ACCEPT as u32,
                        0xffff,
                        4,
                        v as *mut c_void,
                        0,
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                        irp,
                    )
                }
            })
            .map(|_| ())
    }

    /// Enables listening-socket events: `EventSet::ACCEPT`, and connection events to be
    /// inherited by accepted sockets (which cannot be disabled on the listener afterwards).
    /// IRQL <= DISPATCH_LEVEL. Errors: as [`StreamSocket::enable_events`].
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback>
    pub fn enable_events(&self, events: EventSet) -> Result<()> {
        control_events(&self.core, events.bits())
    }

    /// Disables one event; see [`StreamSocket::disable_event`]. PASSIVE_LEVEL.
    pub fn disable_event(&self, event: Event) -> Result<()> {
        self.core.disable_event(event.bits())
    }

    /// Completes a pended inspection (`WskInspectComplete`): `accept` establishes the
    /// connection (it then reaches a pending `accept` or `ListenEvents::on_accept`), else it
    /// is dropped. PASSIVE_LEVEL. Errors: `STATUS_INVALID_PARAMETER` (unknown or aborted id,
    /// as the emulation reports it), `STATUS_FILE_FORCED_CLOSED` (socket no longer
    /// functional, per the docs), any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_complete>
    pub fn inspect_complete(&self, id: InspectId, accept: bool) -> Result<()> {
        let complete = self
            .dispatch()
            .WskInspectComplete
            .ok_or(Error::NotImplemented)?;
        let raw = self.core.raw.as_ptr();
        let action = if accept {
            WskInspectAccept
        } else {
            WskInspectReject
        };
        self.core
            .sync(self.core.timeout, |irp, b, _| {
                let p = b as *mut WSK_BUF as *mut WSK_INSPECT_ID;
                // SAFETY: the id lives in the op block (16 bytes <= WSK_BUF) until completion.
                unsafe {
                    p.write(id.0);
                    complete(raw, p, action, irp)
                }
            })
            .map(|_| ())
    }

    /// The provider's socket object (valid until the socket is closed).
    pub fn as_raw(&self) -> PWSK_SOCKET {
        self.core.raw.as_ptr()
    }
}
