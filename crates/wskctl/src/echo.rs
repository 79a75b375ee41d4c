//! `wskctl echo`: a driver-side echo server driven by completions, not by threads per client.
//!
//! Every request goes through an overlapped handle of its own ([`Device::open_overlapped`]):
//! OPEN_LISTEN, then `--accepts` ACCEPTs in flight (default 1); each accepted connection
//! has exactly one request in flight at a time (RECEIVE, then SEND until the received bytes
//! are all sent, then RECEIVE again; CLOSE after the peer's end of stream or an error), so
//! its bytes go back in order. A fixed number of threads (`--threads`) take completions from
//! the completion port and issue the next request; no thread waits on one connection.
//!
//! When every client is connected and each connection's first RECEIVE is in flight (the
//! server is idle), the kernel's counters are read (embedded device) and compared with those
//! taken after OPEN_LISTEN: the driver's nonpaged pool per idle connection, by pool tag, plus
//! the IRPs and MDLs in flight.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::Serialize;
use wskclient_ioctl::status::{STATUS_CANCELLED, STATUS_SUCCESS};
use wskclient_ioctl::{
    parse_response, AcceptRequest, AcceptResponse, CloseRequest, OpenListenRequest,
    OpenListenResponse, Operation, ReceiveRequest, SendRequest, SocketHandle,
};
use zerocopy::IntoBytes;

use crate::cli::EchoArgs;
use crate::client::NtStatus;
use crate::device::{Completion, Device, KernelCounters, OverlappedDevice};

/// Most clients one `echo` serves: the file object's socket table holds the listener and
/// the connections.
pub const MAX_CLIENTS: u32 = wskclient_ioctl::MAX_SOCKETS_PER_FILE - 1;
/// Most ACCEPT requests `--accepts` may keep in flight.
pub const MAX_ACCEPTS_IN_FLIGHT: u32 = 1024;
/// How long the setup requests (OPEN_LISTEN, the final CLOSE) may take.
const SETUP_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting thread looks whether the server is done (a bound on each wait; the
/// last completion also wakes every thread).
const POLL: Duration = Duration::from_secs(1);

/// What a request was, in the high 32 bits of its tag; the low 32 bits are the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Op {
    Listen = 1,
    Accept = 2,
    Receive = 3,
    Send = 4,
    Close = 5,
    CloseListener = 6,
    Quit = 7,
}

impl Op {
    fn tag(self, conn: u32) -> u64 {
        ((self as u64) << 32) | conn as u64
    }

    fn of(tag: u64) -> Option<(Op, usize)> {
        let op = match tag >> 32 {
            1 => Op::Listen,
            2 => Op::Accept,
            3 => Op::Receive,
            4 => Op::Send,
            5 => Op::Close,
            6 => Op::CloseListener,
            7 => Op::Quit,
            _ => return None,
        };
        Some((op, tag as u32 as usize))
    }
}

/// One accepted connection.
#[derive(Default)]
struct Conn {
    handle: Option<SocketHandle>,
    remote: Option<SocketAddr>,
    bytes: u64,
    error: Option<String>,
}

/// Where the server is.
#[derive(Default)]
struct Control {
    accepted: u32,
    accepts_in_flight: u32,
    /// Connections whose first RECEIVE is in flight.
    armed: u32,
    closed: u32,
    /// False after an ACCEPT failed: no more ACCEPTs, the listener is being closed.
    accepting: bool,
    accept_error: Option<String>,
    listener_closed: bool,
    done: bool,
}

/// Events for the thread that prints.
enum Event {
    /// Every client is connected, each with its RECEIVE in flight.
    AllConnected,
    /// Every connection is closed and no ACCEPT is in flight.
    Done,
}

