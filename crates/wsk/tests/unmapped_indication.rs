//! Issue 12, defect 9: an indication whose MDL has no system address (locked, not mapped)
//! must be mapped before the handler reads it (`MmGetSystemAddressForMdlSafe` semantics),
//! never read as empty while the handler answers AcceptAll (the data would be lost). ntsim's
//! provider is switched to such MDLs for this whole test binary.

mod common;

use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use wsk::events::{
    ConnectionEvents, DatagramEvents, EventSet, ReceiveAction, ReceivedData, ReceivedDatagrams,
};
use wsk::{DatagramSocket, StreamSocket, WskClient};

struct Copy(Mutex<Sender<Vec<u8>>>);

impl ConnectionEvents for Copy {
    fn on_receive(&self, data: ReceivedData<'_>) -> ReceiveAction {
        let mut v = vec![0u8; data.len()];
        let n = data.copy_to(0, &mut v);
        v.truncate(n);
        let _ = self.0.lock().unwrap().send(v);
        ReceiveAction::AcceptAll
    }
}

impl DatagramEvents for Copy {
    fn on_receive_from(&self, data: ReceivedDatagrams<'_>) -> ReceiveAction {
        data.for_each(|d| {
            let mut v = vec![0u8; d.len()];
            let n = d.copy_to(&mut v);
            v.truncate(n);
            let _ = self.0.lock().unwrap().send(v);
        });
        ReceiveAction::AcceptAll
    }
}

#[test]
fn unmapped_indications_are_mapped_before_the_handler_reads_them() {
    ntsim::wsk::set_indications_unmapped(true);
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = begin(mode);
        {
            let client = WskClient::register(1000).unwrap();
            // Stream: every byte reaches the handler.
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let (tx, rx) = channel();
            let sock = StreamSocket::connect_with_events(
                &client,
                l.local_addr().unwrap(),
                Some(Duration::from_secs(5)),
                Copy(Mutex::new(tx)),
            )
            .unwrap();
            let (mut peer, _) = l.accept().unwrap();
            sock.enable_events(EventSet::RECEIVE).unwrap();
            let data = payload(20_000, 9);
            peer.write_all(&data).unwrap();
            let mut got = Vec::new();
            while got.len() < data.len() {
                let v = rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("indication");
                assert!(!v.is_empty(), "an indication read as empty");
                got.extend_from_slice(&v);
            }
            assert_eq!(got, data);
            sock.close().unwrap();

            // Datagram: the datagram's bytes reach the handler.
            let (tx, rx) = channel();
            let d = DatagramSocket::bind_with_events(
                &client,
                "127.0.0.1:0".parse().unwrap(),
                Copy(Mutex::new(tx)),
            )
            .unwrap();
            d.enable_events(EventSet::RECEIVE_FROM).unwrap();
            let to = d.local_address().unwrap();
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            let dg = payload(900, 4);
            u.send_to(&dg, to).unwrap();
            let v = rx.recv_timeout(Duration::from_secs(10)).expect("datagram");
            assert_eq!(v, dg);
            d.close().unwrap();
        }
        ntsim::wait_quiescent(Duration::from_secs(5));
        scope.assert_clean();
    }
    ntsim::wsk::set_indications_unmapped(false);
}
