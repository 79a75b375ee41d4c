//! Control requests: `WskControlClient` (provider level) and `WskControlSocket` (socket
//! level): socket options, `SIO_WSK_*` ioctls, and the event-callback controls, which are
//! handed to [`super::events`].
//!
//! Socket options emulated on the real host socket (`WskSetOption` / `WskGetOption`):
//! `SO_REUSEADDR`, `SO_EXCLUSIVEADDRUSE`, `SO_KEEPALIVE`, `SO_RCVBUF`, `SO_SNDBUF` at
//! `SOL_SOCKET`, `TCP_NODELAY` at `IPPROTO_TCP`, and `SO_WSK_SECURITY` (set only).
//! Client controls: `WSK_TRANSPORT_LIST_QUERY`, `WSK_CACHE_SD`, `WSK_RELEASE_SD`.
//!
//! Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_client>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sharing-transport-addresses>.

use rustc_hash::{FxHashMap, FxHashSet};
use std::ffi::c_void;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use windows_sys::Win32::Foundation::*;
use windows_sys::Win32::Networking::WinSock::SOCKADDR;
use wsk_sys::*;

use super::socket::{Kind, SimSocket};
use super::{addr, client_ok, finish, lookup, take_irp};
use crate::verifier::{self, Rule};

/// `SOL_SOCKET` (Windows value, ws2def.h).
pub const SOL_SOCKET: u32 = 0xffff;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u32 = 6;
/// `SO_REUSEADDR`.
pub const SO_REUSEADDR: u32 = 4;
/// `SO_KEEPALIVE`.
pub const SO_KEEPALIVE: u32 = 8;
/// `SO_SNDBUF`.
pub const SO_SNDBUF: u32 = 0x1001;
/// `SO_RCVBUF`.
pub const SO_RCVBUF: u32 = 0x1002;
/// `SO_EXCLUSIVEADDRUSE` (`(int)(~SO_REUSEADDR)`).
pub const SO_EXCLUSIVEADDRUSE: u32 = !SO_REUSEADDR;
/// `TCP_NODELAY` (level `IPPROTO_TCP`).
pub const TCP_NODELAY: u32 = 1;

/// Pool tag of the provider's cached security descriptor copies (`WskS`).
pub const CACHED_SD_TAG: u32 = u32::from_le_bytes(*b"WskS");
/// Bytes copied into a cached security descriptor: the `SECURITY_DESCRIPTOR_RELATIVE`
/// header (Revision, Sbz1, Control, four offsets), the smallest form of a descriptor.
const SD_COPY_BYTES: usize = 20;
/// `SECURITY_DESCRIPTOR_REVISION`.
const SD_REVISION: u8 = 1;

/// The provider GUID the emulated transports report (the emulator's own; a real provider
/// reports its own value).
pub const EMULATED_PROVIDER_ID: GUID = GUID::from_u128(0x6e74_7369_6d00_4000_8000_7773_6b70_7276);

/// Per-socket option state the host socket cannot hold: exclusivity, and the buffer sizes as
/// the client set them (Linux stores twice the requested value, man 7 socket).
#[derive(Default, Clone, Copy)]
struct Opts {
    reuse: bool,
    exclusive: bool,
    rcvbuf: Option<u32>,
    sndbuf: Option<u32>,
}

/// Keyed by the socket's address; the `Weak` pins that allocation so the key cannot be
/// reused by another socket while the entry exists, and tells a dead entry apart.
type OptTable = FxHashMap<usize, (Weak<SimSocket>, Opts)>;

static OPTS: Mutex<Option<OptTable>> = Mutex::new(None);

fn opts() -> MutexGuard<'static, Option<OptTable>> {
    OPTS.lock().unwrap_or_else(|p| p.into_inner())
}

fn opts_of(sock: &Arc<SimSocket>) -> Opts {
    let mut g = opts();
    let t = g.get_or_insert_with(FxHashMap::default);
    t.retain(|_, (w, _)| w.strong_count() > 0);
    t.get(&sock.key())
        .filter(|(w, _)| w.ptr_eq(&Arc::downgrade(sock)))
        .map(|(_, o)| *o)
        .unwrap_or_default()
}

