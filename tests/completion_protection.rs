//! Issue 12, defect 7, at the driver: the driver's asynchronous completion routines (a
//! pending RECEIVE's, here) must keep the driver loaded until they ran. `wsk` sets them with
//! `IoSetCompletionRoutineEx(device, ...)` once the driver calls
//! `wsk::irp::protect_completions(device)` with one of its device objects; ntsim counts the
//! references that routine holds on the device. Both front-ends: the WDM one (host builds;
//! its Windows build is the Wine lane's, whose `IoSetCompletionRoutineEx` is a stub) and the
//! KMDF one (its WDM device object from `WdfDeviceWdmGetDeviceObject`). Before the driver
//! called `protect_completions` the count stayed 0 while the RECEIVE was pending.
//!
//! Not every WSK IRP carries `IoSetCompletionRoutineEx`: the WDM front-end forwards the
//! user's own SEND/RECEIVE IRP to WSK with plain `IoSetCompletionRoutine`; that IRP's
//! reference on its file object keeps the driver loaded until the routine returned (see
//! below and `crates/wsk/src/socket/forward.rs`), so the count is 0 there.

#[macro_use]
mod frontend;

use std::net::TcpListener;
use std::time::Duration;

use frontend::Frontend;
use ntsim::iomgr;
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

fn pending_receive_holds_the_device(fe: Frontend) {
    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
    ] {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        let driver = fe.load();
        // SAFETY: the loaded driver's object; its device was created by DriverEntry.
        let device = unsafe { (*driver.driver_object()).DeviceObject };
        assert!(!device.is_null());
        let h = iomgr::open(USER_PATH).expect("open");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut out = vec![0u8; 72];
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_OPEN_STREAM,
            OpenStreamRequest::new(&listener.local_addr().unwrap(), None).as_bytes(),
            &mut out,
        );
        assert_eq!(s.status, STATUS_SUCCESS);
        let stream = OpenStreamResponse::read_from_bytes(&out).unwrap();
        let (peer, _) = listener.accept().unwrap(); // sends nothing: the RECEIVE pends
        let receive = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(stream.handle).as_bytes().to_vec(),
            vec![0u8; 64],
        );
        assert!(receive.wait(Duration::from_millis(200)).is_none(), "pends");
        let held = ntsim::completion_ex::device_references(device);
        drop(peer); // the RECEIVE completes (0 bytes, graceful close)
        let st = receive
            .wait(Duration::from_secs(10))
            .expect("RECEIVE completed");
        assert_eq!(st.status, STATUS_SUCCESS, "{fe:?} {mode:?}");
        // KMDF: the RECEIVE runs on wsk's own IRP, whose routine IoSetCompletionRoutineEx
        // protects (1 reference on the device). WDM: the user's RECEIVE IRP itself is
        // forwarded to WskReceive with plain IoSetCompletionRoutine (no IoCx, 0 references):
        // that IRP holds a reference on its file object until I/O completion, which runs
        // after every completion routine returned, and the device (with the driver) cannot
        // go before its file objects are closed (wsk::StreamSocket::receive_forwarded).
        let expected = match fe {
            Frontend::Kmdf => 1,
            Frontend::Wdm => 0,
        };
        assert_eq!(
            held, expected,
            "{fe:?} {mode:?}: references the pending RECEIVE's routine holds on the device"
        );
        // The wrapper drops its reference after our routine returned, which may be just
        // after the request completed to user mode: a bounded wait for it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ntsim::completion_ex::device_references(device) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the reference was dropped once the routine ran"
            );
            std::thread::yield_now();
        }
        drop(h);
        driver.unload().expect("unload");
        scope.assert_clean();
    }
}

both_frontends!(pending_receive_holds_the_device);
