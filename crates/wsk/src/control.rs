//! Socket options (`WskControlSocket` with `WskSetOption` / `WskGetOption`), cached
//! security descriptors (`WSK_CACHE_SD` / `WSK_RELEASE_SD` through `WskControlClient`), and
//! `WskConnectEx` (connect with initial data).
//!
//! Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_client>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>.

use core::ffi::c_void;
use core::net::SocketAddr;
use core::time::Duration;

use windows_sys::Win32::Foundation::{STATUS_NOT_IMPLEMENTED, STATUS_NOT_SUPPORTED};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_DESCRIPTOR};
use wsk_sys::{
    WskGetOption, WskSetOption, SO_WSK_SECURITY, WSK_BUF, WSK_CACHE_SD, WSK_CONTROL_SOCKET_TYPE,
    WSK_RELEASE_SD,
};

use crate::addr::SockAddrBuf;
use crate::buf::{wsk_buf, MdlBuffer};
use crate::client::WskClient;
use crate::error::{check, Error, Result};
use crate::socket::{Core, DatagramSocket, ListenSocket, StreamSocket};

/// `SOL_SOCKET` (ws2def.h): the level of the socket-level options.
pub const SOL_SOCKET: u32 = 0xffff;
/// `IPPROTO_TCP`: the level of `TCP_NODELAY`.
pub const IPPROTO_TCP: u32 = 6;
/// `SO_REUSEADDR`: allow the local address to be shared
/// (<https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-reuseaddr>).
pub const SO_REUSEADDR: u32 = 4;
/// `SO_KEEPALIVE`: TCP keep-alive probes.
pub const SO_KEEPALIVE: u32 = 8;
/// `SO_SNDBUF`: send buffer size in bytes.
pub const SO_SNDBUF: u32 = 0x1001;
/// `SO_RCVBUF`: receive buffer size in bytes.
pub const SO_RCVBUF: u32 = 0x1002;
/// `SO_EXCLUSIVEADDRUSE` (`(int)(~SO_REUSEADDR)`): reserve the local address exclusively
/// (<https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-exclusiveaddruse>).
pub const SO_EXCLUSIVEADDRUSE: u32 = !SO_REUSEADDR;
/// `TCP_NODELAY` at `IPPROTO_TCP`: disable Nagle coalescing.
pub const TCP_NODELAY: u32 = 1;

/// Largest initial buffer of [`StreamSocket::connect_ex`], in bytes (the `WskConnectEx`
/// buffer limit as wsk-sys documents it from the page).
pub const MAX_CONNECT_EX_BYTES: usize = 65_535;

/// One transport of [`WskClient::transports`] (a `WSK_TRANSPORT`): a valid
/// (`SocketType`, `Protocol`, address family) combination for new sockets.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_transport>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// `WSK_TRANSPORT.Version`.
    pub version: u16,
    /// `SOCK_STREAM` (1), `SOCK_DGRAM` (2), ...
    pub socket_type: u16,
    /// `IPPROTO_TCP` (6), `IPPROTO_UDP` (17), ...
    pub protocol: u32,
    /// `AF_INET` (2) or `AF_INET6` (23), ...
    pub address_family: u16,
    /// `WSK_TRANSPORT.ProviderId` as one number (`Data1`, `Data2`, `Data3`, then the
    /// eight `Data4` bytes, most significant first, as `GUID::from_u128` takes it).
    pub provider_id: u128,
}

/// Most transports [`WskClient::transports`] accepts (bounds its allocation).
pub const MAX_TRANSPORTS: usize = 256;

