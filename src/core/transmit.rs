//! TRANSMIT_FILE and TRANSMIT_PACKETS. Placeholder until implemented.

use super::*;

impl DeviceCore {
    pub(super) fn transmit_file<C: Completion>(
        &self,
        _file: &FileContext,
        _input: &[u8],
        _output: &mut [u8],
        request: C,
    ) {
        self.fail(request, STATUS_NOT_IMPLEMENTED)
    }

    pub(super) fn transmit_packets<C: Completion>(
        &self,
        _file: &FileContext,
        _input: &[u8],
        _output: &mut [u8],
        request: C,
    ) {
        self.fail(request, STATUS_NOT_IMPLEMENTED)
    }
}
