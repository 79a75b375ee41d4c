//! [`ContractError`]: the ways a request can break the contract, and the
//! NTSTATUS the driver completes the Irp with for each.

use crate::status::{
    STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_ADDRESS_COMPONENT, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER,
    STATUS_NOT_SUPPORTED, STATUS_REVISION_MISMATCH,
};

/// A contract violation found in a request (by the driver) or a response (by
/// the app). [`ContractError::ntstatus`] is the malformed-input status table of
/// `docs/ioctl.md`; the driver completes the Irp with that status and
/// `IoStatus.Information = 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ContractError {
    /// The input (or output) buffer is shorter than the struct: `actual < expected`
    /// bytes. `STATUS_BUFFER_TOO_SMALL`.
    #[error("buffer too small: {actual} bytes, {expected} expected")]
    BufferTooSmall {
        /// Bytes the struct needs.
        expected: usize,
        /// Bytes supplied.
        actual: usize,
    },
    /// The input buffer is longer than the struct of this version: `actual >
    /// expected` bytes. Rejected rather than ignored so that a caller built
    /// against a larger future layout never has fields silently dropped.
    /// `STATUS_INVALID_BUFFER_SIZE`.
    #[error("input too large: {actual} bytes, {expected} expected")]
    OversizedInput {
        /// Bytes the struct has.
        expected: usize,
        /// Bytes supplied.
        actual: usize,
    },
    /// The data buffer (`METHOD_IN_DIRECT` output buffer) is larger than the
    /// operation's maximum ([`crate::MAX_SEND_BYTES`], [`crate::MAX_SEND_TO_BYTES`]).
    /// `STATUS_INVALID_BUFFER_SIZE`.
    #[error("data too large: {actual} bytes, at most {max}")]
    DataTooLarge {
        /// The operation's maximum in bytes.
        max: usize,
        /// Bytes supplied.
        actual: usize,
    },
    /// The header's `version` is not [`crate::CONTRACT_VERSION`].
    /// `STATUS_REVISION_MISMATCH`.
    #[error(
        "contract version {found} not supported (this side speaks {})",
        crate::CONTRACT_VERSION
    )]
    RevisionMismatch {
        /// The version found in the buffer.
        found: u16,
    },
    /// A reserved field or reserved address byte is not zero.
    /// `STATUS_INVALID_PARAMETER`.
    #[error("reserved field not zero")]
    ReservedNonZero,
    /// The header's `flags` has bits this operation does not define (none are
    /// defined in version 1). `STATUS_INVALID_PARAMETER`.
    #[error("unknown flags {flags:#x}")]
    UnknownFlags {
        /// The flags found.
        flags: u32,
    },
    /// The operation requires data (SEND, SEND_TO) but the data buffer length
    /// is 0. `STATUS_INVALID_PARAMETER`.
    #[error("data length is zero")]
    ZeroLength,
    /// A `METHOD_IN_DIRECT` request that requires data has no MDL
    /// (`Irp->MdlAddress == NULL`). `STATUS_INVALID_PARAMETER`.
    #[error("no data buffer (MDL)")]
    MissingDataBuffer,
    /// The handle is malformed, stale, closed, or belongs to another file object
    /// (handle tables are per file object, so to this caller it does not exist;
    /// any other status would reveal other clients' handles).
    /// `STATUS_INVALID_HANDLE`.
    #[error("invalid socket handle")]
    InvalidHandle,
    /// The handle names a socket of the wrong kind (SEND on a datagram socket,
    /// SEND_TO or SET_REMOTE on a stream socket). `STATUS_NOT_SUPPORTED`, the
    /// status AFD maps to `WSAEOPNOTSUPP`; kept distinct from
    /// `STATUS_INVALID_DEVICE_REQUEST`, which means "the driver does not know
    /// this IOCTL" (e.g. an older driver).
    #[error("operation not supported on this kind of socket")]
    WrongSocketKind,
    /// An address's family is neither `AF_INET` (2) nor `AF_INET6` (23), or is
    /// `AF_UNSPEC` where an address is required.
    /// `STATUS_INVALID_ADDRESS_COMPONENT`.
    #[error("unknown address family {family}")]
    UnknownAddressFamily {
        /// The family found.
        family: u16,
    },
    /// The IOCTL code is not one of [`crate::Operation`].
    /// `STATUS_INVALID_DEVICE_REQUEST`.
    #[error("unknown IOCTL code {code:#010x}")]
    UnknownIoctl {
        /// The code received.
        code: u32,
    },
}

impl ContractError {
    /// The NTSTATUS the driver completes a request with for this error (the
    /// malformed-input status table of `docs/ioctl.md`).
    pub const fn ntstatus(&self) -> i32 {
        match self {
            ContractError::BufferTooSmall { .. } => STATUS_BUFFER_TOO_SMALL,
            ContractError::OversizedInput { .. } | ContractError::DataTooLarge { .. } => {
                STATUS_INVALID_BUFFER_SIZE
            }
            ContractError::RevisionMismatch { .. } => STATUS_REVISION_MISMATCH,
            ContractError::ReservedNonZero
            | ContractError::UnknownFlags { .. }
            | ContractError::ZeroLength
            | ContractError::MissingDataBuffer => STATUS_INVALID_PARAMETER,
            ContractError::InvalidHandle => STATUS_INVALID_HANDLE,
            ContractError::WrongSocketKind => STATUS_NOT_SUPPORTED,
            ContractError::UnknownAddressFamily { .. } => STATUS_INVALID_ADDRESS_COMPONENT,
            ContractError::UnknownIoctl { .. } => STATUS_INVALID_DEVICE_REQUEST,
        }
    }
}

impl From<ContractError> for i32 {
    /// [`ContractError::ntstatus`].
    fn from(error: ContractError) -> i32 {
        error.ntstatus()
    }
}
