//! The portable device core: per-file-object socket tables, IOCTL dispatch onto `wsk`, and
//! request completion from WSK completions. Both front-ends (WDM here, KMDF on Windows) sit
//! on this module unchanged: they hand it the decoded request and a [`Completion`] that
//! completes their own request object.
//!
//! IRQL: [`DeviceCore::device_control`] runs at PASSIVE_LEVEL (IRP_MJ_DEVICE_CONTROL of a
//! top-level driver); completions of sends run at IRQL <= DISPATCH_LEVEL and touch only
//! nonpaged state (atomics and the request).

use alloc::vec::Vec;
use core::marker::PhantomData;
use core::net::SocketAddr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
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

/// The input buffer of an IOCTL as a front-end hands it to the core: a pointer and a length,
/// not a reference, because the core may complete the request while this value is still an
/// argument of its frames, and completing a METHOD_IN_DIRECT / METHOD_OUT_DIRECT request frees
/// the system buffer an in-place input points into (the I/O manager frees it when it
/// completes the IRP). The bytes are lent out only for parsing, never across a completion.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// Dangling (but non-null and aligned) when `len` is 0.
    ptr: NonNull<u8>,
    len: usize,
    /// The buffer lives for all of `'a` (a copy the front-end owns), not only until completion.
    whole_call: bool,
    _buffer: PhantomData<&'a [u8]>,
}

impl<'a> Input<'a> {
    /// An input the caller owns for the whole `device_control*` call (a stack or pool copy):
    /// any operation may use it.
    pub fn copied(bytes: &'a [u8]) -> Input<'a> {
        Input {
            ptr: NonNull::from(bytes).cast(),
            len: bytes.len(),
            whole_call: true,
            _buffer: PhantomData,
        }
    }

    /// An input parsed in place: `len` bytes at `ptr` (the system buffer of a
    /// METHOD_IN_DIRECT / METHOD_OUT_DIRECT request), which only SEND, SEND_TO and RECEIVE
    /// read, before they complete the request.
    ///
    /// # Safety
    /// `ptr` is valid for reads of `len` bytes (or `len` is 0), and nobody writes them, until
    /// the request this input belongs to is completed.
    pub unsafe fn in_place(ptr: *const u8, len: usize) -> Input<'a> {
        let ptr = match NonNull::new(ptr.cast_mut()) {
            Some(p) if len > 0 => p,
            _ => return Input::copied(&[]),
        };
        Input {
            ptr,
            len,
            whole_call: false,
            _buffer: PhantomData,
        }
    }

    /// The bytes, for a parse that ends before the request is completed.
    #[inline(always)]
    fn bytes_for_parse(&self) -> &[u8] {
        // SAFETY: by the constructors, `len` readable, unwritten bytes at the non-null `ptr`
        // (dangling only for 0 bytes) until the request completes; the slice is used only by
        // the caller's parse, before it completes the request.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes for the whole call, if the front-end owns them for that long ([`copied`]).
    ///
    /// [`copied`]: Input::copied
    fn whole_call(&self) -> Option<&'a [u8]> {
        // SAFETY: with `whole_call`, built by `copied` from a `&'a [u8]` of exactly these
        // bytes (or empty and dangling).
        self.whole_call
            .then(|| unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) })
    }

    /// Parses request `T` from the bytes (`parse_request`), the reference confined to it.
    #[inline(always)]
    fn parse<T: wskclient_ioctl::Request>(&self) -> Result<T, NTSTATUS> {
        contract(parse_request(self.bytes_for_parse()))
    }
}

