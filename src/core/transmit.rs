//! TRANSMIT_FILE and TRANSMIT_PACKETS (docs/ioctl.md): a file range, head and tail bytes, or
//! an array of memory and file elements, sent over one socket of the file object.
//!
//! # Where the transfer runs (our choice)
//! TRANSMIT_FILE pends when the front-end gives the core its device object
//! ([`DeviceCore::device_control_on`]; both front-ends do, KMDF through
//! `WdfDeviceWdmGetDeviceObject`): the dispatch routine parses
//! the request and references the caller's file (in the caller's context, with its requestor
//! mode: see below), copies the input, and queues a work item (`IoAllocateWorkItem` /
//! `IoQueueWorkItem` on `DelayedWorkQueue`,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitem>)
//! that owns all of it and the request; the dispatch routine then returns STATUS_PENDING. The
//! routine runs at PASSIVE_LEVEL on a system worker thread: `ZwReadFile` must be called at
//! PASSIVE_LEVEL
//! (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwreadfile>) and
//! the WSK send completions run at DISPATCH_LEVEL, so reads cannot run in them. It reads block
//! n+1 while the `WskSend` of block n is in flight, then waits on a KEVENT the send's
//! completion signals; at the end it completes the request and frees the work item. The I/O
//! manager holds a reference on the device while the item is queued or running, so the driver
//! does not unload under it. Without a device object (callers of
//! [`DeviceCore::device_control`]) and for TRANSMIT_PACKETS, the transfer runs the same way
//! on the requesting thread, inside IRP_MJ_DEVICE_CONTROL, and the caller's `DeviceIoControl`
//! returns only when it has ended.
//! Progress is visible meanwhile through QUERY_STATS (`bytes_sent` / `sends` for stream
//! sockets, `datagram_bytes_sent` / `datagrams_sent` for datagrams, and `pending_requests`
//! counts a queued TRANSMIT_FILE), updated by each send's completion. Cancelling the request
//! (`CancelIoEx`, or closing the handle) aborts the socket (src/wdm.rs): the in-flight send
//! completes with an error, the socket lookup of the next block fails, the loop ends, and its
//! buffers and file reference are freed before the request completes with that status.
//!
//! # The caller's file handle
//! Referenced with `ObReferenceObjectByHandle(handle, FILE_READ_DATA, *IoFileObjectType,
//! RequestorMode)`: a user-mode caller's handle must grant read access and name a file
//! (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-obreferenceobjectbyhandle>).
//! Reads then go through a kernel handle opened on that object with
//! `ObOpenObjectByPointer(OBJ_KERNEL_HANDLE, KernelMode)`
//! (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer>),
//! never on the caller's handle value (which the caller could close or replace while
//! `ZwReadFile`, a KernelMode call, uses it). The reference keeps the file object alive if the
//! caller closes its handle mid-transfer. Every read is given an event of our own and waited
//! for, so a file opened for asynchronous I/O (ZwReadFile returns STATUS_PENDING) is read
//! safely ([`FileRef::read_exact`]). Sizes come from
//! `ZwQueryInformationFile(FileStandardInformation).EndOfFile`.
//!
//! Memory: two nonpaged blocks of the block size per transfer (or per datagram, the packet's
//! bytes), never a file-sized buffer.

use core::cell::UnsafeCell;
use core::ffi::c_void;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, KEVENT, PIO_WORKITEM};
use windows_sys::Wdk::System::SystemServices::{
    IoAllocateWorkItem, IoFreeWorkItem, IoQueueWorkItem, KeInitializeEvent, KeSetEvent,
    KeWaitForSingleObject, ObReferenceObjectByHandle, ObfDereferenceObject,
};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;
use wskclient_ioctl::transmit::{
    effective_block, parse_transmit_file, parse_transmit_packets, TransmitElement, TransmitError,
    TransmitResponse, STATUS_END_OF_FILE, TRANSMIT_DISCONNECT, TRANSMIT_REUSE_SOCKET,
    TRANSMIT_SOCKET_CLOSED,
};

use super::*;
use wsk::alloc::{try_with_capacity, Box};

/// Pool tag of transmit blocks (`TWsk` in a pool dump).
pub const TRANSMIT_TAG: u32 = u32::from_le_bytes(*b"TWsk");

/// `KPROCESSOR_MODE` of the request's originator (`Irp->RequestorMode`,
/// `WdfRequestGetRequestorMode`): decides the access check on the caller's file handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestorMode {
    /// `KernelMode` (0): a kernel caller; its handles are trusted.
    Kernel,
    /// `UserMode` (1): a user-mode caller; its handles are checked for type and access.
    User,
}

impl RequestorMode {
    /// From a `KPROCESSOR_MODE` value: 0 is kernel, anything else user (the safe side).
    const fn from_raw(mode: i8) -> Self {
        if mode == 0 {
            RequestorMode::Kernel
        } else {
            RequestorMode::User
        }
    }

    const fn raw(self) -> i8 {
        match self {
            RequestorMode::Kernel => 0,
            RequestorMode::User => 1,
        }
    }
}

