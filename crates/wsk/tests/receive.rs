//! WskReceive (stream, WSK_FLAG_WAITALL, graceful disconnect = 0 bytes) and WskReceiveFrom
//! (datagram, with the sender's address), synchronous and asynchronous, on both completion
//! paths, IPv4 and IPv6, against real peers; every byte is checked.

mod common;

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use windows_sys::Win32::Foundation::*;
use wsk::{BufferChain, DatagramSocket, Error, NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");
const LIMIT: Duration = Duration::from_secs(10);

/// A connected pair: our StreamSocket and the real peer's end.
fn pair(client: &WskClient, bind: &str) -> (StreamSocket, TcpStream) {
    let l = TcpListener::bind(bind).unwrap();
    let sock = StreamSocket::connect(client, l.local_addr().unwrap(), Some(LIMIT)).unwrap();
    let (peer, _) = l.accept().unwrap();
    (sock, peer)
}

/// The peer writes 1 MiB in uneven pieces and then FIN; we receive it with WAITALL and
/// partial receives into single buffers and MDL chains at non-zero offsets, then a receive
/// completes with 0 bytes (graceful disconnect by the peer), and so does the next one.
fn one_mib_then_fin(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    let total = 1 << 20;
    let data = payload(total, 0xfeed);
    {
        let client = WskClient::register(1000).unwrap();
        let (sock, mut peer) = pair(&client, bind);
        let d = data.clone();
        let writer = std::thread::spawn(move || {
            let sizes = [1usize, 100, 1460, 4096, 65536, 7, 30000];
            let mut off = 0;
            let mut i = 0;
            while off < d.len() {
                let n = sizes[i % sizes.len()].min(d.len() - off);
                peer.write_all(&d[off..off + n]).unwrap();
                off += n;
                i += 1;
            }
            peer.shutdown(Shutdown::Write).unwrap();
            peer
        });
        let mut got = Vec::with_capacity(total);
        let mut big = NonPagedBuffer::new(70_000, TAG).unwrap();
        let mut chain = BufferChain::new(vec![
            NonPagedBuffer::new(10, TAG).unwrap(),
            NonPagedBuffer::new(5000, TAG).unwrap(),
            NonPagedBuffer::new(3000, TAG).unwrap(),
        ])
        .unwrap();
        let mut i = 0usize;
        loop {
            let n = match i % 3 {
                // WAITALL into a single MDL at offset 5: exactly the range unless at EOF.
                0 => {
                    let want = 65_000.min(total - got.len()).max(1);
                    let n = sock.receive(&mut big, 5, want, true).unwrap();
                    assert!(
                        n == want || got.len() + n == total,
                        "WAITALL returned {n} of {want}"
                    );
                    got.extend_from_slice(&big.as_slice()[5..5 + n]);
                    n
                }
                // Partial receive into a single MDL.
                1 => {
                    let n = sock.receive(&mut big, 0, 70_000, false).unwrap();
                    got.extend_from_slice(&big.as_slice()[..n]);
                    n
                }
                // WAITALL into a three-MDL chain, starting 3 bytes into the first MDL.
                _ => {
                    let want = 8000.min(total - got.len()).max(1);
                    let n = sock.receive(&mut chain, 3, want, true).unwrap();
                    let mut flat = Vec::new();
                    for p in chain.parts() {
                        flat.extend_from_slice(p.as_slice());
                    }
                    got.extend_from_slice(&flat[3..3 + n]);
                    n
                }
            };
            i += 1;
            if n == 0 {
                break;
            }
        }
        assert_eq!(got.len(), total);
        assert!(
            got == data,
            "bytes differ at {:?}",
            got.iter().zip(&data).position(|(a, b)| a != b)
        );
        // After the FIN every receive completes at once with 0 bytes.
        assert_eq!(sock.receive(&mut big, 0, 100, false).unwrap(), 0);
        assert_eq!(sock.receive(&mut big, 0, 100, true).unwrap(), 0);
        let _peer = writer.join().unwrap();
        sock.close().unwrap();
    }
    scope.assert_clean();
}

#[test]
fn receive_one_mib_then_fin_pending_ipv4() {
    one_mib_then_fin(CompletionMode::Pending, "127.0.0.1:0");
}

#[test]
fn receive_one_mib_then_fin_inline_ipv4() {
    one_mib_then_fin(CompletionMode::Inline, "127.0.0.1:0");
}

#[test]
fn receive_one_mib_then_fin_pending_ipv6() {
    one_mib_then_fin(CompletionMode::Pending, "[::1]:0");
}

#[test]
fn receive_one_mib_then_fin_inline_ipv6() {
    one_mib_then_fin(CompletionMode::Inline, "[::1]:0");
}

/// WSK_FLAG_WAITALL for more than the peer sends before its FIN: the receive completes at
/// the FIN with what arrived (WskReceive docs: "The connection is gracefully disconnected by
/// the remote sender"); then 0.
#[test]
fn waitall_completes_at_fin_with_what_arrived() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let (sock, mut peer) = pair(&client, "127.0.0.1:0");
            let data = payload(100, 5);
            peer.write_all(&data).unwrap();
            peer.shutdown(Shutdown::Write).unwrap();
            let mut buf = NonPagedBuffer::new(1000, TAG).unwrap();
            assert_eq!(sock.receive(&mut buf, 0, 1000, true).unwrap(), 100);
            assert_eq!(&buf.as_slice()[..100], &data[..]);
            assert_eq!(sock.receive(&mut buf, 0, 1000, true).unwrap(), 0);
        }
        scope.assert_clean();
    }
}