/// Size and alignment of one shard of the counters, in bytes: 128. Two 64-byte lines, not
/// one, because x86-64 processors fetch lines in adjacent pairs (Intel's spatial prefetcher,
/// "Intel 64 and IA-32 Architectures Optimization Reference Manual", L2 streamer and
/// adjacent-line prefetch), so counters 64 bytes apart can still bounce between processors;
/// 128 is also the line size of some ARM64 parts. crossbeam's `CachePadded` pads to 128 on
/// x86-64 and aarch64 for the same reasons.
pub const SHARD_ALIGN: usize = 128;
/// Most shards the counters have: processors beyond it share shards (the index masked to the
/// count), which keeps the block at most 8 KiB on machines with thousands of processors.
pub const MAX_STATS_SHARDS: usize = 64;
/// `ALL_PROCESSOR_GROUPS` (wdm.h): every processor group.
const ALL_PROCESSOR_GROUPS: u16 = 0xFFFF;
const SHARD_WORDS: usize = SHARD_ALIGN / core::mem::size_of::<AtomicU64>();

/// One processor's share of the counters (QUERY_STATS): 12 of the 16 words of a 128-byte,
/// 128-aligned block that no other shard shares ([`SHARD_ALIGN`]). Every counter is a wrapping
/// `u64`: a gauge (live sockets, pending requests, open files) may be raised on one processor
/// and lowered on another, so one shard alone may hold "-1"; the wrapping sum over all shards
/// is the exact value.
#[repr(C, align(128))]
pub struct Shard {
    bytes_sent: AtomicU64,
    sends: AtomicU64,
    datagrams_sent: AtomicU64,
    datagram_bytes_sent: AtomicU64,
    connects: AtomicU64,
    connect_fallbacks: AtomicU64,
    closes: AtomicU64,
    failed_requests: AtomicU64,
    cancelled_requests: AtomicU64,
    live_sockets: AtomicU64,
    pending_requests: AtomicU64,
    open_files: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Shard>() == SHARD_ALIGN);
const _: () = assert!(core::mem::align_of::<Shard>() == SHARD_ALIGN);

/// The device's counters (QUERY_STATS), sharded per processor so that the request path and
/// completion routines of different processors never write the same cache line. Nonpaged:
/// updated at IRQL <= DISPATCH_LEVEL from completion routines.
///
/// The shards live in a `Vec<AtomicU64>` of `(count + 1) * 16` words allocated at
/// DriverEntry, and start at its first 128-aligned word: the kernel heaps do not serve
/// alignments above 16 (the WDM build's allocator fails them, wdk-alloc ignores them), so the
/// block is over-allocated by one shard and aligned by hand.
pub struct Stats {
    /// Owns the shards' memory; never resized, so [`Stats::counters`] stays valid.
    _words: Vec<AtomicU64>,
    counters: Counters,
}

/// A copyable handle to the shards of a [`Stats`]: what completion routines capture instead
/// of a reference count on the counters (no atomic clone/drop per request).
///
/// Lifetime: valid while its [`Stats`] lives, that is while the [`DeviceCore`] does, which is
/// dropped only by DriverUnload / EvtDriverUnload (or a failed DriverEntry, before any
/// request). A completion routine touches the counters only before it completes its request,
/// and a pending request keeps its file object open; the device is unloaded only after every
/// file object is closed (IRP_MJ_CLOSE / EvtFileClose ran for each, "DriverUnload routine"
/// and "Using Control Device Objects", learn.microsoft.com: paper only, the premise
/// src/wdm.rs's and src/kmdf.rs's unload routines already rest on). So every use of a
/// `Counters` happens before the [`Stats`] it points to is dropped.
#[derive(Clone, Copy)]
pub struct Counters {
    first: NonNull<Shard>,
    /// The shard count minus one (the count is a power of two): a processor index masked
    /// with it is a shard index.
    mask: usize,
}

// SAFETY: the shards are atomics in nonpaged memory, usable from any thread; their lifetime is
// the argument above.
unsafe impl Send for Counters {}
// SAFETY: as above; every access is atomic.
unsafe impl Sync for Counters {}