fn set_opts(sock: &Arc<SimSocket>, o: Opts) {
    opts()
        .get_or_insert_with(FxHashMap::default)
        .insert(sock.key(), (Arc::downgrade(sock), o));
}

/// Cached security descriptors by client: the pool copies `WSK_CACHE_SD` handed out.
static CACHED_SDS: Mutex<Option<FxHashMap<usize, FxHashSet<usize>>>> = Mutex::new(None);

fn cached_sds() -> MutexGuard<'static, Option<FxHashMap<usize, FxHashSet<usize>>>> {
    CACHED_SDS.lock().unwrap_or_else(|p| p.into_inner())
}

fn sd_is_cached(client: usize, sd: usize) -> bool {
    cached_sds()
        .as_ref()
        .and_then(|m| m.get(&client))
        .is_some_and(|s| s.contains(&sd))
}

/// The `SecurityDescriptor` argument check of `WskSocket` / `WskSocketConnect`: NULL or a
/// cached copy from `WSK_CACHE_SD` ("it must specify a pointer to a cached copy of a security
/// descriptor that was obtained by calling the WskControlClient function with the
/// WSK_CACHE_SD control code", seed 002,
/// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>).
/// Anything else records [`Rule::SecurityDescriptorNotCached`] and, our choice, completes the
/// IRP with `STATUS_INVALID_PARAMETER` (what Windows does is not documented).
/// Returns `Some(status)` when the call must end with it (the IRP, if any, is completed).
pub(crate) fn check_socket_sd(
    client: PWSK_CLIENT,
    sd: PSECURITY_DESCRIPTOR,
    irp: PIRP,
    who: &str,
) -> Option<NTSTATUS> {
    if sd.is_null() || sd_is_cached(client as usize, sd as usize) {
        return None;
    }
    verifier::violation(
        Rule::SecurityDescriptorNotCached,
        format!("{who}: SecurityDescriptor {sd:p} is not a cached copy from WSK_CACHE_SD"),
    );
    if !take_irp(irp, who) {
        return Some(STATUS_INVALID_PARAMETER);
    }
    Some(finish(irp, STATUS_INVALID_PARAMETER, 0))
}

/// The emulated transports: TCP and UDP over IPv4 and IPv6.
fn transports() -> [WSK_TRANSPORT; 4] {
    let t = |socket_type: u16, protocol: u32, family: u16| WSK_TRANSPORT {
        // Not documented beyond "transport version"; the emulator reports 0.
        Version: 0,
        SocketType: socket_type,
        Protocol: protocol,
        AddressFamily: family,
        ProviderId: EMULATED_PROVIDER_ID,
    };
    [
        t(1, 6, addr::AF_INET),
        t(2, 17, addr::AF_INET),
        t(1, 6, addr::AF_INET6),
        t(2, 17, addr::AF_INET6),
    ]
}

/// Reads a pointer-sized input (`PSECURITY_DESCRIPTOR`-typed variable).
fn read_ptr(in_size: usize, in_buf: *mut c_void) -> Option<usize> {
    if in_buf.is_null() || in_size != size_of::<usize>() {
        return None;
    }
    // SAFETY: the caller's InputBuffer of InputSize (= pointer size) bytes.
    Some(unsafe { (in_buf as *const usize).read_unaligned() })
}

