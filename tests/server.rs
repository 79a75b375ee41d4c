//! The server-side and receive IOCTLs (OPEN_LISTEN, ACCEPT, RECEIVE, DISCONNECT,
//! RECEIVE_FROM) through the device core on the emulated kernel, against real std::net
//! peers, on both completion paths. The requests are handed to `DeviceCore::device_control`
//! as a front-end hands them: the METHOD_OUT_DIRECT data buffer as an MDL (here a nonpaged
//! buffer's), METHOD_BUFFERED output as a buffer that lives until completion.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::ptr::NonNull;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ntsim::config::CompletionMode;
use wsk::{MdlBuffer, NonPagedBuffer};
use wskclient::core::{Completion, DataMdl, DeviceCore, FileContext};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

const WAIT: Duration = Duration::from_secs(20);
const TAG: u32 = u32::from_le_bytes(*b"Test");

struct Done(mpsc::Sender<(i32, usize)>);

impl Completion for Done {
    fn complete(self, status: i32, information: usize) {
        let _ = self.0.send((status, information));
    }
}

/// A request started on the core; `wait` returns its final status and Information.
struct Pending {
    rx: mpsc::Receiver<(i32, usize)>,
    out: Option<Vec<u8>>,
}

impl Pending {
    fn wait(mut self) -> (i32, usize, Vec<u8>) {
        match self.rx.recv_timeout(WAIT) {
            Ok((s, i)) => (s, i, self.out.take().unwrap_or_default()),
            Err(_) => {
                // The core may still write the buffer: never free it under a pending request.
                std::mem::forget(self.out.take());
                panic!("request not completed within {WAIT:?}");
            }
        }
    }

    fn poll(&self, d: Duration) -> bool {
        self.rx.recv_timeout(d).is_ok()
    }
}

fn start(
    core: &DeviceCore,
    file: &FileContext,
    code: u32,
    input: &[u8],
    out_len: usize,
    data: Option<DataMdl>,
) -> Pending {
    let (tx, rx) = mpsc::channel();
    let mut out = vec![0u8; out_len];
    // SAFETY: `out` is moved into the Pending (a Vec's heap buffer does not move), which keeps
    // it until the completion arrived, or leaks it.
    unsafe { core.device_control(file, code, input, &mut out, data, Done(tx)) };
    Pending { rx, out: Some(out) }
}

fn call(
    core: &DeviceCore,
    file: &FileContext,
    code: u32,
    input: &[u8],
    out_len: usize,
) -> (i32, usize, Vec<u8>) {
    start(core, file, code, input, out_len, None).wait()
}

fn mdl_of(buf: &NonPagedBuffer, len: usize) -> DataMdl {
    DataMdl {
        mdl: NonNull::new(buf.mdl()).expect("MDL"),
        len,
    }
}

struct Env {
    scope: ntsim::Scope,
    core: Arc<DeviceCore>,
    file: Arc<FileContext>,
}

fn env(mode: CompletionMode) -> Env {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let core = Arc::new(DeviceCore::new().expect("WSK registration"));
    let file = Arc::new(core.open_file().expect("file"));
    Env { scope, core, file }
}

impl Env {
    fn finish(self) {
        let Env { scope, core, file } = self;
        let file = Arc::try_unwrap(file)
            .ok()
            .expect("no other user of the file");
        core.close_file(file);
        drop(
            Arc::try_unwrap(core)
                .ok()
                .expect("no other user of the core"),
        );
        assert_eq!(ntsim::wsk::live_registrations(), 0);
        scope.assert_clean();
    }

    fn listen(&self, at: &str) -> OpenListenResponse {
        let (s, i, out) = call(
            &self.core,
            &self.file,
            IOCTL_WSKCLIENT_OPEN_LISTEN,
            OpenListenRequest::new(&at.parse().unwrap()).as_bytes(),
            48,
        );
        assert_eq!((s, i), (STATUS_SUCCESS, 48));
        OpenListenResponse::read_from_bytes(&out).unwrap()
    }

    fn accept(&self, listener: SocketHandle) -> Pending {
        start(
            &self.core,
            &self.file,
            IOCTL_WSKCLIENT_ACCEPT,
            AcceptRequest::new(listener).as_bytes(),
            72,
            None,
        )
    }

