//! Request and response structs of SET_OPTION and GET_OPTION. Same conventions as
//! [`crate::message`]: an 8-byte header, then the socket handle.
//!
//! The option is named by a contract id ([`OPTION_REUSE_ADDRESS`] ...), which the driver maps
//! to the WSK option (`SO_REUSEADDR` ... through `WskControlSocket`).
//! Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>
//!
//! CONNECT_WITH_DATA ([`ConnectWithDataRequest`], [`parse_connect_with_data`],
//! [`ConnectWithDataResponse`]) opens a stream socket, connects it and sends initial data in
//! one request: `WskSocket` + `WskBind` + `WskConnectEx`, the kernel counterpart of
//! `ConnectEx`. Its input is a fixed 72-byte struct followed by the initial data inline.
//! Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>

use core::mem::size_of;
use core::net::SocketAddr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::message::{check_handle, check_zero, parse_request_with_trailer};
use crate::{
    ContractError, InetAddress, Operation, Request, RequestHeader, Response, ResponseHeader,
    SocketHandle,
};

/// `SO_REUSEADDR` (value 0/1; stream, datagram and listening sockets; before bind).
pub const OPTION_REUSE_ADDRESS: u32 = 1;
/// `SO_EXCLUSIVEADDRUSE` (value 0/1; before bind).
pub const OPTION_EXCLUSIVE_ADDRESS_USE: u32 = 2;
/// `SO_KEEPALIVE` (value 0/1; stream and listening sockets).
pub const OPTION_KEEPALIVE: u32 = 3;
/// `TCP_NODELAY` (value 0/1; stream and listening sockets).
pub const OPTION_NODELAY: u32 = 4;
/// `SO_RCVBUF` (bytes).
pub const OPTION_RECEIVE_BUFFER: u32 = 5;
/// `SO_SNDBUF` (bytes).
pub const OPTION_SEND_BUFFER: u32 = 6;

fn check_option(option: u32) -> Result<(), ContractError> {
    if (OPTION_REUSE_ADDRESS..=OPTION_SEND_BUFFER).contains(&option) {
        Ok(())
    } else {
        Err(ContractError::ReservedNonZero)
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_SET_OPTION`]. 24 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 8    | `handle` of a socket of this file object |
/// | 16     | 4    | `option`: an `OPTION_*` id; others fail with `STATUS_INVALID_PARAMETER` |
/// | 20     | 4    | `value` (0/1 for flags, bytes for buffer sizes) |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SetOptionRequest {
    /// Common header.
    pub header: RequestHeader,
    /// The socket.
    pub handle: SocketHandle,
    /// `OPTION_*`.
    pub option: u32,
    /// The new value.
    pub value: u32,
}

impl SetOptionRequest {
    /// A request to set `option` of `handle` to `value`.
    pub const fn new(handle: SocketHandle, option: u32, value: u32) -> Self {
        SetOptionRequest {
            header: RequestHeader::CURRENT,
            handle,
            option,
            value,
        }
    }
}

impl Request for SetOptionRequest {
    const OPERATION: Operation = Operation::SetOption;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_handle(self.handle)?;
        check_option(self.option)
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_GET_OPTION`]. 24 bytes: `header` (0, 8), `handle`
/// (8, 8), `option` (16, 4, an `OPTION_*` id), `reserved` (20, 4, must be 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct GetOptionRequest {
    /// Common header.
    pub header: RequestHeader,
    /// The socket.
    pub handle: SocketHandle,
    /// `OPTION_*`.
    pub option: u32,
    /// Must be 0.
    pub reserved: u32,
}

impl GetOptionRequest {
    /// A request to read `option` of `handle`.
    pub const fn new(handle: SocketHandle, option: u32) -> Self {
        GetOptionRequest {
            header: RequestHeader::CURRENT,
            handle,
            option,
            reserved: 0,
        }
    }
}

impl Request for GetOptionRequest {
    const OPERATION: Operation = Operation::GetOption;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_handle(self.handle)?;
        check_zero(self.reserved)?;
        check_option(self.option)
    }
}

/// Output of [`crate::IOCTL_WSKCLIENT_GET_OPTION`]. 16 bytes: `header` (0, 8, `size` = 16),
/// `value` (8, 4), `reserved` (12, 4, 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct GetOptionResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// The option's value.
    pub value: u32,
    /// 0.
    pub reserved: u32,
}

