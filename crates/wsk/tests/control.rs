//! Client controls through `WskControlClient`: the transport list
//! (`WSK_TRANSPORT_LIST_QUERY`), cached security descriptors (`WSK_CACHE_SD` /
//! `WSK_RELEASE_SD`) used at socket creation and through `SO_WSK_SECURITY`, and the
//! verifier's rule against descriptors that are not cached. Both completion paths.

mod common;

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_INVALID_PARAMETER, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING,
    STATUS_SUCCESS,
};
use wsk::control::CachedSecurityDescriptor;
use wsk::irp::{set_completion_routine, OwnedIrp};
use wsk::{ListenSocket, StreamSocket, WskClient};
use wsk_sys::{WSK_FLAG_LISTEN_SOCKET, WSK_SOCKET};

#[test]
fn transport_list_has_tcp_and_udp_over_both_families() {
    let scope = begin(CompletionMode::Pending);
    {
        let client = WskClient::register(1000).expect("register");
        let list = client.transports().expect("transports");
        let mut triples: Vec<(u16, u32, u16)> = list
            .iter()
            .map(|t| (t.socket_type, t.protocol, t.address_family))
            .collect();
        triples.sort();
        assert_eq!(
            triples,
            vec![(1, 6, 2), (1, 6, 23), (2, 17, 2), (2, 17, 23)]
        );
    }
    scope.assert_clean();
}

/// The size rule: OutputSize 0 / OutputBuffer NULL answers STATUS_BUFFER_OVERFLOW with the
/// bytes needed (wsk-transport-list-query page).
#[test]
fn transport_list_size_query() {
    let scope = begin(CompletionMode::Pending);
    {
        let client = WskClient::register(1000).expect("register");
        let control = client.dispatch().WskControlClient.expect("control");
        let mut need = 0usize;
        // SAFETY: size query with no buffers; no IRP.
        let s = unsafe {
            control(
                client.raw_client(),
                wsk_sys::WSK_TRANSPORT_LIST_QUERY,
                0,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut need,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(s, windows_sys::Win32::Foundation::STATUS_BUFFER_OVERFLOW);
        assert_eq!(need, 4 * std::mem::size_of::<wsk_sys::WSK_TRANSPORT>());
    }
    scope.assert_clean();
}

/// A cached SD applied with SO_WSK_SECURITY before bind; the socket then listens and
/// accepts a real peer; the SD is released on drop (no pool left: the provider's copy is
/// pool, so a missing release fails assert_clean).
fn cached_sd_socket(mode: CompletionMode, at: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).expect("register");
        let sd = CachedSecurityDescriptor::cache_empty(&client).expect("cache");
        assert!(!sd.as_raw().is_null());
        let s = StreamSocket::create(&client, &at.parse().unwrap()).expect("create");
        s.set_security_descriptor(&sd).expect("SO_WSK_SECURITY");
        s.bind(at.parse().unwrap()).expect("bind");
        let l = ListenSocket::bind(&client, at.parse().unwrap()).expect("listen");
        let addr = l.local_address().expect("addr");
        s.connect_to(addr, Some(Duration::from_secs(10)))
            .expect("connect");
        let acc = l.accept().expect("accept");
        assert_eq!(acc.remote, s.local_address().expect("local"));
        drop(acc);
        drop(s);
        drop(l);
        let created = raw_socket_with_sd(&client, sd.as_raw(), at);
        assert_eq!(created.0, STATUS_SUCCESS, "WskSocket with a cached SD");
        close_raw(created.1);
        drop(sd);
    }
    scope.assert_clean();
}

static DONE: AtomicI32 = AtomicI32::new(i32::MIN);

unsafe extern "system" fn record(
    _d: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    _c: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the completed IRP, alive until the test frees it.
    DONE.store(
        unsafe { (*irp).IoStatus.Anonymous.Status },
        Ordering::SeqCst,
    );
    STATUS_MORE_PROCESSING_REQUIRED
}

fn wait_done() -> NTSTATUS {
    let deadline = Instant::now() + Duration::from_secs(10);
    while DONE.load(Ordering::SeqCst) == i32::MIN && Instant::now() < deadline {
        ntsim::wait_quiescent(Duration::from_millis(50));
    }
    DONE.load(Ordering::SeqCst)
}

