//! SET_OPTION, GET_OPTION and CONNECT_WITH_DATA. Placeholder until implemented.

use super::*;

impl DeviceCore {
    pub(super) fn set_option(&self, _file: &FileContext, _input: &[u8]) -> Result<usize, NTSTATUS> {
        Err(STATUS_NOT_IMPLEMENTED)
    }

    pub(super) fn get_option(
        &self,
        _file: &FileContext,
        _input: &[u8],
        _output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        Err(STATUS_NOT_IMPLEMENTED)
    }

    pub(super) fn connect_with_data(
        &self,
        _file: &FileContext,
        _input: &[u8],
        _output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        Err(STATUS_NOT_IMPLEMENTED)
    }
}
