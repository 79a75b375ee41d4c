//! Issue 12, defect 7: asynchronous completion routines may run after their caller returned,
//! so they must keep the driver loaded (`IoSetCompletionRoutineEx` references the driver's
//! device object until the routine ran). ntsim models the routine (resolved with
//! `MmGetSystemRoutineAddress`), its failure, and its absence. One test: the switch is
//! process-global.

mod common;

use std::net::TcpListener;
use std::sync::mpsc::channel;
use std::time::Duration;

use common::*;
use windows_sys::Wdk::Foundation::DEVICE_OBJECT;
use wsk::{Error, NonPagedBuffer, StreamSocket, WskClient};

const TAG: u32 = wsk::pool::tag(b"Test");

#[test]
fn async_completions_hold_the_device_until_they_ran() {
    // A stand-in for the driver's device object (only its address is used).
    let device: *mut DEVICE_OBJECT = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        ntsim::completion_ex::set_available(true);
        assert!(wsk::irp::protect_completions(device));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        {
            let client = WskClient::register(1000).unwrap();
            let sock = StreamSocket::connect(
                &client,
                l.local_addr().unwrap(),
                Some(Duration::from_secs(5)),
            )
            .unwrap();
            let (_peer, _) = l.accept().unwrap();
            // A receive that stays pending (the peer sends nothing): its routine holds the
            // device (failed before the fix: 0 references, nothing kept the driver loaded).
            let (tx, rx) = channel();
            let buf = NonPagedBuffer::new(64, TAG).unwrap();
            sock.receive_async(buf, 0, 64, false, move |r, _b| {
                let _ = tx.send(r);
            })
            .map_err(|(e, _)| e)
            .unwrap();
            assert_eq!(ntsim::completion_ex::device_references(device), 1);
            // IoSetCompletionRoutineEx failing: the operation fails before it starts, with
            // the buffer back and nothing leaked.
            ntsim::completion_ex::fail_next(1);
            let buf = NonPagedBuffer::new(64, TAG).unwrap();
            let e = sock.send_async(buf, 0, 64, |_, _| {}).err().map(|(e, _)| e);
            assert_eq!(e, Some(Error::InsufficientResources));
            sock.close().unwrap();
            let r = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("cancelled receive");
            assert_eq!(r, Err(Error::Cancelled));
            ntsim::wait_quiescent(Duration::from_secs(5));
            assert_eq!(ntsim::completion_ex::device_references(device), 0);

            // A socket dropped above PASSIVE_LEVEL closes without waiting: the close's
            // routine holds the device until the close completed.
            let sock = StreamSocket::connect(
                &client,
                l.local_addr().unwrap(),
                Some(Duration::from_secs(5)),
            )
            .unwrap();
            let (_peer2, _) = l.accept().unwrap();
            ntsim::irql::with_raised(ntsim::irql::DISPATCH_LEVEL, || drop(sock));
            ntsim::wait_quiescent(Duration::from_secs(5));
            assert_eq!(ntsim::completion_ex::device_references(device), 0);
        }
        wsk::irp::unprotect_completions();
        // Unavailable (Windows before Vista, or hidden): the fallback still works.
        ntsim::completion_ex::set_available(false);
        assert!(!wsk::irp::protect_completions(device));
        {
            let client = WskClient::register(1000).unwrap();
            let sock = StreamSocket::connect(
                &client,
                l.local_addr().unwrap(),
                Some(Duration::from_secs(5)),
            )
            .unwrap();
            let (_peer, _) = l.accept().unwrap();
            let (tx, rx) = channel();
            let buf = NonPagedBuffer::new(64, TAG).unwrap();
            sock.receive_async(buf, 0, 64, false, move |r, _b| {
                let _ = tx.send(r);
            })
            .map_err(|(e, _)| e)
            .unwrap();
            assert_eq!(ntsim::completion_ex::device_references(device), 0);
            sock.close().unwrap();
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(10)).expect("cancelled"),
                Err(Error::Cancelled)
            );
        }
        wsk::irp::unprotect_completions();
        ntsim::completion_ex::set_available(true);
        ntsim::wait_quiescent(Duration::from_secs(5));
        scope.assert_clean();
    }
    // SAFETY: from Box::into_raw above; nothing references it any more.
    drop(unsafe { Box::from_raw(device) });
}
