//! Shared test support: the emulated kernel scope, deterministic payloads, real peers.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use ntsim::config::CompletionMode;

/// Starts a test: takes the emulator scope and sets the completion path.
pub fn begin(mode: CompletionMode) -> ntsim::Scope {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    scope
}

/// Deterministic pseudo-random bytes (xorshift), so a mismatch shows where.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A real TCP listener that accepts one connection and returns every byte until EOF
/// (bounded by `limit`).
pub fn tcp_sink(addr: &str, limit: Duration) -> (SocketAddr, JoinHandle<std::io::Result<Vec<u8>>>) {
    let l = TcpListener::bind(addr).expect("bind sink");
    let a = l.local_addr().expect("addr");
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept()?;
        s.set_read_timeout(Some(limit))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    });
    (a, h)
}

/// A real UDP socket that collects `count` datagrams (or stops at the deadline). The
/// returned counter says how many it has received so far, for senders' flow control.
pub fn udp_sink(
    addr: &str,
    count: usize,
    limit: Duration,
) -> (SocketAddr, mpsc::Receiver<Vec<Vec<u8>>>, Arc<AtomicUsize>) {
    let s = UdpSocket::bind(addr).expect("bind udp");
    let a = s.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    let received = Arc::new(AtomicUsize::new(0));
    let r = received.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < count && Instant::now() < deadline {
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            if let Ok(n) = s.recv(&mut buf) {
                got.push(buf[..n].to_vec());
                r.fetch_add(1, Ordering::SeqCst);
            }
        }
        let _ = tx.send(got);
    });
    (a, rx, received)
}

/// Flow control for datagram tests: waits (bounded, 10 s) until the receiver is at most
/// `window` datagrams behind `sent`, so loopback's receive buffer never overflows.
pub fn wait_window(received: &AtomicUsize, sent: usize, window: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::SeqCst) + window < sent {
        assert!(
            Instant::now() < deadline,
            "receiver stalled at {} of {sent}",
            received.load(Ordering::SeqCst)
        );
        std::thread::yield_now();
    }
}

/// A loopback address (`host`: "127.0.0.1", "::1" or "[::1]") on which nothing listens now, with a
/// port below Linux's ephemeral range (32768–60999 by default). A port the kernel picked for
/// `bind(:0)` and released is an ephemeral port: a connect to it may be given the same port
/// as its source and connect to itself (TCP simultaneous open), or another test may listen
/// on it; neither can happen below the range. Bounded: panics after 2,000 taken candidates.
pub fn closed_address(host: &str) -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = literal.parse().expect("a literal address");
    let base = std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..2_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        let addr = std::net::SocketAddr::new(ip, port);
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port below the ephemeral range");
}
