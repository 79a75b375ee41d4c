//! Every existing operation in the full matrix {IPv4, IPv6} x {pending, inline completion}:
//! WskSocketConnect and the WskSocket + WskBind + WskConnect path, WskSend/WskReceive both
//! ways, graceful and abortive WskDisconnect, WskSendTo/WskReceiveFrom, WskAccept, refused
//! connects, and per-operation timeouts (IoCancelIrp, then `STATUS_IO_TIMEOUT`) followed by a
//! working operation on the same socket. Real peers; each case ends with 0 leaks and 0
//! verifier violations.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use common::*;
use windows_sys::Win32::Foundation::*;
use wsk::{DatagramSocket, Error, ListenSocket, NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Mtrx");
const LIMIT: Duration = Duration::from_secs(10);

const MODES: [CompletionMode; 2] = [CompletionMode::Pending, CompletionMode::Inline];
const HOSTS: [&str; 2] = ["127.0.0.1", "[::1]"];

/// Runs `case` once per cell of the matrix, each in its own emulator scope that must end clean.
fn matrix(case: impl Fn(&WskClient, &str)) {
    for mode in MODES {
        for host in HOSTS {
            let scope = begin(mode);
            {
                let client = WskClient::register(1000).unwrap();
                case(&client, host);
            }
            eprintln!("matrix cell {mode:?} {host}: checking leaks and violations");
            scope.assert_clean();
        }
    }
}

fn at(host: &str) -> SocketAddr {
    format!("{host}:0").parse().unwrap()
}

/// Receives exactly `n` bytes with WAITALL and returns them.
fn receive_exact(sock: &StreamSocket, n: usize) -> Vec<u8> {
    let mut buf = NonPagedBuffer::new(n.max(1), TAG).unwrap();
    assert_eq!(sock.receive(&mut buf, 0, n, true).unwrap(), n);
    buf.as_slice()[..n].to_vec()
}

/// WskSocketConnect to a real listener; 256 KiB each way, checked at both ends; then the
/// peer's FIN reads as a 0-byte receive.
#[test]
fn stream_send_and_receive_both_ways() {
    matrix(|client, host| {
        let l = TcpListener::bind(at(host)).unwrap();
        let sock = StreamSocket::connect(client, l.local_addr().unwrap(), Some(LIMIT)).unwrap();
        let (mut peer, from) = l.accept().unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        assert_eq!(sock.local_address().unwrap(), from);
        assert_eq!(sock.remote_address().unwrap(), l.local_addr().unwrap());
        let down = NonPagedBuffer::from_slice(&payload(256 << 10, 1), TAG).unwrap();
        assert_eq!(sock.send(&down, 0, 256 << 10).unwrap(), 256 << 10);
        let mut got = vec![0u8; 256 << 10];
        peer.read_exact(&mut got).unwrap();
        assert!(got == down.as_slice(), "peer saw different bytes");
        let up = payload(256 << 10, 2);
        let writer = std::thread::spawn(move || {
            peer.write_all(&up).unwrap();
            peer.shutdown(Shutdown::Write).unwrap();
            (peer, up)
        });
        let got = receive_exact(&sock, 256 << 10);
        let (_peer, up) = writer.join().unwrap();
        assert!(got == up, "driver saw different bytes");
        let mut buf = NonPagedBuffer::new(16, TAG).unwrap();
        assert_eq!(sock.receive(&mut buf, 0, 16, false).unwrap(), 0, "FIN");
        sock.close().unwrap();
    });
}

/// WskSocket + WskBind (wildcard of the family) + WskConnect, then bytes to the peer.
#[test]
fn socket_bind_connect_path() {
    matrix(|client, host| {
        let l = TcpListener::bind(at(host)).unwrap();
        let remote = l.local_addr().unwrap();
        let sock = StreamSocket::create(client, &remote).unwrap();
        let wildcard: SocketAddr = if remote.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        sock.bind(wildcard).unwrap();
        sock.connect_to(remote, Some(LIMIT)).unwrap();
        let (mut peer, from) = l.accept().unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        assert_eq!(sock.local_address().unwrap(), from);
        let b = NonPagedBuffer::from_slice(&payload(10_000, 3), TAG).unwrap();
        assert_eq!(sock.send(&b, 0, 10_000).unwrap(), 10_000);
        let mut got = vec![0u8; 10_000];
        peer.read_exact(&mut got).unwrap();
        assert!(got == b.as_slice());
    });
}

/// A connect to a port nobody listens on completes with `STATUS_CONNECTION_REFUSED`.
#[test]
fn connect_refused() {
    matrix(|client, host| {
        let closed = closed_address(host);
        let e = StreamSocket::connect(client, closed, Some(LIMIT))
            .err()
            .expect("connect to a closed port must fail");
        assert_eq!(e.status(), STATUS_CONNECTION_REFUSED);
    });
}

/// WskAccept (listener bound on the family's loopback): both addresses reported; graceful
/// disconnect with final data (peer reads the data then EOF); a second connection is
/// disconnected abortively (peer reads a reset).
#[test]
fn accept_then_graceful_and_abortive_disconnect() {
    matrix(|client, host| {
        let mut l = ListenSocket::bind(client, at(host)).unwrap();
        l.set_timeout(Some(LIMIT));
        let addr = l.local_address().unwrap();

        let mut peer = TcpStream::connect(addr).unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let acc = l.accept().unwrap();
        assert_eq!(acc.local, addr);
        assert_eq!(acc.remote, peer.local_addr().unwrap());
        let last = NonPagedBuffer::from_slice(&payload(5000, 4), TAG).unwrap();
        assert_eq!(acc.socket.disconnect_with(&last, 0, 5000).unwrap(), 5000);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert!(got == last.as_slice(), "final data then FIN");
        acc.socket.close().unwrap();

        let mut peer = TcpStream::connect(addr).unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let acc = l.accept().unwrap();
        acc.socket.abort().unwrap();
        let mut b = [0u8; 8];
        let e = peer.read(&mut b).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset);
        l.close().unwrap();
    });
}

