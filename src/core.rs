//! The portable device core: per-file-object socket tables, IOCTL dispatch onto `wsk`, and
//! request completion from WSK completions. Both front-ends (WDM here, KMDF on Windows) sit
//! on this module unchanged: they hand it the decoded request and a [`Completion`] that
//! completes their own request object.
//!
//! IRQL: [`DeviceCore::device_control`] runs at PASSIVE_LEVEL (IRP_MJ_DEVICE_CONTROL of a
//! top-level driver); completions of sends run at IRQL <= DISPATCH_LEVEL and touch only
//! nonpaged state (atomics and the request).

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use core::time::Duration;

use windows_sys::Wdk::Foundation::MDL;
use windows_sys::Win32::Foundation::*;
use wsk::alloc::{try_push, KArc};
use wsk::sync::SpinLock;
mod names;
mod options;
mod transmit;

use wsk::{DatagramSocket, ListenSocket, MdlBuffer, NonPagedBuffer, StreamSocket, WskClient};
use wskclient_ioctl as ioctl;
use wskclient_ioctl::{
    parse_request, write_response, AcceptRequest, AcceptResponse, CloseRequest, ContractError,
    DisconnectRequest, InetAddress, OpenDatagramRequest, OpenDatagramResponse, OpenListenRequest,
    OpenListenResponse, OpenStreamRequest, OpenStreamResponse, Operation, QueryStatsRequest,
    ReceiveFromRequest, ReceiveFromResponse, ReceiveRequest, SendRequest, SendToRequest,
    SetRemoteRequest, SocketHandle, StatsResponse,
};

/// Most sockets one file object may hold (`wskclient_ioctl::MAX_SOCKETS_PER_FILE`).
pub const MAX_SOCKETS_PER_FILE: usize = ioctl::MAX_SOCKETS_PER_FILE as usize;
/// How long `OPEN_STREAM` waits for the connection before cancelling it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `DriverEntry` waits for the WSK provider NPI, in milliseconds.
pub const CAPTURE_WAIT_MS: u32 = 10_000;

/// Completes one request of a front-end exactly once: sets `IoStatus.Status` and
/// `IoStatus.Information` and completes it. Called at IRQL <= DISPATCH_LEVEL.
pub trait Completion: Send + 'static {
    /// Completes the request.
    fn complete(self, status: NTSTATUS, information: usize);
}

/// Pool tag of RECEIVE_FROM bounce buffers (`RWsk` in a pool dump).
pub const RECEIVE_FROM_TAG: u32 = u32::from_le_bytes(*b"RWsk");

/// The user data of a `METHOD_IN_DIRECT` / `METHOD_OUT_DIRECT` request: its MDL (locked by the
/// I/O manager for as long as the request is pending) and length.
#[derive(Clone, Copy)]
pub struct DataMdl {
    /// `Irp->MdlAddress`.
    pub mdl: NonNull<MDL>,
    /// `Parameters.DeviceIoControl.OutputBufferLength`.
    pub len: usize,
}

/// Device-wide counters (QUERY_STATS). Atomics: updated from completion routines.
#[derive(Default)]
pub struct Stats {
    bytes_sent: AtomicU64,
    sends: AtomicU64,
    datagrams_sent: AtomicU64,
    datagram_bytes_sent: AtomicU64,
    connects: AtomicU64,
    connect_fallbacks: AtomicU64,
    closes: AtomicU64,
    failed_requests: AtomicU64,
    cancelled_requests: AtomicU64,
    live_sockets: AtomicU32,
    pending_requests: AtomicU32,
    open_files: AtomicU32,
}

impl Stats {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn finished(&self, status: NTSTATUS) {
        if status == STATUS_CANCELLED {
            Self::add(&self.cancelled_requests, 1);
        } else if status < 0 {
            Self::add(&self.failed_requests, 1);
        }
    }

    /// The counters as the QUERY_STATS response.
    pub fn snapshot(&self) -> StatsResponse {
        let mut r = StatsResponse::new();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        r.bytes_sent = g(&self.bytes_sent);
        r.sends = g(&self.sends);
        r.datagrams_sent = g(&self.datagrams_sent);
        r.datagram_bytes_sent = g(&self.datagram_bytes_sent);
        r.connects = g(&self.connects);
        r.connect_fallbacks = g(&self.connect_fallbacks);
        r.closes = g(&self.closes);
        r.failed_requests = g(&self.failed_requests);
        r.cancelled_requests = g(&self.cancelled_requests);
        r.live_sockets = self.live_sockets.load(Ordering::Relaxed);
        r.pending_requests = self.pending_requests.load(Ordering::Relaxed);
        r.open_files = self.open_files.load(Ordering::Relaxed);
        r
    }
}

