//! Socket addresses as WSK wants them: Windows `SOCKADDR_IN` (AF_INET = 2, 16 bytes) and
//! `SOCKADDR_IN6` (AF_INET6 = 23, 28 bytes), converted from and to `core::net::SocketAddr`.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use windows_sys::Win32::Networking::WinSock::SOCKADDR;

/// Windows `AF_INET`.
pub const AF_INET: u16 = 2;
/// Windows `AF_INET6`.
pub const AF_INET6: u16 = 23;

/// Storage for a SOCKADDR_IN or SOCKADDR_IN6, aligned for either.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct SockAddrBuf {
    bytes: [u8; 28],
}

impl SockAddrBuf {
    /// An all-zero (AF_UNSPEC) address.
    pub const fn zeroed() -> Self {
        SockAddrBuf { bytes: [0; 28] }
    }

    /// Encodes `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let mut b = [0u8; 28];
        match addr {
            SocketAddr::V4(a) => {
                let [f0, f1] = AF_INET.to_le_bytes();
                let [p0, p1] = a.port().to_be_bytes();
                let [o0, o1, o2, o3] = a.ip().octets();
                b[..8].copy_from_slice(&[f0, f1, p0, p1, o0, o1, o2, o3]);
            }
            SocketAddr::V6(a) => {
                let mut head = [0u8; 8];
                head[..2].copy_from_slice(&AF_INET6.to_le_bytes());
                head[2..4].copy_from_slice(&a.port().to_be_bytes());
                head[4..].copy_from_slice(&a.flowinfo().to_be_bytes());
                b[..8].copy_from_slice(&head);
                b[8..24].copy_from_slice(&a.ip().octets());
                b[24..].copy_from_slice(&a.scope_id().to_le_bytes());
            }
        }
        SockAddrBuf { bytes: b }
    }

    /// The wildcard address (`0.0.0.0:0` or `[::]:0`) of `addr`'s family.
    pub fn unspecified_like(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => {
                Self::new(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))
            }
            SocketAddr::V6(_) => Self::new(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::UNSPECIFIED,
                0,
                0,
                0,
            ))),
        }
    }

    /// Decodes the address, or `None` for an unknown family.
    pub fn get(&self) -> Option<SocketAddr> {
        let b = &self.bytes;
        let family = u16::from_le_bytes([b[0], b[1]]);
        let port = u16::from_be_bytes([b[2], b[3]]);
        match family {
            AF_INET => Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(b[4], b[5], b[6], b[7]),
                port,
            ))),
            AF_INET6 => {
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&b[8..24]);
                let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
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

    /// The byte length of the encoded family (16 or 28; 28 for unknown).
    pub fn len(&self) -> usize {
        if u16::from_le_bytes([self.bytes[0], self.bytes[1]]) == AF_INET {
            16
        } else {
            28
        }
    }

    /// True for AF_UNSPEC storage.
    pub fn is_empty(&self) -> bool {
        self.bytes[0] == 0 && self.bytes[1] == 0
    }

    /// The address as a `PSOCKADDR` for WSK calls.
    pub fn as_mut_ptr(&mut self) -> *mut SOCKADDR {
        self.bytes.as_mut_ptr() as *mut SOCKADDR
    }
}

/// The Windows address family of `addr`.
pub fn family_of(addr: &SocketAddr) -> u16 {
    if addr.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}
