//! Raw FFI for the Winsock Kernel (WSK) interface declared in the WDK's `wsk.h`.
//!
//! Base types (IRP, MDL, SOCKADDR, CMSGHDR, NTSTATUS, ...) come from `windows-sys`;
//! everything WSK-specific is declared here, with the names Microsoft uses.
//! Reference: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/>.
//!
//! Type choices worth knowing:
//! - `PEPROCESS` / `PETHREAD` are `windows-sys`'s `Wdk::Foundation` aliases (pointer-sized
//!   integers, `isize`); pass `0` for "none".
//! - `PWSK_CLIENT` is `*mut WSK_CLIENT` (an opaque type); in C it is a plain `PVOID`.
//! - Function pointer types are `Option<unsafe extern "system" fn ...>`, so a zeroed
//!   dispatch table is valid and means "no callback".
//! - The C headers embed `WSK_PROVIDER_BASIC_DISPATCH` as an unnamed member; here it is the
//!   named field `Basic` (same layout, as in the C++ declaration).
//!
//! # Example
//!
//! Describing `len` bytes of a locked MDL chain for `WskSend`, and the version a client
//! asks for. Runs on any host (no kernel call):
//!
//! ```
//! use wsk_sys::{MAKE_WSK_VERSION, WSK_BUF};
//!
//! let buf = WSK_BUF { Mdl: core::ptr::null_mut(), Offset: 0, Length: 4096 };
//! assert_eq!(core::mem::size_of::<WSK_BUF>(), if cfg!(target_pointer_width = "64") { 24 } else { 12 });
//! assert_eq!(buf.Length, 4096);
//! assert_eq!(MAKE_WSK_VERSION(1, 0), 0x0100); // WSK_CLIENT_DISPATCH::Version
//! ```
//!
//! `wdk-sys` users: `wdk_sys::PMDL` / `PIRP` point to the same wdm.h structures as this
//! crate's `windows-sys` `MDL` / `IRP` (same `#[repr(C)]` layout), so a pointer `cast()`
//! passes them; see the `wsk` crate's README.
//!
//! # MSRV and semver
//!
//! Rust 1.85 (`rust-version`). Before 1.0, a breaking change (a layout fix changes a
//! public type) or an MSRV raise bumps the minor version; additions bump the patch
//! version. See `CHANGELOG.md`.
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![deny(missing_docs)]

use core::ffi::c_void;

pub use windows_sys::core::{GUID, PCWSTR};
pub use windows_sys::Wdk::Foundation::{IRP, MDL, PEPROCESS, PETHREAD};
pub use windows_sys::Win32::Foundation::{NTSTATUS, UNICODE_STRING};
pub use windows_sys::Win32::Networking::WinSock::{
    ADDRESS_FAMILY, ADDRINFOEXW, CMSGHDR, IOC_IN, IOC_INOUT, IOC_OUT, IOC_VOID, IOC_WS2, SOCKADDR,
    SO_CONDITIONAL_ACCEPT, WSK_SO_BASE,
};
pub use windows_sys::Win32::Security::PSECURITY_DESCRIPTOR;

// ---------------------------------------------------------------------------
// Base aliases that windows-sys does not provide
// ---------------------------------------------------------------------------

/// Network Programming Interface identifier (`typedef GUID NPIID;` in netioddk.h).
pub type NPIID = GUID;
/// Pointer to an [`NPIID`].
pub type PNPIID = *const NPIID;
/// Executive spin lock storage (`KSPIN_LOCK`, a `ULONG_PTR`).
pub type KSPIN_LOCK = usize;
/// Pointer to an [`IRP`].
pub type PIRP = *mut IRP;
/// Pointer to an [`MDL`].
pub type PMDL = *mut MDL;
/// Pointer to a [`SOCKADDR`].
pub type PSOCKADDR = *mut SOCKADDR;
/// Pointer to a [`CMSGHDR`].
pub type PCMSGHDR = *mut CMSGHDR;

// ---------------------------------------------------------------------------
// Interface id, versions
// ---------------------------------------------------------------------------

/// The WSK NPI interface identifier, `{2227E803-8D8B-11D4-ABAD-009027719E09}`.
///
/// `wsk.h` declares it `extern CONST NPIID NPI_WSK_INTERFACE_ID;` (defined in netio.lib).
pub const NPI_WSK_INTERFACE_ID: NPIID = GUID::from_u128(0x2227e803_8d8b_11d4_abad_009027719e09);

/// `MAKE_WSK_VERSION(Mj, Mn)`: builds the `Version` value of [`WSK_CLIENT_DISPATCH`].
pub const fn MAKE_WSK_VERSION(major: u8, minor: u8) -> u16 {
    ((major as u16) << 8) | (minor as u16)
}

/// `WSK_MAJOR_VERSION(V)`: major part of a WSK version.
pub const fn WSK_MAJOR_VERSION(v: u16) -> u8 {
    (v >> 8) as u8
}

/// `WSK_MINOR_VERSION(V)`: minor part of a WSK version.
pub const fn WSK_MINOR_VERSION(v: u16) -> u8 {
    v as u8
}

/// `WskCaptureProviderNPI` timeout: do not wait.
pub const WSK_NO_WAIT: u32 = 0;
/// `WskCaptureProviderNPI` timeout: wait until the provider is available.
pub const WSK_INFINITE_WAIT: u32 = 0xffff_ffff;

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// `WskSocket` flag: basic socket.
pub const WSK_FLAG_BASIC_SOCKET: u32 = 0x0000_0000;
/// `WskSocket` flag: listening socket.
pub const WSK_FLAG_LISTEN_SOCKET: u32 = 0x0000_0001;
/// `WskSocket` flag: connection-oriented socket.
pub const WSK_FLAG_CONNECTION_SOCKET: u32 = 0x0000_0002;
/// `WskSocket` flag: datagram socket.
pub const WSK_FLAG_DATAGRAM_SOCKET: u32 = 0x0000_0004;
/// `WskSocket` flag: stream socket (Windows 10 1703+).
pub const WSK_FLAG_STREAM_SOCKET: u32 = 0x0000_0008;

