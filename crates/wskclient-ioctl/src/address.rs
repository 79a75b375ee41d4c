//! [`InetAddress`]: a 28-byte, `SOCKADDR_INET`-compatible IPv4/IPv6 address.
//!
//! Sources: `SOCKADDR_INET`
//! <https://learn.microsoft.com/en-us/windows/win32/api/ws2ipdef/ns-ws2ipdef-sockaddr_inet>,
//! `SOCKADDR_IN` <https://learn.microsoft.com/en-us/windows/win32/api/ws2def/ns-ws2def-sockaddr_in>,
//! `SOCKADDR_IN6` <https://learn.microsoft.com/en-us/windows/win32/api/ws2ipdef/ns-ws2ipdef-sockaddr_in6_lh>.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ContractError;

/// `AF_UNSPEC` (0): "no address"; meaning depends on the field (see each request).
pub const AF_UNSPEC: u16 = 0;
/// `AF_INET` (2): IPv4, the bytes are a `SOCKADDR_IN`.
pub const AF_INET: u16 = 2;
/// `AF_INET6` (23, the Windows value; Linux uses 10): IPv6, the bytes are a `SOCKADDR_IN6`.
pub const AF_INET6: u16 = 23;

/// An IPv4 or IPv6 transport address laid out exactly as Windows' `SOCKADDR_INET`
/// union (28 bytes, 4-byte aligned), so the driver can hand a pointer to it to
/// WSK as a `PSOCKADDR` unchanged.
///
/// Layout (byte offsets):
///
/// | offset | size | `AF_INET` (`SOCKADDR_IN`)         | `AF_INET6` (`SOCKADDR_IN6`)          |
/// |-------:|-----:|-----------------------------------|--------------------------------------|
/// | 0      | 2    | `sin_family` = 2 (native endian)  | `sin6_family` = 23 (native endian)   |
/// | 2      | 2    | `sin_port`, network byte order    | `sin6_port`, network byte order      |
/// | 4      | 4    | `sin_addr`, network byte order    | `sin6_flowinfo` (as stored by the app, like Rust std) |
/// | 8      | 8    | `sin_zero`, must be 0             | `sin6_addr` bytes 0..8               |
/// | 16     | 8    | padding, must be 0                | `sin6_addr` bytes 8..16              |
/// | 24     | 4    | padding, must be 0                | `sin6_scope_id` (native endian)      |
///
/// `AF_UNSPEC` (all 28 bytes zero) is [`InetAddress::UNSPECIFIED`]; the requests
/// say what it means in each field. Any other family is rejected with
/// [`ContractError::UnknownAddressFamily`] (`STATUS_INVALID_ADDRESS_COMPONENT`).
#[repr(C, align(4))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct InetAddress {
    /// `ADDRESS_FAMILY`: [`AF_UNSPEC`], [`AF_INET`] or [`AF_INET6`], native endian.
    pub family: u16,
    /// The port, network byte order (big-endian) bytes.
    pub port: [u8; 2],
    /// The rest of the `SOCKADDR_IN`/`SOCKADDR_IN6`, per the table above.
    pub data: [u8; 24],
}

impl core::fmt::Debug for InetAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.to_socket_addr() {
            Ok(addr) => write!(f, "InetAddress({addr})"),
            Err(_) if self.family == AF_UNSPEC => f.write_str("InetAddress(AF_UNSPEC)"),
            Err(_) => f
                .debug_struct("InetAddress")
                .field("family", &self.family)
                .field("port", &self.port)
                .field("data", &self.data)
                .finish(),
        }
    }
}

impl Default for InetAddress {
    fn default() -> Self {
        Self::UNSPECIFIED
    }
}

impl InetAddress {
    /// Size in bytes: 28, as `sizeof(SOCKADDR_INET)` and `sizeof(SOCKADDR_IN6)`.
    pub const SIZE: usize = 28;

    /// `AF_UNSPEC`, all bytes zero.
    pub const UNSPECIFIED: InetAddress = InetAddress {
        family: AF_UNSPEC,
        port: [0; 2],
        data: [0; 24],
    };

    /// Encodes `addr` as a `SOCKADDR_IN` (V4) or `SOCKADDR_IN6` (V6); infallible.
    pub const fn from_socket_addr(addr: &SocketAddr) -> InetAddress {
        match addr {
            SocketAddr::V4(v4) => Self::from_v4(v4),
            SocketAddr::V6(v6) => Self::from_v6(v6),
        }
    }

