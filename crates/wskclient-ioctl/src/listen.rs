//! Request and response structs of the server-side and receive operations: OPEN_LISTEN,
//! ACCEPT, RECEIVE, DISCONNECT, RECEIVE_FROM. Same conventions as [`crate::message`].

use core::net::SocketAddr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::message::{check_handle, check_zero};
use crate::{
    ContractError, InetAddress, Operation, Request, RequestHeader, Response, ResponseHeader,
    SocketHandle,
};

/// Largest RECEIVE data buffer, in bytes (64 MiB, as [`crate::MAX_SEND_BYTES`]). Larger:
/// `STATUS_INVALID_BUFFER_SIZE`; 0: `STATUS_INVALID_PARAMETER`.
pub const MAX_RECEIVE_BYTES: usize = 64 << 20;

/// Most datagram bytes one RECEIVE_FROM returns (65,535, the largest UDP payload without
/// jumbograms). A longer output buffer is accepted; only this many bytes of it are used.
pub const MAX_RECEIVE_FROM_BYTES: usize = 65_535;

/// [`DisconnectRequest::mode`]: graceful disconnect (FIN after queued sends).
pub const DISCONNECT_GRACEFUL: u32 = 0;
/// [`DisconnectRequest::mode`]: abortive disconnect (`WSK_FLAG_ABORTIVE`: RST).
pub const DISCONNECT_ABORTIVE: u32 = 1;

/// Input of [`crate::IOCTL_WSKCLIENT_OPEN_LISTEN`]: create, bind and listen. 36 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 28   | `local_address`: `AF_INET` or `AF_INET6` (port 0 = ephemeral); it picks the family, so `AF_UNSPEC` fails with `STATUS_INVALID_ADDRESS_COMPONENT` |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct OpenListenRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Where to listen.
    pub local_address: InetAddress,
}

impl OpenListenRequest {
    /// A request to listen on `local`.
    pub const fn new(local: &SocketAddr) -> Self {
        OpenListenRequest {
            header: RequestHeader::CURRENT,
            local_address: InetAddress::from_socket_addr(local),
        }
    }
}

impl Request for OpenListenRequest {
    const OPERATION: Operation = Operation::OpenListen;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        self.local_address.to_socket_addr().map(|_| ())
    }
}

/// Output of [`crate::IOCTL_WSKCLIENT_OPEN_LISTEN`]. 48 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` (`size` = 48) |
/// | 8      | 8    | `handle` of the listening socket |
/// | 16     | 28   | `local_address`: the bound address, ephemeral port resolved |
/// | 44     | 4    | `reserved`, 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct OpenListenResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// The listening socket.
    pub handle: SocketHandle,
    /// Bound local address.
    pub local_address: InetAddress,
    /// 0.
    pub reserved: u32,
}

impl OpenListenResponse {
    /// A response with the header filled in.
    pub const fn new(handle: SocketHandle, local_address: InetAddress) -> Self {
        OpenListenResponse {
            header: ResponseHeader::for_response::<Self>(),
            handle,
            local_address,
            reserved: 0,
        }
    }
}

impl Response for OpenListenResponse {
    const OPERATION: Operation = Operation::OpenListen;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_ACCEPT`]. 16 bytes: `header` (0, 8), `handle` (8, 8)
/// of a listening socket of this file object.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct AcceptRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Listening socket.
    pub handle: SocketHandle,
}

impl AcceptRequest {
    /// A request to accept on `handle`.
    pub const fn new(handle: SocketHandle) -> Self {
        AcceptRequest {
            header: RequestHeader::CURRENT,
            handle,
        }
    }
}

impl Request for AcceptRequest {
    const OPERATION: Operation = Operation::Accept;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_handle(self.handle)
    }
}

/// Output of [`crate::IOCTL_WSKCLIENT_ACCEPT`]. 72 bytes, laid out as
/// [`crate::OpenStreamResponse`].
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` (`size` = 72) |
/// | 8      | 8    | `handle`: the accepted stream socket, usable with SEND, RECEIVE, DISCONNECT, CLOSE |
/// | 16     | 28   | `local_address` of the connection (`WskAccept`'s `LocalAddress`) |
/// | 44     | 28   | `remote_address`: the client (`WskAccept`'s `RemoteAddress`) |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct AcceptResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// The accepted socket.
    pub handle: SocketHandle,
    /// Local address of the connection.
    pub local_address: InetAddress,
    /// The client's address.
    pub remote_address: InetAddress,
}

