//! TRANSMIT_FILE and TRANSMIT_PACKETS through the driver on the emulated kernel: real host
//! files behind emulated file handles, real TCP/UDP peers that hash or size what they read,
//! both completion paths, IPv4 and IPv6, every bad input's status, cancellation, and 0 leaks.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ntsim::config::CompletionMode;
use ntsim::file::{self as nfile, Access};
use ntsim::iomgr::{self, IoStatus, LoadedDriver, UserHandle};

#[macro_use]
mod frontend;
use frontend::Frontend;
use sha2::{Digest, Sha256};
use wskclient_ioctl::status::*;
use wskclient_ioctl::transmit::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

struct Loaded {
    scope: ntsim::Scope,
    driver: Option<LoadedDriver>,
}

fn load(fe: Frontend, mode: CompletionMode) -> Loaded {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = fe.load();
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
        iomgr::open(USER_PATH).expect("open device")
    }
    fn finish(mut self) {
        let d = self.driver.take().expect("loaded");
        d.unload().expect("unload");
        assert_eq!(
            nfile::live(),
            nfile::Live::default(),
            "file objects/handles"
        );
        self.scope.assert_clean();
    }
}

fn open_stream(h: &UserHandle, to: SocketAddr) -> SocketHandle {
    let mut out = vec![0u8; 72];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&to, None).as_bytes(),
        &mut out,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    OpenStreamResponse::read_from_bytes(&out).unwrap().handle
}

fn close(h: &UserHandle, s: SocketHandle) -> i32 {
    let mut out = [];
    h.device_io_control(
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(s).as_bytes(),
        &mut out,
    )
    .status
}

fn stats(h: &UserHandle) -> StatsResponse {
    let mut out = vec![0u8; 160];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_QUERY_STATS,
        QueryStatsRequest::new().as_bytes(),
        &mut out,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    StatsResponse::read_from_bytes(&out).unwrap()
}

fn transmit(h: &UserHandle, code: u32, input: &[u8]) -> (IoStatus, TransmitResponse) {
    let mut out = vec![0u8; TransmitResponse::SIZE];
    let s = h.device_io_control(code, input, &mut out);
    (s, TransmitResponse::read_from_bytes(&out).unwrap())
}

fn file_input(r: TransmitFileRequest, head: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut r = r;
    r.head_length = head.len() as u32;
    r.tail_length = tail.len() as u32;
    let mut v = r.as_bytes().to_vec();
    v.extend_from_slice(head);
    v.extend_from_slice(tail);
    v
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .rotate_left(seed as u32 % 31) as u8
                ^ seed
        })
        .collect()
}

/// A host file with `len` pattern bytes; returns (path guard, contents).
fn host_file(len: usize, seed: u8) -> (tempfile_path::TempPath, Vec<u8>) {
    let data = pattern(len, seed);
    let p = tempfile_path::TempPath::new(&data);
    (p, data)
}

