//! `WskConnectEx`: connect a bound connection socket and send an optional first buffer.
//!
//! Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>.
//!
//! Emulation: the connect itself is made during the dispatch call (bounded, 10 s, as the
//! inline path of `WskConnect` does); the optional buffer is then queued as a `WskSend` on
//! the same IRP, which completes (pending or inline, per the completion mode) with
//! `IoStatus.Information` = the bytes of the buffer sent. Without a buffer the IRP completes
//! with 0. [`crate::config::set_connect_ex_implemented`] makes the routine refuse with
//! `STATUS_NOT_IMPLEMENTED` without taking the IRP, to test clients' fallback.

use std::net::SocketAddr;

use socket2::{Domain, SockAddr};
use windows_sys::Win32::Foundation::*;
use wsk_sys::*;

use super::socket::{validate_buf, Kind};
use super::{addr, finish, lookup, run_queued, take_irp};

/// The largest first buffer: "the maximum size of the buffer is 65,535 bytes" is how wsk-sys
/// documents the parameter (from the WskConnectEx page); a larger one is
/// `STATUS_INVALID_PARAMETER` (our choice of status).
pub(crate) const MAX_CONNECT_EX_BYTES: usize = 65_535;

/// `WskConnectEx`. Errors: `STATUS_INVALID_DEVICE_STATE` (not bound, or already connected:
/// as `WskConnect`, the socket must have been bound first), `STATUS_INVALID_PARAMETER`
/// (bad address or family, buffer past its MDL chain or above 65,535 bytes), connect
/// failures (`STATUS_CONNECTION_REFUSED`, ...), and send failures.
pub(super) unsafe extern "system" fn wsk_connect_ex(
    socket: PWSK_SOCKET,
    remote: PSOCKADDR,
    buf: PWSK_BUF,
    _flags: u32,
    irp: PIRP,
) -> NTSTATUS {
    if !crate::config::connect_ex_implemented() {
        return STATUS_NOT_IMPLEMENTED;
    }
    if !take_irp(irp, "WskConnectEx") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskConnectEx") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if sock.kind != Kind::Connection {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: SOCKADDR per the WSK contract.
    let Some(r): Option<SocketAddr> = (unsafe { addr::read(remote) }) else {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    if r.is_ipv4() != (sock.family == Domain::IPV4) {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let b = if buf.is_null() {
        None
    } else {
        // SAFETY: WSK_BUF per the WSK contract.
        let b = unsafe { *buf };
        if b.Length > MAX_CONNECT_EX_BYTES || !validate_buf(&b, "WskConnectEx") {
            return finish(irp, STATUS_INVALID_PARAMETER, 0);
        }
        Some(b).filter(|b| b.Length > 0)
    };
    let mut st = sock.lock();
    if !st.bound || st.connected {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    let Some(os) = st.os.as_ref() else {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    };
    let connected = os
        .connect_timeout(&SockAddr::from(r), std::time::Duration::from_secs(10))
        .and_then(|_| os.set_nonblocking(true));
    if let Err(e) = connected {
        drop(st);
        return finish(irp, crate::status::from_io_error(&e), 0);
    }
    st.connected = true;
    sock.ensure_registered(&mut st);
    match b {
        Some(b) => {
            sock.queue_send(&mut st, irp, b);
            run_queued(&sock, st, irp)
        }
        None => {
            drop(st);
            finish(irp, STATUS_SUCCESS, 0)
        }
    }
}
