//! ntsim's default completion mode, `CompletionMode::Provider` (issue 13 item 2): an
//! operation the host socket can finish at once completes inline, on the calling thread,
//! before the dispatch call returns; one that must wait pends and completes later from the
//! provider's I/O thread; and neither overtakes operations already pending on its socket.
//! These tests use the default mode (they never call `set_completion_mode`).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::ThreadId;
use std::time::Duration;

use common::*;
use wsk::{NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");
const WAIT: Duration = Duration::from_secs(20);

/// The emulator scope in its default completion mode.
fn begin_default() -> ntsim::Scope {
    ntsim::link();
    ntsim::Scope::begin()
}

/// A connected WSK stream socket and the real peer's end of the connection.
fn connected(client: &WskClient) -> (StreamSocket, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let sock = StreamSocket::connect(client, addr, Some(Duration::from_secs(5))).expect("connect");
    let (peer, _) = l.accept().expect("accept");
    peer.set_read_timeout(Some(WAIT)).expect("timeout");
    (sock, peer)
}

type Done = (ThreadId, wsk::Result<usize>, NonPagedBuffer);

fn on_done(tx: &mpsc::Sender<Done>) -> impl FnOnce(wsk::Result<usize>, NonPagedBuffer) + Send {
    let tx = tx.clone();
    move |r, b| {
        let _ = tx.send((std::thread::current().id(), r, b));
    }
}

#[test]
fn the_default_mode_is_the_provider_mode() {
    let scope = begin_default();
    assert_eq!(
        ntsim::config::completion_mode(),
        ntsim::config::CompletionMode::Provider
    );
    scope.assert_clean();
}

/// A send the socket takes at once completes inline: its completion routine runs on the
/// calling thread before `WskSend` returns (in the pending mode it ran on the I/O thread).
#[test]
fn a_send_the_socket_takes_completes_inline() {
    let scope = begin_default();
    let me = std::thread::current().id();
    {
        let client = WskClient::register(1000).unwrap();
        let (sock, mut peer) = connected(&client);
        let (tx, rx) = mpsc::channel();
        let data = payload(1000, 5);
        let buf = NonPagedBuffer::from_slice(&data, TAG).unwrap();
        sock.send_async(buf, 0, data.len(), on_done(&tx))
            .map_err(|(e, _)| e)
            .unwrap();
        // Inline: the routine already ran, so its result is queued now.
        let (thread, r, _buf) = rx.try_recv().expect("completed before WskSend returned");
        assert_eq!(thread, me, "completion routine ran on the calling thread");
        assert_eq!(r.unwrap(), data.len());
        let mut got = vec![0u8; data.len()];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, data);
    }
    scope.assert_clean();
}

/// A receive without data pends and completes from the I/O thread when the bytes arrive; a
/// receive issued while another is pending queues behind it: the first gets the first bytes.
#[test]
fn receives_pend_without_data_and_keep_their_order() {
    let scope = begin_default();
    let me = std::thread::current().id();
    {
        let client = WskClient::register(1000).unwrap();
        let (sock, mut peer) = connected(&client);
        let (tx, rx) = mpsc::channel();
        let first = NonPagedBuffer::new(1, TAG).unwrap();
        sock.receive_async(first, 0, 1, false, on_done(&tx))
            .map_err(|(e, _)| e)
            .unwrap();
        assert!(rx.try_recv().is_err(), "no data: the first receive pends");
        // The byte reaches the socket while the first receive is pending; the second
        // receive, issued now, tries the socket on this thread but must not take it.
        peer.write_all(b"A").unwrap();
        let second = NonPagedBuffer::new(1, TAG).unwrap();
        sock.receive_async(second, 0, 1, false, on_done(&tx))
            .map_err(|(e, _)| e)
            .unwrap();
        let (_, r1, b1) = rx.recv_timeout(WAIT).expect("first receive");
        assert_eq!(r1.unwrap(), 1);
        assert_eq!(b1.as_slice(), b"A", "the first receive got the first byte");
        peer.write_all(b"B").unwrap();
        let (thread, r2, b2) = rx.recv_timeout(WAIT).expect("second receive");
        assert_eq!(r2.unwrap(), 1);
        assert_eq!(b2.as_slice(), b"B");
        assert_ne!(
            thread, me,
            "the pending receive completed from the I/O thread"
        );
    }
    scope.assert_clean();
}

/// A send issued while an earlier send is pending on the socket (the peer is not reading)
/// queues behind it, even if the socket could take its bytes by then: the peer reads every
/// send's bytes in the order of the calls.
#[test]
fn sends_never_overtake_a_pending_send() {
    let scope = begin_default();
    {
        let client = WskClient::register(1000).unwrap();
        let (sock, mut peer) = connected(&client);
        let (tx, rx) = mpsc::channel();
        let big = payload(16 << 20, 7);
        let small: Vec<Vec<u8>> = (0..8).map(|i| payload(100, 100 + i)).collect();
        let b = NonPagedBuffer::from_slice(&big, TAG).unwrap();
        sock.send_async(b, 0, big.len(), on_done(&tx))
            .map_err(|(e, _)| e)
            .unwrap();
        assert!(
            rx.try_recv().is_err(),
            "16 MiB to a peer that is not reading: the send pends"
        );
        // Make room in the socket while the big send is still pending, then send more.
        let mut head = vec![0u8; 64 * 1024];
        peer.read_exact(&mut head).unwrap();
        for s in &small {
            let b = NonPagedBuffer::from_slice(s, TAG).unwrap();
            sock.send_async(b, 0, s.len(), on_done(&tx))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        let mut expect = big.clone();
        for s in &small {
            expect.extend_from_slice(s);
        }
        let mut rest = vec![0u8; expect.len() - head.len()];
        peer.read_exact(&mut rest).unwrap();
        head.extend_from_slice(&rest);
        assert!(head == expect, "the peer read the sends out of order");
        for _ in 0..1 + small.len() {
            let (_, r, _) = rx.recv_timeout(WAIT).expect("send completion");
            r.unwrap();
        }
    }
    scope.assert_clean();
}
