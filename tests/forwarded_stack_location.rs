//! Issue 13: a forwarded SEND / RECEIVE (src/wdm.rs -> `wsk::StreamSocket::send_forwarded`)
//! keeps its `WSK_BUF` in the driver's own stack location's `Parameters` while WSK holds the
//! IRP, and must put back what the I/O manager put there (`Parameters.DeviceIoControl`:
//! OutputBufferLength, InputBufferLength, IoControlCode, Type3InputBuffer) before completion
//! continues past the driver's level. Wine 8.0's I/O manager reads that location when the
//! request completes: with the `WSK_BUF` still in it, the first forwarded SEND of the Wine
//! lane killed winedevice.exe ("wine client error: partial write 94208"). ntsim's I/O
//! completion compares the location with what it was at dispatch
//! (`Rule::StackLocationClobbered`).
//!
//! Before the fix (forward.rs left the `WSK_BUF` and the owner count in the location), every
//! forwarded request here broke the rule, in each completion mode: inline (WSK's completion
//! routine runs inside WskSend / WskReceive, the forwarding call completes the IRP) and
//! pended (the completion routine lets completion continue itself).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

mod frontend;
use frontend::open_stream;
use ntsim::config::CompletionMode;
use ntsim::iomgr;
use ntsim::verifier::{self, Rule};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::IntoBytes;

const LIMIT: Duration = Duration::from_secs(10);

fn clobbered() -> Vec<String> {
    verifier::violations()
        .into_iter()
        .filter(|v| matches!(v.rule, Rule::StackLocationClobbered))
        .map(|v| v.detail)
        .collect()
}

#[test]
fn forwarded_send_and_receive_leave_the_stack_location_as_the_io_manager_filled_it() {
    for mode in [
        CompletionMode::Inline,
        CompletionMode::Pending,
        CompletionMode::Provider,
    ] {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("load");
        let h = iomgr::open(USER_PATH).expect("open");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = open_stream(&h, l.local_addr().unwrap());
        let (mut peer, _) = l.accept().unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();

        // SEND: completes as soon as the bytes are handed to the transport.
        let mut data = b"forwarded send, restored location".to_vec();
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(stream).as_bytes(),
            &mut data,
        );
        assert_eq!((s.status, s.information), (STATUS_SUCCESS, data.len()));
        let mut got = vec![0u8; data.len()];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, data, "{mode:?}: SEND bytes at the peer");

        // RECEIVE issued before the peer writes: WSK holds it (pended), then completes it.
        let ov = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(stream).as_bytes().to_vec(),
            vec![0u8; 64],
        );
        assert!(!ov.is_complete(), "{mode:?}: nothing sent yet");
        peer.write_all(b"pended receive").unwrap();
        let st = ov.wait(LIMIT).expect("RECEIVE completed");
        assert_eq!(
            (st.status, st.information),
            (STATUS_SUCCESS, 14),
            "{mode:?}"
        );
        assert_eq!(&ov.output()[..14], b"pended receive", "{mode:?}");

        // RECEIVE with the bytes already there (completes inside WskReceive in Inline mode).
        peer.write_all(b"ready").unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            let mut out = vec![0u8; 64];
            let s = h.device_io_control(
                IOCTL_WSKCLIENT_RECEIVE,
                ReceiveRequest::new(stream).as_bytes(),
                &mut out,
            );
            assert_eq!(s.status, STATUS_SUCCESS, "{mode:?}");
            assert!(s.information > 0, "{mode:?}: the peer has not closed");
            got.extend_from_slice(&out[..s.information]);
        }
        assert_eq!(got, b"ready", "{mode:?}");

        let bad = clobbered();
        assert!(
            bad.is_empty(),
            "{mode:?}: {} forwarded request(s) reached I/O completion with the driver's stack location changed:\n{}",
            bad.len(),
            bad.join("\n")
        );
        drop(h);
        drop(peer);
        driver.unload().expect("unload");
        assert_eq!(ntsim::wsk::live_registrations(), 0);
        scope.assert_clean();
    }
}