impl GetOptionResponse {
    /// A response carrying `value`.
    pub const fn new(value: u32) -> Self {
        GetOptionResponse {
            header: ResponseHeader::for_response::<Self>(),
            value,
            reserved: 0,
        }
    }
}

impl Response for GetOptionResponse {
    const OPERATION: Operation = Operation::GetOption;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// Largest initial data of CONNECT_WITH_DATA, in bytes: 65,535, the largest `Buffer`
/// `WskConnectEx` accepts ("The maximum allowed size in bytes is 65,535"; a larger buffer
/// fails there with `STATUS_BUFFER_OVERFLOW`). The contract rejects more before calling WSK,
/// with `STATUS_INVALID_BUFFER_SIZE`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>
pub const MAX_CONNECT_DATA_BYTES: usize = 65_535;

/// Largest CONNECT_WITH_DATA input buffer: the 72-byte fixed part plus
/// [`MAX_CONNECT_DATA_BYTES`]. A front-end copying the input out of the system buffer must
/// accept this many bytes for this IOCTL.
pub const MAX_CONNECT_WITH_DATA_INPUT: usize =
    ConnectWithDataRequest::SIZE + MAX_CONNECT_DATA_BYTES;

/// [`ConnectWithDataResponse::flags`] bit: the provider has no usable `WskConnectEx` (NULL
/// entry, or it answered `STATUS_NOT_IMPLEMENTED` / `STATUS_NOT_SUPPORTED`), so the driver
/// connected with `WskConnect` and sent the data with `WskSend`.
pub const CONNECT_USED_FALLBACK: u32 = 0x1;

/// Input of [`crate::IOCTL_WSKCLIENT_CONNECT_WITH_DATA`]: 72 bytes, then `data_length` bytes
/// of initial data. The input length must be exactly `72 + data_length`.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` (`flags` = 0) |
/// | 8      | 28   | `remote_address`: `AF_INET` or `AF_INET6`; others fail with `STATUS_INVALID_ADDRESS_COMPONENT` |
/// | 36     | 28   | `local_address`: address to bind (port 0 = ephemeral), or `AF_UNSPEC` for the wildcard address of the remote's family; a family other than the remote's fails with `STATUS_INVALID_PARAMETER` |
/// | 64     | 4    | `data_length`: 0 ..= [`MAX_CONNECT_DATA_BYTES`] bytes of initial data (0 = connect only) |
/// | 68     | 4    | `reserved`, 0 |
/// | 72     | `data_length` | the initial data |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ConnectWithDataRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Where to connect.
    pub remote_address: InetAddress,
    /// Where to bind, or `AF_UNSPEC`.
    pub local_address: InetAddress,
    /// Bytes of initial data after this struct.
    pub data_length: u32,
    /// Must be 0.
    pub reserved: u32,
}

impl ConnectWithDataRequest {
    /// Size of the fixed part in bytes.
    pub const SIZE: usize = 72;

    /// The fixed part of a request to connect to `remote` (bound to `local`, or the wildcard
    /// when `None`) with `data_length` bytes of initial data following it.
    pub const fn new(remote: &SocketAddr, local: Option<&SocketAddr>, data_length: u32) -> Self {
        ConnectWithDataRequest {
            header: RequestHeader::CURRENT,
            remote_address: InetAddress::from_socket_addr(remote),
            local_address: InetAddress::from_optional(local),
            data_length,
            reserved: 0,
        }
    }

    /// The local address to bind: `local_address`, or for `AF_UNSPEC` the wildcard of the
    /// remote's family (port 0).
    ///
    /// Errors: [`ContractError::UnknownAddressFamily`] when the remote's family is not
    /// `AF_INET`/`AF_INET6` (already rejected by [`parse_connect_with_data`]).
    pub const fn effective_local(&self) -> Result<InetAddress, ContractError> {
        if self.local_address.is_unspecified() {
            InetAddress::wildcard(self.remote_address.family)
        } else {
            Ok(self.local_address)
        }
    }
}

impl Request for ConnectWithDataRequest {
    const OPERATION: Operation = Operation::ConnectWithData;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_zero(self.reserved)?;
        self.remote_address.to_socket_addr()?;
        self.local_address.to_optional()?;
        Ok(())
    }
}

