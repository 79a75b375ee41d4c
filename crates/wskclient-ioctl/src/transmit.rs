//! TRANSMIT_FILE and TRANSMIT_PACKETS: the kernel counterparts of Winsock's `TransmitFile`
//! (<https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nf-mswsock-transmitfile>) and
//! `TransmitPackets`
//! (<https://learn.microsoft.com/en-us/windows/win32/api/mswsock/nc-mswsock-lpfn_transmitpackets>).
//!
//! Both are `METHOD_BUFFERED` requests whose input is a fixed 64-byte struct followed by
//! variable data (head and tail bytes; the element array and memory-element bytes). The socket
//! handle sits at bytes 8..16 as in every request (the WDM front-end's cancel routine reads
//! it there). Parsing is by copy; offsets and lengths are checked with overflow-checked
//! arithmetic; the input length must equal exactly what the fixed struct announces.
//! The output is [`TransmitResponse`] (24 bytes).

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::message::check_handle;
use crate::status::*;
use crate::{
    parse_request, ContractError, InetAddress, Operation, Request, RequestHeader, Response,
    ResponseHeader, SocketHandle,
};

/// Largest whole input buffer of a transmit request (1 MiB): bounds the inline head, tail and
/// memory-element bytes the driver copies into nonpaged pool. Larger:
/// `STATUS_INVALID_BUFFER_SIZE`.
pub const MAX_TRANSMIT_INPUT: usize = 1 << 20;
/// Largest per-send block (`block_size` / `send_size`): 1 MiB. Larger:
/// `STATUS_INVALID_PARAMETER`.
pub const MAX_TRANSMIT_BLOCK: u32 = 1 << 20;
/// The block size used when the request says 0: 64 KiB (our choice: large enough that the
/// per-send IRP cost is small, small enough that the two nonpaged blocks of a transfer cost
/// 128 KiB of pool).
pub const DEFAULT_TRANSMIT_BLOCK: u32 = 64 << 10;
/// Most elements of one TRANSMIT_PACKETS request: 4096. More: `STATUS_INTEGER_OVERFLOW`.
pub const MAX_TRANSMIT_ELEMENTS: u32 = 4096;

/// `flags` bit: graceful `WskDisconnect` after the last byte (`TF_DISCONNECT`).
pub const TRANSMIT_DISCONNECT: u32 = 0x1;
/// `flags` bit: `TF_REUSE_SOCKET`; valid only with [`TRANSMIT_DISCONNECT`]. WSK cannot reuse
/// a socket: the driver disconnects, then closes the socket and frees its handle, and sets
/// [`TRANSMIT_SOCKET_CLOSED`] in the response (docs/ioctl.md, "Reuse").
pub const TRANSMIT_REUSE_SOCKET: u32 = 0x2;
const KNOWN_FLAGS: u32 = TRANSMIT_DISCONNECT | TRANSMIT_REUSE_SOCKET;

/// Response `flags` bit: the driver closed the socket and freed its handle (reuse asked).
pub const TRANSMIT_SOCKET_CLOSED: u32 = 0x1;

/// Element flag: a memory element, `TP_ELEMENT_MEMORY` (1).
pub const ELEMENT_MEMORY: u32 = 0x1;
/// Element flag: a file range, `TP_ELEMENT_FILE` (2).
pub const ELEMENT_FILE: u32 = 0x2;
/// Element flag: end of packet after this element, `TP_ELEMENT_EOP` (4).
pub const ELEMENT_EOP: u32 = 0x4;