/// Event callback flag: the callback runs at DISPATCH_LEVEL.
pub const WSK_FLAG_AT_DISPATCH_LEVEL: u32 = 0x0000_0008;
/// Receive event flag: release the indicated buffers as soon as possible.
pub const WSK_FLAG_RELEASE_ASAP: u32 = 0x0000_0002;
/// Receive event flag: the buffers end a message (TCP: push bit seen).
pub const WSK_FLAG_ENTIRE_MESSAGE: u32 = 0x0000_0004;
/// Disconnect flag: abortive (RST) rather than graceful disconnect.
pub const WSK_FLAG_ABORTIVE: u32 = 0x0000_0001;
/// Send flag: send as out-of-band data (in Microsoft's wsk.h; not documented).
pub const WSK_FLAG_OOB: u32 = 0x0000_0001;
/// Send flag: send without delay (disable coalescing for this request).
pub const WSK_FLAG_NODELAY: u32 = 0x0000_0002;
/// Receive flag: complete only when the buffer is full (or on disconnect).
pub const WSK_FLAG_WAITALL: u32 = 0x0000_0002;
/// Receive flag: discard data until the connection is disconnected.
pub const WSK_FLAG_DRAIN: u32 = 0x0000_0004;

// ---------------------------------------------------------------------------
// Client-level control codes (WskControlClient)
// ---------------------------------------------------------------------------

/// `WskControlClient` code: query the transport list.
pub const WSK_TRANSPORT_LIST_QUERY: u32 = 2;
/// `WskControlClient` code: wait for a transport list change.
pub const WSK_TRANSPORT_LIST_CHANGE: u32 = 3;
/// `WskControlClient` code: cache a security descriptor.
pub const WSK_CACHE_SD: u32 = 4;
/// `WskControlClient` code: release a cached security descriptor.
pub const WSK_RELEASE_SD: u32 = 5;
/// `WskControlClient` code: map socket triples to TDI device names.
pub const WSK_TDI_DEVICENAME_MAPPING: u32 = 6;
/// `WskControlClient` code: enable event callbacks on all new sockets.
pub const WSK_SET_STATIC_EVENT_CALLBACKS: u32 = 7;
/// `WskControlClient` code: control TDI filter behaviour.
pub const WSK_TDI_BEHAVIOR: u32 = 8;
/// `WSK_TDI_BEHAVIOR` flag: bypass TDI filter drivers.
pub const WSK_TDI_BEHAVIOR_BYPASS_TDI: u32 = 0x0000_0001;

// ---------------------------------------------------------------------------
// Socket options and IOCTLs
// ---------------------------------------------------------------------------

/// Socket option (SOL_SOCKET): security descriptor of the socket.
pub const SO_WSK_SECURITY: u32 = WSK_SO_BASE + 1;
/// Socket option (SOL_SOCKET): enable/disable event callbacks ([`WSK_EVENT_CALLBACK_CONTROL`]).
pub const SO_WSK_EVENT_CALLBACK: u32 = WSK_SO_BASE + 2;

/// Event mask bit: `WskReceiveFromEvent` (datagram sockets).
pub const WSK_EVENT_RECEIVE_FROM: u32 = 0x0000_0100;
/// Event mask bit: `WskAcceptEvent` (listening sockets).
pub const WSK_EVENT_ACCEPT: u32 = 0x0000_0200;
/// Event mask bit: `WskSendBacklogEvent`.
pub const WSK_EVENT_SEND_BACKLOG: u32 = 0x0000_0010;
/// Event mask bit: `WskReceiveEvent`.
pub const WSK_EVENT_RECEIVE: u32 = 0x0000_0040;
/// Event mask bit: `WskDisconnectEvent`.
pub const WSK_EVENT_DISCONNECT: u32 = 0x0000_0080;
/// Event mask bit: disable (rather than enable) the named events.
pub const WSK_EVENT_DISABLE: u32 = 0x8000_0000;

/// `IOC_WSK` (ws2def.h): `IOC_WS2 | 0x07000000`.
pub const IOC_WSK: u32 = IOC_WS2 | 0x0700_0000;

/// `_WSAIO(x, y)`: I/O control code without data transfer.
pub const fn _WSAIO(x: u32, y: u32) -> u32 {
    IOC_VOID | x | y
}
/// `_WSAIOR(x, y)`: I/O control code with output data.
pub const fn _WSAIOR(x: u32, y: u32) -> u32 {
    IOC_OUT | x | y
}
/// `_WSAIOW(x, y)`: I/O control code with input data.
pub const fn _WSAIOW(x: u32, y: u32) -> u32 {
    IOC_IN | x | y
}
/// `_WSAIORW(x, y)`: I/O control code with input and output data.
pub const fn _WSAIORW(x: u32, y: u32) -> u32 {
    IOC_INOUT | x | y
}

/// Socket IOCTL: fix the remote address of a datagram socket (`0x8F000001`).
pub const SIO_WSK_SET_REMOTE_ADDRESS: u32 = _WSAIOW(IOC_WSK, 0x1);
/// Socket IOCTL: register a socket extension interface (`0xCF000002`).
pub const SIO_WSK_REGISTER_EXTENSION: u32 = _WSAIORW(IOC_WSK, 0x2);
/// Socket IOCTL: query the ideal send backlog (`0x4F000003`).
pub const SIO_WSK_QUERY_IDEAL_SEND_BACKLOG: u32 = _WSAIOR(IOC_WSK, 0x3);
/// Socket IOCTL: query the receive backlog (`0x4F000004`).
pub const SIO_WSK_QUERY_RECEIVE_BACKLOG: u32 = _WSAIOR(IOC_WSK, 0x4);
/// Socket IOCTL: query the inspect id of a pending connection (`0x4F000005`).
pub const SIO_WSK_QUERY_INSPECT_ID: u32 = _WSAIOR(IOC_WSK, 0x5);
/// Socket IOCTL: fix the destination address of a datagram socket (`0x8F000006`).
pub const SIO_WSK_SET_SENDTO_ADDRESS: u32 = _WSAIOW(IOC_WSK, 0x6);
/// Socket IOCTL: put a connected TCP socket into silent mode (`0x2F000007`).
pub const SIO_WSK_SET_TCP_SILENT_MODE: u32 = _WSAIO(IOC_WSK, 0x7);

