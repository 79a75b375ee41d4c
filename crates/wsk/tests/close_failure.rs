//! Issue 12, defect 2: a close that fails before `WskCloseSocket` was called (here: called
//! at DISPATCH_LEVEL, `STATUS_INVALID_DEVICE_STATE`) must leave the socket open and
//! closable: a later close, or the drop, closes it, the event context is released only after
//! `WskCloseSocket` completed, and `WskDeregister` is not blocked by a leaked socket.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;
use wsk::events::{ConnectionEvents, EventSet, ReceiveAction, ReceivedData};
use wsk::{DatagramSocket, Error, StreamSocket, WskClient};

struct Quiet;

impl ConnectionEvents for Quiet {
    fn on_receive(&self, _data: ReceivedData<'_>) -> ReceiveAction {
        ReceiveAction::AcceptAll
    }
}

fn close_at_dispatch(close: impl FnOnce() -> wsk::Result<()>) {
    let r = ntsim::irql::with_raised(ntsim::irql::DISPATCH_LEVEL, close);
    assert_eq!(r, Err(Error::InvalidDeviceState));
}

/// Failed close, then a close at PASSIVE_LEVEL: the second close must really close
/// (failed before the fix: CLOSING was already set, so it returned Ok without
/// `WskCloseSocket`, and `WskDeregister` reported 1 open socket).
#[test]
fn close_after_a_failed_close_really_closes() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        ntsim::config::set_hang_limit(Duration::from_secs(2));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        {
            let client = WskClient::register(1000).unwrap();
            let sock = StreamSocket::connect(&client, addr, Some(Duration::from_secs(5))).unwrap();
            let (_peer, _) = l.accept().unwrap();
            close_at_dispatch(|| sock.close());
            // Still open: the socket works.
            assert_eq!(sock.remote_address().unwrap(), addr);
            sock.close().unwrap();
            assert_eq!(sock.remote_address(), Err(Error::Closed));
            let d = DatagramSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
            close_at_dispatch(|| d.close());
            d.local_address().unwrap();
        }
        scope.assert_clean();
    }
}

/// Failed close of a socket with an event context, then drop at PASSIVE_LEVEL: the drop
/// must close the socket before it releases the context (failed before the fix: the drop
/// skipped the close and freed the context the provider still held).
#[test]
fn drop_after_a_failed_close_closes_before_releasing_the_context() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        ntsim::config::set_hang_limit(Duration::from_secs(2));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        {
            let client = WskClient::register(1000).unwrap();
            let sock = StreamSocket::connect_with_events(
                &client,
                addr,
                Some(Duration::from_secs(5)),
                Quiet,
            )
            .unwrap();
            let (_peer, _) = l.accept().unwrap();
            sock.enable_events(EventSet::RECEIVE).unwrap();
            close_at_dispatch(|| sock.close());
            drop(sock);
        }
        ntsim::wait_quiescent(Duration::from_secs(5));
        scope.assert_clean();
    }
}
