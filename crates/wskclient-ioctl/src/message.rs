//! Versioned, fixed-layout request and response structs, and their parsers.
//!
//! Every struct is `#[repr(C)]` with natural alignment and explicit `reserved`
//! fields where the compiler would otherwise pad (zerocopy's `IntoBytes` derive
//! proves there is no implicit padding). Buffers are parsed by copy
//! ([`zerocopy::FromBytes::read_from_prefix`]), so they need no alignment.
//!
//! Requests start with [`RequestHeader`], responses with [`ResponseHeader`].
//! Writers zero every `reserved` field; the driver rejects requests whose
//! reserved fields are not zero ([`ContractError::ReservedNonZero`]), the app
//! ignores reserved fields of responses (room for additive changes).

use core::mem::size_of;
use core::net::SocketAddr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{ContractError, InetAddress, Operation, SocketHandle};

/// The contract version this crate speaks; [`RequestHeader::version`] and
/// [`ResponseHeader::version`] carry it. A driver receiving another version
/// fails the request with `STATUS_REVISION_MISMATCH`.
pub const CONTRACT_VERSION: u16 = 1;

/// Largest SEND data buffer, in bytes (64 MiB). Larger: `STATUS_INVALID_BUFFER_SIZE`.
/// Bounds the data one Irp pins in memory; callers send more in several requests.
pub const MAX_SEND_BYTES: usize = 64 << 20;

/// Largest SEND_TO datagram, in bytes: 65,535, the most any UDP datagram can
/// carry without jumbograms. Larger: `STATUS_INVALID_BUFFER_SIZE` from the driver.
/// The exact per-family limit (65,507 bytes over IPv4, 65,527 over IPv6) is
/// left to WSK, which fails the `WskSendTo` with its own status; the driver
/// passes that status through.
pub const MAX_SEND_TO_BYTES: usize = 65_535;

/// The first 8 bytes of every request.
///
/// | offset | size | field      |
/// |-------:|-----:|------------|
/// | 0      | 2    | `version` = [`CONTRACT_VERSION`] |
/// | 2      | 2    | `reserved`, must be 0 |
/// | 4      | 4    | `flags`, per operation; none are defined in version 1, must be 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct RequestHeader {
    /// [`CONTRACT_VERSION`].
    pub version: u16,
    /// Must be 0.
    pub reserved: u16,
    /// Operation flags; must be 0 in version 1 ([`ContractError::UnknownFlags`]).
    pub flags: u32,
}

impl RequestHeader {
    /// Size in bytes.
    pub const SIZE: usize = 8;
    /// `version = CONTRACT_VERSION`, everything else 0.
    pub const CURRENT: RequestHeader = RequestHeader {
        version: CONTRACT_VERSION,
        reserved: 0,
        flags: 0,
    };
}

/// The first 8 bytes of every response.
///
/// | offset | size | field      |
/// |-------:|-----:|------------|
/// | 0      | 2    | `version` = [`CONTRACT_VERSION`] |
/// | 2      | 2    | `reserved`, 0 |
/// | 4      | 4    | `size`: bytes of the whole response struct, = `IoStatus.Information` |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ResponseHeader {
    /// [`CONTRACT_VERSION`].
    pub version: u16,
    /// 0.
    pub reserved: u16,
    /// Size in bytes of the response struct, header included.
    pub size: u32,
}

impl ResponseHeader {
    /// Size in bytes.
    pub const SIZE: usize = 8;

    /// The header for response struct `T`.
    pub const fn for_response<T: Response>() -> ResponseHeader {
        ResponseHeader {
            version: CONTRACT_VERSION,
            reserved: 0,
            size: size_of::<T>() as u32,
        }
    }
}

/// A request struct: the input buffer of [`Request::OPERATION`].
pub trait Request: FromBytes + IntoBytes + KnownLayout + Immutable + Copy {
    /// The operation whose input this is.
    const OPERATION: Operation;
    /// The common header.
    fn header(&self) -> &RequestHeader;
    /// Checks after the header: reserved fields, handle form, address families.
    fn validate(&self) -> Result<(), ContractError>;
}

/// A response struct: the output buffer of [`Response::OPERATION`].
pub trait Response: FromBytes + IntoBytes + KnownLayout + Immutable + Copy {
    /// The operation whose output this is.
    const OPERATION: Operation;
    /// The common header.
    fn header(&self) -> &ResponseHeader;
}

