//! RESOLVE: forward (host name -> addresses, `WskGetAddressInfo` + `WskFreeAddressInfo`) and
//! reverse (address -> host name, `WskGetNameInfo`) name resolution through the WSK provider.
//!
//! The input is a fixed 56-byte [`ResolveRequest`] followed, for a forward query, by the host
//! name as **UTF-8** (`name_length` bytes, no terminating NUL). UTF-8 is our choice: it is what
//! the console app holds, and the driver converts it to the counted UTF-16 `UNICODE_STRING`
//! `WskGetAddressInfo` takes. The output is a 24-byte [`ResolveResponse`] followed by the
//! addresses (`count` [`InetAddress`] entries) or the host name (UTF-8, `name_length` bytes);
//! `IoStatus.Information` is `24 +` those bytes.
//!
//! An unresolvable host name fails with `STATUS_NO_MATCH` ([`STATUS_NO_MATCH`]), the status
//! Microsoft's `WskGetAddressInfo` page lists for "The host name cannot be resolved" (not
//! `STATUS_NOT_FOUND`).
//!
//! Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_free_address_info>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>.

use core::mem::size_of;
use core::net::SocketAddr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::message::{check_zero, parse_request_with_trailer};
use crate::{
    parse_response, ContractError, InetAddress, Operation, Request, RequestHeader, Response,
    ResponseHeader, AF_INET, AF_INET6, AF_UNSPEC,
};

/// `STATUS_NO_MATCH` (0xC000_0272): the host name cannot be resolved (WskGetAddressInfo's
/// return table), or (ntsim's choice for WskGetNameInfo with `NI_NAMEREQD`) the address has
/// no name.
pub use crate::status::STATUS_NO_MATCH;

/// [`ResolveRequest::mode`]: host name -> addresses (`WskGetAddressInfo`).
pub const RESOLVE_FORWARD: u32 = 1;
/// [`ResolveRequest::mode`]: address -> host name (`WskGetNameInfo`).
pub const RESOLVE_REVERSE: u32 = 2;

/// Longest host name of a forward query, in UTF-8 bytes: 255, the limit RFC 1035 (2.3.4)
/// sets on a domain name (our choice to apply it to the text form). Longer:
/// `STATUS_INVALID_BUFFER_SIZE`. Source: <https://www.rfc-editor.org/rfc/rfc1035#section-2.3.4>
pub const MAX_RESOLVE_NAME_BYTES: usize = 255;
/// Most addresses one response carries: 64 (the `wsk` crate's `MAX_ADDRESSES`; the rest of
/// the provider's list is freed unread).
pub const MAX_RESOLVE_ADDRESSES: usize = 64;
/// Longest host name a reverse response carries, in UTF-8 bytes: 3072, three bytes for each
/// of the 1024 UTF-16 units a 1025-unit (`NI_MAXHOST`, NUL included) buffer can return.
pub const MAX_RESOLVED_NAME_BYTES: usize = 3 * 1024;
/// Largest RESOLVE input buffer: the fixed part plus [`MAX_RESOLVE_NAME_BYTES`]. A front-end
/// copying the input out of the system buffer must accept this many bytes for this IOCTL.
pub const MAX_RESOLVE_INPUT: usize = ResolveRequest::SIZE + MAX_RESOLVE_NAME_BYTES;
/// An output buffer this large holds any RESOLVE response (24 + 3072 bytes).
pub const MAX_RESOLVE_OUTPUT: usize = ResolveResponse::SIZE + {
    let a = MAX_RESOLVE_ADDRESSES * InetAddress::SIZE;
    if a > MAX_RESOLVED_NAME_BYTES {
        a
    } else {
        MAX_RESOLVED_NAME_BYTES
    }
};