    const fn from_v4(addr: &SocketAddrV4) -> InetAddress {
        let ip = addr.ip().octets();
        let mut data = [0u8; 24];
        data[0] = ip[0];
        data[1] = ip[1];
        data[2] = ip[2];
        data[3] = ip[3];
        InetAddress {
            family: AF_INET,
            port: addr.port().to_be_bytes(),
            data,
        }
    }

    const fn from_v6(addr: &SocketAddrV6) -> InetAddress {
        // SOCKADDR_IN6 after the port: sin6_flowinfo (4), sin6_addr (16), sin6_scope_id (4);
        // built by destructuring, so nothing can index out of range.
        let [f0, f1, f2, f3] = addr.flowinfo().to_ne_bytes();
        let [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15] =
            addr.ip().octets();
        let [s0, s1, s2, s3] = addr.scope_id().to_ne_bytes();
        let data = [
            f0, f1, f2, f3, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15,
            s0, s1, s2, s3,
        ];
        InetAddress {
            family: AF_INET6,
            port: addr.port().to_be_bytes(),
            data,
        }
    }

    /// Decodes the address.
    ///
    /// Errors: [`ContractError::UnknownAddressFamily`] for any family other than
    /// `AF_INET`/`AF_INET6` (including `AF_UNSPEC`; use [`Self::to_optional`]
    /// where `AF_UNSPEC` is meaningful), [`ContractError::ReservedNonZero`] when
    /// an IPv4 address has non-zero `sin_zero` or padding (bytes 8..28).
    pub fn to_socket_addr(&self) -> Result<SocketAddr, ContractError> {
        let port = u16::from_be_bytes(self.port);
        match self.family {
            AF_INET => {
                if self.data[4..].iter().any(|&b| b != 0) {
                    return Err(ContractError::ReservedNonZero);
                }
                let ip = Ipv4Addr::new(self.data[0], self.data[1], self.data[2], self.data[3]);
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            AF_INET6 => {
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&self.data[4..20]);
                let flowinfo =
                    u32::from_ne_bytes([self.data[0], self.data[1], self.data[2], self.data[3]]);
                let scope_id = u32::from_ne_bytes([
                    self.data[20],
                    self.data[21],
                    self.data[22],
                    self.data[23],
                ]);
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    flowinfo,
                    scope_id,
                )))
            }
            family => Err(ContractError::UnknownAddressFamily { family }),
        }
    }

    /// Like [`Self::to_socket_addr`], but `AF_UNSPEC` decodes to `None`.
    /// `AF_UNSPEC` must be all zero, else [`ContractError::ReservedNonZero`].
    pub fn to_optional(&self) -> Result<Option<SocketAddr>, ContractError> {
        if self.family == AF_UNSPEC {
            if *self != Self::UNSPECIFIED {
                return Err(ContractError::ReservedNonZero);
            }
            return Ok(None);
        }
        self.to_socket_addr().map(Some)
    }

    /// Encodes `Some(addr)` as [`Self::from_socket_addr`], `None` as [`Self::UNSPECIFIED`].
    pub const fn from_optional(addr: Option<&SocketAddr>) -> InetAddress {
        match addr {
            Some(addr) => Self::from_socket_addr(addr),
            None => Self::UNSPECIFIED,
        }
    }

    /// The wildcard address (`0.0.0.0:0` or `[::]:0`, port 0 = ephemeral) of `family`.
    ///
    /// Errors: [`ContractError::UnknownAddressFamily`] unless `family` is
    /// `AF_INET` or `AF_INET6`.
    pub const fn wildcard(family: u16) -> Result<InetAddress, ContractError> {
        match family {
            AF_INET | AF_INET6 => Ok(InetAddress {
                family,
                port: [0; 2],
                data: [0; 24],
            }),
            family => Err(ContractError::UnknownAddressFamily { family }),
        }
    }

    /// Whether the family is `AF_UNSPEC`.
    pub const fn is_unspecified(&self) -> bool {
        self.family == AF_UNSPEC
    }

    /// The port in host byte order.
    pub const fn port(&self) -> u16 {
        u16::from_be_bytes(self.port)
    }

    /// The bytes of the `SOCKADDR` to hand to WSK: 16 (`SOCKADDR_IN`) for
    /// `AF_INET`, 28 (`SOCKADDR_IN6`) for `AF_INET6`, all 28 otherwise.
    pub fn sockaddr_len(&self) -> usize {
        match self.family {
            AF_INET => 16,
            _ => Self::SIZE,
        }
    }
}

