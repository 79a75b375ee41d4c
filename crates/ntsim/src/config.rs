//! The emulator's switches: completion path, provider availability, failure injection.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

/// How the WSK provider completes IRPs.
///
/// [`CompletionMode::Provider`] is the default; [`CompletionMode::Pending`] and
/// [`CompletionMode::Inline`] force one path so that tests can cover each (a test that needs
/// one of them sets it with [`set_completion_mode`] or `WSKCTL_NTSIM_COMPLETION`). A seeded
/// schedule ([`crate::sched`]) overrides the mode per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CompletionMode {
    /// Every operation returns `STATUS_PENDING` and its IRP is completed later from the
    /// provider's I/O thread (at DISPATCH_LEVEL).
    Pending = 0,
    /// Operations that can finish at once complete inside the dispatch call (the completion
    /// routine runs before the call returns, at DISPATCH_LEVEL) and return their final status;
    /// the rest pend. A connect blocks the dispatch call until the connection is made (at
    /// most 10 s), so that it too completes inline.
    Inline = 1,
    /// The default, shaped like a provider's fast path: send, send-to, receive, receive-from,
    /// accept and disconnect try the host socket once, without blocking, on the calling
    /// thread; if the socket takes the bytes (or has the data, datagram or connection) now,
    /// the IRP completes inline and the routine returns its final status, otherwise the IRP
    /// pends (IoMarkIrpPending, cancel routine) and the I/O thread completes it. An operation
    /// queues behind the IRPs already pending on its socket, so it never overtakes them. A
    /// connect starts without blocking and completes inline only if the host connect
    /// finished at once. This models the shape of a fast path (the client must handle both
    /// outcomes on every call); it is not observed Windows timing: when Windows' provider
    /// completes inline was never measured here.
    Provider = 2,
}

static MODE: AtomicU8 = AtomicU8::new(CompletionMode::Provider as u8);
static PROVIDER_AVAILABLE: AtomicBool = AtomicBool::new(true);
static POOL_FAILURES: AtomicU32 = AtomicU32::new(0);
static IRP_FAILURES: AtomicU32 = AtomicU32::new(0);
static HANG_LIMIT_MS: AtomicU64 = AtomicU64::new(30_000);
static SOCKET_CONNECT_IMPLEMENTED: AtomicBool = AtomicBool::new(true);
static EX_ALLOCATE_POOL2: AtomicBool = AtomicBool::new(true);
static CONNECT_EX_IMPLEMENTED: AtomicBool = AtomicBool::new(true);
static ADDRESS_QUERIES_IMPLEMENTED: AtomicBool = AtomicBool::new(true);
static DISCONNECT_IMPLEMENTED: AtomicBool = AtomicBool::new(true);

/// Makes `MmGetSystemRoutineAddress("ExAllocatePool2")` return NULL, as on Wine 8.0 and on
/// Windows before version 2004.
pub fn set_ex_allocate_pool2_available(available: bool) {
    EX_ALLOCATE_POOL2.store(available, Ordering::SeqCst);
}

pub(crate) fn ex_allocate_pool2_available() -> bool {
    EX_ALLOCATE_POOL2.load(Ordering::SeqCst)
}

/// Sets the completion path for WSK operations.
pub fn set_completion_mode(mode: CompletionMode) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

/// The completion path for WSK operations.
pub fn completion_mode() -> CompletionMode {
    match MODE.load(Ordering::Relaxed) {
        0 => CompletionMode::Pending,
        1 => CompletionMode::Inline,
        _ => CompletionMode::Provider,
    }
}

/// Makes the WSK provider NPI available or not (as when netio has not attached yet).
/// `WskCaptureProviderNPI` waits for it within its timeout.
pub fn set_provider_available(available: bool) {
    PROVIDER_AVAILABLE.store(available, Ordering::SeqCst);
    crate::wsk::provider_availability_changed();
}

/// Whether the provider NPI is available.
pub fn provider_available() -> bool {
    PROVIDER_AVAILABLE.load(Ordering::SeqCst)
}

/// Makes the next `n` pool allocations fail (return NULL).
pub fn fail_next_pool_allocations(n: u32) {
    POOL_FAILURES.store(n, Ordering::SeqCst);
}

