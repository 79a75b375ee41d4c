//! Control requests: `WskControlClient` (provider level) and `WskControlSocket` (socket
//! level): socket options, `SIO_WSK_*` ioctls, and the event-callback controls, which are
//! handed to [`super::events`].

use std::ffi::c_void;

use windows_sys::Win32::Foundation::*;
use windows_sys::Win32::Networking::WinSock::SOCKADDR;
use wsk_sys::*;

use super::socket::Kind;
use super::{addr, client_ok, finish, lookup, take_irp};

pub(super) unsafe extern "system" fn wsk_control_client(
    client: PWSK_CLIENT,
    code: u32,
    in_size: usize,
    in_buf: *mut c_void,
    _out_size: usize,
    _out_buf: *mut c_void,
    _out_ret: *mut usize,
    irp: PIRP,
) -> NTSTATUS {
    let status = if client_ok(client) {
        super::events::control_client(client, code, in_size, in_buf).unwrap_or(STATUS_NOT_SUPPORTED)
    } else {
        STATUS_INVALID_PARAMETER
    };
    if irp.is_null() {
        return status;
    }
    if !take_irp(irp, "WskControlClient") {
        return STATUS_INVALID_PARAMETER;
    }
    finish(irp, status, 0)
}

pub(super) unsafe extern "system" fn wsk_control_socket(
    socket: PWSK_SOCKET,
    request: WSK_CONTROL_SOCKET_TYPE,
    code: u32,
    level: u32,
    in_size: usize,
    in_buf: *mut c_void,
    _out_size: usize,
    _out_buf: *mut c_void,
    out_ret: *mut usize,
    irp: PIRP,
) -> NTSTATUS {
    if !irp.is_null() && !take_irp(irp, "WskControlSocket") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskControlSocket") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if !out_ret.is_null() {
        // SAFETY: caller-provided out pointer.
        unsafe { *out_ret = 0 };
    }
    if let Some(status) =
        super::events::control_socket(&sock, request, code, level, in_size, in_buf)
    {
        return finish(irp, status, 0);
    }
    let status = match (request, code) {
        (r, SIO_WSK_SET_REMOTE_ADDRESS | SIO_WSK_SET_SENDTO_ADDRESS)
            if r == WskIoctl && sock.kind == Kind::Datagram =>
        {
            // SAFETY: the input buffer holds a SOCKADDR of `in_size` bytes.
            let a = if in_size >= addr::SOCKADDR_IN_LEN {
                unsafe { addr::read(in_buf as *const SOCKADDR) }
            } else {
                None
            };
            match a {
                None => STATUS_INVALID_PARAMETER,
                Some(a) => {
                    let mut st = sock.lock();
                    if !st.bound {
                        STATUS_INVALID_DEVICE_STATE
                    } else if code == SIO_WSK_SET_REMOTE_ADDRESS {
                        match st.os.as_ref().map(|o| o.connect(&a.into())) {
                            Some(Ok(())) => {
                                st.fixed_remote = Some(a);
                                STATUS_SUCCESS
                            }
                            Some(Err(e)) => crate::status::from_io_error(&e),
                            None => STATUS_INVALID_DEVICE_STATE,
                        }
                    } else {
                        st.sendto_addr = Some(a);
                        STATUS_SUCCESS
                    }
                }
            }
        }
        _ => STATUS_NOT_SUPPORTED,
    };
    finish(irp, status, 0)
}