/// Parses the input buffer of a request; the driver's validation of
/// `Parameters.DeviceIoControl.InputBufferLength` bytes of `SystemBuffer`.
///
/// Returns a copy, so `input` needs no alignment. Checks, in this order (the
/// first failure wins):
/// 1. `input.len() < 8` (no header): [`ContractError::BufferTooSmall`];
/// 2. `version != CONTRACT_VERSION`: [`ContractError::RevisionMismatch`] (before
///    the length checks, so a caller speaking another version learns that
///    rather than a size error);
/// 3. `input.len() < size_of::<T>()`: [`ContractError::BufferTooSmall`];
/// 4. `input.len() > size_of::<T>()`: [`ContractError::OversizedInput`];
/// 5. header `reserved != 0`: [`ContractError::ReservedNonZero`]; `flags != 0`:
///    [`ContractError::UnknownFlags`];
/// 6. [`Request::validate`]: reserved fields, malformed handle
///    ([`ContractError::InvalidHandle`]), address family
///    ([`ContractError::UnknownAddressFamily`]).
pub fn parse_request<T: Request>(input: &[u8]) -> Result<T, ContractError> {
    let (header, _) =
        RequestHeader::read_from_prefix(input).map_err(|_| ContractError::BufferTooSmall {
            expected: size_of::<T>(),
            actual: input.len(),
        })?;
    if header.version != CONTRACT_VERSION {
        return Err(ContractError::RevisionMismatch {
            found: header.version,
        });
    }
    let expected = size_of::<T>();
    if input.len() > expected {
        return Err(ContractError::OversizedInput {
            expected,
            actual: input.len(),
        });
    }
    let (request, _) = T::read_from_prefix(input).map_err(|_| ContractError::BufferTooSmall {
        expected,
        actual: input.len(),
    })?;
    let header = request.header();
    if header.reserved != 0 {
        return Err(ContractError::ReservedNonZero);
    }
    if header.flags != 0 {
        return Err(ContractError::UnknownFlags {
            flags: header.flags,
        });
    }
    request.validate()?;
    Ok(request)
}

/// Parses a fixed request `T` followed by exactly `trailer(&request)` bytes of inline data
/// (at most `max`), and returns both. Errors, in order: those of [`parse_request`] on the
/// fixed prefix; a trailer longer than `max`: [`ContractError::DataTooLarge`]; an input
/// shorter than `size_of::<T>() + trailer`: [`ContractError::BufferTooSmall`], longer:
/// [`ContractError::OversizedInput`].
pub fn parse_request_with_trailer<T: Request>(
    input: &[u8],
    max: usize,
    trailer: impl FnOnce(&T) -> usize,
) -> Result<(T, &[u8]), ContractError> {
    let fixed = size_of::<T>();
    let request: T = parse_request(input.get(..fixed).unwrap_or(input))?;
    let len = trailer(&request);
    if len > max {
        return Err(ContractError::DataTooLarge { max, actual: len });
    }
    let expected = fixed + len;
    if input.len() < expected {
        return Err(ContractError::BufferTooSmall {
            expected,
            actual: input.len(),
        });
    }
    if input.len() > expected {
        return Err(ContractError::OversizedInput {
            expected,
            actual: input.len(),
        });
    }
    Ok((request, input.get(fixed..).unwrap_or(&[])))
}

/// Checks the length of the data buffer (`METHOD_IN_DIRECT` output buffer) of
/// `operation`: `len` is `Parameters.DeviceIoControl.OutputBufferLength`.
///
/// SEND needs 1 ..= [`MAX_SEND_BYTES`], SEND_TO 1 ..= [`MAX_SEND_TO_BYTES`], RECEIVE
/// (`METHOD_OUT_DIRECT`) 1 ..= [`crate::MAX_RECEIVE_BYTES`]:
/// 0 is [`ContractError::ZeroLength`], more is [`ContractError::DataTooLarge`].
/// Other operations have no data buffer and always pass. The driver must
/// separately fail a required data buffer with `Irp->MdlAddress == NULL` with
/// [`ContractError::MissingDataBuffer`].
pub const fn check_data_length(operation: Operation, len: usize) -> Result<(), ContractError> {
    let max = match operation {
        Operation::Send => MAX_SEND_BYTES,
        Operation::SendTo => MAX_SEND_TO_BYTES,
        Operation::Receive => crate::MAX_RECEIVE_BYTES,
        _ => return Ok(()),
    };
    if len == 0 {
        Err(ContractError::ZeroLength)
    } else if len > max {
        Err(ContractError::DataTooLarge { max, actual: len })
    } else {
        Ok(())
    }
}

/// Writes `response` to the start of `output` (the driver's `SystemBuffer`,
/// `OutputBufferLength` bytes); returns the bytes written, which the driver
/// stores in `IoStatus.Information`. A longer output buffer is fine; its tail
/// is left untouched.
///
/// Errors: [`ContractError::BufferTooSmall`] when `output` is shorter than `T`
/// (nothing is written; the driver completes with `STATUS_BUFFER_TOO_SMALL`).
pub fn write_response<T: Response>(
    output: &mut [u8],
    response: &T,
) -> Result<usize, ContractError> {
    let actual = output.len();
    response
        .write_to_prefix(output)
        .map_err(|_| ContractError::BufferTooSmall {
            expected: size_of::<T>(),
            actual,
        })?;
    Ok(size_of::<T>())
}

