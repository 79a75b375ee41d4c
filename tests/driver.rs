//! The driver end to end on the emulated kernel: loaded through DriverEntry, driven through
//! user-mode handles as Windows builds the IRPs, against real peers.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use ntsim::iomgr::{self, IoStatus, UserHandle};

#[macro_use]
mod frontend;
use frontend::{ioctl, load, stats, Frontend};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

fn open_stream(h: &UserHandle, to: SocketAddr) -> Result<OpenStreamResponse, i32> {
    let (s, out) = ioctl(
        h,
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&to, None).as_bytes(),
        72,
    );
    if s.status != STATUS_SUCCESS {
        return Err(s.status);
    }
    assert_eq!(s.information, 72);
    Ok(OpenStreamResponse::read_from_bytes(&out).unwrap())
}

fn open_datagram(h: &UserHandle, local: SocketAddr) -> OpenDatagramResponse {
    let (s, out) = ioctl(
        h,
        IOCTL_WSKCLIENT_OPEN_DATAGRAM,
        OpenDatagramRequest::new(&local).as_bytes(),
        48,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    OpenDatagramResponse::read_from_bytes(&out).unwrap()
}

fn send(h: &UserHandle, handle: SocketHandle, data: &[u8]) -> IoStatus {
    let mut d = data.to_vec();
    h.device_io_control(
        IOCTL_WSKCLIENT_SEND,
        SendRequest::new(handle).as_bytes(),
        &mut d,
    )
}

fn device_is_created_with_the_sddl_and_link(fe: Frontend) {
    let l = load(fe, ntsim::config::CompletionMode::Pending);
    assert_eq!(
        iomgr::device_sddl(DEVICE_NAME).as_deref(),
        Some("D:P(A;;GA;;;SY)(A;;GA;;;BA)"),
        "SYSTEM and Administrators only"
    );
    let links = iomgr::symbolic_links();
    assert!(
        links
            .iter()
            .any(|(l, d)| l.to_lowercase().ends_with("\\wskclient")
                && d.eq_ignore_ascii_case(DEVICE_NAME)),
        "symbolic link to {DEVICE_NAME}: {links:?}"
    );
    l.finish();
}

/// Every malformed request gets its own status from docs/ioctl.md, and none of them
/// disturbs a healthy socket of the same or another handle.
fn bad_input_table(fe: Frontend) {
    let l = load(fe, ntsim::config::CompletionMode::Inline);
    let (peer_addr, sink) = sink();
    let a = l.open();
    let b = l.open();
    let good = open_stream(&a, peer_addr).expect("open_stream");
    let dgram = open_datagram(&a, "127.0.0.1:0".parse().unwrap());
    let mut v2 = SendRequest::new(good.handle);
    v2.header.version = 2;
    let mut reserved = SendRequest::new(good.handle);
    reserved.header.reserved = 1;
    let stale =
        SocketHandle::new(good.handle.slot().unwrap(), good.handle.generation() + 1).unwrap();
    let unknown = SocketHandle::new(77, 1).unwrap();
    let open_req = OpenStreamRequest::new(&peer_addr, None);
    let mut bad_family = open_req;
    bad_family.remote_address.family = 99;
    let long_input = [open_req.as_bytes(), &[0u8; 4][..]].concat();
    let cases: Vec<(&str, u32, Vec<u8>, usize, i32)> = vec![
        (
            "unknown code",
            ctl_code(
                FILE_DEVICE_WSKCLIENT,
                0x8ff,
                METHOD_BUFFERED,
                FILE_ANY_ACCESS,
            ),
            vec![],
            0,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
        (
            "truncated header",
            IOCTL_WSKCLIENT_OPEN_STREAM,
            vec![1, 0, 0],
            72,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "truncated body",
            IOCTL_WSKCLIENT_OPEN_STREAM,
            open_req.as_bytes()[..40].to_vec(),
            72,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "oversized input",
            IOCTL_WSKCLIENT_OPEN_STREAM,
            long_input,
            72,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "output too small",
            IOCTL_WSKCLIENT_OPEN_STREAM,
            open_req.as_bytes().to_vec(),
            71,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "wrong version",
            IOCTL_WSKCLIENT_SEND,
            v2.as_bytes().to_vec(),
            10,
            STATUS_REVISION_MISMATCH,
        ),
        (
            "reserved set",
            IOCTL_WSKCLIENT_SEND,
            reserved.as_bytes().to_vec(),
            10,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "unknown address family",
            IOCTL_WSKCLIENT_OPEN_STREAM,
            bad_family.as_bytes().to_vec(),
            72,
            STATUS_INVALID_ADDRESS_COMPONENT,
        ),
        (
            "unknown handle",
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(unknown).as_bytes().to_vec(),
            10,
            STATUS_INVALID_HANDLE,
        ),
        (
            "stale handle",
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(stale).as_bytes().to_vec(),
            10,
            STATUS_INVALID_HANDLE,
        ),
        (
            "null handle",
            IOCTL_WSKCLIENT_CLOSE,
            CloseRequest::new(SocketHandle::NULL).as_bytes().to_vec(),
            0,
            STATUS_INVALID_HANDLE,
        ),
        (
            "zero-length send",
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(good.handle).as_bytes().to_vec(),
            0,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "zero-length send_to",
            IOCTL_WSKCLIENT_SEND_TO,
            SendToRequest::new(dgram.handle, Some(&peer_addr))
                .as_bytes()
                .to_vec(),
            0,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "send on datagram socket",
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(dgram.handle).as_bytes().to_vec(),
            10,
            STATUS_NOT_SUPPORTED,
        ),
        (
            "send_to on stream socket",
            IOCTL_WSKCLIENT_SEND_TO,
            SendToRequest::new(good.handle, Some(&peer_addr))
                .as_bytes()
                .to_vec(),
            10,
            STATUS_NOT_SUPPORTED,
        ),
        (
            "send_to too large",
            IOCTL_WSKCLIENT_SEND_TO,
            SendToRequest::new(dgram.handle, Some(&peer_addr))
                .as_bytes()
                .to_vec(),
            70_000,
            STATUS_INVALID_BUFFER_SIZE,
        ),
    ];
    for (what, code, input, out_len, want) in &cases {
        let (s, _) = ioctl(&a, *code, input, *out_len);
        assert_eq!(s.status, *want, "{what}: got {:#x}", s.status as u32);
        assert_eq!(s.information, 0, "{what}: Information");
    }
    // Another file object's handle does not exist for this one.
    let s = send(&b, good.handle, b"x");
    assert_eq!(
        s.status, STATUS_INVALID_HANDLE,
        "another file object's handle"
    );
    let (s, _) = ioctl(
        &b,
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(good.handle).as_bytes(),
        0,
    );
    assert_eq!(s.status, STATUS_INVALID_HANDLE);
    // The healthy socket still works, and its bytes arrive.
    let s = send(&a, good.handle, b"still fine");
    assert_eq!((s.status, s.information), (STATUS_SUCCESS, 10));
    let (s, _) = ioctl(
        &a,
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(good.handle).as_bytes(),
        0,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    // Closing twice: the handle is stale now.
    let (s, _) = ioctl(
        &a,
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(good.handle).as_bytes(),
        0,
    );
    assert_eq!(s.status, STATUS_INVALID_HANDLE);
    assert_eq!(sink.join().unwrap(), b"still fine");
    let st = stats(&a);
    assert_eq!(st.live_sockets, 1, "the datagram socket");
    assert!(st.failed_requests >= cases.len() as u64);
    drop(a);
    drop(b);
    l.finish();
}

fn sink() -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    });
    (a, h)
}

