//! Mapping of host OS errors to the NTSTATUS the Windows WSK provider reports.
//! The table, with its sources, is `docs/ntstatus-mapping.md`; keep the two in step.

use std::io;

use windows_sys::Win32::Foundation::*;

/// Maps an OS error from a socket call to an NTSTATUS.
pub fn from_io_error(e: &io::Error) -> NTSTATUS {
    use io::ErrorKind as K;
    if let Some(code) = e.raw_os_error() {
        if let Some(s) = from_errno(code) {
            return s;
        }
    }
    match e.kind() {
        K::ConnectionRefused => STATUS_CONNECTION_REFUSED,
        K::ConnectionReset | K::BrokenPipe => STATUS_CONNECTION_RESET,
        K::ConnectionAborted => STATUS_CONNECTION_ABORTED,
        K::AddrInUse => STATUS_ADDRESS_ALREADY_EXISTS,
        K::AddrNotAvailable => STATUS_INVALID_ADDRESS_COMPONENT,
        K::TimedOut => STATUS_IO_TIMEOUT,
        K::InvalidInput => STATUS_INVALID_PARAMETER,
        K::PermissionDenied => STATUS_ACCESS_DENIED,
        K::OutOfMemory => STATUS_INSUFFICIENT_RESOURCES,
        _ => STATUS_UNEXPECTED_NETWORK_ERROR,
    }
}

/// Linux errno values (x86_64) to NTSTATUS.
pub fn from_errno(errno: i32) -> Option<NTSTATUS> {
    Some(match errno {
        111 => STATUS_CONNECTION_REFUSED,          // ECONNREFUSED
        104 | 32 => STATUS_CONNECTION_RESET,       // ECONNRESET, EPIPE
        103 => STATUS_CONNECTION_ABORTED,          // ECONNABORTED
        101 => STATUS_NETWORK_UNREACHABLE,         // ENETUNREACH
        113 => STATUS_HOST_UNREACHABLE,            // EHOSTUNREACH
        110 => STATUS_IO_TIMEOUT,                  // ETIMEDOUT
        98 => STATUS_ADDRESS_ALREADY_EXISTS,       // EADDRINUSE
        99 => STATUS_INVALID_ADDRESS_COMPONENT,    // EADDRNOTAVAIL
        90 => STATUS_INVALID_BUFFER_SIZE,          // EMSGSIZE
        97 => STATUS_INVALID_ADDRESS_COMPONENT,    // EAFNOSUPPORT
        22 => STATUS_INVALID_PARAMETER,            // EINVAL
        106 => STATUS_CONNECTION_ACTIVE,           // EISCONN
        107 => STATUS_INVALID_CONNECTION,          // ENOTCONN
        12 | 105 => STATUS_INSUFFICIENT_RESOURCES, // ENOMEM, ENOBUFS
        13 | 1 => STATUS_ACCESS_DENIED,            // EACCES, EPERM
        100 => STATUS_NETWORK_UNREACHABLE,         // ENETDOWN
        _ => return None,
    })
}
