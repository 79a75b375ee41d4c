//! Event callbacks against real Linux peers: WskReceiveEvent (byte-exact, retained lists given
//! back with WskRelease, STATUS_DATA_NOT_ACCEPTED then WskReceive), WskDisconnectEvent (FIN
//! and RST), WskReceiveFromEvent (with the sender), WskSendBacklogEvent, WskAcceptEvent with
//! inherited receive events, static callbacks, and the disable rules; IPv4 and IPv6, both
//! completion paths; every test ends with no leak and no verifier violation.

mod common;

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use windows_sys::Win32::Foundation::*;
use wsk::events::{
    ConnectionEvents, DatagramEvents, Event, EventSet, ListenEvents, ReceiveAction, ReceivedData,
    ReceivedDatagrams, RetainedIndication,
};
use wsk::{Accepted, DatagramSocket, Error, ListenSocket, NonPagedBuffer, StreamSocket, WskClient};
use wsk_sys::*;

const LIMIT: Duration = Duration::from_secs(10);
const TAG: u32 = wsk::pool::tag(b"Test");

enum Ev {
    Data(Vec<u8>, u8),
    Retained(RetainedIndication),
    Disconnect(bool),
    Backlog(usize),
    Datagram(Vec<u8>, Option<SocketAddr>),
    Accepted(Accepted),
    /// The handler refused an indication (STATUS_DATA_NOT_ACCEPTED).
    Refused(usize),
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Copy,
    Retain,
    /// Refuse the first indication, then copy.
    RefuseFirst,
}

struct Handler {
    tx: Mutex<Sender<Ev>>,
    mode: Mode,
    refused: Mutex<bool>,
}

fn handler(mode: Mode) -> (Handler, Receiver<Ev>) {
    let (tx, rx) = channel();
    (
        Handler {
            tx: Mutex::new(tx),
            mode,
            refused: Mutex::new(false),
        },
        rx,
    )
}

impl Handler {
    fn send(&self, e: Ev) {
        let _ = self.tx.lock().unwrap().send(e);
    }
}

impl ConnectionEvents for Handler {
    fn on_receive(&self, data: ReceivedData<'_>) -> ReceiveAction {
        assert_eq!(ntsim::irql::current(), ntsim::irql::DISPATCH_LEVEL);
        if self.mode == Mode::RefuseFirst
            && !std::mem::replace(&mut *self.refused.lock().unwrap(), true)
        {
            self.send(Ev::Refused(data.len()));
            return ReceiveAction::NotAccepted;
        }
        if self.mode == Mode::Retain {
            self.send(Ev::Retained(data.retain().expect("retain")));
            return ReceiveAction::AcceptAll;
        }
        let mut chunks = 0u8;
        data.for_each_chunk(|_| chunks = chunks.saturating_add(1));
        let mut v = vec![0u8; data.len()];
        assert_eq!(data.copy_to(0, &mut v), data.len());
        self.send(Ev::Data(v, chunks));
        ReceiveAction::AcceptAll
    }

    fn on_disconnect(&self, abortive: bool) {
        assert_eq!(ntsim::irql::current(), ntsim::irql::DISPATCH_LEVEL);
        self.send(Ev::Disconnect(abortive));
    }

    fn on_send_backlog(&self, ideal: usize) {
        self.send(Ev::Backlog(ideal));
    }
}

impl DatagramEvents for Handler {
    fn on_receive_from(&self, data: ReceivedDatagrams<'_>) -> ReceiveAction {
        assert_eq!(ntsim::irql::current(), ntsim::irql::DISPATCH_LEVEL);
        if self.mode == Mode::Retain {
            self.send(Ev::Retained(data.retain().expect("retain")));
            return ReceiveAction::AcceptAll;
        }
        data.for_each(|d| {
            let mut v = vec![0u8; d.len()];
            d.copy_to(&mut v);
            self.send(Ev::Datagram(v, d.remote));
        });
        ReceiveAction::AcceptAll
    }
}

