//! The server-side and receive IOCTLs (OPEN_LISTEN, ACCEPT, RECEIVE, DISCONNECT,
//! RECEIVE_FROM) through both front-ends (WDM, and KMDF on the KMDF model) on the emulated
//! kernel, against real std::net peers, on both completion paths. Requests go down as user
//! mode sends them: `DeviceIoControl` on `\\.\WskClient`, the I/O manager building each IRP
//! for its METHOD (RECEIVE's data buffer reaches the driver as the IRP's MDL, SEND's too).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use ntsim::config::CompletionMode;
use ntsim::iomgr::{self, LoadedDriver, Overlapped, UserHandle};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

#[macro_use]
mod frontend;
use frontend::Frontend;

const WAIT: Duration = Duration::from_secs(20);

/// A request in flight; `wait` returns its final status, Information and output buffer.
struct Pending(Overlapped);

impl Pending {
    fn wait(self) -> (i32, usize, Vec<u8>) {
        let st = self
            .0
            .wait(WAIT)
            .unwrap_or_else(|| panic!("request not completed within {WAIT:?}"));
        (st.status, st.information, self.0.output())
    }

    fn poll(&self, d: Duration) -> bool {
        self.0.wait(d).is_some()
    }
}

/// An overlapped DeviceIoControl: `out` is the output buffer (for RECEIVE and SEND, the data
/// buffer the I/O manager describes with the IRP's MDL).
fn start(h: &UserHandle, code: u32, input: &[u8], out: Vec<u8>) -> Pending {
    Pending(h.device_io_control_overlapped(code, input.to_vec(), out))
}

fn call(h: &UserHandle, code: u32, input: &[u8], out_len: usize) -> (i32, usize, Vec<u8>) {
    start(h, code, input, vec![0u8; out_len]).wait()
}

struct Env {
    scope: ntsim::Scope,
    driver: Option<LoadedDriver>,
    h: Option<Arc<UserHandle>>,
}

fn env(fe: Frontend, mode: CompletionMode) -> Env {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = fe.load();
    let h = Arc::new(iomgr::open(USER_PATH).expect("open"));
    Env {
        scope,
        driver: Some(driver),
        h: Some(h),
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // A failed test still unloads, so the next test can load the driver again.
        drop(self.h.take());
        if let Some(d) = self.driver.take() {
            let _ = d.unload();
        }
    }
}

impl Env {
    fn h(&self) -> &UserHandle {
        self.h.as_deref().expect("open")
    }

    /// CloseHandle: IRP_MJ_CLEANUP (the driver completes the handle's pending requests),
    /// then IRP_MJ_CLOSE.
    fn close_handle(&mut self) {
        let h = self.h.take().expect("open");
        match Arc::try_unwrap(h) {
            Ok(h) => drop(h),
            Err(_) => panic!("another user of the handle is left"),
        }
    }

    fn finish(mut self) {
        if self.h.is_some() {
            self.close_handle();
        }
        self.driver
            .take()
            .expect("loaded")
            .unload()
            .expect("unload");
        assert_eq!(ntsim::wsk::live_registrations(), 0);
        assert_eq!(ntsim::wdf::live_objects(), 0, "framework objects");
        self.scope.assert_clean();
    }

    fn stats(&self) -> StatsResponse {
        let (s, _, out) = call(
            self.h(),
            IOCTL_WSKCLIENT_QUERY_STATS,
            QueryStatsRequest::new().as_bytes(),
            160,
        );
        assert_eq!(s, STATUS_SUCCESS);
        StatsResponse::read_from_bytes(&out).unwrap()
    }

    fn listen(&self, at: &str) -> OpenListenResponse {
        let (s, i, out) = call(
            self.h(),
            IOCTL_WSKCLIENT_OPEN_LISTEN,
            OpenListenRequest::new(&at.parse().unwrap()).as_bytes(),
            48,
        );
        assert_eq!((s, i), (STATUS_SUCCESS, 48));
        OpenListenResponse::read_from_bytes(&out).unwrap()
    }

    fn accept(&self, listener: SocketHandle) -> Pending {
        start(
            self.h(),
            IOCTL_WSKCLIENT_ACCEPT,
            AcceptRequest::new(listener).as_bytes(),
            vec![0u8; 72],
        )
    }

    fn close(&self, h: SocketHandle) {
        let (s, _, _) = call(
            self.h(),
            IOCTL_WSKCLIENT_CLOSE,
            CloseRequest::new(h).as_bytes(),
            0,
        );
        assert_eq!(s, STATUS_SUCCESS);
    }
}

