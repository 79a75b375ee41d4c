//! Regression tests for the WDM front-end's IRP handling (issue 12): the pending protocol of
//! the dispatch routine when a cancel arrives before it runs (defect 4).

use std::time::Duration;

use ntsim::iomgr::{self, LoadedDriver, UserHandle};
use ntsim::verifier::Rule;
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::IntoBytes;

struct Loaded {
    scope: ntsim::Scope,
    driver: Option<LoadedDriver>,
}

fn load(mode: ntsim::config::CompletionMode) -> Loaded {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
    Loaded {
        scope,
        driver: Some(driver),
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        if let Some(d) = self.driver.take() {
            let _ = d.unload();
        }
    }
}

impl Loaded {
    fn open(&self) -> UserHandle {
        iomgr::open(USER_PATH).expect("open \\\\.\\WskClient")
    }

    fn finish(mut self) {
        let d = self.driver.take().expect("loaded");
        d.unload().expect("unload");
        self.scope.assert_clean();
    }
}

/// Defect 4. A `CancelIoEx` that reaches the IRP before the dispatch routine runs leaves
/// `Irp->Cancel` set with no cancel routine; the dispatch routine has already called
/// IoMarkIrpPending when it notices, completes the IRP with STATUS_CANCELLED, and must then
/// return STATUS_PENDING ("If a driver calls IoMarkIrpPending, it must return STATUS_PENDING",
/// IoMarkIrpPending page; Driver Verifier bugcheck 0xC9 otherwise). The old code returned
/// STATUS_CANCELLED: the verifier recorded `PendingStatusMismatch` for every request here.
#[test]
fn cancel_before_dispatch_completes_cancelled_and_returns_pending() {
    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
    ] {
        let l = load(mode);
        let h = l.open();
        // A request that names no socket (QUERY_STATS) and one that names one (SEND on an
        // unknown handle): both go through the same cancel check.
        let requests: [(u32, Vec<u8>, Vec<u8>); 2] = [
            (
                IOCTL_WSKCLIENT_QUERY_STATS,
                QueryStatsRequest::new().as_bytes().to_vec(),
                vec![0u8; 160],
            ),
            (
                IOCTL_WSKCLIENT_SEND,
                SendRequest::new(SocketHandle::new(3, 1).expect("handle"))
                    .as_bytes()
                    .to_vec(),
                vec![7u8; 64],
            ),
        ];
        for (code, input, output) in requests {
            for _ in 0..50 {
                let ov = h.device_io_control_cancelled_before_dispatch(
                    code,
                    input.clone(),
                    output.clone(),
                );
                let st = ov.wait(Duration::from_secs(5)).expect("completed");
                assert_eq!((st.status, st.information), (STATUS_CANCELLED, 0));
            }
            let v = ntsim::verifier::violations();
            assert!(
                !v.iter().any(|v| v.rule == Rule::PendingStatusMismatch),
                "IoMarkIrpPending without STATUS_PENDING: {v:#?}"
            );
        }
        // The handle still serves requests.
        let mut out = vec![0u8; 160];
        let st = h.device_io_control(
            IOCTL_WSKCLIENT_QUERY_STATS,
            QueryStatsRequest::new().as_bytes(),
            &mut out,
        );
        assert_eq!(st.status, STATUS_SUCCESS);
        drop(h);
        l.finish();
    }
}