/// The client controls this module emulates; `None` for codes it does not know.
#[allow(clippy::too_many_arguments)]
fn control_client_own(
    client: PWSK_CLIENT,
    code: u32,
    in_size: usize,
    in_buf: *mut c_void,
    out_size: usize,
    out_buf: *mut c_void,
    out_ret: *mut usize,
    irp: PIRP,
) -> Option<NTSTATUS> {
    match code {
        // WSK_TRANSPORT_LIST_QUERY: an array of WSK_TRANSPORT; OutputSize 0 and OutputBuffer
        // NULL return STATUS_BUFFER_OVERFLOW with the size needed in *OutputSizeReturned
        // (https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-transport-list-query).
        // A non-zero buffer that is too small gets the same answer (our choice). The page
        // requires Irp = NULL; an IRP is refused with STATUS_INVALID_PARAMETER (our choice).
        WSK_TRANSPORT_LIST_QUERY => {
            if !irp.is_null() {
                return Some(STATUS_INVALID_PARAMETER);
            }
            let list = transports();
            let need = size_of_val(&list);
            let n = if out_buf.is_null() || out_size < need {
                if !out_ret.is_null() {
                    // SAFETY: caller's SIZE_T.
                    unsafe { *out_ret = need };
                }
                return Some(STATUS_BUFFER_OVERFLOW);
            } else {
                // SAFETY: the caller's buffer holds at least `need` bytes (checked).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        list.as_ptr() as *const u8,
                        out_buf as *mut u8,
                        need,
                    )
                };
                need
            };
            if !out_ret.is_null() {
                // SAFETY: caller's SIZE_T.
                unsafe { *out_ret = n };
            }
            Some(STATUS_SUCCESS)
        }
        // WSK_CACHE_SD: input and output are PSECURITY_DESCRIPTOR-typed variables, Irp NULL
        // (https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-cache-sd).
        // The copy is a pool block of the descriptor's header; a revision other than
        // SECURITY_DESCRIPTOR_REVISION is STATUS_INVALID_SECURITY_DESCR (our choice).
        WSK_CACHE_SD => {
            if !irp.is_null() || out_buf.is_null() || out_size != size_of::<usize>() {
                return Some(STATUS_INVALID_PARAMETER);
            }
            let Some(sd) = read_ptr(in_size, in_buf).filter(|&p| p != 0) else {
                return Some(STATUS_INVALID_PARAMETER);
            };
            // SAFETY: a SECURITY_DESCRIPTOR is at least SD_COPY_BYTES long in either form.
            let header = unsafe { std::slice::from_raw_parts(sd as *const u8, SD_COPY_BYTES) };
            if header.first() != Some(&SD_REVISION) {
                return Some(STATUS_INVALID_SECURITY_DESCR);
            }
            let copy = crate::pool::allocate(SD_COPY_BYTES, CACHED_SD_TAG, false);
            if copy.is_null() {
                return Some(STATUS_INSUFFICIENT_RESOURCES);
            }
            // SAFETY: fresh block of SD_COPY_BYTES; the caller's output variable checked.
            unsafe {
                std::ptr::copy_nonoverlapping(header.as_ptr(), copy as *mut u8, SD_COPY_BYTES);
                (out_buf as *mut usize).write_unaligned(copy as usize);
            }
            cached_sds()
                .get_or_insert_with(FxHashMap::default)
                .entry(client as usize)
                .or_default()
                .insert(copy as usize);
            Some(STATUS_SUCCESS)
        }
        // WSK_RELEASE_SD: input is the cached PSECURITY_DESCRIPTOR, Irp NULL
        // (https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-release-sd).
        // Releasing something that is not a live cached copy is a double free.
        WSK_RELEASE_SD => {
            if !irp.is_null() {
                return Some(STATUS_INVALID_PARAMETER);
            }
            let Some(sd) = read_ptr(in_size, in_buf) else {
                return Some(STATUS_INVALID_PARAMETER);
            };
            let removed = cached_sds()
                .as_mut()
                .and_then(|m| m.get_mut(&(client as usize)))
                .is_some_and(|s| s.remove(&sd));
            if !removed {
                verifier::violation(
                    Rule::SecurityDescriptorNotCached,
                    format!("WSK_RELEASE_SD of {sd:#x}: not a live cached security descriptor"),
                );
                return Some(STATUS_INVALID_PARAMETER);
            }
            crate::pool::free(sd as *mut c_void, Some(CACHED_SD_TAG));
            Some(STATUS_SUCCESS)
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn wsk_control_client(
    client: PWSK_CLIENT,
    code: u32,
    in_size: usize,
    in_buf: *mut c_void,
    out_size: usize,
    out_buf: *mut c_void,
    out_ret: *mut usize,
    irp: PIRP,
) -> NTSTATUS {
    let status = if client_ok(client) {
        super::events::control_client(client, code, in_size, in_buf)
            .or_else(|| {
                control_client_own(
                    client, code, in_size, in_buf, out_size, out_buf, out_ret, irp,
                )
            })
            .unwrap_or(STATUS_NOT_SUPPORTED)
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

/// Reads a ULONG option value: `InputSize` must be `sizeof(ULONG)` (the option pages) and
/// `InputBuffer` non-NULL; otherwise `STATUS_INVALID_PARAMETER` (our choice: the pages name
/// no status).
fn read_ulong(in_size: usize, in_buf: *mut c_void) -> Result<u32, NTSTATUS> {
    if in_buf.is_null() || in_size < size_of::<u32>() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: the caller's InputBuffer holds at least 4 bytes (checked).
    Ok(unsafe { (in_buf as *const u32).read_unaligned() })
}

/// `WskSetOption` / `WskGetOption` of the options above. `None`: not an option this module
/// knows (the caller answers `STATUS_NOT_SUPPORTED`).
///
/// Rules (sources in the module doc): `SO_EXCLUSIVEADDRUSE` "must" be set "before the socket
/// is bound" (<https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-exclusiveaddruse>);
/// the emulator applies the same rule to `SO_REUSEADDR` (our choice) and answers a set after
/// bind with `STATUS_INVALID_DEVICE_STATE` (our choice). Setting one of the two while the
/// other is on is `STATUS_INVALID_PARAMETER` (our choice: the sharing table gives them
/// contradictory meanings). Set with less than 4 input bytes: `STATUS_INVALID_PARAMETER`;
/// get with less than 4 output bytes: `STATUS_BUFFER_TOO_SMALL` (our choices). TCP options
/// on datagram sockets: `STATUS_NOT_SUPPORTED`.
///
/// Host mapping: `SO_REUSEADDR` sets Linux `SO_REUSEADDR` and `SO_REUSEPORT`, so that two
/// sockets that both set it share a specific address as Windows lets them (SUCCESS in the
/// table); `SO_EXCLUSIVEADDRUSE` leaves the host socket unshared, so any second bind to the
/// address fails with `STATUS_ADDRESS_ALREADY_EXISTS`. Known difference: where the Windows
/// table says DENIED (`STATUS_ACCESS_DENIED`: a `SO_REUSEADDR` bind after a default or
/// exclusive one, or a default bind after a `SO_REUSEADDR` one), the host reports
/// `STATUS_ADDRESS_ALREADY_EXISTS`. `SO_RCVBUF` / `SO_SNDBUF` read back the value set (Linux
/// doubles it internally); never set, they read the host's value halved.
#[allow(clippy::too_many_arguments)]
fn socket_option(
    sock: &Arc<SimSocket>,
    request: WSK_CONTROL_SOCKET_TYPE,
    code: u32,
    level: u32,
    in_size: usize,
    in_buf: *mut c_void,
    out_size: usize,
    out_buf: *mut c_void,
    out_ret: *mut usize,
) -> Option<NTSTATUS> {
    let known = matches!(
        (level, code),
        (
            SOL_SOCKET,
            SO_REUSEADDR | SO_EXCLUSIVEADDRUSE | SO_KEEPALIVE | SO_RCVBUF | SO_SNDBUF
        ) | (IPPROTO_TCP, TCP_NODELAY)
    ) || (level == SOL_SOCKET && code == SO_WSK_SECURITY && request == WskSetOption);
    if !known || !(request == WskSetOption || request == WskGetOption) {
        return None;
    }
    if (level == IPPROTO_TCP || code == SO_KEEPALIVE) && sock.kind == Kind::Datagram {
        return Some(STATUS_NOT_SUPPORTED);
    }
    let st = sock.lock();
    let Some(os) = st.os.as_ref() else {
        return Some(STATUS_INVALID_DEVICE_STATE);
    };
    let mut o = opts_of(sock);
    let io = |r: std::io::Result<()>| match r {
        Ok(()) => STATUS_SUCCESS,
        Err(e) => crate::status::from_io_error(&e),
    };
    if request == WskSetOption {
        if code == SO_WSK_SECURITY {
            let Some(sd) = read_ptr(in_size, in_buf) else {
                return Some(STATUS_INVALID_PARAMETER);
            };
            drop(st);
            if sd != 0 && !sd_is_cached(sock.registration, sd) {
                verifier::violation(
                    Rule::SecurityDescriptorNotCached,
                    format!("SO_WSK_SECURITY: {sd:#x} is not a cached copy from WSK_CACHE_SD"),
                );
                return Some(STATUS_INVALID_PARAMETER);
            }
            return Some(STATUS_SUCCESS);
        }
        let v = match read_ulong(in_size, in_buf) {
            Ok(v) => v,
            Err(s) => return Some(s),
        };
        let status = match code {
            SO_REUSEADDR | SO_EXCLUSIVEADDRUSE if st.bound => STATUS_INVALID_DEVICE_STATE,
            SO_REUSEADDR if v != 0 && o.exclusive => STATUS_INVALID_PARAMETER,
            SO_EXCLUSIVEADDRUSE if v != 0 && o.reuse => STATUS_INVALID_PARAMETER,
            SO_REUSEADDR => {
                let r = io(os
                    .set_reuse_address(v != 0)
                    .and_then(|_| os.set_reuse_port(v != 0)));
                if r == STATUS_SUCCESS {
                    o.reuse = v != 0;
                }
                r
            }
            SO_EXCLUSIVEADDRUSE => {
                o.exclusive = v != 0;
                STATUS_SUCCESS
            }
            SO_KEEPALIVE => io(os.set_keepalive(v != 0)),
            TCP_NODELAY => io(os.set_nodelay(v != 0)),
            SO_RCVBUF | SO_SNDBUF if v > i32::MAX as u32 => STATUS_INVALID_PARAMETER,
            SO_RCVBUF => {
                let r = io(os.set_recv_buffer_size(v as usize));
                if r == STATUS_SUCCESS {
                    o.rcvbuf = Some(v);
                }
                r
            }
            SO_SNDBUF => {
                let r = io(os.set_send_buffer_size(v as usize));
                if r == STATUS_SUCCESS {
                    o.sndbuf = Some(v);
                }
                r
            }
            _ => STATUS_NOT_SUPPORTED,
        };
        drop(st);
        set_opts(sock, o);
        return Some(status);
    }
    // WskGetOption: a ULONG into OutputBuffer.
    if out_buf.is_null() || out_size < size_of::<u32>() {
        return Some(STATUS_BUFFER_TOO_SMALL);
    }
    let value: Result<u32, NTSTATUS> = match code {
        SO_REUSEADDR => Ok(o.reuse as u32),
        SO_EXCLUSIVEADDRUSE => Ok(o.exclusive as u32),
        SO_KEEPALIVE => os
            .keepalive()
            .map(|b| b as u32)
            .map_err(|e| crate::status::from_io_error(&e)),
        TCP_NODELAY => os
            .nodelay()
            .map(|b| b as u32)
            .map_err(|e| crate::status::from_io_error(&e)),
        SO_RCVBUF => match o.rcvbuf {
            Some(v) => Ok(v),
            None => os
                .recv_buffer_size()
                .map(|n| (n / 2) as u32)
                .map_err(|e| crate::status::from_io_error(&e)),
        },
        SO_SNDBUF => match o.sndbuf {
            Some(v) => Ok(v),
            None => os
                .send_buffer_size()
                .map(|n| (n / 2) as u32)
                .map_err(|e| crate::status::from_io_error(&e)),
        },
        _ => Err(STATUS_NOT_SUPPORTED),
    };
    drop(st);
    Some(match value {
        Ok(v) => {
            // SAFETY: the caller's OutputBuffer holds at least 4 bytes (checked); the
            // optional OutputSizeReturned is a caller SIZE_T.
            unsafe {
                (out_buf as *mut u32).write_unaligned(v);
                if !out_ret.is_null() {
                    *out_ret = size_of::<u32>();
                }
            }
            STATUS_SUCCESS
        }
        Err(s) => s,
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn wsk_control_socket(
    socket: PWSK_SOCKET,
    request: WSK_CONTROL_SOCKET_TYPE,
    code: u32,
    level: u32,
    in_size: usize,
    in_buf: *mut c_void,
    out_size: usize,
    out_buf: *mut c_void,
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
    if let Some(status) = socket_option(
        &sock, request, code, level, in_size, in_buf, out_size, out_buf, out_ret,
    ) {
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