fn connected(client: &WskClient, bind: &str, h: Handler) -> (StreamSocket, TcpStream) {
    let l = TcpListener::bind(bind).unwrap();
    let sock =
        StreamSocket::connect_with_events(client, l.local_addr().unwrap(), Some(LIMIT), h).unwrap();
    let (peer, _) = l.accept().unwrap();
    (sock, peer)
}

/// Collects indicated bytes until the disconnect event; returns (bytes, abortive, elements
/// seen in the largest list).
fn collect(rx: &Receiver<Ev>) -> (Vec<u8>, bool, u8) {
    let mut got = Vec::new();
    let mut most = 0;
    loop {
        match rx.recv_timeout(LIMIT).expect("event within the limit") {
            Ev::Data(d, chunks) => {
                got.extend_from_slice(&d);
                most = most.max(chunks);
            }
            Ev::Retained(r) => {
                let mut v = vec![0u8; r.len()];
                assert_eq!(r.copy_to(0, &mut v).unwrap(), r.len());
                got.extend_from_slice(&v);
                drop(r); // WskRelease, from PASSIVE_LEVEL on this thread
            }
            Ev::Disconnect(abortive) => return (got, abortive, most),
            Ev::Backlog(_) => {}
            _ => panic!("unexpected event"),
        }
    }
}

/// The peer writes 300 000 bytes in uneven pieces and then FIN: the receive event sees
/// every byte in order (multi-element lists), then the disconnect event, not abortive.
fn receive_event_then_fin(mode: CompletionMode, bind: &str, how: Mode) {
    let scope = begin(mode);
    let data = payload(300_000, 0xe7e7);
    {
        let client = WskClient::register(1000).unwrap();
        let (h, rx) = handler(how);
        let (sock, mut peer) = connected(&client, bind, h);
        sock.enable_events(EventSet::RECEIVE | EventSet::DISCONNECT)
            .unwrap();
        let d = data.clone();
        let w = std::thread::spawn(move || {
            for part in d.chunks(7_777) {
                peer.write_all(part).unwrap();
            }
            peer.shutdown(Shutdown::Write).unwrap();
            peer
        });
        let (got, abortive, most) = collect(&rx);
        assert!(!abortive, "a FIN is a graceful disconnect");
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes differ");
        if how == Mode::Copy {
            assert!(most >= 1);
        }
        assert_eq!(ntsim::wsk::retained_indications(), 0);
        let _peer = w.join().unwrap();
        sock.close().unwrap();
    }
    scope.assert_clean();
}

#[test]
fn receive_event_v4_pending() {
    receive_event_then_fin(CompletionMode::Pending, "127.0.0.1:0", Mode::Copy);
}
#[test]
fn receive_event_v4_inline() {
    receive_event_then_fin(CompletionMode::Inline, "127.0.0.1:0", Mode::Copy);
}
#[test]
fn receive_event_v6_pending() {
    receive_event_then_fin(CompletionMode::Pending, "[::1]:0", Mode::Copy);
}
#[test]
fn receive_event_v6_inline() {
    receive_event_then_fin(CompletionMode::Inline, "[::1]:0", Mode::Copy);
}
#[test]
fn retained_indications_released_v4() {
    receive_event_then_fin(CompletionMode::Pending, "127.0.0.1:0", Mode::Retain);
}
#[test]
fn retained_indications_released_v6() {
    receive_event_then_fin(CompletionMode::Inline, "[::1]:0", Mode::Retain);
}