/// Why a transmit request is malformed, each with its own NTSTATUS ([`TransmitError::ntstatus`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransmitError {
    /// A generic contract error (header, sizes, handle form).
    Contract(ContractError),
    /// The input is longer than [`MAX_TRANSMIT_INPUT`]: `STATUS_INVALID_BUFFER_SIZE`.
    InputTooLarge,
    /// Unknown `flags` bits, or reuse without disconnect: `STATUS_INVALID_PARAMETER`.
    BadFlags,
    /// Block size above [`MAX_TRANSMIT_BLOCK`]: `STATUS_INVALID_PARAMETER`.
    BlockTooLarge,
    /// Element count above [`MAX_TRANSMIT_ELEMENTS`], or sizes that overflow:
    /// `STATUS_INTEGER_OVERFLOW`.
    CountOverflow,
    /// An element with no kind, both kinds or unknown bits, a memory range outside the data
    /// area, or a non-zero reserved field: `STATUS_INVALID_PARAMETER`.
    BadElement,
    /// The input length differs from what the fixed part announces: `STATUS_BUFFER_TOO_SMALL`
    /// (shorter) or `STATUS_INVALID_BUFFER_SIZE` (longer).
    Length {
        /// Bytes the fixed part announces.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

impl TransmitError {
    /// The NTSTATUS the driver completes the request with.
    pub const fn ntstatus(self) -> i32 {
        match self {
            TransmitError::Contract(e) => e.ntstatus(),
            TransmitError::InputTooLarge => STATUS_INVALID_BUFFER_SIZE,
            TransmitError::BadFlags | TransmitError::BlockTooLarge | TransmitError::BadElement => {
                STATUS_INVALID_PARAMETER
            }
            TransmitError::CountOverflow => STATUS_INTEGER_OVERFLOW,
            TransmitError::Length { expected, actual } => {
                if actual < expected {
                    STATUS_BUFFER_TOO_SMALL
                } else {
                    STATUS_INVALID_BUFFER_SIZE
                }
            }
        }
    }
}

impl From<ContractError> for TransmitError {
    fn from(e: ContractError) -> Self {
        TransmitError::Contract(e)
    }
}

pub use crate::status::{STATUS_END_OF_FILE, STATUS_INTEGER_OVERFLOW, STATUS_OBJECT_TYPE_MISMATCH};

/// Input of [`crate::IOCTL_WSKCLIENT_TRANSMIT_FILE`]: 64 bytes, then `head_length` head
/// bytes, then `tail_length` tail bytes (the input length must be exactly
/// `64 + head_length + tail_length`, at most [`MAX_TRANSMIT_INPUT`]).
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0  | 8 | `header` (`flags` = 0) |
/// | 8  | 8 | `handle`: a connected stream socket of this file object |
/// | 16 | 8 | `file_handle`: the caller's file HANDLE (0: head and tail only) |
/// | 24 | 8 | `offset` in the file, bytes |
/// | 32 | 8 | `length` in bytes; 0 = to the end of the file |
/// | 40 | 4 | `block_size`: bytes per send (`nNumberOfBytesPerSend`); 0 = [`DEFAULT_TRANSMIT_BLOCK`] |
/// | 44 | 4 | `flags`: [`TRANSMIT_DISCONNECT`], [`TRANSMIT_REUSE_SOCKET`] |
/// | 48 | 4 | `head_length` |
/// | 52 | 4 | `tail_length` |
/// | 56 | 8 | `reserved`, 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct TransmitFileRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Stream socket.
    pub handle: SocketHandle,
    /// File HANDLE of the caller's process, or 0.
    pub file_handle: u64,
    /// File offset, bytes.
    pub offset: u64,
    /// Bytes of the file to send; 0 = to the end.
    pub length: u64,
    /// Bytes per send; 0 = default.
    pub block_size: u32,
    /// `TRANSMIT_*` flags.
    pub flags: u32,
    /// Head bytes that follow the struct.
    pub head_length: u32,
    /// Tail bytes that follow the head.
    pub tail_length: u32,
    /// Must be 0.
    pub reserved: u64,
}

impl TransmitFileRequest {
    /// Size in bytes.
    pub const SIZE: usize = 64;

    /// A request for `handle` and `file_handle` with everything else 0.
    pub const fn new(handle: SocketHandle, file_handle: u64) -> Self {
        TransmitFileRequest {
            header: RequestHeader::CURRENT,
            handle,
            file_handle,
            offset: 0,
            length: 0,
            block_size: 0,
            flags: 0,
            head_length: 0,
            tail_length: 0,
            reserved: 0,
        }
    }
}

impl Request for TransmitFileRequest {
    const OPERATION: Operation = Operation::TransmitFile;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        if self.reserved != 0 {
            return Err(ContractError::ReservedNonZero);
        }
        check_handle(self.handle)
    }
}

/// A parsed TRANSMIT_FILE input: the fixed part and its head and tail bytes.
#[derive(Clone, Copy, Debug)]
pub struct TransmitFile<'a> {
    /// The fixed part.
    pub request: TransmitFileRequest,
    /// Bytes sent before the file range.
    pub head: &'a [u8],
    /// Bytes sent after the file range.
    pub tail: &'a [u8],
}

