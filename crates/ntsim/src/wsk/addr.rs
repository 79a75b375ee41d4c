//! Windows `SOCKADDR_IN` / `SOCKADDR_IN6` (AF_INET = 2, AF_INET6 = 23) to and from host
//! socket addresses.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use windows_sys::Win32::Networking::WinSock::SOCKADDR;

/// Windows `AF_INET`.
pub const AF_INET: u16 = 2;
/// Windows `AF_INET6`.
pub const AF_INET6: u16 = 23;
/// `sizeof(SOCKADDR_IN)`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(SOCKADDR_IN6)`.
pub const SOCKADDR_IN6_LEN: usize = 28;

/// Reads a Windows SOCKADDR. Returns `None` for NULL or an unknown family.
///
/// # Safety
/// `sa`, if not NULL, points to a SOCKADDR_IN or SOCKADDR_IN6 of the family it names.
pub unsafe fn read(sa: *const SOCKADDR) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    let p = sa as *const u8;
    // SAFETY: caller contract: at least the family field is readable.
    let family = unsafe { u16::from_le_bytes([*p, *p.add(1)]) };
    let mut b = [0u8; SOCKADDR_IN6_LEN];
    match family {
        AF_INET => {
            // SAFETY: a SOCKADDR_IN is 16 bytes.
            unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), SOCKADDR_IN_LEN) };
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        AF_INET6 => {
            // SAFETY: a SOCKADDR_IN6 is 28 bytes.
            unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), SOCKADDR_IN6_LEN) };
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[8..24]);
            let scope = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

/// The bytes of a Windows SOCKADDR for `addr` (16 bytes for IPv4, 28 for IPv6).
pub fn encode(addr: &SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = vec![0u8; SOCKADDR_IN_LEN];
            b[0..2].copy_from_slice(&AF_INET.to_le_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![0u8; SOCKADDR_IN6_LEN];
            b[0..2].copy_from_slice(&AF_INET6.to_le_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&a.scope_id().to_le_bytes());
            b
        }
    }
}

/// Writes `addr` as a Windows SOCKADDR.
///
/// # Safety
/// `sa` points to writable storage large enough for the family (16 or 28 bytes).
pub unsafe fn write(sa: *mut SOCKADDR, addr: &SocketAddr) {
    let b = encode(addr);
    // SAFETY: caller contract.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), sa as *mut u8, b.len()) };
}