mod tempfile_path {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    pub struct TempPath(pub PathBuf);
    impl TempPath {
        pub fn new(data: &[u8]) -> TempPath {
            let n = N.fetch_add(1, Ordering::SeqCst);
            let p = std::env::temp_dir()
                .join(format!("wskclient-transmit-{}-{n}.bin", std::process::id()));
            std::fs::write(&p, data).unwrap();
            TempPath(p)
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A TCP peer that reads to end-of-stream, hashing; reports (bytes, sha256) and signals when
/// it saw end-of-stream. `gate`: wait for a message before reading.
struct Peer {
    addr: SocketAddr,
    eof: mpsc::Receiver<(u64, [u8; 32])>,
    gate: mpsc::Sender<()>,
}

fn peer(v6: bool) -> Peer {
    let l = TcpListener::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let (gtx, grx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let _ = grx.recv_timeout(Duration::from_secs(60));
        let mut h = Sha256::new();
        let mut n = 0u64;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    h.update(&buf[..k]);
                    n += k as u64;
                }
            }
        }
        let _ = tx.send((n, h.finalize().into()));
    });
    Peer {
        addr,
        eof: rx,
        gate: gtx,
    }
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// One TRANSMIT_FILE case: head + [offset, offset+length) + tail, checked at the peer.
#[allow(clippy::too_many_arguments)]
fn file_case(
    h: &UserHandle,
    v6: bool,
    file_len: usize,
    offset: u64,
    length: u64,
    block: u32,
    disconnect: bool,
) {
    let (path, data) = host_file(file_len, (file_len % 251) as u8 ^ block as u8);
    let fh = nfile::open_file(&path.0, Access::Read).unwrap();
    let p = peer(v6);
    p.gate.send(()).unwrap();
    let s = open_stream(h, p.addr);
    let head = pattern(100, 7);
    let tail = pattern(33, 9);
    let mut r = TransmitFileRequest::new(s, fh);
    r.offset = offset;
    r.length = length;
    r.block_size = block;
    r.flags = if disconnect { TRANSMIT_DISCONNECT } else { 0 };
    let (st, resp) = transmit(
        h,
        IOCTL_WSKCLIENT_TRANSMIT_FILE,
        &file_input(r, &head, &tail),
    );
    assert_eq!(st.status, STATUS_SUCCESS, "file {file_len} block {block}");
    let end = if length == 0 {
        file_len as u64
    } else {
        offset + length
    };
    let range = &data[offset as usize..end as usize];
    let total = (head.len() + range.len() + tail.len()) as u64;
    assert_eq!(resp.bytes_sent, total);
    if disconnect {
        // The peer sees end-of-stream while our socket is still open.
        let (n, d) = p.eof.recv_timeout(Duration::from_secs(60)).expect("FIN");
        assert_eq!((n, d), (total, sha(&[&head, range, &tail])));
        assert_eq!(close(h, s), STATUS_SUCCESS);
    } else {
        assert_eq!(close(h, s), STATUS_SUCCESS);
        let (n, d) = p.eof.recv_timeout(Duration::from_secs(60)).expect("peer");
        assert_eq!((n, d), (total, sha(&[&head, range, &tail])));
    }
    assert_eq!(nfile::close_handle(fh), STATUS_SUCCESS);
}

fn transmit_file_is_byte_exact_across_block_and_file_sizes(fe: Frontend) {
    let l = load(fe, CompletionMode::Pending);
    let h = l.open();
    for file_len in [0usize, 1, 3000] {
        file_case(&h, false, file_len, 0, 0, 1, false);
    }
    for block in [1024u32, 64 << 10, 1 << 20] {
        for file_len in [0usize, 1, 1 << 20] {
            file_case(&h, false, file_len, 0, 0, block, false);
        }
    }
    // A sub-range with an explicit length, the default block, disconnect.
    file_case(&h, false, 1 << 20, 12345, 500_000, 0, true);
    drop(h);
    l.finish();
}

fn transmit_file_64_mib_ipv6_inline_with_disconnect(fe: Frontend) {
    let l = load(fe, CompletionMode::Inline);
    let h = l.open();
    file_case(&h, true, 64 << 20, 0, 0, 1 << 20, true);
    file_case(&h, true, 4096, 10, 0, 1024, true);
    drop(h);
    l.finish();
}

fn block_size_one_on_64_kib_is_bounded_in_memory(fe: Frontend) {
    let l = load(fe, CompletionMode::Pending);
    let h = l.open();
    let (path, data) = host_file(64 << 10, 3);
    let fh = nfile::open_file(&path.0, Access::Read).unwrap();
    let p = peer(false);
    p.gate.send(()).unwrap();
    let s = open_stream(&h, p.addr);
    let base = ntsim::verifier::snapshot().live_pool_bytes;
    let mut r = TransmitFileRequest::new(s, fh);
    r.block_size = 1;
    let input = file_input(r, &[], &[]);
    let (max, st) = std::thread::scope(|sc| {
        let t = sc.spawn(|| transmit(&h, IOCTL_WSKCLIENT_TRANSMIT_FILE, &input));
        let mut max = 0u64;
        while !t.is_finished() {
            max = max.max(
                ntsim::verifier::snapshot()
                    .live_pool_bytes
                    .saturating_sub(base),
            );
            std::thread::yield_now();
        }
        (max, t.join().unwrap())
    });
    assert_eq!(st.0.status, STATUS_SUCCESS);
    assert_eq!(st.1.bytes_sent, 64 << 10);
    assert_eq!(st.1.packets, 64 << 10, "one send per byte");
    assert!(
        max < 16 << 10,
        "pool outstanding during the transfer: {max} bytes"
    );
    assert_eq!(close(&h, s), STATUS_SUCCESS);
    let (n, d) = p.eof.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((n, d), (data.len() as u64, sha(&[&data])));
    nfile::close_handle(fh);
    drop(h);
    l.finish();
}