/// Input of [`crate::IOCTL_WSKCLIENT_RESOLVE`]: 56 bytes, then (forward) `name_length` bytes of
/// UTF-8 host name. The input length must be exactly `56 + name_length`.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` (`flags` = 0) |
/// | 8      | 4    | `mode`: [`RESOLVE_FORWARD`] or [`RESOLVE_REVERSE`]; others: `STATUS_INVALID_PARAMETER` |
/// | 12     | 2    | `family`: forward: the hint, `AF_UNSPEC` (both), `AF_INET` or `AF_INET6`, others `STATUS_INVALID_ADDRESS_COMPONENT`; reverse: 0 |
/// | 14     | 2    | `port`: forward: the service, a port number in host order passed as its decimal string (`ServiceName`), 0 = none; reverse: 0 |
/// | 16     | 4    | `name_length`: forward: 1 ..= [`MAX_RESOLVE_NAME_BYTES`]; reverse: 0 |
/// | 20     | 4    | `reserved`, 0 |
/// | 24     | 28   | `address`: reverse: the `AF_INET`/`AF_INET6` address to name (its port is ignored); forward: `AF_UNSPEC` (all zero) |
/// | 52     | 4    | `reserved2`, 0 |
/// | 56     | `name_length` | forward: the host name or numeric address, UTF-8, no NUL |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ResolveRequest {
    /// Common header.
    pub header: RequestHeader,
    /// `RESOLVE_FORWARD` or `RESOLVE_REVERSE`.
    pub mode: u32,
    /// Family hint (forward).
    pub family: u16,
    /// Service port (forward), host order; 0 = none.
    pub port: u16,
    /// Bytes of host name after this struct (forward).
    pub name_length: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Address to name (reverse).
    pub address: InetAddress,
    /// Must be 0.
    pub reserved2: u32,
}

impl ResolveRequest {
    /// Size of the fixed part in bytes.
    pub const SIZE: usize = 56;

    /// The fixed part of a forward query for a `name_length`-byte name.
    pub const fn forward(name_length: u32, port: u16, family: u16) -> Self {
        ResolveRequest {
            header: RequestHeader::CURRENT,
            mode: RESOLVE_FORWARD,
            family,
            port,
            name_length,
            reserved: 0,
            address: InetAddress::UNSPECIFIED,
            reserved2: 0,
        }
    }

    /// A reverse query for `address`.
    pub const fn reverse(address: &SocketAddr) -> Self {
        ResolveRequest {
            header: RequestHeader::CURRENT,
            mode: RESOLVE_REVERSE,
            family: AF_UNSPEC,
            port: 0,
            name_length: 0,
            reserved: 0,
            address: InetAddress::from_socket_addr(address),
            reserved2: 0,
        }
    }
}

impl Request for ResolveRequest {
    const OPERATION: Operation = Operation::Resolve;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_zero(self.reserved)?;
        check_zero(self.reserved2)?;
        match self.mode {
            RESOLVE_FORWARD => {
                if !matches!(self.family, AF_UNSPEC | AF_INET | AF_INET6) {
                    return Err(ContractError::UnknownAddressFamily {
                        family: self.family,
                    });
                }
                if self.address != InetAddress::UNSPECIFIED {
                    return Err(ContractError::ReservedNonZero);
                }
                if self.name_length == 0 {
                    return Err(ContractError::ZeroLength);
                }
                Ok(())
            }
            RESOLVE_REVERSE => {
                if self.family != 0 || self.port != 0 || self.name_length != 0 {
                    return Err(ContractError::ReservedNonZero);
                }
                self.address.to_socket_addr().map(|_| ())
            }
            _ => Err(ContractError::ReservedNonZero),
        }
    }
}

/// A parsed RESOLVE input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveQuery<'a> {
    /// Host name -> addresses.
    Forward {
        /// The host name or numeric address (UTF-8, no NUL, 1 ..= 255 bytes).
        name: &'a str,
        /// The service port, if any.
        port: Option<u16>,
        /// The family hint: `AF_UNSPEC`, `AF_INET` or `AF_INET6`.
        family: u16,
    },
    /// Address -> host name.
    Reverse {
        /// The address to name.
        address: SocketAddr,
    },
}

