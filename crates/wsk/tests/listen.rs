//! Listening sockets: WskSocket(WSK_FLAG_LISTEN_SOCKET) + WskBind (listening starts at bind),
//! WskAccept with the accepted connection's local and remote addresses, real clients, both
//! completion paths, IPv4 and IPv6; closing with a pending accept; the graceful and abortive
//! WskDisconnect as the peer observes them (FIN vs RST).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use windows_sys::Win32::Foundation::*;
use wsk::{Error, ListenSocket, NonPagedBuffer, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");
const LIMIT: Duration = Duration::from_secs(10);

/// A real client connects; WskAccept returns the connection with local = the listener's
/// address and remote = the client's own address (what GetAcceptExSockaddrs reports); bytes
/// flow both ways and are checked at both ends.
fn accept_and_exchange(mode: CompletionMode, ip: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let mut l = ListenSocket::bind(&client, format!("{ip}:0").parse().unwrap()).unwrap();
        l.set_timeout(Some(LIMIT));
        let at = l.local_address().unwrap();
        assert_ne!(at.port(), 0);
        for round in 0..3u64 {
            // Listening began at WskBind: the connect succeeds before any WskAccept.
            let mut peer = TcpStream::connect(at).unwrap();
            peer.set_read_timeout(Some(LIMIT)).unwrap();
            let acc = l.accept().unwrap();
            assert_eq!(acc.local, at);
            assert_eq!(acc.remote, peer.local_addr().unwrap());
            assert_eq!(acc.socket.remote_address().unwrap(), acc.remote);
            assert_eq!(acc.socket.local_address().unwrap(), acc.local);
            // Peer -> driver.
            let up = payload(100_000, round + 7);
            peer.write_all(&up).unwrap();
            let mut buf = NonPagedBuffer::new(100_000, TAG).unwrap();
            assert_eq!(
                acc.socket.receive(&mut buf, 0, 100_000, true).unwrap(),
                100_000
            );
            assert_eq!(buf.as_slice(), &up[..]);
            // Driver -> peer.
            let down = NonPagedBuffer::from_slice(&payload(50_000, round + 70), TAG).unwrap();
            assert_eq!(acc.socket.send(&down, 0, 50_000).unwrap(), 50_000);
            let mut got = vec![0u8; 50_000];
            peer.read_exact(&mut got).unwrap();
            assert_eq!(got, down.as_slice());
            acc.socket.close().unwrap();
        }
        l.close().unwrap();
    }
    scope.assert_clean();
}

#[test]
fn accept_pending_ipv4() {
    accept_and_exchange(CompletionMode::Pending, "127.0.0.1");
}

#[test]
fn accept_inline_ipv4() {
    accept_and_exchange(CompletionMode::Inline, "127.0.0.1");
}

#[test]
fn accept_pending_ipv6() {
    accept_and_exchange(CompletionMode::Pending, "[::1]");
}

#[test]
fn accept_inline_ipv6() {
    accept_and_exchange(CompletionMode::Inline, "[::1]");
}

/// An asynchronous accept posted before the client connects completes with the connection.
#[test]
fn accept_async_completes_when_a_client_connects() {
    for (mode, ip) in [
        (CompletionMode::Pending, "127.0.0.1"),
        (CompletionMode::Inline, "[::1]"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let l = ListenSocket::bind(&client, format!("{ip}:0").parse().unwrap()).unwrap();
            let (tx, rx) = mpsc::channel();
            l.accept_async(move |r| tx.send(r).unwrap()).unwrap();
            let mut peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
            let acc = rx.recv_timeout(LIMIT).unwrap().unwrap();
            assert_eq!(acc.remote, peer.local_addr().unwrap());
            peer.write_all(b"hello").unwrap();
            let mut buf = NonPagedBuffer::new(5, TAG).unwrap();
            assert_eq!(acc.socket.receive(&mut buf, 0, 5, true).unwrap(), 5);
            assert_eq!(buf.as_slice(), b"hello");
        }
        scope.assert_clean();
    }
}

/// Oracle: closing a listening socket with a pending WskAccept completes the accept with
/// STATUS_CANCELLED. Source: WskCloseSocket "causes the WSK subsystem to cancel and complete
/// all pending IRPs from prior calls to the socket's functions"
/// (https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket);
/// a cancelled IRP completes with STATUS_CANCELLED
/// (https://learn.microsoft.com/en-us/windows-hardware/drivers/kernel/canceling-irps).
#[test]
fn closing_listener_cancels_pending_accept() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let l = ListenSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
            let (tx, rx) = mpsc::channel();
            l.accept_async(move |r| tx.send(r.map(|_| ())).unwrap())
                .unwrap();
            l.close().unwrap();
            let r = rx.recv_timeout(LIMIT).unwrap();
            assert_eq!(r, Err(Error::Cancelled));
            assert_eq!(Error::Cancelled.status(), STATUS_CANCELLED);
        }
        scope.assert_clean();
    }
}