const FILE_READ_DATA: u32 = 0x0001;
const OBJ_KERNEL_HANDLE: u32 = 0x0200;
/// `SynchronizationEvent` of `EVENT_TYPE`.
const SYNCHRONIZATION_EVENT: i32 = 1;
/// `EVENT_ALL_ACCESS`.
const EVENT_ALL_ACCESS: u32 = 0x001F_0003;

fn transmit_status(e: TransmitError) -> NTSTATUS {
    e.ntstatus()
}

/// A referenced file object, a kernel handle to it, and a kernel event of our own that each
/// read is given (so that a file opened for asynchronous I/O can be waited for: see
/// [`FileRef::read_exact`]). Dropping closes both handles and releases the reference.
/// PASSIVE_LEVEL.
struct FileRef {
    object: *mut c_void,
    handle: HANDLE,
    event: HANDLE,
    size: u64,
}

/// How long one read of the caller's file may take before it is cancelled: 30 s.
const READ_TIMEOUT_100NS: i64 = 30 * 10_000_000;

impl FileRef {
    /// References the caller's `handle` for `mode` (FILE_READ_DATA, file type), opens a
    /// kernel handle and reads the size. Errors: `STATUS_INVALID_HANDLE`,
    /// `STATUS_OBJECT_TYPE_MISMATCH`, `STATUS_ACCESS_DENIED` (from the object manager), or
    /// those of `ZwQueryInformationFile`.
    fn open(handle: u64, mode: RequestorMode) -> Result<FileRef, NTSTATUS> {
        // SAFETY: IoFileObjectType is ntoskrnl's data export, a pointer to the file type.
        let file_type = unsafe { *nt_imports::IoFileObjectType };
        let mut object: *mut c_void = core::ptr::null_mut();
        // SAFETY: documented call at PASSIVE_LEVEL in the caller's process context (the
        // dispatch routine of a top-level driver); out pointer to a local.
        let s = unsafe {
            ObReferenceObjectByHandle(
                handle as usize as HANDLE,
                FILE_READ_DATA,
                file_type as _,
                mode.raw(),
                &mut object,
                core::ptr::null_mut(),
            )
        };
        if s < 0 {
            return Err(s);
        }
        let mut khandle: HANDLE = core::ptr::null_mut();
        // SAFETY: `object` is referenced; a kernel handle for KernelMode use.
        let s = unsafe {
            windows_sys::Wdk::Storage::FileSystem::ObOpenObjectByPointer(
                object,
                OBJ_KERNEL_HANDLE,
                core::ptr::null(),
                FILE_READ_DATA,
                file_type as _,
                0,
                &mut khandle,
            )
        };
        let mut f = FileRef {
            object,
            handle: khandle,
            event: core::ptr::null_mut(),
            size: 0,
        };
        if s < 0 {
            f.handle = core::ptr::null_mut();
            return Err(s);
        }
        // SAFETY: OBJECT_ATTRIBUTES is plain data; InitializeObjectAttributes(NULL name,
        // OBJ_KERNEL_HANDLE) is these fields.
        let mut oa: windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES =
            unsafe { core::mem::zeroed() };
        oa.Length = core::mem::size_of::<windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES>() as u32;
        oa.Attributes = OBJ_KERNEL_HANDLE;
        let mut event: HANDLE = core::ptr::null_mut();
        // SAFETY: documented call at PASSIVE_LEVEL; out pointer to a local.
        let s = unsafe {
            nt_imports::ZwCreateEvent(
                &mut event,
                EVENT_ALL_ACCESS,
                &oa,
                SYNCHRONIZATION_EVENT,
                false,
            )
        };
        if s < 0 {
            return Err(s);
        }
        f.event = event;
        let mut iosb: IO_STATUS_BLOCK = IO_STATUS_BLOCK::default();
        let mut info = nt_imports::FILE_STANDARD_INFORMATION::default();
        // SAFETY: our kernel handle; the info buffer is a local of the right size.
        let s = unsafe {
            nt_imports::ZwQueryInformationFile(
                f.handle,
                &mut iosb,
                &mut info as *mut _ as *mut c_void,
                core::mem::size_of::<nt_imports::FILE_STANDARD_INFORMATION>() as u32,
                nt_imports::FileStandardInformation,
            )
        };
        if s < 0 {
            return Err(s);
        }
        f.size = u64::try_from(info.EndOfFile).unwrap_or(0);
        Ok(f)
    }

    /// The checked range `[offset, offset + length)` (length 0: to the end).
    /// Errors: `STATUS_END_OF_FILE` when it runs past the end of the file.
    fn range(&self, offset: u64, length: u64) -> Result<(u64, u64), NTSTATUS> {
        if offset > self.size {
            return Err(STATUS_END_OF_FILE);
        }
        let length = if length == 0 {
            self.size - offset
        } else {
            length
        };
        match offset.checked_add(length) {
            Some(end) if end <= self.size => Ok((offset, length)),
            _ => Err(STATUS_END_OF_FILE),
        }
    }

