//! ntsim's hot path does no heap allocation of its own (issue 13 item 2): in the default
//! completion mode, a steady-state `WskSend` the socket takes at once and a `WskReceive`
//! whose bytes are already there run entirely on the calling thread, and that thread
//! allocates nothing: not in the provider's queue run (finished-IRP lists, iovecs, receive
//! staging buffers), not in the verifier's IRP, MDL and pool tables. The wsk socket reuses
//! its IRP and the buffer carries its MDL, so nothing else needs the heap either.
//!
//! Heap allocations are counted per thread by this test's global allocator, so the peer's
//! threads and the provider's I/O thread do not disturb the count.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::*;
use wsk::{NonPagedBuffer, StreamSocket, WskClient};

#[global_allocator]
static GLOBAL: ntsim::heap::Counting = ntsim::heap::Counting;

fn allocations() -> u64 {
    ntsim::heap::thread_allocations()
}

const TAG: u32 = wsk::pool::tag(b"Test");
const N: usize = 500;

#[test]
fn steady_state_send_and_receive_allocate_no_heap_on_the_calling_thread() {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    assert_eq!(
        ntsim::config::completion_mode(),
        ntsim::config::CompletionMode::Provider
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    {
        let client = WskClient::register(1000).unwrap();
        let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let data = payload(64, 3);
        let out = NonPagedBuffer::from_slice(&data, TAG).unwrap();
        let mut inb = NonPagedBuffer::new(64, TAG).unwrap();
        let mut got = vec![0u8; 64];
        // Warm up: the socket's IRP, the tables' capacity.
        for _ in 0..N {
            assert_eq!(sock.send(&out, 0, 64).unwrap(), 64);
            peer.read_exact(&mut got).unwrap();
            peer.write_all(&data).unwrap();
            assert_eq!(sock.receive(&mut inb, 0, 64, true).unwrap(), 64);
        }
        let mut sends = 0;
        let mut receives = 0;
        for _ in 0..N {
            let a = allocations();
            assert_eq!(sock.send(&out, 0, 64).unwrap(), 64);
            sends += allocations() - a;
            peer.read_exact(&mut got).unwrap();
            assert_eq!(got, data);
            peer.write_all(&data).unwrap();
            let a = allocations();
            // WAITALL: completes inline when all 64 bytes are there, else pends and
            // completes from the I/O thread; either way this thread allocates nothing.
            assert_eq!(sock.receive(&mut inb, 0, 64, true).unwrap(), 64);
            receives += allocations() - a;
            assert_eq!(inb.as_slice(), data.as_slice());
        }
        assert_eq!(sends, 0, "heap allocations in {N} steady-state sends");
        assert_eq!(receives, 0, "heap allocations in {N} steady-state receives");
        sock.close().unwrap();
    }
    scope.assert_clean();
}