struct Server<'d> {
    dev: &'d dyn OverlappedDevice,
    clients: u32,
    buffer: usize,
    listener: SocketHandle,
    conns: Vec<Mutex<Conn>>,
    control: Mutex<Control>,
    bytes: AtomicU64,
    events: Mutex<mpsc::Sender<Event>>,
    threads: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server<'_> {
    fn submit(&self, op: Op, conn: u32, input: Vec<u8>, output: Vec<u8>) {
        let code = match op {
            Op::Accept => Operation::Accept.code(),
            Op::Receive => Operation::Receive.code(),
            Op::Send => Operation::Send.code(),
            Op::Close | Op::CloseListener => Operation::Close.code(),
            Op::Listen => Operation::OpenListen.code(),
            Op::Quit => return,
        };
        if let Err(c) = self.dev.submit(op.tag(conn), code, input, output) {
            // Failed synchronously: nothing is queued for it; handle it here.
            self.complete(c);
        }
    }

    fn submit_accept(&self) {
        self.submit(
            Op::Accept,
            0,
            AcceptRequest::new(self.listener).as_bytes().to_vec(),
            vec![0u8; std::mem::size_of::<AcceptResponse>()],
        );
    }

    fn submit_receive(&self, conn: usize, handle: SocketHandle, mut buf: Vec<u8>) {
        buf.resize(self.buffer, 0);
        self.submit(
            Op::Receive,
            conn as u32,
            ReceiveRequest::new(handle).as_bytes().to_vec(),
            buf,
        );
    }

    fn submit_close(&self, conn: usize, handle: SocketHandle) {
        self.submit(
            Op::Close,
            conn as u32,
            CloseRequest::new(handle).as_bytes().to_vec(),
            Vec::new(),
        );
    }

    fn close_listener(&self) {
        self.submit(
            Op::CloseListener,
            0,
            CloseRequest::new(self.listener).as_bytes().to_vec(),
            Vec::new(),
        );
    }

    fn event(&self, e: Event) {
        let _ = lock(&self.events).send(e);
    }

    /// Ends the run once every connection is closed and no ACCEPT is in flight.
    fn check_done(&self, c: &mut Control) {
        let all_in = c.accepted == self.clients || !c.accepting;
        if !c.done && all_in && c.accepts_in_flight == 0 && c.closed == c.accepted {
            c.done = true;
            self.event(Event::Done);
            for _ in 0..self.threads {
                self.dev.post(Op::Quit.tag(0));
            }
        }
    }

    /// Fails connection `conn` (first error wins) and closes it.
    fn fail(&self, conn: usize, what: String) {
        let handle = {
            let Some(slot) = self.conns.get(conn) else {
                return;
            };
            let mut c = lock(slot);
            c.error.get_or_insert(what);
            c.handle
        };
        match handle {
            Some(h) => self.submit_close(conn, h),
            None => {
                let mut c = lock(&self.control);
                c.closed += 1;
                self.check_done(&mut c);
            }
        }
    }

    fn handle_of(&self, conn: usize) -> Option<SocketHandle> {
        self.conns.get(conn).and_then(|c| lock(c).handle)
    }

    /// Handles one completion and issues the connection's next request.
    fn complete(&self, done: Completion) {
        let Some((op, conn)) = Op::of(done.tag) else {
            return;
        };
        let status = done.status.status;
        let n = done.status.information;
        match op {
            Op::Listen | Op::Quit => {}
            Op::Accept => self.accepted(status, &done.output[..n.min(done.output.len())]),
            Op::Receive => {
                let Some(handle) = self.handle_of(conn) else {
                    return;
                };
                if status != STATUS_SUCCESS {
                    return self.fail(conn, format!("receive: {}", NtStatus(status)));
                }
                if n == 0 {
                    // The peer's end of stream.
                    return self.submit_close(conn, handle);
                }
                if n > done.output.len() {
                    return self.fail(conn, format!("receive: driver reported {n} bytes"));
                }
                let mut data = done.output;
                data.truncate(n);
                if let Some(c) = self.conns.get(conn) {
                    lock(c).bytes += n as u64;
                }
                self.bytes.fetch_add(n as u64, Ordering::Relaxed);
                self.submit(
                    Op::Send,
                    conn as u32,
                    SendRequest::new(handle).as_bytes().to_vec(),
                    data,
                );
            }
            Op::Send => {
                let Some(handle) = self.handle_of(conn) else {
                    return;
                };
                if status != STATUS_SUCCESS {
                    return self.fail(conn, format!("send: {}", NtStatus(status)));
                }
                if n == 0 || n > done.output.len() {
                    return self.fail(
                        conn,
                        format!("send: driver sent {n} of {} bytes", done.output.len()),
                    );
                }
                let mut data = done.output;
                if n < data.len() {
                    data.drain(..n);
                    self.submit(
                        Op::Send,
                        conn as u32,
                        SendRequest::new(handle).as_bytes().to_vec(),
                        data,
                    );
                } else {
                    self.submit_receive(conn, handle, data);
                }
            }
            Op::Close => {
                if status != STATUS_SUCCESS {
                    if let Some(c) = self.conns.get(conn) {
                        lock(c)
                            .error
                            .get_or_insert(format!("close: {}", NtStatus(status)));
                    }
                }
                let mut c = lock(&self.control);
                c.closed += 1;
                self.check_done(&mut c);
            }
            Op::CloseListener => {
                let mut c = lock(&self.control);
                c.listener_closed = true;
                if status != STATUS_SUCCESS && c.accept_error.is_none() {
                    c.accept_error = Some(format!("close listener: {}", NtStatus(status)));
                }
                self.check_done(&mut c);
            }
        }
    }

    fn accepted(&self, status: i32, output: &[u8]) {
        let parsed = if status == STATUS_SUCCESS {
            parse_accept(output)
        } else {
            Err(anyhow!("{}", NtStatus(status)))
        };
        let mut c = lock(&self.control);
        c.accepts_in_flight -= 1;
        match parsed {
            Ok((handle, remote)) if c.accepted < self.clients => {
                let conn = c.accepted as usize;
                c.accepted += 1;
                let more = c.accepting && c.accepted + c.accepts_in_flight < self.clients;
                if more {
                    c.accepts_in_flight += 1;
                }
                drop(c);
                if let Some(slot) = self.conns.get(conn) {
                    let mut s = lock(slot);
                    s.handle = Some(handle);
                    s.remote = Some(remote);
                }
                if more {
                    self.submit_accept();
                }
                self.submit_receive(conn, handle, Vec::new());
                let mut c = lock(&self.control);
                c.armed += 1;
                if c.armed == self.clients {
                    self.event(Event::AllConnected);
                }
            }
            Ok(_) => {
                // More ACCEPTs completed than clients were asked for (cannot happen: no more
                // are issued than clients). The file object's cleanup closes the socket.
            }
            Err(e) => {
                let close = c.accepting;
                if c.accepting && !(status == STATUS_CANCELLED && c.listener_closed) {
                    c.accept_error = Some(format!("accept: {e:#}"));
                }
                c.accepting = false;
                self.check_done(&mut c);
                drop(c);
                if close {
                    // Cancels the other ACCEPTs in flight.
                    self.close_listener();
                }
            }
        }
    }

    /// A completion thread: takes completions until the run is done.
    fn run(&self) {
        loop {
            match self.dev.dequeue(POLL) {
                Some(c) if Op::of(c.tag).map(|(op, _)| op) == Some(Op::Quit) => return,
                Some(c) => self.complete(c),
                None => {
                    if lock(&self.control).done {
                        return;
                    }
                }
            }
        }
    }
}