// ---------------------------------------------------------------------------
// Enumerations
// ---------------------------------------------------------------------------

/// `WSK_CONTROL_SOCKET_TYPE`: kind of `WskControlSocket` request.
pub type WSK_CONTROL_SOCKET_TYPE = i32;
/// Set a socket option.
pub const WskSetOption: WSK_CONTROL_SOCKET_TYPE = 0;
/// Get a socket option.
pub const WskGetOption: WSK_CONTROL_SOCKET_TYPE = 1;
/// Socket I/O control.
pub const WskIoctl: WSK_CONTROL_SOCKET_TYPE = 2;
/// Sentinel (not a valid request type).
pub const WskControlMax: WSK_CONTROL_SOCKET_TYPE = 3;
/// Pointer to a [`WSK_CONTROL_SOCKET_TYPE`].
pub type PWSK_CONTROL_SOCKET_TYPE = *mut WSK_CONTROL_SOCKET_TYPE;

/// `WSK_INSPECT_ACTION`: verdict on a conditional-accept connection request.
pub type WSK_INSPECT_ACTION = i32;
/// Reject the connection request.
pub const WskInspectReject: WSK_INSPECT_ACTION = 0;
/// Proceed with accepting the connection request.
pub const WskInspectAccept: WSK_INSPECT_ACTION = 1;
/// Decide later (with `WskInspectComplete`).
pub const WskInspectPend: WSK_INSPECT_ACTION = 2;
/// Sentinel (not a valid action).
pub const WskInspectMax: WSK_INSPECT_ACTION = 3;
/// Pointer to a [`WSK_INSPECT_ACTION`].
pub type PWSK_INSPECT_ACTION = *mut WSK_INSPECT_ACTION;

// ---------------------------------------------------------------------------
// Layout assertion helper
// ---------------------------------------------------------------------------

macro_rules! assert_layout64 {
    ($t:ty, $size:expr, $align:expr) => {
        #[cfg(target_pointer_width = "64")]
        const _: () = {
            assert!(core::mem::size_of::<$t>() == $size);
            assert!(core::mem::align_of::<$t>() == $align);
        };
    };
}

// ---------------------------------------------------------------------------
// Core objects and data structures
// ---------------------------------------------------------------------------

/// Socket object; `Dispatch` points at the provider table for the socket type.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_socket>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_SOCKET {
    /// `WSK_PROVIDER_{BASIC,LISTEN,DATAGRAM,CONNECTION,STREAM}_DISPATCH` table.
    pub Dispatch: *const c_void,
}
assert_layout64!(WSK_SOCKET, 8, 8);
/// Pointer to a [`WSK_SOCKET`].
pub type PWSK_SOCKET = *mut WSK_SOCKET;

/// Opaque WSK client object (only ever used by pointer; `PVOID` in C).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_npi>
#[repr(C)]
pub struct WSK_CLIENT {
    _opaque: [u8; 0],
}
/// Pointer to the opaque [`WSK_CLIENT`].
pub type PWSK_CLIENT = *mut WSK_CLIENT;

/// Range of WSK versions supported by the provider.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_characteristics>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WSK_PROVIDER_CHARACTERISTICS {
    /// Highest supported version (`MAKE_WSK_VERSION` encoding).
    pub HighestVersion: u16,
    /// Lowest supported version.
    pub LowestVersion: u16,
}
assert_layout64!(WSK_PROVIDER_CHARACTERISTICS, 4, 2);
/// Pointer to a [`WSK_PROVIDER_CHARACTERISTICS`].
pub type PWSK_PROVIDER_CHARACTERISTICS = *mut WSK_PROVIDER_CHARACTERISTICS;

/// One available transport (element of `WSK_TRANSPORT_LIST_QUERY` output).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_transport>
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct WSK_TRANSPORT {
    /// Transport version.
    pub Version: u16,
    /// Socket type (SOCK_STREAM, ...).
    pub SocketType: u16,
    /// Protocol (IPPROTO_TCP, ...).
    pub Protocol: u32,
    /// Address family.
    pub AddressFamily: ADDRESS_FAMILY,
    /// Provider GUID.
    pub ProviderId: GUID,
}
assert_layout64!(WSK_TRANSPORT, 28, 4);
/// Pointer to a [`WSK_TRANSPORT`].
pub type PWSK_TRANSPORT = *mut WSK_TRANSPORT;

/// Data buffer: `Length` bytes starting `Offset` bytes into the first MDL of a chain.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_BUF {
    /// Locked MDL chain.
    pub Mdl: PMDL,
    /// Offset into the first MDL.
    pub Offset: u32,
    /// Length of the data.
    pub Length: usize,
}
assert_layout64!(WSK_BUF, 24, 8);
impl Default for WSK_BUF {
    fn default() -> Self {
        Self {
            Mdl: core::ptr::null_mut(),
            Offset: 0,
            Length: 0,
        }
    }
}
/// Pointer to a [`WSK_BUF`].
pub type PWSK_BUF = *mut WSK_BUF;

/// Singly linked list of buffers for `WskSendMessages`.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf_list>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_BUF_LIST {
    /// Next element or null.
    pub Next: *mut WSK_BUF_LIST,
    /// Datagram data.
    pub Buffer: WSK_BUF,
}
assert_layout64!(WSK_BUF_LIST, 32, 8);
/// Pointer to a [`WSK_BUF_LIST`].
pub type PWSK_BUF_LIST = *mut WSK_BUF_LIST;

/// Received data on a connection-oriented socket (linked list).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_data_indication>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_DATA_INDICATION {
    /// Next element or null.
    pub Next: *mut WSK_DATA_INDICATION,
    /// Received data.
    pub Buffer: WSK_BUF,
}
assert_layout64!(WSK_DATA_INDICATION, 32, 8);
/// Pointer to a [`WSK_DATA_INDICATION`].
pub type PWSK_DATA_INDICATION = *mut WSK_DATA_INDICATION;

