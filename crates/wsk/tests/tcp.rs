//! WskSocketConnect + WskSend against a real TCP listener (seeds 002, 000).

mod common;

use std::time::Duration;

use common::*;
use wsk::{BufferChain, NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");

/// 1 MiB in sends of 1 B ..= 64 KiB: single-MDL sends, three-MDL chains, and sends that
/// start at a non-zero offset into their first MDL. The listener must receive exactly the
/// bytes sent, in order.
fn one_mib_in_mixed_sends(mode: CompletionMode) {
    let scope = begin(mode);
    let total = 1 << 20;
    let data = payload(total, 0x5eed);
    let (addr, sink) = tcp_sink("127.0.0.1:0", Duration::from_secs(20));
    {
        let client = WskClient::register(1000).expect("register");
        let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).expect("connect");
        assert!(!sock.used_fallback());
        assert_eq!(sock.remote_address().expect("remote"), addr);
        let big = NonPagedBuffer::from_slice(&data, TAG).expect("buffer");
        let sizes = [1usize, 7, 512, 1460, 4096, 4097, 65536, 33333, 2, 60000];
        let mut off = 0usize;
        let mut i = 0usize;
        while off < total {
            let n = sizes[i % sizes.len()].min(total - off);
            match i % 3 {
                // A single MDL, non-zero offset into it.
                0 | 1 => {
                    let sent = sock.send(&big, off, n).expect("send");
                    assert_eq!(sent, n);
                }
                // A three-MDL chain with a non-zero offset into its first MDL.
                _ => {
                    let lead = 3usize;
                    let a = n / 3 + lead;
                    let b = n / 3;
                    let c = n - (a - lead) - b;
                    let mut parts = Vec::new();
                    let mut first = vec![0xEEu8; a];
                    first[lead..].copy_from_slice(&data[off..off + a - lead]);
                    parts.push(NonPagedBuffer::from_slice(&first, TAG).expect("p1"));
                    if b > 0 {
                        parts.push(NonPagedBuffer::from_slice(&data[off + a - lead..off + a - lead + b], TAG).expect("p2"));
                    }
                    if c > 0 {
                        parts.push(NonPagedBuffer::from_slice(&data[off + a - lead + b..off + n], TAG).expect("p3"));
                    }
                    let chain = BufferChain::new(parts).expect("chain");
                    let sent = sock.send(&chain, lead, n).expect("send chain");
                    assert_eq!(sent, n);
                }
            }
            off += n;
            i += 1;
        }
        sock.close().expect("close");
    }
    let got = sink.join().expect("sink thread").expect("sink io");
    assert_eq!(got.len(), total);
    assert!(got == data, "bytes differ at {:?}", got.iter().zip(&data).position(|(a, b)| a != b));
    scope.assert_clean();
}

#[test]
fn tcp_one_mib_pending_path() {
    one_mib_in_mixed_sends(CompletionMode::Pending);
}

#[test]
fn tcp_one_mib_inline_path() {
    one_mib_in_mixed_sends(CompletionMode::Inline);
}