/// A parsed CONNECT_WITH_DATA input: the fixed part and the initial data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectWithData<'a> {
    /// The fixed part.
    pub request: ConnectWithDataRequest,
    /// The initial data (`data_length` bytes; may be empty).
    pub data: &'a [u8],
}

/// Parses a CONNECT_WITH_DATA input buffer. Checks, in this order (the first failure wins):
/// 1. the 72-byte fixed part with [`parse_request`]'s checks (header, version, reserved
///    fields, address families);
/// 2. `data_length > MAX_CONNECT_DATA_BYTES`: [`ContractError::DataTooLarge`]
///    (`STATUS_INVALID_BUFFER_SIZE`);
/// 3. the input length against `72 + data_length`: shorter is
///    [`ContractError::BufferTooSmall`] (`STATUS_BUFFER_TOO_SMALL`), longer is
///    [`ContractError::OversizedInput`] (`STATUS_INVALID_BUFFER_SIZE`).
pub fn parse_connect_with_data(input: &[u8]) -> Result<ConnectWithData<'_>, ContractError> {
    let (request, data) = parse_request_with_trailer(
        input,
        MAX_CONNECT_DATA_BYTES,
        |r: &ConnectWithDataRequest| r.data_length as usize,
    )?;
    Ok(ConnectWithData { request, data })
}

/// Builds a whole CONNECT_WITH_DATA input buffer (the app's side): the fixed part for
/// `remote`/`local` followed by `data`.
///
/// Errors: [`ContractError::DataTooLarge`] when `data` is longer than
/// [`MAX_CONNECT_DATA_BYTES`]; nothing is written.
pub fn encode_connect_with_data(
    remote: &SocketAddr,
    local: Option<&SocketAddr>,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, ContractError> {
    if data.len() > MAX_CONNECT_DATA_BYTES {
        return Err(ContractError::DataTooLarge {
            max: MAX_CONNECT_DATA_BYTES,
            actual: data.len(),
        });
    }
    let total = ConnectWithDataRequest::SIZE + data.len();
    let actual = out.len();
    let dst = out.get_mut(..total).ok_or(ContractError::BufferTooSmall {
        expected: total,
        actual,
    })?;
    let (fixed, rest) = dst.split_at_mut(ConnectWithDataRequest::SIZE);
    fixed.copy_from_slice(ConnectWithDataRequest::new(remote, local, data.len() as u32).as_bytes());
    rest.copy_from_slice(data);
    Ok(total)
}

/// Output of [`crate::IOCTL_WSKCLIENT_CONNECT_WITH_DATA`]. 80 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` ([`ResponseHeader`], `size` = 80) |
/// | 8      | 8    | `handle`: the connected stream socket, usable with SEND, RECEIVE, DISCONNECT, SET_OPTION, CLOSE |
/// | 16     | 28   | `local_address`: the bound address (`WskGetLocalAddress`; `AF_UNSPEC` if the provider cannot tell) |
/// | 44     | 28   | `remote_address`: the connected peer (`WskGetRemoteAddress`, else the requested remote) |
/// | 72     | 4    | `bytes_sent`: initial data bytes sent (= `data_length` on success) |
/// | 76     | 4    | `flags`: [`CONNECT_USED_FALLBACK`] |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ConnectWithDataResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// The new socket.
    pub handle: SocketHandle,
    /// Bound local address.
    pub local_address: InetAddress,
    /// Connected remote address.
    pub remote_address: InetAddress,
    /// Initial data bytes sent.
    pub bytes_sent: u32,
    /// `CONNECT_*` flags.
    pub flags: u32,
}

impl ConnectWithDataResponse {
    /// A response with the header filled in.
    pub const fn new(
        handle: SocketHandle,
        local_address: InetAddress,
        remote_address: InetAddress,
        bytes_sent: u32,
        flags: u32,
    ) -> Self {
        ConnectWithDataResponse {
            header: ResponseHeader::for_response::<Self>(),
            handle,
            local_address,
            remote_address,
            bytes_sent,
            flags,
        }
    }

