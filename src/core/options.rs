//! SET_OPTION and GET_OPTION (docs/ioctl.md): the contract's `OPTION_*` ids mapped to the
//! `wsk` crate's option setters/getters (`WskControlSocket`). CONNECT_WITH_DATA: a new stream
//! socket connected with `WskConnectEx` and its initial data (`wsk::StreamSocket::connect_ex`,
//! which falls back to `WskConnect` + `WskSend`), entered in the file's table.

use super::*;
use wskclient_ioctl::options::*;

/// Pool tag of CONNECT_WITH_DATA's copy of the initial data (`CWsk` in a pool dump).
const CONNECT_DATA_TAG: u32 = u32::from_le_bytes(*b"CWsk");

/// Applies `$body` to the socket bound as `$x`, whatever its kind.
macro_rules! on_socket {
    ($s:expr, $x:ident => $body:expr) => {
        match $s {
            Socket::Stream($x) => $body,
            Socket::Listen($x) => $body,
            Socket::Datagram($x) => $body,
        }
    };
}

/// Applies `$body` to a stream or listening socket; `STATUS_NOT_SUPPORTED` for datagram
/// sockets (TCP options).
macro_rules! on_tcp {
    ($s:expr, $x:ident => $body:expr) => {
        match $s {
            Socket::Stream($x) => $body,
            Socket::Listen($x) => $body,
            Socket::Datagram(_) => return Err(STATUS_NOT_SUPPORTED),
        }
    };
}

impl DeviceCore {
    /// SET_OPTION: PASSIVE_LEVEL (waits for the WSK control request).
    pub(super) fn set_option(&self, file: &FileContext, input: &[u8]) -> Result<usize, NTSTATUS> {
        let req: SetOptionRequest = contract(parse_request(input))?;
        let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
        let on = req.value != 0;
        let r = match req.option {
            OPTION_REUSE_ADDRESS => on_socket!(&*s, x => x.set_reuse_address(on)),
            OPTION_EXCLUSIVE_ADDRESS_USE => {
                on_socket!(&*s, x => x.set_exclusive_address_use(on))
            }
            OPTION_RECEIVE_BUFFER => {
                on_socket!(&*s, x => x.set_receive_buffer_size(req.value))
            }
            OPTION_SEND_BUFFER => {
                on_socket!(&*s, x => x.set_send_buffer_size(req.value))
            }
            OPTION_KEEPALIVE => on_tcp!(&*s, x => x.set_keepalive(on)),
            OPTION_NODELAY => on_tcp!(&*s, x => x.set_nodelay(on)),
            _ => return Err(STATUS_INVALID_PARAMETER),
        };
        r.map_err(|e| e.status())?;
        Ok(0)
    }

    /// GET_OPTION: PASSIVE_LEVEL.
    pub(super) fn get_option(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        let req: GetOptionRequest = contract(parse_request(input))?;
        if output.len() < core::mem::size_of::<GetOptionResponse>() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
        let r: wsk::Result<u32> = match req.option {
            OPTION_REUSE_ADDRESS => {
                on_socket!(&*s, x => x.reuse_address().map(u32::from))
            }
            OPTION_EXCLUSIVE_ADDRESS_USE => {
                on_socket!(&*s, x => x.exclusive_address_use().map(u32::from))
            }
            OPTION_RECEIVE_BUFFER => {
                on_socket!(&*s, x => x.receive_buffer_size())
            }
            OPTION_SEND_BUFFER => on_socket!(&*s, x => x.send_buffer_size()),
            OPTION_KEEPALIVE => {
                on_tcp!(&*s, x => x.keepalive().map(u32::from))
            }
            OPTION_NODELAY => on_tcp!(&*s, x => x.nodelay().map(u32::from)),
            _ => return Err(STATUS_INVALID_PARAMETER),
        };
        let v = r.map_err(|e| e.status())?;
        contract(write_response(output, &GetOptionResponse::new(v)))
    }

    /// CONNECT_WITH_DATA: PASSIVE_LEVEL (waits for the connect, bounded by
    /// [`CONNECT_TIMEOUT`]). The initial data is copied out of the request into a nonpaged
    /// buffer (tag [`CONNECT_DATA_TAG`]) that lives until `connect_ex` returns, i.e. until the
    /// `WskConnectEx` (or fallback `WskSend`) IRP completed. The new socket is a stream socket
    /// of the file like one from OPEN_STREAM (SEND, RECEIVE, DISCONNECT, options, CLOSE).
    ///
    /// Counters: `connects` (+1), `connect_fallbacks` (+1 when the fallback ran), `bytes_sent`
    /// (+ the initial bytes); `sends` counts SEND requests only.
    ///
    /// Errors: the contract's (docs/ioctl.md), `STATUS_BUFFER_TOO_SMALL` (output under 80
    /// bytes), `STATUS_INVALID_PARAMETER` (local and remote families differ), and those of
    /// `StreamSocket::connect_ex` (`STATUS_CONNECTION_REFUSED`, `STATUS_IO_TIMEOUT`,
    /// `STATUS_ADDRESS_ALREADY_EXISTS`, ...), or of the table insert.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>
    pub(super) fn connect_with_data(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        let req = contract(parse_connect_with_data(input))?;
        if output.len() < core::mem::size_of::<ConnectWithDataResponse>() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        let remote = addr(&req.request.remote_address)?;
        let local = addr(&contract(req.request.effective_local())?)?;
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        // The request's bytes are copied: WSK reads them through an MDL over nonpaged pool.
        let data = if req.data.is_empty() {
            None
        } else {
            Some(NonPagedBuffer::from_slice(req.data, CONNECT_DATA_TAG).map_err(|e| e.status())?)
        };
        let (sock, sent) = StreamSocket::connect_ex(
            &self.client,
            local,
            remote,
            data.as_ref().map(|b| (b, 0, b.len())),
            Some(CONNECT_TIMEOUT),
        )
        .map_err(|e| e.status())?;
        drop(data);
        Counters::add(&self.stats.here().connects, 1);
        Counters::add(&self.stats.here().bytes_sent, sent as u64);
        let mut flags = 0;
        if sock.used_fallback() {
            Counters::add(&self.stats.here().connect_fallbacks, 1);
            flags |= CONNECT_USED_FALLBACK;
        }
        // As OPEN_STREAM: a provider without WskGetLocalAddress / WskGetRemoteAddress still
        // gives a usable socket; the response then carries AF_UNSPEC / the requested remote.
        let local = sock.local_address().ok();
        let remote = sock.remote_address().unwrap_or(remote);
        let handle = file.insert(Socket::Stream(sock))?;
        self.stats.socket_opened();
        let resp = ConnectWithDataResponse::new(
            handle,
            InetAddress::from_optional(local.as_ref()),
            InetAddress::from_socket_addr(&remote),
            u32::try_from(sent).unwrap_or(u32::MAX),
            flags,
        );
        contract(write_response(output, &resp))
    }
}
