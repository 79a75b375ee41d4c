//! The error type: every failure carries the NTSTATUS it stands for.

use windows_sys::Win32::Foundation::*;

/// A failed WSK or kernel operation. [`Error::status`] gives the NTSTATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `STATUS_CONNECTION_REFUSED`: the remote host refused the connection.
    #[error("STATUS_CONNECTION_REFUSED")]
    ConnectionRefused,
    /// `STATUS_CONNECTION_RESET`: the peer reset the connection.
    #[error("STATUS_CONNECTION_RESET")]
    ConnectionReset,
    /// `STATUS_CONNECTION_ABORTED`: the connection was aborted locally.
    #[error("STATUS_CONNECTION_ABORTED")]
    ConnectionAborted,
    /// `STATUS_IO_TIMEOUT`: the operation's timeout expired and its IRP was cancelled.
    #[error("STATUS_IO_TIMEOUT")]
    Timeout,
    /// `STATUS_CANCELLED`: the IRP was cancelled (for example, its socket was closed).
    #[error("STATUS_CANCELLED")]
    Cancelled,
    /// `STATUS_INSUFFICIENT_RESOURCES`: pool, IRP or MDL allocation failed.
    #[error("STATUS_INSUFFICIENT_RESOURCES")]
    InsufficientResources,
    /// `STATUS_INVALID_PARAMETER`.
    #[error("STATUS_INVALID_PARAMETER")]
    InvalidParameter,
    /// `STATUS_INVALID_DEVICE_STATE`: the call is not valid in the object's state, or at the
    /// caller's IRQL (a synchronous wait above PASSIVE_LEVEL).
    #[error("STATUS_INVALID_DEVICE_STATE")]
    InvalidDeviceState,
    /// `STATUS_NOT_IMPLEMENTED`: the provider lacks the routine.
    #[error("STATUS_NOT_IMPLEMENTED")]
    NotImplemented,
    /// `STATUS_DEVICE_NOT_READY`: the WSK provider NPI is not available.
    #[error("STATUS_DEVICE_NOT_READY")]
    DeviceNotReady,
    /// `STATUS_INVALID_HANDLE`: the socket is closed or closing.
    #[error("STATUS_INVALID_HANDLE")]
    Closed,
    /// Any other NTSTATUS.
    #[error("NTSTATUS {0:#010x}")]
    Status(NTSTATUS),
}

impl Error {
    /// The NTSTATUS this error stands for.
    pub const fn status(self) -> NTSTATUS {
        match self {
            Error::ConnectionRefused => STATUS_CONNECTION_REFUSED,
            Error::ConnectionReset => STATUS_CONNECTION_RESET,
            Error::ConnectionAborted => STATUS_CONNECTION_ABORTED,
            Error::Timeout => STATUS_IO_TIMEOUT,
            Error::Cancelled => STATUS_CANCELLED,
            Error::InsufficientResources => STATUS_INSUFFICIENT_RESOURCES,
            Error::InvalidParameter => STATUS_INVALID_PARAMETER,
            Error::InvalidDeviceState => STATUS_INVALID_DEVICE_STATE,
            Error::NotImplemented => STATUS_NOT_IMPLEMENTED,
            Error::DeviceNotReady => STATUS_DEVICE_NOT_READY,
            Error::Closed => STATUS_INVALID_HANDLE,
            Error::Status(s) => s,
        }
    }

    /// The error for a failing NTSTATUS (any value; success values map to `Status`).
    pub const fn from_status(status: NTSTATUS) -> Error {
        match status {
            STATUS_CONNECTION_REFUSED => Error::ConnectionRefused,
            STATUS_CONNECTION_RESET => Error::ConnectionReset,
            STATUS_CONNECTION_ABORTED => Error::ConnectionAborted,
            STATUS_IO_TIMEOUT => Error::Timeout,
            STATUS_CANCELLED => Error::Cancelled,
            STATUS_INSUFFICIENT_RESOURCES => Error::InsufficientResources,
            STATUS_INVALID_PARAMETER => Error::InvalidParameter,
            STATUS_INVALID_DEVICE_STATE => Error::InvalidDeviceState,
            STATUS_NOT_IMPLEMENTED => Error::NotImplemented,
            STATUS_DEVICE_NOT_READY => Error::DeviceNotReady,
            STATUS_INVALID_HANDLE => Error::Closed,
            s => Error::Status(s),
        }
    }
}

impl From<Error> for NTSTATUS {
    fn from(e: Error) -> NTSTATUS {
        e.status()
    }
}

/// `Ok(())` for NT_SUCCESS statuses, the error otherwise.
pub const fn check(status: NTSTATUS) -> core::result::Result<(), Error> {
    if status >= 0 {
        Ok(())
    } else {
        Err(Error::from_status(status))
    }
}

/// Result with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