/// Received datagram on a datagram socket (linked list).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_datagram_indication>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_DATAGRAM_INDICATION {
    /// Next element or null.
    pub Next: *mut WSK_DATAGRAM_INDICATION,
    /// Datagram data.
    pub Buffer: WSK_BUF,
    /// Control information (ancillary data) or null.
    pub ControlInfo: PCMSGHDR,
    /// Length of `ControlInfo` in bytes.
    pub ControlInfoLength: u32,
    /// Sender's address.
    pub RemoteAddress: PSOCKADDR,
}
assert_layout64!(WSK_DATAGRAM_INDICATION, 56, 8);
/// Pointer to a [`WSK_DATAGRAM_INDICATION`].
pub type PWSK_DATAGRAM_INDICATION = *mut WSK_DATAGRAM_INDICATION;

/// Identifies a pending connection request on a conditional-accept socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_inspect_id>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WSK_INSPECT_ID {
    /// Key.
    pub Key: usize,
    /// Serial number.
    pub SerialNumber: u32,
}
assert_layout64!(WSK_INSPECT_ID, 16, 8);
/// Pointer to a [`WSK_INSPECT_ID`].
pub type PWSK_INSPECT_ID = *mut WSK_INSPECT_ID;

/// Input of the `SO_WSK_EVENT_CALLBACK` option.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_event_callback_control>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_EVENT_CALLBACK_CONTROL {
    /// Must point to [`NPI_WSK_INTERFACE_ID`].
    pub NpiId: PNPIID,
    /// `WSK_EVENT_*` bits, optionally with [`WSK_EVENT_DISABLE`].
    pub EventMask: u32,
}
assert_layout64!(WSK_EVENT_CALLBACK_CONTROL, 16, 8);
/// Pointer to a [`WSK_EVENT_CALLBACK_CONTROL`].
pub type PWSK_EVENT_CALLBACK_CONTROL = *mut WSK_EVENT_CALLBACK_CONTROL;

/// Input of `SIO_WSK_REGISTER_EXTENSION`.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_extension_control_in>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_EXTENSION_CONTROL_IN {
    /// Extension interface id.
    pub NpiId: PNPIID,
    /// Client context for the extension.
    pub ClientContext: *mut c_void,
    /// Client dispatch table for the extension.
    pub ClientDispatch: *const c_void,
}
assert_layout64!(WSK_EXTENSION_CONTROL_IN, 24, 8);
/// Pointer to a [`WSK_EXTENSION_CONTROL_IN`].
pub type PWSK_EXTENSION_CONTROL_IN = *mut WSK_EXTENSION_CONTROL_IN;

/// Output of `SIO_WSK_REGISTER_EXTENSION`.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_extension_control_out>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_EXTENSION_CONTROL_OUT {
    /// Provider context for the extension.
    pub ProviderContext: *mut c_void,
    /// Provider dispatch table for the extension.
    pub ProviderDispatch: *const c_void,
}
assert_layout64!(WSK_EXTENSION_CONTROL_OUT, 16, 8);
/// Pointer to a [`WSK_EXTENSION_CONTROL_OUT`].
pub type PWSK_EXTENSION_CONTROL_OUT = *mut WSK_EXTENSION_CONTROL_OUT;

/// One socket-triple to TDI device name mapping (`WSK_TDI_DEVICENAME_MAPPING`).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_tdi_map>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_TDI_MAP {
    /// Socket type.
    pub SocketType: u16,
    /// Address family.
    pub AddressFamily: ADDRESS_FAMILY,
    /// Protocol.
    pub Protocol: u32,
    /// NUL-terminated TDI device name.
    pub TdiDeviceName: PCWSTR,
}
assert_layout64!(WSK_TDI_MAP, 16, 8);
/// Pointer to a [`WSK_TDI_MAP`].
pub type PWSK_TDI_MAP = *mut WSK_TDI_MAP;

/// Array of [`WSK_TDI_MAP`] (input of `WSK_TDI_DEVICENAME_MAPPING`).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_tdi_map_info>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_TDI_MAP_INFO {
    /// Number of elements in `Map`.
    pub ElementCount: u32,
    /// The mappings.
    pub Map: *const WSK_TDI_MAP,
}
assert_layout64!(WSK_TDI_MAP_INFO, 16, 8);
/// Pointer to a [`WSK_TDI_MAP_INFO`].
pub type PWSK_TDI_MAP_INFO = *mut WSK_TDI_MAP_INFO;

// ---------------------------------------------------------------------------
// Client event callbacks
// ---------------------------------------------------------------------------

/// `WskClientEvent`: client-level event (no event types are defined).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_client_event>
pub type PFN_WSK_CLIENT_EVENT = Option<
    unsafe extern "system" fn(
        ClientContext: *mut c_void,
        EventType: u32,
        Information: *mut c_void,
        InformationLength: usize,
    ) -> NTSTATUS,
>;

/// `WskReceiveFromEvent`: datagrams arrived (null `DataIndication`: socket must close).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event>
pub type PFN_WSK_RECEIVE_FROM_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: *mut c_void,
        Flags: u32,
        DataIndication: PWSK_DATAGRAM_INDICATION,
    ) -> NTSTATUS,
>;

/// `WskAcceptEvent`: a connection was accepted on a listening socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>
pub type PFN_WSK_ACCEPT_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: *mut c_void,
        Flags: u32,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        AcceptSocket: PWSK_SOCKET,
        AcceptSocketContext: *mut *mut c_void,
        AcceptSocketDispatch: *mut *const WSK_CLIENT_CONNECTION_DISPATCH,
    ) -> NTSTATUS,
>;

/// `WskInspectEvent`: connection request on a conditional-accept socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event>
pub type PFN_WSK_INSPECT_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: *mut c_void,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        InspectID: PWSK_INSPECT_ID,
    ) -> WSK_INSPECT_ACTION,
>;

/// `WskAbortEvent`: an inspected connection request was dropped.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_abort_event>
pub type PFN_WSK_ABORT_EVENT = Option<
    unsafe extern "system" fn(SocketContext: *mut c_void, InspectID: PWSK_INSPECT_ID) -> NTSTATUS,
>;