impl AcceptResponse {
    /// A response with the header filled in.
    pub const fn new(
        handle: SocketHandle,
        local_address: InetAddress,
        remote_address: InetAddress,
    ) -> Self {
        AcceptResponse {
            header: ResponseHeader::for_response::<Self>(),
            handle,
            local_address,
            remote_address,
        }
    }
}

impl Response for AcceptResponse {
    const OPERATION: Operation = Operation::Accept;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_RECEIVE`]. 16 bytes: `header` (0, 8), `handle` (8, 8)
/// of a connected stream socket. The data buffer is the DeviceIoControl output buffer
/// (`Irp->MdlAddress`), 1 ..= [`MAX_RECEIVE_BYTES`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ReceiveRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Stream socket to receive on.
    pub handle: SocketHandle,
}

impl ReceiveRequest {
    /// A request to receive on `handle`.
    pub const fn new(handle: SocketHandle) -> Self {
        ReceiveRequest {
            header: RequestHeader::CURRENT,
            handle,
        }
    }
}

impl Request for ReceiveRequest {
    const OPERATION: Operation = Operation::Receive;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_handle(self.handle)
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_DISCONNECT`]. 24 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` |
/// | 8      | 8    | `handle` of a connected stream socket |
/// | 16     | 4    | `mode`: [`DISCONNECT_GRACEFUL`] (0) or [`DISCONNECT_ABORTIVE`] (1); others fail with `STATUS_INVALID_PARAMETER` |
/// | 20     | 4    | `reserved`, must be 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct DisconnectRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Stream socket.
    pub handle: SocketHandle,
    /// Graceful (0) or abortive (1).
    pub mode: u32,
    /// Must be 0.
    pub reserved: u32,
}

impl DisconnectRequest {
    /// A request to disconnect `handle`, abortively when `abortive`.
    pub const fn new(handle: SocketHandle, abortive: bool) -> Self {
        DisconnectRequest {
            header: RequestHeader::CURRENT,
            handle,
            mode: if abortive {
                DISCONNECT_ABORTIVE
            } else {
                DISCONNECT_GRACEFUL
            },
            reserved: 0,
        }
    }

    /// Whether `mode` asks for an abortive disconnect.
    pub const fn is_abortive(&self) -> bool {
        self.mode == DISCONNECT_ABORTIVE
    }
}

impl Request for DisconnectRequest {
    const OPERATION: Operation = Operation::Disconnect;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_zero(self.reserved)?;
        check_handle(self.handle)?;
        if self.mode > DISCONNECT_ABORTIVE {
            return Err(ContractError::UnknownFlags { flags: self.mode });
        }
        Ok(())
    }
}

/// Input of [`crate::IOCTL_WSKCLIENT_RECEIVE_FROM`]. 16 bytes: `header` (0, 8), `handle`
/// (8, 8) of a datagram socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ReceiveFromRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Datagram socket.
    pub handle: SocketHandle,
}

impl ReceiveFromRequest {
    /// A request to receive one datagram on `handle`.
    pub const fn new(handle: SocketHandle) -> Self {
        ReceiveFromRequest {
            header: RequestHeader::CURRENT,
            handle,
        }
    }
}

impl Request for ReceiveFromRequest {
    const OPERATION: Operation = Operation::ReceiveFrom;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_handle(self.handle)
    }
}

/// The fixed part of the output of [`crate::IOCTL_WSKCLIENT_RECEIVE_FROM`]: 40 bytes,
/// followed in the output buffer by `data_length` bytes of the datagram.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` (`size` = 40, the fixed part; `IoStatus.Information` = 40 + `data_length`) |
/// | 8      | 28   | `remote_address`: the sender |
/// | 36     | 4    | `data_length`: bytes of datagram at offset 40 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ReceiveFromResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// The sender.
    pub remote_address: InetAddress,
    /// Datagram bytes following this struct.
    pub data_length: u32,
}

impl ReceiveFromResponse {
    /// Size of the fixed part, in bytes: the data starts at this offset.
    pub const SIZE: usize = 40;