fn parse_accept(output: &[u8]) -> anyhow::Result<(SocketHandle, SocketAddr)> {
    let r: AcceptResponse = parse_response(output).map_err(|e| anyhow!("accept response: {e}"))?;
    let remote = r
        .remote_address
        .to_socket_addr()
        .map_err(|e| anyhow!("accept response: {e}"))?;
    Ok((r.handle, remote))
}

/// Submits one request and waits (bounded) for its completion, before any completion thread
/// runs.
fn call(
    dev: &dyn OverlappedDevice,
    op: Op,
    code: u32,
    input: Vec<u8>,
    output: Vec<u8>,
) -> anyhow::Result<Completion> {
    if let Err(c) = dev.submit(op.tag(0), code, input, output) {
        return Ok(c);
    }
    let deadline = Instant::now() + SETUP_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let c = dev
            .dequeue(left)
            .ok_or_else(|| anyhow!("{op:?}: no completion within {SETUP_WAIT:?}"))?;
        if c.tag == op.tag(0) {
            return Ok(c);
        }
    }
}

/// Nonpaged memory per idle connection, from the kernel's counters: (with every client
/// connected and its RECEIVE in flight) − (after OPEN_LISTEN), divided by the clients.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IdlePool {
    /// Connections measured.
    pub connections: u32,
    /// The driver's pool (every tag), bytes per connection.
    pub pool_bytes_per_connection: f64,
    /// By pool tag: (tag, bytes per connection, blocks per connection).
    pub pool_by_tag: Vec<(String, f64, f64)>,
    /// IRPs the driver allocated, per connection (the WSK receive in flight).
    pub driver_irps_per_connection: f64,
    /// Their bytes per connection (`sizeof(IRP) + sizeof(IO_STACK_LOCATION)` each).
    pub driver_irp_bytes_per_connection: f64,
    /// The driver's socket object (its heap, pool on Windows; not in the emulated pool
    /// counters, added from its size), bytes per connection.
    pub socket_object_bytes: f64,
    /// One slot of the socket table, bytes (the table grows by doubling: up to twice this
    /// per connection in the worst case; not in the emulated pool counters either).
    pub table_slot_bytes: f64,
    /// Ours: pool + driver IRPs + socket object + table slot, bytes per connection (the goal
    /// is <= 512).
    pub ours_bytes_per_connection: f64,
    /// The I/O manager's pending IRPs per connection (the user's RECEIVE request): not ours,
    /// what any overlapped request costs.
    pub io_manager_irps_per_connection: f64,
    /// MDLs per connection (the I/O manager's, describing the user's RECEIVE buffer).
    pub mdls_per_connection: f64,
    /// The I/O manager's system buffers (the RECEIVE input copies), bytes per connection.
    pub system_buffer_bytes_per_connection: f64,
}

