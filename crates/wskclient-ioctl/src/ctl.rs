//! I/O control codes: `CTL_CODE` arithmetic, the device identity and the
//! `IOCTL_WSKCLIENT_*` codes.
//!
//! Source: "Defining I/O Control Codes",
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/kernel/defining-i-o-control-codes>,
//! and "Buffer Descriptions for I/O Control Codes",
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/kernel/buffer-descriptions-for-i-o-control-codes>.
//!
//! # Function-code plan
//!
//! Function codes below 0x800 are reserved for Microsoft. Ours are grouped so
//! later operations slot in without renumbering:
//!
//! | range           | group                                                         |
//! |-----------------|---------------------------------------------------------------|
//! | `0x800..=0x80F` | stream sockets: OPEN_STREAM 0x800, SEND 0x801, OPEN_LISTEN 0x802, ACCEPT 0x803, RECEIVE 0x804, DISCONNECT 0x805; 0x806.. reserved (transmit-file) |
//! | `0x810..=0x81F` | datagram sockets: OPEN_DATAGRAM 0x810, SET_REMOTE 0x811, SEND_TO 0x812, RECEIVE_FROM 0x813 |
//! | `0x820..=0x82F` | any socket / driver: CLOSE 0x820, QUERY_STATS 0x821; reserved for resolve (WskGetAddressInfo) |
//! | `0x830..=0xFFF` | unassigned                                                    |

/// `METHOD_BUFFERED` (0): input and output are copied through
/// `Irp->AssociatedIrp.SystemBuffer`; the output length written is
/// `IoStatus.Information`.
pub const METHOD_BUFFERED: u32 = 0;
/// `METHOD_IN_DIRECT` (1): input copied to `SystemBuffer`; the caller's output
/// buffer is probed for read access and described by `Irp->MdlAddress`
/// (NULL when its length is 0). Used for data the driver sends.
pub const METHOD_IN_DIRECT: u32 = 1;
/// `METHOD_OUT_DIRECT` (2): as [`METHOD_IN_DIRECT`] but the MDL is probed for
/// write access (data the driver produces).
pub const METHOD_OUT_DIRECT: u32 = 2;
/// `METHOD_NEITHER` (3): raw user addresses; unused by this contract.
pub const METHOD_NEITHER: u32 = 3;

/// `FILE_ANY_ACCESS` (0): the I/O manager checks no access right.
pub const FILE_ANY_ACCESS: u32 = 0;
/// `FILE_READ_ACCESS` (1): the caller's handle must grant `FILE_READ_DATA`,
/// otherwise the I/O manager fails the call with `STATUS_ACCESS_DENIED`
/// before the driver sees it.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS` (2): the caller's handle must grant `FILE_WRITE_DATA`,
/// otherwise `STATUS_ACCESS_DENIED` from the I/O manager.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)` from devioctl.h:
/// `(DeviceType << 16) | (Access << 14) | (Function << 2) | Method`.
///
/// Shapes: `device_type` is 16 bits, `function` 12 bits, `access` 2 bits,
/// `method` 2 bits; wider values are masked to their field so a mistake
/// cannot corrupt a neighbouring field.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    ((device_type & 0xFFFF) << 16)
        | ((access & 0x3) << 14)
        | ((function & 0xFFF) << 2)
        | (method & 0x3)
}

/// `DEVICE_TYPE_FROM_CTL_CODE`: bits 16..32 of `code`.
pub const fn device_type_of(code: u32) -> u32 {
    code >> 16
}

/// The `Access` field (bits 14..16) of `code`: `FILE_*_ACCESS` bits.
pub const fn access_of(code: u32) -> u32 {
    (code >> 14) & 0x3
}

/// The `Function` field (bits 2..14) of `code`.
pub const fn function_of(code: u32) -> u32 {
    (code >> 2) & 0xFFF
}

/// `METHOD_FROM_CTL_CODE`: the transfer method (bits 0..2) of `code`.
pub const fn method_of(code: u32) -> u32 {
    code & 0x3
}

/// Our device type, in the vendor range (`>= 0x8000`) of `DEVICE_TYPE`.
pub const FILE_DEVICE_WSKCLIENT: u32 = 0x8A57;