    /// A response with the header filled in.
    pub const fn new(remote_address: InetAddress, data_length: u32) -> Self {
        ReceiveFromResponse {
            header: ResponseHeader::for_response::<Self>(),
            remote_address,
            data_length,
        }
    }
}

impl Response for ReceiveFromResponse {
    const OPERATION: Operation = Operation::ReceiveFrom;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check_data_length, parse_request, parse_response, write_response};
    use core::mem::{offset_of, size_of};

    fn handle() -> SocketHandle {
        SocketHandle::new(2, 5).unwrap()
    }

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(size_of::<OpenListenRequest>(), 36);
        assert_eq!(size_of::<OpenListenResponse>(), 48);
        assert_eq!(size_of::<AcceptRequest>(), 16);
        assert_eq!(size_of::<AcceptResponse>(), 72);
        assert_eq!(size_of::<ReceiveRequest>(), 16);
        assert_eq!(size_of::<DisconnectRequest>(), 24);
        assert_eq!(size_of::<ReceiveFromRequest>(), 16);
        assert_eq!(size_of::<ReceiveFromResponse>(), ReceiveFromResponse::SIZE);
        assert_eq!(offset_of!(OpenListenResponse, local_address), 16);
        assert_eq!(offset_of!(OpenListenResponse, reserved), 44);
        assert_eq!(offset_of!(AcceptResponse, remote_address), 44);
        assert_eq!(offset_of!(DisconnectRequest, mode), 16);
        assert_eq!(offset_of!(DisconnectRequest, reserved), 20);
        assert_eq!(offset_of!(ReceiveFromResponse, remote_address), 8);
        assert_eq!(offset_of!(ReceiveFromResponse, data_length), 36);
    }

    #[test]
    fn malformed_inputs() {
        let mut l = OpenListenRequest::new(&"[::1]:0".parse().unwrap());
        assert_eq!(parse_request::<OpenListenRequest>(l.as_bytes()), Ok(l));
        l.local_address = InetAddress::UNSPECIFIED;
        assert_eq!(
            parse_request::<OpenListenRequest>(l.as_bytes())
                .unwrap_err()
                .ntstatus(),
            crate::status::STATUS_INVALID_ADDRESS_COMPONENT
        );
        assert_eq!(
            parse_request::<AcceptRequest>(AcceptRequest::new(SocketHandle::NULL).as_bytes()),
            Err(ContractError::InvalidHandle)
        );
        let mut d = DisconnectRequest::new(handle(), true);
        assert!(parse_request::<DisconnectRequest>(d.as_bytes())
            .unwrap()
            .is_abortive());
        d.mode = 2;
        assert_eq!(
            parse_request::<DisconnectRequest>(d.as_bytes())
                .unwrap_err()
                .ntstatus(),
            crate::status::STATUS_INVALID_PARAMETER
        );
        d.mode = 0;
        d.reserved = 1;
        assert_eq!(
            parse_request::<DisconnectRequest>(d.as_bytes()),
            Err(ContractError::ReservedNonZero)
        );
        let r = ReceiveRequest::new(handle());
        assert_eq!(
            parse_request::<ReceiveRequest>(&r.as_bytes()[..12]),
            Err(ContractError::BufferTooSmall {
                expected: 16,
                actual: 12
            })
        );
        assert_eq!(
            check_data_length(Operation::Receive, 0),
            Err(ContractError::ZeroLength)
        );
        assert_eq!(
            check_data_length(Operation::Receive, MAX_RECEIVE_BYTES + 1)
                .unwrap_err()
                .ntstatus(),
            crate::status::STATUS_INVALID_BUFFER_SIZE
        );
        assert_eq!(check_data_length(Operation::Receive, 1), Ok(()));
    }

    #[test]
    fn receive_from_response_round_trip() {
        let from: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let r = ReceiveFromResponse::new(InetAddress::from_socket_addr(&from), 3);
        let mut out = [0u8; 43];
        assert_eq!(write_response(&mut out, &r), Ok(40));
        let parsed = parse_response::<ReceiveFromResponse>(&out[..40]).unwrap();
        assert_eq!(parsed.remote_address.to_socket_addr(), Ok(from));
        assert_eq!(parsed.data_length, 3);
    }
}