/// Parses a response from the first `IoStatus.Information` bytes of the
/// output buffer (the app's side). Returns a copy; no alignment needed.
///
/// Errors: [`ContractError::BufferTooSmall`] when `output` is shorter than `T`
/// or the header's `size` is smaller than `T`; [`ContractError::OversizedInput`]
/// when `size` is larger; [`ContractError::RevisionMismatch`] for another
/// version. Reserved fields are ignored.
pub fn parse_response<T: Response>(output: &[u8]) -> Result<T, ContractError> {
    let expected = size_of::<T>();
    let (response, _) = T::read_from_prefix(output).map_err(|_| ContractError::BufferTooSmall {
        expected,
        actual: output.len(),
    })?;
    let header = response.header();
    if header.version != CONTRACT_VERSION {
        return Err(ContractError::RevisionMismatch {
            found: header.version,
        });
    }
    let size = header.size as usize;
    if size < expected {
        return Err(ContractError::BufferTooSmall {
            expected,
            actual: size,
        });
    }
    if size > expected {
        return Err(ContractError::OversizedInput {
            expected,
            actual: size,
        });
    }
    Ok(response)
}

pub(crate) fn check_handle(handle: SocketHandle) -> Result<(), ContractError> {
    if handle.is_well_formed() {
        Ok(())
    } else {
        Err(ContractError::InvalidHandle)
    }
}

pub(crate) fn check_zero(reserved: u32) -> Result<(), ContractError> {
    if reserved == 0 {
        Ok(())
    } else {
        Err(ContractError::ReservedNonZero)
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_OPEN_STREAM`]: connect a TCP socket. 64 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` ([`RequestHeader`]) |
/// | 8      | 28   | `remote_address`: `AF_INET` or `AF_INET6`; `AF_UNSPEC` or another family fails with `STATUS_INVALID_ADDRESS_COMPONENT` |
/// | 36     | 28   | `local_address`: address to bind, or `AF_UNSPEC` for the wildcard address of the remote's family with an ephemeral port ([`Self::effective_local`]) |
///
/// A local address of a different family than the remote is passed to WSK,
/// which fails it with its own status.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct OpenStreamRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Where to connect.
    pub remote_address: InetAddress,
    /// Where to bind, or `AF_UNSPEC`.
    pub local_address: InetAddress,
}

impl OpenStreamRequest {
    /// A request to connect to `remote`, bound to `local` (or the wildcard when `None`).
    pub const fn new(remote: &SocketAddr, local: Option<&SocketAddr>) -> Self {
        OpenStreamRequest {
            header: RequestHeader::CURRENT,
            remote_address: InetAddress::from_socket_addr(remote),
            local_address: InetAddress::from_optional(local),
        }
    }

    /// The local address to give `WskSocketConnect`/`WskBind`: `local_address`,
    /// or for `AF_UNSPEC` the wildcard of the remote's family.
    ///
    /// Errors: [`ContractError::UnknownAddressFamily`] when the remote's family
    /// is not `AF_INET`/`AF_INET6` (already rejected by [`parse_request`]).
    pub const fn effective_local(&self) -> Result<InetAddress, ContractError> {
        if self.local_address.is_unspecified() {
            InetAddress::wildcard(self.remote_address.family)
        } else {
            Ok(self.local_address)
        }
    }
}

impl Request for OpenStreamRequest {
    const OPERATION: Operation = Operation::OpenStream;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        self.remote_address.to_socket_addr()?;
        self.local_address.to_optional()?;
        Ok(())
    }
}

/// Output of [`crate::IOCTL_WSKCLIENT_OPEN_STREAM`]. 72 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` ([`ResponseHeader`], `size` = 72) |
/// | 8      | 8    | `handle` ([`SocketHandle`]) |
/// | 16     | 28   | `local_address`: the address the socket is bound to (`WskGetLocalAddress`) |
/// | 44     | 28   | `remote_address`: the connected peer (`WskGetRemoteAddress`) |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct OpenStreamResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// The new socket.
    pub handle: SocketHandle,
    /// Bound local address.
    pub local_address: InetAddress,
    /// Connected remote address.
    pub remote_address: InetAddress,
}

impl OpenStreamResponse {
    /// A response with the header filled in.
    pub const fn new(
        handle: SocketHandle,
        local_address: InetAddress,
        remote_address: InetAddress,
    ) -> Self {
        OpenStreamResponse {
            header: ResponseHeader::for_response::<Self>(),
            handle,
            local_address,
            remote_address,
        }
    }
}

