//! Issue 13: the WDM front-end forwards the user's own SEND / RECEIVE IRP to WskSend /
//! WskReceive on stream sockets ("Using IRPs with Winsock Kernel Functions": an IRP passed
//! down by the I/O manager with a stack location left for WSK; src/wdm.rs,
//! `wsk::StreamSocket::receive_forwarded`). Each such IOCTL then costs no IRP of anyone but
//! the I/O manager, no pool of ours and no `IoSetCompletionRoutineEx` context (`IoCx`);
//! CancelIoEx cancels just that request (WSK owns its cancellation) and leaves the socket
//! usable; CloseHandle with one pending completes it with STATUS_CANCELLED and ends clean.
//!
//! Before forwarding, each of these IOCTLs went through wsk's asynchronous path: a cached
//! driver IRP and one `IoCx` context per operation (the first test failed with IoCx = N),
//! a cancelled RECEIVE aborted its socket (the second test failed: the next RECEIVE got
//! STATUS_INVALID_HANDLE), and a pending RECEIVE held a driver IRP (the third failed: 2 IRPs
//! live for one request). The KMDF front-end keeps that path (a framework request's IRP is
//! the framework's).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

mod frontend;
use frontend::{open_stream, stats};
use ntsim::config::CompletionMode;
use ntsim::faults::OwnAllocations;
use ntsim::iomgr::{self, IoStatus, UserHandle};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::IntoBytes;

const N: usize = 100;
const CHUNK: usize = 256;
const LIMIT: Duration = Duration::from_secs(10);

fn pattern(i: usize) -> Vec<u8> {
    (0..CHUNK).map(|j| (i * 13 + j * 5) as u8).collect()
}

fn begin(mode: CompletionMode) -> (ntsim::Scope, iomgr::LoadedDriver) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("load");
    (scope, driver)
}

fn finish(scope: ntsim::Scope, driver: iomgr::LoadedDriver) {
    driver.unload().expect("unload");
    assert_eq!(ntsim::wsk::live_registrations(), 0);
    scope.assert_clean();
}

fn receive(h: &UserHandle, handle: SocketHandle, len: usize) -> (IoStatus, Vec<u8>) {
    let mut out = vec![0u8; len];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_RECEIVE,
        ReceiveRequest::new(handle).as_bytes(),
        &mut out,
    );
    out.truncate(s.information);
    (s, out)
}

/// Driver-allocated IRPs, our allocations and IoCx contexts while `f` runs.
fn measure(f: impl FnOnce()) -> (u64, OwnAllocations, u64) {
    let irps = ntsim::verifier::snapshot().irp_allocations;
    let own = OwnAllocations::now();
    let cx = ntsim::completion_ex::contexts_allocated();
    f();
    (
        ntsim::verifier::snapshot().irp_allocations - irps,
        OwnAllocations::now().since(&own),
        ntsim::completion_ex::contexts_allocated() - cx,
    )
}

