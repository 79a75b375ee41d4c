//! Coverage-guided fuzzing of the driver's IOCTL surface: sequences of requests on two
//! handles of the embedded device (the real driver on ntsim), with real local peers (a TCP
//! echo listener and a UDP echo, started once) so that sockets exist and carry bytes.
//!
//! The input decodes into: a completion schedule (pending, inline, or an `ntsim::sched` seed),
//! then up to 48 steps, each a handle (0/1), an operation (a well-formed request of the
//! contract on a socket handle learned from earlier responses, or a raw request: a contract
//! code or any code, arbitrary input bytes, optionally with a learned socket handle spliced in
//! at offset 8, an arbitrary output length), or an event (CancelIoEx on a handle or on one
//! request, CloseHandle, a peer connecting to a listening socket). Every request is
//! overlapped; at the end both handles are closed, every request must complete (bounded),
//! and the verifier must show no violation and no leak: otherwise the target aborts, so
//! libFuzzer keeps the input.
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ntsim::iomgr::{self, LoadedDriver, Overlapped, UserHandle};
use ntsim::verifier;
use wskclient_ioctl::options::{ConnectWithDataRequest, GetOptionRequest, SetOptionRequest};
use wskclient_ioctl::status::STATUS_SUCCESS;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

struct World {
    tcp: SocketAddr,
    udp: SocketAddr,
    base: verifier::Snapshot,
    _driver: LoadedDriver,
}

// SAFETY-free: LoadedDriver holds addresses only; the world is created once and never moved.
unsafe impl Sync for World {}
unsafe impl Send for World {}

static WORLD: OnceLock<World> = OnceLock::new();

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        ntsim::link();
        // A request the driver never completes is reported within 5 s, not 30.
        ntsim::config::set_hang_limit(Duration::from_secs(5));
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        let tcp = TcpListener::bind("127.0.0.1:0").expect("tcp bind");
        let tcp_addr = tcp.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in tcp.incoming().flatten() {
                std::thread::spawn(move || echo(c));
            }
        });
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        let udp_addr = udp.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut b = vec![0u8; 65536];
            while let Ok((n, from)) = udp.recv_from(&mut b) {
                let _ = udp.send_to(&b[..n], from);
            }
        });
        World {
            tcp: tcp_addr,
            udp: udp_addr,
            base: verifier::snapshot(),
            _driver: driver,
        }
    })
}