fn bad_inputs_get_their_status_and_send_nothing(fe: Frontend) {
    let l = load(fe, CompletionMode::Inline);
    let h = l.open();
    let (path, _data) = host_file(1000, 1);
    let readable = nfile::open_file(&path.0, Access::Read).unwrap();
    let write_only = nfile::open_file(&path.0, Access::Write).unwrap();
    let event = nfile::create_event();
    let p = peer(false);
    p.gate.send(()).unwrap();
    let s = open_stream(&h, p.addr);
    let tf = |fh: u64, f: &dyn Fn(&mut TransmitFileRequest)| {
        let mut r = TransmitFileRequest::new(s, fh);
        f(&mut r);
        transmit(
            &h,
            IOCTL_WSKCLIENT_TRANSMIT_FILE,
            &file_input(r, b"head", b"tail"),
        )
        .0
        .status
    };
    assert_eq!(tf(readable, &|r| r.offset = 1001), STATUS_END_OF_FILE);
    assert_eq!(tf(readable, &|r| r.length = 1001), STATUS_END_OF_FILE);
    assert_eq!(
        tf(readable, &|r| {
            r.offset = 1;
            r.length = u64::MAX
        }),
        STATUS_END_OF_FILE
    );
    assert_eq!(tf(write_only, &|_| {}), STATUS_ACCESS_DENIED);
    assert_eq!(tf(event, &|_| {}), STATUS_OBJECT_TYPE_MISMATCH);
    assert_eq!(tf(0xdead0, &|_| {}), STATUS_INVALID_HANDLE);
    assert_eq!(
        tf(readable, &|r| r.flags = TRANSMIT_REUSE_SOCKET),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        tf(readable, &|r| r.block_size = MAX_TRANSMIT_BLOCK + 1),
        STATUS_INVALID_PARAMETER
    );
    // Element count overflow (TRANSMIT_PACKETS).
    let mut r = TransmitPacketsRequest::new(s);
    r.element_count = u32::MAX;
    let st = transmit(&h, IOCTL_WSKCLIENT_TRANSMIT_PACKETS, r.as_bytes()).0;
    assert_eq!(st.status, STATUS_INTEGER_OVERFLOW);
    // A file element past the end of the file.
    let mut r = TransmitPacketsRequest::new(s);
    r.element_count = 1;
    let mut v = r.as_bytes().to_vec();
    v.extend_from_slice(TransmitElement::file(readable, 900, 101, false).as_bytes());
    assert_eq!(
        transmit(&h, IOCTL_WSKCLIENT_TRANSMIT_PACKETS, &v).0.status,
        STATUS_END_OF_FILE
    );
    // Not a stream socket of this file object.
    let other = TransmitFileRequest::new(SocketHandle::new(7, 1).unwrap(), readable);
    assert_eq!(
        transmit(
            &h,
            IOCTL_WSKCLIENT_TRANSMIT_FILE,
            &file_input(other, &[], &[])
        )
        .0
        .status,
        STATUS_INVALID_HANDLE
    );
    assert_eq!(close(&h, s), STATUS_SUCCESS);
    let (n, _) = p.eof.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(n, 0, "no bad request sent a byte");
    for fh in [readable, write_only, event] {
        assert_eq!(nfile::close_handle(fh), STATUS_SUCCESS);
    }
    drop(h);
    l.finish();
}