fn check_flags(flags: u32) -> Result<(), TransmitError> {
    if flags & !KNOWN_FLAGS != 0
        || (flags & TRANSMIT_REUSE_SOCKET != 0 && flags & TRANSMIT_DISCONNECT == 0)
    {
        return Err(TransmitError::BadFlags);
    }
    Ok(())
}

fn check_block(b: u32) -> Result<(), TransmitError> {
    if b > MAX_TRANSMIT_BLOCK {
        return Err(TransmitError::BlockTooLarge);
    }
    Ok(())
}

/// The fixed prefix of `input` parsed as `T` (header checks of [`parse_request`]).
fn fixed<T: Request>(input: &[u8]) -> Result<T, TransmitError> {
    if input.len() > MAX_TRANSMIT_INPUT {
        return Err(TransmitError::InputTooLarge);
    }
    let prefix = input.get(..size_of::<T>()).unwrap_or(input);
    Ok(parse_request::<T>(prefix)?)
}

/// The effective per-send block size of a request's `block_size`.
pub const fn effective_block(block_size: u32) -> u32 {
    if block_size == 0 {
        DEFAULT_TRANSMIT_BLOCK
    } else {
        block_size
    }
}

/// Parses a TRANSMIT_FILE input buffer. Checks, in order: header and size
/// ([`parse_request`]'s errors, on the 64-byte prefix; [`TransmitError::InputTooLarge`]),
/// flags, block size, then the exact total length.
pub fn parse_transmit_file(input: &[u8]) -> Result<TransmitFile<'_>, TransmitError> {
    let request: TransmitFileRequest = fixed(input)?;
    check_flags(request.flags)?;
    check_block(request.block_size)?;
    let head_len = request.head_length as usize;
    let tail_len = request.tail_length as usize;
    let expected = TransmitFileRequest::SIZE
        .checked_add(head_len)
        .and_then(|n| n.checked_add(tail_len))
        .ok_or(TransmitError::CountOverflow)?;
    if input.len() != expected {
        return Err(TransmitError::Length {
            expected,
            actual: input.len(),
        });
    }
    let rest = input.get(TransmitFileRequest::SIZE..).unwrap_or(&[]);
    let (head, tail) = rest.split_at(head_len.min(rest.len()));
    Ok(TransmitFile {
        request,
        head,
        tail,
    })
}

/// Input of [`crate::IOCTL_WSKCLIENT_TRANSMIT_PACKETS`]: 64 bytes, then `element_count`
/// [`TransmitElement`]s (32 bytes each), then the data area holding the memory elements'
/// bytes (`data_length` bytes). The input length must be exactly
/// `64 + 32 * element_count + data_length`.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0  | 8  | `header` (`flags` = 0) |
/// | 8  | 8  | `handle`: a connected stream socket, or a datagram socket |
/// | 16 | 4  | `element_count`: 1 ..= [`MAX_TRANSMIT_ELEMENTS`] |
/// | 20 | 4  | `send_size`: stream: most bytes per send (`nSendSize`), 0 = default; datagram: ignored |
/// | 24 | 4  | `flags`: [`TRANSMIT_DISCONNECT`], [`TRANSMIT_REUSE_SOCKET`] (stream only) |
/// | 28 | 4  | `data_length`: bytes of the data area |
/// | 32 | 28 | `remote_address`: datagram destination; `AF_UNSPEC` = the socket's fixed remote address |
/// | 60 | 4  | `reserved`, 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct TransmitPacketsRequest {
    /// Common header.
    pub header: RequestHeader,
    /// Stream or datagram socket.
    pub handle: SocketHandle,
    /// Elements that follow.
    pub element_count: u32,
    /// Bytes per send on a stream socket; 0 = default.
    pub send_size: u32,
    /// `TRANSMIT_*` flags.
    pub flags: u32,
    /// Bytes of the data area after the elements.
    pub data_length: u32,
    /// Datagram destination, or `AF_UNSPEC`.
    pub remote_address: InetAddress,
    /// Must be 0.
    pub reserved: u32,
}

impl TransmitPacketsRequest {
    /// Size in bytes.
    pub const SIZE: usize = 64;

