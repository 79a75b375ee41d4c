//! `WskGetAddressInfo`, `WskFreeAddressInfo`, `WskGetNameInfo` over the host resolver.
//!
//! Forward lookups use `std::net::ToSocketAddrs` (the host's getaddrinfo: /etc/hosts, DNS);
//! reverse lookups the host's `getnameinfo`. The `ADDRINFOEXW` list `WskGetAddressInfo`
//! returns lives in emulated pool (one block per entry, tag [`ADDRINFO_TAG`]) until
//! `WskFreeAddressInfo`, so a list never freed shows as leaked pool bytes at
//! `Scope::assert_clean`; freeing something that is not a live list is a
//! [`Rule::DoubleFree`].
//!
//! Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_free_address_info>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>.

use rustc_hash::FxHashSet;
use std::ffi::c_void;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Mutex, MutexGuard};

use windows_sys::Win32::Foundation::*;
use windows_sys::Win32::Networking::WinSock::SOCKADDR;
use wsk_sys::*;

use super::{addr, client_ok, finish, take_irp};
use crate::verifier::{self, Rule};

/// Pool tag of `ADDRINFOEXW` entries (`WskA`).
pub const ADDRINFO_TAG: u32 = u32::from_le_bytes(*b"WskA");

/// Heads of the lists handed out and not yet freed.
static LISTS: Mutex<Option<FxHashSet<usize>>> = Mutex::new(None);

fn lists() -> MutexGuard<'static, Option<FxHashSet<usize>>> {
    LISTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One pool block: the entry, then its SOCKADDR storage.
#[repr(C)]
struct Entry {
    info: ADDRINFOEXW,
    storage: [u8; addr::SOCKADDR_IN6_LEN],
}

fn irql_check(who: &str) {
    if crate::irql::current() > crate::irql::PASSIVE_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("{who} above PASSIVE_LEVEL"),
        );
    }
}

/// Reads a counted UTF-16 `UNICODE_STRING`; `None` for NULL, `Some(Err)` for malformed.
unsafe fn read_ustr(s: *const UNICODE_STRING) -> Option<Result<String, ()>> {
    if s.is_null() {
        return None;
    }
    // SAFETY: caller's UNICODE_STRING; Length is in bytes.
    let u = unsafe { &*s };
    if u.Length == 0 {
        return Some(Ok(String::new()));
    }
    if u.Buffer.is_null() || u.Length % 2 != 0 {
        return Some(Err(()));
    }
    // SAFETY: Buffer holds Length bytes.
    let w = unsafe { std::slice::from_raw_parts(u.Buffer, u.Length as usize / 2) };
    Some(String::from_utf16(w).map_err(|_| ()))
}

/// Writes `text` into the caller's `UNICODE_STRING` buffer (with a terminating NUL, as the
/// WskGetNameInfo page asks the buffer to hold). False if it does not fit.
unsafe fn write_ustr(s: *mut UNICODE_STRING, text: &str) -> bool {
    // SAFETY: caller's UNICODE_STRING.
    let u = unsafe { &mut *s };
    let w: Vec<u16> = text.encode_utf16().collect();
    let bytes = (w.len() + 1) * 2;
    if u.Buffer.is_null() || bytes > u.MaximumLength as usize {
        return false;
    }
    // SAFETY: Buffer holds MaximumLength bytes (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(w.as_ptr(), u.Buffer, w.len());
        *u.Buffer.add(w.len()) = 0;
    }
    u.Length = (w.len() * 2) as u16;
    true
}