impl IdlePool {
    fn between(before: &KernelCounters, after: &KernelCounters, n: u32) -> IdlePool {
        let per = |a: u64, b: u64| (a as f64 - b as f64) / n.max(1) as f64;
        let mut tags: Vec<(String, f64, f64)> = after
            .pool_by_tag
            .iter()
            .map(|(t, bytes, blocks)| {
                let (b0, k0) = before
                    .pool_by_tag
                    .iter()
                    .find(|(t0, _, _)| t0 == t)
                    .map_or((0, 0), |(_, b, k)| (*b, *k));
                (t.clone(), per(*bytes, b0), per(*blocks, k0))
            })
            .filter(|(_, b, k)| *b != 0.0 || *k != 0.0)
            .collect();
        tags.sort_by(|a, b| b.1.total_cmp(&a.1));
        let pool = per(after.pool_bytes, before.pool_bytes);
        let irps = per(after.driver_irps, before.driver_irps);
        let irp_bytes = irps * after.irp_bytes as f64;
        IdlePool {
            connections: n,
            pool_bytes_per_connection: pool,
            pool_by_tag: tags,
            driver_irps_per_connection: irps,
            driver_irp_bytes_per_connection: irp_bytes,
            socket_object_bytes: after.socket_object_bytes as f64,
            table_slot_bytes: after.table_slot_bytes as f64,
            ours_bytes_per_connection: pool
                + irp_bytes
                + after.socket_object_bytes as f64
                + after.table_slot_bytes as f64,
            io_manager_irps_per_connection: per(after.io_manager_irps, before.io_manager_irps),
            mdls_per_connection: per(after.mdls, before.mdls),
            system_buffer_bytes_per_connection: per(
                after.system_buffer_bytes,
                before.system_buffer_bytes,
            ),
        }
    }
}

/// What `echo --json` prints.
#[derive(Debug, Serialize)]
struct Summary {
    listen: String,
    clients: u32,
    served: u32,
    failed: usize,
    bytes: u64,
    threads: usize,
    seconds: f64,
    idle_pool: Option<IdlePool>,
}