/// `WskSendBacklogEvent`: the ideal send backlog size changed.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_backlog_event>
pub type PFN_WSK_SEND_BACKLOG_EVENT = Option<
    unsafe extern "system" fn(SocketContext: *mut c_void, IdealBacklogSize: usize) -> NTSTATUS,
>;

/// `WskReceiveEvent`: data arrived on a connection (null `DataIndication`: socket must close).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>
pub type PFN_WSK_RECEIVE_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: *mut c_void,
        Flags: u32,
        DataIndication: PWSK_DATA_INDICATION,
        BytesIndicated: usize,
        BytesAccepted: *mut usize,
    ) -> NTSTATUS,
>;

/// `WskReceiveExEvent`: like `WskReceiveEvent` with control information.
///
/// Only in Microsoft's DDI documentation sources; not declared by the published wsk.h.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_ex_event>
pub type PFN_WSK_RECEIVE_EX_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: *mut c_void,
        Flags: u32,
        DataIndication: PWSK_DATA_INDICATION,
        ControlInfo: PCMSGHDR,
        ControlInfoLength: u32,
        BytesIndicated: usize,
        BytesAccepted: *mut usize,
    ) -> NTSTATUS,
>;

/// `WskDisconnectEvent`: the peer disconnected (`WSK_FLAG_ABORTIVE` if abortive).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect_event>
pub type PFN_WSK_DISCONNECT_EVENT =
    Option<unsafe extern "system" fn(SocketContext: *mut c_void, Flags: u32) -> NTSTATUS>;

// ---------------------------------------------------------------------------
// Provider-level functions
// ---------------------------------------------------------------------------

/// `WskSocket`: create a socket; the new `PWSK_SOCKET` is in `Irp->IoStatus.Information`.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>
pub type PFN_WSK_SOCKET = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        AddressFamily: ADDRESS_FAMILY,
        SocketType: u16,
        Protocol: u32,
        Flags: u32,
        SocketContext: *mut c_void,
        Dispatch: *const c_void,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        SecurityDescriptor: PSECURITY_DESCRIPTOR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskSocketConnect`: create, bind and connect a connection-oriented socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>
pub type PFN_WSK_SOCKET_CONNECT = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        SocketType: u16,
        Protocol: u32,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        Flags: u32,
        SocketContext: *mut c_void,
        Dispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        SecurityDescriptor: PSECURITY_DESCRIPTOR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskControlClient`: client-level control request (`WSK_TRANSPORT_LIST_QUERY`, ...).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_client>
pub type PFN_WSK_CONTROL_CLIENT = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        ControlCode: u32,
        InputSize: usize,
        InputBuffer: *mut c_void,
        OutputSize: usize,
        OutputBuffer: *mut c_void,
        OutputSizeReturned: *mut usize,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskGetAddressInfo`: name to address translation (Windows 7+).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>
pub type PFN_WSK_GET_ADDRESS_INFO = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        NodeName: *mut UNICODE_STRING,
        ServiceName: *mut UNICODE_STRING,
        NameSpace: u32,
        Provider: *mut GUID,
        Hints: *mut ADDRINFOEXW,
        Result: *mut *mut ADDRINFOEXW,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskFreeAddressInfo`: free a list returned by `WskGetAddressInfo` (Windows 7+).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_free_address_info>
pub type PFN_WSK_FREE_ADDRESS_INFO =
    Option<unsafe extern "system" fn(Client: PWSK_CLIENT, AddrInfo: *mut ADDRINFOEXW)>;

/// `WskGetNameInfo`: address to name translation (Windows 7+).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>
pub type PFN_WSK_GET_NAME_INFO = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        SockAddr: PSOCKADDR,
        SockAddrLength: u32,
        NodeName: *mut UNICODE_STRING,
        ServiceName: *mut UNICODE_STRING,
        Flags: u32,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

// ---------------------------------------------------------------------------
// Socket-level functions
// ---------------------------------------------------------------------------

/// `WskControlSocket`: set/get a socket option or issue a socket IOCTL.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>
pub type PFN_WSK_CONTROL_SOCKET = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        RequestType: WSK_CONTROL_SOCKET_TYPE,
        ControlCode: u32,
        Level: u32,
        InputSize: usize,
        InputBuffer: *mut c_void,
        OutputSize: usize,
        OutputBuffer: *mut c_void,
        OutputSizeReturned: *mut usize,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskCloseSocket`: close a socket (IRP required).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>
pub type PFN_WSK_CLOSE_SOCKET =
    Option<unsafe extern "system" fn(Socket: PWSK_SOCKET, Irp: PIRP) -> NTSTATUS>;

/// `WskBind`: bind a socket to a local address.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
pub type PFN_WSK_BIND = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        LocalAddress: PSOCKADDR,
        Flags: u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskAccept`: accept a connection on a listening socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