/// Parses a RESOLVE input buffer. Checks, in this order (the first failure wins):
/// 1. the 56-byte fixed part with [`parse_request`]'s checks, then per mode: unknown mode,
///    non-zero reserved fields or fields of the other mode: [`ContractError::ReservedNonZero`]
///    (`STATUS_INVALID_PARAMETER`); a bad family hint or reverse address family:
///    [`ContractError::UnknownAddressFamily`] (`STATUS_INVALID_ADDRESS_COMPONENT`); an empty
///    forward name: [`ContractError::ZeroLength`] (`STATUS_INVALID_PARAMETER`);
/// 2. `name_length > MAX_RESOLVE_NAME_BYTES`: [`ContractError::DataTooLarge`]
///    (`STATUS_INVALID_BUFFER_SIZE`);
/// 3. the input length against `56 + name_length`: shorter
///    [`ContractError::BufferTooSmall`], longer [`ContractError::OversizedInput`];
/// 4. a name that is not UTF-8 or contains a NUL: [`ContractError::ReservedNonZero`]
///    (`STATUS_INVALID_PARAMETER`).
pub fn parse_resolve(input: &[u8]) -> Result<ResolveQuery<'_>, ContractError> {
    let (request, bytes) =
        parse_request_with_trailer(input, MAX_RESOLVE_NAME_BYTES, |r: &ResolveRequest| {
            r.name_length as usize
        })?;
    if request.mode == RESOLVE_REVERSE {
        return Ok(ResolveQuery::Reverse {
            address: request.address.to_socket_addr()?,
        });
    }
    let name = core::str::from_utf8(bytes).map_err(|_| ContractError::ReservedNonZero)?;
    if name.contains('\0') {
        return Err(ContractError::ReservedNonZero);
    }
    Ok(ResolveQuery::Forward {
        name,
        port: if request.port == 0 {
            None
        } else {
            Some(request.port)
        },
        family: request.family,
    })
}

/// Builds a forward RESOLVE input into `out` (the app's side); returns its length.
///
/// Errors: [`ContractError::ZeroLength`] for an empty name, [`ContractError::DataTooLarge`]
/// for a name over [`MAX_RESOLVE_NAME_BYTES`], [`ContractError::BufferTooSmall`] when `out`
/// is too short. Nothing is checked that the driver checks again (families, NULs).
pub fn encode_resolve_forward(
    name: &str,
    port: u16,
    family: u16,
    out: &mut [u8],
) -> Result<usize, ContractError> {
    if name.is_empty() {
        return Err(ContractError::ZeroLength);
    }
    if name.len() > MAX_RESOLVE_NAME_BYTES {
        return Err(ContractError::DataTooLarge {
            max: MAX_RESOLVE_NAME_BYTES,
            actual: name.len(),
        });
    }
    let total = ResolveRequest::SIZE + name.len();
    let actual = out.len();
    let dst = out.get_mut(..total).ok_or(ContractError::BufferTooSmall {
        expected: total,
        actual,
    })?;
    let (fixed, rest) = dst.split_at_mut(ResolveRequest::SIZE);
    fixed.copy_from_slice(ResolveRequest::forward(name.len() as u32, port, family).as_bytes());
    rest.copy_from_slice(name.as_bytes());
    Ok(total)
}