/// WskSendTo to a real UDP peer and WskReceiveFrom from it, with the sender's address.
#[test]
fn datagram_send_to_and_receive_from() {
    matrix(|client, host| {
        let sock = DatagramSocket::bind(client, at(host)).unwrap();
        let ours = sock.local_address().unwrap();
        let peer = UdpSocket::bind(at(host)).unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        for i in 0..50u64 {
            let d = payload(1 + (i as usize * 97) % 1400, i);
            let b = NonPagedBuffer::from_slice(&d, TAG).unwrap();
            assert_eq!(
                sock.send_to(&b, 0, d.len(), Some(peer.local_addr().unwrap()))
                    .unwrap(),
                d.len()
            );
            let mut got = [0u8; 2048];
            let (n, from) = peer.recv_from(&mut got).unwrap();
            assert_eq!(from, ours);
            assert!(got[..n] == d[..], "datagram {i}");
            peer.send_to(&d, ours).unwrap();
            let mut back = NonPagedBuffer::new(2048, TAG).unwrap();
            let (n, from) = sock.receive_from(&mut back, 0, 2048).unwrap();
            assert_eq!(from, peer.local_addr().unwrap());
            assert!(back.as_slice()[..n] == d[..], "echo {i}");
        }
    });
}

/// Per-operation timeouts: a WskReceive, a WskReceiveFrom and a WskAccept that nothing
/// satisfies are cancelled with IoCancelIrp and report `STATUS_IO_TIMEOUT`; the same socket
/// then completes the next operation normally (the cancelled IRP was completed and reused,
/// with no use-after-free: the verifier and leak counters are checked at the end).
#[test]
fn timeouts_cancel_and_the_socket_stays_usable() {
    matrix(|client, host| {
        let short = Some(Duration::from_millis(100));

        let l = TcpListener::bind(at(host)).unwrap();
        let mut sock = StreamSocket::connect(client, l.local_addr().unwrap(), Some(LIMIT)).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        sock.set_timeout(short);
        let mut buf = NonPagedBuffer::new(64, TAG).unwrap();
        let e = sock.receive(&mut buf, 0, 64, false).unwrap_err();
        assert_eq!(e, Error::Timeout);
        assert_eq!(e.status(), STATUS_IO_TIMEOUT);
        sock.set_timeout(Some(LIMIT));
        peer.write_all(b"after timeout").unwrap();
        assert_eq!(receive_exact(&sock, 13), b"after timeout");

        let mut d = DatagramSocket::bind(client, at(host)).unwrap();
        d.set_timeout(short);
        let mut b = NonPagedBuffer::new(64, TAG).unwrap();
        assert_eq!(
            d.receive_from(&mut b, 0, 64).unwrap_err().status(),
            STATUS_IO_TIMEOUT
        );
        d.set_timeout(Some(LIMIT));
        let u = UdpSocket::bind(at(host)).unwrap();
        u.send_to(b"dgram", d.local_address().unwrap()).unwrap();
        let (n, _) = d.receive_from(&mut b, 0, 64).unwrap();
        assert_eq!(&b.as_slice()[..n], b"dgram");

        let mut ls = ListenSocket::bind(client, at(host)).unwrap();
        ls.set_timeout(short);
        assert_eq!(
            ls.accept().err().map(|e| e.status()),
            Some(STATUS_IO_TIMEOUT)
        );
        ls.set_timeout(Some(LIMIT));
        let c = TcpStream::connect(ls.local_address().unwrap()).unwrap();
        let acc = ls.accept().unwrap();
        assert_eq!(acc.remote, c.local_addr().unwrap());
    });
}