fn accepted(p: Pending) -> AcceptResponse {
    let (s, i, out) = p.wait();
    assert_eq!((s, i), (STATUS_SUCCESS, 72), "ACCEPT");
    AcceptResponse::read_from_bytes(&out).unwrap()
}

/// Echoes one accepted connection with RECEIVE (METHOD_OUT_DIRECT: into the user buffer
/// through the IRP's MDL) + SEND (METHOD_IN_DIRECT: from it) until the peer's FIN (RECEIVE
/// completing with 0 bytes), then closes it.
fn echo_connection(h: &UserHandle, socket: SocketHandle) -> usize {
    let mut total = 0;
    loop {
        let (s, n, data) = start(
            h,
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(socket).as_bytes(),
            vec![0u8; 16 << 10],
        )
        .wait();
        assert_eq!(s, STATUS_SUCCESS, "RECEIVE");
        if n == 0 {
            break;
        }
        let (s, sent, _) = start(
            h,
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(socket).as_bytes(),
            data[..n].to_vec(),
        )
        .wait();
        assert_eq!((s, sent), (STATUS_SUCCESS, n), "SEND");
        total += n;
    }
    let (s, _, _) = call(
        h,
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(socket).as_bytes(),
        0,
    );
    assert_eq!(s, STATUS_SUCCESS);
    total
}

fn pattern(client: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + client * 7) % 251) as u8)
        .collect()
}

/// The driver-side echo server serves 100 concurrent real clients with byte-exact echoes:
/// one ACCEPT at a time on the listening handle, one thread per accepted connection.
fn echo_server_serves_100_concurrent_clients(fe: Frontend) {
    const CLIENTS: usize = 100;
    const BYTES: usize = 20_000;
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let e = env(fe, mode);
        let l = e.listen("127.0.0.1:0");
        let at = l.local_address.to_socket_addr().unwrap();
        let h = e.h.clone().expect("open");
        let server = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for _ in 0..CLIENTS {
                let (s, i, out) = call(
                    &h,
                    IOCTL_WSKCLIENT_ACCEPT,
                    AcceptRequest::new(l.handle).as_bytes(),
                    72,
                );
                assert_eq!((s, i), (STATUS_SUCCESS, 72));
                let a = AcceptResponse::read_from_bytes(&out).unwrap();
                let h = h.clone();
                workers.push(std::thread::spawn(move || echo_connection(&h, a.handle)));
            }
            workers
                .into_iter()
                .map(|w| w.join().unwrap())
                .sum::<usize>()
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(at).unwrap();
                    s.set_read_timeout(Some(WAIT)).unwrap();
                    let data = pattern(c, BYTES);
                    s.write_all(&data).unwrap();
                    let mut back = vec![0u8; BYTES];
                    s.read_exact(&mut back).unwrap();
                    assert!(back == data, "client {c}: echo differs");
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut rest = Vec::new();
                    s.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty(), "client {c}: nothing after the echo");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(server.join().unwrap(), CLIENTS * BYTES);
        e.close(l.handle);
        assert_eq!(e.stats().live_sockets, 0);
        e.finish();
    }
}

/// ACCEPT reports both addresses of the connection (the GetAcceptExSockaddrs counterpart),
/// over IPv4 and IPv6, and DISCONNECT (graceful) gives the peer end-of-stream.
fn accept_addresses_and_graceful_disconnect(fe: Frontend) {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        for at in ["127.0.0.1:0", "[::1]:0"] {
            let e = env(fe, mode);
            let l = e.listen(at);
            let la = l.local_address.to_socket_addr().unwrap();
            assert_ne!(la.port(), 0, "ephemeral port resolved");
            let p = e.accept(l.handle);
            let mut peer = TcpStream::connect(la).unwrap();
            peer.set_read_timeout(Some(WAIT)).unwrap();
            let a = accepted(p);
            assert_eq!(a.local_address.to_socket_addr(), Ok(la));
            assert_eq!(
                a.remote_address.to_socket_addr(),
                Ok(peer.local_addr().unwrap())
            );
            let (s, _, _) = call(
                e.h(),
                IOCTL_WSKCLIENT_DISCONNECT,
                DisconnectRequest::new(a.handle, false).as_bytes(),
                0,
            );
            assert_eq!(s, STATUS_SUCCESS);
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
            e.close(a.handle);
            e.close(l.handle);
            e.finish();
        }
    }
}