    /// A request for `handle` with everything else 0 (`AF_UNSPEC` destination).
    pub fn new(handle: SocketHandle) -> Self {
        TransmitPacketsRequest {
            header: RequestHeader::CURRENT,
            handle,
            element_count: 0,
            send_size: 0,
            flags: 0,
            data_length: 0,
            remote_address: InetAddress::from_optional(None),
            reserved: 0,
        }
    }
}

impl Request for TransmitPacketsRequest {
    const OPERATION: Operation = Operation::TransmitPackets;
    fn header(&self) -> &RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), ContractError> {
        if self.reserved != 0 {
            return Err(ContractError::ReservedNonZero);
        }
        check_handle(self.handle)?;
        self.remote_address.to_optional().map(|_| ())
    }
}

/// One element of TRANSMIT_PACKETS (`TRANSMIT_PACKETS_ELEMENT`): 32 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0  | 4 | `flags`: exactly one of [`ELEMENT_MEMORY`], [`ELEMENT_FILE`]; optionally [`ELEMENT_EOP`] |
/// | 4  | 4 | `length`: bytes (memory: 1 ..; file: 0 = to the end of the file) |
/// | 8  | 8 | `offset`: memory: offset in the data area; file: offset in the file |
/// | 16 | 8 | `file_handle` (file elements), else 0 |
/// | 24 | 8 | `reserved`, 0 |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct TransmitElement {
    /// `ELEMENT_*` flags.
    pub flags: u32,
    /// Bytes.
    pub length: u32,
    /// Data-area or file offset.
    pub offset: u64,
    /// File HANDLE of the caller's process.
    pub file_handle: u64,
    /// Must be 0.
    pub reserved: u64,
}

impl TransmitElement {
    /// Size in bytes.
    pub const SIZE: usize = 32;

    /// A memory element of `length` bytes at `offset` in the data area.
    pub const fn memory(offset: u64, length: u32, eop: bool) -> Self {
        TransmitElement {
            flags: ELEMENT_MEMORY | if eop { ELEMENT_EOP } else { 0 },
            length,
            offset,
            file_handle: 0,
            reserved: 0,
        }
    }

    /// A file element: `length` bytes (0: to the end) at `offset` of `file_handle`.
    pub const fn file(file_handle: u64, offset: u64, length: u32, eop: bool) -> Self {
        TransmitElement {
            flags: ELEMENT_FILE | if eop { ELEMENT_EOP } else { 0 },
            length,
            offset,
            file_handle,
            reserved: 0,
        }
    }

    /// True for a file element.
    pub const fn is_file(&self) -> bool {
        self.flags & ELEMENT_FILE != 0
    }

    /// True when a packet ends after this element.
    pub const fn is_eop(&self) -> bool {
        self.flags & ELEMENT_EOP != 0
    }
}

/// A parsed TRANSMIT_PACKETS input.
#[derive(Clone, Copy, Debug)]
pub struct TransmitPackets<'a> {
    /// The fixed part.
    pub request: TransmitPacketsRequest,
    elements: &'a [u8],
    data: &'a [u8],
}

impl<'a> TransmitPackets<'a> {
    /// The elements, checked (kind, reserved, memory ranges inside the data area).
    pub fn elements(&self) -> impl Iterator<Item = TransmitElement> + 'a {
        self.elements
            .chunks_exact(TransmitElement::SIZE)
            .filter_map(|c| TransmitElement::read_from_bytes(c).ok())
    }

    /// The bytes of memory element `e` (checked at parse time; empty for file elements).
    pub fn memory(&self, e: &TransmitElement) -> &'a [u8] {
        let start = e.offset as usize;
        start
            .checked_add(e.length as usize)
            .and_then(|end| self.data.get(start..end))
            .unwrap_or(&[])
    }
}

