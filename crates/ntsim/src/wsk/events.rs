//! Event callbacks (`SO_WSK_EVENT_CALLBACK`, `WSK_SET_STATIC_EVENT_CALLBACKS`,
//! `SO_CONDITIONAL_ACCEPT`). Placeholder until implemented.

use std::ffi::c_void;
use std::sync::Arc;

use windows_sys::Win32::Foundation::NTSTATUS;
use wsk_sys::{PWSK_CLIENT, WSK_CONTROL_SOCKET_TYPE};

use super::socket::SimSocket;

/// The event-related `WskControlSocket` requests (`SO_WSK_EVENT_CALLBACK`,
/// `SO_CONDITIONAL_ACCEPT`, ...): `Some(status)` if this module handled the request, `None`
/// if it is not an event request. [`super::control`] calls this before its own options and
/// completes the IRP (if any) with the returned status.
pub(crate) fn control_socket(
    _sock: &Arc<SimSocket>,
    _request: WSK_CONTROL_SOCKET_TYPE,
    _code: u32,
    _level: u32,
    _in_size: usize,
    _in_buf: *mut c_void,
) -> Option<NTSTATUS> {
    None
}

/// The event-related `WskControlClient` requests (`WSK_SET_STATIC_EVENT_CALLBACKS`):
/// `Some(status)` if handled, `None` otherwise. [`super::control`] calls this first and
/// completes the IRP (if any) with the returned status.
pub(crate) fn control_client(
    _client: PWSK_CLIENT,
    _code: u32,
    _in_size: usize,
    _in_buf: *mut c_void,
) -> Option<NTSTATUS> {
    None
}