/// Output of [`crate::IOCTL_WSKCLIENT_RESOLVE`]: 24 bytes, then `count` [`InetAddress`]
/// entries (forward) or `name_length` bytes of UTF-8 host name (reverse, no NUL).
/// `IoStatus.Information` = `24 + 28 * count + name_length`.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0      | 8    | `header` ([`ResponseHeader`], `size` = 24: the fixed part) |
/// | 8      | 4    | `mode`: the request's |
/// | 12     | 4    | `count`: addresses that follow (forward), in the provider's order, duplicates removed |
/// | 16     | 4    | `total`: addresses the driver got (forward); more than `count` when the output buffer or [`MAX_RESOLVE_ADDRESSES`] cut the list |
/// | 20     | 4    | `name_length`: bytes of host name that follow (reverse) |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ResolveResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// `RESOLVE_FORWARD` or `RESOLVE_REVERSE`.
    pub mode: u32,
    /// Addresses that follow.
    pub count: u32,
    /// Addresses found.
    pub total: u32,
    /// Name bytes that follow.
    pub name_length: u32,
}

impl ResolveResponse {
    /// Size of the fixed part in bytes.
    pub const SIZE: usize = 24;
}

impl Response for ResolveResponse {
    const OPERATION: Operation = Operation::Resolve;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// Writes a forward response for `addresses` into `output` (the driver's side): as many
/// addresses as fit in `output` (at most [`MAX_RESOLVE_ADDRESSES`]), `total` =
/// `addresses.len()`. Returns the bytes written (`IoStatus.Information`).
///
/// Errors: [`ContractError::BufferTooSmall`] when `output` is shorter than 24 bytes.
pub fn write_resolve_addresses(
    output: &mut [u8],
    addresses: &[SocketAddr],
) -> Result<usize, ContractError> {
    let actual = output.len();
    let room = actual
        .checked_sub(ResolveResponse::SIZE)
        .ok_or(ContractError::BufferTooSmall {
            expected: ResolveResponse::SIZE,
            actual,
        })?;
    let count = addresses
        .len()
        .min(MAX_RESOLVE_ADDRESSES)
        .min(room / InetAddress::SIZE);
    let (head, tail) = output.split_at_mut(ResolveResponse::SIZE);
    for (a, dst) in addresses
        .iter()
        .zip(tail.chunks_exact_mut(InetAddress::SIZE))
        .take(count)
    {
        dst.copy_from_slice(InetAddress::from_socket_addr(a).as_bytes());
    }
    let response = ResolveResponse {
        header: ResponseHeader::for_response::<ResolveResponse>(),
        mode: RESOLVE_FORWARD,
        count: count as u32,
        total: addresses.len().min(u32::MAX as usize) as u32,
        name_length: 0,
    };
    head.copy_from_slice(response.as_bytes());
    Ok(ResolveResponse::SIZE + count * InetAddress::SIZE)
}

/// Writes a reverse response carrying `name` into `output` (the driver's side). Returns the
/// bytes written (`IoStatus.Information`).
///
/// Errors: [`ContractError::DataTooLarge`] for a name over [`MAX_RESOLVED_NAME_BYTES`],
/// [`ContractError::BufferTooSmall`] when `output` cannot hold `24 + name.len()` bytes
/// (nothing is written).
pub fn write_resolve_name(output: &mut [u8], name: &str) -> Result<usize, ContractError> {
    if name.len() > MAX_RESOLVED_NAME_BYTES {
        return Err(ContractError::DataTooLarge {
            max: MAX_RESOLVED_NAME_BYTES,
            actual: name.len(),
        });
    }
    let total = ResolveResponse::SIZE + name.len();
    let actual = output.len();
    let dst = output
        .get_mut(..total)
        .ok_or(ContractError::BufferTooSmall {
            expected: total,
            actual,
        })?;
    let (head, tail) = dst.split_at_mut(ResolveResponse::SIZE);
    let response = ResolveResponse {
        header: ResponseHeader::for_response::<ResolveResponse>(),
        mode: RESOLVE_REVERSE,
        count: 0,
        total: 0,
        name_length: name.len() as u32,
    };
    head.copy_from_slice(response.as_bytes());
    tail.copy_from_slice(name.as_bytes());
    Ok(total)
}

/// A parsed RESOLVE output (the app's side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolveReply<'a> {
    /// The fixed part.
    pub response: ResolveResponse,
    tail: &'a [u8],
}