impl Stats {
    /// Counters with `shards` shards (clamped to 1..=[`MAX_STATS_SHARDS`], rounded up to a
    /// power of two), all zero. IRQL <=
    /// DISPATCH_LEVEL. Errors: `STATUS_INSUFFICIENT_RESOURCES` (the allocation),
    /// `STATUS_INTERNAL_ERROR` (no 128-aligned start in the block: cannot happen, the heap
    /// aligns to 8 at least).
    pub fn new(shards: usize) -> Result<Stats, NTSTATUS> {
        // A power of two, so a processor index maps to its shard with a mask, not a division.
        let count = shards.clamp(1, MAX_STATS_SHARDS).next_power_of_two();
        let len = (count + 1) * SHARD_WORDS;
        let mut words: Vec<AtomicU64> = wsk::alloc::try_with_capacity(len)?;
        for _ in 0..len {
            // Within the capacity just reserved: no allocation.
            try_push(&mut words, AtomicU64::new(0))?;
        }
        let base = words.as_ptr();
        let skip = base.align_offset(SHARD_ALIGN);
        if skip >= SHARD_WORDS {
            return Err(STATUS_INTERNAL_ERROR);
        }
        // `skip < 16` words, so `count` shards of 16 words from there end within the block.
        let first = NonNull::new(base.wrapping_add(skip).cast_mut())
            .ok_or(STATUS_INTERNAL_ERROR)?
            .cast::<Shard>();
        Ok(Stats {
            _words: words,
            counters: Counters {
                first,
                mask: count - 1,
            },
        })
    }

    /// The handle completion routines keep (see [`Counters`] for its lifetime).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The counters as the QUERY_STATS response: each the wrapping sum of its shards.
    pub fn snapshot(&self) -> StatsResponse {
        self.counters.snapshot()
    }

    /// How many shards the counters have.
    pub fn shard_count(&self) -> usize {
        self.counters.count()
    }

    /// The address of shard `index` (`None` past the last), for layout checks.
    pub fn shard_address(&self, index: usize) -> Option<usize> {
        (index < self.counters.count()).then(|| self.counters.shard(index) as *const Shard as usize)
    }
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(c: &AtomicU64, n: u64) {
        c.fetch_sub(n, Ordering::Relaxed);
    }

    /// How many shards there are (a power of two).
    fn count(&self) -> usize {
        self.mask + 1
    }

    /// Shard `index` modulo the count (a power of two).
    fn shard(&self, index: usize) -> &Shard {
        // SAFETY: the count is a power of two >= 1 and `mask` is the count - 1, so
        // `index & mask < count`, and `first` points to `count` initialised, 128-aligned
        // shards inside the block its Stats owns, alive for every use of this handle (the
        // lifetime argument on [`Counters`]). Shared references to atomics only.
        unsafe { &*self.first.as_ptr().add(index & self.mask) }
    }

    /// The shard of the current processor (`KeGetCurrentProcessorNumberEx`, any IRQL). A
    /// thread below DISPATCH_LEVEL may move to another processor right after: harmless, the
    /// counters are atomic and only their sum means anything.
    fn here(&self) -> &Shard {
        // SAFETY: NULL is allowed for the PROCESSOR_NUMBER out pointer; callable at any IRQL.
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-kegetcurrentprocessornumberex
        let cpu = unsafe {
            windows_sys::Wdk::System::SystemServices::KeGetCurrentProcessorNumberEx(
                core::ptr::null_mut(),
            )
        };
        self.shard(cpu as usize)
    }

    fn finished(&self, status: NTSTATUS) {
        if status == STATUS_CANCELLED {
            Self::add(&self.here().cancelled_requests, 1);
        } else if status < 0 {
            Self::add(&self.here().failed_requests, 1);
        }
    }

    fn sum(&self, counter: fn(&Shard) -> &AtomicU64) -> u64 {
        (0..self.count()).fold(0u64, |t, i| {
            t.wrapping_add(counter(self.shard(i)).load(Ordering::Relaxed))
        })
    }