enum Socket {
    Stream(StreamSocket),
    Datagram(DatagramSocket),
    Listen(ListenSocket),
}

impl Socket {
    fn close(&self) {
        let _ = match self {
            Socket::Stream(s) => s.close(),
            Socket::Datagram(s) => s.close(),
            Socket::Listen(s) => s.close(),
        };
    }
}

/// The system buffer of a pending METHOD_BUFFERED request (ACCEPT, RECEIVE_FROM), written
/// when WSK completes. Valid until the request is completed, which only happens by
/// consuming the value that carries this one.
struct OutBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the system buffer is nonpaged kernel memory usable from any thread.
unsafe impl Send for OutBuf {}

impl OutBuf {
    fn new(output: &mut [u8]) -> Option<OutBuf> {
        NonNull::new(output.as_mut_ptr()).map(|ptr| OutBuf {
            ptr,
            len: output.len(),
        })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: by the contract of DeviceCore::device_control, the buffer stays valid and
        // ours until the request this value travels with is completed; `&mut self` makes the
        // slice unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// A file object's sockets: slots indexed by the handle's slot field. Vacant slots form a
/// free list (most recently vacated first), so insert, lookup and remove are O(1); the slot
/// vector grows (amortised doubling) only when no slot is vacant, up to
/// [`MAX_SOCKETS_PER_FILE`].
struct Table {
    slots: Vec<Slot>,
    /// First vacant slot, or [`NO_SLOT`].
    free: u32,
    /// Slots below this index are empty once the table is closed (cleanup's cursor).
    scan: usize,
    /// Set by IRP_MJ_CLEANUP: no more sockets may enter (an accept completing after it is
    /// refused and its socket closed).
    closed: bool,
}

/// End of the free list.
const NO_SLOT: u32 = u32::MAX;

/// Bytes of one table slot (16 on x64). The table grows by amortised doubling, so a table
/// of n sockets holds between n and 2n slots.
pub const TABLE_SLOT_BYTES: usize = core::mem::size_of::<Slot>();

/// Bytes of one socket object: the heap block behind a table slot's `KArc<Socket>` (its
/// reference count and the socket, whatever its kind). The driver's heap is nonpaged pool
/// on Windows (tag `WskA`, `src/rt.rs`); under ntsim it is the host's heap, which the pool
/// counters do not see, so `wskctl echo` adds this size to its figures.
pub const SOCKET_OBJECT_BYTES: usize =
    core::mem::size_of::<usize>() + core::mem::size_of::<Socket>();

/// One table slot: 16 bytes on x64.
struct Slot {
    generation: u32,
    /// Next vacant slot while this one is vacant, else [`NO_SLOT`].
    next_free: u32,
    socket: Option<KArc<Socket>>,
}

/// The per-file-object state (`FILE_OBJECT.FsContext`): its socket table. A handle opened
/// through one file object does not exist for another.
pub struct FileContext {
    table: KArc<SpinLock<Table>>,
}

impl FileContext {
    fn lookup(&self, handle: SocketHandle) -> Option<KArc<Socket>> {
        let slot = handle.slot()? as usize;
        let t = self.table.lock();
        let s = t.slots.get(slot)?;
        if s.generation != handle.generation() {
            return None;
        }
        s.socket.clone()
    }

    fn insert(&self, socket: Socket) -> Result<SocketHandle, NTSTATUS> {
        insert(&self.table, socket)
    }

    fn remove(&self, handle: SocketHandle) -> Option<KArc<Socket>> {
        let index = handle.slot()?;
        let mut t = self.table.lock();
        let free = t.free;
        let s = t.slots.get_mut(index as usize)?;
        if s.generation != handle.generation() {
            return None;
        }
        let socket = s.socket.take()?;
        s.next_free = free;
        t.free = index;
        Some(socket)
    }

    /// Marks the table closed and takes its next socket, or `None` when it is empty. One
    /// socket per call: no allocation under the spin lock, and cleanup cannot fail. Closed,
    /// the table takes no socket, so a cursor makes the whole cleanup one pass.
    fn take_next(&self) -> Option<KArc<Socket>> {
        let mut t = self.table.lock();
        t.closed = true;
        let start = t.scan;
        let found = t
            .slots
            .get_mut(start..)?
            .iter_mut()
            .enumerate()
            .find_map(|(i, s)| s.socket.take().map(|socket| (i, socket)));
        match found {
            Some((i, socket)) => {
                t.scan = start + i + 1;
                Some(socket)
            }
            None => {
                t.scan = t.slots.len();
                None
            }
        }
    }
}

/// Inserts `socket` into `table`; IRQL <= DISPATCH_LEVEL (the spin lock raises). Errors:
/// `STATUS_CANCELLED` after cleanup, `STATUS_TOO_MANY_OPENED_FILES` when full,
/// `STATUS_INSUFFICIENT_RESOURCES`. On error the socket is dropped, which closes it.
fn insert(table: &SpinLock<Table>, socket: Socket) -> Result<SocketHandle, NTSTATUS> {
    // Allocated before the spin lock is taken; on failure the socket is dropped (closed).
    let socket = KArc::try_new(socket)?;
    let mut t = table.lock();
    if t.closed {
        return Err(STATUS_CANCELLED);
    }
    let index = if t.free != NO_SLOT {
        let index = t.free;
        let slot = t.slots.get(index as usize).ok_or(STATUS_INTERNAL_ERROR)?;
        t.free = slot.next_free;
        index
    } else if t.slots.len() < MAX_SOCKETS_PER_FILE {
        try_push(
            &mut t.slots,
            Slot {
                generation: 0,
                next_free: NO_SLOT,
                socket: None,
            },
        )?;
        (t.slots.len() - 1) as u32
    } else {
        return Err(STATUS_TOO_MANY_OPENED_FILES);
    };
    let slot = t
        .slots
        .get_mut(index as usize)
        .ok_or(STATUS_INTERNAL_ERROR)?;
    slot.generation = SocketHandle::next_generation(slot.generation);
    slot.next_free = NO_SLOT;
    slot.socket = Some(socket);
    SocketHandle::new(index, slot.generation).ok_or(STATUS_INTERNAL_ERROR)
}

/// The device: the WSK client registration and the counters.
pub struct DeviceCore {
    client: WskClient,
    stats: KArc<Stats>,
}

/// The data buffer of a pending SEND/SEND_TO: the request's MDL, valid while the request is
/// pending, which this value owns until the WSK completion hands it back.
struct RequestData<C: Completion> {
    data: DataMdl,
    request: C,
}

// SAFETY: the MDL was locked by the I/O manager for the request this value owns; it stays
// valid until that request is completed, which only happens by consuming this value.
unsafe impl<C: Completion> MdlBuffer for RequestData<C> {
    fn mdl(&self) -> *mut MDL {
        self.data.mdl.as_ptr()
    }
    fn len(&self) -> usize {
        self.data.len
    }
}

// SAFETY: the MDL pointer is a kernel address usable from any thread; C is Send.
unsafe impl<C: Completion> Send for RequestData<C> {}

fn contract<T>(r: Result<T, ContractError>) -> Result<T, NTSTATUS> {
    r.map_err(|e| e.ntstatus())
}

fn addr(a: &InetAddress) -> Result<SocketAddr, NTSTATUS> {
    contract(a.to_socket_addr())
}

impl DeviceCore {
    /// Registers with WSK (bounded wait for the provider). PASSIVE_LEVEL.
    /// Errors: those of [`WskClient::register`].
    pub fn new() -> Result<DeviceCore, NTSTATUS> {
        let client = WskClient::register(CAPTURE_WAIT_MS).map_err(|e| e.status())?;
        let stats = KArc::try_new(Stats::default())?;
        Ok(DeviceCore { client, stats })
    }

    /// The WSK provider's dispatch version (`WSK_PROVIDER_DISPATCH.Version`, e.g. 0x0100),
    /// for the driver's load message.
    pub fn provider_version(&self) -> u16 {
        self.client.dispatch().Version
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// IRP_MJ_CREATE: a new file context. PASSIVE_LEVEL.
    pub fn open_file(&self) -> Result<FileContext, NTSTATUS> {
        let table = KArc::try_new(SpinLock::new(Table {
            slots: Vec::new(),
            free: NO_SLOT,
            scan: 0,
            closed: false,
        }))?;
        self.stats.open_files.fetch_add(1, Ordering::Relaxed);
        Ok(FileContext { table })
    }

    /// IRP_MJ_CLEANUP: closes every socket of the file object. `WskCloseSocket` first
    /// completes the sockets' pending operations with `STATUS_CANCELLED`, which completes
    /// the file object's pending SEND/SEND_TO requests. PASSIVE_LEVEL.
    pub fn cleanup_file(&self, file: &FileContext) {
        while let Some(s) = file.take_next() {
            s.close();
            self.stats.live_sockets.fetch_sub(1, Ordering::Relaxed);
            Stats::add(&self.stats.closes, 1);
        }
    }

    /// IRP_MJ_CLOSE: the file context goes away (after cleanup). PASSIVE_LEVEL.
    pub fn close_file(&self, file: FileContext) {
        self.cleanup_file(&file);
        self.stats.open_files.fetch_sub(1, Ordering::Relaxed);
    }

    /// IRP_MJ_DEVICE_CONTROL. `input` is the request's input buffer, `output` its output
    /// buffer (the system buffer for METHOD_BUFFERED; empty for the direct methods), `data`
    /// the MDL of a METHOD_IN_DIRECT / METHOD_OUT_DIRECT request. Completes `request` exactly
    /// once, possibly after returning (from a WSK completion, at IRQL <= DISPATCH_LEVEL).
    /// PASSIVE_LEVEL.
    ///
    /// The errors of every malformed request are those of `docs/ioctl.md`.
    ///
    /// # Safety
    /// `output` must stay valid, and be written by no one else, until `request` is completed:
    /// ACCEPT and RECEIVE_FROM pend and write their response into it from the WSK completion.
    /// The METHOD_BUFFERED system buffer (WDM) and the framework's output buffer (KMDF) are
    /// exactly that: they live until the request completes
    /// (<https://learn.microsoft.com/en-us/windows-hardware/drivers/kernel/buffer-descriptions-for-i-o-control-codes>).
    pub unsafe fn device_control<C: Completion>(
        &self,
        file: &FileContext,
        code: u32,
        input: &[u8],
        output: &mut [u8],
        data: Option<DataMdl>,
        request: C,
    ) {
        let Some(op) = Operation::from_code(code) else {
            self.stats.finished(STATUS_INVALID_DEVICE_REQUEST);
            return request.complete(STATUS_INVALID_DEVICE_REQUEST, 0);
        };
        let r = match op {
            Operation::Send => return self.send(file, input, data, request),
            Operation::SendTo => return self.send_to(file, input, data, request),
            Operation::Accept => return self.accept(file, input, output, request),
            Operation::Receive => return self.receive(file, input, data, request),
            Operation::ReceiveFrom => return self.receive_from(file, input, output, request),
            Operation::OpenListen => self.open_listen(file, input, output),
            Operation::Disconnect => return self.disconnect(file, input, request),
            Operation::OpenStream => self.open_stream(file, input, output),
            Operation::OpenDatagram => self.open_datagram(file, input, output),
            Operation::SetRemote => self.set_remote(file, input),
            Operation::Close => self.close(file, input),
            Operation::QueryStats => self.query_stats(input, output),
            Operation::TransmitFile => return self.transmit_file(file, input, output, request),
            Operation::TransmitPackets => {
                return self.transmit_packets(file, input, output, request)
            }
            Operation::SetOption => self.set_option(file, input),
            Operation::GetOption => self.get_option(file, input, output),
            Operation::ConnectWithData => self.connect_with_data(file, input, output),
            Operation::Resolve => self.resolve(input, output),
        };
        match r {
            Ok(info) => request.complete(STATUS_SUCCESS, info),
            Err(status) => {
                self.stats.finished(status);
                request.complete(status, 0)
            }
        }
    }

    fn open_stream(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        let req: OpenStreamRequest = contract(parse_request(input))?;
        let remote = addr(&req.remote_address)?;
        if output.len() < core::mem::size_of::<OpenStreamResponse>() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        if !req.local_address.is_unspecified() {
            // v1 binds WskSocketConnect to the wildcard address; a specific local address is
            // a later extension of the contract.
            return Err(STATUS_NOT_SUPPORTED);
        }
        let sock = StreamSocket::connect(&self.client, remote, Some(CONNECT_TIMEOUT))
            .map_err(|e| e.status())?;
        Stats::add(&self.stats.connects, 1);
        if sock.used_fallback() {
            Stats::add(&self.stats.connect_fallbacks, 1);
        }
        // A provider without WskGetLocalAddress / WskGetRemoteAddress (Wine 8.0) still gives a
        // usable socket: the response then carries AF_UNSPEC / the requested remote.
        let local = sock.local_address().ok();
        let remote = sock.remote_address().unwrap_or(remote);
        let handle = file.insert(Socket::Stream(sock))?;
        self.stats.live_sockets.fetch_add(1, Ordering::Relaxed);
        let resp = OpenStreamResponse::new(
            handle,
            InetAddress::from_optional(local.as_ref()),
            InetAddress::from_socket_addr(&remote),
        );
        contract(write_response(output, &resp))
    }

    fn open_datagram(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        let req: OpenDatagramRequest = contract(parse_request(input))?;
        let local = addr(&req.local_address)?;
        self.open_bound(file, output, local, OpenDatagramResponse::new, |c, l| {
            let s = DatagramSocket::bind(c, l)?;
            let bound = bound_address(l, s.local_address())?;
            Ok((Socket::Datagram(s), bound))
        })
    }

    /// Opens a bound socket with `open`, enters it in the file's table, and answers with its
    /// handle and bound address (OPEN_DATAGRAM, OPEN_LISTEN). PASSIVE_LEVEL.
    fn open_bound<R: wskclient_ioctl::Response>(
        &self,
        file: &FileContext,
        output: &mut [u8],
        local: SocketAddr,
        respond: fn(SocketHandle, InetAddress) -> R,
        open: impl FnOnce(&WskClient, SocketAddr) -> wsk::Result<(Socket, SocketAddr)>,
    ) -> Result<usize, NTSTATUS> {
        if output.len() < core::mem::size_of::<R>() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        let (sock, bound) = open(&self.client, local).map_err(|e| e.status())?;
        let handle = file.insert(sock)?;
        self.stats.live_sockets.fetch_add(1, Ordering::Relaxed);
        contract(write_response(
            output,
            &respond(handle, InetAddress::from_socket_addr(&bound)),
        ))
    }

    fn set_remote(&self, file: &FileContext, input: &[u8]) -> Result<usize, NTSTATUS> {
        let req: SetRemoteRequest = contract(parse_request(input))?;
        let remote = contract(req.remote_address.to_optional())?;
        let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
        let Socket::Datagram(d) = &*s else {
            return Err(STATUS_NOT_SUPPORTED);
        };
        match remote {
            Some(a) => d.set_remote(a).map_err(|e| e.status())?,
            // SIO_WSK_UNSET_REMOTE_ADDRESS is not part of v1 of the provider emulation.
            None => return Err(STATUS_NOT_SUPPORTED),
        }
        Ok(0)
    }

    fn close(&self, file: &FileContext, input: &[u8]) -> Result<usize, NTSTATUS> {
        let req: CloseRequest = contract(parse_request(input))?;
        let s = file.remove(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
        s.close();
        self.stats.live_sockets.fetch_sub(1, Ordering::Relaxed);
        Stats::add(&self.stats.closes, 1);
        Ok(0)
    }

    fn query_stats(&self, input: &[u8], output: &mut [u8]) -> Result<usize, NTSTATUS> {
        let _req: QueryStatsRequest = contract(parse_request(input))?;
        contract(write_response(output, &self.stats.snapshot()))
    }

    fn data_for(op: Operation, data: Option<DataMdl>) -> Result<DataMdl, NTSTATUS> {
        let d = data.ok_or(ContractError::MissingDataBuffer.ntstatus())?;
        contract(ioctl::check_data_length(op, d.len))?;
        Ok(d)
    }

    /// The WSK completion of a SEND or SEND_TO: counts bytes and operations in the counters
    /// `counters` picks, and completes the request with the byte count or the status.
    fn data_sent<C: Completion>(
        stats: KArc<Stats>,
        counters: fn(&Stats) -> (&AtomicU64, &AtomicU64),
    ) -> impl FnOnce(wsk::Result<usize>, RequestData<C>) + Send + 'static {
        stats.pending_requests.fetch_add(1, Ordering::Relaxed);
        move |result, rd| {
            stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            match result {
                Ok(n) => {
                    let (bytes, ops) = counters(&stats);
                    Stats::add(bytes, n as u64);
                    Stats::add(ops, 1);
                    rd.request.complete(STATUS_SUCCESS, n)
                }
                Err(e) => {
                    stats.finished(e.status());
                    rd.request.complete(e.status(), 0)
                }
            }
        }
    }

    /// A data operation that WSK never started: its completion will not run.
    fn not_started<C: Completion>(&self, started: Result<(), (wsk::Error, RequestData<C>)>) {
        if let Err((e, rd)) = started {
            self.stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            self.fail(rd.request, e.status());
        }
    }

    fn send<C: Completion>(
        &self,
        file: &FileContext,
        input: &[u8],
        data: Option<DataMdl>,
        request: C,
    ) {
        let r = (|| {
            let req: SendRequest = contract(parse_request(input))?;
            let data = Self::data_for(Operation::Send, data)?;
            let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
            Ok((s, data))
        })();
        let (s, data) = match r {
            Ok(v) => v,
            Err(status) => return self.fail(request, status),
        };
        let Socket::Stream(sock) = &*s else {
            return self.fail(request, STATUS_NOT_SUPPORTED);
        };
        let done = Self::data_sent(self.stats.clone(), |s| (&s.bytes_sent, &s.sends));
        // Zero copy: WskSend reads the user's pages through the request's own MDL.
        let len = data.len;
        self.not_started(sock.send_async(RequestData { data, request }, 0, len, done));
    }

    fn send_to<C: Completion>(
        &self,
        file: &FileContext,
        input: &[u8],
        data: Option<DataMdl>,
        request: C,
    ) {
        let r = (|| {
            let req: SendToRequest = contract(parse_request(input))?;
            let to = contract(req.remote_address.to_optional())?;
            let data = Self::data_for(Operation::SendTo, data)?;
            let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
            Ok((s, to, data))
        })();
        let (s, to, data) = match r {
            Ok(v) => v,
            Err(status) => return self.fail(request, status),
        };
        let Socket::Datagram(sock) = &*s else {
            return self.fail(request, STATUS_NOT_SUPPORTED);
        };
        let done = Self::data_sent(self.stats.clone(), |s| {
            (&s.datagram_bytes_sent, &s.datagrams_sent)
        });
        let len = data.len;
        self.not_started(sock.send_to_async(RequestData { data, request }, 0, len, to, done));
    }
}

impl DeviceCore {
    /// Aborts the socket behind `handle` of `file`: removes it from the table and drops it;
    /// the last reference closes it (without waiting, above PASSIVE_LEVEL), and WSK then
    /// completes its pending IRPs with STATUS_CANCELLED, which completes their requests.
    /// Used when a pending request is cancelled (our choice: the WSK IRP cannot be cancelled
    /// individually yet; see docs/ioctl.md, "Cancellation"). IRQL <= DISPATCH_LEVEL.
    pub fn abort_socket(&self, file: &FileContext, handle: SocketHandle) {
        if let Some(s) = file.remove(handle) {
            self.stats.live_sockets.fetch_sub(1, Ordering::Relaxed);
            Stats::add(&self.stats.closes, 1);
            drop(s);
        }
    }
}

/// The server-side and receive operations: OPEN_LISTEN, ACCEPT, RECEIVE, DISCONNECT,
/// RECEIVE_FROM (docs/ioctl.md).
impl DeviceCore {
    /// Completes `request` with a failure status, counted in the stats.
    fn fail<C: Completion>(&self, request: C, status: NTSTATUS) {
        self.stats.finished(status);
        request.complete(status, 0)
    }

    fn open_listen(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        let req: OpenListenRequest = contract(parse_request(input))?;
        let local = addr(&req.local_address)?;
        self.open_bound(file, output, local, OpenListenResponse::new, |c, l| {
            let s = ListenSocket::bind(c, l)?;
            let bound = bound_address(l, s.local_address())?;
            Ok((Socket::Listen(s), bound))
        })
    }

    /// ACCEPT: `WskAccept` without waiting; the WSK completion inserts the new socket into the
    /// file's table, writes the response into the system buffer and completes the request.
    /// Closing the listening handle (CLOSE or cleanup) makes WSK complete the accept with
    /// `STATUS_CANCELLED`, which completes the request with it.
    fn accept<C: Completion>(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
        request: C,
    ) {
        let r = (|| {
            let req: AcceptRequest = contract(parse_request(input))?;
            if output.len() < core::mem::size_of::<AcceptResponse>() {
                return Err(STATUS_BUFFER_TOO_SMALL);
            }
            let out = OutBuf::new(output).ok_or(STATUS_BUFFER_TOO_SMALL)?;
            let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
            Ok((s, out))
        })();
        let (s, mut out) = match r {
            Ok(v) => v,
            Err(status) => return self.fail(request, status),
        };
        let Socket::Listen(listener) = &*s else {
            return self.fail(request, STATUS_NOT_SUPPORTED);
        };
        // The request is completed by exactly one of: the completion below, or the failure
        // path after it when the accept never started. A SpinLock<Option<C>> hands it over;
        // it is allocated empty, so that on failure the request is still ours to fail.
        let slot = match KArc::try_new(SpinLock::new(None)) {
            Ok(slot) => slot,
            Err(e) => return self.fail(request, e.into()),
        };
        *slot.lock() = Some(request);
        let stats = self.stats.clone();
        let table = file.table.clone();
        stats.pending_requests.fetch_add(1, Ordering::Relaxed);
        let in_done = slot.clone();
        let started = listener.accept_async(move |result| {
            stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            let Some(request) = in_done.lock().take() else {
                return;
            };
            let r = result.map_err(|e| e.status()).and_then(|a| {
                let local = InetAddress::from_socket_addr(&a.local);
                let remote = InetAddress::from_socket_addr(&a.remote);
                let handle = insert(&table, Socket::Stream(a.socket))?;
                stats.live_sockets.fetch_add(1, Ordering::Relaxed);
                contract(write_response(
                    out.as_mut_slice(),
                    &AcceptResponse::new(handle, local, remote),
                ))
            });
            match r {
                Ok(n) => request.complete(STATUS_SUCCESS, n),
                Err(status) => {
                    stats.finished(status);
                    request.complete(status, 0)
                }
            }
        });
        if let Err(e) = started {
            self.stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            if let Some(request) = slot.lock().take() {
                self.fail(request, e.status());
            }
        }
    }

    /// RECEIVE: `WskReceive` straight into the request's MDL (METHOD_OUT_DIRECT, no copy).
    fn receive<C: Completion>(
        &self,
        file: &FileContext,
        input: &[u8],
        data: Option<DataMdl>,
        request: C,
    ) {
        let r = (|| {
            let req: ReceiveRequest = contract(parse_request(input))?;
            let data = Self::data_for(Operation::Receive, data)?;
            let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
            Ok((s, data))
        })();
        let (s, data) = match r {
            Ok(v) => v,
            Err(status) => return self.fail(request, status),
        };
        let Socket::Stream(sock) = &*s else {
            return self.fail(request, STATUS_NOT_SUPPORTED);
        };
        let stats = self.stats.clone();
        stats.pending_requests.fetch_add(1, Ordering::Relaxed);
        let len = data.len;
        let started = sock.receive_async(
            RequestData { data, request },
            0,
            len,
            false,
            move |result, rd| {
                stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
                match result {
                    Ok(n) => rd.request.complete(STATUS_SUCCESS, n),
                    Err(e) => {
                        stats.finished(e.status());
                        rd.request.complete(e.status(), 0)
                    }
                }
            },
        );
        if let Err((e, rd)) = started {
            self.stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            self.fail(rd.request, e.status());
        }
    }

    /// RECEIVE_FROM: `WskReceiveFrom` into a nonpaged bounce buffer, then the datagram is
    /// copied after the 40-byte response in the system buffer (METHOD_BUFFERED: the sender's
    /// address travels with the data in one request).
    fn receive_from<C: Completion>(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
        request: C,
    ) {
        let r = (|| {
            let req: ReceiveFromRequest = contract(parse_request(input))?;
            let room = output.len().saturating_sub(ReceiveFromResponse::SIZE);
            if room == 0 {
                return Err(STATUS_BUFFER_TOO_SMALL);
            }
            let out = OutBuf::new(output).ok_or(STATUS_BUFFER_TOO_SMALL)?;
            let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
            let buf =
                NonPagedBuffer::new(room.min(ioctl::MAX_RECEIVE_FROM_BYTES), RECEIVE_FROM_TAG)
                    .map_err(|e| e.status())?;
            Ok((s, out, buf))
        })();
        let (s, mut out, buf) = match r {
            Ok(v) => v,
            Err(status) => return self.fail(request, status),
        };
        let Socket::Datagram(sock) = &*s else {
            return self.fail(request, STATUS_NOT_SUPPORTED);
        };
        // Allocated empty, so that on failure the request is still ours to fail.
        let slot = match KArc::try_new(SpinLock::new(None)) {
            Ok(slot) => slot,
            Err(e) => return self.fail(request, e.into()),
        };
        *slot.lock() = Some(request);
        let stats = self.stats.clone();
        stats.pending_requests.fetch_add(1, Ordering::Relaxed);
        let len = buf.len();
        let in_done = slot.clone();
        let started = sock.receive_from_async(buf, 0, len, move |result, buf| {
            stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            let Some(request) = in_done.lock().take() else {
                return;
            };
            let r = result.map_err(|e| e.status()).and_then(|(n, from)| {
                let o = out.as_mut_slice();
                let dst = o
                    .get_mut(ReceiveFromResponse::SIZE..ReceiveFromResponse::SIZE + n)
                    .ok_or(STATUS_BUFFER_OVERFLOW)?;
                dst.copy_from_slice(buf.as_slice().get(..n).ok_or(STATUS_BUFFER_OVERFLOW)?);
                let resp = ReceiveFromResponse::new(InetAddress::from_socket_addr(&from), n as u32);
                contract(write_response(o, &resp)).map(|h| h + n)
            });
            drop(buf);
            match r {
                Ok(n) => request.complete(STATUS_SUCCESS, n),
                Err(status) => {
                    stats.finished(status);
                    request.complete(status, 0)
                }
            }
        });
        if let Err((e, _buf)) = started {
            self.stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            if let Some(request) = slot.lock().take() {
                self.fail(request, e.status());
            }
        }
    }

    /// DISCONNECT: `WskDisconnect`. Graceful: started without waiting; the WSK completion
    /// completes the request, which therefore pends while queued sends drain (a peer that
    /// never reads keeps it pending) and is cancelable like any other (its cancel routine
    /// aborts the socket, and WskCloseSocket completes the disconnect). Abortive: waits, at
    /// PASSIVE_LEVEL (a reset does not wait for the peer).
    fn disconnect<C: Completion>(&self, file: &FileContext, input: &[u8], request: C) {
        let r = (|| {
            let req: DisconnectRequest = contract(parse_request(input))?;
            let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
            Ok((req, s))
        })();
        let (req, s) = match r {
            Ok(v) => v,
            Err(status) => return self.fail(request, status),
        };
        let Socket::Stream(sock) = &*s else {
            return self.fail(request, STATUS_NOT_SUPPORTED);
        };
        if req.is_abortive() {
            return match sock.abort() {
                Ok(()) => request.complete(STATUS_SUCCESS, 0),
                Err(e) => self.fail(request, e.status()),
            };
        }
        // Exactly one of the completion and the failure path below completes the request;
        // the slot is allocated empty, so that on failure the request is still ours to fail.
        let slot = match KArc::try_new(SpinLock::new(None)) {
            Ok(slot) => slot,
            Err(e) => return self.fail(request, e.into()),
        };
        *slot.lock() = Some(request);
        let stats = self.stats.clone();
        stats.pending_requests.fetch_add(1, Ordering::Relaxed);
        let in_done = slot.clone();
        let started = sock.disconnect_async(move |result| {
            stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            let Some(request) = in_done.lock().take() else {
                return;
            };
            match result {
                Ok(()) => request.complete(STATUS_SUCCESS, 0),
                Err(e) => {
                    stats.finished(e.status());
                    request.complete(e.status(), 0)
                }
            }
        });
        if let Err(e) = started {
            self.stats.pending_requests.fetch_sub(1, Ordering::Relaxed);
            if let Some(request) = slot.lock().take() {
                self.fail(request, e.status());
            }
        }
    }
}

/// The address a socket bound to `asked` reports (OPEN_DATAGRAM, OPEN_LISTEN): `got`, the
/// provider's `WskGetLocalAddress` answer; or, when the provider lacks that routine (a NULL
/// dispatch entry, or a refusal with `STATUS_NOT_IMPLEMENTED` as Wine 8.0's netio.sys
/// stub gives), `asked` itself if it names a port. With port 0 the port the provider picked
/// cannot be learned, and a socket whose port nobody knows is of no use to the caller:
/// `STATUS_NOT_SUPPORTED` (docs/ioctl.md, OPEN_LISTEN). Other errors pass through.
/// PASSIVE_LEVEL (no IRQL requirement of its own).
fn bound_address(asked: SocketAddr, got: wsk::Result<SocketAddr>) -> wsk::Result<SocketAddr> {
    match got {
        Err(wsk::Error::NotImplemented) if asked.port() != 0 => Ok(asked),
        Err(wsk::Error::NotImplemented) => Err(wsk::Error::Status(STATUS_NOT_SUPPORTED)),
        other => other,
    }
}