/// STATUS_DATA_NOT_ACCEPTED leaves the data with the transport and stops indications until a
/// WskReceive: that receive gets the refused bytes, and later data is indicated again.
fn refused_then_wsk_receive(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (h, rx) = handler(Mode::RefuseFirst);
        let (sock, mut peer) = connected(&client, bind, h);
        sock.enable_events(EventSet::RECEIVE | EventSet::DISCONNECT)
            .unwrap();
        peer.write_all(b"first").unwrap();
        // Wait until the indication was refused, so that the WskReceive below cannot take
        // the bytes first (a pending WskReceive takes precedence over indications).
        match rx.recv_timeout(LIMIT).expect("refused indication") {
            Ev::Refused(n) => assert_eq!(n, 5),
            _ => panic!("unexpected event"),
        }
        // The refused bytes stayed with the transport; the WskReceive gets them.
        let mut buf = NonPagedBuffer::new(64, TAG).unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            let n = sock.receive(&mut buf, 0, 64, false).unwrap();
            got.extend_from_slice(&buf.as_slice()[..n]);
        }
        assert_eq!(got, b"first");
        assert!(rx.try_recv().is_err(), "no indication of refused data");
        peer.write_all(b"second").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let (rest, abortive, _) = collect(&rx);
        assert_eq!(rest, b"second");
        assert!(!abortive);
        drop(sock);
    }
    scope.assert_clean();
}

#[test]
fn refused_then_receive_v4_pending() {
    refused_then_wsk_receive(CompletionMode::Pending, "127.0.0.1:0");
}
#[test]
fn refused_then_receive_v6_inline() {
    refused_then_wsk_receive(CompletionMode::Inline, "[::1]:0");
}

/// The peer resets the connection (SO_LINGER 0, close): the disconnect event is abortive.
fn disconnect_on_rst(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (h, rx) = handler(Mode::Copy);
        let (sock, peer) = connected(&client, bind, h);
        sock.enable_events(EventSet::DISCONNECT).unwrap();
        let s = socket2::Socket::from(peer);
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
        match rx.recv_timeout(LIMIT).expect("disconnect event") {
            Ev::Disconnect(abortive) => assert!(abortive, "an RST is abortive"),
            _ => panic!("unexpected event"),
        }
        drop(sock);
    }
    scope.assert_clean();
}

#[test]
fn disconnect_event_on_rst_v4() {
    disconnect_on_rst(CompletionMode::Pending, "127.0.0.1:0");
}
#[test]
fn disconnect_event_on_rst_v6() {
    disconnect_on_rst(CompletionMode::Inline, "[::1]:0");
}

/// Enabling WSK_EVENT_SEND_BACKLOG calls WskSendBacklogEvent with a non-zero ideal backlog.
#[test]
fn send_backlog_event_called() {
    for (mode, bind) in [
        (CompletionMode::Pending, "127.0.0.1:0"),
        (CompletionMode::Inline, "[::1]:0"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let (h, rx) = handler(Mode::Copy);
            let (sock, _peer) = connected(&client, bind, h);
            sock.enable_events(EventSet::SEND_BACKLOG).unwrap();
            match rx.recv_timeout(LIMIT).expect("send backlog event") {
                Ev::Backlog(n) => assert!(n > 0, "ideal backlog {n}"),
                _ => panic!("unexpected event"),
            }
            drop(sock);
        }
        scope.assert_clean();
    }
}

/// Datagrams from a real UDP peer reach WskReceiveFromEvent byte-exact with the sender's
/// address; retained datagram lists go back with WskRelease.
fn receive_from_event(mode: CompletionMode, bind: &str, how: Mode) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (h, rx) = handler(how);
        let sock = DatagramSocket::bind_with_events(&client, bind.parse().unwrap(), h).unwrap();
        sock.enable_events(EventSet::RECEIVE_FROM).unwrap();
        let to = sock.local_address().unwrap();
        let peer = UdpSocket::bind(bind).unwrap();
        let sizes = [1usize, 512, 1400, 9000];
        for (i, n) in sizes.iter().enumerate() {
            peer.send_to(&payload(*n, i as u64 + 1), to).unwrap();
            let (d, from) = match rx.recv_timeout(LIMIT).expect("datagram event") {
                Ev::Datagram(d, from) => (d, from),
                Ev::Retained(r) => {
                    let mut v = vec![0u8; r.len()];
                    assert_eq!(r.copy_to(0, &mut v).unwrap(), r.len());
                    (v, Some(peer.local_addr().unwrap()))
                }
                _ => panic!("unexpected event"),
            };
            assert_eq!(d, payload(*n, i as u64 + 1));
            assert_eq!(from, Some(peer.local_addr().unwrap()));
        }
        drop(sock);
    }
    scope.assert_clean();
}