impl<'a> ResolveReply<'a> {
    /// The addresses of a forward response (empty for a reverse one), each decoded.
    pub fn addresses(&self) -> impl Iterator<Item = Result<SocketAddr, ContractError>> + 'a {
        let tail = if self.response.mode == RESOLVE_FORWARD {
            self.tail
        } else {
            &[]
        };
        tail.chunks_exact(InetAddress::SIZE).map(|c| {
            InetAddress::read_from_bytes(c)
                .map_err(|_| ContractError::BufferTooSmall {
                    expected: InetAddress::SIZE,
                    actual: c.len(),
                })?
                .to_socket_addr()
        })
    }

    /// The host name of a reverse response (`""` for a forward one).
    ///
    /// Errors: [`ContractError::ReservedNonZero`] when the bytes are not UTF-8.
    pub fn name(&self) -> Result<&'a str, ContractError> {
        if self.response.mode != RESOLVE_REVERSE {
            return Ok("");
        }
        core::str::from_utf8(self.tail).map_err(|_| ContractError::ReservedNonZero)
    }
}

/// Parses the first `IoStatus.Information` bytes of a RESOLVE output buffer.
///
/// Errors: those of [`parse_response`] on the 24-byte fixed part; then
/// [`ContractError::BufferTooSmall`] / [`ContractError::OversizedInput`] when the bytes after
/// it are not exactly `28 * count + name_length`, [`ContractError::ReservedNonZero`] when
/// `mode` is unknown or a forward response carries a name / a reverse one addresses.
pub fn parse_resolve_response(written: &[u8]) -> Result<ResolveReply<'_>, ContractError> {
    let head = written.get(..ResolveResponse::SIZE).unwrap_or(written);
    let response: ResolveResponse = parse_response(head)?;
    let valid = match response.mode {
        RESOLVE_FORWARD => response.name_length == 0 && response.count <= response.total,
        RESOLVE_REVERSE => response.count == 0 && response.total == 0,
        _ => false,
    };
    if !valid {
        return Err(ContractError::ReservedNonZero);
    }
    let expected = (response.count as usize)
        .checked_mul(InetAddress::SIZE)
        .and_then(|n| n.checked_add(response.name_length as usize))
        .and_then(|n| n.checked_add(ResolveResponse::SIZE))
        .ok_or(ContractError::OversizedInput {
            expected: usize::MAX,
            actual: written.len(),
        })?;
    if written.len() < expected {
        return Err(ContractError::BufferTooSmall {
            expected,
            actual: written.len(),
        });
    }
    if written.len() > expected {
        return Err(ContractError::OversizedInput {
            expected,
            actual: written.len(),
        });
    }
    Ok(ResolveReply {
        response,
        tail: written.get(ResolveResponse::SIZE..).unwrap_or(&[]),
    })
}

