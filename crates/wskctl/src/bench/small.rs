//! `wskctl bench --small`: the per-request cost of small requests through the driver against
//! the same socket calls made directly, side by side in one run.
//!
//! Cases (each one its own row):
//!
//! | case | ours (one driver request per op) | raw (one system call per op) |
//! |---|---|---|
//! | `send-64`, `send-1k` | SEND IOCTL of 64 B / 1 KiB on a stream socket | `send(2)` on a loopback TCP socket |
//! | `send-to-64` | SEND_TO IOCTL of a 64 B datagram | `sendto(2)` on a UDP socket |
//! | `receive-64`, `receive-1k` | RECEIVE IOCTL with a 64 B / 1 KiB buffer | `recv(2)` with the same buffer |
//!
//! Peers are local threads of this process: a TCP sink and a UDP sink that read and discard
//! (counting the bytes of each sender), and a TCP source that keeps every connection fed.
//! Each case connects both sides once, then runs `rounds` rounds; a round times `ops`
//! requests of ours and `ops` of raw, alternating which goes first. Each side's figure is
//! the median of its per-round times; the ratio (ours/raw as throughput: raw time divided
//! by our time) is the median of the per-round ratios, each taken from two adjacent
//! measurements, which keeps it meaningful on a loaded machine. A case is `verified` when
//! every request succeeded and each peer saw exactly the bytes each side moved.
//!
//! Driver requests go through [`Device::ioctl`] with the data buffer as the
//! DeviceIoControl output buffer (METHOD_IN_DIRECT / METHOD_OUT_DIRECT), so the harness
//! adds no copy or allocation of its own per op. On the embedded device the driver runs on
//! ntsim, so "ours" is the driver plus the emulated I/O manager and WSK provider (the
//! provider moves bytes with real Linux socket calls); ntsim's counters give the
//! allocations per op: the driver's and `wsk`'s own (`ntsim::faults::OwnAllocations`), and
//! every IRP, MDL and pool block allocated by anyone (`ntsim::verifier::COUNTERS`).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use wskclient_ioctl::status::STATUS_SUCCESS;
use wskclient_ioctl::{Operation, ReceiveRequest, SendRequest, SendToRequest};
use zerocopy::IntoBytes;

use crate::client::{Client, NtStatus};
use crate::device::Device;

/// One case of the small benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
pub enum Case {
    /// SEND of 64 bytes vs `send(2)`.
    #[value(name = "send-64")]
    #[serde(rename = "send-64")]
    Send64,
    /// SEND of 1 KiB vs `send(2)`.
    #[value(name = "send-1k")]
    #[serde(rename = "send-1k")]
    Send1k,
    /// SEND_TO of a 64-byte datagram vs `sendto(2)`.
    #[value(name = "send-to-64")]
    #[serde(rename = "send-to-64")]
    SendTo64,
    /// RECEIVE into a 64-byte buffer vs `recv(2)`.
    #[value(name = "receive-64")]
    #[serde(rename = "receive-64")]
    Receive64,
    /// RECEIVE into a 1 KiB buffer vs `recv(2)`.
    #[value(name = "receive-1k")]
    #[serde(rename = "receive-1k")]
    Receive1k,
}

impl Case {
    /// Every case, in report order.
    pub const ALL: [Case; 5] = [
        Case::Send64,
        Case::Send1k,
        Case::SendTo64,
        Case::Receive64,
        Case::Receive1k,
    ];

    /// Bytes per request (the data length, or the receive buffer's size).
    pub fn bytes(self) -> usize {
        match self {
            Case::Send64 | Case::SendTo64 | Case::Receive64 => 64,
            Case::Send1k | Case::Receive1k => 1024,
        }
    }

    /// The row's label, e.g. `SEND 64 B vs send(2)`.
    pub fn label(self) -> &'static str {
        match self {
            Case::Send64 => "SEND 64 B vs send(2)",
            Case::Send1k => "SEND 1 KiB vs send(2)",
            Case::SendTo64 => "SEND_TO 64 B vs sendto(2)",
            Case::Receive64 => "RECEIVE 64 B vs recv(2)",
            Case::Receive1k => "RECEIVE 1 KiB vs recv(2)",
        }
    }

    /// The case's name as `--case` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Case::Send64 => "send-64",
            Case::Send1k => "send-1k",
            Case::SendTo64 => "send-to-64",
            Case::Receive64 => "receive-64",
            Case::Receive1k => "receive-1k",
        }
    }
}