pub type PFN_WSK_ACCEPT = Option<
    unsafe extern "system" fn(
        ListenSocket: PWSK_SOCKET,
        Flags: u32,
        AcceptSocketContext: *mut c_void,
        AcceptSocketDispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskInspectComplete`: resume a pended inspect decision.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_complete>
pub type PFN_WSK_INSPECT_COMPLETE = Option<
    unsafe extern "system" fn(
        ListenSocket: PWSK_SOCKET,
        InspectID: PWSK_INSPECT_ID,
        Action: WSK_INSPECT_ACTION,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskGetLocalAddress`: query the bound local address.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_local_address>
pub type PFN_WSK_GET_LOCAL_ADDRESS = Option<
    unsafe extern "system" fn(Socket: PWSK_SOCKET, LocalAddress: PSOCKADDR, Irp: PIRP) -> NTSTATUS,
>;

/// `WskGetRemoteAddress`: query the connected peer's address.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_remote_address>
pub type PFN_WSK_GET_REMOTE_ADDRESS = Option<
    unsafe extern "system" fn(Socket: PWSK_SOCKET, RemoteAddress: PSOCKADDR, Irp: PIRP) -> NTSTATUS,
>;

/// `WskConnect`: connect a bound socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect>
pub type PFN_WSK_CONNECT = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        RemoteAddress: PSOCKADDR,
        Flags: u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskConnectEx`: connect, optionally sending a first buffer (at most 65,535 bytes).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>
pub type PFN_WSK_CONNECT_EX = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        RemoteAddress: PSOCKADDR,
        Buffer: PWSK_BUF,
        Flags: u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskListen`: start listening on a bound stream socket (Windows 10 1703+).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen>
pub type PFN_WSK_LISTEN =
    Option<unsafe extern "system" fn(Socket: PWSK_SOCKET, Irp: PIRP) -> NTSTATUS>;

/// `WskSend`: send on a connected socket (`WSK_FLAG_NODELAY`).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
pub type PFN_WSK_SEND = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskSendEx`: like `WskSend` with control information (reserved for system use).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_ex>
pub type PFN_WSK_SEND_EX = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: u32,
        ControlInfoLength: u32,
        ControlInfo: PCMSGHDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskReceive`: receive on a connected socket (`WSK_FLAG_WAITALL`, `WSK_FLAG_DRAIN`).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
pub type PFN_WSK_RECEIVE = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskReceiveEx`: like `WskReceive` with control information (reserved for system use).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_ex>
pub type PFN_WSK_RECEIVE_EX = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: u32,
        ControlInfoLength: *mut u32,
        ControlInfo: PCMSGHDR,
        ControlFlags: *mut u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskDisconnect`: disconnect (graceful, or abortive with `WSK_FLAG_ABORTIVE`).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
pub type PFN_WSK_DISCONNECT = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskRelease` (connection/stream sockets): return retained data indications.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_data_indication_list>
pub type PFN_WSK_RELEASE_DATA_INDICATION_LIST = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        DataIndication: PWSK_DATA_INDICATION,
    ) -> NTSTATUS,
>;

/// `WskRelease` (datagram sockets): return retained datagram indications.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_datagram_indication_list>
pub type PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        DatagramIndication: PWSK_DATAGRAM_INDICATION,
    ) -> NTSTATUS,
>;

/// `WskSendTo`: send one datagram.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>
pub type PFN_WSK_SEND_TO = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: u32,
        RemoteAddress: PSOCKADDR,
        ControlInfoLength: u32,
        ControlInfo: PCMSGHDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskSendMessages`: send several datagrams (Windows 8+).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_messages>
pub type PFN_WSK_SEND_MESSAGES = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        BufferList: PWSK_BUF_LIST,
        Flags: u32,
        RemoteAddress: PSOCKADDR,
        ControlInfoLength: u32,
        ControlInfo: PCMSGHDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `WskReceiveFrom`: receive one datagram.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
pub type PFN_WSK_RECEIVE_FROM = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: u32,
        RemoteAddress: PSOCKADDR,
        ControlLength: *mut u32,
        ControlInfo: PCMSGHDR,
        ControlFlags: *mut u32,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

// ---------------------------------------------------------------------------
// Client dispatch tables
// ---------------------------------------------------------------------------

/// Client-level callback table passed to `WskRegister`.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_DISPATCH {
    /// Requested WSK version ([`MAKE_WSK_VERSION`]).
    pub Version: u16,
    /// Reserved, zero.
    pub Reserved: u16,
    /// Client event callback (may be `None`).
    pub WskClientEvent: PFN_WSK_CLIENT_EVENT,
}
assert_layout64!(WSK_CLIENT_DISPATCH, 16, 8);
/// Pointer to a [`WSK_CLIENT_DISPATCH`].
pub type PWSK_CLIENT_DISPATCH = *mut WSK_CLIENT_DISPATCH;

/// Event callbacks of a listening socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_listen_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_LISTEN_DISPATCH {
    /// `WskAcceptEvent`.
    pub WskAcceptEvent: PFN_WSK_ACCEPT_EVENT,
    /// `WskInspectEvent` (conditional accept only).
    pub WskInspectEvent: PFN_WSK_INSPECT_EVENT,
    /// `WskAbortEvent` (conditional accept only).
    pub WskAbortEvent: PFN_WSK_ABORT_EVENT,
}
assert_layout64!(WSK_CLIENT_LISTEN_DISPATCH, 24, 8);
/// Pointer to a [`WSK_CLIENT_LISTEN_DISPATCH`].
pub type PWSK_CLIENT_LISTEN_DISPATCH = *mut WSK_CLIENT_LISTEN_DISPATCH;

/// Event callbacks of a datagram socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_datagram_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_DATAGRAM_DISPATCH {
    /// `WskReceiveFromEvent`.
    pub WskReceiveFromEvent: PFN_WSK_RECEIVE_FROM_EVENT,
}
assert_layout64!(WSK_CLIENT_DATAGRAM_DISPATCH, 8, 8);
/// Pointer to a [`WSK_CLIENT_DATAGRAM_DISPATCH`].
pub type PWSK_CLIENT_DATAGRAM_DISPATCH = *mut WSK_CLIENT_DATAGRAM_DISPATCH;

/// Event callbacks of a connection-oriented socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_connection_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_CONNECTION_DISPATCH {
    /// `WskReceiveEvent`.
    pub WskReceiveEvent: PFN_WSK_RECEIVE_EVENT,
    /// `WskDisconnectEvent`.
    pub WskDisconnectEvent: PFN_WSK_DISCONNECT_EVENT,
    /// `WskSendBacklogEvent`.
    pub WskSendBacklogEvent: PFN_WSK_SEND_BACKLOG_EVENT,
}
assert_layout64!(WSK_CLIENT_CONNECTION_DISPATCH, 24, 8);
/// Pointer to a [`WSK_CLIENT_CONNECTION_DISPATCH`].
pub type PWSK_CLIENT_CONNECTION_DISPATCH = *mut WSK_CLIENT_CONNECTION_DISPATCH;

/// Event callbacks of a stream socket (Windows 10 1703+).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_stream_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_CLIENT_STREAM_DISPATCH {
    /// Callbacks used while the socket listens.
    pub Listen: *const WSK_CLIENT_LISTEN_DISPATCH,
    /// Callbacks used once the socket is connected.
    pub Connect: *const WSK_CLIENT_CONNECTION_DISPATCH,
}
assert_layout64!(WSK_CLIENT_STREAM_DISPATCH, 16, 8);
/// Pointer to a [`WSK_CLIENT_STREAM_DISPATCH`].
pub type PWSK_CLIENT_STREAM_DISPATCH = *mut WSK_CLIENT_STREAM_DISPATCH;