#[test]
fn wdm_send_and_receive_cost_no_irp_and_no_completion_context() {
    for mode in [
        CompletionMode::Pending,
        CompletionMode::Inline,
        CompletionMode::Provider,
    ] {
        let (scope, driver) = begin(mode);
        let h = iomgr::open(USER_PATH).expect("open");
        let sink = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = open_stream(&h, sink.local_addr().unwrap());
        let (mut peer, _) = sink.accept().unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();

        let send = |i: usize| {
            let mut d = pattern(i);
            let s = h.device_io_control(
                IOCTL_WSKCLIENT_SEND,
                SendRequest::new(stream).as_bytes(),
                &mut d,
            );
            assert_eq!((s.status, s.information), (STATUS_SUCCESS, CHUNK));
        };
        // No warm-up: forwarding has nothing to warm.
        let (irps, own, cx) = measure(|| (0..N).for_each(send));
        assert_eq!(
            (irps, own, cx),
            (0, OwnAllocations::default(), 0),
            "{mode:?}: {N} SEND IOCTLs: driver IRPs, our allocations, IoCx contexts"
        );
        let mut got = vec![0u8; CHUNK * N];
        peer.read_exact(&mut got).unwrap();
        for (i, c) in got.chunks(CHUNK).enumerate() {
            assert_eq!(c, &pattern(i)[..], "{mode:?}: SEND {i} at the peer");
        }

        let feed: Vec<u8> = (0..N).flat_map(pattern).collect();
        peer.write_all(&feed).unwrap();
        let mut received = Vec::new();
        let mut ops = 0;
        let (irps, own, cx) = measure(|| {
            while received.len() < feed.len() {
                let (s, d) = receive(&h, stream, CHUNK);
                assert_eq!(s.status, STATUS_SUCCESS);
                assert!(!d.is_empty(), "the peer has not closed");
                received.extend_from_slice(&d);
                ops += 1;
            }
        });
        assert_eq!(
            (irps, own, cx),
            (0, OwnAllocations::default(), 0),
            "{mode:?}: {ops} RECEIVE IOCTLs: driver IRPs, our allocations, IoCx contexts"
        );
        assert!(received == feed, "{mode:?}: RECEIVE bytes");
        let st = stats(&h);
        assert_eq!(
            (
                st.sends,
                st.bytes_sent,
                st.pending_requests,
                st.failed_requests
            ),
            (N as u64, (N * CHUNK) as u64, 0, 0),
            "{mode:?}: counters updated by the forwarded completions"
        );
        eprintln!(
            "{mode:?}: {N} SEND + {ops} RECEIVE IOCTLs: 0 driver IRPs, 0 pool, 0 IoCx contexts"
        );
        drop(h);
        finish(scope, driver);
    }
}

#[test]
fn cancel_io_of_a_forwarded_receive_cancels_just_that_request() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let (scope, driver) = begin(mode);
        let h = iomgr::open(USER_PATH).expect("open");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = open_stream(&h, l.local_addr().unwrap());
        let (mut peer, _) = l.accept().unwrap();
        let ov = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(stream).as_bytes().to_vec(),
            vec![0u8; 64],
        );
        assert!(
            ov.wait(Duration::from_millis(200)).is_none(),
            "{mode:?}: the receive pends (nothing sent)"
        );
        ov.cancel();
        let st = ov.wait(LIMIT).expect("completed after CancelIoEx");
        assert_eq!(
            (st.status, st.information),
            (STATUS_CANCELLED, 0),
            "{mode:?}"
        );
        // The socket is still there and works: the next RECEIVE gets the peer's bytes.
        peer.write_all(b"after the cancel").unwrap();
        let mut got = Vec::new();
        while got.len() < 16 {
            let (s, d) = receive(&h, stream, 64);
            assert_eq!(
                s.status, STATUS_SUCCESS,
                "{mode:?}: socket usable after cancel"
            );
            assert!(!d.is_empty());
            got.extend_from_slice(&d);
        }
        assert_eq!(got, b"after the cancel");
        let st = stats(&h);
        assert_eq!(
            (st.live_sockets, st.pending_requests, st.cancelled_requests),
            (1, 0, 1),
            "{mode:?}"
        );
        drop(h);
        drop(peer);
        finish(scope, driver);
    }
}

#[test]
fn close_handle_with_a_forwarded_receive_pending_completes_it() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let (scope, driver) = begin(mode);
        let h = iomgr::open(USER_PATH).expect("open");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = open_stream(&h, l.local_addr().unwrap());
        let (_peer, _) = l.accept().unwrap();
        let live = ntsim::verifier::snapshot().live_irps;
        let ov = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(stream).as_bytes().to_vec(),
            vec![0u8; 64],
        );
        assert!(ov.wait(Duration::from_millis(200)).is_none(), "pending");
        assert_eq!(
            ntsim::verifier::snapshot().live_irps - live,
            1,
            "{mode:?}: the pending RECEIVE holds the I/O manager's IRP only"
        );
        h.close();
        let st = ov.wait(LIMIT).expect("completed by cleanup");
        assert_eq!(
            (st.status, st.information),
            (STATUS_CANCELLED, 0),
            "{mode:?}"
        );
        finish(scope, driver);
    }
}
