//! The emulated WSK provider (netio.sys): registration (`WskRegister`,
//! `WskCaptureProviderNPI`, `WskReleaseProviderNPI`, `WskDeregister`,
//! `WskQueryProviderCharacteristics`) and the provider dispatch tables, over real host
//! sockets driven by one I/O thread.
//!
//! Every dispatch routine that takes an IRP first passes it down one stack location (as a
//! driver below would own it), then completes it either inside the call (inline, and the
//! default provider mode when the host socket can finish the operation at once) or from the
//! I/O thread (pending mode, and the provider mode when the operation must wait); see
//! [`crate::config::CompletionMode`].

pub mod addr;
mod connect_ex;
mod control;
pub(crate) mod events;
pub(crate) mod io;
mod names;
pub(crate) mod socket;

use rustc_hash::FxHashMap;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use socket2::Domain;
use windows_sys::Wdk::Foundation::IRP;
use windows_sys::Win32::Foundation::*;
use wsk_sys::*;

pub use events::{retained_indications, set_indications_unmapped, INDICATION_TAG};
pub use io::wait_quiescent;
use socket::{complete_all, defer, pend, validate_buf, Kind, SimSocket};

use crate::config::CompletionMode;
use crate::irp;
use crate::verifier::{self, Rule};

/// The WSK version this provider offers (1.0).
pub const PROVIDER_VERSION: u16 = MAKE_WSK_VERSION(1, 0);

struct Registration {
    captures: i32,
    sockets: i32,
    deregistering: bool,
}

static REGS: Mutex<Option<FxHashMap<usize, Registration>>> = Mutex::new(None);
static REGS_CHANGED: Condvar = Condvar::new();

fn regs() -> MutexGuard<'static, Option<FxHashMap<usize, Registration>>> {
    REGS.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn provider_availability_changed() {
    let _g = regs();
    REGS_CHANGED.notify_all();
}

pub(crate) fn socket_opened(reg: usize) {
    if let Some(r) = regs().as_mut().and_then(|m| m.get_mut(&reg)) {
        r.sockets += 1;
    }
}

pub(crate) fn socket_closed(reg: usize) {
    let mut g = regs();
    if let Some(r) = g.as_mut().and_then(|m| m.get_mut(&reg)) {
        r.sockets -= 1;
    }
    REGS_CHANGED.notify_all();
}

/// Number of live registrations (for leak checks of driver unload).
pub fn live_registrations() -> usize {
    regs().as_ref().map_or(0, |m| m.len())
}

fn registration_key(reg: *const WSK_REGISTRATION) -> Option<usize> {
    if reg.is_null() {
        return None;
    }
    // SAFETY: the client passes the WSK_REGISTRATION that WskRegister initialised.
    let key = unsafe { (*reg).ReservedRegistrationContext } as usize;
    regs().as_ref()?.contains_key(&key).then_some(key)
}

/// `WskRegister`.
///
/// # Safety
/// Pointers per the WSK contract.
#[no_mangle]
pub unsafe extern "system" fn WskRegister(
    npi: *const WSK_CLIENT_NPI,
    reg: *mut WSK_REGISTRATION,
) -> NTSTATUS {
    // "IRQL: PASSIVE_LEVEL" (nf-wsk-wskregister).
    crate::irql::require_at_most("WskRegister", crate::irql::PASSIVE_LEVEL);
    // SAFETY: checked for NULL before reading.
    if npi.is_null() || reg.is_null() || unsafe { (*npi).Dispatch.is_null() } {
        return STATUS_INVALID_PARAMETER;
    }
    let key = Box::into_raw(Box::new(0u64)) as usize;
    regs().get_or_insert_with(FxHashMap::default).insert(
        key,
        Registration {
            captures: 0,
            sockets: 0,
            deregistering: false,
        },
    );
    // SAFETY: caller-owned registration block.
    unsafe {
        (*reg).ReservedRegistrationState = 1;
        (*reg).ReservedRegistrationContext = key as *mut c_void;
        (*reg).ReservedRegistrationLock = 0;
    }
    // Remember the client's requested version for capture.
    // SAFETY: non-NULL dispatch per the check above.
    let version = unsafe { (*(*npi).Dispatch).Version };
    VERSIONS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(FxHashMap::default)
        .insert(key, version);
    STATUS_SUCCESS
}

static VERSIONS: Mutex<Option<FxHashMap<usize, u16>>> = Mutex::new(None);

