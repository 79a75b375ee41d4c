//! Typed wrappers over the IOCTL contract, on any [`Device`].

use std::fmt;
use std::mem::size_of;
use std::net::SocketAddr;

use wskclient_ioctl::status::STATUS_SUCCESS;
use wskclient_ioctl::{
    ntstatus_name, parse_response, AcceptRequest, AcceptResponse, CloseRequest, ContractError,
    DisconnectRequest, InetAddress, OpenDatagramRequest, OpenDatagramResponse, OpenListenRequest,
    OpenListenResponse, OpenStreamRequest, OpenStreamResponse, Operation, QueryStatsRequest,
    ReceiveFromRequest, ReceiveFromResponse, ReceiveRequest, Request, Response, SendRequest,
    SendToRequest, SetRemoteRequest, SocketHandle, StatsResponse, MAX_RECEIVE_BYTES,
    MAX_RECEIVE_FROM_BYTES,
};

use zerocopy::IntoBytes;

use crate::device::Device;

/// An NTSTATUS shown as `STATUS_NAME (0xC0000236)`, or `NTSTATUS 0x12345678`
/// when [`ntstatus_name`] does not know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtStatus(pub i32);

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ntstatus_name(self.0) {
            Some(name) => write!(f, "{name} ({:#010X})", self.0 as u32),
            None => write!(f, "NTSTATUS {:#010X}", self.0 as u32),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The driver completed the request with a status other than `STATUS_SUCCESS`.
    /// Displays as `STATUS_CONNECTION_REFUSED (0xC0000236)`.
    #[error("{}", NtStatus(*status))]
    Status {
        /// The operation.
        operation: Operation,
        /// `IoStatus.Status`.
        status: i32,
    },
    /// The driver succeeded but its response breaks the contract (wrong size,
    /// version, or `Information`).
    #[error("malformed {} response: {source}", operation.name())]
    BadResponse {
        /// The operation.
        operation: Operation,
        /// What was wrong.
        source: ContractError,
    },
    /// A send reported more bytes than were given.
    #[error("{} reported {information} bytes sent of {len}", operation.name())]
    BadInformation {
        /// The operation.
        operation: Operation,
        /// `IoStatus.Information`.
        information: usize,
        /// Bytes handed to the driver.
        len: usize,
    },
}

impl Error {
    /// The NTSTATUS the driver returned, if the error is [`Error::Status`].
    pub fn status(&self) -> Option<i32> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result of [`Client`] calls.
pub type Result<T> = std::result::Result<T, Error>;

/// A connected stream socket, as returned by OPEN_STREAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSocket {
    /// The driver's handle.
    pub handle: SocketHandle,
    /// Bound local address; `None` when the driver reports `AF_UNSPEC` because the WSK
    /// provider cannot tell it (Wine 8.0's netio.sys lacks `WskGetLocalAddress`).
    pub local: Option<SocketAddr>,
    /// Connected remote address.
    pub remote: SocketAddr,
}

/// A listening stream socket, as returned by OPEN_LISTEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenSocket {
    /// The driver's handle.
    pub handle: SocketHandle,
    /// Bound local address (ephemeral port resolved).
    pub local: SocketAddr,
}

/// A bound datagram socket, as returned by OPEN_DATAGRAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramSocket {
    /// The driver's handle.
    pub handle: SocketHandle,
    /// Bound local address (ephemeral port resolved).
    pub local: SocketAddr,
}

/// Typed access to the driver's IOCTLs over a borrowed [`Device`].
#[derive(Clone, Copy)]
pub struct Client<'a> {
    device: &'a dyn Device,
}

impl<'a> Client<'a> {
    /// A client on `device`.
    pub fn new(device: &'a dyn Device) -> Self {
        Client { device }
    }