/// Parses a TRANSMIT_PACKETS input buffer. Checks, in order: header and size, flags, send
/// size, element count (0 is `STATUS_INVALID_PARAMETER`; above the maximum
/// `STATUS_INTEGER_OVERFLOW`), the exact total length, then each element.
pub fn parse_transmit_packets(input: &[u8]) -> Result<TransmitPackets<'_>, TransmitError> {
    let request: TransmitPacketsRequest = fixed(input)?;
    check_flags(request.flags)?;
    check_block(request.send_size)?;
    if request.element_count == 0 {
        return Err(TransmitError::BadElement);
    }
    if request.element_count > MAX_TRANSMIT_ELEMENTS {
        return Err(TransmitError::CountOverflow);
    }
    let elements_len = (request.element_count as usize)
        .checked_mul(TransmitElement::SIZE)
        .ok_or(TransmitError::CountOverflow)?;
    let expected = TransmitPacketsRequest::SIZE
        .checked_add(elements_len)
        .and_then(|n| n.checked_add(request.data_length as usize))
        .ok_or(TransmitError::CountOverflow)?;
    if input.len() != expected {
        return Err(TransmitError::Length {
            expected,
            actual: input.len(),
        });
    }
    let rest = input.get(TransmitPacketsRequest::SIZE..).unwrap_or(&[]);
    let (elements, data) = rest.split_at(elements_len.min(rest.len()));
    let parsed = TransmitPackets {
        request,
        elements,
        data,
    };
    for e in parsed.elements() {
        let kind = e.flags & (ELEMENT_MEMORY | ELEMENT_FILE);
        if e.flags & !(ELEMENT_MEMORY | ELEMENT_FILE | ELEMENT_EOP) != 0
            || (kind != ELEMENT_MEMORY && kind != ELEMENT_FILE)
            || e.reserved != 0
        {
            return Err(TransmitError::BadElement);
        }
        if kind == ELEMENT_MEMORY {
            let end = e.offset.checked_add(u64::from(e.length));
            if e.length == 0 || e.file_handle != 0 || end.is_none_or(|x| x > data.len() as u64) {
                return Err(TransmitError::BadElement);
            }
        }
    }
    Ok(parsed)
}

/// Output of both transmit operations: 24 bytes.
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0  | 8 | `header` (`size` = 24) |
/// | 8  | 8 | `bytes_sent`: head + file + tail bytes (or all packets' bytes) |
/// | 16 | 4 | `flags`: [`TRANSMIT_SOCKET_CLOSED`] |
/// | 20 | 4 | `packets`: sends (stream) or datagrams issued |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct TransmitResponse {
    /// Common header.
    pub header: ResponseHeader,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// `TRANSMIT_SOCKET_CLOSED`.
    pub flags: u32,
    /// Sends or datagrams.
    pub packets: u32,
}

impl TransmitResponse {
    /// Size in bytes.
    pub const SIZE: usize = 24;

    /// A response.
    pub const fn new(bytes_sent: u64, flags: u32, packets: u32) -> Self {
        TransmitResponse {
            header: ResponseHeader::for_response::<TransmitResponse>(),
            bytes_sent,
            flags,
            packets,
        }
    }
}

impl Response for TransmitResponse {
    const OPERATION: Operation = Operation::TransmitFile;
    fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

const _: () = assert!(size_of::<TransmitFileRequest>() == TransmitFileRequest::SIZE);
const _: () = assert!(size_of::<TransmitPacketsRequest>() == TransmitPacketsRequest::SIZE);
const _: () = assert!(size_of::<TransmitElement>() == TransmitElement::SIZE);
const _: () = assert!(size_of::<TransmitResponse>() == TransmitResponse::SIZE);

#[cfg(test)]
mod tests {
    extern crate alloc;
    use super::*;
    use zerocopy::IntoBytes;

    fn h() -> SocketHandle {
        SocketHandle::new(0, 1).unwrap()
    }

    fn tf(r: &TransmitFileRequest, extra: &[u8]) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec::Vec::from(r.as_bytes());
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn transmit_file_parses_head_and_tail() {
        let mut r = TransmitFileRequest::new(h(), 0x1004);
        r.head_length = 3;
        r.tail_length = 2;
        let v = tf(&r, b"abcde");
        let p = parse_transmit_file(&v).unwrap();
        assert_eq!(p.head, b"abc");
        assert_eq!(p.tail, b"de");
        assert_eq!(&v[8..16], h().into_raw().to_le_bytes().as_slice());
    }