/// METHOD_IN_DIRECT: the driver hands the request's own MDL to WskSend. The I/O manager
/// copies only the 16-byte request header; the provider reads every data byte straight from
/// the user's pages.
fn in_direct_send_copies_no_user_data(fe: Frontend) {
    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
    ] {
        let l = load(fe, mode);
        let (peer, sink) = sink();
        let h = l.open();
        let s = open_stream(&h, peer).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let copied_before = ntsim::verifier::COUNTERS
            .io_manager_bytes_copied
            .load(std::sync::atomic::Ordering::SeqCst);
        let mdl_before = ntsim::verifier::COUNTERS
            .bytes_sent_from_mdl
            .load(std::sync::atomic::Ordering::SeqCst);
        let st = send(&h, s.handle, &data);
        assert_eq!((st.status, st.information), (STATUS_SUCCESS, data.len()));
        let copied = ntsim::verifier::COUNTERS
            .io_manager_bytes_copied
            .load(std::sync::atomic::Ordering::SeqCst)
            - copied_before;
        let from_mdl = ntsim::verifier::COUNTERS
            .bytes_sent_from_mdl
            .load(std::sync::atomic::Ordering::SeqCst)
            - mdl_before;
        assert_eq!(copied, 16, "only the SendRequest header is copied");
        assert_eq!(
            from_mdl,
            data.len() as u64,
            "every byte read from the request's MDL"
        );
        drop(h);
        assert_eq!(sink.join().unwrap(), data);
        l.finish();
    }
}