/// Makes the next `n` `IoAllocateIrp` calls fail (return NULL).
pub fn fail_next_irp_allocations(n: u32) {
    IRP_FAILURES.store(n, Ordering::SeqCst);
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

pub(crate) fn take_pool_failure() -> bool {
    take(&POOL_FAILURES)
}

pub(crate) fn take_irp_failure() -> bool {
    take(&IRP_FAILURES)
}

/// How long an infinite wait may last before the verifier reports a suspected hang.
pub fn hang_limit() -> Duration {
    Duration::from_millis(HANG_LIMIT_MS.load(Ordering::SeqCst))
}

/// Sets the hang limit.
pub fn set_hang_limit(limit: Duration) {
    HANG_LIMIT_MS.store(limit.as_millis() as u64, Ordering::SeqCst);
}

/// Makes the provider's `WskSocketConnect` return `STATUS_NOT_IMPLEMENTED` without taking or
/// completing the IRP, as Wine 8.0's netio.sys stub does, so that a client's fallback path —
/// and its handling of a refused, never-completed IRP — can be tested.
pub fn set_socket_connect_implemented(implemented: bool) {
    SOCKET_CONNECT_IMPLEMENTED.store(implemented, Ordering::SeqCst);
}

pub(crate) fn socket_connect_implemented() -> bool {
    SOCKET_CONNECT_IMPLEMENTED.load(Ordering::SeqCst)
}

/// Restores every switch to its default.
pub fn reset() {
    set_completion_mode(CompletionMode::Provider);
    PROVIDER_AVAILABLE.store(true, Ordering::SeqCst);
    POOL_FAILURES.store(0, Ordering::SeqCst);
    IRP_FAILURES.store(0, Ordering::SeqCst);
    HANG_LIMIT_MS.store(30_000, Ordering::SeqCst);
    SOCKET_CONNECT_IMPLEMENTED.store(true, Ordering::SeqCst);
    EX_ALLOCATE_POOL2.store(true, Ordering::SeqCst);
    CONNECT_EX_IMPLEMENTED.store(true, Ordering::SeqCst);
    ADDRESS_QUERIES_IMPLEMENTED.store(true, Ordering::SeqCst);
    DISCONNECT_IMPLEMENTED.store(true, Ordering::SeqCst);
    crate::completion_ex::set_available(true);
    crate::completion_ex::fail_next(0);
    crate::sched::set_seed(None);
    let _ = crate::faults::disarm();
    crate::file::set_async_read_delay(std::time::Duration::from_millis(50));
}

/// Makes the provider's `WskConnectEx` return `STATUS_NOT_IMPLEMENTED` without taking or
/// completing the IRP (as `set_socket_connect_implemented` does for `WskSocketConnect`), so
/// that a client's connect-then-send fallback can be tested. Reset by [`reset`].
pub fn set_connect_ex_implemented(implemented: bool) {
    CONNECT_EX_IMPLEMENTED.store(implemented, Ordering::SeqCst);
}

pub(crate) fn connect_ex_implemented() -> bool {
    CONNECT_EX_IMPLEMENTED.load(Ordering::SeqCst)
}

/// Makes the provider's `WskGetLocalAddress` and `WskGetRemoteAddress` (on connection,
/// listening and datagram sockets) return `STATUS_NOT_IMPLEMENTED` without taking or
/// completing the IRP, as Wine 8.0's netio.sys stubs do (dlls/netio.sys/netio.c), so that a
/// client's degraded paths can be tested. `WskAccept` still reports both addresses (Wine's
/// does, from GetAcceptExSockaddrs). Reset by [`reset`].
pub fn set_address_queries_implemented(implemented: bool) {
    ADDRESS_QUERIES_IMPLEMENTED.store(implemented, Ordering::SeqCst);
}

pub(crate) fn address_queries_implemented() -> bool {
    ADDRESS_QUERIES_IMPLEMENTED.load(Ordering::SeqCst)
}

/// Makes the provider's `WskDisconnect` return `STATUS_NOT_IMPLEMENTED` without taking or
/// completing the IRP, as Wine 8.0's netio.sys stub does (observed in the Windows lane: a
/// graceful DISCONNECT that waited for the completion never ended), so that a client's
/// asynchronous paths can be tested against a refusal. Reset by [`reset`].
pub fn set_disconnect_implemented(implemented: bool) {
    DISCONNECT_IMPLEMENTED.store(implemented, Ordering::SeqCst);
}

pub(crate) fn disconnect_implemented() -> bool {
    DISCONNECT_IMPLEMENTED.load(Ordering::SeqCst)
}
