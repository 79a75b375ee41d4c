//! NTSTATUS values used by the contract, and their names.
//!
//! Values are copied from Microsoft's list, "2.3.1 NTSTATUS Values",
//! <https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-erref/596a1078-e883-4972-9bbc-49e60bebca55>,
//! and checked against `windows-sys` 0.61 `Win32::Foundation` by this crate's
//! `tests/windows_sys.rs` (the crate itself stays dependency-free).
//!
//! Shape: an NTSTATUS is an `i32`; bits 30..32 are the severity (0b11 error,
//! 0b10 warning, 0b01 informational, 0b00 success), so `status >= 0` is success
//! ([`nt_success`]).

/// `NT_SUCCESS(status)`: success or informational severity (`status >= 0`).
/// `STATUS_PENDING` counts as success, as in ntdef.h.
pub const fn nt_success(status: i32) -> bool {
    status >= 0
}

/// `STATUS_SUCCESS` (0x0000_0000): The operation completed successfully.
pub const STATUS_SUCCESS: i32 = 0x0000_0000_u32 as i32;
/// `STATUS_PENDING` (0x0000_0103): The operation that was requested is pending completion.
pub const STATUS_PENDING: i32 = 0x0000_0103_u32 as i32;
/// `STATUS_BUFFER_OVERFLOW` (0x8000_0005): The data was too large to fit into the specified buffer (warning; partial data returned).
pub const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32;
/// `STATUS_UNSUCCESSFUL` (0xC000_0001): The requested operation was unsuccessful.
pub const STATUS_UNSUCCESSFUL: i32 = 0xC000_0001_u32 as i32;
/// `STATUS_NOT_IMPLEMENTED` (0xC000_0002): The requested operation is not implemented.
pub const STATUS_NOT_IMPLEMENTED: i32 = 0xC000_0002_u32 as i32;
/// `STATUS_INVALID_HANDLE` (0xC000_0008): An invalid HANDLE was specified.
pub const STATUS_INVALID_HANDLE: i32 = 0xC000_0008_u32 as i32;
/// `STATUS_INVALID_PARAMETER` (0xC000_000D): An invalid parameter was passed to a service or function.
pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
/// `STATUS_NO_SUCH_DEVICE` (0xC000_000E): A device that does not exist was specified.
pub const STATUS_NO_SUCH_DEVICE: i32 = 0xC000_000E_u32 as i32;
/// `STATUS_INVALID_DEVICE_REQUEST` (0xC000_0010): The specified request is not a valid operation for the target device.
pub const STATUS_INVALID_DEVICE_REQUEST: i32 = 0xC000_0010_u32 as i32;
/// `STATUS_END_OF_FILE` (0xC000_0011): The end-of-file marker has been reached (TRANSMIT_*: a
/// file range past the end of the file).
pub const STATUS_END_OF_FILE: i32 = 0xC000_0011_u32 as i32;
/// `STATUS_ACCESS_DENIED` (0xC000_0022): A process has requested access to an object but has not been granted those access rights.
pub const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
/// `STATUS_BUFFER_TOO_SMALL` (0xC000_0023): The buffer is too small to contain the entry.
pub const STATUS_BUFFER_TOO_SMALL: i32 = 0xC000_0023_u32 as i32;
/// `STATUS_OBJECT_TYPE_MISMATCH` (0xC000_0024): There is a mismatch between the type of object
/// that is required by the requested operation and the type of object that is specified.
pub const STATUS_OBJECT_TYPE_MISMATCH: i32 = 0xC000_0024_u32 as i32;
/// `STATUS_OBJECT_NAME_NOT_FOUND` (0xC000_0034): The object name is not found.
pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
/// `STATUS_REVISION_MISMATCH` (0xC000_0059): Indicates two revision levels are incompatible.
pub const STATUS_REVISION_MISMATCH: i32 = 0xC000_0059_u32 as i32;
/// `STATUS_INSUFFICIENT_RESOURCES` (0xC000_009A): Insufficient system resources exist to complete the API.
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;
/// `STATUS_DEVICE_NOT_READY` (0xC000_00A3): The device is not ready.
pub const STATUS_DEVICE_NOT_READY: i32 = 0xC000_00A3_u32 as i32;
/// `STATUS_IO_TIMEOUT` (0xC000_00B5): The specified I/O operation was not completed before the time-out period expired.
pub const STATUS_IO_TIMEOUT: i32 = 0xC000_00B5_u32 as i32;
/// `STATUS_NOT_SUPPORTED` (0xC000_00BB): The request is not supported.
pub const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BB_u32 as i32;
/// `STATUS_NETWORK_BUSY` (0xC000_00BF): The network is busy.
pub const STATUS_NETWORK_BUSY: i32 = 0xC000_00BF_u32 as i32;
/// `STATUS_TOO_MANY_OPENED_FILES` (0xC000_011F): Too many files are opened on a remote server.
pub const STATUS_TOO_MANY_OPENED_FILES: i32 = 0xC000_011F_u32 as i32;
/// `STATUS_CANCELLED` (0xC000_0120): The I/O request was canceled.
pub const STATUS_CANCELLED: i32 = 0xC000_0120_u32 as i32;
/// `STATUS_REMOTE_DISCONNECT` (0xC000_013C): The network transport on a remote computer has closed a network connection.
pub const STATUS_REMOTE_DISCONNECT: i32 = 0xC000_013C_u32 as i32;
/// `STATUS_INVALID_CONNECTION` (0xC000_0140): The transport determined that the connection is not valid.
pub const STATUS_INVALID_CONNECTION: i32 = 0xC000_0140_u32 as i32;
/// `STATUS_INVALID_ADDRESS` (0xC000_0141): The transport determined that the address is not valid.
pub const STATUS_INVALID_ADDRESS: i32 = 0xC000_0141_u32 as i32;
/// `STATUS_INVALID_DEVICE_STATE` (0xC000_0184): The device is not in a valid state to perform this request.
pub const STATUS_INVALID_DEVICE_STATE: i32 = 0xC000_0184_u32 as i32;
/// `STATUS_INVALID_BUFFER_SIZE` (0xC000_0206): The size of the buffer is invalid for the specified operation.
pub const STATUS_INVALID_BUFFER_SIZE: i32 = 0xC000_0206_u32 as i32;
/// `STATUS_INVALID_ADDRESS_COMPONENT` (0xC000_0207): The transport rejected the specified network address as invalid.
pub const STATUS_INVALID_ADDRESS_COMPONENT: i32 = 0xC000_0207_u32 as i32;
/// `STATUS_INVALID_ADDRESS_WILDCARD` (0xC000_0208): The transport rejected the specified network address because of an invalid use of a wildcard.
pub const STATUS_INVALID_ADDRESS_WILDCARD: i32 = 0xC000_0208_u32 as i32;
/// `STATUS_TOO_MANY_ADDRESSES` (0xC000_0209): The transport address could not be opened because all the available addresses are in use.
pub const STATUS_TOO_MANY_ADDRESSES: i32 = 0xC000_0209_u32 as i32;
/// `STATUS_ADDRESS_ALREADY_EXISTS` (0xC000_020A): The transport address could not be opened because it already exists.
pub const STATUS_ADDRESS_ALREADY_EXISTS: i32 = 0xC000_020A_u32 as i32;
/// `STATUS_ADDRESS_CLOSED` (0xC000_020B): The transport address is now closed.
pub const STATUS_ADDRESS_CLOSED: i32 = 0xC000_020B_u32 as i32;
/// `STATUS_CONNECTION_DISCONNECTED` (0xC000_020C): The transport connection is now disconnected.
pub const STATUS_CONNECTION_DISCONNECTED: i32 = 0xC000_020C_u32 as i32;
/// `STATUS_CONNECTION_RESET` (0xC000_020D): The transport connection has been reset.
pub const STATUS_CONNECTION_RESET: i32 = 0xC000_020D_u32 as i32;
/// `STATUS_DATA_NOT_ACCEPTED` (0xC000_021B): The transport did not accept the data.
pub const STATUS_DATA_NOT_ACCEPTED: i32 = 0xC000_021B_u32 as i32;
/// `STATUS_INTEGER_OVERFLOW` (0xC000_0095): Integer overflow (TRANSMIT_PACKETS: an element
/// count or a length sum that overflows).
pub const STATUS_INTEGER_OVERFLOW: i32 = 0xC000_0095_u32 as i32;
/// `STATUS_NOT_FOUND` (0xC000_0225): The object was not found.
pub const STATUS_NOT_FOUND: i32 = 0xC000_0225_u32 as i32;
/// `STATUS_NO_MATCH` (0xC000_0272): no match; for `WskGetAddressInfo`, the host name cannot
/// be resolved.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>
pub const STATUS_NO_MATCH: i32 = 0xC000_0272_u32 as i32;
/// `STATUS_CONNECTION_REFUSED` (0xC000_0236): The transport connection attempt was refused by the remote system.
pub const STATUS_CONNECTION_REFUSED: i32 = 0xC000_0236_u32 as i32;
/// `STATUS_GRACEFUL_DISCONNECT` (0xC000_0237): The connection was gracefully closed.
pub const STATUS_GRACEFUL_DISCONNECT: i32 = 0xC000_0237_u32 as i32;
/// `STATUS_CONNECTION_INVALID` (0xC000_023A): An operation was attempted on a nonexistent transport connection.
pub const STATUS_CONNECTION_INVALID: i32 = 0xC000_023A_u32 as i32;
/// `STATUS_CONNECTION_ACTIVE` (0xC000_023B): An invalid operation was attempted on an active transport connection.
pub const STATUS_CONNECTION_ACTIVE: i32 = 0xC000_023B_u32 as i32;
/// `STATUS_NETWORK_UNREACHABLE` (0xC000_023C): The remote network is not reachable by the transport.
pub const STATUS_NETWORK_UNREACHABLE: i32 = 0xC000_023C_u32 as i32;
/// `STATUS_HOST_UNREACHABLE` (0xC000_023D): The remote system is not reachable by the transport.
pub const STATUS_HOST_UNREACHABLE: i32 = 0xC000_023D_u32 as i32;
/// `STATUS_PROTOCOL_UNREACHABLE` (0xC000_023E): The remote system does not support the transport protocol.
pub const STATUS_PROTOCOL_UNREACHABLE: i32 = 0xC000_023E_u32 as i32;
/// `STATUS_PORT_UNREACHABLE` (0xC000_023F): No service is operating at the destination port of the transport on the remote system.
pub const STATUS_PORT_UNREACHABLE: i32 = 0xC000_023F_u32 as i32;
/// `STATUS_REQUEST_ABORTED` (0xC000_0240): The request was aborted.
pub const STATUS_REQUEST_ABORTED: i32 = 0xC000_0240_u32 as i32;
/// `STATUS_CONNECTION_ABORTED` (0xC000_0241): The transport connection was aborted by the local system.
pub const STATUS_CONNECTION_ABORTED: i32 = 0xC000_0241_u32 as i32;