    /// Whether the driver used the connect-then-send fallback ([`CONNECT_USED_FALLBACK`]).
    pub const fn used_fallback(&self) -> bool {
        self.flags & CONNECT_USED_FALLBACK != 0
    }
}

impl Response for ConnectWithDataResponse {
    const OPERATION: Operation = Operation::ConnectWithData;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

const _: () = assert!(size_of::<ConnectWithDataRequest>() == ConnectWithDataRequest::SIZE);
const _: () = assert!(size_of::<ConnectWithDataResponse>() == 80);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{parse_request, parse_response, write_response};

    #[test]
    fn layouts() {
        assert_eq!(core::mem::size_of::<SetOptionRequest>(), 24);
        assert_eq!(core::mem::size_of::<GetOptionRequest>(), 24);
        assert_eq!(core::mem::size_of::<GetOptionResponse>(), 16);
    }

    #[test]
    fn round_trip_and_bad_inputs() {
        let h = SocketHandle::new(3, 1).unwrap();
        let r = SetOptionRequest::new(h, OPTION_NODELAY, 1);
        assert_eq!(parse_request::<SetOptionRequest>(r.as_bytes()), Ok(r));
        let bad = SetOptionRequest::new(h, 99, 1);
        assert_eq!(
            parse_request::<SetOptionRequest>(bad.as_bytes())
                .unwrap_err()
                .ntstatus(),
            crate::status::STATUS_INVALID_PARAMETER
        );
        let null = SetOptionRequest::new(SocketHandle::NULL, OPTION_NODELAY, 1);
        assert_eq!(
            parse_request::<SetOptionRequest>(null.as_bytes()),
            Err(ContractError::InvalidHandle)
        );
        let mut g = GetOptionRequest::new(h, OPTION_SEND_BUFFER);
        assert_eq!(parse_request::<GetOptionRequest>(g.as_bytes()), Ok(g));
        g.reserved = 1;
        assert_eq!(
            parse_request::<GetOptionRequest>(g.as_bytes()),
            Err(ContractError::ReservedNonZero)
        );
        assert!(matches!(
            parse_request::<GetOptionRequest>(&g.as_bytes()[..20]),
            Err(ContractError::BufferTooSmall { .. })
        ));
        let mut out = [0u8; 16];
        assert_eq!(write_response(&mut out, &GetOptionResponse::new(7)), Ok(16));
        assert_eq!(parse_response::<GetOptionResponse>(&out).unwrap().value, 7);
        assert!(write_response(&mut [0u8; 15], &GetOptionResponse::new(7)).is_err());
    }

    fn cwd_input(remote: &str, local: Option<&str>, data: &[u8]) -> std::vec::Vec<u8> {
        let remote: SocketAddr = remote.parse().unwrap();
        let local: Option<SocketAddr> = local.map(|l| l.parse().unwrap());
        let mut buf = std::vec![0u8; ConnectWithDataRequest::SIZE + data.len()];
        let n = encode_connect_with_data(&remote, local.as_ref(), data, &mut buf).unwrap();
        assert_eq!(n, buf.len());
        buf
    }

    #[test]
    fn connect_with_data_layout() {
        use core::mem::offset_of;
        assert_eq!(size_of::<ConnectWithDataRequest>(), 72);
        assert_eq!(offset_of!(ConnectWithDataRequest, remote_address), 8);
        assert_eq!(offset_of!(ConnectWithDataRequest, local_address), 36);
        assert_eq!(offset_of!(ConnectWithDataRequest, data_length), 64);
        assert_eq!(size_of::<ConnectWithDataResponse>(), 80);
        assert_eq!(offset_of!(ConnectWithDataResponse, handle), 8);
        assert_eq!(offset_of!(ConnectWithDataResponse, local_address), 16);
        assert_eq!(offset_of!(ConnectWithDataResponse, remote_address), 44);
        assert_eq!(offset_of!(ConnectWithDataResponse, bytes_sent), 72);
        assert_eq!(offset_of!(ConnectWithDataResponse, flags), 76);
        assert_eq!(MAX_CONNECT_WITH_DATA_INPUT, 72 + 65_535);
    }