/// Asynchronous receives: the buffer moves into the operation and comes back, filled, in
/// the completion routine (at IRQL <= DISPATCH_LEVEL). The peer waits for each echo
/// request, so each receive is pending when the data arrives in pending mode.
#[test]
fn async_receives_return_filled_buffers() {
    for (mode, bind) in [
        (CompletionMode::Pending, "127.0.0.1:0"),
        (CompletionMode::Inline, "[::1]:0"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let (sock, mut peer) = pair(&client, bind);
            let (tx, rx) = mpsc::channel();
            let mut buf = NonPagedBuffer::new(4096, TAG).unwrap();
            for round in 0..32u64 {
                let tx = tx.clone();
                sock.receive_async(buf, 0, 4096, true, move |r, b| {
                    assert!(ntsim::irql::current() <= ntsim::irql::DISPATCH_LEVEL);
                    tx.send((r, b)).unwrap();
                })
                .map_err(|(e, _)| e)
                .unwrap();
                let d = payload(4096, round + 1);
                peer.write_all(&d).unwrap();
                let (r, b) = rx.recv_timeout(LIMIT).unwrap();
                assert_eq!(r.unwrap(), 4096);
                assert_eq!(b.as_slice(), &d[..]);
                buf = b;
            }
        }
        scope.assert_clean();
    }
}

/// A receive that outlives its timeout is cancelled (STATUS_IO_TIMEOUT) and consumes no
/// byte: what the peer sends afterwards reaches the next receive intact.
#[test]
fn receive_timeout_cancels_without_losing_data() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let (mut sock, mut peer) = pair(&client, "127.0.0.1:0");
            sock.set_timeout(Some(Duration::from_millis(200)));
            let mut buf = NonPagedBuffer::new(64, TAG).unwrap();
            let e = sock.receive(&mut buf, 0, 64, false).unwrap_err();
            assert_eq!(e, Error::Timeout);
            assert_eq!(e.status(), STATUS_IO_TIMEOUT);
            peer.write_all(b"after the timeout").unwrap();
            sock.set_timeout(Some(LIMIT));
            assert_eq!(sock.receive(&mut buf, 0, 17, true).unwrap(), 17);
            assert_eq!(&buf.as_slice()[..17], b"after the timeout");
        }
        scope.assert_clean();
    }
}

/// Closing a socket with a pending asynchronous receive completes it with STATUS_CANCELLED
/// (WskCloseSocket "cancels and completes all pending IRPs",
/// https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket).
#[test]
fn close_cancels_pending_receive() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let (sock, _peer) = pair(&client, "127.0.0.1:0");
            let (tx, rx) = mpsc::channel();
            let buf = NonPagedBuffer::new(64, TAG).unwrap();
            sock.receive_async(buf, 0, 64, false, move |r, b| tx.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
            sock.close().unwrap();
            let (r, _b) = rx.recv_timeout(LIMIT).unwrap();
            assert_eq!(r.unwrap_err().status(), STATUS_CANCELLED);
        }
        scope.assert_clean();
    }
}

