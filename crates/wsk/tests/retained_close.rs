//! Issue 12, defect 3: `WskCloseSocket` does not release retained indication lists; the
//! client must give every one back with `WskRelease` first (WskRelease page). Closing a
//! socket while the driver still holds a `RetainedIndication` must release the list before
//! the close (ntsim reports a list reclaimed at close as `IndicationNotReleased`); the
//! retained value then reads as closed, and dropping it later calls nothing.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use wsk::events::{ConnectionEvents, EventSet, ReceiveAction, ReceivedData, RetainedIndication};
use wsk::{Error, StreamSocket, WskClient};

struct Keep(Mutex<Sender<RetainedIndication>>);

impl ConnectionEvents for Keep {
    fn on_receive(&self, data: ReceivedData<'_>) -> ReceiveAction {
        let _ = self.0.lock().unwrap().send(data.retain().expect("retain"));
        ReceiveAction::AcceptAll
    }
}

fn close_with_retained(mode: CompletionMode, drop_socket_only: bool) {
    let scope = begin(mode);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    {
        let client = WskClient::register(1000).unwrap();
        let (tx, rx) = channel();
        let sock = StreamSocket::connect_with_events(
            &client,
            l.local_addr().unwrap(),
            Some(Duration::from_secs(5)),
            Keep(Mutex::new(tx)),
        )
        .unwrap();
        let (mut peer, _) = l.accept().unwrap();
        sock.enable_events(EventSet::RECEIVE).unwrap();
        let data = payload(3000, 3);
        peer.write_all(&data).unwrap();
        let mut held = Vec::new();
        let mut n = 0;
        while n < data.len() {
            let r = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("indication");
            let mut v = vec![0u8; r.len()];
            assert_eq!(r.copy_to(0, &mut v).unwrap(), r.len());
            assert_eq!(v, data[n..n + r.len()]);
            n += r.len();
            held.push(r);
        }
        // Close (or drop) with the lists still held.
        if drop_socket_only {
            drop(sock);
        } else {
            sock.close().unwrap();
        }
        let mut buf = [0u8; 8];
        for r in &held {
            assert_eq!(r.copy_to(0, &mut buf), Err(Error::Closed));
        }
        drop(held);
    }
    ntsim::wait_quiescent(Duration::from_secs(5));
    scope.assert_clean();
}

#[test]
fn close_releases_retained_lists_first() {
    close_with_retained(CompletionMode::Pending, false);
    close_with_retained(CompletionMode::Inline, false);
}

#[test]
fn drop_releases_retained_lists_first() {
    close_with_retained(CompletionMode::Pending, true);
    close_with_retained(CompletionMode::Inline, true);
}