/// A synchronous accept whose timeout expires is cancelled: STATUS_IO_TIMEOUT, nothing
/// leaked; a later accept still works.
#[test]
fn accept_timeout_then_accept() {
    let scope = begin(CompletionMode::Pending);
    {
        let client = WskClient::register(1000).unwrap();
        let mut l = ListenSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
        l.set_timeout(Some(Duration::from_millis(200)));
        assert_eq!(l.accept().err(), Some(Error::Timeout));
        l.set_timeout(Some(LIMIT));
        let _peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
        l.accept().unwrap();
    }
    scope.assert_clean();
}

/// Two listeners on one address: the second bind fails with STATUS_ADDRESS_ALREADY_EXISTS.
#[test]
fn listen_on_address_in_use() {
    let scope = begin(CompletionMode::Inline);
    {
        let client = WskClient::register(1000).unwrap();
        let l = ListenSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
        let e = ListenSocket::bind(&client, l.local_address().unwrap())
            .err()
            .unwrap();
        assert_eq!(e.status(), STATUS_ADDRESS_ALREADY_EXISTS);
    }
    scope.assert_clean();
}

/// Graceful WskDisconnect with a final data buffer: the peer reads the data, then EOF (FIN);
/// the connection is half-closed, so the peer can still send and we still receive.
#[test]
fn graceful_disconnect_with_final_data_peer_sees_fin() {
    for (mode, ip) in [
        (CompletionMode::Pending, "127.0.0.1"),
        (CompletionMode::Inline, "[::1]"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let mut l = ListenSocket::bind(&client, format!("{ip}:0").parse().unwrap()).unwrap();
            l.set_timeout(Some(LIMIT));
            let mut peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
            peer.set_read_timeout(Some(LIMIT)).unwrap();
            let acc = l.accept().unwrap();
            let first = NonPagedBuffer::from_slice(&payload(30_000, 1), TAG).unwrap();
            acc.socket.send(&first, 0, 30_000).unwrap();
            let last = NonPagedBuffer::from_slice(&payload(20_000, 2), TAG).unwrap();
            assert_eq!(
                acc.socket.disconnect_with(&last, 100, 19_900).unwrap(),
                19_900
            );
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap(); // ends at the FIN
            let mut want = first.as_slice().to_vec();
            want.extend_from_slice(&last.as_slice()[100..]);
            assert!(
                got == want,
                "peer got {} bytes, want {}",
                got.len(),
                want.len()
            );
            // Half-close: the other direction still works.
            peer.write_all(b"still open").unwrap();
            peer.shutdown(Shutdown::Write).unwrap();
            let mut buf = NonPagedBuffer::new(64, TAG).unwrap();
            assert_eq!(acc.socket.receive(&mut buf, 0, 64, true).unwrap(), 10);
            assert_eq!(&buf.as_slice()[..10], b"still open");
            // A second disconnect is refused.
            assert_eq!(
                acc.socket.disconnect().unwrap_err(),
                Error::InvalidDeviceState
            );
        }
        scope.assert_clean();
    }
}

/// Graceful WskDisconnect without data on a WskSocketConnect socket: the peer reads EOF.
#[test]
fn graceful_disconnect_without_data() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        let (addr, sink) = tcp_sink("127.0.0.1:0", LIMIT);
        {
            let client = WskClient::register(1000).unwrap();
            let sock = wsk::StreamSocket::connect(&client, addr, Some(LIMIT)).unwrap();
            let b = NonPagedBuffer::from_slice(b"bye", TAG).unwrap();
            sock.send(&b, 0, 3).unwrap();
            sock.disconnect().unwrap();
            // The sink's read_to_end ends only at our FIN, with the socket still open.
            assert_eq!(sink.join().unwrap().unwrap(), b"bye");
        }
        scope.assert_clean();
    }
}

/// Abortive WskDisconnect (WSK_FLAG_ABORTIVE): the peer sees a reset (ECONNRESET), not an
/// EOF; a pending receive on our side completes with STATUS_CONNECTION_ABORTED (WskReceive
/// docs: WAITALL completes when "the connection is abortively disconnected by ... the WSK
/// application").
#[test]
fn abortive_disconnect_peer_sees_rst() {
    for (mode, ip) in [
        (CompletionMode::Pending, "127.0.0.1"),
        (CompletionMode::Inline, "[::1]"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let mut l = ListenSocket::bind(&client, format!("{ip}:0").parse().unwrap()).unwrap();
            l.set_timeout(Some(LIMIT));
            let mut peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
            peer.set_read_timeout(Some(LIMIT)).unwrap();
            let acc = l.accept().unwrap();
            let (tx, rx) = mpsc::channel();
            let buf = NonPagedBuffer::new(64, TAG).unwrap();
            acc.socket
                .receive_async(buf, 0, 64, true, move |r, b| tx.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
            acc.socket.abort().unwrap();
            let (r, _) = rx.recv_timeout(LIMIT).unwrap();
            assert_eq!(r.unwrap_err(), Error::ConnectionAborted);
            let mut b = [0u8; 16];
            let e = peer.read(&mut b).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConnectionReset, "peer saw {e:?}");
            // Only closing is left to do.
            let mut buf = NonPagedBuffer::new(8, TAG).unwrap();
            assert_eq!(
                acc.socket.receive(&mut buf, 0, 8, false).unwrap_err(),
                Error::ConnectionAborted
            );
            acc.socket.close().unwrap();
        }
        scope.assert_clean();
    }
}