#[test]
fn receive_from_event_v4_pending() {
    receive_from_event(CompletionMode::Pending, "127.0.0.1:0", Mode::Copy);
}
#[test]
fn receive_from_event_v6_inline() {
    receive_from_event(CompletionMode::Inline, "[::1]:0", Mode::Copy);
}
#[test]
fn receive_from_event_retained_v4() {
    receive_from_event(CompletionMode::Inline, "127.0.0.1:0", Mode::Retain);
}

/// A listening socket with WskAcceptEvent and WSK_EVENT_RECEIVE enabled: each accepted socket
/// inherits the receive event (SO_WSK_EVENT_CALLBACK page) and the peer's bytes arrive
/// through it.
struct Listener {
    tx: Mutex<Sender<Ev>>,
    conn_tx: Mutex<Sender<Ev>>,
}

impl ListenEvents for Listener {
    type Connection = Handler;
    fn on_accept(&self, _local: SocketAddr, _remote: SocketAddr) -> Option<Handler> {
        assert_eq!(ntsim::irql::current(), ntsim::irql::DISPATCH_LEVEL);
        Some(Handler {
            tx: Mutex::new(self.conn_tx.lock().unwrap().clone()),
            mode: Mode::Copy,
            refused: Mutex::new(false),
        })
    }
    fn on_accepted(&self, accepted: Accepted) {
        let _ = self.tx.lock().unwrap().send(Ev::Accepted(accepted));
    }
}

fn accept_event_inherits(mode: CompletionMode, bind: &str) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).unwrap();
        let (tx, rx) = channel();
        let (ctx, crx) = channel();
        let l = ListenSocket::bind_with_events(
            &client,
            bind.parse().unwrap(),
            Listener {
                tx: Mutex::new(tx),
                conn_tx: Mutex::new(ctx),
            },
        )
        .unwrap();
        l.enable_events(EventSet::RECEIVE | EventSet::DISCONNECT)
            .unwrap();
        l.enable_events(EventSet::ACCEPT).unwrap();
        let addr = l.local_address().unwrap();
        let mut peer = TcpStream::connect(addr).unwrap();
        let a = match rx.recv_timeout(LIMIT).expect("accept event") {
            Ev::Accepted(a) => a,
            _ => panic!("unexpected event"),
        };
        assert_eq!(a.remote, peer.local_addr().unwrap());
        assert_eq!(a.local, addr);
        let data = payload(100_000, 77);
        peer.write_all(&data).unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let (got, abortive, _) = collect(&crx);
        assert!(got == data && !abortive);
        // Connection events enabled on a listener cannot be disabled there (SO_WSK_EVENT_CALLBACK:
        // "they cannot be disabled on the listening socket"); the status is the emulation's.
        assert_eq!(
            l.disable_event(Event::Receive),
            Err(Error::InvalidDeviceState)
        );
        l.disable_event(Event::Accept).unwrap();
        drop(a);
        drop(l);
    }
    scope.assert_clean();
}

#[test]
fn accept_event_inherits_receive_v4_pending() {
    accept_event_inherits(CompletionMode::Pending, "127.0.0.1:0");
}
#[test]
fn accept_event_inherits_receive_v6_inline() {
    accept_event_inherits(CompletionMode::Inline, "[::1]:0");
}