    /// Reads exactly `buf.len()` bytes at `offset`. Errors: `STATUS_END_OF_FILE` (the file
    /// shrank), `STATUS_IO_TIMEOUT` (one read took over 30 s and was cancelled), any status
    /// of `ZwReadFile`.
    ///
    /// Every read is given this FileRef's own event. On a file object opened for
    /// asynchronous I/O `ZwReadFile` returns STATUS_PENDING and later writes the
    /// IO_STATUS_BLOCK and `buf` and sets that event (the ZwReadFile page); this waits for
    /// the event and never returns while the read is in flight: on timeout it cancels the
    /// read (`ZwCancelIoFileEx`, when the kernel has it) and still waits for its completion.
    /// The event is ours alone, so other I/O on the same file cannot wake this wait (waiting
    /// on the file object, which any I/O on it signals, could). An APC or I/O completion
    /// port bound to the caller's file object still receives nothing from these reads: they
    /// carry no APC and no completion context (only an ApcContext can queue a packet).
    fn read_exact(&self, mut offset: u64, buf: &mut [u8]) -> Result<(), NTSTATUS> {
        let mut done = 0usize;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or(&mut []);
            let mut iosb: IO_STATUS_BLOCK = IO_STATUS_BLOCK::default();
            // Written by the I/O manager, possibly after ZwReadFile returned: only accessed
            // through this pointer until the read has completed.
            let iosb_ptr = core::ptr::addr_of_mut!(iosb);
            let off = i64::try_from(offset).map_err(|_| STATUS_END_OF_FILE)?;
            // SAFETY: our kernel handles; `rest` and `iosb` stay alive and untouched until the
            // read has completed (waited for below when it pends).
            let mut s = unsafe {
                nt_imports::ZwReadFile(
                    self.handle,
                    self.event,
                    core::ptr::null(),
                    core::ptr::null(),
                    iosb_ptr,
                    rest.as_mut_ptr() as *mut c_void,
                    u32::try_from(rest.len()).unwrap_or(u32::MAX),
                    &off,
                    core::ptr::null(),
                )
            };
            if s == STATUS_PENDING {
                s = self.wait_read(iosb_ptr);
            }
            if s < 0 {
                return Err(s);
            }
            // SAFETY: the read has completed; nothing writes the block any more.
            let n = unsafe { (*iosb_ptr).Information };
            if n == 0 {
                return Err(STATUS_END_OF_FILE);
            }
            done += n;
            offset += n as u64;
        }
        Ok(())
    }

    /// Waits for the pending read whose IO_STATUS_BLOCK is `iosb` to complete (its event is
    /// ours) and returns its status; after 30 s cancels it, waits for it all the same, and
    /// returns `STATUS_IO_TIMEOUT` if it was cancelled. PASSIVE_LEVEL.
    fn wait_read(&self, iosb: *const IO_STATUS_BLOCK) -> NTSTATUS {
        let timeout: i64 = -READ_TIMEOUT_100NS;
        // SAFETY: our event handle; bounded wait at PASSIVE_LEVEL.
        let w = unsafe { nt_imports::ZwWaitForSingleObject(self.event, false, &timeout) };
        let timed_out = w == STATUS_TIMEOUT;
        if timed_out {
            let name = crate::wide::unicode(&crate::wide::ZW_CANCEL_IO_FILE_EX_W);
            // SAFETY: a valid UNICODE_STRING; PASSIVE_LEVEL.
            let f = unsafe { nt_imports::MmGetSystemRoutineAddress(&name) };
            if !f.is_null() {
                // SAFETY: the routine MmGetSystemRoutineAddress found under that name has
                // ZwCancelIoFileEx's documented signature.
                let cancel: nt_imports::ZwCancelIoFileExFn = unsafe { core::mem::transmute(f) };
                let mut cancel_iosb = IO_STATUS_BLOCK::default();
                // SAFETY: our handle; `iosb` identifies the read to cancel.
                unsafe { cancel(self.handle, iosb, &mut cancel_iosb) };
            }
            // The read still owns `iosb` and the buffer until it completes: wait for it,
            // cancelled or not (a cancelled read completes promptly; without
            // ZwCancelIoFileEx it completes when the file system finishes it).
            loop {
                let slice: i64 = -READ_TIMEOUT_100NS;
                // SAFETY: as above.
                let w = unsafe { nt_imports::ZwWaitForSingleObject(self.event, false, &slice) };
                if w != STATUS_TIMEOUT {
                    break;
                }
            }
        }
        // SAFETY: the read has completed (its event is set only after the I/O manager wrote
        // the IO_STATUS_BLOCK).
        let s = unsafe { core::ptr::addr_of!((*iosb).Anonymous.Status).read_volatile() };
        if timed_out && s == STATUS_CANCELLED {
            return STATUS_IO_TIMEOUT;
        }
        s
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: our kernel handle (closed once) and our reference (released once).
        unsafe {
            if !self.handle.is_null() {
                nt_imports::ZwClose(self.handle);
            }
            if !self.event.is_null() {
                nt_imports::ZwClose(self.event);
            }
            ObfDereferenceObject(self.object);
        }
    }
}