const _: () = assert!(size_of::<ResolveRequest>() == ResolveRequest::SIZE);
const _: () = assert!(size_of::<ResolveResponse>() == ResolveResponse::SIZE);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::status::*;
    use core::mem::offset_of;
    use std::vec::Vec;

    fn forward(name: &str, port: u16, family: u16) -> Vec<u8> {
        let mut v = std::vec![0u8; ResolveRequest::SIZE + name.len()];
        assert_eq!(
            encode_resolve_forward(name, port, family, &mut v),
            Ok(v.len())
        );
        v
    }

    #[test]
    fn layouts() {
        assert_eq!(size_of::<ResolveRequest>(), 56);
        assert_eq!(offset_of!(ResolveRequest, mode), 8);
        assert_eq!(offset_of!(ResolveRequest, family), 12);
        assert_eq!(offset_of!(ResolveRequest, port), 14);
        assert_eq!(offset_of!(ResolveRequest, name_length), 16);
        assert_eq!(offset_of!(ResolveRequest, address), 24);
        assert_eq!(offset_of!(ResolveRequest, reserved2), 52);
        assert_eq!(size_of::<ResolveResponse>(), 24);
        assert_eq!(offset_of!(ResolveResponse, count), 12);
        assert_eq!(offset_of!(ResolveResponse, total), 16);
        assert_eq!(offset_of!(ResolveResponse, name_length), 20);
        assert_eq!(MAX_RESOLVE_INPUT, 56 + 255);
        assert_eq!(MAX_RESOLVE_OUTPUT, 24 + 3072);
        assert_eq!(STATUS_NO_MATCH as u32, 0xC000_0272);
    }

    #[test]
    fn forward_and_reverse_round_trip() {
        let input = forward("localhost", 80, AF_INET6);
        assert_eq!(
            parse_resolve(&input),
            Ok(ResolveQuery::Forward {
                name: "localhost",
                port: Some(80),
                family: AF_INET6
            })
        );
        let input = forward("b\u{fc}cher.example", 0, AF_UNSPEC);
        assert_eq!(
            parse_resolve(&input),
            Ok(ResolveQuery::Forward {
                name: "b\u{fc}cher.example",
                port: None,
                family: AF_UNSPEC
            })
        );
        let long = "a".repeat(MAX_RESOLVE_NAME_BYTES);
        assert!(parse_resolve(&forward(&long, 0, AF_INET)).is_ok());
        let addr: SocketAddr = "[::1]:0".parse().unwrap();
        let r = ResolveRequest::reverse(&addr);
        assert_eq!(
            parse_resolve(r.as_bytes()),
            Ok(ResolveQuery::Reverse { address: addr })
        );

        // Forward response: all fit, then a short buffer keeps `total`.
        let addrs: Vec<SocketAddr> = std::vec!["127.0.0.1:80".parse().unwrap(), addr];
        let mut out = std::vec![0u8; MAX_RESOLVE_OUTPUT];
        let n = write_resolve_addresses(&mut out, &addrs).unwrap();
        assert_eq!(n, 24 + 2 * 28);
        let reply = parse_resolve_response(&out[..n]).unwrap();
        assert_eq!((reply.response.count, reply.response.total), (2, 2));
        let got: Vec<SocketAddr> = reply.addresses().map(|a| a.unwrap()).collect();
        assert_eq!(got, addrs);
        assert_eq!(reply.name(), Ok(""));
        let mut small = [0u8; 24 + 28 + 27];
        let n = write_resolve_addresses(&mut small, &addrs).unwrap();
        let reply = parse_resolve_response(&small[..n]).unwrap();
        assert_eq!((reply.response.count, reply.response.total), (1, 2));
        assert!(write_resolve_addresses(&mut [0u8; 23], &addrs).is_err());
        let many: Vec<SocketAddr> = (0..100u16)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let n = write_resolve_addresses(&mut out, &many).unwrap();
        let reply = parse_resolve_response(&out[..n]).unwrap();
        assert_eq!(reply.response.count as usize, MAX_RESOLVE_ADDRESSES);
        assert_eq!(reply.response.total, 100);

        // Reverse response.
        let n = write_resolve_name(&mut out, "localhost").unwrap();
        assert_eq!(n, 24 + 9);
        let reply = parse_resolve_response(&out[..n]).unwrap();
        assert_eq!(reply.name(), Ok("localhost"));
        assert_eq!(reply.addresses().count(), 0);
        assert!(write_resolve_name(&mut [0u8; 32], "localhost").is_err());
    }

    #[test]
    fn bad_inputs() {
        let st = |input: &[u8]| parse_resolve(input).unwrap_err().ntstatus();
        let good = forward("localhost", 0, AF_UNSPEC);
        assert_eq!(st(&good[..good.len() - 1]), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(st(&good[..55]), STATUS_BUFFER_TOO_SMALL);
        let mut long = good.clone();
        long.push(b'x');
        assert_eq!(st(&long), STATUS_INVALID_BUFFER_SIZE);
        // Name too long, empty, not UTF-8, with a NUL.
        let mut big = good.clone();
        big[16..20].copy_from_slice(&256u32.to_ne_bytes());
        assert_eq!(st(&big), STATUS_INVALID_BUFFER_SIZE);
        let empty = ResolveRequest::forward(0, 0, AF_UNSPEC);
        assert_eq!(st(empty.as_bytes()), STATUS_INVALID_PARAMETER);
        let mut bad_utf8 = good.clone();
        bad_utf8[56] = 0xFF;
        assert_eq!(st(&bad_utf8), STATUS_INVALID_PARAMETER);
        let mut nul = good.clone();
        nul[57] = 0;
        assert_eq!(st(&nul), STATUS_INVALID_PARAMETER);
        // Mode, family hint, reserved fields, address on a forward query.
        let mut mode = good.clone();
        mode[8] = 3;
        assert_eq!(st(&mode), STATUS_INVALID_PARAMETER);
        let fam = forward("localhost", 0, 10);
        assert_eq!(st(&fam), STATUS_INVALID_ADDRESS_COMPONENT);
        let mut r = good.clone();
        r[20] = 1;
        assert_eq!(st(&r), STATUS_INVALID_PARAMETER);
        let mut r2 = good.clone();
        r2[52] = 1;
        assert_eq!(st(&r2), STATUS_INVALID_PARAMETER);
        let mut a = good.clone();
        a[24..26].copy_from_slice(&AF_INET.to_ne_bytes());
        assert_eq!(st(&a), STATUS_INVALID_PARAMETER);
        let mut v = good.clone();
        v[0] = 2;
        assert_eq!(st(&v), STATUS_REVISION_MISMATCH);
        // Reverse: AF_UNSPEC address, a family hint, a name.
        let mut rev = ResolveRequest::reverse(&"127.0.0.1:0".parse().unwrap());
        rev.address = InetAddress::UNSPECIFIED;
        assert_eq!(st(rev.as_bytes()), STATUS_INVALID_ADDRESS_COMPONENT);
        let mut rev = ResolveRequest::reverse(&"127.0.0.1:0".parse().unwrap());
        rev.family = AF_INET;
        assert_eq!(st(rev.as_bytes()), STATUS_INVALID_PARAMETER);
        let mut rev = ResolveRequest::reverse(&"127.0.0.1:0".parse().unwrap());
        rev.name_length = 1;
        let mut bytes = Vec::from(rev.as_bytes());
        bytes.push(b'x');
        assert_eq!(st(&bytes), STATUS_INVALID_PARAMETER);
        // Encoder limits.
        let mut out = [0u8; 400];
        assert!(encode_resolve_forward("", 0, 0, &mut out).is_err());
        assert!(encode_resolve_forward(&"a".repeat(256), 0, 0, &mut out).is_err());
        assert!(encode_resolve_forward("localhost", 0, 0, &mut out[..60]).is_err());
    }

    #[test]
    fn bad_responses() {
        let mut out = std::vec![0u8; 200];
        let n = write_resolve_addresses(&mut out, &["127.0.0.1:1".parse().unwrap()]).unwrap();
        // Information shorter / longer than the entries.
        assert!(parse_resolve_response(&out[..n - 1]).is_err());
        assert!(parse_resolve_response(&out[..n + 1]).is_err());
        // A forward response with a name length, an unknown mode.
        let mut bad = out.clone();
        bad[20] = 1;
        assert_eq!(
            parse_resolve_response(&bad[..n + 1]),
            Err(ContractError::ReservedNonZero)
        );
        let mut bad = out.clone();
        bad[8] = 7;
        assert_eq!(
            parse_resolve_response(&bad[..n]),
            Err(ContractError::ReservedNonZero)
        );
        assert!(parse_resolve_response(&out[..10]).is_err());
    }
}
