//! Regression test for issue 12, defect 11: a graceful DISCONNECT behind a send that cannot
//! drain must pend like any other request and be cancelable (docs/ioctl.md, "Cancellation":
//! every DEVICE_CONTROL request is cancelable while it is pending).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use ntsim::iomgr::{self, UserHandle};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

fn open_stream(h: &UserHandle, to: std::net::SocketAddr) -> OpenStreamResponse {
    let mut out = vec![0u8; 72];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&to, None).as_bytes(),
        &mut out,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    OpenStreamResponse::read_from_bytes(&out).unwrap()
}

/// OPEN_STREAM to a peer that accepts and never reads; SEND 32 MiB (pends: the socket
/// buffers fill); graceful DISCONNECT (must pend too: its FIN queues behind the data, and the
/// dispatch routine must return at once); `CancelIoEx(handle, NULL)`: both complete within
/// 2 s, STATUS_CANCELLED, in both completion modes. The old code waited for WskDisconnect
/// inside the dispatch routine: the DISCONNECT call did not return (the overlapped call
/// below ran on a helper thread and did not come back within 2 s), and CancelIoEx could not
/// reach it.
#[test]
fn graceful_disconnect_behind_a_stuck_send_pends_and_is_cancelable() {
    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
    ] {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        let h = std::sync::Arc::new(iomgr::open(USER_PATH).expect("open"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = open_stream(&h, listener.local_addr().unwrap());
        let (conn, _) = listener.accept().unwrap(); // accepted, never read
        let send = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(s.handle).as_bytes().to_vec(),
            vec![0x3cu8; 32 << 20],
        );
        assert!(
            send.wait(Duration::from_millis(300)).is_none(),
            "32 MiB to a peer that never reads pends"
        );
        // The DISCONNECT is issued from another thread: with the old code its
        // DeviceIoControl does not return (the dispatch routine blocks), and the test must
        // still be able to fail instead of hanging.
        let (tx, rx) = std::sync::mpsc::channel();
        let h2 = h.clone();
        let handle = s.handle;
        let issuer = std::thread::spawn(move || {
            let ov = h2.device_io_control_overlapped(
                IOCTL_WSKCLIENT_DISCONNECT,
                DisconnectRequest::new(handle, false).as_bytes().to_vec(),
                Vec::new(),
            );
            let _ = tx.send(());
            ov
        });
        let returned = rx.recv_timeout(Duration::from_secs(2)).is_ok();
        if !returned {
            // Unblock the old code (a reset ends the stuck WskDisconnect) before failing.
            drop(conn);
            let _ = issuer.join();
            let _ = send.wait(Duration::from_secs(10));
            drop(h);
            let _ = driver.unload();
            panic!("DISCONNECT's dispatch routine did not return within 2 s ({mode:?})");
        }
        let disconnect = issuer.join().unwrap();
        assert!(
            disconnect.wait(Duration::from_millis(200)).is_none(),
            "the graceful DISCONNECT pends behind the stuck send"
        );
        let t = Instant::now();
        h.cancel_io();
        let st = send
            .wait(Duration::from_secs(2))
            .expect("SEND completed within 2 s of CancelIoEx");
        assert_eq!((st.status, st.information), (STATUS_CANCELLED, 0), "SEND");
        let st = disconnect
            .wait(Duration::from_secs(2))
            .expect("DISCONNECT completed within 2 s of CancelIoEx");
        assert_eq!(st.status, STATUS_CANCELLED, "DISCONNECT");
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(conn);
        drop(h);
        driver.unload().expect("unload");
        scope.assert_clean();
    }
}

/// A provider whose WskDisconnect refuses the IRP without completing it (Wine 8.0's stub;
/// `ntsim::config::set_disconnect_implemented(false)`): the graceful DISCONNECT, which pends
/// since the defect-11 fix, must still complete with the refusal (STATUS_NOT_IMPLEMENTED)
/// instead of waiting forever for a completion routine that never runs; the socket stays
/// usable and nothing leaks. Before the fix `start_async` ignored the routine's status: the
/// request never completed (seen under Wine by the lane's author, reproduced here: the wait
/// below timed out) and its IRP and block leaked.
#[test]
fn graceful_disconnect_refused_by_the_provider_completes() {
    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
    ] {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        ntsim::config::set_disconnect_implemented(false);
        // As under Wine, whose WskDisconnect refuses this way: no IoSetCompletionRoutineEx
        // (a stub there). Its context for an IRP nobody completes could never be released.
        ntsim::completion_ex::set_available(false);
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        let h = iomgr::open(USER_PATH).expect("open");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = open_stream(&h, listener.local_addr().unwrap());
        let (mut conn, _) = listener.accept().unwrap();
        let disconnect = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_DISCONNECT,
            DisconnectRequest::new(s.handle, false).as_bytes().to_vec(),
            Vec::new(),
        );
        let st = disconnect.wait(Duration::from_secs(5));
        let Some(st) = st else {
            h.cancel_io();
            drop(h);
            let _ = driver.unload();
            panic!("DISCONNECT refused by the provider never completed ({mode:?})");
        };
        assert_eq!(st.status, STATUS_NOT_IMPLEMENTED, "{mode:?}");
        // The socket still works: a SEND reaches the peer.
        let sent = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(s.handle).as_bytes().to_vec(),
            b"after".to_vec(),
        );
        let st = sent.wait(Duration::from_secs(5)).expect("SEND completed");
        assert_eq!((st.status, st.information), (STATUS_SUCCESS, 5));
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut conn, &mut got).unwrap();
        assert_eq!(&got, b"after");
        drop(h);
        driver.unload().expect("unload");
        scope.assert_clean();
    }
}