/// WSK_SET_STATIC_EVENT_CALLBACKS before the first socket: the receive event is on without
/// SO_WSK_EVENT_CALLBACK and cannot be disabled; after a socket exists the request is refused.
/// Oracle: "If a WSK application uses the WSK_SET_STATIC_EVENT_CALLBACKS client control
/// operation, it must do so before it creates any sockets" and static callbacks "cannot be
/// disabled or re-enabled later"
/// (https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-set-static-event-callbacks).
/// The docs name no status for either refusal: STATUS_INVALID_DEVICE_STATE is the emulation's.
#[test]
fn static_callbacks() {
    for (mode, bind) in [
        (CompletionMode::Pending, "127.0.0.1:0"),
        (CompletionMode::Inline, "[::1]:0"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            client
                .set_static_event_callbacks(EventSet::RECEIVE | EventSet::RECEIVE_FROM)
                .unwrap();
            let (h, rx) = handler(Mode::Copy);
            let (sock, mut peer) = connected(&client, bind, h);
            peer.write_all(b"static").unwrap();
            match rx
                .recv_timeout(LIMIT)
                .expect("receive event without enabling")
            {
                Ev::Data(d, _) => assert_eq!(d, b"static"),
                _ => panic!("unexpected event"),
            }
            assert_eq!(
                sock.disable_event(Event::Receive),
                Err(Error::InvalidDeviceState)
            );
            assert_eq!(
                client.set_static_event_callbacks(EventSet::DISCONNECT),
                Err(Error::InvalidDeviceState)
            );
            drop(sock);
        }
        scope.assert_clean();
    }
}

/// A client that already created a socket cannot set static callbacks even after closing it.
#[test]
fn static_callbacks_after_a_socket_are_refused() {
    let scope = begin(CompletionMode::Pending);
    {
        let client = WskClient::register(1000).unwrap();
        let s = DatagramSocket::bind(&client, "127.0.0.1:0".parse().unwrap()).unwrap();
        drop(s);
        assert_eq!(
            client.set_static_event_callbacks(EventSet::RECEIVE),
            Err(Error::InvalidDeviceState)
        );
    }
    scope.assert_clean();
}

/// Disabling must name exactly one event with WSK_EVENT_DISABLE ("a WSK application must
/// disable each event callback function independently",
/// https://learn.microsoft.com/en-us/windows-hardware/drivers/network/so-wsk-event-callback);
/// a disable naming two is refused. The docs name no status: STATUS_INVALID_PARAMETER is the
/// emulation's. A single disable (with an IRP) works, and after it no event arrives.
#[test]
fn disable_naming_two_events_is_refused() {
    for (mode, bind) in [
        (CompletionMode::Pending, "127.0.0.1:0"),
        (CompletionMode::Inline, "[::1]:0"),
    ] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            let (h, rx) = handler(Mode::Copy);
            let (sock, mut peer) = connected(&client, bind, h);
            sock.enable_events(EventSet::RECEIVE | EventSet::DISCONNECT)
                .unwrap();
            let raw = sock.as_raw();
            let mut c = WSK_EVENT_CALLBACK_CONTROL {
                NpiId: &NPI_WSK_INTERFACE_ID,
                EventMask: WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_DISABLE,
            };
            // SAFETY: open socket; input on this frame; no IRP.
            let status = unsafe {
                let basic = &*((*raw).Dispatch as *const WSK_PROVIDER_BASIC_DISPATCH);
                basic.WskControlSocket.unwrap()(
                    raw,
                    WskSetOption,
                    SO_WSK_EVENT_CALLBACK,
                    0xffff,
                    std::mem::size_of::<WSK_EVENT_CALLBACK_CONTROL>(),
                    &mut c as *mut _ as *mut std::ffi::c_void,
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(status, STATUS_INVALID_PARAMETER);
            // Still enabled: data arrives.
            peer.write_all(b"x").unwrap();
            match rx.recv_timeout(LIMIT).expect("still enabled") {
                Ev::Data(d, _) => assert_eq!(d, b"x"),
                _ => panic!("unexpected event"),
            }
            sock.disable_event(Event::Receive).unwrap();
            peer.write_all(b"y").unwrap();
            // With the receive event off, the byte waits for a WskReceive.
            let mut buf = NonPagedBuffer::new(8, TAG).unwrap();
            assert_eq!(sock.receive(&mut buf, 0, 8, false).unwrap(), 1);
            assert_eq!(buf.as_slice()[0], b'y');
            assert!(rx.try_recv().is_err());
            drop(sock);
        }
        scope.assert_clean();
    }
}