    fn call<Q: Request, R: Response>(&self, request: &Q) -> Result<R> {
        let mut output = vec![0u8; size_of::<R>()];
        let io = self
            .device
            .ioctl(Q::OPERATION.code(), request.as_bytes(), &mut output);
        check(Q::OPERATION, io.status)?;
        let written = output.get(..io.information).ok_or(Error::BadResponse {
            operation: Q::OPERATION,
            source: ContractError::OversizedInput {
                expected: size_of::<R>(),
                actual: io.information,
            },
        })?;
        parse_response(written).map_err(|source| Error::BadResponse {
            operation: Q::OPERATION,
            source,
        })
    }

    fn call_no_output<Q: Request>(&self, request: &Q) -> Result<()> {
        let io = self
            .device
            .ioctl(Q::OPERATION.code(), request.as_bytes(), &mut []);
        check(Q::OPERATION, io.status)
    }

    fn call_data<Q: Request>(&self, request: &Q, data: &[u8]) -> Result<usize> {
        let io = self
            .device
            .ioctl_in_direct(Q::OPERATION.code(), request.as_bytes(), data);
        check(Q::OPERATION, io.status)?;
        if io.information > data.len() {
            return Err(Error::BadInformation {
                operation: Q::OPERATION,
                information: io.information,
                len: data.len(),
            });
        }
        Ok(io.information)
    }

    /// OPEN_STREAM: connect to `remote` from the wildcard address of its family.
    ///
    /// Errors: the driver's status (e.g. `STATUS_CONNECTION_REFUSED`), or
    /// [`Error::BadResponse`].
    pub fn open_stream(&self, remote: SocketAddr) -> Result<StreamSocket> {
        let response: OpenStreamResponse = self.call(&OpenStreamRequest::new(&remote, None))?;
        let bad = |source| Error::BadResponse {
            operation: Operation::OpenStream,
            source,
        };
        Ok(StreamSocket {
            handle: response.handle,
            local: if response.local_address == InetAddress::UNSPECIFIED {
                None
            } else {
                Some(response.local_address.to_socket_addr().map_err(bad)?)
            },
            remote: response.remote_address.to_socket_addr().map_err(bad)?,
        })
    }

    /// OPEN_LISTEN: a TCP socket of `local`'s family, bound to `local` (port 0 =
    /// ephemeral) and listening.
    ///
    /// Errors: the driver's status (e.g. `STATUS_ADDRESS_ALREADY_EXISTS`), or
    /// [`Error::BadResponse`].
    pub fn open_listen(&self, local: SocketAddr) -> Result<ListenSocket> {
        let response: OpenListenResponse = self.call(&OpenListenRequest::new(&local))?;
        Ok(ListenSocket {
            handle: response.handle,
            local: response.local_address.to_socket_addr().map_err(|source| {
                Error::BadResponse {
                    operation: Operation::OpenListen,
                    source,
                }
            })?,
        })
    }

    /// ACCEPT: waits for one connection on the listening socket `listener` and returns the
    /// accepted stream socket with both addresses of the connection (the counterpart of
    /// `GetAcceptExSockaddrs`). Blocks the calling thread until a client arrives; other
    /// threads may use the device meanwhile.
    ///
    /// Errors: `STATUS_CANCELLED` when the listening handle is closed meanwhile,
    /// `STATUS_NOT_SUPPORTED` when `listener` is not a listening socket, other driver
    /// statuses, or [`Error::BadResponse`].
    pub fn accept(&self, listener: SocketHandle) -> Result<StreamSocket> {
        let response: AcceptResponse = self.call(&AcceptRequest::new(listener))?;
        let bad = |source| Error::BadResponse {
            operation: Operation::Accept,
            source,
        };
        Ok(StreamSocket {
            handle: response.handle,
            local: if response.local_address == InetAddress::UNSPECIFIED {
                None
            } else {
                Some(response.local_address.to_socket_addr().map_err(bad)?)
            },
            remote: response.remote_address.to_socket_addr().map_err(bad)?,
        })
    }