    #[test]
    fn transmit_file_bad_inputs() {
        let mut r = TransmitFileRequest::new(h(), 1);
        r.head_length = 4;
        let short = tf(&r, b"abc");
        assert_eq!(
            parse_transmit_file(&short).unwrap_err().ntstatus(),
            STATUS_BUFFER_TOO_SMALL
        );
        let long = tf(&r, b"abcde");
        assert_eq!(
            parse_transmit_file(&long).unwrap_err().ntstatus(),
            STATUS_INVALID_BUFFER_SIZE
        );
        let mut r = TransmitFileRequest::new(h(), 1);
        r.flags = TRANSMIT_REUSE_SOCKET;
        assert_eq!(
            parse_transmit_file(r.as_bytes()).unwrap_err().ntstatus(),
            STATUS_INVALID_PARAMETER
        );
        r.flags = 0x80;
        assert_eq!(
            parse_transmit_file(r.as_bytes()).unwrap_err(),
            TransmitError::BadFlags
        );
        let mut r = TransmitFileRequest::new(h(), 1);
        r.block_size = MAX_TRANSMIT_BLOCK + 1;
        assert_eq!(
            parse_transmit_file(r.as_bytes()).unwrap_err(),
            TransmitError::BlockTooLarge
        );
        let mut r = TransmitFileRequest::new(h(), 1);
        r.reserved = 1;
        assert_eq!(
            parse_transmit_file(r.as_bytes()).unwrap_err().ntstatus(),
            ContractError::ReservedNonZero.ntstatus()
        );
        let big = alloc::vec![0u8; MAX_TRANSMIT_INPUT + 1];
        assert_eq!(
            parse_transmit_file(&big).unwrap_err().ntstatus(),
            STATUS_INVALID_BUFFER_SIZE
        );
        assert_eq!(
            parse_transmit_file(&[1, 0, 0]).unwrap_err().ntstatus(),
            STATUS_BUFFER_TOO_SMALL
        );
    }

    fn tp(r: &TransmitPacketsRequest, els: &[TransmitElement], data: &[u8]) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec::Vec::from(r.as_bytes());
        for e in els {
            v.extend_from_slice(e.as_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn transmit_packets_parses_and_checks_elements() {
        let mut r = TransmitPacketsRequest::new(h());
        r.element_count = 2;
        r.data_length = 5;
        let els = [
            TransmitElement::memory(1, 3, true),
            TransmitElement::file(0x1004, 7, 0, false),
        ];
        let v = tp(&r, &els, b"xabcx");
        let p = parse_transmit_packets(&v).unwrap();
        let got: alloc::vec::Vec<_> = p.elements().collect();
        assert_eq!(got, els);
        assert_eq!(p.memory(&got[0]), b"abc");

        // Memory range outside the data area.
        let bad = [TransmitElement::memory(3, 3, false), els[1]];
        let v = tp(&r, &bad, b"xabcx");
        assert_eq!(
            parse_transmit_packets(&v).unwrap_err(),
            TransmitError::BadElement
        );
        // Both kinds.
        let mut both = els[0];
        both.flags |= ELEMENT_FILE;
        let v = tp(&r, &[both, els[1]], b"xabcx");
        assert_eq!(
            parse_transmit_packets(&v).unwrap_err().ntstatus(),
            STATUS_INVALID_PARAMETER
        );
        // Count overflow.
        let mut r2 = r;
        r2.element_count = u32::MAX;
        let v = tp(&r2, &els, b"xabcx");
        assert_eq!(
            parse_transmit_packets(&v).unwrap_err().ntstatus(),
            STATUS_INTEGER_OVERFLOW
        );
        // Count disagrees with the length.
        let mut r3 = r;
        r3.element_count = 3;
        let v = tp(&r3, &els, b"xabcx");
        assert_eq!(
            parse_transmit_packets(&v).unwrap_err().ntstatus(),
            STATUS_BUFFER_TOO_SMALL
        );
        // Zero elements.
        let mut r4 = r;
        r4.element_count = 0;
        r4.data_length = 0;
        assert_eq!(
            parse_transmit_packets(r4.as_bytes())
                .unwrap_err()
                .ntstatus(),
            STATUS_INVALID_PARAMETER
        );
    }

    #[test]
    fn response_layout() {
        let r = TransmitResponse::new(7, TRANSMIT_SOCKET_CLOSED, 2);
        let b = r.as_bytes();
        assert_eq!(b.len(), 24);
        assert_eq!(&b[8..16], 7u64.to_le_bytes().as_slice());
    }
}