/// A send completion handed to the waiting dispatch thread: the result and the buffer back,
/// and a synchronization KEVENT. Lives in a `KArc` (nonpaged heap in the driver) shared with
/// the completion, so the event outlives the `KeSetEvent` that signals it.
struct Signal {
    event: UnsafeCell<KEVENT>,
    slot: SpinLock<Option<(wsk::Result<usize>, NonPagedBuffer)>>,
}

// SAFETY: the KEVENT is only touched through Ke* routines, which synchronise internally.
unsafe impl Send for Signal {}
// SAFETY: as above.
unsafe impl Sync for Signal {}

impl Signal {
    fn new() -> Result<KArc<Signal>, NTSTATUS> {
        let s = KArc::try_new(Signal {
            // SAFETY: KEVENT is plain data, initialised below before use.
            event: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            slot: SpinLock::new(None),
        })?;
        // SAFETY: initialising our event before sharing it.
        unsafe { KeInitializeEvent(s.event.get(), SYNCHRONIZATION_EVENT, false) };
        Ok(s)
    }

    /// IRQL <= DISPATCH_LEVEL.
    fn post(&self, r: wsk::Result<usize>, b: NonPagedBuffer) {
        *self.slot.lock() = Some((r, b));
        // SAFETY: our initialised event.
        unsafe { KeSetEvent(self.event.get(), 0, false) };
    }

    /// Waits (PASSIVE_LEVEL, 1 s slices: the send ends when WSK completes it, which a
    /// cancel or close forces) for the posted completion.
    fn wait(&self) -> (wsk::Result<usize>, NonPagedBuffer) {
        loop {
            if let Some(v) = self.slot.lock().take() {
                return v;
            }
            let slice: i64 = -10_000_000;
            // SAFETY: our event, alive (KArc) across the wait; PASSIVE_LEVEL.
            unsafe {
                KeWaitForSingleObject(self.event.get() as *const c_void, 0, 0, false, &slice)
            };
        }
    }
}

/// Which counters a transfer feeds.
#[derive(Clone, Copy)]
enum Kind {
    Stream,
    Datagram(Option<SocketAddr>),
}

/// The double-buffered sender of one transfer: at most one send in flight while the next
/// block is filled; two nonpaged blocks of `block` bytes.
struct Pipe<'a> {
    stats: Counters,
    file: &'a FileContext,
    handle: SocketHandle,
    kind: Kind,
    block: usize,
    signal: KArc<Signal>,
    spare: Vec<NonPagedBuffer>,
    allocated: usize,
    in_flight: bool,
    sent: u64,
    packets: u32,
}

impl<'a> Pipe<'a> {
    fn new(
        stats: Counters,
        file: &'a FileContext,
        handle: SocketHandle,
        kind: Kind,
        block: usize,
    ) -> Result<Self, NTSTATUS> {
        let spare = try_with_capacity(2)?;
        Ok(Pipe {
            stats,
            file,
            handle,
            kind,
            block: block.max(1),
            signal: Signal::new()?,
            spare,
            allocated: 0,
            in_flight: false,
            sent: 0,
            packets: 0,
        })
    }

    /// Keeps `b` as a spare block. Never allocates: `spare` was given room for both blocks
    /// that can exist; were it full, the block would be freed instead.
    fn keep(&mut self, b: NonPagedBuffer) {
        if try_push(&mut self.spare, b).is_err() {
            self.allocated -= 1;
        }
    }

    /// Waits for the send in flight, if any; its buffer becomes spare.
    fn drain(&mut self) -> Result<(), NTSTATUS> {
        if !self.in_flight {
            return Ok(());
        }
        let (r, b) = self.signal.wait();
        self.in_flight = false;
        self.keep(b);
        let n = r.map_err(|e| e.status())?;
        self.sent += n as u64;
        self.packets = self.packets.saturating_add(1);
        Ok(())
    }

    /// A block to fill: a spare one, a new one (at most two exist), or the in-flight one
    /// once its send completed.
    fn buffer(&mut self, len: usize) -> Result<NonPagedBuffer, NTSTATUS> {
        if let Some(b) = self.spare.pop() {
            if b.len() >= len {
                return Ok(b);
            }
            self.allocated -= 1;
        }
        if self.allocated < 2 {
            let b =
                NonPagedBuffer::new(len.max(self.block), TRANSMIT_TAG).map_err(|e| e.status())?;
            self.allocated += 1;
            return Ok(b);
        }
        self.drain()?;
        self.buffer(len)
    }

