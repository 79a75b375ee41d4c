//! Issue 13, item 1: a steady-state asynchronous operation (`send_async`, `send_to_async`,
//! `receive_async`, `receive_from_async`) allocates nothing of ours: the socket keeps its
//! IRPs (reused with `IoReuseIrp`) and operation blocks in a per-socket cache. ntsim's
//! [`ntsim::faults::OwnAllocations`] counts the allocations the code under test asks for
//! (`IoAllocateIrp`, `IoAllocateMdl`, `ExAllocatePool2`, `wsk::alloc`), apart from the
//! kernel's own on our behalf (the `IoCx` contexts of `IoSetCompletionRoutineEx`, reported
//! separately). Before the cache every such operation cost one `IoAllocateIrp` and one
//! `ExAllocatePool2` (these tests failed with 1 IRP + 1 pool allocation per operation).
//!
//! Also: with more than one operation in flight the cache grows to the concurrency, stays
//! within its bound (`16`) beyond it, and is freed with the socket; a
//! completion that runs after the socket was dropped frees its IRP and block (the ASan suite
//! runs these tests: a touch of freed memory is a report there).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use common::*;
use ntsim::faults::OwnAllocations;
use windows_sys::Wdk::Foundation::DEVICE_OBJECT;
use wsk::{DatagramSocket, Error, NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");
const LIMIT: Duration = Duration::from_secs(10);
/// Operations measured after warm-up, per kind.
const N: usize = 200;

/// Our allocations and the kernel's `IoCx` contexts made while `f` ran.
fn measure<R>(f: impl FnOnce() -> R) -> ((OwnAllocations, u64), R) {
    let before = OwnAllocations::now();
    let cx = ntsim::completion_ex::contexts_allocated();
    let r = f();
    (
        (
            OwnAllocations::now().since(&before),
            ntsim::completion_ex::contexts_allocated() - cx,
        ),
        r,
    )
}

fn assert_none(what: &str, mode: CompletionMode, (own, cx): (OwnAllocations, u64)) {
    assert_eq!(
        own,
        OwnAllocations::default(),
        "{mode:?}: {N} steady-state {what}: our allocations {own:?} (IoCx contexts of \
         IoSetCompletionRoutineEx, the kernel's: {cx})"
    );
    assert_eq!(
        cx, N as u64,
        "{mode:?}: {what}: one IoCx context per operation"
    );
}

/// A stand-in for the driver's device object, so that completions are set with
/// `IoSetCompletionRoutineEx` as in the driver.
fn protect() -> *mut DEVICE_OBJECT {
    // SAFETY: a zeroed DEVICE_OBJECT; only its address is used.
    let device: *mut DEVICE_OBJECT = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
    ntsim::completion_ex::set_available(true);
    assert!(wsk::irp::protect_completions(device));
    device
}

fn unprotect(device: *mut DEVICE_OBJECT) {
    ntsim::wait_quiescent(Duration::from_secs(5));
    wsk::irp::unprotect_completions();
    // SAFETY: from Box::into_raw in protect; no reference is held any more.
    drop(unsafe { Box::from_raw(device) });
}

type Done<T> = Receiver<(wsk::Result<T>, NonPagedBuffer)>;

fn tcp_steady_state(mode: CompletionMode) {
    let scope = begin(mode);
    let device = protect();
    let chunk = 1024usize;
    let data = payload(chunk * (N + 1), 13);
    let (addr, sink) = tcp_sink("127.0.0.1:0", LIMIT);
    // A second connection whose peer writes N + 1 chunks for the receives.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let feed = data.clone();
    {
        let client = WskClient::register(1000).unwrap();
        let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
        let rsock = StreamSocket::connect(
            &client,
            l.local_addr().unwrap(),
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        let (mut peer, _) = l.accept().unwrap();
        let writer = std::thread::spawn(move || peer.write_all(&feed).map(|_| peer));

        // SEND: one warm-up, then N, each waiting for its completion.
        let (tx, rx): (_, Done<usize>) = channel();
        let mut buf = NonPagedBuffer::new(chunk, TAG).unwrap();
        let send = |i: usize, mut b: NonPagedBuffer| {
            b.as_mut_slice()
                .copy_from_slice(&data[i * chunk..(i + 1) * chunk]);
            let tx = tx.clone();
            sock.send_async(b, 0, chunk, move |r, b| tx.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
            let (r, b) = rx.recv_timeout(LIMIT).expect("send completion");
            assert_eq!(r, Ok(chunk));
            b
        };
        buf = send(0, buf);
        let (m, _buf) = measure(|| {
            for i in 1..=N {
                buf = send(i, buf);
            }
            buf
        });
        assert_none("send_async", mode, m);

        // RECEIVE: the same, until N + 1 chunks arrived (a receive may return fewer bytes).
        let (rtx, rrx): (_, Done<usize>) = channel();
        let mut got = Vec::with_capacity(data.len());
        let receive = |b: NonPagedBuffer, got: &mut Vec<u8>| {
            let rtx = rtx.clone();
            rsock
                .receive_async(b, 0, chunk, false, move |r, b| rtx.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
            let (r, b) = rrx.recv_timeout(LIMIT).expect("receive completion");
            let n = r.unwrap();
            assert!(n > 0, "the peer has not closed");
            got.extend_from_slice(&b.as_slice()[..n]);
            b
        };
        let mut rbuf = NonPagedBuffer::new(chunk, TAG).unwrap();
        rbuf = receive(rbuf, &mut got);
        let ((own, cx), ops) = measure(|| {
            let mut ops = 0;
            while got.len() < data.len() {
                rbuf = receive(rbuf, &mut got);
                ops += 1;
            }
            ops
        });
        assert_eq!(
            own,
            OwnAllocations::default(),
            "{mode:?}: {ops} steady-state receive_async: our allocations {own:?} (IoCx: {cx})"
        );
        assert_eq!(cx, ops as u64);
        assert!(got == data, "received bytes differ");
        drop(writer.join().unwrap().unwrap());
        sock.close().unwrap();
        rsock.close().unwrap();
    }
    let sent = sink.join().unwrap().unwrap();
    assert!(sent == data, "the sink got other bytes");
    unprotect(device);
    scope.assert_clean();
}

#[test]
fn tcp_steady_state_async_pending() {
    tcp_steady_state(CompletionMode::Pending);
}

#[test]
fn tcp_steady_state_async_inline() {
    tcp_steady_state(CompletionMode::Inline);
}

#[test]
fn tcp_steady_state_async_provider() {
    tcp_steady_state(CompletionMode::Provider);
}

fn udp_steady_state(mode: CompletionMode) {
    let scope = begin(mode);
    let device = protect();
    let size = 512usize;
    let datagram = |i: usize| payload(size, 1000 + i as u64);
    let (to, sink, received) = udp_sink("127.0.0.1:0", N + 1, LIMIT);
    {
        let client = WskClient::register(1000).unwrap();
        let sock = DatagramSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
        // SEND_TO, with flow control so loopback never drops a datagram.
        let (tx, rx): (_, Done<usize>) = channel();
        let send = |i: usize, mut b: NonPagedBuffer| {
            wait_window(&received, i, 32);
            b.as_mut_slice().copy_from_slice(&datagram(i));
            let tx = tx.clone();
            sock.send_to_async(b, 0, size, Some(to), move |r, b| tx.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
            let (r, b) = rx.recv_timeout(LIMIT).expect("send_to completion");
            assert_eq!(r, Ok(size));
            b
        };
        let mut buf = send(0, NonPagedBuffer::new(size, TAG).unwrap());
        let (m, b) = measure(|| {
            for i in 1..=N {
                buf = send(i, buf);
            }
            buf
        });
        buf = b;
        assert_none("send_to_async", mode, m);

        // RECEIVE_FROM: each posted before its datagram is sent.
        let me = sock.local_address().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (rtx, rrx): (_, Done<(usize, std::net::SocketAddr)>) = channel();
        let receive = |i: usize, b: NonPagedBuffer| {
            let rtx = rtx.clone();
            sock.receive_from_async(b, 0, size, move |r, b| rtx.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
            let d = datagram(i);
            peer.send_to(&d, me).unwrap();
            let (r, b) = rrx.recv_timeout(LIMIT).expect("receive_from completion");
            let (n, from) = r.unwrap();
            assert_eq!(from, peer.local_addr().unwrap());
            assert_eq!(&b.as_slice()[..n], &d[..]);
            b
        };
        buf = receive(0, buf);
        let (m, _buf) = measure(|| {
            for i in 1..=N {
                buf = receive(i, buf);
            }
            buf
        });
        assert_none("receive_from_async", mode, m);
        sock.close().unwrap();
    }
    let got = sink.recv_timeout(LIMIT * 2).unwrap();
    assert_eq!(got.len(), N + 1);
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d, &datagram(i), "datagram {i}");
    }
    unprotect(device);
    scope.assert_clean();
}

#[test]
fn udp_steady_state_async_pending() {
    udp_steady_state(CompletionMode::Pending);
}

#[test]
fn udp_steady_state_async_inline() {
    udp_steady_state(CompletionMode::Inline);
}

#[test]
fn udp_steady_state_async_provider() {
    udp_steady_state(CompletionMode::Provider);
}

/// Posts `k` one-byte receives at once (the peer sends nothing yet, so all pend), then has
/// the peer send `k` bytes: returns our allocations and the live IRPs once all completed.
fn concurrent_receives(
    sock: &StreamSocket,
    peer: &mut std::net::TcpStream,
    k: usize,
    seed: u8,
) -> (OwnAllocations, i64) {
    let (tx, rx): (_, Done<usize>) = channel();
    let bufs: Vec<_> = (0..k)
        .map(|_| NonPagedBuffer::new(1, TAG).unwrap())
        .collect();
    let ((own, _), ()) = measure(|| {
        for b in bufs {
            let tx = tx.clone();
            sock.receive_async(b, 0, 1, false, move |r, b| tx.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
        }
    });
    let sent: Vec<u8> = (0..k).map(|i| seed.wrapping_add(i as u8)).collect();
    peer.write_all(&sent).unwrap();
    let mut got: Vec<u8> = (0..k)
        .map(|_| {
            let (r, b) = rx.recv_timeout(LIMIT).expect("receive completion");
            assert_eq!(r, Ok(1));
            b.as_slice()[0]
        })
        .collect();
    got.sort_unstable();
    let mut want = sent;
    want.sort_unstable();
    assert_eq!(got, want, "each byte received once");
    ntsim::wait_quiescent(Duration::from_secs(5));
    (own, ntsim::verifier::snapshot().live_irps as i64)
}

/// The cache grows to the concurrency (k receives in flight: k IRPs the first time, none the
/// second), is bounded (beyond `MAX_CACHED_OPS` in flight, the extra operations allocate and
/// free their own; the socket keeps at most `MAX_CACHED_OPS` IRPs), and closing the socket
/// frees it all (assert_clean).
#[test]
fn cache_grows_with_concurrency_and_stays_bounded() {
    let bound = wsk::MAX_CACHED_OPS;
    for mode in [
        CompletionMode::Pending,
        CompletionMode::Inline,
        CompletionMode::Provider,
    ] {
        let scope = begin(mode);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        {
            let client = WskClient::register(1000).unwrap();
            let sock =
                StreamSocket::connect(&client, l.local_addr().unwrap(), Some(LIMIT)).unwrap();
            let (mut peer, _) = l.accept().unwrap();
            let base = ntsim::verifier::snapshot().live_irps as i64;
            let k = 4;
            let (own, live) = concurrent_receives(&sock, &mut peer, k, 1);
            assert_eq!(own.irps, k as u64, "{mode:?}: grown to {k}");
            assert_eq!(live - base, k as i64, "{mode:?}: {k} IRPs kept");
            let (own, live) = concurrent_receives(&sock, &mut peer, k, 2);
            assert_eq!(own, OwnAllocations::default(), "{mode:?}: reused");
            assert_eq!(live - base, k as i64);
            // Beyond the bound: the cache grows to it, the rest come and go.
            let over = bound + 3;
            let (own, live) = concurrent_receives(&sock, &mut peer, over, 3);
            assert_eq!(own.irps, (over - k) as u64, "{mode:?}: {own:?}");
            assert_eq!(
                live - base,
                bound as i64,
                "{mode:?}: at most the bound kept"
            );
            let (own, live) = concurrent_receives(&sock, &mut peer, over, 4);
            assert_eq!(
                own.irps, 3,
                "{mode:?}: only the operations beyond the bound"
            );
            assert_eq!(own.pool, 3, "{mode:?}: {own:?}");
            assert_eq!(live - base, bound as i64);
            sock.close().unwrap();
            ntsim::wait_quiescent(Duration::from_secs(5));
            // The sync operation block's IRP is the only one left before the drop: the close
            // allocated it (a socket gets its block at its first synchronous call), after
            // `base` was taken.
            assert_eq!(ntsim::verifier::snapshot().live_irps as i64 - base, 1);
        }
        scope.assert_clean();
    }
}

/// A socket dropped above PASSIVE_LEVEL closes without waiting: its pending receives complete
/// (cancelled) after the socket object is gone, and their completions free the IRPs and
/// blocks (the cache outlives the socket through their references); nothing leaks and
/// nothing touches freed memory.
#[test]
fn completion_after_the_socket_was_dropped_frees_its_items() {
    for mode in [
        CompletionMode::Pending,
        CompletionMode::Inline,
        CompletionMode::Provider,
    ] {
        let scope = begin(mode);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tx, rx): (_, Done<usize>) = channel();
        {
            let client = WskClient::register(1000).unwrap();
            let sock =
                StreamSocket::connect(&client, l.local_addr().unwrap(), Some(LIMIT)).unwrap();
            let (mut peer, _) = l.accept().unwrap();
            // Warm the cache with a completed receive, then leave three pending.
            let (_, _) = concurrent_receives(&sock, &mut peer, 2, 7);
            for _ in 0..3 {
                let tx = tx.clone();
                let b = NonPagedBuffer::new(8, TAG).unwrap();
                sock.receive_async(b, 0, 8, false, move |r, b| tx.send((r, b)).unwrap())
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
            ntsim::irql::with_raised(ntsim::irql::DISPATCH_LEVEL, || drop(sock));
            for _ in 0..3 {
                let (r, _) = rx.recv_timeout(LIMIT).expect("cancelled receive");
                assert_eq!(r, Err(Error::Cancelled));
            }
            let mut rest = Vec::new();
            peer.set_read_timeout(Some(LIMIT)).unwrap();
            let _ = peer.read_to_end(&mut rest);
        }
        scope.assert_clean();
    }
}