impl Core {
    /// One `WskControlSocket` option request, waiting for its IRP. `input` is the ULONG
    /// (or pointer-sized) value for `WskSetOption`; for `WskGetOption` a ULONG is read back.
    /// The in/out values live in the operation block until completion. PASSIVE_LEVEL.
    pub(crate) fn option(
        &self,
        request: WSK_CONTROL_SOCKET_TYPE,
        code: u32,
        level: u32,
        input: Option<u64>,
        input_size: usize,
    ) -> Result<u32> {
        let control = self.basic().WskControlSocket.ok_or(Error::NotImplemented)?;
        let raw = self.raw.as_ptr();
        let get = request == WskGetOption;
        let (_, _, mut out) = self.sync_addr2(self.timeout, |irp, _, a, a2| {
            *a = SockAddrBuf::zeroed();
            *a2 = SockAddrBuf::zeroed();
            let in_ptr = a.as_mut_ptr() as *mut c_void;
            if let Some(v) = input {
                // SAFETY: the 28-byte, 8-aligned buffer holds a u64.
                unsafe { (in_ptr as *mut u64).write(v) };
            }
            let (in_size, in_buf) = match input {
                Some(_) => (input_size, in_ptr),
                None => (0, core::ptr::null_mut()),
            };
            let (out_size, out_buf) = if get {
                (4, a2.as_mut_ptr() as *mut c_void)
            } else {
                (0, core::ptr::null_mut())
            };
            // SAFETY: open socket; both buffers live in the op block until completion.
            unsafe {
                control(
                    raw,
                    request,
                    code,
                    level,
                    in_size,
                    in_buf,
                    out_size,
                    out_buf,
                    core::ptr::null_mut(),
                    irp,
                )
            }
        })?;
        // SAFETY: the returned copy of the output buffer; 8-aligned, 28 bytes.
        Ok(unsafe { (out.as_mut_ptr() as *const u32).read() })
    }

    pub(crate) fn set_ulong(&self, code: u32, level: u32, v: u32) -> Result<()> {
        self.option(WskSetOption, code, level, Some(v as u64), 4)
            .map(|_| ())
    }

    pub(crate) fn get_ulong(&self, code: u32, level: u32) -> Result<u32> {
        self.option(WskGetOption, code, level, None, 0)
    }
}

