//! Issue 13 (idle-connection pool): a socket holds no synchronous operation block (the
//! `OpBlock` and its IRP, about 400 bytes) until its first synchronous call. Before, every
//! socket got one at creation or accept (these tests failed with 1 live IRP and one
//! `WskR` pool block per idle socket). The block is then allocated by the first synchronous
//! call, kept for the later ones (the steady state allocates nothing), and allocated by the
//! close of a socket that never made one; if that allocation fails, the close reports
//! `STATUS_INSUFFICIENT_RESOURCES` and the drop still closes the socket: nothing leaks.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use windows_sys::Win32::Foundation::STATUS_INSUFFICIENT_RESOURCES;
use wsk::{ListenSocket, NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");
const LIMIT: Duration = Duration::from_secs(10);

/// Live IRPs and live bytes of `wsk`'s own pool tag (`WskR`).
fn held() -> (i64, i64) {
    let s = ntsim::verifier::snapshot();
    let wsk_bytes = s
        .pool_by_tag
        .iter()
        .find(|(t, _)| t.as_str() == "WskR")
        .map_or(0, |(_, v)| v.0 as i64);
    (s.live_irps as i64, wsk_bytes)
}

#[test]
fn connected_socket_holds_no_op_block_until_a_synchronous_call() {
    let scope = begin(CompletionMode::Pending);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = WskClient::register(1000).unwrap();
    let before = held();
    let sock = StreamSocket::connect(&client, l.local_addr().unwrap(), Some(LIMIT)).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(
        held(),
        before,
        "a connected socket that made no synchronous call holds no IRP and no wsk pool"
    );

    // Bytes flow with the first synchronous call, which allocates the block...
    let data = payload(1000, 7);
    let mut buf = NonPagedBuffer::new(data.len(), TAG).unwrap();
    buf.as_mut_slice().copy_from_slice(&data);
    assert_eq!(sock.send(&buf, 0, data.len()), Ok(data.len()));
    let mut got = vec![0u8; data.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, data, "bytes at the peer");
    let (irps, _) = held();
    assert_eq!(
        irps,
        before.0 + 1,
        "the first synchronous call keeps its IRP"
    );

    // ...and the steady state allocates nothing.
    let snap = ntsim::verifier::snapshot();
    peer.write_all(&data).unwrap();
    let mut n = 0;
    while n < data.len() {
        let k = sock.receive(&mut buf, n, data.len() - n, false).unwrap();
        assert!(k > 0, "EOF before all bytes");
        n += k;
    }
    assert_eq!(buf.as_slice(), &data[..], "bytes from the peer");
    let after = ntsim::verifier::snapshot();
    assert_eq!(after.irp_allocations, snap.irp_allocations);
    assert_eq!(after.pool_allocations, snap.pool_allocations);

    sock.close().unwrap();
    drop(sock);
    drop(buf);
    drop(client);
    scope.assert_clean();
}

#[test]
fn accepted_sockets_hold_no_op_block_and_close_clean() {
    let scope = begin(CompletionMode::Pending);
    let client = WskClient::register(1000).unwrap();
    let listener = ListenSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_address().unwrap();

    // Synchronous accept.
    let mut peer1 = TcpStream::connect(addr).unwrap();
    let before = held();
    let a = listener.accept().unwrap();
    assert_eq!(
        held(),
        before,
        "an accepted socket holds no IRP and no wsk pool (the listener's block is reused)"
    );

    // Asynchronous accept: the completion hands over a socket without a block.
    let (tx, rx) = std::sync::mpsc::channel();
    let before = held();
    listener
        .accept_async(move |r| tx.send(r.map(|a| a.socket)).unwrap())
        .unwrap();
    let mut peer2 = TcpStream::connect(addr).unwrap();
    let b = rx.recv_timeout(LIMIT).unwrap().unwrap();
    ntsim::wait_quiescent(LIMIT);
    assert_eq!(
        held(),
        before,
        "the async accept's IRP is freed, no block is kept"
    );

    // Bytes flow on both (asynchronously, so no block is made), checked at the peers.
    for (sock, peer, seed) in [(&a.socket, &mut peer1, 1u64), (&b, &mut peer2, 2)] {
        let data = payload(512, seed);
        let mut buf = NonPagedBuffer::new(data.len(), TAG).unwrap();
        buf.as_mut_slice().copy_from_slice(&data);
        let (tx, rx) = std::sync::mpsc::channel();
        sock.send_async(buf, 0, data.len(), move |r, b| tx.send((r, b)).unwrap())
            .map_err(|(e, _)| e)
            .unwrap();
        let (r, _b) = rx.recv_timeout(LIMIT).unwrap();
        assert_eq!(r, Ok(data.len()));
        let mut got = vec![0u8; data.len()];
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, data);
    }

    // Close allocates the block it needs for WskCloseSocket; the peers see EOF.
    a.socket.close().unwrap();
    drop(b);
    for peer in [&mut peer1, &mut peer2] {
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
    drop(a);
    drop(listener);
    drop(client);
    scope.assert_clean();
}

#[test]
fn close_without_memory_for_the_block_still_closes_on_drop() {
    let scope = begin(CompletionMode::Pending);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = WskClient::register(1000).unwrap();
    let sock = StreamSocket::connect(&client, l.local_addr().unwrap(), Some(LIMIT)).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    ntsim::faults::arm(Some(1));
    let r = sock.close();
    let run = ntsim::faults::disarm();
    assert!(
        run.failed.is_some(),
        "the close's block allocation was failed"
    );
    assert_eq!(
        r.map_err(|e| e.status()),
        Err(STATUS_INSUFFICIENT_RESOURCES)
    );
    // Still open: the drop closes it (without waiting, with an IRP of its own).
    drop(sock);
    ntsim::wait_quiescent(LIMIT);
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "EOF at the peer: the socket was closed");
    drop(client);
    scope.assert_clean();
}