/// Every status of this module with its name, in numeric (unsigned) order.
pub const NTSTATUS_NAMES: &[(i32, &str)] = &[
    (STATUS_SUCCESS, "STATUS_SUCCESS"),
    (STATUS_PENDING, "STATUS_PENDING"),
    (STATUS_BUFFER_OVERFLOW, "STATUS_BUFFER_OVERFLOW"),
    (STATUS_UNSUCCESSFUL, "STATUS_UNSUCCESSFUL"),
    (STATUS_NOT_IMPLEMENTED, "STATUS_NOT_IMPLEMENTED"),
    (STATUS_INVALID_HANDLE, "STATUS_INVALID_HANDLE"),
    (STATUS_INVALID_PARAMETER, "STATUS_INVALID_PARAMETER"),
    (STATUS_NO_SUCH_DEVICE, "STATUS_NO_SUCH_DEVICE"),
    (
        STATUS_INVALID_DEVICE_REQUEST,
        "STATUS_INVALID_DEVICE_REQUEST",
    ),
    (STATUS_END_OF_FILE, "STATUS_END_OF_FILE"),
    (STATUS_ACCESS_DENIED, "STATUS_ACCESS_DENIED"),
    (STATUS_BUFFER_TOO_SMALL, "STATUS_BUFFER_TOO_SMALL"),
    (STATUS_OBJECT_TYPE_MISMATCH, "STATUS_OBJECT_TYPE_MISMATCH"),
    (STATUS_OBJECT_NAME_NOT_FOUND, "STATUS_OBJECT_NAME_NOT_FOUND"),
    (STATUS_REVISION_MISMATCH, "STATUS_REVISION_MISMATCH"),
    (
        STATUS_INSUFFICIENT_RESOURCES,
        "STATUS_INSUFFICIENT_RESOURCES",
    ),
    (STATUS_DEVICE_NOT_READY, "STATUS_DEVICE_NOT_READY"),
    (STATUS_IO_TIMEOUT, "STATUS_IO_TIMEOUT"),
    (STATUS_NOT_SUPPORTED, "STATUS_NOT_SUPPORTED"),
    (STATUS_NETWORK_BUSY, "STATUS_NETWORK_BUSY"),
    (STATUS_TOO_MANY_OPENED_FILES, "STATUS_TOO_MANY_OPENED_FILES"),
    (STATUS_CANCELLED, "STATUS_CANCELLED"),
    (STATUS_REMOTE_DISCONNECT, "STATUS_REMOTE_DISCONNECT"),
    (STATUS_INVALID_CONNECTION, "STATUS_INVALID_CONNECTION"),
    (STATUS_INVALID_ADDRESS, "STATUS_INVALID_ADDRESS"),
    (STATUS_INVALID_DEVICE_STATE, "STATUS_INVALID_DEVICE_STATE"),
    (STATUS_INVALID_BUFFER_SIZE, "STATUS_INVALID_BUFFER_SIZE"),
    (
        STATUS_INVALID_ADDRESS_COMPONENT,
        "STATUS_INVALID_ADDRESS_COMPONENT",
    ),
    (
        STATUS_INVALID_ADDRESS_WILDCARD,
        "STATUS_INVALID_ADDRESS_WILDCARD",
    ),
    (STATUS_TOO_MANY_ADDRESSES, "STATUS_TOO_MANY_ADDRESSES"),
    (
        STATUS_ADDRESS_ALREADY_EXISTS,
        "STATUS_ADDRESS_ALREADY_EXISTS",
    ),
    (STATUS_ADDRESS_CLOSED, "STATUS_ADDRESS_CLOSED"),
    (
        STATUS_CONNECTION_DISCONNECTED,
        "STATUS_CONNECTION_DISCONNECTED",
    ),
    (STATUS_CONNECTION_RESET, "STATUS_CONNECTION_RESET"),
    (STATUS_DATA_NOT_ACCEPTED, "STATUS_DATA_NOT_ACCEPTED"),
    (STATUS_INTEGER_OVERFLOW, "STATUS_INTEGER_OVERFLOW"),
    (STATUS_NOT_FOUND, "STATUS_NOT_FOUND"),
    (STATUS_NO_MATCH, "STATUS_NO_MATCH"),
    (STATUS_CONNECTION_REFUSED, "STATUS_CONNECTION_REFUSED"),
    (STATUS_GRACEFUL_DISCONNECT, "STATUS_GRACEFUL_DISCONNECT"),
    (STATUS_CONNECTION_INVALID, "STATUS_CONNECTION_INVALID"),
    (STATUS_CONNECTION_ACTIVE, "STATUS_CONNECTION_ACTIVE"),
    (STATUS_NETWORK_UNREACHABLE, "STATUS_NETWORK_UNREACHABLE"),
    (STATUS_HOST_UNREACHABLE, "STATUS_HOST_UNREACHABLE"),
    (STATUS_PROTOCOL_UNREACHABLE, "STATUS_PROTOCOL_UNREACHABLE"),
    (STATUS_PORT_UNREACHABLE, "STATUS_PORT_UNREACHABLE"),
    (STATUS_REQUEST_ABORTED, "STATUS_REQUEST_ABORTED"),
    (STATUS_CONNECTION_ABORTED, "STATUS_CONNECTION_ABORTED"),
];

