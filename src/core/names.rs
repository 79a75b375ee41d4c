//! RESOLVE. Placeholder until implemented.

use super::*;

impl DeviceCore {
    pub(super) fn resolve(&self, _input: &[u8], _output: &mut [u8]) -> Result<usize, NTSTATUS> {
        Err(STATUS_NOT_IMPLEMENTED)
    }
}