/// Closing the listening handle completes its pending ACCEPT with STATUS_CANCELLED:
/// WskCloseSocket "cancels and completes all pending IRPs from prior calls to the socket's
/// functions" (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>),
/// and so does cleanup of the file object for a pending RECEIVE.
fn closing_the_handle_cancels_pending_accept_and_receive(fe: Frontend) {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let mut e = env(fe, mode);
        let l = e.listen("127.0.0.1:0");
        let p = e.accept(l.handle);
        assert!(
            !p.poll(Duration::from_millis(100)),
            "no client: ACCEPT pends"
        );
        e.close(l.handle);
        let (s, i, _) = p.wait();
        assert_eq!((s, i), (STATUS_CANCELLED, 0));

        let l = e.listen("127.0.0.1:0");
        let p = e.accept(l.handle);
        let _peer = TcpStream::connect(l.local_address.to_socket_addr().unwrap()).unwrap();
        let a = accepted(p);
        let r = start(
            e.h(),
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(a.handle).as_bytes(),
            vec![0u8; 100],
        );
        assert!(
            !r.poll(Duration::from_millis(100)),
            "no data: RECEIVE pends"
        );
        assert_eq!(e.stats().pending_requests, 1);
        e.close_handle();
        let (s, i, _) = r.wait();
        assert_eq!((s, i), (STATUS_CANCELLED, 0));
        e.finish();
    }
}

/// RECEIVE_FROM returns the datagram and its sender; bad requests get their statuses.
fn receive_from_returns_data_and_sender(fe: Frontend) {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let e = env(fe, mode);
        let (s, _, out) = call(
            e.h(),
            IOCTL_WSKCLIENT_OPEN_DATAGRAM,
            OpenDatagramRequest::new(&"127.0.0.1:0".parse().unwrap()).as_bytes(),
            48,
        );
        assert_eq!(s, STATUS_SUCCESS);
        let d = OpenDatagramResponse::read_from_bytes(&out).unwrap();
        let to: SocketAddr = d.local_address.to_socket_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = start(
            e.h(),
            IOCTL_WSKCLIENT_RECEIVE_FROM,
            ReceiveFromRequest::new(d.handle).as_bytes(),
            vec![0u8; 40 + 2000],
        );
        let data = pattern(3, 1500);
        peer.send_to(&data, to).unwrap();
        let (s, i, out) = p.wait();
        assert_eq!((s, i), (STATUS_SUCCESS, 40 + 1500));
        let r = parse_response::<ReceiveFromResponse>(&out[..40]).unwrap();
        assert_eq!(r.data_length, 1500);
        assert_eq!(
            r.remote_address.to_socket_addr(),
            Ok(peer.local_addr().unwrap())
        );
        assert_eq!(&out[40..i], &data[..]);
        // Malformed: no room for data; RECEIVE_FROM on a listening socket; RECEIVE without MDL.
        let (s, _, _) = call(
            e.h(),
            IOCTL_WSKCLIENT_RECEIVE_FROM,
            ReceiveFromRequest::new(d.handle).as_bytes(),
            40,
        );
        assert_eq!(s, STATUS_BUFFER_TOO_SMALL);
        let l = e.listen("127.0.0.1:0");
        let (s, _, _) = call(
            e.h(),
            IOCTL_WSKCLIENT_RECEIVE_FROM,
            ReceiveFromRequest::new(l.handle).as_bytes(),
            100,
        );
        assert_eq!(s, STATUS_NOT_SUPPORTED);
        let (s, _, _) = call(
            e.h(),
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(d.handle).as_bytes(),
            0,
        );
        assert_eq!(s, STATUS_INVALID_PARAMETER, "no data buffer");
        let (s, _, _) = call(
            e.h(),
            IOCTL_WSKCLIENT_ACCEPT,
            AcceptRequest::new(d.handle).as_bytes(),
            72,
        );
        assert_eq!(s, STATUS_NOT_SUPPORTED);
        let (s, _, _) = call(
            e.h(),
            IOCTL_WSKCLIENT_ACCEPT,
            AcceptRequest::new(l.handle).as_bytes(),
            71,
        );
        assert_eq!(s, STATUS_BUFFER_TOO_SMALL);
        let mut bad = DisconnectRequest::new(l.handle, false);
        bad.mode = 7;
        let (s, _, _) = call(e.h(), IOCTL_WSKCLIENT_DISCONNECT, bad.as_bytes(), 0);
        assert_eq!(s, STATUS_INVALID_PARAMETER);
        e.finish();
    }
}

both_frontends!(
    echo_server_serves_100_concurrent_clients,
    accept_addresses_and_graceful_disconnect,
    closing_the_handle_cancels_pending_accept_and_receive,
    receive_from_returns_data_and_sender,
);