/// NT name of the device object created by `IoCreateDevice`.
pub const DEVICE_NAME: &str = "\\Device\\WskClient";
/// Symbolic link created by `IoCreateSymbolicLink` so user mode can open the device.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/kernel/introduction-to-ms-dos-device-names>
pub const DOS_DEVICE_NAME: &str = "\\DosDevices\\WskClient";
/// Win32 path user mode passes to `CreateFileW`: `\\.\WskClient`.
pub const USER_PATH: &str = "\\\\.\\WskClient";

/// Function code of [`IOCTL_WSKCLIENT_OPEN_STREAM`].
pub const FUNCTION_OPEN_STREAM: u32 = 0x800;
/// Function code of [`IOCTL_WSKCLIENT_SEND`].
pub const FUNCTION_SEND: u32 = 0x801;
/// Function code of [`IOCTL_WSKCLIENT_OPEN_LISTEN`].
pub const FUNCTION_OPEN_LISTEN: u32 = 0x802;
/// Function code of [`IOCTL_WSKCLIENT_ACCEPT`].
pub const FUNCTION_ACCEPT: u32 = 0x803;
/// Function code of [`IOCTL_WSKCLIENT_RECEIVE`].
pub const FUNCTION_RECEIVE: u32 = 0x804;
/// Function code of [`IOCTL_WSKCLIENT_DISCONNECT`].
pub const FUNCTION_DISCONNECT: u32 = 0x805;
/// Function code of [`IOCTL_WSKCLIENT_RECEIVE_FROM`].
pub const FUNCTION_RECEIVE_FROM: u32 = 0x813;
/// Function code of [`IOCTL_WSKCLIENT_OPEN_DATAGRAM`].
pub const FUNCTION_OPEN_DATAGRAM: u32 = 0x810;
/// Function code of [`IOCTL_WSKCLIENT_SET_REMOTE`].
pub const FUNCTION_SET_REMOTE: u32 = 0x811;
/// Function code of [`IOCTL_WSKCLIENT_SEND_TO`].
pub const FUNCTION_SEND_TO: u32 = 0x812;
/// Function code of [`IOCTL_WSKCLIENT_CLOSE`].
pub const FUNCTION_CLOSE: u32 = 0x820;
/// Function code of [`IOCTL_WSKCLIENT_QUERY_STATS`].
pub const FUNCTION_QUERY_STATS: u32 = 0x821;
/// Function code of [`IOCTL_WSKCLIENT_SET_OPTION`].
pub const FUNCTION_SET_OPTION: u32 = 0x806;
/// Function code of [`IOCTL_WSKCLIENT_GET_OPTION`].
pub const FUNCTION_GET_OPTION: u32 = 0x807;
/// Function code of [`IOCTL_WSKCLIENT_CONNECT_WITH_DATA`].
pub const FUNCTION_CONNECT_WITH_DATA: u32 = 0x808;
/// Function code of [`IOCTL_WSKCLIENT_RESOLVE`].
pub const FUNCTION_RESOLVE: u32 = 0x830;
/// Function code of [`IOCTL_WSKCLIENT_TRANSMIT_FILE`].
pub const FUNCTION_TRANSMIT_FILE: u32 = 0x840;
/// Function code of [`IOCTL_WSKCLIENT_TRANSMIT_PACKETS`].
pub const FUNCTION_TRANSMIT_PACKETS: u32 = 0x841;

