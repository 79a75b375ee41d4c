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
        let sock =
            StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).expect("connect");
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
                        parts.push(
                            NonPagedBuffer::from_slice(
                                &data[off + a - lead..off + a - lead + b],
                                TAG,
                            )
                            .expect("p2"),
                        );
                    }
                    if c > 0 {
                        parts.push(
                            NonPagedBuffer::from_slice(&data[off + a - lead + b..off + n], TAG)
                                .expect("p3"),
                        );
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
    assert!(
        got == data,
        "bytes differ at {:?}",
        got.iter().zip(&data).position(|(a, b)| a != b)
    );
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

/// After the first send, a steady-state send makes 0 pool, 0 IRP and 0 MDL allocations:
/// the socket reuses its IRP (IoReuseIrp) and the buffer carries its own MDL.
fn steady_state_sends_allocate_nothing(mode: CompletionMode) {
    let scope = begin(mode);
    let (addr, sink) = tcp_sink("127.0.0.1:0", Duration::from_secs(20));
    let data = payload(4096, 9);
    {
        let client = WskClient::register(1000).unwrap();
        let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
        let buf = NonPagedBuffer::from_slice(&data, TAG).unwrap();
        sock.send(&buf, 0, 4096).unwrap();
        let before = ntsim::verifier::snapshot();
        for _ in 0..200 {
            assert_eq!(sock.send(&buf, 0, 4096).unwrap(), 4096);
        }
        let after = ntsim::verifier::snapshot();
        assert_eq!(
            after.pool_allocations - before.pool_allocations,
            0,
            "pool allocations"
        );
        assert_eq!(
            after.irp_allocations - before.irp_allocations,
            0,
            "IRP allocations"
        );
        assert_eq!(
            after.mdl_allocations - before.mdl_allocations,
            0,
            "MDL allocations"
        );
        // The provider read the bytes straight from the MDL-described memory.
        sock.close().unwrap();
    }
    let got = sink.join().unwrap().unwrap();
    assert_eq!(got.len(), 201 * 4096);
    assert!(got.chunks(4096).all(|c| c == data.as_slice()));
    scope.assert_clean();
}

#[test]
fn steady_state_send_allocates_nothing_pending() {
    steady_state_sends_allocate_nothing(CompletionMode::Pending);
}

#[test]
fn steady_state_send_allocates_nothing_inline() {
    steady_state_sends_allocate_nothing(CompletionMode::Inline);
}

/// A provider without WskSocketConnect (Wine 8.0's netio.sys returns STATUS_NOT_IMPLEMENTED)
/// makes `connect` fall back to WskSocket + WskBind + WskConnect, visibly.
#[test]
fn connect_falls_back_when_socket_connect_is_not_implemented() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        ntsim::config::set_socket_connect_implemented(false);
        let (addr, sink) = tcp_sink("[::1]:0", Duration::from_secs(20));
        let data = payload(100_000, 3);
        {
            let client = WskClient::register(1000).unwrap();
            let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
            assert!(sock.used_fallback());
            assert_eq!(sock.remote_address().unwrap(), addr);
            let buf = NonPagedBuffer::from_slice(&data, TAG).unwrap();
            assert_eq!(sock.send(&buf, 0, data.len()).unwrap(), data.len());
        }
        assert_eq!(sink.join().unwrap().unwrap(), data);
        scope.assert_clean();
    }
}

/// Asynchronous sends: the buffer moves into the operation and comes back in the callback.
#[test]
fn async_sends_return_their_buffers() {
    use std::sync::mpsc;
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        let (addr, sink) = tcp_sink("127.0.0.1:0", Duration::from_secs(20));
        let data = payload(64 * 1024, 11);
        {
            let client = WskClient::register(1000).unwrap();
            let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
            let (tx, rx) = mpsc::channel();
            let mut buf = NonPagedBuffer::from_slice(&data, TAG).unwrap();
            for _ in 0..16 {
                let tx = tx.clone();
                sock.send_async(buf, 0, data.len(), move |r, b| {
                    // IoCompletion routines run at IRQL <= DISPATCH_LEVEL.
                    assert!(ntsim::irql::current() <= ntsim::irql::DISPATCH_LEVEL);
                    tx.send((r, b)).unwrap();
                })
                .map_err(|(e, _)| e)
                .unwrap();
                let (r, b) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(r.unwrap(), data.len());
                buf = b;
            }
        }
        let got = sink.join().unwrap().unwrap();
        assert_eq!(got.len(), 16 * data.len());
        assert!(got.chunks(data.len()).all(|c| c == data.as_slice()));
        scope.assert_clean();
    }
}

/// On a kernel without ExAllocatePool2 (Wine 8.0, Windows before 2004) the client resolves
/// it at run time, finds nothing, and allocates with ExAllocatePoolWithTag + zeroing.
#[test]
fn works_without_ex_allocate_pool2() {
    let scope = begin(CompletionMode::Inline);
    ntsim::config::set_ex_allocate_pool2_available(false);
    let (addr, sink) = tcp_sink("127.0.0.1:0", Duration::from_secs(20));
    let data = payload(10_000, 21);
    {
        let client = WskClient::register(1000).unwrap();
        assert!(!wsk::pool::resolve());
        let buf = NonPagedBuffer::new(10_000, TAG).unwrap();
        assert!(
            buf.as_slice().iter().all(|&b| b == 0),
            "fallback zeroes the block"
        );
        let buf = NonPagedBuffer::from_slice(&data, TAG).unwrap();
        let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
        sock.send(&buf, 0, data.len()).unwrap();
    }
    ntsim::config::set_ex_allocate_pool2_available(true);
    assert!(wsk::pool::resolve());
    assert_eq!(sink.join().unwrap().unwrap(), data);
    scope.assert_clean();
}
