//! TRANSMIT_FILE pends (issue 14 item 4): the dispatch routine returns STATUS_PENDING after
//! referencing the caller's file, and a work item (IoQueueWorkItem, PASSIVE_LEVEL) reads and
//! sends. An overlapped caller gets control back while the peer is not reading yet, sees the
//! progress in QUERY_STATS, and later the bytes arrive byte-exact; cancelling mid-transfer
//! frees everything. Both WSK completion modes, both front-ends (WDM, and KMDF on ntsim's
//! KMDF model, which hands the core its WDM device object through
//! WdfDeviceWdmGetDeviceObject). On the old code (the transfer ran inside the
//! dispatch routine) the overlapped call returned only after the peer's gate timed out, with
//! the request already complete.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ntsim::config::CompletionMode;
use ntsim::file::{self as nfile, Access};
use ntsim::iomgr::{self, LoadedDriver, UserHandle};

mod frontend;
use frontend::Frontend;
use sha2::{Digest, Sha256};
use wskclient_ioctl::status::*;
use wskclient_ioctl::transmit::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

/// How long the peer's gate stays shut if the test never opens it: long enough that the old,
/// blocking dispatch routine is caught holding the caller, short enough to fail promptly.
const GATE: Duration = Duration::from_secs(15);

fn load(fe: Frontend, mode: CompletionMode) -> (ntsim::Scope, LoadedDriver) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    (scope, fe.load())
}

fn finish(scope: ntsim::Scope, driver: LoadedDriver) {
    driver.unload().expect("unload");
    assert_eq!(
        nfile::live(),
        nfile::Live::default(),
        "file objects/handles"
    );
    scope.assert_clean();
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
    h.device_io_control(
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(s).as_bytes(),
        &mut [],
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

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32) as u8 ^ seed)
        .collect()
}

struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(data: &[u8], n: u32) -> TempFile {
        let p = std::env::temp_dir().join(format!(
            "wskclient-transmit-pends-{}-{n}-{:?}.bin",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&p, data).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A TCP peer that reads nothing until its gate opens (or [`GATE`] passes), then reads to
/// end-of-stream and reports (bytes, sha256).
struct Peer {
    addr: SocketAddr,
    eof: mpsc::Receiver<(u64, [u8; 32])>,
    gate: mpsc::Sender<()>,
}

fn peer() -> Peer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let (gtx, grx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let _ = grx.recv_timeout(GATE);
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

/// Waits (bounded) until the driver has sent something.
fn wait_sending(h: &UserHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(h).bytes_sent == 0 {
        assert!(Instant::now() < deadline, "transfer never started");
        std::thread::yield_now();
    }
}

fn modes() -> [CompletionMode; 2] {
    [CompletionMode::Pending, CompletionMode::Inline]
}

fn overlapped_caller_gets_control_before_the_transfer_ends(fe: Frontend) {
    for (i, mode) in modes().into_iter().enumerate() {
        let (scope, driver) = load(fe, mode);
        let h = iomgr::open(USER_PATH).expect("open device");
        // 16 MiB: far more than the loopback socket buffers hold while the peer is not reading.
        let data = pattern(16 << 20, 3 + i as u8);
        let path = TempFile::new(&data, i as u32);
        let fh = nfile::open_file(&path.0, Access::Read).unwrap();
        let p = peer();
        let s = open_stream(&h, p.addr);
        let head = pattern(100, 7);
        let tail = pattern(33, 9);
        let mut r = TransmitFileRequest::new(s, fh);
        r.head_length = head.len() as u32;
        r.tail_length = tail.len() as u32;
        let mut input = r.as_bytes().to_vec();
        input.extend_from_slice(&head);
        input.extend_from_slice(&tail);
        let started = Instant::now();
        let ov = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_TRANSMIT_FILE,
            input,
            vec![0u8; TransmitResponse::SIZE],
        );
        assert!(
            started.elapsed() < GATE,
            "{mode:?}: DeviceIoControl held the caller {:?}, until the peer's gate timed out",
            started.elapsed()
        );
        assert!(
            !ov.is_complete(),
            "{mode:?}: the request completed while the peer had read nothing"
        );
        // Progress shows while the request pends.
        wait_sending(&h);
        let st = stats(&h);
        assert!(st.bytes_sent > 0 && st.bytes_sent < data.len() as u64);
        assert!(st.pending_requests >= 1, "{mode:?}: {st:?}");
        assert!(!ov.is_complete());
        p.gate.send(()).unwrap();
        let io = ov
            .wait(Duration::from_secs(60))
            .expect("transfer completes");
        assert_eq!(io.status, STATUS_SUCCESS, "{mode:?}");
        assert_eq!(io.information, TransmitResponse::SIZE);
        let resp = TransmitResponse::read_from_bytes(&ov.output()).unwrap();
        let total = (head.len() + data.len() + tail.len()) as u64;
        assert_eq!(resp.bytes_sent, total);
        assert_eq!(close(&h, s), STATUS_SUCCESS);
        let (n, d) = p.eof.recv_timeout(Duration::from_secs(60)).expect("peer");
        let mut want = Sha256::new();
        want.update(&head);
        want.update(&data);
        want.update(&tail);
        assert_eq!((n, d), (total, want.finalize().into()), "{mode:?}");
        assert_eq!(stats(&h).pending_requests, 0);
        assert_eq!(nfile::close_handle(fh), STATUS_SUCCESS);
        drop(h);
        finish(scope, driver);
    }
}

fn cancel_of_a_pending_transmit_frees_everything(fe: Frontend) {
    for (i, mode) in modes().into_iter().enumerate() {
        let (scope, driver) = load(fe, mode);
        let h = iomgr::open(USER_PATH).expect("open device");
        let data = pattern(32 << 20, 11 + i as u8);
        let path = TempFile::new(&data, 10 + i as u32);
        let fh = nfile::open_file(&path.0, Access::Read).unwrap();
        let p = peer(); // never told to read
        let s = open_stream(&h, p.addr);
        let input = TransmitFileRequest::new(s, fh).as_bytes().to_vec();
        let started = Instant::now();
        let ov = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_TRANSMIT_FILE,
            input,
            vec![0u8; TransmitResponse::SIZE],
        );
        assert!(started.elapsed() < GATE && !ov.is_complete(), "{mode:?}");
        wait_sending(&h);
        ov.cancel();
        let io = ov.wait(Duration::from_secs(30)).expect("cancel completes");
        assert_eq!(io.status, STATUS_CANCELLED, "{mode:?}");
        assert_eq!(close(&h, s), STATUS_INVALID_HANDLE, "socket aborted");
        let live = nfile::live();
        assert_eq!((live.references, live.kernel_handles), (0, 0), "{mode:?}");
        let st = stats(&h);
        assert_eq!((st.live_sockets, st.pending_requests), (0, 0));
        assert_eq!(nfile::close_handle(fh), STATUS_SUCCESS);
        drop(h);
        drop(p);
        finish(scope, driver);
    }
}

both_frontends!(
    overlapped_caller_gets_control_before_the_transfer_ends,
    cancel_of_a_pending_transmit_frees_everything,
);