/// Open a connection-oriented (TCP) socket and connect it, via `WskSocketConnect`
/// (falling back to `WskSocket` + `WskBind` + `WskConnect` when the provider
/// returns `STATUS_NOT_IMPLEMENTED`).
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS | FILE_WRITE_ACCESS`. Value `0x8A57_E000`.
/// Input [`crate::OpenStreamRequest`] (64 bytes); output
/// [`crate::OpenStreamResponse`] (72 bytes), `IoStatus.Information` = 72.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>
pub const IOCTL_WSKCLIENT_OPEN_STREAM: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_OPEN_STREAM,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// Send bytes on a connected stream socket via `WskSend`, without copying them.
///
/// `METHOD_IN_DIRECT`, `FILE_WRITE_ACCESS`. Value `0x8A57_A005`.
/// Input [`crate::SendRequest`] (16 bytes). The DeviceIoControl *output* buffer
/// is the data (1 ..= [`crate::MAX_SEND_BYTES`] bytes), described by
/// `Irp->MdlAddress`, which the driver hands to `WskSend` as the `WSK_BUF`.
/// `IoStatus.Information` = bytes sent.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
pub const IOCTL_WSKCLIENT_SEND: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_SEND,
    METHOD_IN_DIRECT,
    FILE_WRITE_ACCESS,
);

/// Open a listening (TCP) socket and bind it via `WskSocket(WSK_FLAG_LISTEN_SOCKET)` +
/// `WskBind`; it listens from then on.
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS | FILE_WRITE_ACCESS`. Value `0x8A57_E008`.
/// Input [`crate::OpenListenRequest`] (36 bytes); output [`crate::OpenListenResponse`]
/// (48 bytes).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections>
pub const IOCTL_WSKCLIENT_OPEN_LISTEN: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_OPEN_LISTEN,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// Accept one connection on a listening socket via `WskAccept`; the request pends until a
/// client arrives, and completes with `STATUS_CANCELLED` when the listening handle (or the
/// file object) is closed first.
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS | FILE_WRITE_ACCESS`. Value `0x8A57_E00C`.
/// Input [`crate::AcceptRequest`] (16 bytes); output [`crate::AcceptResponse`] (72 bytes):
/// the new stream socket's handle and both addresses (the `GetAcceptExSockaddrs`
/// counterpart).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
pub const IOCTL_WSKCLIENT_ACCEPT: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_ACCEPT,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// Receive on a connected stream socket via `WskReceive`, into the caller's buffer with no
/// copy.
///
/// `METHOD_OUT_DIRECT`, `FILE_READ_ACCESS`. Value `0x8A57_6012`.
/// Input [`crate::ReceiveRequest`] (16 bytes). The DeviceIoControl output buffer (1 ..=
/// [`crate::MAX_RECEIVE_BYTES`] bytes) is probed for write access and described by
/// `Irp->MdlAddress`, which the driver hands to `WskReceive` as the `WSK_BUF`.
/// `IoStatus.Information` = bytes received; 0 = the peer closed its side (FIN).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
pub const IOCTL_WSKCLIENT_RECEIVE: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_RECEIVE,
    METHOD_OUT_DIRECT,
    FILE_READ_ACCESS,
);

/// Disconnect a stream socket via `WskDisconnect`: graceful (FIN) or abortive (RST,
/// `WSK_FLAG_ABORTIVE`).
///
/// `METHOD_BUFFERED`, `FILE_WRITE_ACCESS`. Value `0x8A57_A014`.
/// Input [`crate::DisconnectRequest`] (24 bytes); no output.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
pub const IOCTL_WSKCLIENT_DISCONNECT: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_DISCONNECT,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);

/// Receive one datagram and its sender's address via `WskReceiveFrom`.
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS`. Value `0x8A57_604C`.
/// Input [`crate::ReceiveFromRequest`] (16 bytes). Output: [`crate::ReceiveFromResponse`]
/// (40 bytes: sender, data length) followed by the datagram, copied; the output buffer must
/// hold the 40-byte header and at least one data byte, and at most
/// [`crate::MAX_RECEIVE_FROM_BYTES`] data bytes are received.
/// `IoStatus.Information` = 40 + data length.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
pub const IOCTL_WSKCLIENT_RECEIVE_FROM: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_RECEIVE_FROM,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// Open a datagram (UDP) socket and bind it via `WskSocket` + `WskBind`.
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS | FILE_WRITE_ACCESS`. Value `0x8A57_E040`.
/// Input [`crate::OpenDatagramRequest`] (36 bytes); output
/// [`crate::OpenDatagramResponse`] (48 bytes).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
pub const IOCTL_WSKCLIENT_OPEN_DATAGRAM: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_OPEN_DATAGRAM,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// Set (or, with an `AF_UNSPEC` address, unset) a datagram socket's fixed remote
/// address via `WskControlSocket(SIO_WSK_SET_REMOTE_ADDRESS)` /
/// `SIO_WSK_UNSET_REMOTE_ADDRESS`.
///
/// `METHOD_BUFFERED`, `FILE_WRITE_ACCESS`. Value `0x8A57_A044`.
/// Input [`crate::SetRemoteRequest`] (48 bytes); no output, Information = 0.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sio-wsk-set-remote-address>
pub const IOCTL_WSKCLIENT_SET_REMOTE: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_SET_REMOTE,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);

/// Send one datagram via `WskSendTo`, without copying it.
///
/// `METHOD_IN_DIRECT`, `FILE_WRITE_ACCESS`. Value `0x8A57_A049`.
/// Input [`crate::SendToRequest`] (48 bytes): the remote address, or `AF_UNSPEC`
/// for "the fixed remote address" (`RemoteAddress = NULL`). The output buffer
/// is the datagram (1 ..= [`crate::MAX_SEND_TO_BYTES`] bytes) as in
/// [`IOCTL_WSKCLIENT_SEND`]. `IoStatus.Information` = bytes sent.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>
pub const IOCTL_WSKCLIENT_SEND_TO: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_SEND_TO,
    METHOD_IN_DIRECT,
    FILE_WRITE_ACCESS,
);

/// Close a socket of either kind via `WskCloseSocket`; the handle becomes stale.
///
/// `METHOD_BUFFERED`, `FILE_ANY_ACCESS` (a caller can always release what it
/// holds; handles are per file object). Value `0x8A57_2080`.
/// Input [`crate::CloseRequest`] (16 bytes); no output.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>
pub const IOCTL_WSKCLIENT_CLOSE: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_CLOSE,
    METHOD_BUFFERED,
    FILE_ANY_ACCESS,
);

/// Read the driver-wide counters.
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS`. Value `0x8A57_6084`.
/// Input [`crate::QueryStatsRequest`] (8 bytes); output
/// [`crate::StatsResponse`] (160 bytes).
pub const IOCTL_WSKCLIENT_QUERY_STATS: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_QUERY_STATS,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// Set a socket option (`SO_REUSEADDR`, `SO_EXCLUSIVEADDRUSE`, `SO_KEEPALIVE`,
/// `TCP_NODELAY`, `SO_RCVBUF`, `SO_SNDBUF`, ...) through `WskControlSocket(WskSetOption)`.
/// Request and response: see `crate::options`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>
///
/// `METHOD_BUFFERED`, `FILE_WRITE_ACCESS`.
pub const IOCTL_WSKCLIENT_SET_OPTION: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_SET_OPTION,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);

