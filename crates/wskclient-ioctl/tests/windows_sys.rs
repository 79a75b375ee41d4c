//! Cross-checks the contract's copied Windows values against `windows-sys` 0.61
//! (a dev-dependency only: the contract crate itself has no Windows dependency).

use core::mem::{offset_of, size_of};

use windows_sys::Win32::Foundation as f;
use windows_sys::Win32::Networking::WinSock as ws;
use windows_sys::Win32::System::Ioctl as ioctl;
use wskclient_ioctl::{status, InetAddress};

#[test]
fn ntstatus_values_match_windows_sys() {
    let pairs: &[(i32, i32, &str)] = &[
        (status::STATUS_SUCCESS, f::STATUS_SUCCESS, "STATUS_SUCCESS"),
        (status::STATUS_PENDING, f::STATUS_PENDING, "STATUS_PENDING"),
        (
            status::STATUS_BUFFER_OVERFLOW,
            f::STATUS_BUFFER_OVERFLOW,
            "STATUS_BUFFER_OVERFLOW",
        ),
        (
            status::STATUS_UNSUCCESSFUL,
            f::STATUS_UNSUCCESSFUL,
            "STATUS_UNSUCCESSFUL",
        ),
        (
            status::STATUS_NOT_IMPLEMENTED,
            f::STATUS_NOT_IMPLEMENTED,
            "STATUS_NOT_IMPLEMENTED",
        ),
        (
            status::STATUS_INVALID_HANDLE,
            f::STATUS_INVALID_HANDLE,
            "STATUS_INVALID_HANDLE",
        ),
        (
            status::STATUS_INVALID_PARAMETER,
            f::STATUS_INVALID_PARAMETER,
            "STATUS_INVALID_PARAMETER",
        ),
        (
            status::STATUS_NO_SUCH_DEVICE,
            f::STATUS_NO_SUCH_DEVICE,
            "STATUS_NO_SUCH_DEVICE",
        ),
        (
            status::STATUS_INVALID_DEVICE_REQUEST,
            f::STATUS_INVALID_DEVICE_REQUEST,
            "STATUS_INVALID_DEVICE_REQUEST",
        ),
        (
            status::STATUS_ACCESS_DENIED,
            f::STATUS_ACCESS_DENIED,
            "STATUS_ACCESS_DENIED",
        ),
        (
            status::STATUS_BUFFER_TOO_SMALL,
            f::STATUS_BUFFER_TOO_SMALL,
            "STATUS_BUFFER_TOO_SMALL",
        ),
        (
            status::STATUS_OBJECT_NAME_NOT_FOUND,
            f::STATUS_OBJECT_NAME_NOT_FOUND,
            "STATUS_OBJECT_NAME_NOT_FOUND",
        ),
        (
            status::STATUS_REVISION_MISMATCH,
            f::STATUS_REVISION_MISMATCH,
            "STATUS_REVISION_MISMATCH",
        ),
        (
            status::STATUS_INSUFFICIENT_RESOURCES,
            f::STATUS_INSUFFICIENT_RESOURCES,
            "STATUS_INSUFFICIENT_RESOURCES",
        ),
        (
            status::STATUS_DEVICE_NOT_READY,
            f::STATUS_DEVICE_NOT_READY,
            "STATUS_DEVICE_NOT_READY",
        ),
        (
            status::STATUS_IO_TIMEOUT,
            f::STATUS_IO_TIMEOUT,
            "STATUS_IO_TIMEOUT",
        ),
        (
            status::STATUS_NOT_SUPPORTED,
            f::STATUS_NOT_SUPPORTED,
            "STATUS_NOT_SUPPORTED",
        ),
        (
            status::STATUS_NETWORK_BUSY,
            f::STATUS_NETWORK_BUSY,
            "STATUS_NETWORK_BUSY",
        ),
        (
            status::STATUS_TOO_MANY_OPENED_FILES,
            f::STATUS_TOO_MANY_OPENED_FILES,
            "STATUS_TOO_MANY_OPENED_FILES",
        ),
        (
            status::STATUS_CANCELLED,
            f::STATUS_CANCELLED,
            "STATUS_CANCELLED",
        ),
        (
            status::STATUS_REMOTE_DISCONNECT,
            f::STATUS_REMOTE_DISCONNECT,
            "STATUS_REMOTE_DISCONNECT",
        ),
        (
            status::STATUS_INVALID_CONNECTION,
            f::STATUS_INVALID_CONNECTION,
            "STATUS_INVALID_CONNECTION",
        ),
        (
            status::STATUS_INVALID_ADDRESS,
            f::STATUS_INVALID_ADDRESS,
            "STATUS_INVALID_ADDRESS",
        ),
        (
            status::STATUS_INVALID_DEVICE_STATE,
            f::STATUS_INVALID_DEVICE_STATE,
            "STATUS_INVALID_DEVICE_STATE",
        ),
        (
            status::STATUS_INVALID_BUFFER_SIZE,
            f::STATUS_INVALID_BUFFER_SIZE,
            "STATUS_INVALID_BUFFER_SIZE",
        ),
        (
            status::STATUS_INVALID_ADDRESS_COMPONENT,
            f::STATUS_INVALID_ADDRESS_COMPONENT,
            "STATUS_INVALID_ADDRESS_COMPONENT",
        ),
        (
            status::STATUS_INVALID_ADDRESS_WILDCARD,
            f::STATUS_INVALID_ADDRESS_WILDCARD,
            "STATUS_INVALID_ADDRESS_WILDCARD",
        ),
        (
            status::STATUS_TOO_MANY_ADDRESSES,
            f::STATUS_TOO_MANY_ADDRESSES,
            "STATUS_TOO_MANY_ADDRESSES",
        ),
        (
            status::STATUS_ADDRESS_ALREADY_EXISTS,
            f::STATUS_ADDRESS_ALREADY_EXISTS,
            "STATUS_ADDRESS_ALREADY_EXISTS",
        ),
        (
            status::STATUS_ADDRESS_CLOSED,
            f::STATUS_ADDRESS_CLOSED,
            "STATUS_ADDRESS_CLOSED",
        ),
        (
            status::STATUS_CONNECTION_DISCONNECTED,
            f::STATUS_CONNECTION_DISCONNECTED,
            "STATUS_CONNECTION_DISCONNECTED",
        ),
        (
            status::STATUS_CONNECTION_RESET,
            f::STATUS_CONNECTION_RESET,
            "STATUS_CONNECTION_RESET",
        ),
        (
            status::STATUS_DATA_NOT_ACCEPTED,
            f::STATUS_DATA_NOT_ACCEPTED,
            "STATUS_DATA_NOT_ACCEPTED",
        ),
        (
            status::STATUS_NOT_FOUND,
            f::STATUS_NOT_FOUND,
            "STATUS_NOT_FOUND",
        ),
        (
            status::STATUS_NO_MATCH,
            f::STATUS_NO_MATCH,
            "STATUS_NO_MATCH",
        ),
        (
            status::STATUS_CONNECTION_REFUSED,
            f::STATUS_CONNECTION_REFUSED,
            "STATUS_CONNECTION_REFUSED",
        ),
        (
            status::STATUS_GRACEFUL_DISCONNECT,
            f::STATUS_GRACEFUL_DISCONNECT,
            "STATUS_GRACEFUL_DISCONNECT",
        ),
        (
            status::STATUS_CONNECTION_INVALID,
            f::STATUS_CONNECTION_INVALID,
            "STATUS_CONNECTION_INVALID",
        ),
        (
            status::STATUS_CONNECTION_ACTIVE,
            f::STATUS_CONNECTION_ACTIVE,
            "STATUS_CONNECTION_ACTIVE",
        ),
        (
            status::STATUS_NETWORK_UNREACHABLE,
            f::STATUS_NETWORK_UNREACHABLE,
            "STATUS_NETWORK_UNREACHABLE",
        ),
        (
            status::STATUS_HOST_UNREACHABLE,
            f::STATUS_HOST_UNREACHABLE,
            "STATUS_HOST_UNREACHABLE",
        ),
        (
            status::STATUS_PROTOCOL_UNREACHABLE,
            f::STATUS_PROTOCOL_UNREACHABLE,
            "STATUS_PROTOCOL_UNREACHABLE",
        ),
        (
            status::STATUS_PORT_UNREACHABLE,
            f::STATUS_PORT_UNREACHABLE,
            "STATUS_PORT_UNREACHABLE",
        ),
        (
            status::STATUS_REQUEST_ABORTED,
            f::STATUS_REQUEST_ABORTED,
            "STATUS_REQUEST_ABORTED",
        ),
        (
            status::STATUS_CONNECTION_ABORTED,
            f::STATUS_CONNECTION_ABORTED,
            "STATUS_CONNECTION_ABORTED",
        ),
        (
            status::STATUS_END_OF_FILE,
            f::STATUS_END_OF_FILE,
            "STATUS_END_OF_FILE",
        ),
        (
            status::STATUS_OBJECT_TYPE_MISMATCH,
            f::STATUS_OBJECT_TYPE_MISMATCH,
            "STATUS_OBJECT_TYPE_MISMATCH",
        ),
        (
            status::STATUS_INTEGER_OVERFLOW,
            f::STATUS_INTEGER_OVERFLOW,
            "STATUS_INTEGER_OVERFLOW",
        ),
    ];
    assert_eq!(
        pairs.len(),
        status::NTSTATUS_NAMES.len(),
        "every constant is checked"
    );
    for &(ours, theirs, name) in pairs {
        assert_eq!(ours, theirs, "{name}");
        assert_eq!(status::ntstatus_name(ours), Some(name));
    }
}