    #[test]
    fn connect_with_data_round_trip() {
        let input = cwd_input("127.0.0.1:80", None, b"hello");
        let p = parse_connect_with_data(&input).unwrap();
        assert_eq!(p.data, b"hello");
        assert_eq!(p.request.data_length, 5);
        assert_eq!(
            p.request.remote_address.to_socket_addr(),
            Ok("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            p.request.effective_local(),
            Ok(InetAddress::wildcard(crate::AF_INET).unwrap())
        );
        let input = cwd_input("[::1]:80", Some("[::1]:0"), b"");
        let p = parse_connect_with_data(&input).unwrap();
        assert!(p.data.is_empty());
        assert_eq!(
            p.request.effective_local().unwrap().to_socket_addr(),
            Ok("[::1]:0".parse().unwrap())
        );
        let max = std::vec![7u8; MAX_CONNECT_DATA_BYTES];
        let input = cwd_input("127.0.0.1:1", None, &max);
        assert_eq!(parse_connect_with_data(&input).unwrap().data.len(), 65_535);

        let h = SocketHandle::new(2, 5).unwrap();
        let r = ConnectWithDataResponse::new(
            h,
            InetAddress::from("127.0.0.1:5".parse::<SocketAddr>().unwrap()),
            InetAddress::from("127.0.0.1:6".parse::<SocketAddr>().unwrap()),
            5,
            CONNECT_USED_FALLBACK,
        );
        let mut out = [0u8; 80];
        assert_eq!(write_response(&mut out, &r), Ok(80));
        let back = parse_response::<ConnectWithDataResponse>(&out).unwrap();
        assert_eq!(back, r);
        assert!(back.used_fallback());
        assert!(write_response(&mut [0u8; 79], &r).is_err());
    }

    #[test]
    fn connect_with_data_bad_inputs() {
        use crate::status::*;
        let st = |input: &[u8]| parse_connect_with_data(input).unwrap_err().ntstatus();
        let good = cwd_input("127.0.0.1:80", None, b"abc");
        // Truncated data, truncated fixed part, no header.
        assert_eq!(st(&good[..good.len() - 1]), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(st(&good[..71]), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(st(&good[..4]), STATUS_BUFFER_TOO_SMALL);
        // Trailing bytes beyond data_length.
        let mut long = good.clone();
        long.push(0);
        assert_eq!(st(&long), STATUS_INVALID_BUFFER_SIZE);
        // data_length above the maximum.
        let mut big = good.clone();
        big[64..68].copy_from_slice(&(MAX_CONNECT_DATA_BYTES as u32 + 1).to_ne_bytes());
        assert_eq!(
            parse_connect_with_data(&big),
            Err(ContractError::DataTooLarge {
                max: MAX_CONNECT_DATA_BYTES,
                actual: MAX_CONNECT_DATA_BYTES + 1
            })
        );
        assert_eq!(st(&big), STATUS_INVALID_BUFFER_SIZE);
        // Version, reserved, flags.
        let mut v = good.clone();
        v[0] = 9;
        assert_eq!(st(&v), STATUS_REVISION_MISMATCH);
        let mut r = good.clone();
        r[68] = 1;
        assert_eq!(st(&r), STATUS_INVALID_PARAMETER);
        let mut f = good.clone();
        f[4] = 1;
        assert_eq!(st(&f), STATUS_INVALID_PARAMETER);
        // Families: AF_UNSPEC remote, Linux AF_INET6 value, dirty AF_UNSPEC local.
        let mut unspec = good.clone();
        unspec[8..36].fill(0);
        assert_eq!(st(&unspec), STATUS_INVALID_ADDRESS_COMPONENT);
        let mut linux = good.clone();
        linux[8..10].copy_from_slice(&10u16.to_ne_bytes());
        assert_eq!(st(&linux), STATUS_INVALID_ADDRESS_COMPONENT);
        let mut dirty = good.clone();
        dirty[40] = 1;
        assert_eq!(st(&dirty), STATUS_INVALID_PARAMETER);
        // The encoder refuses too much data and a short buffer.
        let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let big = std::vec![0u8; MAX_CONNECT_DATA_BYTES + 1];
        let mut out = std::vec![0u8; MAX_CONNECT_WITH_DATA_INPUT + 1];
        assert!(encode_connect_with_data(&remote, None, &big, &mut out).is_err());
        assert!(encode_connect_with_data(&remote, None, b"ab", &mut [0u8; 73]).is_err());
    }
}