    /// Starts the send of `len` bytes of `b` after the one in flight completed. The socket is
    /// looked up again for every send, so an aborted (cancelled) socket ends the transfer.
    fn send(&mut self, b: NonPagedBuffer, len: usize) -> Result<(), NTSTATUS> {
        self.drain()?;
        let Some(s) = self.file.lookup(self.handle) else {
            self.keep(b);
            return Err(STATUS_CANCELLED);
        };
        let sig = self.signal.clone();
        let stats = self.stats;
        let kind = self.kind;
        let done = move |r: wsk::Result<usize>, b: NonPagedBuffer| {
            if let Ok(n) = r {
                // Before the signal: the transfer (and so the request) waits for it.
                let shard = stats.here();
                let (bytes, ops) = match kind {
                    Kind::Stream => (&shard.bytes_sent, &shard.sends),
                    Kind::Datagram(_) => (&shard.datagram_bytes_sent, &shard.datagrams_sent),
                };
                Counters::add(bytes, n as u64);
                Counters::add(ops, 1);
            }
            sig.post(r, b);
        };
        let started = match (&*s, kind) {
            (Socket::Stream(sock), Kind::Stream) => sock.send_async(b, 0, len, done),
            (Socket::Datagram(sock), Kind::Datagram(to)) => sock.send_to_async(b, 0, len, to, done),
            _ => {
                self.keep(b);
                return Err(STATUS_NOT_SUPPORTED);
            }
        };
        drop(s);
        match started {
            Ok(()) => {
                self.in_flight = true;
                Ok(())
            }
            Err((e, b)) => {
                self.keep(b);
                Err(e.status())
            }
        }
    }

    /// Sends `data` in blocks.
    fn memory(&mut self, data: &[u8]) -> Result<(), NTSTATUS> {
        for chunk in data.chunks(self.block) {
            let mut b = self.buffer(chunk.len())?;
            b.as_mut_slice()
                .get_mut(..chunk.len())
                .ok_or(STATUS_INTERNAL_ERROR)?
                .copy_from_slice(chunk);
            self.send(b, chunk.len())?;
        }
        Ok(())
    }