macro_rules! socket_options {
    ($t:ty) => {
        impl $t {
            /// Sets `SO_REUSEADDR` (`WskSetOption`, `SOL_SOCKET`, a ULONG 0/1): lets this
            /// socket share its local address (see "Sharing Transport Addresses",
            /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sharing-transport-addresses>).
            /// Set it before binding. PASSIVE_LEVEL. Errors: any status of the provider
            /// (the emulator: `STATUS_INVALID_DEVICE_STATE` after bind,
            /// `STATUS_INVALID_PARAMETER` while `SO_EXCLUSIVEADDRUSE` is on, both its
            /// choices), `STATUS_INVALID_DEVICE_STATE` above PASSIVE_LEVEL.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-reuseaddr>
            pub fn set_reuse_address(&self, on: bool) -> Result<()> {
                self.core.set_ulong(SO_REUSEADDR, SOL_SOCKET, on as u32)
            }

            /// Reads `SO_REUSEADDR` (`WskGetOption`). PASSIVE_LEVEL. Errors: any status of
            /// the provider.
            pub fn reuse_address(&self) -> Result<bool> {
                self.core
                    .get_ulong(SO_REUSEADDR, SOL_SOCKET)
                    .map(|v| v != 0)
            }

            /// Sets `SO_EXCLUSIVEADDRUSE`: the local address is reserved for this socket.
            /// "If a WSK application sets this socket option, it must do so before the
            /// socket is bound". PASSIVE_LEVEL. Errors as
            /// [`Self::set_reuse_address`].
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-exclusiveaddruse>
            pub fn set_exclusive_address_use(&self, on: bool) -> Result<()> {
                self.core
                    .set_ulong(SO_EXCLUSIVEADDRUSE, SOL_SOCKET, on as u32)
            }

            /// Reads `SO_EXCLUSIVEADDRUSE`. PASSIVE_LEVEL.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-exclusiveaddruse>
            pub fn exclusive_address_use(&self) -> Result<bool> {
                self.core
                    .get_ulong(SO_EXCLUSIVEADDRUSE, SOL_SOCKET)
                    .map(|v| v != 0)
            }

            /// Sets `SO_RCVBUF`, the receive buffer size in bytes (a ULONG). PASSIVE_LEVEL.
            /// Errors: any status of the provider (the emulator: `STATUS_INVALID_PARAMETER`
            /// above `i32::MAX`).
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-rcvbuf>
            pub fn set_receive_buffer_size(&self, bytes: u32) -> Result<()> {
                self.core.set_ulong(SO_RCVBUF, SOL_SOCKET, bytes)
            }

            /// Reads `SO_RCVBUF` in bytes. PASSIVE_LEVEL.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-rcvbuf>
            pub fn receive_buffer_size(&self) -> Result<u32> {
                self.core.get_ulong(SO_RCVBUF, SOL_SOCKET)
            }

            /// Sets `SO_SNDBUF`, the send buffer size in bytes (a ULONG). PASSIVE_LEVEL.
            /// Errors as [`Self::set_receive_buffer_size`].
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-sndbuf>
            pub fn set_send_buffer_size(&self, bytes: u32) -> Result<()> {
                self.core.set_ulong(SO_SNDBUF, SOL_SOCKET, bytes)
            }

            /// Reads `SO_SNDBUF` in bytes. PASSIVE_LEVEL.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-sndbuf>
            pub fn send_buffer_size(&self) -> Result<u32> {
                self.core.get_ulong(SO_SNDBUF, SOL_SOCKET)
            }

            /// Applies a cached security descriptor to the socket (`SO_WSK_SECURITY`, input a
            /// `PSECURITY_DESCRIPTOR`-typed variable): it controls the sharing of the local
            /// address. Set it before binding. The descriptor must outlive the socket's use
            /// of it, which the borrow enforces for this call. PASSIVE_LEVEL. Errors: any
            /// status of the provider (the emulator: `STATUS_INVALID_PARAMETER` for a
            /// descriptor that is not cached).
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-security>
            pub fn set_security_descriptor(&self, sd: &CachedSecurityDescriptor<'_>) -> Result<()> {
                self.core
                    .option(
                        WskSetOption,
                        SO_WSK_SECURITY,
                        SOL_SOCKET,
                        Some(sd.as_raw() as usize as u64),
                        core::mem::size_of::<PSECURITY_DESCRIPTOR>(),
                    )
                    .map(|_| ())
            }
        }
    };
}

socket_options!(StreamSocket);
socket_options!(DatagramSocket);
socket_options!(ListenSocket);

macro_rules! tcp_options {
    ($t:ty) => {
        impl $t {
            /// Sets `SO_KEEPALIVE` (a ULONG 0/1). PASSIVE_LEVEL. Errors: any status of the
            /// provider.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-keepalive>
            pub fn set_keepalive(&self, on: bool) -> Result<()> {
                self.core.set_ulong(SO_KEEPALIVE, SOL_SOCKET, on as u32)
            }

            /// Reads `SO_KEEPALIVE`. PASSIVE_LEVEL.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-keepalive>
            pub fn keepalive(&self) -> Result<bool> {
                self.core
                    .get_ulong(SO_KEEPALIVE, SOL_SOCKET)
                    .map(|v| v != 0)
            }

            /// Sets `TCP_NODELAY` at `IPPROTO_TCP` (a ULONG 0/1): disables Nagle
            /// coalescing. PASSIVE_LEVEL. Errors: any status of the provider.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/tcp-nodelay>
            pub fn set_nodelay(&self, on: bool) -> Result<()> {
                self.core.set_ulong(TCP_NODELAY, IPPROTO_TCP, on as u32)
            }

            /// Reads `TCP_NODELAY`. PASSIVE_LEVEL.
            /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/tcp-nodelay>
            pub fn nodelay(&self) -> Result<bool> {
                self.core
                    .get_ulong(TCP_NODELAY, IPPROTO_TCP)
                    .map(|v| v != 0)
            }
        }
    };
}

