//! `StreamSocket::connect_ex`: `WskConnectEx` with initial data seen byte-exact by a real
//! peer, IPv4 and IPv6, both completion paths; and the connect-then-send fallback when the
//! provider refuses `WskConnectEx` (ntsim::config::set_connect_ex_implemented(false)).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use wsk::{NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");
const WAIT: Duration = Duration::from_secs(10);

fn run(mode: CompletionMode, at: &str, wildcard: &str, native: bool) {
    let scope = begin(mode);
    ntsim::config::set_connect_ex_implemented(native);
    let first = payload(60_000, 0x5eed);
    let rest = payload(100_000, 0xbeef);
    let (addr, sink) = tcp_sink(at, WAIT);
    {
        let client = WskClient::register(1000).expect("register");
        let buf = NonPagedBuffer::from_slice(&first, TAG).expect("buf");
        let local: SocketAddr = wildcard.parse().unwrap();
        let (s, n) = StreamSocket::connect_ex(
            &client,
            local,
            addr,
            Some((&buf, 0, first.len())),
            Some(WAIT),
        )
        .expect("connect_ex");
        assert_eq!(n, first.len());
        assert_eq!(s.used_fallback(), !native);
        assert_eq!(s.remote_address().expect("remote"), addr);
        let more = NonPagedBuffer::from_slice(&rest, TAG).expect("buf");
        assert_eq!(s.send(&more, 0, rest.len()).expect("send"), rest.len());
        s.close().expect("close");
    }
    let got = sink.join().expect("sink").expect("io");
    let mut want = first.clone();
    want.extend_from_slice(&rest);
    assert!(
        got == want,
        "peer got {} bytes, not the expected {}",
        got.len(),
        want.len()
    );
    scope.assert_clean();
}

#[test]
fn connect_ex_ipv4_pending() {
    run(CompletionMode::Pending, "127.0.0.1:0", "0.0.0.0:0", true);
}
#[test]
fn connect_ex_ipv4_inline() {
    run(CompletionMode::Inline, "127.0.0.1:0", "0.0.0.0:0", true);
}
#[test]
fn connect_ex_ipv6_pending() {
    run(CompletionMode::Pending, "[::1]:0", "[::]:0", true);
}
#[test]
fn connect_ex_ipv6_inline() {
    run(CompletionMode::Inline, "[::1]:0", "[::]:0", true);
}
#[test]
fn fallback_ipv4_pending() {
    run(CompletionMode::Pending, "127.0.0.1:0", "0.0.0.0:0", false);
}
#[test]
fn fallback_ipv6_inline() {
    run(CompletionMode::Inline, "[::1]:0", "[::]:0", false);
}

/// Refused connect: STATUS_CONNECTION_REFUSED, nothing leaked.
#[test]
fn connect_ex_refused() {
    let scope = begin(CompletionMode::Pending);
    {
        let client = WskClient::register(1000).expect("register");
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let e = StreamSocket::connect_ex::<NonPagedBuffer>(
            &client,
            "0.0.0.0:0".parse().unwrap(),
            addr,
            None,
            Some(WAIT),
        )
        .err()
        .expect("refused");
        assert_eq!(
            e.status(),
            windows_sys::Win32::Foundation::STATUS_CONNECTION_REFUSED
        );
    }
    scope.assert_clean();
}