/// Read one socket option (the SET_OPTION ids: `SO_REUSEADDR`, `SO_EXCLUSIVEADDRUSE`,
/// `SO_KEEPALIVE`, `TCP_NODELAY`, `SO_RCVBUF`, `SO_SNDBUF`) through
/// `WskControlSocket(WskGetOption)`; the value is the stack's, which may differ from the one
/// set. Request and response: see `crate::options` (`GetOptionRequest`, 24 bytes;
/// `GetOptionResponse`, 16 bytes). Addresses are not read here: OPEN_STREAM, ACCEPT and
/// CONNECT_WITH_DATA return them.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS`.
pub const IOCTL_WSKCLIENT_GET_OPTION: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_GET_OPTION,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// Open a stream socket, connect it and send initial data in one step with `WskConnectEx`
/// (the kernel counterpart of `ConnectEx`); falls back to connect then send when the
/// provider lacks `WskConnectEx`. Request and response: see `crate::options`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS | FILE_WRITE_ACCESS`.
pub const IOCTL_WSKCLIENT_CONNECT_WITH_DATA: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_CONNECT_WITH_DATA,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// Resolve a host name with `WskGetAddressInfo`/`WskFreeAddressInfo`, or an address with
/// `WskGetNameInfo` (PASSIVE_LEVEL). Request and response: see `crate::names`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>
///
/// `METHOD_BUFFERED`, `FILE_READ_ACCESS`.
pub const IOCTL_WSKCLIENT_RESOLVE: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_RESOLVE,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// Send a byte range of a caller's file (by handle) over a stream socket, with optional head
/// and tail buffers: the kernel counterpart of `TransmitFile`. Request and response: see
/// `crate::transmit`.
/// Source: <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-transmitfile>
///
/// `METHOD_BUFFERED`, `FILE_WRITE_ACCESS`.
pub const IOCTL_WSKCLIENT_TRANSMIT_FILE: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_TRANSMIT_FILE,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);

