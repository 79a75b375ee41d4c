//! Socket options through `WskControlSocket` (`WskSetOption` / `WskGetOption`), read back
//! and checked by their effects on real host sockets: address sharing with `SO_REUSEADDR`,
//! exclusivity with `SO_EXCLUSIVEADDRUSE`, `TCP_NODELAY`, `SO_KEEPALIVE`, buffer sizes.
//! IPv4 and IPv6, both completion paths.

mod common;

use std::net::SocketAddr;

use common::*;
use windows_sys::Win32::Foundation::{
    STATUS_ADDRESS_ALREADY_EXISTS, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER,
};
use wsk::{StreamSocket, WskClient};

fn loopback(v6: bool) -> &'static str {
    if v6 {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    }
}

/// Two stream sockets that both set SO_REUSEADDR bind the same specific address (SUCCESS in
/// the "Sharing Transport Addresses" table); a third without options is refused; options
/// read back; setting SO_REUSEADDR after bind is refused.
fn reuse_address_shares(mode: CompletionMode, v6: bool) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).expect("register");
        let any: SocketAddr = loopback(v6).parse().unwrap();
        let a = StreamSocket::create(&client, &any).expect("create a");
        assert!(!a.reuse_address().expect("get"));
        a.set_reuse_address(true).expect("set a");
        assert!(a.reuse_address().expect("get a"));
        a.bind(any).expect("bind a");
        let addr = a.local_address().expect("local a");
        assert_ne!(addr.port(), 0);
        let b = StreamSocket::create(&client, &any).expect("create b");
        b.set_reuse_address(true).expect("set b");
        b.bind(addr).expect("second bind with SO_REUSEADDR on both");
        assert_eq!(b.local_address().expect("local b"), addr);
        let c = StreamSocket::create(&client, &any).expect("create c");
        let e = c.bind(addr).expect_err("default bind to a shared address");
        assert!(e.status() < 0);
        let e = a.set_reuse_address(false).expect_err("after bind");
        assert_eq!(e.status(), STATUS_INVALID_DEVICE_STATE);
    }
    scope.assert_clean();
}

/// SO_EXCLUSIVEADDRUSE on the first socket: a second bind to the address, default or
/// exclusive, fails with STATUS_ADDRESS_ALREADY_EXISTS (INUSE in the table, for both); the
/// two options are mutually exclusive on one socket.
fn exclusive_blocks(mode: CompletionMode, v6: bool) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).expect("register");
        let any: SocketAddr = loopback(v6).parse().unwrap();
        // The port is probed with TCP, and the probe is retried when another test's
        // connection took it as its ephemeral port in between (bind x then fails with
        // STATUS_ADDRESS_ALREADY_EXISTS: seen with ss, a TIME_WAIT connection on it).
        let mut attempt = 0;
        let (_x, addr) = loop {
            attempt += 1;
            let addr = std::net::TcpListener::bind(any)
                .and_then(|l| l.local_addr())
                .expect("probe");
            let x = StreamSocket::create(&client, &any).expect("create x");
            x.set_exclusive_address_use(true).expect("exclusive");
            assert!(x.exclusive_address_use().expect("get"));
            let e = x.set_reuse_address(true).expect_err("both options");
            assert_eq!(e.status(), STATUS_INVALID_PARAMETER);
            match x.bind(addr) {
                Ok(()) => break (x, addr),
                Err(e) if e.status() == STATUS_ADDRESS_ALREADY_EXISTS && attempt < 20 => {}
                Err(e) => panic!("bind x: {e:?}"),
            }
        };
        let y = StreamSocket::create(&client, &any).expect("create y");
        let e = y.bind(addr).expect_err("default after exclusive");
        assert_eq!(e.status(), STATUS_ADDRESS_ALREADY_EXISTS);
        let z = StreamSocket::create(&client, &any).expect("create z");
        z.set_exclusive_address_use(true).expect("exclusive z");
        let e = z.bind(addr).expect_err("exclusive after exclusive");
        assert_eq!(e.status(), STATUS_ADDRESS_ALREADY_EXISTS);
    }
    scope.assert_clean();
}

/// TCP_NODELAY and SO_KEEPALIVE on a connected socket read back as set, and bytes still
/// flow to the real peer; buffer sizes read back as set.
fn tcp_options_and_buffers(mode: CompletionMode, v6: bool) {
    let scope = begin(mode);
    let data = payload(10_000, 7);
    let (addr, sink) = tcp_sink(loopback(v6), std::time::Duration::from_secs(10));
    {
        let client = WskClient::register(1000).expect("register");
        let s = StreamSocket::connect(&client, addr, Some(std::time::Duration::from_secs(10)))
            .expect("connect");
        assert!(!s.nodelay().expect("nodelay"));
        s.set_nodelay(true).expect("set nodelay");
        assert!(s.nodelay().expect("nodelay on"));
        s.set_keepalive(true).expect("keepalive");
        assert!(s.keepalive().expect("keepalive on"));
        s.set_receive_buffer_size(65536).expect("rcvbuf");
        assert_eq!(s.receive_buffer_size().expect("get rcvbuf"), 65536);
        s.set_send_buffer_size(32768).expect("sndbuf");
        assert_eq!(s.send_buffer_size().expect("get sndbuf"), 32768);
        let buf = wsk::NonPagedBuffer::from_slice(&data, wsk::pool::tag(b"Test")).unwrap();
        assert_eq!(s.send(&buf, 0, data.len()).expect("send"), data.len());
        s.close().expect("close");
    }
    assert_eq!(sink.join().unwrap().unwrap(), data);
    scope.assert_clean();
}

#[test]
fn reuse_address_ipv4_pending() {
    reuse_address_shares(CompletionMode::Pending, false);
}
#[test]
fn reuse_address_ipv4_inline() {
    reuse_address_shares(CompletionMode::Inline, false);
}
#[test]
fn reuse_address_ipv6_pending() {
    reuse_address_shares(CompletionMode::Pending, true);
}
#[test]
fn reuse_address_ipv6_inline() {
    reuse_address_shares(CompletionMode::Inline, true);
}
#[test]
fn exclusive_ipv4_pending() {
    exclusive_blocks(CompletionMode::Pending, false);
}
#[test]
fn exclusive_ipv4_inline() {
    exclusive_blocks(CompletionMode::Inline, false);
}
#[test]
fn exclusive_ipv6_pending() {
    exclusive_blocks(CompletionMode::Pending, true);
}
#[test]
fn exclusive_ipv6_inline() {
    exclusive_blocks(CompletionMode::Inline, true);
}
#[test]
fn tcp_options_ipv4_pending() {
    tcp_options_and_buffers(CompletionMode::Pending, false);
}
#[test]
fn tcp_options_ipv4_inline() {
    tcp_options_and_buffers(CompletionMode::Inline, false);
}
#[test]
fn tcp_options_ipv6_pending() {
    tcp_options_and_buffers(CompletionMode::Pending, true);
}
#[test]
fn tcp_options_ipv6_inline() {
    tcp_options_and_buffers(CompletionMode::Inline, true);
}