fn echo(mut c: TcpStream) {
    let mut b = vec![0u8; 16384];
    while let Ok(n) = c.read(&mut b) {
        if n == 0 || c.write_all(&b[..n]).is_err() {
            break;
        }
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Codes whose successful response carries a new socket handle at offset 8.
fn yields_socket(code: u32) -> bool {
    [
        IOCTL_WSKCLIENT_OPEN_STREAM,
        IOCTL_WSKCLIENT_OPEN_DATAGRAM,
        IOCTL_WSKCLIENT_OPEN_LISTEN,
        IOCTL_WSKCLIENT_ACCEPT,
        IOCTL_WSKCLIENT_CONNECT_WITH_DATA,
    ]
    .contains(&code)
}

struct Session {
    handles: [UserHandle; 2],
    sockets: Vec<SocketHandle>,
    listening: Vec<SocketAddr>,
    inflight: Vec<(u32, Overlapped)>,
    peers: Vec<TcpStream>,
}

impl Session {
    /// Learns socket handles and listening addresses from completed requests.
    fn harvest(&mut self) {
        let mut i = 0;
        while i < self.inflight.len() {
            if !self.inflight[i].1.is_complete() {
                i += 1;
                continue;
            }
            let (code, ov) = self.inflight.swap_remove(i);
            let st = ov.status().expect("complete");
            let out = ov.output();
            if st.status == STATUS_SUCCESS && yields_socket(code) && st.information >= 16 {
                let mut h = [0u8; 8];
                h.copy_from_slice(&out[8..16]);
                self.sockets
                    .push(SocketHandle::from_raw(u64::from_le_bytes(h)));
                if code == IOCTL_WSKCLIENT_OPEN_LISTEN && st.information >= 44 {
                    if let Ok(a) = InetAddress::read_from_bytes(&out[16..44]) {
                        if let Ok(a) = a.to_socket_addr() {
                            self.listening.push(a);
                        }
                    }
                }
            }
        }
    }

    fn socket(&self, c: &mut Cursor) -> SocketHandle {
        let b = c.byte();
        if self.sockets.is_empty() || b == 0xff {
            SocketHandle::from_raw(c.u64())
        } else {
            self.sockets[b as usize % self.sockets.len()]
        }
    }
}

fn run(data: &[u8]) {
    let w = world();
    let mut c = Cursor(data);
    match c.byte() % 4 {
        0 => ntsim::config::set_completion_mode(ntsim::config::CompletionMode::Pending),
        1 => ntsim::config::set_completion_mode(ntsim::config::CompletionMode::Inline),
        _ => ntsim::sched::set_seed(Some(c.u64())),
    }
    let open = || iomgr::open(USER_PATH).expect("open");
    let mut s = Session {
        handles: [open(), open()],
        sockets: Vec::new(),
        listening: Vec::new(),
        inflight: Vec::new(),
        peers: Vec::new(),
    };
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    for _ in 0..48 {
        if c.is_empty() {
            break;
        }
        let b0 = c.byte();
        let h = (b0 & 1) as usize;
        let sel = c.byte();
        let (code, input, out): (u32, Vec<u8>, Vec<u8>) = match sel % 22 {
            0 => (
                IOCTL_WSKCLIENT_OPEN_STREAM,
                OpenStreamRequest::new(&w.tcp, None).as_bytes().to_vec(),
                vec![0; 72],
            ),
            1 => (
                IOCTL_WSKCLIENT_OPEN_DATAGRAM,
                OpenDatagramRequest::new(&any).as_bytes().to_vec(),
                vec![0; 48],
            ),
            2 => (
                IOCTL_WSKCLIENT_OPEN_LISTEN,
                OpenListenRequest::new(&any).as_bytes().to_vec(),
                vec![0; 48],
            ),
            3 => (
                IOCTL_WSKCLIENT_ACCEPT,
                AcceptRequest::new(s.socket(&mut c)).as_bytes().to_vec(),
                vec![0; 72],
            ),
            4 => {
                let sock = s.socket(&mut c);
                let n = (c.u16() % 8192) as usize;
                (
                    IOCTL_WSKCLIENT_SEND,
                    SendRequest::new(sock).as_bytes().to_vec(),
                    vec![0x5a; n],
                )
            }
            5 => {
                let sock = s.socket(&mut c);
                let n = (c.u16() % 8192) as usize;
                (
                    IOCTL_WSKCLIENT_RECEIVE,
                    ReceiveRequest::new(sock).as_bytes().to_vec(),
                    vec![0; n],
                )
            }
            6 => (
                IOCTL_WSKCLIENT_CLOSE,
                CloseRequest::new(s.socket(&mut c)).as_bytes().to_vec(),
                Vec::new(),
            ),
            7 => {
                let sock = s.socket(&mut c);
                (
                    IOCTL_WSKCLIENT_DISCONNECT,
                    DisconnectRequest::new(sock, b0 & 2 != 0)
                        .as_bytes()
                        .to_vec(),
                    Vec::new(),
                )
            }
            8 => (
                IOCTL_WSKCLIENT_SET_REMOTE,
                SetRemoteRequest::new(s.socket(&mut c), Some(&w.udp))
                    .as_bytes()
                    .to_vec(),
                Vec::new(),
            ),
            9 => {
                let sock = s.socket(&mut c);
                let n = (c.u16() % 2048) as usize;
                (
                    IOCTL_WSKCLIENT_SEND_TO,
                    SendToRequest::new(sock, Some(&w.udp)).as_bytes().to_vec(),
                    vec![0x33; n],
                )
            }
            10 => {
                let sock = s.socket(&mut c);
                let n = (c.u16() % 4096) as usize;
                (
                    IOCTL_WSKCLIENT_RECEIVE_FROM,
                    ReceiveFromRequest::new(sock).as_bytes().to_vec(),
                    vec![0; n],
                )
            }
            11 => (
                IOCTL_WSKCLIENT_QUERY_STATS,
                QueryStatsRequest::new().as_bytes().to_vec(),
                vec![0; 160],
            ),
            12 => {
                let sock = s.socket(&mut c);
                let (o, v) = (c.u32() % 16, c.u32());
                (
                    IOCTL_WSKCLIENT_SET_OPTION,
                    SetOptionRequest::new(sock, o, v).as_bytes().to_vec(),
                    Vec::new(),
                )
            }
            13 => {
                let sock = s.socket(&mut c);
                let o = c.u32() % 16;
                (
                    IOCTL_WSKCLIENT_GET_OPTION,
                    GetOptionRequest::new(sock, o).as_bytes().to_vec(),
                    vec![0; (c.byte() % 64) as usize],
                )
            }
            14 => {
                // A peer connects to one of the driver's listening sockets.
                let i = c.byte() as usize;
                if !s.listening.is_empty() {
                    let to = s.listening[i % s.listening.len()];
                    if let Ok(p) = TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
                        s.peers.push(p);
                    }
                }
                continue;
            }
            15 => {
                s.handles[h].cancel_io();
                continue;
            }
            16 => {
                let i = c.byte() as usize;
                if !s.inflight.is_empty() {
                    s.inflight[i % s.inflight.len()].1.cancel();
                }
                continue;
            }
            17 => {
                s.handles[h].close();
                continue;
            }
            18 => {
                let n = (c.u16() % 4096) as u32;
                let mut input = ConnectWithDataRequest::new(&w.tcp, None, n)
                    .as_bytes()
                    .to_vec();
                input.extend(std::iter::repeat_n(0x77u8, n as usize));
                (IOCTL_WSKCLIENT_CONNECT_WITH_DATA, input, vec![0; 72])
            }
            _ => {
                // Raw: a contract code or any code, arbitrary input (a learned socket handle
                // spliced at offset 8 when asked), arbitrary output length.
                let k = c.byte();
                let code = if k & 1 == 0 {
                    Operation::ALL[(k >> 1) as usize % Operation::ALL.len()].code()
                } else {
                    c.u32()
                };
                let len = (c.u16() % 1024) as usize;
                let mut input = c.bytes(len);
                if k & 2 != 0 && input.len() >= 16 {
                    let sock = s.socket(&mut c);
                    input[8..16].copy_from_slice(&sock.into_raw().to_le_bytes());
                }
                let out_len = (c.u16() % 4096) as usize;
                (code, input, vec![0; out_len])
            }
        };
        let ov = s.handles[h].device_io_control_overlapped(code, input, out);
        if b0 & 4 != 0 {
            ov.cancel();
        }
        s.inflight.push((code, ov));
        s.harvest();
    }
    // CloseHandle on both: the driver's cleanup must complete everything still pending.
    for h in &s.handles {
        h.close();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (code, ov) in &s.inflight {
        let left = deadline.saturating_duration_since(Instant::now());
        if ov.wait(left).is_none() {
            panic!("request {code:#010x} not completed 10 s after CloseHandle");
        }
    }
    for h in &s.handles {
        assert!(h.wait_released(), "file object not released");
    }
    drop(s);
    ntsim::sched::set_seed(None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let leaks = loop {
        let now = verifier::snapshot();
        let b = &w.base;
        let leaks = (
            now.live_irps as i64 - b.live_irps as i64,
            now.live_mdls as i64 - b.live_mdls as i64,
            now.live_pool_bytes as i64 - b.live_pool_bytes as i64,
            now.live_sockets as i64 - b.live_sockets as i64,
        );
        if leaks == (0, 0, 0, 0) || Instant::now() >= deadline {
            break leaks;
        }
        ntsim::wait_quiescent(Duration::from_millis(50));
    };
    let v = verifier::take_violations();
    assert!(v.is_empty(), "verifier violations: {v:#?}");
    assert_eq!(
        leaks,
        (0, 0, 0, 0),
        "leaked (IRPs, MDLs, pool bytes, sockets)"
    );
}

fuzz_target!(|data: &[u8]| run(data));