/// Waits (bounded) until the driver has sent something.
fn wait_sending(h: &UserHandle) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats(h).bytes_sent == 0 {
        assert!(Instant::now() < deadline, "transfer never started");
        std::thread::yield_now();
    }
}

fn file_handle_closed_mid_transfer_still_completes(fe: Frontend) {
    let l = load(fe, CompletionMode::Pending);
    let h = l.open();
    let (path, data) = host_file(16 << 20, 5);
    let fh = nfile::open_file(&path.0, Access::Read).unwrap();
    let p = peer(false); // not reading yet: the transfer stalls on flow control
    let s = open_stream(&h, p.addr);
    let mut r = TransmitFileRequest::new(s, fh);
    r.flags = TRANSMIT_DISCONNECT;
    let input = file_input(r, &[], &[]);
    let st = std::thread::scope(|sc| {
        let t = sc.spawn(|| transmit(&h, IOCTL_WSKCLIENT_TRANSMIT_FILE, &input));
        wait_sending(&h);
        assert_eq!(
            nfile::close_handle(fh),
            STATUS_SUCCESS,
            "caller closes its handle"
        );
        assert_eq!(nfile::live().user_handles, 0);
        assert_eq!(
            nfile::live().objects,
            2,
            "the driver's reference keeps the file (the other object: the driver's read event)"
        );
        p.gate.send(()).unwrap();
        t.join().unwrap()
    });
    assert_eq!(st.0.status, STATUS_SUCCESS);
    let (n, d) = p.eof.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((n, d), (data.len() as u64, sha(&[&data])));
    assert_eq!(nfile::live(), nfile::Live::default());
    assert_eq!(close(&h, s), STATUS_SUCCESS);
    drop(h);
    l.finish();
}

fn cancel_mid_transfer_frees_everything(fe: Frontend) {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let l = load(fe, mode);
        let h = l.open();
        let (path, _) = host_file(32 << 20, 6);
        let fh = nfile::open_file(&path.0, Access::Read).unwrap();
        let p = peer(true); // never reads
        let s = open_stream(&h, p.addr);
        let input = file_input(TransmitFileRequest::new(s, fh), &[], &[]);
        let st = std::thread::scope(|sc| {
            let t = sc.spawn(|| transmit(&h, IOCTL_WSKCLIENT_TRANSMIT_FILE, &input));
            wait_sending(&h);
            h.cancel_io();
            t.join().unwrap()
        });
        assert_eq!(st.0.status, STATUS_CANCELLED);
        assert_eq!(close(&h, s), STATUS_INVALID_HANDLE, "socket aborted");
        let live = nfile::live();
        assert_eq!((live.references, live.kernel_handles), (0, 0));
        assert_eq!(stats(&h).live_sockets, 0);
        nfile::close_handle(fh);
        drop(h);
        drop(p);
        l.finish();
    }
}

fn transmit_packets_stream_mixed_elements(fe: Frontend) {
    let l = load(fe, CompletionMode::Pending);
    let h = l.open();
    let (path, data) = host_file(200_000, 8);
    let fh = nfile::open_file(&path.0, Access::Read).unwrap();
    let p = peer(false);
    p.gate.send(()).unwrap();
    let s = open_stream(&h, p.addr);
    let mem = pattern(5000, 2);
    let els = [
        TransmitElement::memory(0, 1000, false),
        TransmitElement::file(fh, 10, 70_000, false),
        TransmitElement::memory(1000, 4000, true),
        TransmitElement::file(fh, 150_000, 0, false),
    ];
    let mut r = TransmitPacketsRequest::new(s);
    r.element_count = els.len() as u32;
    r.data_length = mem.len() as u32;
    r.send_size = 4096;
    r.flags = TRANSMIT_DISCONNECT | TRANSMIT_REUSE_SOCKET;
    let mut v = r.as_bytes().to_vec();
    for e in &els {
        v.extend_from_slice(e.as_bytes());
    }
    v.extend_from_slice(&mem);
    let (st, resp) = transmit(&h, IOCTL_WSKCLIENT_TRANSMIT_PACKETS, &v);
    assert_eq!(st.status, STATUS_SUCCESS);
    let expect = [
        &mem[..1000],
        &data[10..70_010],
        &mem[1000..],
        &data[150_000..],
    ];
    let total: usize = expect.iter().map(|x| x.len()).sum();
    assert_eq!(resp.bytes_sent, total as u64);
    assert_eq!(resp.flags, TRANSMIT_SOCKET_CLOSED);
    let (n, d) = p.eof.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!((n, d), (total as u64, sha(&expect)));
    assert_eq!(
        close(&h, s),
        STATUS_INVALID_HANDLE,
        "reuse: the driver closed it"
    );
    nfile::close_handle(fh);
    drop(h);
    l.finish();
}