    /// Sends `length` bytes at `offset` of `f` in blocks: each block is read while the
    /// previous one is being sent.
    fn file_range(&mut self, f: &FileRef, offset: u64, length: u64) -> Result<(), NTSTATUS> {
        let mut pos = offset;
        let end = offset + length;
        while pos < end {
            let n = (end - pos).min(self.block as u64) as usize;
            let mut b = self.buffer(n)?;
            let r = f.read_exact(pos, b.as_mut_slice().get_mut(..n).unwrap_or(&mut []));
            if let Err(s) = r {
                self.keep(b);
                return Err(s);
            }
            self.send(b, n)?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Ends the transfer: waits for the last send; the blocks are freed on drop.
    fn finish(&mut self) -> Result<(), NTSTATUS> {
        self.drain()
    }
}

impl Drop for Pipe<'_> {
    fn drop(&mut self) {
        // Never free the signal or return while a send holds a block: wait for it (its
        // buffer is owned by the send, so this is about ordering, not memory safety).
        let _ = self.drain();
    }
}

fn stream_of(file: &FileContext, h: SocketHandle) -> Result<KArc<Socket>, NTSTATUS> {
    let s = file.lookup(h).ok_or(STATUS_INVALID_HANDLE)?;
    match &*s {
        Socket::Stream(_) => Ok(s),
        _ => Err(STATUS_NOT_SUPPORTED),
    }
}

/// After the data: graceful disconnect (`TRANSMIT_DISCONNECT`); with reuse, the socket is
/// closed and its handle freed (WSK cannot reuse a socket). Returns the response flags.
fn after_transfer(
    stats: &Counters,
    file: &FileContext,
    h: SocketHandle,
    flags: u32,
) -> Result<u32, NTSTATUS> {
    if flags & TRANSMIT_DISCONNECT == 0 {
        return Ok(0);
    }
    let s = stream_of(file, h).map_err(|_| STATUS_CANCELLED)?;
    if let Socket::Stream(sock) = &*s {
        sock.disconnect().map_err(|e| e.status())?;
    }
    drop(s);
    if flags & TRANSMIT_REUSE_SOCKET != 0 {
        if let Some(s) = file.remove(h) {
            s.close();
            stats.socket_closed();
        }
        return Ok(TRANSMIT_SOCKET_CLOSED);
    }
    Ok(0)
}

/// A TRANSMIT_FILE whose file (if any) was referenced at dispatch, in the caller's context,
/// with its requestor mode: everything the transfer needs after the dispatch routine returned.
struct FileTransfer {
    /// A copy of the request's input (head and tail bytes inline), nonpaged heap.
    input: Vec<u8>,
    file: Option<FileRef>,
    range: Option<(u64, u64)>,
}

// SAFETY: FileRef's object pointer and kernel handles (OBJ_KERNEL_HANDLE) are usable from any
// thread of the system process, which the system worker threads are.
unsafe impl Send for FileTransfer {}

/// Parses and checks a TRANSMIT_FILE request and references its file for `mode`
/// (PASSIVE_LEVEL, in the caller's context). Errors: those of docs/ioctl.md, TRANSMIT_FILE.
fn prepare_transmit_file(
    mode: RequestorMode,
    file: &FileContext,
    input: &[u8],
    output_len: usize,
) -> Result<FileTransfer, NTSTATUS> {
    let p = parse_transmit_file(input).map_err(transmit_status)?;
    let req = p.request;
    if output_len < TransmitResponse::SIZE {
        return Err(STATUS_BUFFER_TOO_SMALL);
    }
    drop(stream_of(file, req.handle)?);
    let f = match req.file_handle {
        0 => None,
        h => Some(FileRef::open(h, mode)?),
    };
    let range = match &f {
        Some(f) => Some(f.range(req.offset, req.length)?),
        None => None,
    };
    let input = wsk::alloc::try_to_vec(input)?;
    Ok(FileTransfer {
        input,
        file: f,
        range,
    })
}

/// Runs a prepared TRANSMIT_FILE: head, the file range, tail, then the `TRANSMIT_*` flags;
/// writes the response into `output` and returns its length. PASSIVE_LEVEL (ZwReadFile).
fn run_file_transfer(
    stats: &Counters,
    file: &FileContext,
    t: FileTransfer,
    output: &mut [u8],
) -> Result<usize, NTSTATUS> {
    let p = parse_transmit_file(&t.input).map_err(transmit_status)?;
    let req = p.request;
    let block = effective_block(req.block_size) as usize;
    let mut pipe = Pipe::new(*stats, file, req.handle, Kind::Stream, block)?;
    pipe.memory(p.head)?;
    if let (Some(f), Some((off, len))) = (&t.file, t.range) {
        pipe.file_range(f, off, len)?;
    }
    pipe.memory(p.tail)?;
    pipe.finish()?;
    let (sent, packets) = (pipe.sent, pipe.packets);
    drop(pipe);
    drop(t.file);
    let flags = after_transfer(stats, file, req.handle, req.flags)?;
    contract(write_response(
        output,
        &TransmitResponse::new(sent, flags, packets),
    ))
}

/// `DelayedWorkQueue` of `WORK_QUEUE_TYPE`.
const DELAYED_WORK_QUEUE: i32 = 1;

/// A pending TRANSMIT_FILE owned by its work item: the request, its output buffer, the
/// prepared transfer, the file's socket table and the counters. Boxed (nonpaged heap) and
/// handed to `IoQueueWorkItem` as its context; the routine takes it back.
struct TransmitJob<C: Completion> {
    item: PIO_WORKITEM,
    stats: Counters,
    file: FileContext,
    output: OutBuf,
    transfer: FileTransfer,
    request: C,
}

/// The work item routine of a pending TRANSMIT_FILE (a system worker thread, PASSIVE_LEVEL):
/// runs the transfer, completes the request, frees the work item. The I/O manager holds a
/// reference on the device until this returns, so the driver cannot unload under it.
unsafe extern "system" fn transmit_worker<C: Completion>(
    _device: *mut DEVICE_OBJECT,
    context: *mut c_void,
) {
    // SAFETY: the context is the Box that queue_transmit_file leaked for this one call.
    let job = unsafe { Box::from_raw(context as *mut TransmitJob<C>) };
    let TransmitJob {
        item,
        stats,
        file,
        mut output,
        transfer,
        request,
    } = *job;
    let r = run_file_transfer(&stats, &file, transfer, output.as_mut_slice());
    stats.request_done();
    match r {
        Ok(n) => request.complete(STATUS_SUCCESS, n),
        Err(s) => {
            stats.finished(s);
            request.complete(s, 0)
        }
    }
    drop(file);
    // SAFETY: our work item; its routine is running, so it is no longer queued (freeing it
    // here is the documented pattern).
    unsafe { IoFreeWorkItem(item) };
}

impl DeviceCore {
    /// IRP_MJ_DEVICE_CONTROL with the request's `RequestorMode` (`KPROCESSOR_MODE`: 0
    /// `KernelMode`, 1 `UserMode`; `Irp->RequestorMode` or `WdfRequestGetRequestorMode`),
    /// which TRANSMIT_FILE and TRANSMIT_PACKETS use for the access check on the caller's file
    /// handles; every other operation behaves as [`DeviceCore::device_control`].
    /// PASSIVE_LEVEL (TRANSMIT_* run their whole transfer in this call).
    ///
    /// # Safety
    /// As [`DeviceCore::device_control`].
    #[allow(clippy::too_many_arguments)] // device_control's parameters plus the mode
    pub unsafe fn device_control_from<C: Completion>(
        &self,
        requestor_mode: i8,
        file: &FileContext,
        op: Option<Operation>,
        input: Input<'_>,
        output: &mut [u8],
        data: Option<DataMdl>,
        request: C,
    ) {
        // SAFETY: forwarded caller contract.
        unsafe {
            self.device_control_on(None, requestor_mode, file, op, input, output, data, request)
        }
    }