    /// RECEIVE: receives into `buf` (1 ..= `MAX_RECEIVE_BYTES` bytes; METHOD_OUT_DIRECT, so
    /// `buf` is the DeviceIoControl output buffer the driver writes through an MDL) on a
    /// stream socket; returns the bytes received, 0 when the peer closed gracefully. Blocks
    /// until some bytes arrived.
    ///
    /// Errors: the driver's status (e.g. `STATUS_CONNECTION_RESET`, `STATUS_CANCELLED`,
    /// `STATUS_INVALID_PARAMETER` for an empty `buf`), or [`Error::BadInformation`].
    pub fn receive(&self, handle: SocketHandle, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len().min(MAX_RECEIVE_BYTES);
        let buf = &mut buf[..len];
        let request = ReceiveRequest::new(handle);
        let io = self
            .device
            .ioctl(Operation::Receive.code(), request.as_bytes(), buf);
        check(Operation::Receive, io.status)?;
        if io.information > buf.len() {
            return Err(Error::BadInformation {
                operation: Operation::Receive,
                information: io.information,
                len: buf.len(),
            });
        }
        Ok(io.information)
    }

    /// RECEIVE_FROM: receives one datagram into `buf` (at most 65,535 bytes are used) on a
    /// datagram socket; returns its length and sender. Blocks until a datagram arrives.
    ///
    /// Errors: the driver's status (e.g. `STATUS_BUFFER_OVERFLOW` when the datagram does
    /// not fit, `STATUS_CANCELLED`), [`Error::BadResponse`] or [`Error::BadInformation`].
    pub fn receive_from(
        &self,
        handle: SocketHandle,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddr)> {
        let room = buf.len().min(MAX_RECEIVE_FROM_BYTES);
        let mut output = vec![0u8; ReceiveFromResponse::SIZE + room];
        let request = ReceiveFromRequest::new(handle);
        let io = self.device.ioctl(
            Operation::ReceiveFrom.code(),
            request.as_bytes(),
            &mut output,
        );
        check(Operation::ReceiveFrom, io.status)?;
        let bad = |source| Error::BadResponse {
            operation: Operation::ReceiveFrom,
            source,
        };
        let head = output
            .get(..ReceiveFromResponse::SIZE.min(io.information))
            .unwrap_or_default();
        let response: ReceiveFromResponse = parse_response(head).map_err(bad)?;
        let n = response.data_length as usize;
        let data = output
            .get(ReceiveFromResponse::SIZE..ReceiveFromResponse::SIZE + n)
            .filter(|_| io.information == ReceiveFromResponse::SIZE + n && n <= room)
            .ok_or(Error::BadInformation {
                operation: Operation::ReceiveFrom,
                information: io.information,
                len: output.len(),
            })?;
        buf[..n].copy_from_slice(data);
        Ok((n, response.remote_address.to_socket_addr().map_err(bad)?))
    }

    /// DISCONNECT: graceful (FIN after queued data) or, when `abortive`, a reset.
    ///
    /// Errors: the driver's status (e.g. `STATUS_INVALID_CONNECTION`).
    pub fn disconnect(&self, handle: SocketHandle, abortive: bool) -> Result<()> {
        self.call_no_output(&DisconnectRequest::new(handle, abortive))
    }

    /// SEND: send `data` (1 ..= `MAX_SEND_BYTES` bytes) on a stream socket;
    /// returns bytes sent (`IoStatus.Information`).
    pub fn send(&self, handle: SocketHandle, data: &[u8]) -> Result<usize> {
        self.call_data(&SendRequest::new(handle), data)
    }

    /// OPEN_DATAGRAM: a UDP socket bound to `local` (port 0 = ephemeral).
    pub fn open_datagram(&self, local: SocketAddr) -> Result<DatagramSocket> {
        let response: OpenDatagramResponse = self.call(&OpenDatagramRequest::new(&local))?;
        Ok(DatagramSocket {
            handle: response.handle,
            local: response.local_address.to_socket_addr().map_err(|source| {
                Error::BadResponse {
                    operation: Operation::OpenDatagram,
                    source,
                }
            })?,
        })
    }

