//! A request can reach its requester before the `IoCompleteRequest` that completed it has
//! returned: `IoSetCompletionRoutineEx` frees its `IoCx` context only after the driver's
//! routine returned, so counters read as soon as a requester saw its completion can still
//! show it (`wskctl echo --json` read 8 bytes of `IoCx` per idle connection that way, once in
//! CI). ntsim counts the `IofCompleteRequest` calls under way so that a reader can wait for a
//! quiet moment (`ntsim::irp::wait_for_completions`); this test holds a completion routine
//! open and checks what that count and that wait say before and after it returns.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc::channel;
use std::time::Duration;

use common::*;

use windows_sys::Wdk::Foundation::DEVICE_OBJECT;
use wsk::{NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");
const WAIT: Duration = Duration::from_secs(10);

/// Live `IoCx` blocks in the emulated pool.
fn contexts_live() -> u64 {
    ntsim::verifier::snapshot()
        .pool_by_tag
        .get("IoCx")
        .map_or(0, |(_, blocks)| *blocks)
}

#[test]
fn completions_in_progress_cover_the_routine_and_the_context_free() {
    // A stand-in for the driver's device object (only its address is used).
    let device: *mut DEVICE_OBJECT = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
    let scope = begin(CompletionMode::Pending);
    ntsim::completion_ex::set_available(true);
    assert!(wsk::irp::protect_completions(device));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    {
        let client = WskClient::register(1000).unwrap();
        let sock = StreamSocket::connect(&client, l.local_addr().unwrap(), Some(WAIT)).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        assert!(ntsim::irp::wait_for_completions(WAIT), "quiet before");
        let (ran_tx, ran_rx) = channel();
        let (go_tx, go_rx) = channel::<()>();
        let buf = NonPagedBuffer::new(64, TAG).unwrap();
        sock.receive_async(buf, 0, 64, false, move |r, _b| {
            let _ = ran_tx.send(r);
            // Held open until the test has looked (bounded).
            let _ = go_rx.recv_timeout(WAIT);
        })
        .map_err(|(e, _)| e)
        .unwrap();
        assert_eq!(contexts_live(), 1, "the pending RECEIVE's IoCx context");
        peer.write_all(b"hello").unwrap();
        let r = ran_rx.recv_timeout(WAIT).expect("the routine ran");
        assert_eq!(r, Ok(5));
        // The requester has its result; the routine has not returned.
        assert!(ntsim::irp::completions_in_progress() >= 1);
        assert_eq!(contexts_live(), 1, "freed only after the routine returned");
        assert!(
            !ntsim::irp::wait_for_completions(Duration::from_millis(20)),
            "a completion is under way"
        );
        go_tx.send(()).unwrap();
        assert!(ntsim::irp::wait_for_completions(WAIT), "quiet after");
        assert_eq!(ntsim::irp::completions_in_progress(), 0);
        assert_eq!(contexts_live(), 0, "freed once every completion returned");
        sock.close().unwrap();
    }
    wsk::irp::unprotect_completions();
    ntsim::wait_quiescent(WAIT);
    scope.assert_clean();
    // SAFETY: from Box::into_raw above; nothing references it any more.
    drop(unsafe { Box::from_raw(device) });
}