impl Response for OpenStreamResponse {
    const OPERATION: Operation = Operation::OpenStream;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_SEND`]. 16 bytes. The data is the
/// DeviceIoControl output buffer (`Irp->MdlAddress`), 1 ..= [`MAX_SEND_BYTES`].
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 8    | `handle`: a stream socket of this file object |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SendRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Stream socket to send on.
    pub handle: SocketHandle,
}

impl SendRequest {
    /// A request to send on `handle`.
    pub const fn new(handle: SocketHandle) -> Self {
        SendRequest {
            header: RequestHeader::CURRENT,
            handle,
        }
    }
}

impl Request for SendRequest {
    const OPERATION: Operation = Operation::Send;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_handle(self.handle)
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_OPEN_DATAGRAM`]: create and bind a UDP
/// socket. 36 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 28   | `local_address`: `AF_INET` or `AF_INET6` (port 0 = ephemeral); it also picks the socket's family, so `AF_UNSPEC` fails with `STATUS_INVALID_ADDRESS_COMPONENT` |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct OpenDatagramRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Where to bind.
    pub local_address: InetAddress,
}

impl OpenDatagramRequest {
    /// A request to open a datagram socket bound to `local`.
    pub const fn new(local: &SocketAddr) -> Self {
        OpenDatagramRequest {
            header: RequestHeader::CURRENT,
            local_address: InetAddress::from_socket_addr(local),
        }
    }
}

impl Request for OpenDatagramRequest {
    const OPERATION: Operation = Operation::OpenDatagram;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        self.local_address.to_socket_addr().map(|_| ())
    }
}

/// Output of [`crate::IOCTL_WSKCLIENT_OPEN_DATAGRAM`]. 48 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` (`size` = 48) |
/// | 8      | 8    | `handle` |
/// | 16     | 28   | `local_address`: the bound address, ephemeral port resolved |
/// | 44     | 4    | `reserved`, 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct OpenDatagramResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// The new socket.
    pub handle: SocketHandle,
    /// Bound local address.
    pub local_address: InetAddress,
    /// 0.
    pub reserved: u32,
}

impl OpenDatagramResponse {
    /// A response with the header filled in.
    pub const fn new(handle: SocketHandle, local_address: InetAddress) -> Self {
        OpenDatagramResponse {
            header: ResponseHeader::for_response::<Self>(),
            handle,
            local_address,
            reserved: 0,
        }
    }
}

impl Response for OpenDatagramResponse {
    const OPERATION: Operation = Operation::OpenDatagram;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_SET_REMOTE`]. 48 bytes. No output.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 8    | `handle`: a datagram socket |
/// | 16     | 28   | `remote_address`: the fixed remote (`SIO_WSK_SET_REMOTE_ADDRESS`), or `AF_UNSPEC` (all zero) to remove it (`SIO_WSK_UNSET_REMOTE_ADDRESS`) |
/// | 44     | 4    | `reserved`, must be 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SetRemoteRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Datagram socket.
    pub handle: SocketHandle,
    /// Fixed remote address or `AF_UNSPEC`.
    pub remote_address: InetAddress,
    /// Must be 0.
    pub reserved: u32,
}

impl SetRemoteRequest {
    /// A request to set (`Some`) or unset (`None`) the fixed remote address.
    pub const fn new(handle: SocketHandle, remote: Option<&SocketAddr>) -> Self {
        SetRemoteRequest {
            header: RequestHeader::CURRENT,
            handle,
            remote_address: InetAddress::from_optional(remote),
            reserved: 0,
        }
    }
}

impl Request for SetRemoteRequest {
    const OPERATION: Operation = Operation::SetRemote;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_zero(self.reserved)?;
        check_handle(self.handle)?;
        self.remote_address.to_optional().map(|_| ())
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_SEND_TO`]. 48 bytes. The datagram is the
/// DeviceIoControl output buffer (`Irp->MdlAddress`), 1 ..= [`MAX_SEND_TO_BYTES`].
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 8    | `handle`: a datagram socket |
/// | 16     | 28   | `remote_address`: destination, or `AF_UNSPEC` (all zero) for the fixed remote address (`WskSendTo` with `RemoteAddress = NULL`; WSK fails it if none is set) |
/// | 44     | 4    | `reserved`, must be 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SendToRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Datagram socket.
    pub handle: SocketHandle,
    /// Destination or `AF_UNSPEC`.
    pub remote_address: InetAddress,
    /// Must be 0.
    pub reserved: u32,
}

impl SendToRequest {
    /// A request to send to `remote`, or to the fixed remote address when `None`.
    pub const fn new(handle: SocketHandle, remote: Option<&SocketAddr>) -> Self {
        SendToRequest {
            header: RequestHeader::CURRENT,
            handle,
            remote_address: InetAddress::from_optional(remote),
            reserved: 0,
        }
    }
}