    /// SET_REMOTE: fix the datagram socket's remote address, or unset it with `None`.
    pub fn set_remote(&self, handle: SocketHandle, remote: Option<SocketAddr>) -> Result<()> {
        self.call_no_output(&SetRemoteRequest::new(handle, remote.as_ref()))
    }

    /// SEND_TO: send one datagram (1 ..= 65,535 bytes) to `remote`, or to the
    /// fixed remote address when `None`; returns bytes sent.
    pub fn send_to(
        &self,
        handle: SocketHandle,
        remote: Option<SocketAddr>,
        data: &[u8],
    ) -> Result<usize> {
        self.call_data(&SendToRequest::new(handle, remote.as_ref()), data)
    }

    /// CLOSE: close a socket of either kind.
    pub fn close(&self, handle: SocketHandle) -> Result<()> {
        self.call_no_output(&CloseRequest::new(handle))
    }

    /// QUERY_STATS: the driver-wide counters.
    pub fn stats(&self) -> Result<StatsResponse> {
        self.call(&QueryStatsRequest::new())
    }
}

fn check(operation: Operation, status: i32) -> Result<()> {
    if status == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(Error::Status { operation, status })
    }
}

/// A stream socket opened by CONNECT_WITH_DATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectedWithData {
    /// The socket (usable with SEND, RECEIVE, DISCONNECT, CLOSE).
    pub socket: StreamSocket,
    /// Initial data bytes sent.
    pub bytes_sent: u32,
    /// The driver used `WskConnect` + `WskSend` because the provider lacks `WskConnectEx`.
    pub used_fallback: bool,
}

/// What a RESOLVE returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Forward: the addresses (in the provider's order) and how many the driver found.
    Addresses {
        /// The addresses returned.
        addresses: Vec<SocketAddr>,
        /// Addresses found (more than `addresses.len()` when the list was cut).
        total: u32,
    },
    /// Reverse: the host name.
    Name(String),
}