// ---------------------------------------------------------------------------
// Provider dispatch tables
// ---------------------------------------------------------------------------

/// Provider-level function table (from `WskCaptureProviderNPI`).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_DISPATCH {
    /// Version in use.
    pub Version: u16,
    /// Reserved.
    pub Reserved: u16,
    /// `WskSocket`.
    pub WskSocket: PFN_WSK_SOCKET,
    /// `WskSocketConnect`.
    pub WskSocketConnect: PFN_WSK_SOCKET_CONNECT,
    /// `WskControlClient`.
    pub WskControlClient: PFN_WSK_CONTROL_CLIENT,
    /// `WskGetAddressInfo` (Windows 7+).
    pub WskGetAddressInfo: PFN_WSK_GET_ADDRESS_INFO,
    /// `WskFreeAddressInfo` (Windows 7+).
    pub WskFreeAddressInfo: PFN_WSK_FREE_ADDRESS_INFO,
    /// `WskGetNameInfo` (Windows 7+).
    pub WskGetNameInfo: PFN_WSK_GET_NAME_INFO,
}
assert_layout64!(WSK_PROVIDER_DISPATCH, 56, 8);
/// Pointer to a [`WSK_PROVIDER_DISPATCH`].
pub type PWSK_PROVIDER_DISPATCH = *mut WSK_PROVIDER_DISPATCH;

/// Functions supported by every socket type.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_basic_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_BASIC_DISPATCH {
    /// `WskControlSocket`.
    pub WskControlSocket: PFN_WSK_CONTROL_SOCKET,
    /// `WskCloseSocket`.
    pub WskCloseSocket: PFN_WSK_CLOSE_SOCKET,
}
assert_layout64!(WSK_PROVIDER_BASIC_DISPATCH, 16, 8);
/// Pointer to a [`WSK_PROVIDER_BASIC_DISPATCH`].
pub type PWSK_PROVIDER_BASIC_DISPATCH = *mut WSK_PROVIDER_BASIC_DISPATCH;

/// Functions of a listening socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_listen_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_LISTEN_DISPATCH {
    /// Basic functions (unnamed member in C).
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskAccept`.
    pub WskAccept: PFN_WSK_ACCEPT,
    /// `WskInspectComplete`.
    pub WskInspectComplete: PFN_WSK_INSPECT_COMPLETE,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
}
assert_layout64!(WSK_PROVIDER_LISTEN_DISPATCH, 48, 8);
/// Pointer to a [`WSK_PROVIDER_LISTEN_DISPATCH`].
pub type PWSK_PROVIDER_LISTEN_DISPATCH = *mut WSK_PROVIDER_LISTEN_DISPATCH;

/// Functions of a datagram socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_datagram_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_DATAGRAM_DISPATCH {
    /// Basic functions (unnamed member in C).
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskSendTo`.
    pub WskSendTo: PFN_WSK_SEND_TO,
    /// `WskReceiveFrom`.
    pub WskReceiveFrom: PFN_WSK_RECEIVE_FROM,
    /// `WskRelease`.
    pub WskRelease: PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
    /// `WskSendMessages` (Windows 8+).
    pub WskSendMessages: PFN_WSK_SEND_MESSAGES,
}
assert_layout64!(WSK_PROVIDER_DATAGRAM_DISPATCH, 64, 8);
/// Pointer to a [`WSK_PROVIDER_DATAGRAM_DISPATCH`].
pub type PWSK_PROVIDER_DATAGRAM_DISPATCH = *mut WSK_PROVIDER_DATAGRAM_DISPATCH;

/// Functions of a connection-oriented socket.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_connection_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_CONNECTION_DISPATCH {
    /// Basic functions (unnamed member in C).
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskConnect`.
    pub WskConnect: PFN_WSK_CONNECT,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
    /// `WskGetRemoteAddress`.
    pub WskGetRemoteAddress: PFN_WSK_GET_REMOTE_ADDRESS,
    /// `WskSend`.
    pub WskSend: PFN_WSK_SEND,
    /// `WskReceive`.
    pub WskReceive: PFN_WSK_RECEIVE,
    /// `WskDisconnect`.
    pub WskDisconnect: PFN_WSK_DISCONNECT,
    /// `WskRelease`.
    pub WskRelease: PFN_WSK_RELEASE_DATA_INDICATION_LIST,
    /// `WskConnectEx` (Windows 10 1703+).
    pub WskConnectEx: PFN_WSK_CONNECT_EX,
    /// `WskSendEx` (reserved for system use).
    pub WskSendEx: PFN_WSK_SEND_EX,
    /// `WskReceiveEx` (reserved for system use).
    pub WskReceiveEx: PFN_WSK_RECEIVE_EX,
}
assert_layout64!(WSK_PROVIDER_CONNECTION_DISPATCH, 104, 8);
/// Pointer to a [`WSK_PROVIDER_CONNECTION_DISPATCH`].
pub type PWSK_PROVIDER_CONNECTION_DISPATCH = *mut WSK_PROVIDER_CONNECTION_DISPATCH;

/// Functions of a stream socket (Windows 10 1703+).
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_stream_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_STREAM_DISPATCH {
    /// Basic functions (unnamed member in C).
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskAccept`.
    pub WskAccept: PFN_WSK_ACCEPT,
    /// `WskConnect`.
    pub WskConnect: PFN_WSK_CONNECT,
    /// `WskListen`.
    pub WskListen: PFN_WSK_LISTEN,
    /// `WskSend`.
    pub WskSend: PFN_WSK_SEND,
    /// `WskReceive`.
    pub WskReceive: PFN_WSK_RECEIVE,
    /// `WskDisconnect`.
    pub WskDisconnect: PFN_WSK_DISCONNECT,
    /// `WskRelease`.
    pub WskRelease: PFN_WSK_RELEASE_DATA_INDICATION_LIST,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
    /// `WskGetRemoteAddress`.
    pub WskGetRemoteAddress: PFN_WSK_GET_REMOTE_ADDRESS,
    /// `WskConnectEx`.
    pub WskConnectEx: PFN_WSK_CONNECT_EX,
    /// `WskSendEx` (reserved for system use).
    pub WskSendEx: PFN_WSK_SEND_EX,
    /// `WskReceiveEx` (reserved for system use).
    pub WskReceiveEx: PFN_WSK_RECEIVE_EX,
}
assert_layout64!(WSK_PROVIDER_STREAM_DISPATCH, 120, 8);
/// Pointer to a [`WSK_PROVIDER_STREAM_DISPATCH`].
pub type PWSK_PROVIDER_STREAM_DISPATCH = *mut WSK_PROVIDER_STREAM_DISPATCH;

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

