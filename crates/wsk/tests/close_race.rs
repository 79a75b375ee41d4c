//! Issue 12, defect 1: no WSK socket is touched after `WskCloseSocket`. ntsim frees (and
//! poisons) the `WSK_SOCKET` when the close runs, so a call that reads the socket's dispatch
//! pointer after close reads freed memory: a fault on the poison pattern, or an
//! AddressSanitizer report in `.ci/run`'s ASan suite. Every call after close must fail with
//! `STATUS_INVALID_HANDLE` without touching the socket, and a close racing a send must
//! leave no leak.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use wsk::events::EventSet;
use wsk::{DatagramSocket, Error, ListenSocket, NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");

fn is_closed(r: Result<impl Sized, Error>) -> bool {
    matches!(r, Err(Error::Closed))
}

/// Every operation on a closed socket of each kind fails with `STATUS_INVALID_HANDLE`
/// (failed before the fix: the dispatch pointer was read from the freed socket first).
#[test]
fn calls_after_close_fail_without_touching_the_socket() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        {
            let client = WskClient::register(1000).unwrap();
            let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
            let (_peer, _) = l.accept().unwrap();
            sock.close().unwrap();
            let mut buf = NonPagedBuffer::new(64, TAG).unwrap();
            assert!(is_closed(sock.send(&buf, 0, 64)));
            assert!(is_closed(sock.receive(&mut buf, 0, 64, false)));
            assert!(is_closed(sock.local_address()));
            assert!(is_closed(sock.remote_address()));
            assert!(is_closed(sock.disconnect()));
            assert!(is_closed(sock.abort()));
            assert!(is_closed(sock.enable_events(EventSet::RECEIVE)));
            let b = NonPagedBuffer::new(64, TAG).unwrap();
            let e = sock.send_async(b, 0, 64, |_, _| {}).err().map(|(e, _)| e);
            assert_eq!(e, Some(Error::Closed));
            let b = NonPagedBuffer::new(64, TAG).unwrap();
            let e = sock
                .receive_async(b, 0, 64, false, |_, _| {})
                .err()
                .map(|(e, _)| e);
            assert_eq!(e, Some(Error::Closed));
            // A second close is a no-op.
            sock.close().unwrap();

            let dgram = DatagramSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
            dgram.close().unwrap();
            assert!(is_closed(dgram.send_to(&buf, 0, 8, Some(addr))));
            assert!(is_closed(dgram.receive_from(&mut buf, 0, 8)));
            assert!(is_closed(dgram.local_address()));

            let listen = ListenSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
            listen.close().unwrap();
            assert!(is_closed(listen.accept()));
            assert!(is_closed(listen.accept_async(|_| {})));
            assert!(is_closed(listen.local_address()));
        }
        scope.assert_clean();
    }
}

/// CLOSE racing SEND: a thread sends in a loop while another closes the socket after a
/// varying number of sends. Each send either completes, or fails with
/// `STATUS_INVALID_HANDLE` (close began) or `STATUS_CANCELLED` (pending when
/// `WskCloseSocket` ran); nothing reads the freed socket; nothing leaks.
#[test]
fn close_racing_send_never_touches_the_freed_socket() {
    const ROUNDS: usize = 60;
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let data = payload(512, 7);
            for round in 0..ROUNDS {
                let (addr, sink) = tcp_sink("127.0.0.1:0", Duration::from_secs(10));
                let sock =
                    StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
                let sent = AtomicUsize::new(0);
                let stop = AtomicBool::new(false);
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let buf = NonPagedBuffer::from_slice(&data, TAG).unwrap();
                        let deadline = Instant::now() + Duration::from_secs(10);
                        loop {
                            assert!(Instant::now() < deadline, "sender never saw the close");
                            match sock.send(&buf, 0, buf.as_slice().len()) {
                                Ok(n) => {
                                    assert_eq!(n, 512);
                                    sent.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(Error::Closed | Error::Cancelled) => break,
                                Err(e) => panic!("send: unexpected {e:?}"),
                            }
                            if stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) > 10_000 {
                                break;
                            }
                        }
                    });
                    // Close after 0..5 sends, so the close lands before, during and after
                    // sends in progress.
                    let want = round % 6;
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while sent.load(Ordering::SeqCst) < want {
                        assert!(Instant::now() < deadline, "sender stalled");
                        std::thread::yield_now();
                    }
                    sock.close().unwrap();
                    stop.store(true, Ordering::SeqCst);
                });
                drop(sock);
                // The peer got whole sends only, in order.
                let got = sink.join().unwrap().unwrap();
                assert_eq!(got.len() % 512, 0, "round {round}");
                for chunk in got.chunks(512) {
                    assert_eq!(chunk, &data[..]);
                }
            }
        }
        ntsim::wait_quiescent(Duration::from_secs(5));
        scope.assert_clean();
    }
}