impl From<SocketAddr> for InetAddress {
    fn from(addr: SocketAddr) -> Self {
        Self::from_socket_addr(&addr)
    }
}

impl TryFrom<InetAddress> for SocketAddr {
    type Error = ContractError;
    fn try_from(addr: InetAddress) -> Result<Self, ContractError> {
        addr.to_socket_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};
    use zerocopy::IntoBytes;

    #[test]
    fn size_and_alignment_match_sockaddr_inet() {
        assert_eq!(size_of::<InetAddress>(), 28);
        assert_eq!(align_of::<InetAddress>(), 4);
    }

    #[test]
    fn ipv4_layout_and_round_trip() {
        let addr: SocketAddr = "192.0.2.1:9".parse().unwrap();
        let inet = InetAddress::from(addr);
        let mut expected = [0u8; 28];
        expected[..2].copy_from_slice(&2u16.to_ne_bytes());
        expected[2..4].copy_from_slice(&[0, 9]);
        expected[4..8].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(inet.as_bytes(), &expected);
        assert_eq!(inet.to_socket_addr(), Ok(addr));
        assert_eq!(inet.port(), 9);
        assert_eq!(inet.sockaddr_len(), 16);
    }

    #[test]
    fn ipv6_layout_and_round_trip() {
        let addr = SocketAddr::V6(SocketAddrV6::new(
            "2001:db8::1".parse().unwrap(),
            0x1234,
            0x0A0B_0C0D,
            7,
        ));
        let inet = InetAddress::from(addr);
        let bytes = inet.as_bytes();
        assert_eq!(&bytes[..2], &23u16.to_ne_bytes());
        assert_eq!(&bytes[2..4], &[0x12, 0x34]);
        assert_eq!(&bytes[4..8], &0x0A0B_0C0Du32.to_ne_bytes());
        assert_eq!(
            bytes[8..24],
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(&bytes[24..28], &7u32.to_ne_bytes());
        assert_eq!(SocketAddr::try_from(inet), Ok(addr));
        assert_eq!(inet.sockaddr_len(), 28);
    }

    #[test]
    fn unspecified_and_unknown_families() {
        assert_eq!(InetAddress::UNSPECIFIED.as_bytes(), &[0u8; 28]);
        assert_eq!(InetAddress::UNSPECIFIED.to_optional(), Ok(None));
        assert_eq!(
            InetAddress::UNSPECIFIED.to_socket_addr(),
            Err(ContractError::UnknownAddressFamily { family: 0 })
        );
        let mut linux_v6 = InetAddress::from("[::1]:1".parse::<SocketAddr>().unwrap());
        linux_v6.family = 10; // Linux AF_INET6 is not a Windows family
        assert_eq!(
            linux_v6.to_optional(),
            Err(ContractError::UnknownAddressFamily { family: 10 })
        );
        let mut dirty = InetAddress::UNSPECIFIED;
        dirty.port = [0, 1];
        assert_eq!(dirty.to_optional(), Err(ContractError::ReservedNonZero));
    }

    #[test]
    fn wildcards() {
        let v4 = InetAddress::wildcard(AF_INET).unwrap();
        assert_eq!(v4.to_socket_addr(), Ok("0.0.0.0:0".parse().unwrap()));
        let v6 = InetAddress::wildcard(AF_INET6).unwrap();
        assert_eq!(v6.to_socket_addr(), Ok("[::]:0".parse().unwrap()));
        assert_eq!(
            InetAddress::wildcard(AF_UNSPEC),
            Err(ContractError::UnknownAddressFamily { family: 0 })
        );
    }

    #[test]
    fn ipv4_padding_must_be_zero() {
        let mut inet = InetAddress::from("127.0.0.1:80".parse::<SocketAddr>().unwrap());
        inet.data[23] = 1;
        assert_eq!(inet.to_socket_addr(), Err(ContractError::ReservedNonZero));
        inet.data[23] = 0;
        inet.data[4] = 1; // sin_zero[0]
        assert_eq!(inet.to_socket_addr(), Err(ContractError::ReservedNonZero));
    }
}