fn transmit_packets_udp_keeps_datagram_boundaries(fe: Frontend) {
    for (v6, mode) in [
        (false, CompletionMode::Pending),
        (true, CompletionMode::Inline),
    ] {
        let l = load(fe, mode);
        let h = l.open();
        let (path, data) = host_file(3000, 4);
        let fh = nfile::open_file(&path.0, Access::Read).unwrap();
        let local: SocketAddr = if v6 { "[::1]:0" } else { "127.0.0.1:0" }.parse().unwrap();
        let rx = UdpSocket::bind(local).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = vec![0u8; 48];
        let st = h.device_io_control(
            IOCTL_WSKCLIENT_OPEN_DATAGRAM,
            OpenDatagramRequest::new(&local).as_bytes(),
            &mut out,
        );
        assert_eq!(st.status, STATUS_SUCCESS);
        let d = OpenDatagramResponse::read_from_bytes(&out).unwrap().handle;
        let mem = pattern(600, 1);
        // Packets: [mem 0..100 + file 0..200] EOP, [file 1000..2500] EOP, [mem 100..600].
        let els = [
            TransmitElement::memory(0, 100, false),
            TransmitElement::file(fh, 0, 200, true),
            TransmitElement::file(fh, 1000, 1500, true),
            TransmitElement::memory(100, 500, false),
        ];
        let mut r = TransmitPacketsRequest::new(d);
        r.element_count = els.len() as u32;
        r.data_length = mem.len() as u32;
        r.remote_address = InetAddress::from_socket_addr(&rx.local_addr().unwrap());
        let mut v = r.as_bytes().to_vec();
        for e in &els {
            v.extend_from_slice(e.as_bytes());
        }
        v.extend_from_slice(&mem);
        let (st, resp) = transmit(&h, IOCTL_WSKCLIENT_TRANSMIT_PACKETS, &v);
        assert_eq!(st.status, STATUS_SUCCESS);
        assert_eq!(resp.packets, 3);
        let expect: [Vec<u8>; 3] = [
            [&mem[..100], &data[..200]].concat(),
            data[1000..2500].to_vec(),
            mem[100..].to_vec(),
        ];
        let mut buf = vec![0u8; 65536];
        for e in &expect {
            let (n, _) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &e[..], "datagram boundary kept");
        }
        assert_eq!(
            resp.bytes_sent,
            expect.iter().map(|e| e.len() as u64).sum::<u64>()
        );
        assert_eq!(close(&h, d), STATUS_SUCCESS);
        nfile::close_handle(fh);
        drop(h);
        l.finish();
    }
}

both_frontends!(
    transmit_file_is_byte_exact_across_block_and_file_sizes,
    transmit_file_64_mib_ipv6_inline_with_disconnect,
    block_size_one_on_64_kib_is_bounded_in_memory,
    bad_inputs_get_their_status_and_send_nothing,
    file_handle_closed_mid_transfer_still_completes,
    cancel_mid_transfer_frees_everything,
    transmit_packets_stream_mixed_elements,
    transmit_packets_udp_keeps_datagram_boundaries,
);
