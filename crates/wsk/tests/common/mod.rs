//! Shared test support: the emulated kernel scope, deterministic payloads, real peers.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
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

/// A real UDP socket that collects `count` datagrams (or stops at the deadline).
pub fn udp_sink(addr: &str, count: usize, limit: Duration) -> (SocketAddr, mpsc::Receiver<Vec<Vec<u8>>>) {
    let s = UdpSocket::bind(addr).expect("bind udp");
    let a = s.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < count && Instant::now() < deadline {
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            if let Ok(n) = s.recv(&mut buf) {
                got.push(buf[..n].to_vec());
            }
        }
        let _ = tx.send(got);
    });
    (a, rx)
}