/// Send an array of memory buffers and file ranges, the kernel counterpart of
/// `TransmitPackets`. Request and response: see `crate::transmit`.
/// Source: <https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_transmitpackets>
///
/// `METHOD_BUFFERED`, `FILE_WRITE_ACCESS`.
pub const IOCTL_WSKCLIENT_TRANSMIT_PACKETS: u32 = ctl_code(
    FILE_DEVICE_WSKCLIENT,
    FUNCTION_TRANSMIT_PACKETS,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);

/// The operations of the contract, one per `IOCTL_WSKCLIENT_*` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`IOCTL_WSKCLIENT_OPEN_STREAM`].
    OpenStream,
    /// [`IOCTL_WSKCLIENT_SEND`].
    Send,
    /// [`IOCTL_WSKCLIENT_OPEN_LISTEN`].
    OpenListen,
    /// [`IOCTL_WSKCLIENT_ACCEPT`].
    Accept,
    /// [`IOCTL_WSKCLIENT_RECEIVE`].
    Receive,
    /// [`IOCTL_WSKCLIENT_DISCONNECT`].
    Disconnect,
    /// [`IOCTL_WSKCLIENT_OPEN_DATAGRAM`].
    OpenDatagram,
    /// [`IOCTL_WSKCLIENT_SET_REMOTE`].
    SetRemote,
    /// [`IOCTL_WSKCLIENT_SEND_TO`].
    SendTo,
    /// [`IOCTL_WSKCLIENT_RECEIVE_FROM`].
    ReceiveFrom,
    /// [`IOCTL_WSKCLIENT_CLOSE`].
    Close,
    /// [`IOCTL_WSKCLIENT_QUERY_STATS`].
    QueryStats,
    /// [`IOCTL_WSKCLIENT_SET_OPTION`].
    SetOption,
    /// [`IOCTL_WSKCLIENT_GET_OPTION`].
    GetOption,
    /// [`IOCTL_WSKCLIENT_CONNECT_WITH_DATA`].
    ConnectWithData,
    /// [`IOCTL_WSKCLIENT_RESOLVE`].
    Resolve,
    /// [`IOCTL_WSKCLIENT_TRANSMIT_FILE`].
    TransmitFile,
    /// [`IOCTL_WSKCLIENT_TRANSMIT_PACKETS`].
    TransmitPackets,
}

impl Operation {
    /// Every operation, in function-code order.
    pub const ALL: [Operation; 18] = [
        Operation::OpenStream,
        Operation::Send,
        Operation::OpenListen,
        Operation::Accept,
        Operation::Receive,
        Operation::Disconnect,
        Operation::OpenDatagram,
        Operation::SetRemote,
        Operation::SendTo,
        Operation::ReceiveFrom,
        Operation::Close,
        Operation::QueryStats,
        Operation::SetOption,
        Operation::GetOption,
        Operation::ConnectWithData,
        Operation::Resolve,
        Operation::TransmitFile,
        Operation::TransmitPackets,
    ];

    /// The operation whose code is exactly `code` (all four fields must match),
    /// or `None`; the driver completes unknown codes with
    /// `STATUS_INVALID_DEVICE_REQUEST` ([`crate::ContractError::UnknownIoctl`]).
    pub const fn from_code(code: u32) -> Option<Operation> {
        match code {
            IOCTL_WSKCLIENT_OPEN_STREAM => Some(Operation::OpenStream),
            IOCTL_WSKCLIENT_SEND => Some(Operation::Send),
            IOCTL_WSKCLIENT_OPEN_LISTEN => Some(Operation::OpenListen),
            IOCTL_WSKCLIENT_ACCEPT => Some(Operation::Accept),
            IOCTL_WSKCLIENT_RECEIVE => Some(Operation::Receive),
            IOCTL_WSKCLIENT_DISCONNECT => Some(Operation::Disconnect),
            IOCTL_WSKCLIENT_RECEIVE_FROM => Some(Operation::ReceiveFrom),
            IOCTL_WSKCLIENT_OPEN_DATAGRAM => Some(Operation::OpenDatagram),
            IOCTL_WSKCLIENT_SET_REMOTE => Some(Operation::SetRemote),
            IOCTL_WSKCLIENT_SEND_TO => Some(Operation::SendTo),
            IOCTL_WSKCLIENT_CLOSE => Some(Operation::Close),
            IOCTL_WSKCLIENT_QUERY_STATS => Some(Operation::QueryStats),
            IOCTL_WSKCLIENT_SET_OPTION => Some(Operation::SetOption),
            IOCTL_WSKCLIENT_GET_OPTION => Some(Operation::GetOption),
            IOCTL_WSKCLIENT_CONNECT_WITH_DATA => Some(Operation::ConnectWithData),
            IOCTL_WSKCLIENT_RESOLVE => Some(Operation::Resolve),
            IOCTL_WSKCLIENT_TRANSMIT_FILE => Some(Operation::TransmitFile),
            IOCTL_WSKCLIENT_TRANSMIT_PACKETS => Some(Operation::TransmitPackets),
            _ => None,
        }
    }