tcp_options!(StreamSocket);
tcp_options!(ListenSocket);

/// A security descriptor cached by the WSK subsystem (`WSK_CACHE_SD`), released with
/// `WSK_RELEASE_SD` on drop. Pass it to [`StreamSocket::set_security_descriptor`] (and
/// friends) or, as a raw pointer ([`CachedSecurityDescriptor::as_raw`]), to the
/// `SecurityDescriptor` argument of `WskSocket` / `WskSocketConnect`, which must be NULL or
/// such a cached copy (seed 002).
/// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-cache-sd>,
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-release-sd>
pub struct CachedSecurityDescriptor<'a> {
    client: &'a WskClient,
    sd: PSECURITY_DESCRIPTOR,
}

// SAFETY: the cached descriptor is owned by the WSK subsystem, usable from any thread.
unsafe impl Send for CachedSecurityDescriptor<'_> {}
// SAFETY: as above; this type only reads the pointer.
unsafe impl Sync for CachedSecurityDescriptor<'_> {}

impl<'a> CachedSecurityDescriptor<'a> {
    /// Caches an empty absolute security descriptor (revision 1, no owner, group or ACLs).
    /// PASSIVE_LEVEL. Errors: `STATUS_NOT_IMPLEMENTED` (no `WskControlClient`), any status
    /// of the provider.
    pub fn cache_empty(client: &'a WskClient) -> Result<Self> {
        let sd = SECURITY_DESCRIPTOR {
            Revision: 1,
            Sbz1: 0,
            Control: 0,
            Owner: core::ptr::null_mut(),
            Group: core::ptr::null_mut(),
            Sacl: core::ptr::null_mut(),
            Dacl: core::ptr::null_mut(),
        };
        // SAFETY: a valid descriptor on this frame, read during the call only.
        unsafe {
            Self::cache(
                client,
                &sd as *const SECURITY_DESCRIPTOR as PSECURITY_DESCRIPTOR,
            )
        }
    }