/// Raises the soft RLIMIT_NOFILE towards the hard limit when `need` descriptors are more
/// than the soft limit allows (each emulated socket is a host socket). Errors: the hard limit
/// is below `need`.
#[cfg(not(windows))]
fn raise_nofile(need: u64) -> anyhow::Result<()> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 || r.rlim_cur >= need {
        return Ok(());
    }
    anyhow::ensure!(
        r.rlim_max >= need,
        "{need} file descriptors needed (each emulated socket is a host socket); the hard RLIMIT_NOFILE is {}",
        r.rlim_max
    );
    r.rlim_cur = r.rlim_max;
    // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        anyhow::bail!(
            "setrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `wskctl echo`: see the module documentation.
///
/// Errors: the overlapped handle cannot be opened, OPEN_LISTEN failed, an ACCEPT failed
/// (after the connections already accepted were served), or the listener's CLOSE failed.
/// `Ok(ExitCode::FAILURE)` when a connection failed.
pub fn command(
    device: &dyn Device,
    args: &EchoArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    #[cfg(not(windows))]
    raise_nofile(args.clients as u64 + 256)?;
    let dev = device.open_overlapped().context("echo")?;
    let dev = &*dev;
    let lc = call(
        dev,
        Op::Listen,
        Operation::OpenListen.code(),
        OpenListenRequest::new(&args.local).as_bytes().to_vec(),
        vec![0u8; std::mem::size_of::<OpenListenResponse>()],
    )?;
    anyhow::ensure!(
        lc.status.status == STATUS_SUCCESS,
        "listen {}: {}",
        args.local,
        NtStatus(lc.status.status)
    );
    let r: OpenListenResponse =
        parse_response(lc.output.get(..lc.status.information).unwrap_or_default())
            .map_err(|e| anyhow!("listen {}: {e}", args.local))?;
    let local = r
        .local_address
        .to_socket_addr()
        .map_err(|e| anyhow!("listen {}: {e}", args.local))?;
    let baseline = device.kernel_counters();
    let threads = args.threads.max(1) as usize;
    let (tx, rx) = mpsc::channel();
    let server = Server {
        dev,
        clients: args.clients,
        buffer: args.buffer as usize,
        listener: r.handle,
        conns: (0..args.clients)
            .map(|_| Mutex::new(Conn::default()))
            .collect(),
        control: Mutex::new(Control {
            accepting: true,
            accepts_in_flight: args.clients.min(args.accepts),
            ..Control::default()
        }),
        bytes: AtomicU64::new(0),
        events: Mutex::new(tx),
        threads,
    };
    if !args.json {
        writeln!(
            out,
            "echo: listening on {local} for {} clients ({threads} threads)",
            args.clients
        )?;
        out.flush()?;
    }
    let start = Instant::now();
    let mut idle = None;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..args.clients.min(args.accepts) {
            server.submit_accept();
        }
        let mut workers = Vec::new();
        for i in 0..threads {
            let s = &server;
            workers.push(
                std::thread::Builder::new()
                    .name(format!("wskctl-echo-{i}"))
                    .spawn_scoped(scope, move || s.run())
                    .context("spawn a completion thread")?,
            );
        }
        // The events come from the completion threads; each wait is bounded, and a run
        // without clients simply waits for them (as a server does).
        loop {
            match rx.recv_timeout(POLL) {
                Ok(Event::AllConnected) => {
                    if let (Some(before), Some(after)) = (&baseline, device.kernel_counters()) {
                        idle = Some(IdlePool::between(before, &after, args.clients));
                    }
                    if !args.json {
                        writeln!(out, "echo: {} clients connected", args.clients)?;
                        if let Some(p) = &idle {
                            print_idle(p, out)?;
                        }
                        out.flush()?;
                    } else {
                        // The JSON goes to stdout at the end; a client that wants the idle
                        // figures to be taken before it sends waits for this line.
                        eprintln!("echo: {} clients connected", args.clients);
                    }
                }
                Ok(Event::Done) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        for w in workers {
            let _ = w.join();
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let control = std::mem::take(&mut *lock(&server.control));
    // The listener, unless a failed ACCEPT already closed it.
    let closed = if control.listener_closed {
        Ok(())
    } else {
        let c = call(
            dev,
            Op::CloseListener,
            Operation::Close.code(),
            CloseRequest::new(r.handle).as_bytes().to_vec(),
            Vec::new(),
        )?;
        if c.status.status == STATUS_SUCCESS {
            Ok(())
        } else {
            Err(anyhow!("close {local}: {}", NtStatus(c.status.status)))
        }
    };
    let mut failed = 0;
    for c in &server.conns {
        let c = lock(c);
        if let Some(e) = &c.error {
            failed += 1;
            let peer = c.remote.map_or("?".to_string(), |a| a.to_string());
            eprintln!("wskctl: echo {peer}: {e} (after {} bytes)", c.bytes);
        }
    }
    let bytes = server.bytes.load(Ordering::Relaxed);
    if args.json {
        let s = Summary {
            listen: local.to_string(),
            clients: args.clients,
            served: control.accepted,
            failed,
            bytes,
            threads,
            seconds,
            idle_pool: idle,
        };
        writeln!(out, "{}", serde_json::to_string(&s)?)?;
    } else {
        writeln!(
            out,
            "echo: served {} clients ({failed} failed), echoed {bytes} bytes on {local} in {seconds:.3} s",
            control.accepted,
        )?;
    }
    if let Some(e) = control.accept_error {
        return Err(anyhow!("{e}").context(format!("accept {local}")));
    }
    closed?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_idle(p: &IdlePool, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "echo: nonpaged memory per idle connection ({} connections, each with a RECEIVE in flight): ours {:.1} B = pool {:.1} B + {:.2} driver IRPs ({:.1} B) + socket object {:.0} B + table slot {:.0} B",
        p.connections,
        p.ours_bytes_per_connection,
        p.pool_bytes_per_connection,
        p.driver_irps_per_connection,
        p.driver_irp_bytes_per_connection,
        p.socket_object_bytes,
        p.table_slot_bytes
    )?;
    for (tag, bytes, blocks) in &p.pool_by_tag {
        writeln!(
            out,
            "echo:   pool tag {tag}: {bytes:.1} B in {blocks:.2} blocks per connection"
        )?;
    }
    writeln!(
        out,
        "echo:   the I/O manager's, not ours: {:.2} IRPs, {:.2} MDLs, {:.1} B of system buffers per connection",
        p.io_manager_irps_per_connection, p.mdls_per_connection, p.system_buffer_bytes_per_connection
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for op in [
            Op::Listen,
            Op::Accept,
            Op::Receive,
            Op::Send,
            Op::Close,
            Op::CloseListener,
            Op::Quit,
        ] {
            assert_eq!(Op::of(op.tag(12_345)), Some((op, 12_345)));
        }
        assert_eq!(Op::of(0), None);
    }

    #[test]
    fn idle_pool_is_the_difference_per_connection() {
        let before = KernelCounters {
            pool_bytes: 1000,
            pool_by_tag: vec![("A".into(), 1000, 1)],
            driver_irps: 1,
            io_manager_irps: 0,
            irp_bytes: 280,
            mdls: 0,
            system_buffer_bytes: 0,
            socket_object_bytes: 100,
            table_slot_bytes: 16,
        };
        let after = KernelCounters {
            pool_bytes: 5000,
            pool_by_tag: vec![("A".into(), 1000, 1), ("B".into(), 4000, 20)],
            driver_irps: 11,
            io_manager_irps: 10,
            irp_bytes: 280,
            mdls: 10,
            system_buffer_bytes: 160,
            socket_object_bytes: 100,
            table_slot_bytes: 16,
        };
        let p = IdlePool::between(&before, &after, 10);
        assert_eq!(p.pool_bytes_per_connection, 400.0);
        assert_eq!(p.pool_by_tag, vec![("B".to_string(), 400.0, 2.0)]);
        assert_eq!(p.driver_irp_bytes_per_connection, 280.0);
        assert_eq!(p.ours_bytes_per_connection, 796.0);
        assert_eq!(p.io_manager_irps_per_connection, 1.0);
    }
}