    /// The `IOCTL_WSKCLIENT_*` code.
    pub const fn code(self) -> u32 {
        match self {
            Operation::OpenStream => IOCTL_WSKCLIENT_OPEN_STREAM,
            Operation::Send => IOCTL_WSKCLIENT_SEND,
            Operation::OpenListen => IOCTL_WSKCLIENT_OPEN_LISTEN,
            Operation::Accept => IOCTL_WSKCLIENT_ACCEPT,
            Operation::Receive => IOCTL_WSKCLIENT_RECEIVE,
            Operation::Disconnect => IOCTL_WSKCLIENT_DISCONNECT,
            Operation::ReceiveFrom => IOCTL_WSKCLIENT_RECEIVE_FROM,
            Operation::OpenDatagram => IOCTL_WSKCLIENT_OPEN_DATAGRAM,
            Operation::SetRemote => IOCTL_WSKCLIENT_SET_REMOTE,
            Operation::SendTo => IOCTL_WSKCLIENT_SEND_TO,
            Operation::Close => IOCTL_WSKCLIENT_CLOSE,
            Operation::QueryStats => IOCTL_WSKCLIENT_QUERY_STATS,
            Operation::SetOption => IOCTL_WSKCLIENT_SET_OPTION,
            Operation::GetOption => IOCTL_WSKCLIENT_GET_OPTION,
            Operation::ConnectWithData => IOCTL_WSKCLIENT_CONNECT_WITH_DATA,
            Operation::Resolve => IOCTL_WSKCLIENT_RESOLVE,
            Operation::TransmitFile => IOCTL_WSKCLIENT_TRANSMIT_FILE,
            Operation::TransmitPackets => IOCTL_WSKCLIENT_TRANSMIT_PACKETS,
        }
    }