impl Request for SendToRequest {
    const OPERATION: Operation = Operation::SendTo;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_zero(self.reserved)?;
        check_handle(self.handle)?;
        self.remote_address.to_optional().map(|_| ())
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_CLOSE`]. 16 bytes. No output.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 8    | `handle`: a socket of either kind |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct CloseRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Socket to close.
    pub handle: SocketHandle,
}

impl CloseRequest {
    /// A request to close `handle`.
    pub const fn new(handle: SocketHandle) -> Self {
        CloseRequest {
            header: RequestHeader::CURRENT,
            handle,
        }
    }
}

impl Request for CloseRequest {
    const OPERATION: Operation = Operation::Close;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_handle(self.handle)
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_QUERY_STATS`]: the header alone. 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct QueryStatsRequest {
    /// Common header.
    pub header: RequestHeader,
}

impl QueryStatsRequest {
    /// The (only) request.
    pub const fn new() -> Self {
        QueryStatsRequest {
            header: RequestHeader::CURRENT,
        }
    }
}

impl Default for QueryStatsRequest {
    fn default() -> Self {
        Self::new()
    }
}

impl Request for QueryStatsRequest {
    const OPERATION: Operation = Operation::QueryStats;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        Ok(())
    }
}

/// Output of [`crate::IOCTL_WSKCLIENT_QUERY_STATS`]: driver-wide counters since
/// the driver loaded (all file objects). 160 bytes. Counters are updated when
/// an Irp completes; `u64` counters wrap.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` (`size` = 160) |
/// | 8      | 8    | `bytes_sent`: stream bytes sent (sum of SEND `Information`) |
/// | 16     | 8    | `sends`: successful SEND requests |
/// | 24     | 8    | `datagrams_sent`: successful SEND_TO requests |
/// | 32     | 8    | `datagram_bytes_sent`: datagram bytes sent |
/// | 40     | 8    | `connects`: successful OPEN_STREAM requests |
/// | 48     | 8    | `connect_fallbacks`: OPEN_STREAM requests that took the `WskSocket` + `WskBind` + `WskConnect` path because `WskSocketConnect` returned `STATUS_NOT_IMPLEMENTED` |
/// | 56     | 8    | `closes`: sockets closed (CLOSE, or `IRP_MJ_CLEANUP` of their file object) |
/// | 64     | 8    | `failed_requests`: IOCTLs completed with an error status (malformed ones included) |
/// | 72     | 8    | `cancelled_requests`: IOCTLs completed with `STATUS_CANCELLED` |
/// | 80     | 4    | `live_sockets`: sockets open now |
/// | 84     | 4    | `pending_requests`: IOCTL Irps pending now |
/// | 88     | 4    | `open_files`: file objects open on the device now |
/// | 92     | 4    | `reserved0`, 0 |
/// | 96     | 64   | `reserved`: 8 × u64, 0 (room for later counters) |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct StatsResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// Stream bytes sent: SEND's bytes, CONNECT_WITH_DATA's initial bytes, and each completed
    /// send of a TRANSMIT_FILE / TRANSMIT_PACKETS on a stream socket (added while the
    /// transfer runs, so it shows progress).
    pub bytes_sent: u64,
    /// Successful SEND requests, plus each completed `WskSend` of a TRANSMIT_FILE /
    /// TRANSMIT_PACKETS on a stream socket (CONNECT_WITH_DATA is not counted here).
    pub sends: u64,
    /// Successful SEND_TO requests, plus each datagram of a TRANSMIT_PACKETS on a datagram
    /// socket.
    pub datagrams_sent: u64,
    /// Datagram bytes sent by the same requests as `datagrams_sent`.
    pub datagram_bytes_sent: u64,
    /// Successful OPEN_STREAM and CONNECT_WITH_DATA requests.
    pub connects: u64,
    /// OPEN_STREAM requests that used the WskSocket + WskBind + WskConnect fallback, and
    /// CONNECT_WITH_DATA requests that connected, then sent (`CONNECT_USED_FALLBACK`).
    pub connect_fallbacks: u64,
    /// Sockets closed: CLOSE, cleanup of the file object, or a TRANSMIT_* request with
    /// `TRANSMIT_REUSE_SOCKET`.
    pub closes: u64,
    /// IOCTLs completed with an error status.
    pub failed_requests: u64,
    /// IOCTLs completed with `STATUS_CANCELLED`.
    pub cancelled_requests: u64,
    /// Sockets open now.
    pub live_sockets: u32,
    /// IOCTL Irps pending now.
    pub pending_requests: u32,
    /// File objects open now.
    pub open_files: u32,
    /// 0.
    pub reserved0: u32,
    /// 0.
    pub reserved: [u64; 8],
}