    fn snapshot(&self) -> StatsResponse {
        let mut r = StatsResponse::new();
        r.bytes_sent = self.sum(|s| &s.bytes_sent);
        r.sends = self.sum(|s| &s.sends);
        r.datagrams_sent = self.sum(|s| &s.datagrams_sent);
        r.datagram_bytes_sent = self.sum(|s| &s.datagram_bytes_sent);
        r.connects = self.sum(|s| &s.connects);
        r.connect_fallbacks = self.sum(|s| &s.connect_fallbacks);
        r.closes = self.sum(|s| &s.closes);
        r.failed_requests = self.sum(|s| &s.failed_requests);
        r.cancelled_requests = self.sum(|s| &s.cancelled_requests);
        // Gauges: the wrapping sum is the exact count, which fits the response's u32.
        r.live_sockets = self.sum(|s| &s.live_sockets) as u32;
        r.pending_requests = self.sum(|s| &s.pending_requests) as u32;
        r.open_files = self.sum(|s| &s.open_files) as u32;
        r
    }

    /// One socket more in the tables.
    fn socket_opened(&self) {
        Self::add(&self.here().live_sockets, 1);
    }

    /// One socket closed and removed from its table.
    fn socket_closed(&self) {
        let s = self.here();
        Self::sub(&s.live_sockets, 1);
        Self::add(&s.closes, 1);
    }

    /// A request handed to WSK (or a work item) and not completed yet.
    fn request_pending(&self) {
        Self::add(&self.here().pending_requests, 1);
    }

    /// A pending request's operation finished (or never started).
    fn request_done(&self) {
        Self::sub(&self.here().pending_requests, 1);
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
    /// The socket of `handle`, a reference taken under the table's spin lock (IRQL <=
    /// DISPATCH_LEVEL). Inlined: the forwarded SEND/RECEIVE path is mostly this.
    #[inline(always)]
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
    /// Owns the counters' shards; dropped with the core, at unload.
    stats_block: Stats,
    /// The handle to `stats_block`'s shards that every path and completion uses.
    stats: Counters,
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

#[inline(always)]
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
        // One shard per processor the system can have: `KeQueryMaximumProcessorCountEx`
        // (any IRQL) counts hot-addable ones too, so every `KeGetCurrentProcessorNumberEx`
        // index has its own shard (up to MAX_STATS_SHARDS).
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-kequerymaximumprocessorcountex
        // SAFETY: no arguments but the group selector; callable at any IRQL.
        let cpus = unsafe {
            windows_sys::Wdk::System::SystemServices::KeQueryMaximumProcessorCountEx(
                ALL_PROCESSOR_GROUPS,
            )
        };
        let stats_block = Stats::new(cpus as usize)?;
        let stats = stats_block.counters();
        Ok(DeviceCore {
            client,
            stats_block,
            stats,
        })
    }

    /// The WSK provider's dispatch version (`WSK_PROVIDER_DISPATCH.Version`, e.g. 0x0100),
    /// for the driver's load message.
    pub fn provider_version(&self) -> u16 {
        self.client.dispatch().Version
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats_block
    }

    /// IRP_MJ_CREATE: a new file context. PASSIVE_LEVEL.
    pub fn open_file(&self) -> Result<FileContext, NTSTATUS> {
        let table = KArc::try_new(SpinLock::new(Table {
            slots: Vec::new(),
            free: NO_SLOT,
            scan: 0,
            closed: false,
        }))?;
        Counters::add(&self.stats.here().open_files, 1);
        Ok(FileContext { table })
    }

    /// IRP_MJ_CLEANUP: closes every socket of the file object. `WskCloseSocket` first
    /// completes the sockets' pending operations with `STATUS_CANCELLED`, which completes
    /// the file object's pending SEND/SEND_TO requests. PASSIVE_LEVEL.
    pub fn cleanup_file(&self, file: &FileContext) {
        while let Some(s) = file.take_next() {
            s.close();
            self.stats.socket_closed();
        }
    }