/// Parameters of the small benchmark.
#[derive(Clone, Debug)]
pub struct SmallOptions {
    /// Requests per side per round.
    pub ops: u64,
    /// Timed rounds per case.
    pub rounds: u32,
    /// Untimed requests per side before the first round.
    pub warmup: u64,
    /// Cases to run, in order.
    pub cases: Vec<Case>,
    /// Skip the raw side (for instruction counts of the driver path alone).
    pub ours_only: bool,
    /// Bound on every wait for a peer.
    pub timeout: Duration,
}

impl Default for SmallOptions {
    fn default() -> Self {
        SmallOptions {
            ops: 10_000,
            rounds: 5,
            warmup: 1_000,
            cases: Case::ALL.to_vec(),
            ours_only: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// One side's figures for one case.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Side {
    /// Timed requests (all rounds).
    pub ops: u64,
    /// Bytes moved by the timed and warm-up requests.
    pub bytes: u64,
    /// Median over rounds of nanoseconds per request.
    pub ns_per_op: f64,
    /// Nanoseconds per request of each round.
    pub ns_per_op_rounds: Vec<f64>,
    /// Bytes the peer saw from this side (sinks), or that this side received (receive
    /// cases, where the source keeps writing).
    pub peer_bytes: u64,
}

/// Allocations counted by ntsim during our timed requests, per request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AllocationsPerOp {
    /// Ours: every allocation the driver and `wsk` made (`IoAllocateIrp`, `IoAllocateMdl`,
    /// `ExAllocatePool2` / `ExAllocatePoolWithTag`, `wsk::alloc`), as
    /// `ntsim::faults::OwnAllocations` counts them. Issue 13's goal: 0.
    pub ours: f64,
    /// Ours: `IoAllocateIrp`.
    pub ours_irps: f64,
    /// Ours: `IoAllocateMdl`.
    pub ours_mdls: f64,
    /// Ours: `ExAllocatePool2` / `ExAllocatePoolWithTag`.
    pub ours_pool: f64,
    /// Ours: Rust heap allocations through `wsk::alloc` (nonpaged pool in the kernel).
    pub ours_heap: f64,
    /// IRPs allocated by `IoAllocateIrp` (by anyone; the I/O manager's own request IRP is
    /// not counted).
    pub irps: f64,
    /// MDLs allocated (`IoAllocateMdl`, by anyone, including the I/O manager's MDL for the
    /// METHOD_*_DIRECT data buffer).
    pub mdls: f64,
    /// Pool allocations (`ExAllocatePool2` / `ExAllocatePoolWithTag`, by anyone, including
    /// the kernel's `IoCx` contexts).
    pub pool: f64,
    /// Contexts `IoSetCompletionRoutineEx` allocated (pool tag `IoCx`): the kernel's
    /// allocation on the caller's behalf, not counted as ours.
    pub io_cx: f64,
}

/// One case's row.
#[derive(Clone, Debug, Serialize)]
pub struct SmallRow {
    /// The case.
    pub case: Case,
    /// Human label.
    pub label: String,
    /// Bytes per request.
    pub bytes_per_op: usize,
    /// Through the driver.
    pub ours: Side,
    /// The direct system call (absent with `--ours-only`).
    pub raw: Option<Side>,
    /// Median of the per-round ratios raw time / our time (ours as a fraction of raw's
    /// throughput).
    pub ratio: Option<f64>,
    /// Per-round ratios.
    pub ratio_rounds: Vec<f64>,
    /// Allocations per timed request of ours (None off the embedded device).
    pub allocations_per_op: Option<AllocationsPerOp>,
    /// Every request succeeded and the peers saw exactly the bytes moved.
    pub verified: bool,
    /// Not measured because the WSK provider does not implement the operation
    /// (`STATUS_NOT_IMPLEMENTED` / `STATUS_NOT_SUPPORTED`, e.g. datagram sockets under Wine
    /// 8.0); never counted as verified.
    pub skipped: bool,
    /// Errors or notes.
    pub detail: String,
}

/// The small benchmark's report.
#[derive(Clone, Debug, Serialize)]
pub struct SmallReport {
    /// At least one row verified, and every row verified or skipped.
    pub ok: bool,
    /// Requests per side per round.
    pub ops: u64,
    /// Rounds per case.
    pub rounds: u32,
    /// Untimed requests per side before the rounds.
    pub warmup: u64,
    /// The emulated provider's completion mode (`pending` / `inline`), on the embedded
    /// device.
    pub completion_mode: Option<String>,
    /// One row per case.
    pub rows: Vec<SmallRow>,
    /// What the figures measure.
    pub measures: String,
}

/// What the figures mean on this build's device.
pub fn measures() -> &'static str {
    if cfg!(windows) {
        "ours: one DeviceIoControl to \\\\.\\WskClient per op (the system's I/O manager and \
         WSK provider); raw: the same socket call from user mode; one process, local peers"
    } else {
        "ours: one DeviceIoControl per op to the embedded device (the driver's code on ntsim, \
         the emulated I/O manager and WSK provider over Linux loopback sockets); raw: the \
         socket call made directly; not Windows kernel speed; ratio = raw time / our time, \
         median of per-round ratios"
    }
}