    /// As [`DeviceCore::device_control_from`], with the driver's device object: with one,
    /// TRANSMIT_FILE pends (the dispatch routine returns before the transfer: a work item,
    /// `IoAllocateWorkItem` / `IoQueueWorkItem` on `device`, reads the file at PASSIVE_LEVEL
    /// and sends, then completes `request`); without one it runs on the calling thread.
    /// PASSIVE_LEVEL.
    ///
    /// # Safety
    /// As [`DeviceCore::device_control`]; `device`, if given, is the driver's live device
    /// object.
    #[allow(clippy::too_many_arguments)] // device_control_from's parameters plus the device
    pub unsafe fn device_control_on<C: Completion>(
        &self,
        device: Option<NonNull<DEVICE_OBJECT>>,
        requestor_mode: i8,
        file: &FileContext,
        op: Option<Operation>,
        input: Input<'_>,
        output: &mut [u8],
        data: Option<DataMdl>,
        request: C,
    ) {
        let mode = RequestorMode::from_raw(requestor_mode);
        if !matches!(
            op,
            Some(Operation::TransmitFile | Operation::TransmitPackets)
        ) {
            // SAFETY: forwarded caller contract.
            return unsafe { self.device_control(file, op, input, output, data, request) };
        }
        let Some(input) = input.whole_call() else {
            return self.fail(request, STATUS_INVALID_DEVICE_REQUEST);
        };
        match op {
            Some(Operation::TransmitFile) if device.is_some() => {
                if let Some(device) = device {
                    // SAFETY: forwarded caller contract.
                    unsafe { self.queue_transmit_file(device, mode, file, input, output, request) }
                }
            }
            Some(Operation::TransmitFile) => {
                let r = self.run_transmit_file(mode, file, input, output);
                self.finish(request, r)
            }
            Some(Operation::TransmitPackets) => {
                let r = self.run_transmit_packets(mode, file, input, output);
                self.finish(request, r)
            }
            _ => self.fail(request, STATUS_INTERNAL_ERROR),
        }
    }

    fn finish<C: Completion>(&self, request: C, r: Result<usize, NTSTATUS>) {
        match r {
            Ok(n) => request.complete(STATUS_SUCCESS, n),
            Err(s) => self.fail(request, s),
        }
    }

    /// TRANSMIT_FILE routed by [`DeviceCore::device_control`] (no requestor mode known:
    /// handles are checked as a user-mode caller's, the strict side).
    pub(super) fn transmit_file<C: Completion>(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
        request: C,
    ) {
        let r = self.run_transmit_file(RequestorMode::User, file, input, output);
        self.finish(request, r)
    }

    /// TRANSMIT_PACKETS routed by [`DeviceCore::device_control`] (checked as user mode).
    pub(super) fn transmit_packets<C: Completion>(
        &self,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
        request: C,
    ) {
        let r = self.run_transmit_packets(RequestorMode::User, file, input, output);
        self.finish(request, r)
    }

    fn after_transfer(
        &self,
        file: &FileContext,
        h: SocketHandle,
        flags: u32,
    ) -> Result<u32, NTSTATUS> {
        after_transfer(&self.stats, file, h, flags)
    }

    fn run_transmit_file(
        &self,
        mode: RequestorMode,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        let t = prepare_transmit_file(mode, file, input, output.len())?;
        run_file_transfer(&self.stats, file, t, output)
    }