/// The symbolic name of `status` (e.g. `"STATUS_CONNECTION_REFUSED"`), or `None`
/// for a status this table does not cover. Covers every `STATUS_*` constant of
/// this module ([`NTSTATUS_NAMES`]).
pub fn ntstatus_name(status: i32) -> Option<&'static str> {
    NTSTATUS_NAMES
        .iter()
        .find(|(value, _)| *value == status)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_match_their_constants() {
        for (i, (value, name)) in NTSTATUS_NAMES.iter().enumerate() {
            assert!(name.starts_with("STATUS_"));
            assert_eq!(ntstatus_name(*value), Some(*name));
            for (other, other_name) in &NTSTATUS_NAMES[i + 1..] {
                assert_ne!(value, other, "{name} and {other_name} share a value");
                assert_ne!(name, other_name);
            }
        }
        assert_eq!(
            ntstatus_name(STATUS_CONNECTION_REFUSED),
            Some("STATUS_CONNECTION_REFUSED")
        );
        assert_eq!(STATUS_CONNECTION_REFUSED as u32, 0xC000_0236);
        assert_eq!(ntstatus_name(0x1234_5678), None);
    }

    #[test]
    fn severity() {
        assert!(nt_success(STATUS_SUCCESS));
        assert!(nt_success(STATUS_PENDING));
        assert!(!nt_success(STATUS_BUFFER_OVERFLOW));
        assert!(!nt_success(STATUS_INVALID_PARAMETER));
    }
}