fn completion_mode() -> Option<String> {
    #[cfg(not(windows))]
    {
        Some(
            match ntsim::config::completion_mode() {
                ntsim::config::CompletionMode::Pending => "pending",
                ntsim::config::CompletionMode::Inline => "inline",
                ntsim::config::CompletionMode::Provider => "provider",
                #[allow(unreachable_patterns)]
                _ => "other",
            }
            .into(),
        )
    }
    #[cfg(windows)]
    {
        None
    }
}

/// Number of counters [`allocation_counters`] reads.
const N_COUNTERS: usize = 9;

/// ntsim's allocation counters, in [`AllocationsPerOp`]'s field order (ours: total, IRPs,
/// MDLs, pool, heap; all: IRPs, MDLs, pool; then `IoCx` contexts), or None off the
/// embedded build.
fn allocation_counters() -> Option<[u64; N_COUNTERS]> {
    #[cfg(not(windows))]
    {
        use std::sync::atomic::Ordering::SeqCst;
        let c = &ntsim::verifier::COUNTERS;
        let own = ntsim::faults::OwnAllocations::now();
        Some([
            own.total(),
            own.irps,
            own.mdls,
            own.pool,
            own.heap,
            c.irp_allocations.load(SeqCst),
            c.mdl_allocations.load(SeqCst),
            c.pool_allocations.load(SeqCst),
            ntsim::completion_ex::contexts_allocated(),
        ])
    }
    #[cfg(windows)]
    {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Local peers.

/// Accepts TCP connections; reads and discards each one to its end, then reports
/// `(peer address, bytes)`.
struct TcpSink {
    addr: SocketAddr,
    done: mpsc::Receiver<(SocketAddr, u64)>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TcpSink {
    fn start() -> io::Result<TcpSink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (tx, done) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("bench-sink".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let tx = tx.clone();
                    let _ = std::thread::Builder::new()
                        .name("bench-sink-conn".into())
                        .spawn(move || {
                            let peer = conn.peer_addr().unwrap_or(SocketAddr::from(([0; 4], 0)));
                            let mut buf = vec![0u8; 256 << 10];
                            let mut total = 0u64;
                            loop {
                                match conn.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => total += n as u64,
                                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                    Err(_) => break,
                                }
                            }
                            let _ = tx.send((peer, total));
                        });
                }
            })?;
        Ok(TcpSink {
            addr,
            done,
            stop,
            accept: Some(accept),
        })
    }

    /// Waits (bounded) for `n` connections to end; their totals by peer address.
    fn finished(&self, n: usize, timeout: Duration) -> HashMap<SocketAddr, u64> {
        let deadline = Instant::now() + timeout;
        let mut out = HashMap::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok((peer, bytes)) => {
                    out.insert(peer, bytes);
                }
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for TcpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Accepts TCP connections and writes to each until it is closed.
struct TcpSource {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TcpSource {
    fn start() -> io::Result<TcpSource> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("bench-source".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let _ = std::thread::Builder::new()
                        .name("bench-source-conn".into())
                        .spawn(move || {
                            let buf: Vec<u8> = (0..256usize << 10).map(|i| i as u8).collect();
                            // Ends when the reader closes (EPIPE / ECONNRESET).
                            while conn.write_all(&buf).is_ok() {}
                        });
                }
            })?;
        Ok(TcpSource {
            addr,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for TcpSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// A UDP socket that reads and discards datagrams, counting bytes by sender.
struct UdpSink {
    addr: SocketAddr,
    counts: Arc<Mutex<HashMap<SocketAddr, u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpSink {
    fn start() -> io::Result<UdpSink> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        #[cfg(not(windows))]
        {
            // As large as the system allows, so a burst of small datagrams is not dropped.
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(16 << 20);
        }
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (counts2, stop2) = (counts.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bench-udp-sink".into())
            .spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop2.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        *counts2
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(from)
                            .or_insert(0) += n as u64;
                    }
                }
            })?;
        Ok(UdpSink {
            addr,
            counts,
            stop,
            thread: Some(thread),
        })
    }

    fn bytes_from(&self, from: SocketAddr) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&from)
            .copied()
            .unwrap_or(0)
    }

    /// Waits (bounded) until `from`'s count reaches `expected`, or stops growing for
    /// 500 ms; returns the count.
    fn wait_for(&self, from: SocketAddr, expected: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let (mut last, mut since) = (self.bytes_from(from), Instant::now());
        loop {
            let now = self.bytes_from(from);
            if now >= expected || Instant::now() >= deadline {
                return now;
            }
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() > Duration::from_millis(500) {
                return now;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The two sides of a case.

/// A side of a case: runs `n` requests, returns the bytes moved.
trait Runner {
    fn run(&mut self, n: u64) -> anyhow::Result<u64>;
}

/// SEND / SEND_TO / RECEIVE through the driver on one socket.
struct Ours<'a> {
    device: &'a dyn Device,
    code: u32,
    request: Vec<u8>,
    buf: Vec<u8>,
    /// A stream receive (any positive count is a success).
    receive: bool,
    /// `Information` of the last request.
    last: usize,
}

impl Runner for Ours<'_> {
    fn run(&mut self, n: u64) -> anyhow::Result<u64> {
        let mut bytes = 0u64;
        for _ in 0..n {
            let io = self.device.ioctl(self.code, &self.request, &mut self.buf);
            if io.status != STATUS_SUCCESS {
                anyhow::bail!("driver: {}", NtStatus(io.status));
            }
            anyhow::ensure!(
                io.information <= self.buf.len() && (io.information > 0),
                "driver: Information {} for a {}-byte buffer",
                io.information,
                self.buf.len()
            );
            if !self.receive {
                anyhow::ensure!(
                    io.information == self.buf.len(),
                    "driver sent {} of {} bytes",
                    io.information,
                    self.buf.len()
                );
            }
            bytes += io.information as u64;
            self.last = io.information;
        }
        Ok(bytes)
    }
}

/// `send(2)` / `recv(2)` on a TCP socket, `sendto(2)` on a UDP socket.
enum Raw {
    Send(TcpStream, Vec<u8>),
    SendTo(UdpSocket, SocketAddr, Vec<u8>),
    Recv(TcpStream, Vec<u8>, usize),
}

impl Runner for Raw {
    fn run(&mut self, n: u64) -> anyhow::Result<u64> {
        let mut bytes = 0u64;
        for _ in 0..n {
            let k = match self {
                // One send(2) per op; a short send counts what it sent.
                Raw::Send(s, buf) => s.write(buf).context("send(2)")?,
                Raw::SendTo(s, to, buf) => {
                    let k = s.send_to(buf, *to).context("sendto(2)")?;
                    anyhow::ensure!(k == buf.len(), "sendto(2) sent {k} of {}", buf.len());
                    k
                }
                Raw::Recv(s, buf, last) => {
                    *last = s.read(buf).context("recv(2)")?;
                    *last
                }
            };
            anyhow::ensure!(k > 0, "0 bytes");
            bytes += k as u64;
        }
        Ok(bytes)
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Times `ours` and `raw` for one case; fills the row's figures (not its verification).
fn measure(
    row: &mut SmallRow,
    ours: &mut dyn Runner,
    mut raw: Option<&mut dyn Runner>,
    options: &SmallOptions,
) -> anyhow::Result<()> {
    row.ours.bytes += ours.run(options.warmup).context("ours, warm-up")?;
    if let Some(r) = raw.as_deref_mut() {
        row.raw.get_or_insert_with(Side::default).bytes +=
            r.run(options.warmup).context("raw, warm-up")?;
    }
    let mut allocations = [0u64; N_COUNTERS];
    let ops = options.ops.max(1);
    for round in 0..options.rounds.max(1) {
        let mut time_ours = |row: &mut SmallRow| -> anyhow::Result<f64> {
            let before = allocation_counters();
            let start = Instant::now();
            row.ours.bytes += ours.run(ops).context("ours")?;
            let ns = start.elapsed().as_nanos() as f64 / ops as f64;
            if let (Some(b), Some(a)) = (before, allocation_counters()) {
                for ((total, a), b) in allocations.iter_mut().zip(a).zip(b) {
                    *total += a.saturating_sub(b);
                }
            }
            row.ours.ops += ops;
            row.ours.ns_per_op_rounds.push(ns);
            Ok(ns)
        };
        let time_raw = |row: &mut SmallRow, r: &mut dyn Runner| -> anyhow::Result<f64> {
            let start = Instant::now();
            let side = row.raw.get_or_insert_with(Side::default);
            side.bytes += r.run(ops).context("raw")?;
            let ns = start.elapsed().as_nanos() as f64 / ops as f64;
            side.ops += ops;
            side.ns_per_op_rounds.push(ns);
            Ok(ns)
        };
        let (o, r) = match raw.as_deref_mut() {
            None => (time_ours(row)?, None),
            Some(r) if round % 2 == 0 => {
                let o = time_ours(row)?;
                (o, Some(time_raw(row, r)?))
            }
            Some(r) => {
                let rr = time_raw(row, r)?;
                (time_ours(row)?, Some(rr))
            }
        };
        if let Some(r) = r {
            row.ratio_rounds
                .push(if o > 0.0 { r / o } else { f64::NAN });
        }
    }
    row.ours.ns_per_op = median(&row.ours.ns_per_op_rounds);
    if let Some(side) = row.raw.as_mut() {
        side.ns_per_op = median(&side.ns_per_op_rounds);
        row.ratio = Some(median(&row.ratio_rounds)).filter(|x| x.is_finite());
    }
    if allocation_counters().is_some() && row.ours.ops > 0 {
        let per = |x: u64| x as f64 / row.ours.ops as f64;
        row.allocations_per_op = Some(AllocationsPerOp {
            ours: per(allocations[0]),
            ours_irps: per(allocations[1]),
            ours_mdls: per(allocations[2]),
            ours_pool: per(allocations[3]),
            ours_heap: per(allocations[4]),
            irps: per(allocations[5]),
            mdls: per(allocations[6]),
            pool: per(allocations[7]),
            io_cx: per(allocations[8]),
        });
    }
    Ok(())
}

struct Peers {
    tcp_sink: TcpSink,
    udp_sink: UdpSink,
    source: TcpSource,
}

fn run_case(device: &dyn Device, case: Case, peers: &Peers, options: &SmallOptions) -> SmallRow {
    let mut row = SmallRow {
        case,
        label: case.label().into(),
        bytes_per_op: case.bytes(),
        ours: Side::default(),
        raw: None,
        ratio: None,
        ratio_rounds: Vec::new(),
        allocations_per_op: None,
        verified: false,
        skipped: false,
        detail: String::new(),
    };
    let result = match case {
        Case::Send64 | Case::Send1k => run_stream_send(device, case, peers, options, &mut row),
        Case::SendTo64 => run_send_to(device, case, peers, options, &mut row),
        Case::Receive64 | Case::Receive1k => run_receive(device, case, peers, options, &mut row),
    };
    match result {
        Ok(()) => {}
        Err(e) => {
            row.verified = false;
            row.skipped = super::provider_lacks(&e);
            row.detail = if row.skipped {
                format!("skipped: provider lacks it ({e:#})")
            } else {
                format!("{e:#}")
            };
        }
    }
    row
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn run_stream_send(
    device: &dyn Device,
    case: Case,
    peers: &Peers,
    options: &SmallOptions,
    row: &mut SmallRow,
) -> anyhow::Result<()> {
    let client = Client::new(device);
    let target = peers.tcp_sink.addr;
    let socket = client
        .open_stream(target)
        .with_context(|| format!("OPEN_STREAM {target}"))?;
    let ours_local = socket.local;
    let mut ours = Ours {
        device,
        code: Operation::Send.code(),
        request: SendRequest::new(socket.handle).as_bytes().to_vec(),
        buf: payload(case.bytes()),
        receive: false,
        last: 0,
    };
    let mut raw = if options.ours_only {
        None
    } else {
        let s = TcpStream::connect(target).with_context(|| format!("connect {target}"))?;
        Some(Raw::Send(s, payload(case.bytes())))
    };
    let raw_local = match &raw {
        Some(Raw::Send(s, _)) => Some(s.local_addr()?),
        _ => None,
    };
    let measured = measure(
        row,
        &mut ours,
        raw.as_mut().map(|r| r as &mut dyn Runner),
        options,
    );
    let closed = client.close(socket.handle);
    drop(raw);
    measured?;
    closed.context("CLOSE")?;
    let want = 1 + usize::from(raw_local.is_some());
    let totals = peers.tcp_sink.finished(want, options.timeout);
    let ours_peer = match ours_local {
        Some(a) => totals.get(&a).copied(),
        // No local address from the driver: the one total that is not raw's.
        None => totals
            .iter()
            .find(|(a, _)| Some(**a) != raw_local)
            .map(|(_, b)| *b),
    };
    row.ours.peer_bytes = ours_peer.unwrap_or(0);
    let mut ok = ours_peer == Some(row.ours.bytes);
    if let (Some(side), Some(local)) = (row.raw.as_mut(), raw_local) {
        side.peer_bytes = totals.get(&local).copied().unwrap_or(0);
        ok &= side.peer_bytes == side.bytes;
    }
    row.verified = ok;
    if !ok {
        row.detail = format!("sink totals {totals:?} differ from the bytes sent");
    }
    Ok(())
}

fn run_send_to(
    device: &dyn Device,
    case: Case,
    peers: &Peers,
    options: &SmallOptions,
    row: &mut SmallRow,
) -> anyhow::Result<()> {
    let client = Client::new(device);
    let target = peers.udp_sink.addr;
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let socket = client.open_datagram(local).context("OPEN_DATAGRAM")?;
    let mut ours = Ours {
        device,
        code: Operation::SendTo.code(),
        request: SendToRequest::new(socket.handle, Some(&target))
            .as_bytes()
            .to_vec(),
        buf: payload(case.bytes()),
        receive: false,
        last: 0,
    };
    let mut raw = if options.ours_only {
        None
    } else {
        let s = UdpSocket::bind(local).context("bind UDP")?;
        Some(Raw::SendTo(s, target, payload(case.bytes())))
    };
    let raw_local = match &raw {
        Some(Raw::SendTo(s, _, _)) => Some(s.local_addr()?),
        _ => None,
    };
    let measured = measure(
        row,
        &mut ours,
        raw.as_mut().map(|r| r as &mut dyn Runner),
        options,
    );
    let closed = client.close(socket.handle);
    measured?;
    closed.context("CLOSE")?;
    row.ours.peer_bytes = peers
        .udp_sink
        .wait_for(socket.local, row.ours.bytes, options.timeout);
    let mut ok = row.ours.peer_bytes == row.ours.bytes;
    if let (Some(side), Some(local)) = (row.raw.as_mut(), raw_local) {
        side.peer_bytes = peers.udp_sink.wait_for(local, side.bytes, options.timeout);
        ok &= side.peer_bytes == side.bytes;
    }
    drop(raw);
    row.verified = ok;
    if !ok {
        row.detail = "the UDP sink did not get every datagram (loopback dropped some: \
                      the sink's receive buffer overflowed)"
            .into();
    }
    Ok(())
}

fn run_receive(
    device: &dyn Device,
    case: Case,
    peers: &Peers,
    options: &SmallOptions,
    row: &mut SmallRow,
) -> anyhow::Result<()> {
    let client = Client::new(device);
    let source = peers.source.addr;
    let socket = client
        .open_stream(source)
        .with_context(|| format!("OPEN_STREAM {source}"))?;
    let mut ours = Ours {
        device,
        code: Operation::Receive.code(),
        request: ReceiveRequest::new(socket.handle).as_bytes().to_vec(),
        buf: vec![0u8; case.bytes()],
        receive: true,
        last: 0,
    };
    let mut raw = if options.ours_only {
        None
    } else {
        let s = TcpStream::connect(source).with_context(|| format!("connect {source}"))?;
        Some(Raw::Recv(s, vec![0u8; case.bytes()], 0))
    };
    let measured = measure(
        row,
        &mut ours,
        raw.as_mut().map(|r| r as &mut dyn Runner),
        options,
    );
    // The source's stream is its byte pattern (offset mod 256): the last request's bytes
    // count up by one, wrapping.
    let pattern_ok = |buf: &[u8], last: usize| -> bool {
        last > 0
            && buf
                .get(..last)
                .is_some_and(|b| b.windows(2).all(|w| w[1] == w[0].wrapping_add(1)))
    };
    let mut ok = pattern_ok(&ours.buf, ours.last);
    let closed = client.close(socket.handle);
    measured?;
    closed.context("CLOSE")?;
    row.ours.peer_bytes = row.ours.bytes;
    ok &= row.ours.bytes >= row.ours.ops;
    if let (Some(side), Some(Raw::Recv(_, buf, last))) = (row.raw.as_mut(), raw.as_ref()) {
        side.peer_bytes = side.bytes;
        ok &= side.bytes >= side.ops && pattern_ok(buf, *last);
    }
    drop(raw);
    row.verified = ok;
    if !ok {
        row.detail = "received bytes are not the source's stream".into();
    }
    Ok(())
}

/// Runs the small benchmark on `device`.
///
/// Errors: a local peer could not be started. A failing case is a row with
/// `verified = false` and the error in `detail`.
pub fn run(device: &dyn Device, options: &SmallOptions) -> anyhow::Result<SmallReport> {
    let peers = Peers {
        tcp_sink: TcpSink::start().context("TCP sink")?,
        udp_sink: UdpSink::start().context("UDP sink")?,
        source: TcpSource::start().context("TCP source")?,
    };
    let rows: Vec<SmallRow> = options
        .cases
        .iter()
        .map(|&case| run_case(device, case, &peers, options))
        .collect();
    Ok(SmallReport {
        ok: rows.iter().any(|r| r.verified) && rows.iter().all(|r| r.verified || r.skipped),
        ops: options.ops,
        rounds: options.rounds,
        warmup: options.warmup,
        completion_mode: completion_mode(),
        rows,
        measures: measures().into(),
    })
}

impl SmallReport {
    /// The report as a table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "small requests: {} ops per side per round, {} rounds (median), {} warm-up; completion mode: {}",
            self.ops,
            self.rounds,
            self.warmup,
            self.completion_mode.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "{:<27} {:>11} {:>11} {:>9} {:>10} {:>7} {:>7} {:>7}  {:<8} detail",
            "case",
            "ours µs/op",
            "raw µs/op",
            "ours/raw",
            "ours al/op",
            "IRP/op",
            "MDL/op",
            "pool/op",
            "verified"
        );
        for r in &self.rows {
            let f = |x: Option<f64>, prec: usize| match x {
                Some(v) if v.is_finite() => format!("{v:.prec$}"),
                _ => "-".into(),
            };
            let a = r.allocations_per_op.as_ref();
            let _ = writeln!(
                out,
                "{:<27} {:>11} {:>11} {:>9} {:>10} {:>7} {:>7} {:>7}  {:<8} {}",
                r.label,
                f(
                    Some(r.ours.ns_per_op / 1000.0).filter(|_| r.ours.ops > 0),
                    3
                ),
                f(r.raw.as_ref().map(|s| s.ns_per_op / 1000.0), 3),
                f(r.ratio, 4),
                f(a.map(|a| a.ours), 2),
                f(a.map(|a| a.irps), 2),
                f(a.map(|a| a.mdls), 2),
                f(a.map(|a| a.pool), 2),
                if r.verified {
                    "yes"
                } else if r.skipped {
                    "skipped"
                } else {
                    "no"
                },
                r.detail
            );
        }
        let _ = writeln!(out, "measures: {}", self.measures);
        let _ = write!(
            out,
            "{}",
            if self.ok {
                "bench: OK"
            } else {
                "bench: FAILED"
            }
        );
        out
    }
}