    /// TRANSMIT_FILE that pends: prepared here (in the caller's context: parse, reference the
    /// file for `mode`), then a work item on `device` runs the transfer and completes
    /// `request`. Errors before the work item is queued complete `request` here: those of
    /// [`prepare_transmit_file`], `STATUS_INSUFFICIENT_RESOURCES` (the job or the work item).
    ///
    /// # Safety
    /// `device` is the driver's live device object; `output` as [`DeviceCore::device_control`].
    unsafe fn queue_transmit_file<C: Completion>(
        &self,
        device: NonNull<DEVICE_OBJECT>,
        mode: RequestorMode,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
        request: C,
    ) {
        let transfer = match prepare_transmit_file(mode, file, input, output.len()) {
            Ok(t) => t,
            Err(s) => return self.fail(request, s),
        };
        let Some(output) = OutBuf::new(output) else {
            return self.fail(request, STATUS_INVALID_PARAMETER);
        };
        // SAFETY: our device object, alive while the driver is loaded; PASSIVE_LEVEL.
        let item = unsafe { IoAllocateWorkItem(device.as_ptr()) };
        let job = TransmitJob {
            item,
            stats: self.stats,
            file: FileContext {
                table: file.table.clone(),
            },
            output,
            transfer,
            request,
        };
        if item == 0 {
            return self.fail(job.request, STATUS_INSUFFICIENT_RESOURCES);
        }
        let job = match wsk::alloc::try_box_or_return(job) {
            Ok(b) => b,
            Err((_, job)) => {
                // SAFETY: our work item, never queued.
                unsafe { IoFreeWorkItem(job.item) };
                return self.fail(job.request, STATUS_INSUFFICIENT_RESOURCES);
            }
        };
        self.stats.request_pending();
        let routine: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut c_void) =
            transmit_worker::<C>;
        // SAFETY: a live work item queued once; the routine has IO_WORKITEM_ROUTINE's
        // signature (windows-sys declares the pointer type without parameters) and takes
        // ownership of the Box it is given.
        unsafe {
            IoQueueWorkItem(
                item,
                Some(core::mem::transmute::<
                    unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut c_void),
                    unsafe extern "system" fn(),
                >(routine)),
                DELAYED_WORK_QUEUE,
                Box::into_raw(job) as *const c_void,
            )
        };
    }

    fn run_transmit_packets(
        &self,
        mode: RequestorMode,
        file: &FileContext,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, NTSTATUS> {
        let p = parse_transmit_packets(input).map_err(transmit_status)?;
        let req = p.request;
        if output.len() < TransmitResponse::SIZE {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        let s = file.lookup(req.handle).ok_or(STATUS_INVALID_HANDLE)?;
        let datagram = match &*s {
            Socket::Stream(_) => false,
            Socket::Datagram(_) => true,
            Socket::Listen(_) => return Err(STATUS_NOT_SUPPORTED),
        };
        drop(s);
        if datagram && req.flags != 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        // Reference every file element first: bad handles and ranges fail before any byte.
        let mut files: Vec<(FileRef, u64, u64)> = Vec::new();
        for e in p.elements().filter(TransmitElement::is_file) {
            let f = FileRef::open(e.file_handle, mode)?;
            let (off, len) = f.range(e.offset, u64::from(e.length))?;
            try_push(&mut files, (f, off, len))?;
        }
        let (sent, packets) = if datagram {
            let to = contract(req.remote_address.to_optional())?;
            self.send_datagrams(file, req.handle, to, &p, &files)?
        } else {
            let block = effective_block(req.send_size) as usize;
            let mut pipe = Pipe::new(self.stats, file, req.handle, Kind::Stream, block)?;
            let mut fi = files.iter();
            for e in p.elements() {
                if e.is_file() {
                    let (f, off, len) = fi.next().ok_or(STATUS_INTERNAL_ERROR)?;
                    pipe.file_range(f, *off, *len)?;
                } else {
                    pipe.memory(p.memory(&e))?;
                }
            }
            pipe.finish()?;
            (pipe.sent, pipe.packets)
        };
        drop(files);
        let flags = self.after_transfer(file, req.handle, req.flags)?;
        contract(write_response(
            output,
            &TransmitResponse::new(sent, flags, packets),
        ))
    }

    /// Datagram TRANSMIT_PACKETS: each packet (the elements up to and including one with
    /// `ELEMENT_EOP`; when no element has it, each element) is gathered into one nonpaged
    /// block and sent as one `WskSendTo` datagram. `WskSendMessages` (several datagrams per
    /// call) would be used where the provider has it; the host emulation does not, so this
    /// per-datagram path is the one that runs here. Errors: `STATUS_INVALID_BUFFER_SIZE` for
    /// a packet over 65,535 bytes, any status of the send.
    fn send_datagrams(
        &self,
        file: &FileContext,
        h: SocketHandle,
        to: Option<SocketAddr>,
        p: &wskclient_ioctl::transmit::TransmitPackets<'_>,
        files: &[(FileRef, u64, u64)],
    ) -> Result<(u64, u32), NTSTATUS> {
        let any_eop = p.elements().any(|e| e.is_eop());
        let mut pipe = Pipe::new(self.stats, file, h, Kind::Datagram(to), 0)?;
        let mut fi = files.iter();
        let mut packet: Vec<(Option<&FileRef>, u64, u64, &[u8])> = Vec::new();
        let count = p.elements().count();
        for (i, e) in p.elements().enumerate() {
            let part = if e.is_file() {
                let (f, off, len) = fi.next().ok_or(STATUS_INTERNAL_ERROR)?;
                (Some(f), *off, *len, &[][..])
            } else {
                let m = p.memory(&e);
                (None, 0, m.len() as u64, m)
            };
            try_push(&mut packet, part)?;
            let last = i + 1 == count;
            if !any_eop || e.is_eop() || last {
                let total: u64 = packet.iter().map(|x| x.2).sum();
                if total == 0 || total > ioctl::MAX_SEND_TO_BYTES as u64 {
                    return Err(STATUS_INVALID_BUFFER_SIZE);
                }
                let total = total as usize;
                let mut b = pipe.buffer(total)?;
                let mut at = 0usize;
                for (f, off, len, m) in packet.drain(..) {
                    let dst = b
                        .as_mut_slice()
                        .get_mut(at..at + len as usize)
                        .ok_or(STATUS_INTERNAL_ERROR)?;
                    let r = match f {
                        Some(f) => f.read_exact(off, dst),
                        None => {
                            dst.copy_from_slice(m);
                            Ok(())
                        }
                    };
                    if let Err(s) = r {
                        pipe.keep(b);
                        return Err(s);
                    }
                    at += len as usize;
                }
                pipe.send(b, total)?;
            }
        }
        pipe.finish()?;
        Ok((pipe.sent, pipe.packets))
    }
}