    /// Caches `sd` (`WSK_CACHE_SD`: `WskControlClient` with no IRP, input and output
    /// `PSECURITY_DESCRIPTOR`-typed variables). PASSIVE_LEVEL.
    /// Errors: `STATUS_NOT_IMPLEMENTED`, any status of the provider.
    ///
    /// # Safety
    /// `sd` points to a valid `SECURITY_DESCRIPTOR` for the duration of the call.
    pub unsafe fn cache(client: &'a WskClient, sd: PSECURITY_DESCRIPTOR) -> Result<Self> {
        crate::socket::require_passive()?;
        let control = client
            .dispatch()
            .WskControlClient
            .ok_or(Error::NotImplemented)?;
        let mut input: PSECURITY_DESCRIPTOR = sd;
        let mut output: PSECURITY_DESCRIPTOR = core::ptr::null_mut();
        // SAFETY: both variables live on this frame; the call takes no IRP (the page
        // requires Irp = NULL), so it completes before returning.
        check(unsafe {
            control(
                client.raw_client(),
                WSK_CACHE_SD,
                core::mem::size_of::<PSECURITY_DESCRIPTOR>(),
                &mut input as *mut PSECURITY_DESCRIPTOR as *mut c_void,
                core::mem::size_of::<PSECURITY_DESCRIPTOR>(),
                &mut output as *mut PSECURITY_DESCRIPTOR as *mut c_void,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        })?;
        if output.is_null() {
            return Err(Error::InvalidParameter);
        }
        Ok(CachedSecurityDescriptor { client, sd: output })
    }

    /// The cached copy, for the `SecurityDescriptor` argument of `WskSocket` /
    /// `WskSocketConnect`. Valid until this value is dropped.
    pub fn as_raw(&self) -> PSECURITY_DESCRIPTOR {
        self.sd
    }
}

impl Drop for CachedSecurityDescriptor<'_> {
    fn drop(&mut self) {
        let Some(control) = self.client.dispatch().WskControlClient else {
            return;
        };
        let mut input = self.sd;
        // SAFETY: releases the copy this value owns, once; no IRP (required NULL).
        unsafe {
            control(
                self.client.raw_client(),
                WSK_RELEASE_SD,
                core::mem::size_of::<PSECURITY_DESCRIPTOR>(),
                &mut input as *mut PSECURITY_DESCRIPTOR as *mut c_void,
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
    }
}

impl StreamSocket {
    /// Creates a TCP socket, binds it to `local` (a wildcard address and port 0 let the
    /// stack choose), and connects it to `remote` with `WskConnectEx`, sending `len` bytes of
    /// `data` from `offset` (if given) as part of the connect: the kernel counterpart of
    /// `ConnectEx`. Returns the socket and the bytes of initial data sent.
    ///
    /// Fallback: when the connection table has no `WskConnectEx` (NULL entry), or it
    /// answers `STATUS_NOT_IMPLEMENTED` / `STATUS_NOT_SUPPORTED`, the socket connects with
    /// `WskConnect` and then sends the data with `WskSend`; [`StreamSocket::used_fallback`]
    /// tells which path ran.
    ///
    /// PASSIVE_LEVEL (it waits). `timeout` bounds the connect (and the fallback's send); on
    /// expiry the IRP is cancelled and `STATUS_IO_TIMEOUT` returned. Errors:
    /// `STATUS_INVALID_PARAMETER` (range outside `data`, more than
    /// [`MAX_CONNECT_EX_BYTES`], or families that differ), `STATUS_CONNECTION_REFUSED`,
    /// `STATUS_ADDRESS_ALREADY_EXISTS` (bind), `STATUS_IO_TIMEOUT`, any status of the
    /// provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>
    pub fn connect_ex<B: MdlBuffer + ?Sized>(
        client: &WskClient,
        local: SocketAddr,
        remote: SocketAddr,
        data: Option<(&B, usize, usize)>,
        timeout: Option<Duration>,
    ) -> Result<(StreamSocket, usize)> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(Error::InvalidParameter);
        }
        let wb: Option<WSK_BUF> = match data {
            Some((b, off, len)) if len > MAX_CONNECT_EX_BYTES => {
                let _ = (b, off);
                return Err(Error::InvalidParameter);
            }
            Some((b, off, len)) => Some(wsk_buf(b, off, len)?),
            None => None,
        };
        let mut s = StreamSocket::create(client, &remote)?;
        s.bind(local)?;
        if let Some(connect_ex) = s.dispatch().WskConnectEx {
            let raw = s.core.raw.as_ptr();
            let r = s.core.sync(timeout, |irp, b, addr| {
                *addr = SockAddrBuf::new(remote);
                let bp = match wb {
                    Some(w) => {
                        *b = w;
                        b as *mut WSK_BUF
                    }
                    None => core::ptr::null_mut(),
                };
                // SAFETY: open, bound socket; the address and WSK_BUF live in the op block
                // and `data` is borrowed until completion.
                unsafe { connect_ex(raw, addr.as_mut_ptr(), bp, 0, irp) }
            });
            match r {
                Ok(n) => return Ok((s, n)),
                Err(e)
                    if e.status() == STATUS_NOT_IMPLEMENTED
                        || e.status() == STATUS_NOT_SUPPORTED => {}
                Err(e) => return Err(e),
            }
        }
        s.fallback = true;
        s.connect_to(remote, timeout)?;
        let n = match data {
            Some((b, off, len)) if len > 0 => {
                let saved = s.core.timeout;
                s.core.timeout = timeout;
                let r = s.send(b, off, len);
                s.core.timeout = saved;
                r?
            }
            _ => 0,
        };
        Ok((s, n))
    }
}