    /// The code's name as in the docs, e.g. `"IOCTL_WSKCLIENT_SEND"`.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::OpenStream => "IOCTL_WSKCLIENT_OPEN_STREAM",
            Operation::Send => "IOCTL_WSKCLIENT_SEND",
            Operation::OpenListen => "IOCTL_WSKCLIENT_OPEN_LISTEN",
            Operation::Accept => "IOCTL_WSKCLIENT_ACCEPT",
            Operation::Receive => "IOCTL_WSKCLIENT_RECEIVE",
            Operation::Disconnect => "IOCTL_WSKCLIENT_DISCONNECT",
            Operation::ReceiveFrom => "IOCTL_WSKCLIENT_RECEIVE_FROM",
            Operation::OpenDatagram => "IOCTL_WSKCLIENT_OPEN_DATAGRAM",
            Operation::SetRemote => "IOCTL_WSKCLIENT_SET_REMOTE",
            Operation::SendTo => "IOCTL_WSKCLIENT_SEND_TO",
            Operation::Close => "IOCTL_WSKCLIENT_CLOSE",
            Operation::QueryStats => "IOCTL_WSKCLIENT_QUERY_STATS",
            Operation::SetOption => "IOCTL_WSKCLIENT_SET_OPTION",
            Operation::GetOption => "IOCTL_WSKCLIENT_GET_OPTION",
            Operation::ConnectWithData => "IOCTL_WSKCLIENT_CONNECT_WITH_DATA",
            Operation::Resolve => "IOCTL_WSKCLIENT_RESOLVE",
            Operation::TransmitFile => "IOCTL_WSKCLIENT_TRANSMIT_FILE",
            Operation::TransmitPackets => "IOCTL_WSKCLIENT_TRANSMIT_PACKETS",
        }
    }

    /// Whether the DeviceIoControl output buffer is a data buffer described by
    /// `Irp->MdlAddress` (`METHOD_IN_DIRECT`: data the driver sends; `METHOD_OUT_DIRECT`:
    /// data the driver receives) rather than a response.
    pub const fn has_data_buffer(self) -> bool {
        let m = method_of(self.code());
        m == METHOD_IN_DIRECT || m == METHOD_OUT_DIRECT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_code_matches_devioctl_h_examples() {
        // IOCTL_DISK_GET_DRIVE_GEOMETRY = CTL_CODE(FILE_DEVICE_DISK=7, 0, METHOD_BUFFERED, FILE_ANY_ACCESS)
        assert_eq!(
            ctl_code(0x7, 0, METHOD_BUFFERED, FILE_ANY_ACCESS),
            0x0007_0000
        );
        // FSCTL_GET_RETRIEVAL_POINTERS = CTL_CODE(FILE_DEVICE_FILE_SYSTEM=9, 28, METHOD_NEITHER, FILE_ANY_ACCESS)
        assert_eq!(
            ctl_code(0x9, 28, METHOD_NEITHER, FILE_ANY_ACCESS),
            0x0009_0073
        );
        // IOCTL_STORAGE_EJECT_MEDIA = CTL_CODE(0x2D, 0x0202, METHOD_BUFFERED, FILE_READ_ACCESS)
        assert_eq!(
            ctl_code(0x2D, 0x0202, METHOD_BUFFERED, FILE_READ_ACCESS),
            0x002D_4808
        );
    }

    #[test]
    fn our_codes_have_the_documented_values() {
        assert_eq!(IOCTL_WSKCLIENT_OPEN_STREAM, 0x8A57_E000);
        assert_eq!(IOCTL_WSKCLIENT_SEND, 0x8A57_A005);
        assert_eq!(IOCTL_WSKCLIENT_OPEN_DATAGRAM, 0x8A57_E040);
        assert_eq!(IOCTL_WSKCLIENT_SET_REMOTE, 0x8A57_A044);
        assert_eq!(IOCTL_WSKCLIENT_SEND_TO, 0x8A57_A049);
        assert_eq!(IOCTL_WSKCLIENT_CLOSE, 0x8A57_2080);
        assert_eq!(IOCTL_WSKCLIENT_QUERY_STATS, 0x8A57_6084);
        assert_eq!(IOCTL_WSKCLIENT_OPEN_LISTEN, 0x8A57_E008);
        assert_eq!(IOCTL_WSKCLIENT_ACCEPT, 0x8A57_E00C);
        assert_eq!(IOCTL_WSKCLIENT_RECEIVE, 0x8A57_6012);
        assert_eq!(IOCTL_WSKCLIENT_DISCONNECT, 0x8A57_A014);
        assert_eq!(IOCTL_WSKCLIENT_RECEIVE_FROM, 0x8A57_604C);
    }

    #[test]
    fn decoders_invert_ctl_code() {
        let expected = [
            (
                FUNCTION_OPEN_STREAM,
                METHOD_BUFFERED,
                FILE_READ_ACCESS | FILE_WRITE_ACCESS,
            ),
            (FUNCTION_SEND, METHOD_IN_DIRECT, FILE_WRITE_ACCESS),
            (
                FUNCTION_OPEN_LISTEN,
                METHOD_BUFFERED,
                FILE_READ_ACCESS | FILE_WRITE_ACCESS,
            ),
            (
                FUNCTION_ACCEPT,
                METHOD_BUFFERED,
                FILE_READ_ACCESS | FILE_WRITE_ACCESS,
            ),
            (FUNCTION_RECEIVE, METHOD_OUT_DIRECT, FILE_READ_ACCESS),
            (FUNCTION_DISCONNECT, METHOD_BUFFERED, FILE_WRITE_ACCESS),
            (
                FUNCTION_OPEN_DATAGRAM,
                METHOD_BUFFERED,
                FILE_READ_ACCESS | FILE_WRITE_ACCESS,
            ),
            (FUNCTION_SET_REMOTE, METHOD_BUFFERED, FILE_WRITE_ACCESS),
            (FUNCTION_SEND_TO, METHOD_IN_DIRECT, FILE_WRITE_ACCESS),
            (FUNCTION_RECEIVE_FROM, METHOD_BUFFERED, FILE_READ_ACCESS),
            (FUNCTION_CLOSE, METHOD_BUFFERED, FILE_ANY_ACCESS),
            (FUNCTION_QUERY_STATS, METHOD_BUFFERED, FILE_READ_ACCESS),
            (FUNCTION_SET_OPTION, METHOD_BUFFERED, FILE_WRITE_ACCESS),
            (FUNCTION_GET_OPTION, METHOD_BUFFERED, FILE_READ_ACCESS),
            (
                FUNCTION_CONNECT_WITH_DATA,
                METHOD_BUFFERED,
                FILE_READ_ACCESS | FILE_WRITE_ACCESS,
            ),
            (FUNCTION_RESOLVE, METHOD_BUFFERED, FILE_READ_ACCESS),
            (FUNCTION_TRANSMIT_FILE, METHOD_BUFFERED, FILE_WRITE_ACCESS),
            (
                FUNCTION_TRANSMIT_PACKETS,
                METHOD_BUFFERED,
                FILE_WRITE_ACCESS,
            ),
        ];
        for (op, (function, method, access)) in Operation::ALL.into_iter().zip(expected) {
            let code = op.code();
            assert_eq!(device_type_of(code), FILE_DEVICE_WSKCLIENT, "{}", op.name());
            assert_eq!(function_of(code), function, "{}", op.name());
            assert_eq!(method_of(code), method, "{}", op.name());
            assert_eq!(access_of(code), access, "{}", op.name());
            assert!(function >= 0x800, "custom function codes start at 0x800");
            assert_eq!(Operation::from_code(code), Some(op));
            assert_eq!(
                op.has_data_buffer(),
                method == METHOD_IN_DIRECT || method == METHOD_OUT_DIRECT
            );
        }
        // Every field round-trips at its extremes, and wide inputs are masked.
        let code = ctl_code(0xFFFF, 0xFFF, 3, 3);
        assert_eq!(code, u32::MAX);
        assert_eq!(
            ctl_code(0x1_0001, 0x1001, 4 | 2, 4 | 1),
            ctl_code(1, 1, 2, 1)
        );
        assert_eq!(Operation::from_code(0), None);
        // Same function, wrong method: not our code.
        assert_eq!(
            Operation::from_code(ctl_code(
                FILE_DEVICE_WSKCLIENT,
                FUNCTION_SEND,
                METHOD_BUFFERED,
                FILE_WRITE_ACCESS
            )),
            None
        );
    }

    /// `from_code` answers exactly the operation whose code is `code`, for every device type,
    /// function, method and access near ours.
    #[test]
    fn from_code_matches_whole_codes_only() {
        let devices = [
            0,
            1,
            FILE_DEVICE_WSKCLIENT - 1,
            FILE_DEVICE_WSKCLIENT,
            0xFFFF,
        ];
        let mut found = 0;
        for device in devices {
            for function in (0..0x10).chain(0x7F0..0x860).chain(0xFF0..0x1000) {
                for method in 0..4 {
                    for access in 0..4 {
                        let code = ctl_code(device, function, method, access);
                        let expected = Operation::ALL.into_iter().find(|o| o.code() == code);
                        assert_eq!(Operation::from_code(code), expected, "{code:#010x}");
                        found += usize::from(expected.is_some());
                    }
                }
            }
        }
        assert_eq!(found, Operation::ALL.len());
    }

    #[test]
    fn codes_are_unique_and_in_vendor_range() {
        const { assert!(FILE_DEVICE_WSKCLIENT >= 0x8000 && FILE_DEVICE_WSKCLIENT <= 0xFFFF) };
        for (i, a) in Operation::ALL.iter().enumerate() {
            for b in &Operation::ALL[i + 1..] {
                assert_ne!(function_of(a.code()), function_of(b.code()));
            }
        }
    }
}