/// A raw `WskSocket(WSK_FLAG_LISTEN_SOCKET)` with the given SecurityDescriptor; returns the
/// IRP's final status and the socket (NULL on failure).
fn raw_socket_with_sd(
    client: &WskClient,
    sd: windows_sys::Win32::Security::PSECURITY_DESCRIPTOR,
    at: &str,
) -> (NTSTATUS, usize) {
    let socket = client.dispatch().WskSocket.expect("WskSocket");
    let irp = OwnedIrp::allocate().expect("irp");
    DONE.store(i32::MIN, Ordering::SeqCst);
    let family = if at.starts_with('[') { 23 } else { 2 };
    // SAFETY: fresh IRP with our completion routine; it stays allocated until freed below,
    // after completion.
    let r = unsafe {
        set_completion_routine(irp.as_ptr(), record, std::ptr::null_mut());
        socket(
            client.raw_client(),
            family,
            1,
            6,
            WSK_FLAG_LISTEN_SOCKET,
            std::ptr::null_mut(),
            std::ptr::null(),
            0,
            0,
            sd,
            irp.as_ptr(),
        )
    };
    let status = wait_done();
    assert!(r == status || r == STATUS_PENDING);
    (status, irp.io_status().1)
}

fn close_raw(s: usize) {
    let sock = s as *mut WSK_SOCKET;
    // SAFETY: a live socket the provider created for us; its dispatch starts with the basic
    // table.
    let basic = unsafe { &*((*sock).Dispatch as *const wsk_sys::WSK_PROVIDER_BASIC_DISPATCH) };
    let irp = OwnedIrp::allocate().expect("irp");
    DONE.store(i32::MIN, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe {
        set_completion_routine(irp.as_ptr(), record, std::ptr::null_mut());
        basic.WskCloseSocket.expect("close")(sock, irp.as_ptr());
    }
    assert_eq!(wait_done(), STATUS_SUCCESS);
}

#[test]
fn cached_sd_ipv4_pending() {
    cached_sd_socket(CompletionMode::Pending, "127.0.0.1:0");
}
#[test]
fn cached_sd_ipv4_inline() {
    cached_sd_socket(CompletionMode::Inline, "127.0.0.1:0");
}
#[test]
fn cached_sd_ipv6_pending() {
    cached_sd_socket(CompletionMode::Pending, "[::1]:0");
}
#[test]
fn cached_sd_ipv6_inline() {
    cached_sd_socket(CompletionMode::Inline, "[::1]:0");
}

/// A SecurityDescriptor that is not a cached copy is refused (STATUS_INVALID_PARAMETER) and
/// recorded as a SecurityDescriptorNotCached violation; so is a double release.
fn bogus_sd_refused(mode: CompletionMode) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).expect("register");
        let mut fake = [1u8; 64];
        let (status, s) =
            raw_socket_with_sd(&client, fake.as_mut_ptr() as *mut c_void, "127.0.0.1:0");
        assert_eq!(status, STATUS_INVALID_PARAMETER);
        assert_eq!(s, 0);
        let v = ntsim::verifier::take_violations();
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(
            v[0].rule,
            ntsim::verifier::Rule::SecurityDescriptorNotCached
        );
        let sd = CachedSecurityDescriptor::cache_empty(&client).expect("cache");
        let raw = sd.as_raw();
        drop(sd);
        let control = client.dispatch().WskControlClient.expect("control");
        let mut input = raw;
        // SAFETY: releasing an already released pointer: the emulator only looks it up.
        let s = unsafe {
            control(
                client.raw_client(),
                wsk_sys::WSK_RELEASE_SD,
                8,
                &mut input as *mut _ as *mut c_void,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(s, STATUS_INVALID_PARAMETER);
        let v = ntsim::verifier::take_violations();
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(
            v[0].rule,
            ntsim::verifier::Rule::SecurityDescriptorNotCached
        );
    }
    scope.assert_clean();
}

#[test]
fn bogus_sd_refused_pending() {
    bogus_sd_refused(CompletionMode::Pending);
}
#[test]
fn bogus_sd_refused_inline() {
    bogus_sd_refused(CompletionMode::Inline);
}