/// The peer's RST fails a receive with STATUS_CONNECTION_RESET.
#[test]
fn receive_after_peer_reset_reports_connection_reset() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let (sock, peer) = pair(&client, "127.0.0.1:0");
            socket2::SockRef::from(&peer)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(peer);
            let mut buf = NonPagedBuffer::new(64, TAG).unwrap();
            assert_eq!(
                sock.receive(&mut buf, 0, 64, false).unwrap_err(),
                Error::ConnectionReset
            );
        }
        scope.assert_clean();
    }
}

fn datagram(i: u32) -> Vec<u8> {
    let mut d = i.to_le_bytes().to_vec();
    d.extend(payload(1 + (i as usize * 53) % 1400, i as u64));
    d
}

/// Two real UDP senders send 200 datagrams each to our socket; each WskReceiveFrom returns
/// one datagram, intact, with its real sender's address.
fn receive_from_two_senders(mode: CompletionMode, ip: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let sock = DatagramSocket::bind(&client, format!("{ip}:0").parse().unwrap()).unwrap();
        let to = sock.local_address().unwrap();
        let a = UdpSocket::bind(format!("{ip}:0")).unwrap();
        let b = UdpSocket::bind(format!("{ip}:0")).unwrap();
        let senders: [(SocketAddr, &UdpSocket); 2] =
            [(a.local_addr().unwrap(), &a), (b.local_addr().unwrap(), &b)];
        let mut buf = NonPagedBuffer::new(2048, TAG).unwrap();
        for i in 0..400u32 {
            let (from, s) = senders[(i % 2) as usize];
            let d = datagram(i);
            s.send_to(&d, to).unwrap();
            let (n, sender) = sock.receive_from(&mut buf, 0, 2048).unwrap();
            assert_eq!(sender, from, "sender of datagram {i}");
            assert_eq!(&buf.as_slice()[..n], &d[..], "datagram {i}");
        }
        sock.close().unwrap();
    }
    scope.assert_clean();
}

#[test]
fn receive_from_pending_ipv4() {
    receive_from_two_senders(CompletionMode::Pending, "127.0.0.1");
}

#[test]
fn receive_from_inline_ipv4() {
    receive_from_two_senders(CompletionMode::Inline, "127.0.0.1");
}

#[test]
fn receive_from_pending_ipv6() {
    receive_from_two_senders(CompletionMode::Pending, "[::1]");
}

#[test]
fn receive_from_inline_ipv6() {
    receive_from_two_senders(CompletionMode::Inline, "[::1]");
}

/// Asynchronous WskReceiveFrom, posted before the datagram is sent (so it is pending),
/// returns the buffer with the datagram and the sender's address; a pending one is
/// cancelled by close.
#[test]
fn receive_from_async_and_cancel_on_close() {
    for (mode, ip) in [
        (CompletionMode::Pending, "127.0.0.1"),
        (CompletionMode::Inline, "[::1]"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let sock = DatagramSocket::bind(&client, format!("{ip}:0").parse().unwrap()).unwrap();
            let to = sock.local_address().unwrap();
            let peer = UdpSocket::bind(format!("{ip}:0")).unwrap();
            let (tx, rx) = mpsc::channel();
            let mut buf = NonPagedBuffer::new(1500, TAG).unwrap();
            for i in 0..20u32 {
                let tx = tx.clone();
                sock.receive_from_async(buf, 0, 1500, move |r, b| tx.send((r, b)).unwrap())
                    .map_err(|(e, _)| e)
                    .unwrap();
                let d = datagram(i);
                peer.send_to(&d, to).unwrap();
                let (r, b) = rx.recv_timeout(LIMIT).unwrap();
                let (n, from) = r.unwrap();
                assert_eq!(from, peer.local_addr().unwrap());
                assert_eq!(&b.as_slice()[..n], &d[..]);
                buf = b;
            }
            let tx2 = tx.clone();
            sock.receive_from_async(buf, 0, 1500, move |r, b| tx2.send((r, b)).unwrap())
                .map_err(|(e, _)| e)
                .unwrap();
            sock.close().unwrap();
            let (r, _) = rx.recv_timeout(LIMIT).unwrap();
            assert_eq!(r.unwrap_err(), Error::Cancelled);
        }
        scope.assert_clean();
    }
}
