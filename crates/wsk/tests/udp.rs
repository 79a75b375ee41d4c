//! WskSocket + WskBind + WskSendTo to a real UDP socket, with and without a fixed remote
//! address (seed 001).

mod common;

use std::time::Duration;

use common::*;
use wsk::{DatagramSocket, NonPagedBuffer, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");

fn datagram(i: u32) -> Vec<u8> {
    let mut d = i.to_le_bytes().to_vec();
    d.extend(payload(1 + (i as usize * 37) % 1400, i as u64));
    d
}

fn two_thousand_datagrams(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    let (peer, rx, received) = udp_sink(bind, 2000, Duration::from_secs(20));
    {
        let client = WskClient::register(1000).expect("register");
        let local = format!("{}:0", if peer.is_ipv4() { "127.0.0.1" } else { "[::1]" });
        let sock = DatagramSocket::bind(&client, local.parse().unwrap()).expect("bind");
        assert_eq!(sock.local_address().expect("local").ip(), peer.ip());
        let mut buf = NonPagedBuffer::new(2048, TAG).expect("buffer");
        for i in 0..1000u32 {
            wait_window(&received, i as usize, 32);
            let d = datagram(i);
            buf.as_mut_slice()[..d.len()].copy_from_slice(&d);
            assert_eq!(
                sock.send_to(&buf, 0, d.len(), Some(peer)).expect("send_to"),
                d.len()
            );
        }
        sock.set_remote(peer).expect("SIO_WSK_SET_REMOTE_ADDRESS");
        for i in 1000..2000u32 {
            wait_window(&received, i as usize, 32);
            let d = datagram(i);
            buf.as_mut_slice()[..d.len()].copy_from_slice(&d);
            assert_eq!(
                sock.send_to(&buf, 0, d.len(), None).expect("send_to NULL"),
                d.len()
            );
        }
        sock.close().expect("close");
    }
    let got = rx.recv_timeout(Duration::from_secs(30)).expect("sink");
    assert_eq!(got.len(), 2000, "datagrams received");
    let mut seen = vec![false; 2000];
    for g in &got {
        let i = u32::from_le_bytes(g[..4].try_into().unwrap());
        assert_eq!(g, &datagram(i), "datagram {i} content");
        assert!(!seen[i as usize], "datagram {i} twice");
        seen[i as usize] = true;
    }
    scope.assert_clean();
}

#[test]
fn udp_2000_pending_path() {
    two_thousand_datagrams(CompletionMode::Pending, "127.0.0.1:0");
}

#[test]
fn udp_2000_inline_path() {
    two_thousand_datagrams(CompletionMode::Inline, "127.0.0.1:0");
}

#[test]
fn udp_ipv6_pending_path() {
    two_thousand_datagrams(CompletionMode::Pending, "[::1]:0");
}

#[test]
fn udp_sendto_address_then_null() {
    let scope = begin(CompletionMode::Pending);
    let (peer, rx, _) = udp_sink("127.0.0.1:0", 3, Duration::from_secs(10));
    {
        let client = WskClient::register(1000).unwrap();
        let sock = DatagramSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
        let buf = NonPagedBuffer::from_slice(b"abc", TAG).unwrap();
        // No destination at all: refused.
        assert_eq!(
            sock.send_to(&buf, 0, 3, None).unwrap_err(),
            wsk::Error::InvalidParameter
        );
        sock.set_sendto_address(peer).unwrap();
        for _ in 0..3 {
            assert_eq!(sock.send_to(&buf, 0, 3, None).unwrap(), 3);
        }
    }
    let got = rx.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!(got, vec![b"abc".to_vec(); 3]);
    scope.assert_clean();
}