/// Closing a handle with a large send pending and sockets open: CLEANUP closes the sockets,
/// WskCloseSocket cancels the pending WskSend, and the request completes with
/// STATUS_CANCELLED (docs/ioctl.md). Nothing leaks, and the driver then unloads cleanly.
fn close_with_pending_send_cancels_it(fe: Frontend) {
    let l = load(fe, ntsim::config::CompletionMode::Pending);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = listener.local_addr().unwrap();
    let h = l.open();
    let s = open_stream(&h, peer).unwrap();
    let _d = open_datagram(&h, "127.0.0.1:0".parse().unwrap());
    let (_conn, _) = listener.accept().unwrap(); // accepted, never read
    let data = vec![0x5au8; 32 << 20];
    let ov = h.device_io_control_overlapped(
        IOCTL_WSKCLIENT_SEND,
        SendRequest::new(s.handle).as_bytes().to_vec(),
        data,
    );
    assert!(
        ov.wait(Duration::from_millis(300)).is_none(),
        "32 MiB to a peer that never reads pends"
    );
    assert_eq!(stats(&h).pending_requests, 1);
    drop(h); // CLEANUP then CLOSE
    let st = ov
        .wait(Duration::from_secs(10))
        .expect("completed by cleanup");
    assert_eq!(st.status, STATUS_CANCELLED);
    assert_eq!(st.information, 0);
    l.finish();
}

/// Datagrams through the driver to a real UDP peer, explicit and fixed remote.
fn datagrams_through_the_driver(fe: Frontend) {
    let l = load(fe, ntsim::config::CompletionMode::Inline);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let pa = peer.local_addr().unwrap();
    let h = l.open();
    let d = open_datagram(&h, "127.0.0.1:0".parse().unwrap());
    for (i, fixed) in [(0u8, false), (1, true)] {
        if fixed {
            let (s, _) = ioctl(
                &h,
                IOCTL_WSKCLIENT_SET_REMOTE,
                SetRemoteRequest::new(d.handle, Some(&pa)).as_bytes(),
                0,
            );
            assert_eq!(s.status, STATUS_SUCCESS);
        }
        let to = if fixed { None } else { Some(&pa) };
        let mut data = vec![i; 1200];
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_SEND_TO,
            SendToRequest::new(d.handle, to).as_bytes(),
            &mut data,
        );
        assert_eq!((s.status, s.information), (STATUS_SUCCESS, 1200));
        let mut buf = [0u8; 2000];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &data[..]);
        assert_eq!(from, d.local_address.to_socket_addr().unwrap());
    }
    drop(h);
    l.finish();
}

/// CancelIoEx on a pending SEND. KMDF: the driver's cancel routine aborts the request's
/// socket, WskCloseSocket cancels the WSK IRP (which still reads the user's buffer), and only
/// then is the request completed, with STATUS_CANCELLED; the handle is gone afterwards. WDM:
/// the SEND IRP itself is WSK's (forwarded), WSK cancels it, and the handle stays. Either
/// way other sockets of the file object are untouched, and nothing leaks.
fn cancel_io_on_pending_send_aborts_its_socket(fe: Frontend) {
    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
    ] {
        let l = load(fe, mode);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let h = l.open();
        let s = open_stream(&h, listener.local_addr().unwrap()).unwrap();
        let (_conn, _) = listener.accept().unwrap(); // never reads
        let (peer2, sink2) = sink();
        let other = open_stream(&h, peer2).unwrap();
        let ov = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(s.handle).as_bytes().to_vec(),
            vec![0xa5u8; 32 << 20],
        );
        assert!(
            ov.wait(Duration::from_millis(300)).is_none(),
            "the send pends"
        );
        h.cancel_io();
        let st = ov
            .wait(Duration::from_secs(10))
            .expect("completed after cancel");
        assert_eq!((st.status, st.information), (STATUS_CANCELLED, 0));
        let live = match fe {
            Frontend::Kmdf => {
                assert_eq!(
                    send(&h, s.handle, b"x").status,
                    STATUS_INVALID_HANDLE,
                    "socket aborted"
                );
                1
            }
            // The WDM front-end forwards the SEND IRP itself to WskSend (tests/forwarded_irps.rs):
            // WSK cancels just that request and the handle stays (closed here explicitly).
            Frontend::Wdm => 2,
        };
        let st = send(&h, other.handle, b"other socket unaffected");
        assert_eq!(st.status, STATUS_SUCCESS);
        let stats = stats(&h);
        assert_eq!((stats.live_sockets, stats.pending_requests), (live, 0));
        if fe == Frontend::Wdm {
            let (st, _) = ioctl(
                &h,
                IOCTL_WSKCLIENT_CLOSE,
                CloseRequest::new(s.handle).as_bytes(),
                0,
            );
            assert_eq!(st.status, STATUS_SUCCESS, "the handle survived the cancel");
        }
        drop(h);
        assert_eq!(sink2.join().unwrap(), b"other socket unaffected");
        l.finish();
    }
}

both_frontends!(
    device_is_created_with_the_sddl_and_link,
    bad_input_table,
    in_direct_send_copies_no_user_data,
    close_with_pending_send_cancels_it,
    datagrams_through_the_driver,
    cancel_io_on_pending_send_aborts_its_socket,
);