#[test]
fn method_and_access_values_match_windows_sys() {
    assert_eq!(wskclient_ioctl::METHOD_BUFFERED, ioctl::METHOD_BUFFERED);
    assert_eq!(wskclient_ioctl::METHOD_IN_DIRECT, ioctl::METHOD_IN_DIRECT);
    assert_eq!(wskclient_ioctl::METHOD_OUT_DIRECT, ioctl::METHOD_OUT_DIRECT);
    assert_eq!(wskclient_ioctl::METHOD_NEITHER, ioctl::METHOD_NEITHER);
    assert_eq!(wskclient_ioctl::FILE_ANY_ACCESS, ioctl::FILE_ANY_ACCESS);
    assert_eq!(wskclient_ioctl::FILE_READ_ACCESS, ioctl::FILE_READ_ACCESS);
    assert_eq!(wskclient_ioctl::FILE_WRITE_ACCESS, ioctl::FILE_WRITE_ACCESS);
}

#[test]
fn inet_address_matches_windows_sockaddr_layout() {
    assert_eq!(wskclient_ioctl::AF_UNSPEC, ws::AF_UNSPEC);
    assert_eq!(wskclient_ioctl::AF_INET, ws::AF_INET);
    assert_eq!(wskclient_ioctl::AF_INET6, ws::AF_INET6);
    assert_eq!(size_of::<InetAddress>(), size_of::<ws::SOCKADDR_INET>());
    assert_eq!(size_of::<InetAddress>(), size_of::<ws::SOCKADDR_IN6>());
    assert_eq!(
        core::mem::align_of::<InetAddress>(),
        core::mem::align_of::<ws::SOCKADDR_INET>()
    );
    assert_eq!(size_of::<ws::SOCKADDR_IN>(), 16);
    assert_eq!(offset_of!(ws::SOCKADDR_IN, sin_port), 2);
    assert_eq!(offset_of!(ws::SOCKADDR_IN, sin_addr), 4);
    assert_eq!(offset_of!(ws::SOCKADDR_IN, sin_zero), 8);
    assert_eq!(offset_of!(ws::SOCKADDR_IN6, sin6_port), 2);
    assert_eq!(offset_of!(ws::SOCKADDR_IN6, sin6_flowinfo), 4);
    assert_eq!(offset_of!(ws::SOCKADDR_IN6, sin6_addr), 8);
    assert_eq!(offset_of!(ws::SOCKADDR_IN6, Anonymous), 24);

    // Decode our bytes as Windows' structs.
    let v6: core::net::SocketAddr = "[2001:db8::2]:443".parse().unwrap();
    let inet = InetAddress::from(v6);
    // SAFETY: InetAddress and SOCKADDR_IN6 are both 28-byte plain-old-data
    // structs (sizes asserted above), every bit pattern is valid for
    // SOCKADDR_IN6, and `read_unaligned` needs no alignment.
    let sin6: ws::SOCKADDR_IN6 =
        unsafe { core::ptr::read_unaligned((&inet as *const InetAddress).cast()) };
    assert_eq!(sin6.sin6_family, ws::AF_INET6);
    assert_eq!(u16::from_be(sin6.sin6_port), 443);
    // SAFETY: IN6_ADDR's union arms are all views of the same 16 bytes.
    let bytes = unsafe { sin6.sin6_addr.u.Byte };
    assert_eq!(
        core::net::Ipv6Addr::from(bytes),
        "2001:db8::2".parse::<core::net::Ipv6Addr>().unwrap()
    );

    let v4: core::net::SocketAddr = "10.1.2.3:53".parse().unwrap();
    let inet = InetAddress::from(v4);
    // SAFETY: SOCKADDR_IN is 16 bytes of plain-old-data, a prefix of the
    // 28-byte InetAddress; `read_unaligned` needs no alignment.
    let sin: ws::SOCKADDR_IN =
        unsafe { core::ptr::read_unaligned((&inet as *const InetAddress).cast()) };
    assert_eq!(sin.sin_family, ws::AF_INET);
    assert_eq!(u16::from_be(sin.sin_port), 53);
    // SAFETY: IN_ADDR's union arms are all views of the same 4 bytes.
    let addr = unsafe { sin.sin_addr.S_un.S_addr };
    assert_eq!(addr.to_ne_bytes(), [10, 1, 2, 3]);
}