/// Builds the pool list for `addrs`; NULL if `addrs` is empty or pool runs out (then
/// nothing stays allocated).
fn build_list(addrs: &[SocketAddr], socktype: i32, protocol: i32) -> Result<usize, NTSTATUS> {
    let mut head: *mut Entry = std::ptr::null_mut();
    for a in addrs.iter().rev() {
        let p = crate::pool::allocate(size_of::<Entry>(), ADDRINFO_TAG, false) as *mut Entry;
        if p.is_null() {
            free_list(head as usize);
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        // SAFETY: fresh zeroed block of size_of::<Entry>() (16-byte aligned pool).
        unsafe {
            let sa = (*p).storage.as_mut_ptr() as *mut SOCKADDR;
            addr::write(sa, a);
            (*p).info = ADDRINFOEXW {
                ai_family: if a.is_ipv4() {
                    addr::AF_INET
                } else {
                    addr::AF_INET6
                } as i32,
                ai_socktype: socktype,
                ai_protocol: protocol,
                ai_addrlen: if a.is_ipv4() {
                    addr::SOCKADDR_IN_LEN
                } else {
                    addr::SOCKADDR_IN6_LEN
                },
                ai_addr: sa,
                ai_next: head as *mut ADDRINFOEXW,
                ..Default::default()
            };
        }
        head = p;
    }
    Ok(head as usize)
}

fn free_list(head: usize) {
    let mut p = head as *mut Entry;
    while !p.is_null() {
        // SAFETY: a live entry of a list this module built.
        let next = unsafe { (*p).info.ai_next } as *mut Entry;
        crate::pool::free(p as *mut c_void, Some(ADDRINFO_TAG));
        p = next;
    }
}

/// `WskGetAddressInfo`: resolves `NodeName` (a host name or numeric address) with the
/// optional numeric `ServiceName` as the port, filtered by `Hints->ai_family` (0,
/// `AF_INET`, `AF_INET6`); `ai_socktype` / `ai_protocol` of the hints are copied into every
/// entry. PASSIVE_LEVEL (IRP-based; in pending mode the IRP completes from the I/O thread).
///
/// Errors: `STATUS_NO_MATCH` when the host name cannot be resolved (the page's return table:
/// "STATUS_NO_MATCH: The host name cannot be resolved"), `STATUS_INVALID_PARAMETER` (NULL
/// `Result`, no node name, malformed strings, an unknown hints family; the page lists it for
/// invalid parameters), `STATUS_NOT_SUPPORTED` (a service name that is not a port number,
/// a namespace or provider: our choices, the emulation has no service database).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn wsk_get_address_info(
    client: PWSK_CLIENT,
    node: *mut UNICODE_STRING,
    service: *mut UNICODE_STRING,
    namespace: u32,
    provider: *mut GUID,
    hints: *mut ADDRINFOEXW,
    result: *mut *mut ADDRINFOEXW,
    _process: PEPROCESS,
    _thread: PETHREAD,
    irp: PIRP,
) -> NTSTATUS {
    irql_check("WskGetAddressInfo");
    if !take_irp(irp, "WskGetAddressInfo") {
        return STATUS_INVALID_PARAMETER;
    }
    if !client_ok(client) || result.is_null() {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    if namespace != 0 || !provider.is_null() {
        return finish(irp, STATUS_NOT_SUPPORTED, 0);
    }
    // SAFETY: optional caller strings.
    let (node, service) = unsafe { (read_ustr(node), read_ustr(service)) };
    let Some(Ok(node)) = node else {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    let port = match service {
        None => 0,
        Some(Ok(s)) if s.is_empty() => 0,
        Some(Ok(s)) => match s.parse::<u16>() {
            Ok(p) => p,
            Err(_) => return finish(irp, STATUS_NOT_SUPPORTED, 0),
        },
        Some(Err(())) => return finish(irp, STATUS_INVALID_PARAMETER, 0),
    };
    // SAFETY: optional caller hints.
    let (family, socktype, protocol) = match unsafe { hints.as_ref() } {
        None => (0, 0, 0),
        Some(h) => (h.ai_family, h.ai_socktype, h.ai_protocol),
    };
    let want = |a: &SocketAddr| match family {
        0 => true,
        f if f == addr::AF_INET as i32 => a.is_ipv4(),
        f if f == addr::AF_INET6 as i32 => a.is_ipv6(),
        _ => false,
    };
    if !(family == 0 || family == addr::AF_INET as i32 || family == addr::AF_INET6 as i32) {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let mut addrs: Vec<SocketAddr> = match (node.as_str(), port).to_socket_addrs() {
        Ok(it) => it.filter(want).collect(),
        Err(_) => Vec::new(),
    };
    let mut seen = FxHashSet::default();
    addrs.retain(|a| seen.insert(*a));
    if addrs.is_empty() {
        return finish(irp, STATUS_NO_MATCH, 0);
    }
    let head = match build_list(&addrs, socktype, protocol) {
        Ok(h) => h,
        Err(s) => return finish(irp, s, 0),
    };
    lists().get_or_insert_with(FxHashSet::default).insert(head);
    // SAFETY: caller's out pointer (checked non-NULL), written before completion.
    unsafe { *result = head as *mut ADDRINFOEXW };
    finish(irp, STATUS_SUCCESS, 0)
}

/// `WskFreeAddressInfo`: frees a list from [`wsk_get_address_info`]. A pointer that is not a
/// live list head records [`Rule::DoubleFree`].
pub(super) unsafe extern "system" fn wsk_free_address_info(
    _client: PWSK_CLIENT,
    info: *mut ADDRINFOEXW,
) {
    let known = lists().as_mut().is_some_and(|s| s.remove(&(info as usize)));
    if !known {
        verifier::violation(
            Rule::DoubleFree,
            format!("WskFreeAddressInfo({info:p}): not a live list from WskGetAddressInfo"),
        );
        return;
    }
    free_list(info as usize);
}

extern "C" {
    fn getnameinfo(
        sa: *const c_void,
        salen: u32,
        host: *mut std::ffi::c_char,
        hostlen: u32,
        serv: *mut std::ffi::c_char,
        servlen: u32,
        flags: i32,
    ) -> i32;
}

/// glibc `NI_NUMERICHOST`: the numeric form only.
const GLIBC_NI_NUMERICHOST: i32 = 1;
/// glibc `NI_NAMEREQD`: fail instead of returning the numeric form.
const GLIBC_NI_NAMEREQD: i32 = 8;

/// The host-name flags of `WskGetNameInfo` (ws2def.h `NI_NUMERICHOST` = 2, `NI_NAMEREQD` = 4,
/// as windows-sys declares them) mapped onto glibc's values. Without `NI_NAMEREQD` an address
/// with no name yields its numeric form, as `getnameinfo` documents.
fn glibc_flags(flags: u32) -> i32 {
    use windows_sys::Win32::Networking::WinSock::{NI_NAMEREQD, NI_NUMERICHOST};
    let mut f = 0;
    if flags & NI_NUMERICHOST != 0 {
        f |= GLIBC_NI_NUMERICHOST;
    }
    if flags & NI_NAMEREQD != 0 {
        f |= GLIBC_NI_NAMEREQD;
    }
    f
}

/// `WskGetNameInfo`: the host name of `SockAddr` (host `getnameinfo`, name required) into
/// `NodeName`, and the port as a decimal string into `ServiceName` (the emulator has no
/// service database: our choice). PASSIVE_LEVEL, IRP-based.
///
/// Errors: `STATUS_INVALID_PARAMETER` (NULL/short/unknown-family address, both outputs NULL:
/// "NodeBuffer and ServiceBuffer must not both be NULL"), `STATUS_NO_MATCH` when the address
/// has no name (our choice, by analogy with WskGetAddressInfo), `STATUS_BUFFER_OVERFLOW` when
/// a caller buffer is too small for the string and its NUL (our choice).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn wsk_get_name_info(
    client: PWSK_CLIENT,
    sockaddr: PSOCKADDR,
    len: u32,
    node: *mut UNICODE_STRING,
    service: *mut UNICODE_STRING,
    flags: u32,
    _process: PEPROCESS,
    _thread: PETHREAD,
    irp: PIRP,
) -> NTSTATUS {
    irql_check("WskGetNameInfo");
    if !take_irp(irp, "WskGetNameInfo") {
        return STATUS_INVALID_PARAMETER;
    }
    if !client_ok(client) || (node.is_null() && service.is_null()) {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: the caller's SOCKADDR of `len` bytes (length checked per family).
    let a = if sockaddr.is_null() || (len as usize) < addr::SOCKADDR_IN_LEN {
        None
    } else {
        // SAFETY: a non-NULL SOCKADDR of at least `len` bytes (the caller's contract).
        unsafe { addr::read(sockaddr) }
            .filter(|a| a.is_ipv4() || len as usize >= addr::SOCKADDR_IN6_LEN)
    };
    let Some(a) = a else {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    if !node.is_null() {
        let sa = socket2::SockAddr::from(a);
        let mut host = [0 as std::ffi::c_char; 1025];
        // SAFETY: a valid host sockaddr of its length; host buffer of its size; no service.
        let rc = unsafe {
            getnameinfo(
                sa.as_ptr() as *const c_void,
                sa.len(),
                host.as_mut_ptr(),
                host.len() as u32,
                std::ptr::null_mut(),
                0,
                glibc_flags(flags),
            )
        };
        if rc != 0 {
            return finish(irp, STATUS_NO_MATCH, 0);
        }
        // SAFETY: getnameinfo NUL-terminated the buffer on success.
        let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: caller's UNICODE_STRING.
        if !unsafe { write_ustr(node, &name) } {
            return finish(irp, STATUS_BUFFER_OVERFLOW, 0);
        }
    }
    // SAFETY: caller's UNICODE_STRING.
    if !service.is_null() && !unsafe { write_ustr(service, &a.port().to_string()) } {
        return finish(irp, STATUS_BUFFER_OVERFLOW, 0);
    }
    finish(irp, STATUS_SUCCESS, 0)
}
