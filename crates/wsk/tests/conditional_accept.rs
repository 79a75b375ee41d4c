//! Conditional accept (SO_CONDITIONAL_ACCEPT before bind): WskInspectEvent with the real
//! peer's address, accept, reject (the peer sees a reset: the emulation accepts at the TCP
//! level first, then resets, which Windows does not), pend + WskInspectComplete, and
//! WskAbortEvent when the peer leaves a pended request; IPv4 and IPv6, both completion paths.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use wsk::events::{ConnectionEvents, EventSet, InspectAction, InspectId, ListenEvents};
use wsk::{Accepted, ListenSocket, NonPagedBuffer, WskClient};

const LIMIT: Duration = Duration::from_secs(10);
const TAG: u32 = wsk::pool::tag(b"Test");

enum Ev {
    Inspect(SocketAddr, InspectId),
    Accepted(Accepted),
    Abort(InspectId),
}

struct Conn;
impl ConnectionEvents for Conn {}

struct L {
    tx: Mutex<Sender<Ev>>,
    verdict: InspectAction,
}

impl ListenEvents for L {
    type Connection = Conn;
    fn on_accept(&self, _l: SocketAddr, _r: SocketAddr) -> Option<Conn> {
        Some(Conn)
    }
    fn on_accepted(&self, a: Accepted) {
        let _ = self.tx.lock().unwrap().send(Ev::Accepted(a));
    }
    fn on_inspect(&self, _local: SocketAddr, remote: SocketAddr, id: InspectId) -> InspectAction {
        assert_eq!(ntsim::irql::current(), ntsim::irql::DISPATCH_LEVEL);
        let _ = self.tx.lock().unwrap().send(Ev::Inspect(remote, id));
        self.verdict
    }
    fn on_abort(&self, id: InspectId) {
        let _ = self.tx.lock().unwrap().send(Ev::Abort(id));
    }
}

fn listener(
    client: &WskClient,
    bind: &str,
    verdict: InspectAction,
) -> (ListenSocket, Receiver<Ev>) {
    let (tx, rx) = channel();
    let l = ListenSocket::bind_conditional(
        client,
        bind.parse().unwrap(),
        L {
            tx: Mutex::new(tx),
            verdict,
        },
    )
    .unwrap();
    l.enable_events(EventSet::ACCEPT).unwrap();
    (l, rx)
}

fn inspected(rx: &Receiver<Ev>, peer: &TcpStream) -> InspectId {
    match rx.recv_timeout(LIMIT).expect("inspect event") {
        Ev::Inspect(remote, id) => {
            assert_eq!(remote, peer.local_addr().unwrap());
            id
        }
        _ => panic!("expected the inspect event first"),
    }
}

/// The accepted socket carries real bytes (checked with a WskReceive).
fn check_accepted(rx: &Receiver<Ev>, peer: &mut TcpStream) {
    let a = match rx.recv_timeout(LIMIT).expect("accept event") {
        Ev::Accepted(a) => a,
        _ => panic!("expected the accept event"),
    };
    assert_eq!(a.remote, peer.local_addr().unwrap());
    peer.write_all(b"hello").unwrap();
    let mut buf = NonPagedBuffer::new(5, TAG).unwrap();
    assert_eq!(a.socket.receive(&mut buf, 0, 5, true).unwrap(), 5);
    assert_eq!(buf.as_slice(), b"hello");
}

fn accept(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (l, rx) = listener(&client, bind, InspectAction::Accept);
        let mut peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
        inspected(&rx, &peer);
        check_accepted(&rx, &mut peer);
        drop(l);
    }
    scope.assert_clean();
}

#[test]
fn inspect_accept_v4_pending() {
    accept(CompletionMode::Pending, "127.0.0.1:0");
}
#[test]
fn inspect_accept_v6_inline() {
    accept(CompletionMode::Inline, "[::1]:0");
}

fn reject(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (l, rx) = listener(&client, bind, InspectAction::Reject);
        let mut peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
        inspected(&rx, &peer);
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let mut b = [0u8; 1];
        let e = peer
            .read(&mut b)
            .expect_err("the rejected connection is reset");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(
            rx.try_recv().is_err(),
            "no accept event for a rejected request"
        );
        drop(l);
    }
    scope.assert_clean();
}

#[test]
fn inspect_reject_v4_inline() {
    reject(CompletionMode::Inline, "127.0.0.1:0");
}
#[test]
fn inspect_reject_v6_pending() {
    reject(CompletionMode::Pending, "[::1]:0");
}

fn pend_then_complete(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (l, rx) = listener(&client, bind, InspectAction::Pend);
        let mut peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
        let id = inspected(&rx, &peer);
        assert!(rx.try_recv().is_err(), "pended: not accepted yet");
        l.inspect_complete(id, true).unwrap();
        check_accepted(&rx, &mut peer);
        // A second completion of the same id is refused (emulation's status).
        assert_eq!(
            l.inspect_complete(id, true),
            Err(wsk::Error::InvalidParameter)
        );
        drop(l);
    }
    scope.assert_clean();
}

#[test]
fn inspect_pend_complete_v4_pending() {
    pend_then_complete(CompletionMode::Pending, "127.0.0.1:0");
}
#[test]
fn inspect_pend_complete_v6_inline() {
    pend_then_complete(CompletionMode::Inline, "[::1]:0");
}

fn abort(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (l, rx) = listener(&client, bind, InspectAction::Pend);
        let peer = TcpStream::connect(l.local_address().unwrap()).unwrap();
        let id = inspected(&rx, &peer);
        drop(peer); // the peer goes away before the decision
        match rx.recv_timeout(LIMIT).expect("abort event") {
            Ev::Abort(a) => assert_eq!(a, id),
            _ => panic!("expected the abort event"),
        }
        assert!(l.inspect_complete(id, true).is_err(), "aborted request");
        drop(l);
    }
    scope.assert_clean();
}

#[test]
fn abort_event_v4_inline() {
    abort(CompletionMode::Inline, "127.0.0.1:0");
}
#[test]
fn abort_event_v6_pending() {
    abort(CompletionMode::Pending, "[::1]:0");
}