/// Client NPI passed to `WskRegister`.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_npi>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_CLIENT_NPI {
    /// Context passed back in `WskClientEvent`.
    pub ClientContext: *mut c_void,
    /// Client dispatch table.
    pub Dispatch: *const WSK_CLIENT_DISPATCH,
}
assert_layout64!(WSK_CLIENT_NPI, 16, 8);
/// Pointer to a [`WSK_CLIENT_NPI`].
pub type PWSK_CLIENT_NPI = *mut WSK_CLIENT_NPI;

/// Provider NPI filled in by `WskCaptureProviderNPI`.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_npi>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_PROVIDER_NPI {
    /// Client object to pass to provider-level functions.
    pub Client: PWSK_CLIENT,
    /// Provider dispatch table.
    pub Dispatch: *const WSK_PROVIDER_DISPATCH,
}
assert_layout64!(WSK_PROVIDER_NPI, 16, 8);
/// Pointer to a [`WSK_PROVIDER_NPI`].
pub type PWSK_PROVIDER_NPI = *mut WSK_PROVIDER_NPI;

/// Registration block initialised by `WskRegister`; opaque to the client.
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_registration>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_REGISTRATION {
    /// Reserved.
    pub ReservedRegistrationState: u64,
    /// Reserved.
    pub ReservedRegistrationContext: *mut c_void,
    /// Reserved.
    pub ReservedRegistrationLock: KSPIN_LOCK,
}
assert_layout64!(WSK_REGISTRATION, 24, 8);
/// Pointer to a [`WSK_REGISTRATION`].
pub type PWSK_REGISTRATION = *mut WSK_REGISTRATION;

impl Default for WSK_REGISTRATION {
    fn default() -> Self {
        Self {
            ReservedRegistrationState: 0,
            ReservedRegistrationContext: core::ptr::null_mut(),
            ReservedRegistrationLock: 0,
        }
    }
}

// ---------------------------------------------------------------------------
// netio.sys exports
// ---------------------------------------------------------------------------

#[cfg_attr(
    windows,
    link(name = "netio.sys", kind = "raw-dylib", modifiers = "+verbatim")
)]
extern "system" {
    /// Register as a WSK client (PASSIVE_LEVEL).
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nf-wsk-wskregister>
    pub fn WskRegister(
        WskClientNpi: *const WSK_CLIENT_NPI,
        WskRegistration: *mut WSK_REGISTRATION,
    ) -> NTSTATUS;

    /// Deregister a WSK client; waits for captures and sockets to go away (PASSIVE_LEVEL).
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nf-wsk-wskderegister>
    pub fn WskDeregister(WskRegistration: *mut WSK_REGISTRATION);

    /// Capture the provider NPI, waiting up to `WaitTimeout` ms ([`WSK_NO_WAIT`], [`WSK_INFINITE_WAIT`]).
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nf-wsk-wskcaptureprovidernpi>
    pub fn WskCaptureProviderNPI(
        WskRegistration: *mut WSK_REGISTRATION,
        WaitTimeout: u32,
        WskProviderNpi: *mut WSK_PROVIDER_NPI,
    ) -> NTSTATUS;

    /// Release a provider NPI captured by `WskCaptureProviderNPI`.
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nf-wsk-wskreleaseprovidernpi>
    pub fn WskReleaseProviderNPI(WskRegistration: *mut WSK_REGISTRATION);

    /// Query the range of WSK versions the provider supports.
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nf-wsk-wskqueryprovidercharacteristics>
    pub fn WskQueryProviderCharacteristics(
        WskRegistration: *mut WSK_REGISTRATION,
        WskProviderCharacteristics: *mut WSK_PROVIDER_CHARACTERISTICS,
    ) -> NTSTATUS;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(MAKE_WSK_VERSION(1, 0), 0x0100);
        assert_eq!(WSK_MAJOR_VERSION(0x0102), 1);
        assert_eq!(WSK_MINOR_VERSION(0x0102), 2);
    }

    #[test]
    fn ioctl_values() {
        assert_eq!(IOC_WSK, 0x0F00_0000);
        assert_eq!(SIO_WSK_SET_REMOTE_ADDRESS, 0x8F00_0001);
        assert_eq!(SIO_WSK_REGISTER_EXTENSION, 0xCF00_0002);
        assert_eq!(SIO_WSK_QUERY_IDEAL_SEND_BACKLOG, 0x4F00_0003);
        assert_eq!(SIO_WSK_QUERY_RECEIVE_BACKLOG, 0x4F00_0004);
        assert_eq!(SIO_WSK_QUERY_INSPECT_ID, 0x4F00_0005);
        assert_eq!(SIO_WSK_SET_SENDTO_ADDRESS, 0x8F00_0006);
        assert_eq!(SIO_WSK_SET_TCP_SILENT_MODE, 0x2F00_0007);
        assert_eq!(SO_WSK_SECURITY, 0x4001);
        assert_eq!(SO_WSK_EVENT_CALLBACK, 0x4002);
        assert_eq!(SO_CONDITIONAL_ACCEPT, 0x3002);
    }

    #[test]
    fn interface_id() {
        let g = NPI_WSK_INTERFACE_ID;
        assert_eq!(g.data1, 0x2227_E803);
        assert_eq!(g.data2, 0x8D8B);
        assert_eq!(g.data3, 0x11D4);
        assert_eq!(g.data4, [0xAB, 0xAD, 0x00, 0x90, 0x27, 0x71, 0x9E, 0x09]);
    }
}