impl StatsResponse {
    /// All counters 0, header filled in.
    pub const fn new() -> Self {
        StatsResponse {
            header: ResponseHeader::for_response::<Self>(),
            bytes_sent: 0,
            sends: 0,
            datagrams_sent: 0,
            datagram_bytes_sent: 0,
            connects: 0,
            connect_fallbacks: 0,
            closes: 0,
            failed_requests: 0,
            cancelled_requests: 0,
            live_sockets: 0,
            pending_requests: 0,
            open_files: 0,
            reserved0: 0,
            reserved: [0; 8],
        }
    }
}

impl Default for StatsResponse {
    fn default() -> Self {
        Self::new()
    }
}

impl Response for StatsResponse {
    const OPERATION: Operation = Operation::QueryStats;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of};

    #[test]
    fn exact_sizes() {
        assert_eq!(size_of::<RequestHeader>(), RequestHeader::SIZE);
        assert_eq!(size_of::<ResponseHeader>(), ResponseHeader::SIZE);
        assert_eq!(size_of::<OpenStreamRequest>(), 64);
        assert_eq!(size_of::<OpenStreamResponse>(), 72);
        assert_eq!(size_of::<SendRequest>(), 16);
        assert_eq!(size_of::<OpenDatagramRequest>(), 36);
        assert_eq!(size_of::<OpenDatagramResponse>(), 48);
        assert_eq!(size_of::<SetRemoteRequest>(), 48);
        assert_eq!(size_of::<SendToRequest>(), 48);
        assert_eq!(size_of::<CloseRequest>(), 16);
        assert_eq!(size_of::<QueryStatsRequest>(), 8);
        assert_eq!(size_of::<StatsResponse>(), 160);
        assert_eq!(align_of::<OpenStreamRequest>(), 4);
        assert_eq!(align_of::<StatsResponse>(), 8);
    }

    #[test]
    fn documented_offsets() {
        assert_eq!(offset_of!(RequestHeader, flags), 4);
        assert_eq!(offset_of!(ResponseHeader, size), 4);
        assert_eq!(offset_of!(OpenStreamRequest, remote_address), 8);
        assert_eq!(offset_of!(OpenStreamRequest, local_address), 36);
        assert_eq!(offset_of!(OpenStreamResponse, handle), 8);
        assert_eq!(offset_of!(OpenStreamResponse, local_address), 16);
        assert_eq!(offset_of!(OpenStreamResponse, remote_address), 44);
        assert_eq!(offset_of!(SendRequest, handle), 8);
        assert_eq!(offset_of!(OpenDatagramRequest, local_address), 8);
        assert_eq!(offset_of!(OpenDatagramResponse, local_address), 16);
        assert_eq!(offset_of!(OpenDatagramResponse, reserved), 44);
        assert_eq!(offset_of!(SetRemoteRequest, remote_address), 16);
        assert_eq!(offset_of!(SetRemoteRequest, reserved), 44);
        assert_eq!(offset_of!(SendToRequest, remote_address), 16);
        assert_eq!(offset_of!(SendToRequest, reserved), 44);
        assert_eq!(offset_of!(CloseRequest, handle), 8);
        assert_eq!(offset_of!(StatsResponse, bytes_sent), 8);
        assert_eq!(offset_of!(StatsResponse, cancelled_requests), 72);
        assert_eq!(offset_of!(StatsResponse, live_sockets), 80);
        assert_eq!(offset_of!(StatsResponse, open_files), 88);
        assert_eq!(offset_of!(StatsResponse, reserved), 96);
    }

    fn handle() -> SocketHandle {
        SocketHandle::new(4, 9).unwrap()
    }

    fn remote() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn round_trip_through_bytes_unaligned() {
        let request = SendToRequest::new(handle(), Some(&remote()));
        // Place the bytes at an odd offset: parsing copies, so alignment does not matter.
        let mut storage = [0u8; 49];
        storage[1..].copy_from_slice(request.as_bytes());
        assert_eq!(parse_request::<SendToRequest>(&storage[1..]), Ok(request));
        let parsed = parse_request::<SendToRequest>(&storage[1..]).unwrap();
        assert_eq!(parsed.remote_address.to_optional(), Ok(Some(remote())));

        let fixed = SendToRequest::new(handle(), None);
        let parsed = parse_request::<SendToRequest>(fixed.as_bytes()).unwrap();
        assert_eq!(parsed.remote_address.to_optional(), Ok(None));
    }

    #[test]
    fn short_input() {
        let bytes = SendRequest::new(handle()).as_bytes().to_vec();
        assert_eq!(
            parse_request::<SendRequest>(&bytes[..15]),
            Err(ContractError::BufferTooSmall {
                expected: 16,
                actual: 15
            })
        );
        assert_eq!(
            parse_request::<SendRequest>(&bytes[..3]),
            Err(ContractError::BufferTooSmall {
                expected: 16,
                actual: 3
            })
        );
        assert_eq!(
            parse_request::<SendRequest>(&[]).unwrap_err().ntstatus(),
            crate::status::STATUS_BUFFER_TOO_SMALL
        );
    }

    #[test]
    fn oversized_input() {
        let mut bytes = CloseRequest::new(handle()).as_bytes().to_vec();
        bytes.push(0);
        let err = parse_request::<CloseRequest>(&bytes).unwrap_err();
        assert_eq!(
            err,
            ContractError::OversizedInput {
                expected: 16,
                actual: 17
            }
        );
        assert_eq!(err.ntstatus(), crate::status::STATUS_INVALID_BUFFER_SIZE);
    }

    #[test]
    fn unknown_version_wins_over_length() {
        let mut request = OpenStreamRequest::new(&remote(), None);
        request.header.version = 2;
        let err = parse_request::<OpenStreamRequest>(request.as_bytes()).unwrap_err();
        assert_eq!(err, ContractError::RevisionMismatch { found: 2 });
        assert_eq!(err.ntstatus(), crate::status::STATUS_REVISION_MISMATCH);
        // A larger (future) layout still reports the version, not the size.
        let mut bigger = request.as_bytes().to_vec();
        bigger.extend_from_slice(&[0; 8]);
        assert_eq!(
            parse_request::<OpenStreamRequest>(&bigger),
            Err(ContractError::RevisionMismatch { found: 2 })
        );
        let mut zero = request;
        zero.header.version = 0;
        assert_eq!(
            parse_request::<OpenStreamRequest>(zero.as_bytes()),
            Err(ContractError::RevisionMismatch { found: 0 })
        );
    }

    #[test]
    fn reserved_fields_and_flags() {
        let mut request = SetRemoteRequest::new(handle(), Some(&remote()));
        request.header.reserved = 1;
        assert_eq!(
            parse_request::<SetRemoteRequest>(request.as_bytes()),
            Err(ContractError::ReservedNonZero)
        );
        request.header.reserved = 0;
        request.reserved = 0x100;
        assert_eq!(
            parse_request::<SetRemoteRequest>(request.as_bytes()),
            Err(ContractError::ReservedNonZero)
        );
        request.reserved = 0;
        request.header.flags = 0x8000_0000;
        let err = parse_request::<SetRemoteRequest>(request.as_bytes()).unwrap_err();
        assert_eq!(err, ContractError::UnknownFlags { flags: 0x8000_0000 });
        assert_eq!(err.ntstatus(), crate::status::STATUS_INVALID_PARAMETER);
        // Reserved padding inside an IPv4 address.
        let mut request = SendToRequest::new(handle(), Some(&remote()));
        request.remote_address.data[10] = 1;
        assert_eq!(
            parse_request::<SendToRequest>(request.as_bytes()),
            Err(ContractError::ReservedNonZero)
        );
    }

    #[test]
    fn malformed_handles() {
        for raw in [0u64, 0x1_0000_0000, 0x1] {
            let request = SendRequest::new(SocketHandle::from_raw(raw));
            let err = parse_request::<SendRequest>(request.as_bytes()).unwrap_err();
            assert_eq!(err, ContractError::InvalidHandle);
            assert_eq!(err.ntstatus(), crate::status::STATUS_INVALID_HANDLE);
        }
        assert_eq!(
            parse_request::<CloseRequest>(CloseRequest::new(SocketHandle::NULL).as_bytes()),
            Err(ContractError::InvalidHandle)
        );
    }

    #[test]
    fn address_families() {
        let mut request = OpenStreamRequest::new(&remote(), None);
        request.remote_address.family = 10;
        let err = parse_request::<OpenStreamRequest>(request.as_bytes()).unwrap_err();
        assert_eq!(err, ContractError::UnknownAddressFamily { family: 10 });
        assert_eq!(
            err.ntstatus(),
            crate::status::STATUS_INVALID_ADDRESS_COMPONENT
        );
        // A stream needs a remote address; the local one may be AF_UNSPEC.
        let mut request = OpenStreamRequest::new(&remote(), None);
        request.remote_address = InetAddress::UNSPECIFIED;
        assert_eq!(
            parse_request::<OpenStreamRequest>(request.as_bytes()),
            Err(ContractError::UnknownAddressFamily { family: 0 })
        );
        // A datagram socket's family comes from its local address.
        let mut request = OpenDatagramRequest::new(&"0.0.0.0:0".parse().unwrap());
        request.local_address = InetAddress::UNSPECIFIED;
        assert_eq!(
            parse_request::<OpenDatagramRequest>(request.as_bytes()),
            Err(ContractError::UnknownAddressFamily { family: 0 })
        );
    }

    #[test]
    fn effective_local_address() {
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        let request =
            parse_request::<OpenStreamRequest>(OpenStreamRequest::new(&v6, None).as_bytes())
                .unwrap();
        assert_eq!(
            request.effective_local().unwrap().to_socket_addr(),
            Ok("[::]:0".parse().unwrap())
        );
        let local: SocketAddr = "[::1]:5000".parse().unwrap();
        let request = OpenStreamRequest::new(&v6, Some(&local));
        assert_eq!(
            request.effective_local().unwrap().to_socket_addr(),
            Ok(local)
        );
    }

    #[test]
    fn data_lengths() {
        assert_eq!(check_data_length(Operation::Send, 1), Ok(()));
        assert_eq!(check_data_length(Operation::Send, MAX_SEND_BYTES), Ok(()));
        assert_eq!(
            check_data_length(Operation::Send, MAX_SEND_BYTES + 1),
            Err(ContractError::DataTooLarge {
                max: MAX_SEND_BYTES,
                actual: MAX_SEND_BYTES + 1
            })
        );
        assert_eq!(
            check_data_length(Operation::Send, 0),
            Err(ContractError::ZeroLength)
        );
        assert_eq!(check_data_length(Operation::SendTo, 65_535), Ok(()));
        let err = check_data_length(Operation::SendTo, 65_536).unwrap_err();
        assert_eq!(err.ntstatus(), crate::status::STATUS_INVALID_BUFFER_SIZE);
        assert_eq!(
            check_data_length(Operation::SendTo, 0)
                .unwrap_err()
                .ntstatus(),
            crate::status::STATUS_INVALID_PARAMETER
        );
        assert_eq!(check_data_length(Operation::Close, 0), Ok(()));
    }

    #[test]
    fn responses() {
        let response = OpenDatagramResponse::new(handle(), InetAddress::from(remote()));
        assert_eq!(response.header.size, 48);
        let mut out = [0xAAu8; 64];
        assert_eq!(write_response(&mut out, &response), Ok(48));
        assert_eq!(out[48..], [0xAA; 16]);
        assert_eq!(
            parse_response::<OpenDatagramResponse>(&out[..48]),
            Ok(response)
        );

        let mut short = [0u8; 47];
        assert_eq!(
            write_response(&mut short, &response),
            Err(ContractError::BufferTooSmall {
                expected: 48,
                actual: 47
            })
        );
        assert_eq!(short, [0u8; 47], "nothing written on failure");
        assert_eq!(
            parse_response::<OpenDatagramResponse>(&out[..47]),
            Err(ContractError::BufferTooSmall {
                expected: 48,
                actual: 47
            })
        );

        let mut stats = StatsResponse::new();
        stats.header.version = 3;
        assert_eq!(
            parse_response::<StatsResponse>(stats.as_bytes()),
            Err(ContractError::RevisionMismatch { found: 3 })
        );
        let mut stats = StatsResponse::new();
        stats.header.size = 152;
        assert_eq!(
            parse_response::<StatsResponse>(stats.as_bytes()),
            Err(ContractError::BufferTooSmall {
                expected: 160,
                actual: 152
            })
        );
        stats.header.size = 168;
        assert_eq!(
            parse_response::<StatsResponse>(stats.as_bytes()),
            Err(ContractError::OversizedInput {
                expected: 160,
                actual: 168
            })
        );
    }

    #[test]
    fn request_operations_match() {
        assert_eq!(OpenStreamRequest::OPERATION, Operation::OpenStream);
        assert_eq!(SendRequest::OPERATION, Operation::Send);
        assert_eq!(OpenDatagramRequest::OPERATION, Operation::OpenDatagram);
        assert_eq!(SetRemoteRequest::OPERATION, Operation::SetRemote);
        assert_eq!(SendToRequest::OPERATION, Operation::SendTo);
        assert_eq!(CloseRequest::OPERATION, Operation::Close);
        assert_eq!(QueryStatsRequest::OPERATION, Operation::QueryStats);
        assert_eq!(StatsResponse::OPERATION, Operation::QueryStats);
        let code = crate::IOCTL_WSKCLIENT_CLOSE + 0x10_000;
        assert_eq!(
            ContractError::UnknownIoctl { code }.ntstatus(),
            crate::status::STATUS_INVALID_DEVICE_REQUEST
        );
        assert_eq!(
            ContractError::WrongSocketKind.ntstatus(),
            crate::status::STATUS_NOT_SUPPORTED
        );
        assert_eq!(
            ContractError::MissingDataBuffer.ntstatus(),
            crate::status::STATUS_INVALID_PARAMETER
        );
    }
}