    fn close(&self, h: SocketHandle) {
        let (s, _, _) = call(
            &self.core,
            &self.file,
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

/// Echoes one accepted connection with RECEIVE (into an MDL, no copy) + SEND (from the same
/// MDL) until the peer's FIN (RECEIVE completing with 0 bytes), then closes it.
fn echo_connection(core: &DeviceCore, file: &FileContext, h: SocketHandle) -> usize {
    let buf = NonPagedBuffer::new(16 << 10, TAG).unwrap();
    let mut total = 0;
    loop {
        let (s, n, _) = start(
            core,
            file,
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(h).as_bytes(),
            0,
            Some(mdl_of(&buf, buf.len())),
        )
        .wait();
        assert_eq!(s, STATUS_SUCCESS, "RECEIVE");
        if n == 0 {
            break;
        }
        let (s, sent, _) = start(
            core,
            file,
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(h).as_bytes(),
            0,
            Some(mdl_of(&buf, n)),
        )
        .wait();
        assert_eq!((s, sent), (STATUS_SUCCESS, n), "SEND");
        total += n;
    }
    let (s, _, _) = call(
        core,
        file,
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(h).as_bytes(),
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
#[test]
fn echo_server_serves_100_concurrent_clients() {
    const CLIENTS: usize = 100;
    const BYTES: usize = 20_000;
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let e = env(mode);
        let l = e.listen("127.0.0.1:0");
        let at = l.local_address.to_socket_addr().unwrap();
        let (core, file) = (e.core.clone(), e.file.clone());
        let server = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for _ in 0..CLIENTS {
                let (s, i, out) = start(
                    &core,
                    &file,
                    IOCTL_WSKCLIENT_ACCEPT,
                    AcceptRequest::new(l.handle).as_bytes(),
                    72,
                    None,
                )
                .wait();
                assert_eq!((s, i), (STATUS_SUCCESS, 72));
                let a = AcceptResponse::read_from_bytes(&out).unwrap();
                let (core, file) = (core.clone(), file.clone());
                workers.push(std::thread::spawn(move || {
                    echo_connection(&core, &file, a.handle)
                }));
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
        assert_eq!(e.core.stats().snapshot().live_sockets, 0);
        e.finish();
    }
}

/// ACCEPT reports both addresses of the connection (the GetAcceptExSockaddrs counterpart),
/// over IPv4 and IPv6, and DISCONNECT (graceful) gives the peer end-of-stream.
#[test]
fn accept_addresses_and_graceful_disconnect() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        for at in ["127.0.0.1:0", "[::1]:0"] {
            let e = env(mode);
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
                &e.core,
                &e.file,
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
#[test]
fn closing_the_handle_cancels_pending_accept_and_receive() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let e = env(mode);
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
        let buf = NonPagedBuffer::new(100, TAG).unwrap();
        let r = start(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(a.handle).as_bytes(),
            0,
            Some(mdl_of(&buf, 100)),
        );
        assert!(
            !r.poll(Duration::from_millis(100)),
            "no data: RECEIVE pends"
        );
        assert_eq!(e.core.stats().snapshot().pending_requests, 1);
        e.core.cleanup_file(&e.file);
        let (s, i, _) = r.wait();
        assert_eq!((s, i), (STATUS_CANCELLED, 0));
        drop(buf);
        e.finish();
    }
}

/// RECEIVE_FROM returns the datagram and its sender; bad requests get their statuses.
#[test]
fn receive_from_returns_data_and_sender() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let e = env(mode);
        let (s, _, out) = call(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_OPEN_DATAGRAM,
            OpenDatagramRequest::new(&"127.0.0.1:0".parse().unwrap()).as_bytes(),
            48,
        );
        assert_eq!(s, STATUS_SUCCESS);
        let d = OpenDatagramResponse::read_from_bytes(&out).unwrap();
        let to: SocketAddr = d.local_address.to_socket_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = start(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_RECEIVE_FROM,
            ReceiveFromRequest::new(d.handle).as_bytes(),
            40 + 2000,
            None,
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
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_RECEIVE_FROM,
            ReceiveFromRequest::new(d.handle).as_bytes(),
            40,
        );
        assert_eq!(s, STATUS_BUFFER_TOO_SMALL);
        let l = e.listen("127.0.0.1:0");
        let (s, _, _) = call(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_RECEIVE_FROM,
            ReceiveFromRequest::new(l.handle).as_bytes(),
            100,
        );
        assert_eq!(s, STATUS_NOT_SUPPORTED);
        let (s, _, _) = call(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(d.handle).as_bytes(),
            0,
        );
        assert_eq!(s, STATUS_INVALID_PARAMETER, "no data buffer");
        let (s, _, _) = call(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_ACCEPT,
            AcceptRequest::new(d.handle).as_bytes(),
            72,
        );
        assert_eq!(s, STATUS_NOT_SUPPORTED);
        let (s, _, _) = call(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_ACCEPT,
            AcceptRequest::new(l.handle).as_bytes(),
            71,
        );
        assert_eq!(s, STATUS_BUFFER_TOO_SMALL);
        let mut bad = DisconnectRequest::new(l.handle, false);
        bad.mode = 7;
        let (s, _, _) = call(
            &e.core,
            &e.file,
            IOCTL_WSKCLIENT_DISCONNECT,
            bad.as_bytes(),
            0,
        );
        assert_eq!(s, STATUS_INVALID_PARAMETER);
        e.finish();
    }
}
