//! What a driver front-end (WDM or KMDF) must know about a request before the core parses
//! it: how many input bytes to copy out of the `METHOD_BUFFERED` system buffer (which the
//! response overwrites), and whether bytes 8..16 of the input name a socket that cancelling
//! the request aborts (docs/ioctl.md, "Cancellation").

use crate::ctl::Operation;

/// Inputs up to this many bytes are copied into a stack buffer by the front-ends; only the
/// operations of [`Operation::max_input`] larger than this need a pool copy.
pub const SMALL_INPUT: usize = 256;

impl Operation {
    /// The largest input, in bytes, this operation accepts: [`SMALL_INPUT`] for the
    /// fixed-size requests, and the documented maximum for those that carry data inline
    /// (CONNECT_WITH_DATA, RESOLVE, TRANSMIT_FILE, TRANSMIT_PACKETS). A longer input is
    /// completed with `STATUS_INVALID_BUFFER_SIZE` by the front-end before the core runs.
    pub const fn max_input(self) -> usize {
        match self {
            Operation::TransmitFile | Operation::TransmitPackets => {
                crate::transmit::MAX_TRANSMIT_INPUT
            }
            Operation::ConnectWithData => crate::options::MAX_CONNECT_WITH_DATA_INPUT,
            Operation::Resolve => crate::names::MAX_RESOLVE_INPUT,
            _ => SMALL_INPUT,
        }
    }

    /// Whether the request's input carries a [`crate::SocketHandle`] at bytes 8..16 (right
    /// after the 8-byte header): the socket a cancelled request aborts. The requests that
    /// open sockets, query statistics or resolve names name none.
    pub const fn names_socket(self) -> bool {
        !matches!(
            self,
            Operation::OpenStream
                | Operation::OpenListen
                | Operation::OpenDatagram
                | Operation::QueryStats
                | Operation::ConnectWithData
                | Operation::Resolve
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_large_maximum_exceeds_the_stack_copy() {
        for op in Operation::ALL {
            assert!(op.max_input() >= SMALL_INPUT, "{}", op.name());
        }
        assert!(Operation::Resolve.max_input() > SMALL_INPUT);
        assert!(Operation::ConnectWithData.max_input() > SMALL_INPUT);
    }

    /// The operations said to name a socket really have a `SocketHandle` at offset 8.
    #[test]
    fn socket_naming_requests_have_the_handle_at_offset_8() {
        use core::mem::offset_of;
        assert_eq!(offset_of!(crate::SendRequest, handle), 8);
        assert_eq!(offset_of!(crate::SendToRequest, handle), 8);
        assert_eq!(offset_of!(crate::SetRemoteRequest, handle), 8);
        assert_eq!(offset_of!(crate::CloseRequest, handle), 8);
        assert_eq!(offset_of!(crate::AcceptRequest, handle), 8);
        assert_eq!(offset_of!(crate::ReceiveRequest, handle), 8);
        assert_eq!(offset_of!(crate::ReceiveFromRequest, handle), 8);
        assert_eq!(offset_of!(crate::DisconnectRequest, handle), 8);
        assert_eq!(offset_of!(crate::options::SetOptionRequest, handle), 8);
        assert_eq!(offset_of!(crate::options::GetOptionRequest, handle), 8);
        assert_eq!(offset_of!(crate::transmit::TransmitFileRequest, handle), 8);
        assert_eq!(
            offset_of!(crate::transmit::TransmitPacketsRequest, handle),
            8
        );
        let named = Operation::ALL.iter().filter(|o| o.names_socket()).count();
        assert_eq!(named, 12, "one offset check per socket-naming operation");
    }
}