    /// IRP_MJ_CLOSE: the file context goes away (after cleanup). PASSIVE_LEVEL.
    pub fn close_file(&self, file: FileContext) {
        self.cleanup_file(&file);
        Counters::sub(&self.stats.here().open_files, 1);
    }

    /// IRP_MJ_DEVICE_CONTROL of the operation `op` (the front-end decoded the IOCTL code
    /// once, with [`Operation::from_code`]; `None`, an unknown code, completes with
    /// `STATUS_INVALID_DEVICE_REQUEST`). `input` is the request's input buffer ([`Input`]: in
    /// place for SEND, SEND_TO and RECEIVE, a copy for the rest; any other operation given an
    /// in-place input completes with `STATUS_INVALID_DEVICE_REQUEST`), `output` its output
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
        op: Option<Operation>,
        input: Input<'_>,
        output: &mut [u8],
        data: Option<DataMdl>,
        request: C,
    ) {
        let Some(op) = op else {
            self.stats.finished(STATUS_INVALID_DEVICE_REQUEST);
            return request.complete(STATUS_INVALID_DEVICE_REQUEST, 0);
        };
        // The data operations parse in place (an in-place input may go away when they
        // complete); every other operation gets the front-end's copy, alive for this call.
        match op {
            Operation::Send => return self.send(file, input, data, request),
            Operation::SendTo => return self.send_to(file, input, data, request),
            Operation::Receive => return self.receive(file, input, data, request),
            _ => {}
        }
        let Some(input) = input.whole_call() else {
            // A front-end handed an in-place input to an operation that reads it after
            // completing: refused (both front-ends copy every METHOD_BUFFERED input).
            return self.fail(request, STATUS_INVALID_DEVICE_REQUEST);
        };
        let r = match op {
            Operation::Send | Operation::SendTo | Operation::Receive => {
                return self.fail(request, STATUS_INTERNAL_ERROR)
            }
            Operation::Accept => return self.accept(file, input, output, request),
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
        Counters::add(&self.stats.here().connects, 1);
        if sock.used_fallback() {
            Counters::add(&self.stats.here().connect_fallbacks, 1);
        }
        // A provider without WskGetLocalAddress / WskGetRemoteAddress (Wine 8.0) still gives a
        // usable socket: the response then carries AF_UNSPEC / the requested remote.
        let local = sock.local_address().ok();
        let remote = sock.remote_address().unwrap_or(remote);
        let handle = file.insert(Socket::Stream(sock))?;
        self.stats.socket_opened();
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
        self.stats.socket_opened();
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
        self.stats.socket_closed();
        Ok(0)
    }

    fn query_stats(&self, input: &[u8], output: &mut [u8]) -> Result<usize, NTSTATUS> {
        let _req: QueryStatsRequest = contract(parse_request(input))?;
        contract(write_response(output, &self.stats.snapshot()))
    }

    #[inline(always)]
    fn data_for(op: Operation, data: Option<DataMdl>) -> Result<DataMdl, NTSTATUS> {
        let d = data.ok_or(ContractError::MissingDataBuffer.ntstatus())?;
        contract(ioctl::check_data_length(op, d.len))?;
        Ok(d)
    }

    /// The WSK completion of a SEND or SEND_TO: counts bytes and operations in the counters
    /// `counters` picks, and completes the request with the byte count or the status.
    fn data_sent<C: Completion>(
        stats: Counters,
        counters: fn(&Shard) -> (&AtomicU64, &AtomicU64),
    ) -> impl FnOnce(wsk::Result<usize>, RequestData<C>) + Send + 'static {
        stats.request_pending();
        // The counters are touched only before the request is completed (see [`Counters`]).
        move |result, rd| match result {
            Ok(n) => {
                let shard = stats.here();
                let (bytes, ops) = counters(shard);
                Counters::sub(&shard.pending_requests, 1);
                Counters::add(bytes, n as u64);
                Counters::add(ops, 1);
                rd.request.complete(STATUS_SUCCESS, n)
            }
            Err(e) => {
                stats.request_done();
                stats.finished(e.status());
                rd.request.complete(e.status(), 0)
            }
        }
    }

    /// A data operation that WSK never started: its completion will not run.
    #[inline]
    fn not_started<C: Completion>(&self, started: Result<(), (wsk::Error, RequestData<C>)>) {
        if let Err((e, rd)) = started {
            self.never_started(e, rd.request);
        }
    }

    /// The failure path of [`DeviceCore::not_started`], kept out of the hot path.
    #[cold]
    #[inline(never)]
    fn never_started<C: Completion>(&self, e: wsk::Error, request: C) {
        self.stats.request_done();
        self.fail(request, e.status());
    }

    fn send<C: Completion>(
        &self,
        file: &FileContext,
        input: Input<'_>,
        data: Option<DataMdl>,
        request: C,
    ) {
        let r = (|| {
            let req: SendRequest = input.parse()?;
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
        let done = Self::data_sent(self.stats, |s| (&s.bytes_sent, &s.sends));
        // Zero copy: WskSend reads the user's pages through the request's own MDL.
        let len = data.len;
        self.not_started(sock.send_async(RequestData { data, request }, 0, len, done));
    }

    fn send_to<C: Completion>(
        &self,
        file: &FileContext,
        input: Input<'_>,
        data: Option<DataMdl>,
        request: C,
    ) {
        let r = (|| {
            let req: SendToRequest = input.parse()?;
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
        let done = Self::data_sent(self.stats, |s| (&s.datagram_bytes_sent, &s.datagrams_sent));
        let len = data.len;
        self.not_started(sock.send_to_async(RequestData { data, request }, 0, len, to, done));
    }
}

/// The completion of a forwarded SEND ([`DeviceCore::forward_stream`]): the counters of
/// [`DeviceCore::data_sent`], updated before the request continues to the I/O manager.
struct ForwardedSend;

// SAFETY: `done` only updates the counters `context` points to (a `Counters` of the device
// core, alive while a request of one of its file objects is pending: see [`Counters`]).
unsafe impl wsk::ForwardedCompletion for ForwardedSend {
    unsafe fn done(context: *mut core::ffi::c_void, status: NTSTATUS, information: usize) {
        // SAFETY: the forwarding call's context, alive (see the impl's SAFETY).
        let stats = unsafe { *(context as *const Counters) };
        if status < 0 {
            stats.request_done();
            stats.finished(status);
        } else {
            let shard = stats.here();
            Counters::sub(&shard.pending_requests, 1);
            Counters::add(&shard.bytes_sent, information as u64);
            Counters::add(&shard.sends, 1);
        }
    }

    unsafe fn restore(location: *mut windows_sys::Wdk::Foundation::IO_STACK_LOCATION, len: usize) {
        // SAFETY: the forwarding code's live current location of a SEND.
        unsafe { restore_device_control::<SendRequest>(location, ioctl::IOCTL_WSKCLIENT_SEND, len) }
    }
}

/// The completion of a forwarded RECEIVE ([`DeviceCore::forward_stream`]).
struct ForwardedReceive;

// SAFETY: as ForwardedSend.
unsafe impl wsk::ForwardedCompletion for ForwardedReceive {
    unsafe fn done(context: *mut core::ffi::c_void, status: NTSTATUS, _information: usize) {
        // SAFETY: as ForwardedSend.
        let stats = unsafe { *(context as *const Counters) };
        stats.request_done();
        if status < 0 {
            stats.finished(status);
        }
    }

    unsafe fn restore(location: *mut windows_sys::Wdk::Foundation::IO_STACK_LOCATION, len: usize) {
        // SAFETY: the forwarding code's live current location of a RECEIVE.
        unsafe {
            restore_device_control::<ReceiveRequest>(location, ioctl::IOCTL_WSKCLIENT_RECEIVE, len)
        }
    }
}

/// Writes back the `Parameters.DeviceIoControl` the I/O manager had put in a forwarded
/// request's stack location `location` ([`wsk::ForwardedCompletion::restore`]): a request is
/// forwarded only when its input is exactly one `R` ([`DeviceCore::forward_stream`] parses it
/// with `parse_request`, which refuses any other length), its data buffer is the whole
/// output buffer (`len` = OutputBufferLength, a ULONG), and its code is `code`.
/// Type3InputBuffer was never overwritten (x64). IRQL <= DISPATCH_LEVEL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_stack_location>
///
/// # Safety
/// `location` is the live current stack location of a forwarded DEVICE_CONTROL IRP that is
/// the caller's again.
unsafe fn restore_device_control<R>(
    location: *mut windows_sys::Wdk::Foundation::IO_STACK_LOCATION,
    code: u32,
    len: usize,
) {
    // SAFETY: caller contract; the DeviceIoControl layout of nt_imports (wdm.h, x64).
    unsafe {
        let p = nt_imports::device_io_control(location);
        (*p).OutputBufferLength = u32::try_from(len).unwrap_or(u32::MAX);
        (*p).InputBufferLength = core::mem::size_of::<R>() as u32;
        (*p).IoControlCode = code;
    }
}

impl DeviceCore {
    /// SEND or RECEIVE on a stream socket by forwarding the front-end's own IRP to
    /// `WskSend` / `WskReceive` ([`StreamSocket::send_forwarded`]): no IRP, operation block
    /// or completion context is allocated. WSK completes the IRP with the status and byte
    /// count the contract returns (docs/ioctl.md), and the counters are updated in its
    /// completion routine. The WDM front-end's path; the KMDF front-end keeps
    /// [`DeviceCore::device_control`] (a framework request's IRP is the framework's).
    ///
    /// `Ok(())`: the IRP is WSK's or completed. `Err(status)`: the request was not started
    /// and the caller completes the IRP with `status` (counted already): the statuses of
    /// [`DeviceCore::device_control`] for a malformed request, a bad handle
    /// (`STATUS_INVALID_HANDLE`), a datagram or listening socket (`STATUS_NOT_SUPPORTED`), a
    /// socket being closed (`STATUS_INVALID_HANDLE`), `STATUS_INVALID_PARAMETER` (no stack
    /// location left for WSK). Other operations: `STATUS_INVALID_DEVICE_REQUEST`.
    /// PASSIVE_LEVEL (IRP_MJ_DEVICE_CONTROL).
    ///
    /// # Safety
    /// As [`StreamSocket::receive_forwarded`]: `irp` is the DEVICE_CONTROL IRP the I/O
    /// manager dispatched to the caller, marked pending, with no cancel routine and a free
    /// next stack location; `data` is its `MdlAddress` and length; `input` its system buffer
    /// ([`Input::in_place`]), read here only before the IRP goes to WSK.
    ///
    /// `#[inline(always)]`: with the front-end's dispatch routine and wsk's forwarding code
    /// this path is one frame (measured by tools/callgrind-send.sh, issue 13); the failure
    /// paths are out of line.
    #[inline(always)]
    pub unsafe fn forward_stream(
        &self,
        file: &FileContext,
        op: Operation,
        input: Input<'_>,
        data: Option<DataMdl>,
        irp: NonNull<windows_sys::Wdk::Foundation::IRP>,
    ) -> Result<(), NTSTATUS> {
        // The input is read here only, before WSK has the IRP (completing it frees the
        // system buffer the input lies in).
        let handle = match op {
            Operation::Send => input.parse::<SendRequest>().map(|r| r.handle),
            Operation::Receive => input.parse::<ReceiveRequest>().map(|r| r.handle),
            _ => Err(STATUS_INVALID_DEVICE_REQUEST),
        };
        let handle = match handle {
            Ok(handle) => handle,
            Err(status) => return Err(self.refused(status)),
        };
        let data = match Self::data_for(op, data) {
            Ok(data) => data,
            Err(status) => return Err(self.refused(status)),
        };
        let Some(s) = file.lookup(handle) else {
            return Err(self.refused(STATUS_INVALID_HANDLE));
        };
        let Socket::Stream(sock) = &*s else {
            return Err(self.refused(STATUS_NOT_SUPPORTED));
        };
        let context = &self.stats as *const Counters as *mut core::ffi::c_void;
        self.stats.request_pending();
        // SAFETY: forwarded caller contract; the counters outlive the request (see Counters).
        let started = unsafe {
            if op == Operation::Send {
                sock.send_forwarded::<ForwardedSend>(irp, data.mdl, data.len, context)
            } else {
                sock.receive_forwarded::<ForwardedReceive>(irp, data.mdl, data.len, false, context)
            }
        };
        match started {
            Ok(()) => Ok(()),
            Err(e) => Err(self.not_forwarded(e)),
        }
    }

    /// A request refused before it started: counted, its status returned. Out of line (the
    /// forwarding path's failures).
    #[cold]
    #[inline(never)]
    fn refused(&self, status: NTSTATUS) -> NTSTATUS {
        self.stats.finished(status);
        status
    }

    /// A forwarded request WSK did not take (its completion will not run): no longer
    /// pending, counted as failed, its status returned. Out of line.
    #[cold]
    #[inline(never)]
    fn not_forwarded(&self, e: wsk::Error) -> NTSTATUS {
        self.stats.request_done();
        self.refused(e.status())
    }
}

impl DeviceCore {
    /// Aborts the socket behind `handle` of `file`: removes it from the table and drops it;
    /// the last reference closes it (without waiting, above PASSIVE_LEVEL), and WSK then
    /// completes its pending IRPs with STATUS_CANCELLED, which completes their requests.
    /// Used when a pending request whose WSK IRP is the driver's own is cancelled (KMDF, and
    /// WDM requests other than forwarded SEND/RECEIVE, which WSK cancels one by one; see
    /// docs/ioctl.md, "Cancellation"). IRQL <= DISPATCH_LEVEL.
    pub fn abort_socket(&self, file: &FileContext, handle: SocketHandle) {
        if let Some(s) = file.remove(handle) {
            self.stats.socket_closed();
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
        let stats = self.stats;
        let table = file.table.clone();
        stats.request_pending();
        let in_done = slot.clone();
        let started = listener.accept_async(move |result| {
            stats.request_done();
            let Some(request) = in_done.lock().take() else {
                return;
            };
            let r = result.map_err(|e| e.status()).and_then(|a| {
                let local = InetAddress::from_socket_addr(&a.local);
                let remote = InetAddress::from_socket_addr(&a.remote);
                let handle = insert(&table, Socket::Stream(a.socket))?;
                stats.socket_opened();
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
            self.stats.request_done();
            if let Some(request) = slot.lock().take() {
                self.fail(request, e.status());
            }
        }
    }

    /// RECEIVE: `WskReceive` straight into the request's MDL (METHOD_OUT_DIRECT, no copy).
    fn receive<C: Completion>(
        &self,
        file: &FileContext,
        input: Input<'_>,
        data: Option<DataMdl>,
        request: C,
    ) {
        let r = (|| {
            let req: ReceiveRequest = input.parse()?;
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
        let stats = self.stats;
        stats.request_pending();
        let len = data.len;
        let started = sock.receive_async(
            RequestData { data, request },
            0,
            len,
            false,
            move |result, rd| {
                stats.request_done();
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
            self.stats.request_done();
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
        let stats = self.stats;
        stats.request_pending();
        let len = buf.len();
        let in_done = slot.clone();
        let started = sock.receive_from_async(buf, 0, len, move |result, buf| {
            stats.request_done();
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
            self.stats.request_done();
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
        let stats = self.stats;
        stats.request_pending();
        let in_done = slot.clone();
        let started = sock.disconnect_async(move |result| {
            stats.request_done();
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
            self.stats.request_done();
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