/// `WskCaptureProviderNPI`: waits up to `WaitTimeout` ms (`WSK_NO_WAIT`, `WSK_INFINITE_WAIT`)
/// for the provider. `STATUS_DEVICE_NOT_READY` if it is not available in time or
/// `WskDeregister` was called; `STATUS_NOINTERFACE` for an unsupported major version.
///
/// # Safety
/// Pointers per the WSK contract.
#[no_mangle]
pub unsafe extern "system" fn WskCaptureProviderNPI(
    reg: *mut WSK_REGISTRATION,
    wait_ms: u32,
    out: *mut WSK_PROVIDER_NPI,
) -> NTSTATUS {
    if crate::irql::current() > crate::irql::PASSIVE_LEVEL && wait_ms != WSK_NO_WAIT {
        verifier::violation(
            Rule::WaitAboveApcLevel,
            "WskCaptureProviderNPI with a wait above PASSIVE_LEVEL",
        );
    }
    // SAFETY: a non-NULL registration block stays readable after WskDeregister (the docs
    // allow capture calls then, as long as the block is not freed).
    if !reg.is_null() && unsafe { (*reg).ReservedRegistrationState } == DEREGISTERED {
        return STATUS_DEVICE_NOT_READY;
    }
    let Some(key) = registration_key(reg) else {
        return STATUS_INVALID_PARAMETER;
    };
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let version = VERSIONS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|m| m.get(&key).copied())
        .unwrap_or(0);
    if WSK_MAJOR_VERSION(version) != WSK_MAJOR_VERSION(PROVIDER_VERSION) {
        return STATUS_NOINTERFACE;
    }
    let start = Instant::now();
    let limit = match wait_ms {
        WSK_INFINITE_WAIT => None,
        ms => Some(Duration::from_millis(ms as u64)),
    };
    let mut g = regs();
    loop {
        let Some(r) = g.as_mut().and_then(|m| m.get_mut(&key)) else {
            return STATUS_DEVICE_NOT_READY;
        };
        if r.deregistering {
            return STATUS_DEVICE_NOT_READY;
        }
        if crate::config::provider_available() {
            r.captures += 1;
            break;
        }
        let waited = start.elapsed();
        let slice = match limit {
            Some(l) if waited >= l => return STATUS_DEVICE_NOT_READY,
            Some(l) => (l - waited).min(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        };
        g = REGS_CHANGED
            .wait_timeout(g, slice)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    drop(g);
    // SAFETY: checked non-NULL.
    unsafe {
        (*out).Client = key as PWSK_CLIENT;
        (*out).Dispatch = &PROVIDER_DISPATCH;
    }
    STATUS_SUCCESS
}

/// `WskReleaseProviderNPI`.
///
/// # Safety
/// Pointers per the WSK contract.
#[no_mangle]
pub unsafe extern "system" fn WskReleaseProviderNPI(reg: *mut WSK_REGISTRATION) {
    let Some(key) = registration_key(reg) else {
        return;
    };
    let mut g = regs();
    if let Some(r) = g.as_mut().and_then(|m| m.get_mut(&key)) {
        if r.captures == 0 {
            drop(g);
            verifier::violation(Rule::DoubleFree, "WskReleaseProviderNPI without a capture");
            return;
        }
        r.captures -= 1;
    }
    REGS_CHANGED.notify_all();
}

/// `WskQueryProviderCharacteristics`.
///
/// # Safety
/// Pointers per the WSK contract.
#[no_mangle]
pub unsafe extern "system" fn WskQueryProviderCharacteristics(
    reg: *mut WSK_REGISTRATION,
    out: *mut WSK_PROVIDER_CHARACTERISTICS,
) -> NTSTATUS {
    if registration_key(reg).is_none() || out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if !crate::config::provider_available() {
        return STATUS_DEVICE_NOT_READY;
    }
    // SAFETY: checked non-NULL.
    unsafe {
        *out = WSK_PROVIDER_CHARACTERISTICS {
            HighestVersion: PROVIDER_VERSION,
            LowestVersion: PROVIDER_VERSION,
        }
    };
    STATUS_SUCCESS
}

/// `WskDeregister`: returns once every captured NPI is released and every socket closed
/// (per the docs). If that does not happen within the hang limit, the verifier records
/// `DeregisterBlocked` and the call returns, since the host cannot usefully hang.
///
/// # Safety
/// Pointers per the WSK contract.
#[no_mangle]
pub unsafe extern "system" fn WskDeregister(reg: *mut WSK_REGISTRATION) {
    // "IRQL: PASSIVE_LEVEL" (nf-wsk-wskderegister).
    crate::irql::require_at_most("WskDeregister", crate::irql::PASSIVE_LEVEL);
    let Some(key) = registration_key(reg) else {
        verifier::violation(Rule::DoubleFree, "WskDeregister of an unknown registration");
        return;
    };
    let deadline = Instant::now() + crate::config::hang_limit();
    let mut g = regs();
    loop {
        let Some(r) = g.as_mut().and_then(|m| m.get_mut(&key)) else {
            return;
        };
        r.deregistering = true;
        REGS_CHANGED.notify_all();
        if r.captures == 0 && r.sockets == 0 {
            break;
        }
        if Instant::now() >= deadline {
            let (c, s) = (r.captures, r.sockets);
            drop(g);
            verifier::violation(
                Rule::DeregisterBlocked,
                format!("WskDeregister blocked: {c} captured NPI(s), {s} open socket(s)"),
            );
            return;
        }
        g = REGS_CHANGED
            .wait_timeout(g, Duration::from_millis(100))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    if let Some(m) = g.as_mut() {
        m.remove(&key);
    }
    drop(g);
    events::registration_gone(key);
    VERSIONS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
        .map(|m| m.remove(&key));
    // SAFETY: key came from Box::into_raw in WskRegister and is removed from the table.
    drop(unsafe { Box::from_raw(key as *mut u64) });
    // SAFETY: caller-owned registration block.
    unsafe { (*reg).ReservedRegistrationState = DEREGISTERED };
}

/// `ReservedRegistrationState` of a block after `WskDeregister`.
const DEREGISTERED: u64 = 2;

// ---------------------------------------------------------------------------------------
// Helpers shared by the dispatch routines
// ---------------------------------------------------------------------------------------

/// Finishes an operation that completed during its dispatch call: the inline and provider
/// modes complete the IRP now and return its status; pending mode marks it pending and lets
/// the I/O thread complete it. A NULL IRP (control requests without one) just returns the
/// status.
fn finish(irp: *mut IRP, status: NTSTATUS, info: usize) -> NTSTATUS {
    if irp.is_null() {
        return status;
    }
    match crate::sched::completion_mode() {
        CompletionMode::Inline | CompletionMode::Provider => {
            irp::complete(irp, status, info);
            status
        }
        CompletionMode::Pending => {
            // SAFETY: the provider owns the IRP (passed down).
            unsafe { irp::mark_pending(irp) };
            defer(irp, status, info);
            STATUS_PENDING
        }
    }
}

/// Takes ownership of the client's IRP (one stack location down).
fn take_irp(irp: *mut IRP, who: &str) -> bool {
    if irp.is_null() {
        return false;
    }
    irp::pass_down(irp, who, true)
}

fn lookup(socket: PWSK_SOCKET, who: &str) -> Option<Arc<SimSocket>> {
    let s = io::io().socket(socket as usize);
    if s.is_none() {
        verifier::violation(
            Rule::InvalidSocket,
            format!("{who}({socket:p}): not a live WSK socket (closed or never created)"),
        );
    }
    s
}

fn client_ok(client: PWSK_CLIENT) -> bool {
    regs()
        .as_ref()
        .is_some_and(|m| m.contains_key(&(client as usize)))
}

fn domain_of(family: u16) -> Option<Domain> {
    match family {
        addr::AF_INET => Some(Domain::IPV4),
        addr::AF_INET6 => Some(Domain::IPV6),
        _ => None,
    }
}

/// Schedule hook ([`crate::sched::Point::Published`]): a seeded schedule may let the I/O
/// thread run a round on `sock` here, as if its readiness edge arrived while the dispatching
/// thread was preempted at this point.
fn io_round(sock: &Arc<SimSocket>) {
    if crate::sched::io_round(crate::sched::Point::Published) {
        io::io().push(io::Work::Kick(sock.key()));
        wait_quiescent(std::time::Duration::from_millis(200));
    }
}

/// Runs a queued socket operation: the inline and provider modes run the socket's queues at
/// once, without blocking, on the calling thread (the new operation is queued behind those
/// already pending, so it cannot overtake them) and complete it inline if it finished;
/// otherwise it is pended (cancellable) and the I/O thread is kicked.
fn run_queued(
    sock: &Arc<SimSocket>,
    mut st: MutexGuard<'_, socket::State>,
    irp: *mut IRP,
) -> NTSTATUS {
    let mut done = socket::Done::new();
    if crate::sched::completion_mode() != CompletionMode::Pending {
        st.pump(&mut done);
        if let Some(&(_, status, _)) = done.iter().find(|c| c.0 == irp as usize) {
            drop(st);
            complete_all(done);
            return status;
        }
    }
    let raced = pend(sock, &mut st, irp);
    drop(st);
    done.extend(raced);
    complete_all(done);
    io::io().push(io::Work::Kick(sock.key()));
    STATUS_PENDING
}

// ---------------------------------------------------------------------------------------
// Provider-level dispatch
// ---------------------------------------------------------------------------------------

unsafe extern "system" fn wsk_socket(
    client: PWSK_CLIENT,
    family: u16,
    socket_type: u16,
    protocol: u32,
    flags: u32,
    context: *mut c_void,
    dispatch: *const c_void,
    _process: PEPROCESS,
    _thread: PETHREAD,
    _sd: PSECURITY_DESCRIPTOR,
    irp: PIRP,
) -> NTSTATUS {
    // "IRQL: <= DISPATCH_LEVEL" (nc-wsk-pfn_wsk_socket).
    crate::irql::require_at_most("WskSocket", crate::irql::DISPATCH_LEVEL);
    if let Some(s) = control::check_socket_sd(client, _sd, irp, "WskSocket") {
        return s;
    }
    if !take_irp(irp, "WskSocket") {
        return STATUS_INVALID_PARAMETER;
    }
    if !client_ok(client) {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let (kind, table): (Kind, *const c_void) = match flags {
        WSK_FLAG_DATAGRAM_SOCKET => (Kind::Datagram, &DATAGRAM_DISPATCH as *const _ as _),
        WSK_FLAG_CONNECTION_SOCKET => (Kind::Connection, &CONNECTION_DISPATCH as *const _ as _),
        WSK_FLAG_LISTEN_SOCKET => (Kind::Listen, &LISTEN_DISPATCH as *const _ as _),
        _ => return finish(irp, STATUS_NOT_SUPPORTED, 0),
    };
    let type_ok = match kind {
        Kind::Datagram => socket_type == 2 && (protocol == 17 || protocol == 0),
        Kind::Connection | Kind::Listen => socket_type == 1 && (protocol == 6 || protocol == 0),
    };
    if !type_ok {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let Some(domain) = domain_of(family) else {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    let os = match socket::host_socket(kind, domain) {
        Ok(s) => s,
        Err(e) => return finish(irp, crate::status::from_io_error(&e), 0),
    };
    let sock = SimSocket::new(
        kind,
        domain,
        table,
        client as usize,
        context as usize,
        dispatch as usize,
        os,
    );
    sock.publish();
    finish(irp, STATUS_SUCCESS, sock.key())
}

unsafe extern "system" fn wsk_socket_connect(
    client: PWSK_CLIENT,
    socket_type: u16,
    protocol: u32,
    local: PSOCKADDR,
    remote: PSOCKADDR,
    _flags: u32,
    context: *mut c_void,
    dispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
    _process: PEPROCESS,
    _thread: PETHREAD,
    _sd: PSECURITY_DESCRIPTOR,
    irp: PIRP,
) -> NTSTATUS {
    // "IRQL: <= DISPATCH_LEVEL" (nc-wsk-pfn_wsk_socket_connect).
    crate::irql::require_at_most("WskSocketConnect", crate::irql::DISPATCH_LEVEL);
    if let Some(s) = control::check_socket_sd(client, _sd, irp, "WskSocketConnect") {
        return s;
    }
    if !crate::config::socket_connect_implemented() {
        // As Wine 8.0's netio.sys stub does: refuse with STATUS_NOT_IMPLEMENTED *without*
        // taking or completing the IRP (observed in the Windows lane). A client must treat
        // such a final status as the outcome instead of waiting for a completion.
        return STATUS_NOT_IMPLEMENTED;
    }
    if !take_irp(irp, "WskSocketConnect") {
        return STATUS_INVALID_PARAMETER;
    }
    if !client_ok(client) || socket_type != 1 || !(protocol == 6 || protocol == 0) {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: SOCKADDRs per the WSK contract.
    let (Some(l), Some(r)) = (unsafe { addr::read(local) }, unsafe { addr::read(remote) }) else {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    if l.is_ipv4() != r.is_ipv4() {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let domain = if l.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let os = match socket::host_socket(Kind::Connection, domain) {
        Ok(s) => s,
        Err(e) => return finish(irp, crate::status::from_io_error(&e), 0),
    };
    if let Err(e) = os.bind(&l.into()) {
        return finish(irp, crate::status::from_io_error(&e), 0);
    }
    let sock = SimSocket::new(
        Kind::Connection,
        domain,
        &CONNECTION_DISPATCH as *const _ as *const c_void,
        client as usize,
        context as usize,
        dispatch as usize,
        os,
    );
    let key = sock.key();
    let mut st = sock.lock();
    st.bound = true;
    st.discard_on_connect_failure = true;
    match sock.start_connect(&mut st, r, irp, key) {
        Ok(Some((_, status, info))) => {
            if status >= 0 {
                drop(st);
                sock.publish();
                finish(irp, status, info)
            } else {
                let rest = sock.shutdown(&mut st);
                drop(st);
                complete_all(rest);
                sock.discard();
                finish(irp, status, 0)
            }
        }
        Ok(None) => {
            // Publish and pend under one hold of the socket's lock: once published, the I/O
            // thread may see the connect finish and complete the IRP, so the IRP must be
            // pended (IoMarkIrpPending, cancel routine) before the lock is released. Releasing
            // it in between let the I/O thread complete the IRP first, and IoMarkIrpPending
            // then wrote past the completed packet (defect 13, tests/heap_corruption.rs).
            sock.publish();
            let status = run_queued(&sock, st, irp);
            io_round(&sock);
            status
        }
        Err(status) => {
            drop(st);
            sock.discard();
            finish(irp, status, 0)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Socket-level dispatch
// ---------------------------------------------------------------------------------------

unsafe extern "system" fn wsk_close_socket(socket: PWSK_SOCKET, irp: PIRP) -> NTSTATUS {
    // "IRQL: <= DISPATCH_LEVEL" (nc-wsk-pfn_wsk_close_socket).
    crate::irql::require_at_most("WskCloseSocket", crate::irql::DISPATCH_LEVEL);
    if !take_irp(irp, "WskCloseSocket") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = io::io().sockets().remove(&(socket as usize)) else {
        verifier::violation(
            Rule::InvalidSocket,
            format!("WskCloseSocket({socket:p}): not a live WSK socket"),
        );
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    let cancelled = {
        let mut st = sock.lock();
        sock.shutdown(&mut st)
    };
    complete_all(cancelled);
    // No callback runs after this; retained indication lists are reclaimed (a violation).
    events::on_close(&sock);
    sock.closed();
    // "the WSK subsystem deallocates the socket": the client's pointer dangles from here on.
    sock.free_handle();
    finish(irp, STATUS_SUCCESS, 0)
}

unsafe extern "system" fn wsk_bind(
    socket: PWSK_SOCKET,
    local: PSOCKADDR,
    _flags: u32,
    irp: PIRP,
) -> NTSTATUS {
    if !take_irp(irp, "WskBind") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskBind") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    // SAFETY: SOCKADDR per the WSK contract.
    let Some(a) = (unsafe { addr::read(local) }) else {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    if a.is_ipv4() != (sock.family == Domain::IPV4) {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let mut st = sock.lock();
    if st.bound {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    let r = match st.os.as_ref() {
        Some(os) => os.bind(&a.into()),
        None => return finish(irp, STATUS_INVALID_DEVICE_STATE, 0),
    };
    // A listening socket listens from its bind on: "After a WSK application binds a
    // listening socket to a local transport address, the socket begins listening for
    // incoming connections" (https://learn.microsoft.com/en-us/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections).
    let r = match (r, sock.kind, st.os.as_ref()) {
        (Ok(()), Kind::Listen, Some(os)) => os.listen(LISTEN_BACKLOG),
        (r, _, _) => r,
    };
    let status = match r {
        Ok(()) => {
            st.bound = true;
            if sock.kind != Kind::Connection {
                sock.ensure_registered(&mut st);
            }
            STATUS_SUCCESS
        }
        Err(e) => crate::status::from_io_error(&e),
    };
    drop(st);
    finish(irp, status, 0)
}

unsafe extern "system" fn wsk_connect(
    socket: PWSK_SOCKET,
    remote: PSOCKADDR,
    _flags: u32,
    irp: PIRP,
) -> NTSTATUS {
    if !take_irp(irp, "WskConnect") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskConnect") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    // SAFETY: SOCKADDR per the WSK contract.
    let Some(r) = (unsafe { addr::read(remote) }) else {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    };
    let mut st = sock.lock();
    // WskConnect on an unbound socket: STATUS_INVALID_DEVICE_STATE. The rule is the
    // WskConnect page's (Remarks: only on a socket "previously bound to a local transport
    // address by calling the WskBind function",
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect);
    // the page names no status for it, so the value is our reading (docs/ntstatus-mapping.md).
    if !st.bound || st.connected {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    match sock.start_connect(&mut st, r, irp, 0) {
        Ok(Some((_, status, info))) => {
            drop(st);
            finish(irp, status, info)
        }
        Ok(None) => run_queued(&sock, st, irp),
        Err(status) => finish(irp, status, 0),
    }
}

unsafe extern "system" fn wsk_get_local_address(
    socket: PWSK_SOCKET,
    out: PSOCKADDR,
    irp: PIRP,
) -> NTSTATUS {
    get_address(socket, out, irp, true)
}

unsafe extern "system" fn wsk_get_remote_address(
    socket: PWSK_SOCKET,
    out: PSOCKADDR,
    irp: PIRP,
) -> NTSTATUS {
    get_address(socket, out, irp, false)
}

fn get_address(socket: PWSK_SOCKET, out: PSOCKADDR, irp: PIRP, local: bool) -> NTSTATUS {
    if !crate::config::address_queries_implemented() {
        // As Wine 8.0's netio.sys stubs: refused without taking or completing the IRP.
        return STATUS_NOT_IMPLEMENTED;
    }
    if !take_irp(irp, "WskGetAddress") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskGetAddress") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if out.is_null() {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let st = sock.lock();
    let a = st.os.as_ref().and_then(|os| {
        if local {
            if !st.bound && !st.connected {
                return None;
            }
            os.local_addr().ok()
        } else {
            os.peer_addr().ok()
        }
    });
    drop(st);
    match a.and_then(|a| a.as_socket()) {
        Some(a) => {
            // SAFETY: the client's buffer is a SOCKADDR of the socket's family.
            unsafe { addr::write(out, &a) };
            finish(irp, STATUS_SUCCESS, 0)
        }
        None => finish(
            irp,
            if local {
                STATUS_INVALID_DEVICE_STATE
            } else {
                STATUS_INVALID_CONNECTION
            },
            0,
        ),
    }
}

unsafe extern "system" fn wsk_send(
    socket: PWSK_SOCKET,
    buf: PWSK_BUF,
    _flags: u32,
    irp: PIRP,
) -> NTSTATUS {
    if !take_irp(irp, "WskSend") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskSend") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if buf.is_null() || sock.kind != Kind::Connection {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: WSK_BUF per the WSK contract.
    let b = unsafe { *buf };
    if !validate_buf(&b, "WskSend") {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let mut st = sock.lock();
    if !st.connected {
        return finish(irp, STATUS_INVALID_CONNECTION, 0);
    }
    sock.queue_send(&mut st, irp, b);
    run_queued(&sock, st, irp)
}

unsafe extern "system" fn wsk_send_to(
    socket: PWSK_SOCKET,
    buf: PWSK_BUF,
    _flags: u32,
    remote: PSOCKADDR,
    _control_len: u32,
    _control: PCMSGHDR,
    irp: PIRP,
) -> NTSTATUS {
    if !take_irp(irp, "WskSendTo") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskSendTo") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if buf.is_null() || sock.kind != Kind::Datagram {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: WSK_BUF per the WSK contract.
    let b = unsafe { *buf };
    if !validate_buf(&b, "WskSendTo") {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let mut st = sock.lock();
    if !st.bound {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    let to = if remote.is_null() {
        // Seed 001: a NULL RemoteAddress sends to the fixed remote address
        // (SIO_WSK_SET_REMOTE_ADDRESS) or the fixed send-to address (SIO_WSK_SET_SENDTO_ADDRESS).
        if st.fixed_remote.is_some() {
            None
        } else if let Some(a) = st.sendto_addr {
            Some(a)
        } else {
            return finish(irp, STATUS_INVALID_PARAMETER, 0);
        }
    } else {
        // SAFETY: SOCKADDR per the WSK contract.
        match unsafe { addr::read(remote) } {
            Some(a) if a.is_ipv4() == (sock.family == Domain::IPV4) => Some(a),
            _ => return finish(irp, STATUS_INVALID_PARAMETER, 0),
        }
    };
    sock.queue_send_to(&mut st, irp, b, to);
    run_queued(&sock, st, irp)
}

/// Backlog of emulated listening sockets (the host's SOMAXCONN caps it).
const LISTEN_BACKLOG: i32 = 512;

/// The connection-socket dispatch table (for sockets that listening sockets accept).
pub(crate) fn connection_dispatch() -> *const c_void {
    &CONNECTION_DISPATCH as *const _ as *const c_void
}

/// `WskReceive`: `WSK_FLAG_WAITALL` completes when the buffer is full, at the peer's FIN, on
/// an abortive disconnect, or on cancel (WskReceive docs); without it, as soon as some bytes
/// arrived. A completion with 0 bytes means the peer disconnected gracefully.
/// `WSK_FLAG_DRAIN` is not emulated: `STATUS_NOT_SUPPORTED` ("a specified flag is not
/// supported", a status the WskReceive docs list). Not connected: `STATUS_INVALID_CONNECTION`
/// (our choice, as for WskSend).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
unsafe extern "system" fn wsk_receive(
    socket: PWSK_SOCKET,
    buf: PWSK_BUF,
    flags: u32,
    irp: PIRP,
) -> NTSTATUS {
    if !take_irp(irp, "WskReceive") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskReceive") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if buf.is_null() || sock.kind != Kind::Connection {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    if flags & WSK_FLAG_DRAIN != 0 || flags & !(WSK_FLAG_WAITALL | WSK_FLAG_DRAIN) != 0 {
        return finish(irp, STATUS_NOT_SUPPORTED, 0);
    }
    // SAFETY: WSK_BUF per the WSK contract.
    let b = unsafe { *buf };
    if !validate_buf(&b, "WskReceive") {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let mut st = sock.lock();
    if st.aborted {
        return finish(irp, STATUS_CONNECTION_ABORTED, 0);
    }
    if !st.connected {
        return finish(irp, STATUS_INVALID_CONNECTION, 0);
    }
    sock.queue_recv(&mut st, irp, b, flags & WSK_FLAG_WAITALL != 0);
    run_queued(&sock, st, irp)
}

/// `WskReceiveFrom`: one datagram into `buf`, the sender's address into `remote` (optional).
/// `ControlLength`, if given, is set to 0 (no control information is emulated).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn wsk_receive_from(
    socket: PWSK_SOCKET,
    buf: PWSK_BUF,
    _flags: u32,
    remote: PSOCKADDR,
    control_len: *mut u32,
    _control: PCMSGHDR,
    control_flags: *mut u32,
    irp: PIRP,
) -> NTSTATUS {
    if !take_irp(irp, "WskReceiveFrom") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskReceiveFrom") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if buf.is_null() || sock.kind != Kind::Datagram {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: WSK_BUF per the WSK contract.
    let b = unsafe { *buf };
    if !validate_buf(&b, "WskReceiveFrom") {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: optional caller-provided ULONGs.
    unsafe {
        if !control_len.is_null() {
            *control_len = 0;
        }
        if !control_flags.is_null() {
            *control_flags = 0;
        }
    }
    let mut st = sock.lock();
    if !st.bound {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    sock.queue_recv_from(&mut st, irp, b, remote as usize);
    run_queued(&sock, st, irp)
}

/// `WskAccept`: completes with the accepted connection socket in `IoStatus.Information`, and
/// its local and remote addresses in the optional buffers. The accepted socket gets
/// `AcceptSocketContext` / `AcceptSocketDispatch` for its event callbacks.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
unsafe extern "system" fn wsk_accept(
    socket: PWSK_SOCKET,
    _flags: u32,
    context: *mut c_void,
    dispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
    local: PSOCKADDR,
    remote: PSOCKADDR,
    irp: PIRP,
) -> NTSTATUS {
    if !take_irp(irp, "WskAccept") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskAccept") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if sock.kind != Kind::Listen {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let mut st = sock.lock();
    if !st.bound {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    sock.queue_accept(
        &mut st,
        socket::AcceptOp {
            irp: irp as usize,
            context: context as usize,
            dispatch: dispatch as usize,
            local: local as usize,
            remote: remote as usize,
        },
    );
    run_queued(&sock, st, irp)
}

/// `WskDisconnect`: graceful (after queued sends and the optional final `Buffer`,
/// shutdown(SHUT_WR): the peer reads EOF) or abortive with `WSK_FLAG_ABORTIVE` (the peer gets
/// an RST; `Buffer` must then be NULL, else `STATUS_INVALID_PARAMETER`). Not connected:
/// `STATUS_INVALID_CONNECTION` (our choice).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
unsafe extern "system" fn wsk_disconnect(
    socket: PWSK_SOCKET,
    buf: PWSK_BUF,
    flags: u32,
    irp: PIRP,
) -> NTSTATUS {
    if !crate::config::disconnect_implemented() {
        // As Wine 8.0's netio.sys stub: refused without taking or completing the IRP.
        return STATUS_NOT_IMPLEMENTED;
    }
    if !take_irp(irp, "WskDisconnect") {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(sock) = lookup(socket, "WskDisconnect") else {
        return finish(irp, STATUS_INVALID_HANDLE, 0);
    };
    if sock.kind != Kind::Connection {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let abortive = flags & WSK_FLAG_ABORTIVE != 0;
    // WskDisconnect docs: "If WSK_FLAG_ABORTIVE is specified in the Flags parameter, the
    // Buffer parameter must be NULL."
    if abortive && !buf.is_null() {
        return finish(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let b = if buf.is_null() {
        None
    } else {
        // SAFETY: WSK_BUF per the WSK contract.
        let b = unsafe { *buf };
        if !validate_buf(&b, "WskDisconnect") {
            return finish(irp, STATUS_INVALID_PARAMETER, 0);
        }
        Some(b)
    };
    let mut st = sock.lock();
    if !st.connected {
        return finish(irp, STATUS_INVALID_CONNECTION, 0);
    }
    if abortive {
        let cancelled = sock.abort(&mut st);
        drop(st);
        complete_all(cancelled);
        return finish(irp, STATUS_SUCCESS, 0);
    }
    if st.send_shutdown || !sock.queue_disconnect(&mut st, irp, b) {
        return finish(irp, STATUS_INVALID_DEVICE_STATE, 0);
    }
    run_queued(&sock, st, irp)
}

static PROVIDER_DISPATCH: WSK_PROVIDER_DISPATCH = WSK_PROVIDER_DISPATCH {
    Version: PROVIDER_VERSION,
    Reserved: 0,
    WskSocket: Some(wsk_socket),
    WskSocketConnect: Some(wsk_socket_connect),
    WskControlClient: Some(control::wsk_control_client),
    WskGetAddressInfo: Some(names::wsk_get_address_info),
    WskFreeAddressInfo: Some(names::wsk_free_address_info),
    WskGetNameInfo: Some(names::wsk_get_name_info),
};

const BASIC: WSK_PROVIDER_BASIC_DISPATCH = WSK_PROVIDER_BASIC_DISPATCH {
    WskControlSocket: Some(control::wsk_control_socket),
    WskCloseSocket: Some(wsk_close_socket),
};

static CONNECTION_DISPATCH: WSK_PROVIDER_CONNECTION_DISPATCH = WSK_PROVIDER_CONNECTION_DISPATCH {
    Basic: BASIC,
    WskBind: Some(wsk_bind),
    WskConnect: Some(wsk_connect),
    WskGetLocalAddress: Some(wsk_get_local_address),
    WskGetRemoteAddress: Some(wsk_get_remote_address),
    WskSend: Some(wsk_send),
    WskReceive: Some(wsk_receive),
    WskDisconnect: Some(wsk_disconnect),
    WskRelease: Some(events::wsk_release_data),
    WskConnectEx: Some(connect_ex::wsk_connect_ex),
    WskSendEx: None,
    WskReceiveEx: None,
};

static DATAGRAM_DISPATCH: WSK_PROVIDER_DATAGRAM_DISPATCH = WSK_PROVIDER_DATAGRAM_DISPATCH {
    Basic: BASIC,
    WskBind: Some(wsk_bind),
    WskSendTo: Some(wsk_send_to),
    WskReceiveFrom: Some(wsk_receive_from),
    WskRelease: Some(events::wsk_release_datagram),
    WskGetLocalAddress: Some(wsk_get_local_address),
    WskSendMessages: None,
};

static LISTEN_DISPATCH: WSK_PROVIDER_LISTEN_DISPATCH = WSK_PROVIDER_LISTEN_DISPATCH {
    Basic: BASIC,
    WskBind: Some(wsk_bind),
    WskAccept: Some(wsk_accept),
    WskInspectComplete: Some(events::wsk_inspect_complete),
    WskGetLocalAddress: Some(wsk_get_local_address),
};
