//! Defects of the KMDF front-end (issue 11), each reproduced on the KMDF model (`ntsim::wdf`)
//! through the I/O manager, as user mode reaches the driver.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use ntsim::iomgr::{self, LoadedDriver, UserHandle};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

mod frontend;

struct Env {
    scope: ntsim::Scope,
    driver: Option<LoadedDriver>,
}

fn load(mode: ntsim::config::CompletionMode) -> Env {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = frontend::Frontend::Kmdf.load();
    Env {
        scope,
        driver: Some(driver),
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(d) = self.driver.take() {
            let _ = d.unload();
        }
    }
}

impl Env {
    fn open(&self) -> UserHandle {
        iomgr::open(USER_PATH).expect("open")
    }

    fn finish(mut self) {
        self.driver.take().unwrap().unload().expect("unload");
        assert_eq!(ntsim::wdf::live_objects(), 0);
        self.scope.assert_clean();
    }
}

/// Defect 3: the default queue was built with `..WDF_IO_QUEUE_CONFIG::default()`, leaving
/// `Settings.Parallel.NumberOfPresentedRequests` 0, so the framework presented no request
/// to `EvtIoDeviceControl` and every IOCTL hung. Bounded wait: a QUERY_STATS completes.
#[test]
fn default_queue_presents_requests() {
    let env = load(ntsim::config::CompletionMode::Inline);
    let h = env.open();
    let ov = h.device_io_control_overlapped(
        IOCTL_WSKCLIENT_QUERY_STATS,
        QueryStatsRequest::new().as_bytes().to_vec(),
        vec![0u8; 160],
    );
    let done = ov.wait(Duration::from_secs(5));
    if done.is_none() {
        let counts = ntsim::wdf::default_queue_counts();
        ov.cancel();
        assert!(
            ov.wait(Duration::from_secs(5)).is_some(),
            "cancelled in the queue"
        );
        drop(h);
        panic!(
            "QUERY_STATS not presented within 5 s: default queue (presented, waiting) = {counts:?}"
        );
    }
    assert_eq!(done.unwrap().status, STATUS_SUCCESS);
    drop(h);
    env.finish();
}

/// Defect 7: without `WdfExecutionLevelPassive`, `EvtIoDeviceControl` may run at
/// DISPATCH_LEVEL (the model presents it there), where the core's KEVENT waits are
/// forbidden. OPEN_STREAM waits for the connect: it must run at PASSIVE_LEVEL.
#[test]
fn evt_io_device_control_runs_at_passive_level() {
    let env = load(ntsim::config::CompletionMode::Pending);
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let h = env.open();
    let mut out = [0u8; 72];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&peer.local_addr().unwrap(), None).as_bytes(),
        &mut out,
    );
    let violations = ntsim::verifier::violations();
    assert!(
        violations.is_empty(),
        "OPEN_STREAM broke kernel rules: {violations:#?}"
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    drop(h);
    env.finish();
}

/// Defect 6: a RECEIVE is cancelled (the framework claims it: `WdfRequestUnmarkCancelable`
/// returns STATUS_CANCELLED from then on) while its WSK receive completes; the cancel
/// callback is due but has not run yet, as FxIoQueue defers it. The completion must leave
/// the request to `EvtRequestCancel`, which must then find it and complete it: the request
/// completes, once, and nothing leaks.
#[test]
fn cancel_racing_completion_completes_the_request() {
    let env = load(ntsim::config::CompletionMode::Pending);
    ntsim::config::set_hang_limit(Duration::from_secs(3));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let h = env.open();
    let mut out = [0u8; 72];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&listener.local_addr().unwrap(), None).as_bytes(),
        &mut out,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    let socket = OpenStreamResponse::read_from_bytes(&out).unwrap().handle;
    let (mut peer, _) = listener.accept().unwrap();
    let ov = h.device_io_control_overlapped(
        IOCTL_WSKCLIENT_RECEIVE,
        ReceiveRequest::new(socket).as_bytes().to_vec(),
        vec![0u8; 100],
    );
    assert!(
        ov.wait(Duration::from_millis(200)).is_none(),
        "RECEIVE pends"
    );
    ntsim::wdf::hold_cancel_callbacks(true);
    let before = ntsim::wdf::unmark_cancelled_count();
    ov.cancel();
    peer.write_all(b"x").unwrap();
    assert!(
        ntsim::wdf::wait_unmark_cancelled(before + 1, Duration::from_secs(10)),
        "the WSK completion reached WdfRequestUnmarkCancelable"
    );
    assert_eq!(
        ntsim::wdf::release_cancel_callbacks(),
        1,
        "EvtRequestCancel was due"
    );
    let st = ov.wait(Duration::from_secs(5));
    assert!(
        st.is_some(),
        "the cancelled, completed RECEIVE never completed (hang)"
    );
    let st = st.unwrap();
    assert!(
        st.status == STATUS_SUCCESS || st.status == STATUS_CANCELLED,
        "{st:?}"
    );
    drop(h);
    let mut rest = Vec::new();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = peer.read_to_end(&mut rest);
    env.finish();
}