/// Socket options, CONNECT_WITH_DATA and RESOLVE (issue 4).
impl Client<'_> {
    /// SET_OPTION: sets `option` (`wskclient_ioctl::options::OPTION_*`) of `handle` to
    /// `value` (0/1 for flags, bytes for buffer sizes).
    ///
    /// Errors: the driver's status (`STATUS_INVALID_PARAMETER` for an unknown option,
    /// `STATUS_NOT_SUPPORTED` for a TCP option on a datagram socket, WSK's status).
    pub fn set_option(&self, handle: SocketHandle, option: u32, value: u32) -> Result<()> {
        self.call_no_output(&wskclient_ioctl::options::SetOptionRequest::new(
            handle, option, value,
        ))
    }

    /// GET_OPTION: the value of `option` of `handle`.
    ///
    /// Errors: as [`Client::set_option`], or [`Error::BadResponse`].
    pub fn get_option(&self, handle: SocketHandle, option: u32) -> Result<u32> {
        let r: wskclient_ioctl::options::GetOptionResponse = self.call(
            &wskclient_ioctl::options::GetOptionRequest::new(handle, option),
        )?;
        Ok(r.value)
    }

    /// CONNECT_WITH_DATA: a new stream socket connected to `remote` (from `local`, or the
    /// wildcard of its family) that sent `data` (at most 65,535 bytes) with the connect.
    ///
    /// Errors: the driver's status (e.g. `STATUS_CONNECTION_REFUSED`,
    /// `STATUS_INVALID_BUFFER_SIZE` for too much data), or [`Error::BadResponse`].
    pub fn connect_with_data(
        &self,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        data: &[u8],
    ) -> Result<ConnectedWithData> {
        use wskclient_ioctl::options::{
            encode_connect_with_data, ConnectWithDataResponse, MAX_CONNECT_WITH_DATA_INPUT,
        };
        let op = Operation::ConnectWithData;
        let bad = |source| Error::BadResponse {
            operation: op,
            source,
        };
        let mut input = vec![0u8; MAX_CONNECT_WITH_DATA_INPUT];
        let n =
            encode_connect_with_data(&remote, local.as_ref(), data, &mut input).map_err(|e| {
                Error::Status {
                    operation: op,
                    status: e.ntstatus(),
                }
            })?;
        let mut output = vec![0u8; size_of::<ConnectWithDataResponse>()];
        let io = self.device.ioctl(op.code(), &input[..n], &mut output);
        check(op, io.status)?;
        let written = output
            .get(..io.information)
            .ok_or(bad(ContractError::OversizedInput {
                expected: output.len(),
                actual: io.information,
            }))?;
        let r: ConnectWithDataResponse = parse_response(written).map_err(bad)?;
        Ok(ConnectedWithData {
            socket: StreamSocket {
                handle: r.handle,
                local: if r.local_address == InetAddress::UNSPECIFIED {
                    None
                } else {
                    Some(r.local_address.to_socket_addr().map_err(bad)?)
                },
                remote: r.remote_address.to_socket_addr().map_err(bad)?,
            },
            bytes_sent: r.bytes_sent,
            used_fallback: r.used_fallback(),
        })
    }

    /// RESOLVE, forward: the addresses of `name` (a host name or numeric address), with
    /// `port` (0 = none) in each, of `family` (`AF_UNSPEC`, `AF_INET`, `AF_INET6`).
    ///
    /// Errors: the driver's status (`STATUS_NO_MATCH` when the name cannot be resolved),
    /// `STATUS_INVALID_PARAMETER` / `STATUS_INVALID_BUFFER_SIZE` for an empty or too long
    /// name (not sent), or [`Error::BadResponse`].
    pub fn resolve(&self, name: &str, port: u16, family: u16) -> Result<Resolved> {
        use wskclient_ioctl::names::{encode_resolve_forward, MAX_RESOLVE_INPUT};
        let mut input = vec![0u8; MAX_RESOLVE_INPUT];
        let n =
            encode_resolve_forward(name, port, family, &mut input).map_err(|e| Error::Status {
                operation: Operation::Resolve,
                status: e.ntstatus(),
            })?;
        self.resolve_raw(&input[..n])
    }

    /// RESOLVE, reverse: the host name of `address` (its port is ignored).
    ///
    /// Errors: the driver's status (`STATUS_NO_MATCH` when the address has no name, on
    /// ntsim), or [`Error::BadResponse`].
    pub fn resolve_reverse(&self, address: SocketAddr) -> Result<String> {
        let q = wskclient_ioctl::names::ResolveRequest::reverse(&address);
        match self.resolve_raw(q.as_bytes())? {
            Resolved::Name(n) => Ok(n),
            Resolved::Addresses { .. } => Err(Error::BadResponse {
                operation: Operation::Resolve,
                source: ContractError::ReservedNonZero,
            }),
        }
    }

    fn resolve_raw(&self, input: &[u8]) -> Result<Resolved> {
        use wskclient_ioctl::names::{parse_resolve_response, MAX_RESOLVE_OUTPUT, RESOLVE_FORWARD};
        let op = Operation::Resolve;
        let bad = |source| Error::BadResponse {
            operation: op,
            source,
        };
        let mut output = vec![0u8; MAX_RESOLVE_OUTPUT];
        let io = self.device.ioctl(op.code(), input, &mut output);
        check(op, io.status)?;
        let written = output
            .get(..io.information)
            .ok_or(bad(ContractError::OversizedInput {
                expected: MAX_RESOLVE_OUTPUT,
                actual: io.information,
            }))?;
        let reply = parse_resolve_response(written).map_err(bad)?;
        if reply.response.mode == RESOLVE_FORWARD {
            let addresses = reply
                .addresses()
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(bad)?;
            Ok(Resolved::Addresses {
                addresses,
                total: reply.response.total,
            })
        } else {
            Ok(Resolved::Name(reply.name().map_err(bad)?.to_string()))
        }
    }
}
