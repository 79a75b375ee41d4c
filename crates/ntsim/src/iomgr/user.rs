//! User-mode handles as user mode sees them: `CreateFile` (IRP_MJ_CREATE), `DeviceIoControl`
//! (IRP_MJ_DEVICE_CONTROL built per the transfer method), `CancelIoEx`, `CloseHandle`
//! (IRP_MJ_CLEANUP, then IRP_MJ_CLOSE once every IRP of the file object has completed), and
//! I/O completion for the IRPs the I/O manager issued.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use windows_sys::Wdk::Foundation::{
    DEVICE_OBJECT, FILE_OBJECT, IO_SECURITY_CONTEXT, IO_STACK_LOCATION, IRP, MDL,
};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_ACCESS_DENIED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_IO_TIMEOUT, STATUS_NO_SUCH_DEVICE, STATUS_OBJECT_NAME_INVALID,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_PENDING, STATUS_SUCCESS,
};

use super::objects::{self, Resolved};
use super::ustr::UnicodeString;
use crate::irp::{self, Origin};
use crate::irql;
use crate::lookaside::Slab;
use crate::verifier::{self, Rule, COUNTERS};

/// `IRP_MJ_CREATE`.
pub const IRP_MJ_CREATE: u8 = 0;
/// `IRP_MJ_CLOSE`.
pub const IRP_MJ_CLOSE: u8 = 2;
/// `IRP_MJ_DEVICE_CONTROL`.
pub const IRP_MJ_DEVICE_CONTROL: u8 = 14;
/// `IRP_MJ_CLEANUP`.
pub const IRP_MJ_CLEANUP: u8 = 18;
/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `METHOD_IN_DIRECT`.
pub const METHOD_IN_DIRECT: u32 = 1;
/// `METHOD_OUT_DIRECT`.
pub const METHOD_OUT_DIRECT: u32 = 2;
/// `METHOD_NEITHER`.
pub const METHOD_NEITHER: u32 = 3;
/// `IO_TYPE_FILE`.
pub const IO_TYPE_FILE: i16 = 5;
/// `UserMode` (`KPROCESSOR_MODE`).
pub const USER_MODE: i8 = 1;
/// `KernelMode`.
pub const KERNEL_MODE: i8 = 0;

const IRP_SYNCHRONOUS_API: u32 = 0x0004;
const IRP_BUFFERED_IO: u32 = 0x0010;
const IRP_DEALLOCATE_BUFFER: u32 = 0x0020;
const IRP_INPUT_OPERATION: u32 = 0x0040;
const IRP_CREATE_OPERATION: u32 = 0x0080;
const IRP_CLOSE_OPERATION: u32 = 0x0400;
/// `FILE_GENERIC_READ | FILE_GENERIC_WRITE`: what `GENERIC_READ | GENERIC_WRITE` maps to for
/// a file object.
const DESIRED_ACCESS: u32 = 0x0012_019F;
/// `FILE_OPEN` disposition, in the high byte of `Parameters.Create.Options`.
const FILE_OPEN: u32 = 1;
/// `FILE_NON_DIRECTORY_FILE`.
const FILE_NON_DIRECTORY_FILE: u32 = 0x40;

/// How long a synchronous `DeviceIoControl` waits before cancelling its IRP.
const SYNC_IOCTL_LIMIT: Duration = Duration::from_secs(60);

/// The final status of a request, as `GetOverlappedResult` reports it
/// (`IoStatus.Status`, `IoStatus.Information`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoStatus {
    /// `IoStatus.Status`.
    pub status: i32,
    /// `IoStatus.Information` (bytes returned, for most requests).
    pub information: usize,
}

/// Live system buffers (METHOD_BUFFERED / direct-I/O input copies): I/O-manager memory,
/// kept out of the driver's pool accounting.
static SYSTEM_BUFFER_BYTES: AtomicU64 = AtomicU64::new(0);

/// What the I/O manager has outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// IRPs the I/O manager issued that have not finished I/O completion.
    pub pending_requests: usize,
    /// Bytes of system buffers allocated now.
    pub system_buffer_bytes: u64,
}

/// The I/O manager's outstanding work now.
pub fn stats() -> Stats {
    Stats {
        pending_requests: PENDING_REQUESTS.load(Ordering::SeqCst),
        system_buffer_bytes: SYSTEM_BUFFER_BYTES.load(Ordering::SeqCst),
    }
}

/// Spare byte vectors for the synchronous `DeviceIoControl`'s copies of the caller's
/// buffers (the user-mode side of a request, not kernel memory), per thread: a request's
/// input and output vectors come back to the thread that drops it, so that a steady state
/// of synchronous calls does not allocate them each time (nor take a lock for them).
/// Bounded in count and in each vector's capacity.
const SPARE_BUFFERS_MAX: usize = 4;
const SPARE_BUFFER_MAX_CAPACITY: usize = 64 * 1024;

thread_local! {
    static SPARE_BUFFERS: std::cell::RefCell<Vec<Vec<u8>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A vector holding a copy of `bytes`, from the spares if one is there.
fn buffer_copy(bytes: &[u8]) -> Vec<u8> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let spare = SPARE_BUFFERS
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .ok()
        .flatten();
    let mut v = spare.unwrap_or_default();
    v.clear();
    v.extend_from_slice(bytes);
    v
}

/// Keeps `v` as a spare (if there is room and it is not too large).
fn recycle_buffer(v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > SPARE_BUFFER_MAX_CAPACITY {
        return;
    }
    let _ = SPARE_BUFFERS.try_with(|s| {
        if let Ok(mut spares) = s.try_borrow_mut() {
            if spares.len() < SPARE_BUFFERS_MAX {
                if spares.capacity() == 0 {
                    spares.reserve_exact(SPARE_BUFFERS_MAX);
                }
                spares.push(v);
            }
        }
    });
}

/// Request blocks kept for reuse, per thread: a finished synchronous `DeviceIoControl`'s
/// request, once nothing else refers to it, is dropped in place and its allocation kept
/// here for the thread's next request (no malloc/free per call). Bounded.
const SPARE_REQUESTS_MAX: usize = 4;

thread_local! {
    static SPARE_REQUESTS: std::cell::RefCell<Vec<Arc<std::mem::MaybeUninit<Request>>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Drops `req` in place and keeps its allocation as a spare, if nothing else refers to it
/// (otherwise just drops this reference).
fn recycle_request(mut req: Arc<Request>) {
    if Arc::get_mut(&mut req).is_none() {
        return;
    }
    let _ = SPARE_REQUESTS.try_with(move |s| {
        let Ok(mut spares) = s.try_borrow_mut() else {
            return;
        };
        if spares.len() >= SPARE_REQUESTS_MAX {
            return;
        }
        if spares.capacity() == 0 {
            spares.reserve_exact(SPARE_REQUESTS_MAX);
        }
        let raw = Arc::into_raw(req).cast_mut();
        // SAFETY: this is the only reference (Arc::get_mut succeeded and `req` was moved
        // here), so nothing can see the value between its drop here and the reuse of its
        // allocation; the allocation is taken back as an Arc of MaybeUninit<Request>, which
        // has Request's size and alignment (Arc::from_raw's requirement).
        unsafe {
            std::ptr::drop_in_place(raw);
            spares.push(Arc::from_raw(raw.cast::<std::mem::MaybeUninit<Request>>()));
        }
    });
}

/// System buffers, from lookaside lists by size like IRPs and MDLs (see
/// [`crate::lookaside`]): a freed one is poisoned and parked (under ASan, unaddressable), so a
/// driver that touches `AssociatedIrp.SystemBuffer` after completion reads the poison.
static SYSTEM_BUFFERS: Mutex<Slab<()>> = Mutex::new(Slab::new());

fn system_buffers() -> MutexGuard<'static, Slab<()>> {
    SYSTEM_BUFFERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A nonpaged system buffer owned by the I/O manager.
struct SystemBuffer {
    ptr: usize,
    len: usize,
}

impl SystemBuffer {
    /// A system buffer of `len` bytes holding `input` followed by zeroes (`input.len()` <=
    /// `len`), or `None` if there is no memory for it.
    fn new(len: usize, input: &[u8]) -> Option<SystemBuffer> {
        let ptr = system_buffers().alloc(len.max(1), ())?;
        let n = input.len().min(len);
        // SAFETY: a fresh slot of `len` bytes, ours; `input` holds n bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(input.as_ptr(), ptr, n);
            std::ptr::write_bytes(ptr.add(n), 0, len - n);
        }
        SYSTEM_BUFFER_BYTES.fetch_add(len as u64, Ordering::SeqCst);
        Some(SystemBuffer {
            ptr: ptr as usize,
            len,
        })
    }

    fn as_ptr(&self) -> *mut u8 {
        self.ptr as *mut u8
    }
}

impl Drop for SystemBuffer {
    fn drop(&mut self) {
        SYSTEM_BUFFER_BYTES.fetch_sub(self.len as u64, Ordering::SeqCst);
        // Poisons it and parks its slot.
        system_buffers().free(self.ptr);
    }
}

/// Where a file object is on its way to IRP_MJ_CLOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseState {
    /// Not sent yet.
    NotSent,
    /// Being sent (by the thread that dropped the last reference).
    Sending,
    /// IRP_MJ_CLOSE completed and the file object is freed.
    Done,
}

/// The references to a file object, as the object manager counts them: the handle (until
/// `CloseHandle`), each system call that has resolved the handle and not yet issued its
/// IRP (`ObReferenceObjectByHandle` inside `NtDeviceIoControlFile`), and each IRP not yet
/// through I/O completion.
struct FileState {
    /// IRPs issued on this file object that have not finished I/O completion (each
    /// request knows its slot).
    irps: Outstanding,
    /// The user handle is open (IRP_MJ_CLEANUP not sent yet).
    handle_open: bool,
    /// References held by calls between resolving the handle and issuing their IRP (and by
    /// `CloseHandle` while its IRP_MJ_CLEANUP is in flight).
    refs: usize,
    close: CloseState,
    /// Threads waiting on `changed` (notified only if there are).
    waiters: u32,
}

/// The requests of a file object not yet through I/O completion: slots reused through a
/// free list, each request holding its slot number (no hashing per request).
#[derive(Default)]
struct Outstanding {
    slots: Vec<Option<Arc<Request>>>,
    free: Vec<usize>,
    len: usize,
}

impl Outstanding {
    /// Adds `req`; returns its slot.
    fn insert(&mut self, req: Arc<Request>) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(req);
                i
            }
            None => {
                self.slots.push(Some(req));
                self.slots.len() - 1
            }
        }
    }

    /// Removes the request in `slot`, if any.
    fn remove(&mut self, slot: usize) -> Option<Arc<Request>> {
        let r = self.slots.get_mut(slot)?.take()?;
        self.len -= 1;
        self.free.push(slot);
        Some(r)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn values(&self) -> impl Iterator<Item = &Arc<Request>> {
        self.slots.iter().flatten()
    }
}

/// A file object and what the I/O manager keeps for it.
struct FileCtx {
    file: usize,
    dev: usize,
    _file_name: UnicodeString,
    state: Mutex<FileState>,
    /// Notified when an IRP of the file object finishes and when the file object is freed.
    changed: Condvar,
    /// The completion port the handle is associated with, and its completion key
    /// (`CreateIoCompletionPort(handle, port, key, 0)`; an association is permanent).
    port: OnceLock<(super::port::CompletionPort, usize)>,
}

impl FileCtx {
    fn state(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Claims the sending of IRP_MJ_CLOSE if the last reference to the file object is gone:
/// the handle is closed, no call holds a reference and no IRP is outstanding ("the last
/// reference to the file object", `IopDeleteFile`). The caller then calls [`send_close`].
fn claim_close(st: &mut FileState) -> bool {
    if !st.handle_open && st.refs == 0 && st.irps.is_empty() && st.close == CloseState::NotSent {
        st.close = CloseState::Sending;
        true
    } else {
        false
    }
}

/// Sends IRP_MJ_CLOSE (at PASSIVE_LEVEL, on the calling thread) and frees the file object.
/// If the driver never completes it (bounded by the hang limit) a violation is recorded and
/// the file object is left to the driver.
fn send_close(ctx: &Arc<FileCtx>) {
    let old = irql::set(irql::PASSIVE_LEVEL);
    let ok = close_irp(ctx, IRP_MJ_CLOSE);
    irql::set(old);
    if !ok {
        return;
    }
    // SAFETY: IRP_MJ_CLOSE was the last IRP of the file object and no reference to it is
    // left; allocated by Box in `open`.
    unsafe { drop(Box::from_raw(ctx.file as *mut FILE_OBJECT)) };
    objects::dereference(ctx.dev);
    ctx.state().close = CloseState::Done;
    ctx.changed.notify_all();
}

/// Sends IRP_MJ_CLOSE from a new system thread: the last reference went in I/O completion,
/// which may run at DISPATCH_LEVEL inside a lower driver's completion path, while a
/// DispatchClose routine is called at PASSIVE_LEVEL in an arbitrary thread context.
fn send_close_deferred(ctx: Arc<FileCtx>) {
    let spawned = std::thread::Builder::new()
        .name("ntsim-close".into())
        .spawn(move || send_close(&ctx));
    if let Err(e) = spawned {
        verifier::violation(
            Rule::HangSuspected,
            format!("could not start a thread for IRP_MJ_CLOSE: {e}"),
        );
    }
}

#[derive(Default)]
struct ReqState {
    io: Option<IoStatus>,
    /// Whether the top stack location was marked pending (`Irp->PendingReturned` at
    /// completion).
    pending_returned: bool,
    /// What the dispatch routine returned, once it has.
    dispatch_status: Option<NTSTATUS>,
    /// Threads inside `IoCancelIrp` on this IRP: its memory must outlive them.
    cancel_refs: u32,
    /// Threads waiting on `cv` for `done` (notified only if there are: a futex wake is a
    /// system call).
    waiters: u32,
    free_claimed: bool,
    /// The IRP is freed and the request is finished.
    done: bool,
    /// DEVICE_CONTROL: the `Parameters.DeviceIoControl` the I/O manager put in the driver's
    /// stack location before dispatch (OutputBufferLength, InputBufferLength, IoControlCode,
    /// Type3InputBuffer), compared at I/O completion ([`Rule::StackLocationClobbered`]).
    dispatch_params: Option<(u32, u32, u32, usize)>,
}

/// One IRP the I/O manager issued, and the user buffers it describes.
struct Request {
    irp: usize,
    major: u8,
    code: u32,
    file: Arc<FileCtx>,
    /// Its slot in the file's outstanding requests (set when submitted).
    file_slot: AtomicUsize,
    /// METHOD_BUFFERED copy-out target: (user output buffer, OutputBufferLength).
    copy_out: Option<(usize, usize)>,
    system_buffer: Mutex<Option<SystemBuffer>>,
    /// The user buffers, alive until completion (the driver reads and writes them through
    /// the MDL or the METHOD_NEITHER pointers).
    _input: Vec<u8>,
    output: Mutex<Vec<u8>>,
    state: Mutex<ReqState>,
    cv: Condvar,
}

impl Drop for Request {
    fn drop(&mut self) {
        recycle_buffer(std::mem::take(&mut self._input));
        recycle_buffer(std::mem::take(
            self.output.get_mut().unwrap_or_else(|p| p.into_inner()),
        ));
    }
}

impl Request {
    fn state(&self) -> MutexGuard<'_, ReqState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait(&self, timeout: Duration) -> Option<IoStatus> {
        let deadline = Instant::now() + timeout;
        let mut s = self.state();
        loop {
            if s.done {
                return s.io;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            s.waiters += 1;
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            s.waiters -= 1;
        }
    }

    fn what(&self) -> String {
        match self.major {
            IRP_MJ_CREATE => "IRP_MJ_CREATE".into(),
            IRP_MJ_CLEANUP => "IRP_MJ_CLEANUP".into(),
            IRP_MJ_CLOSE => "IRP_MJ_CLOSE".into(),
            _ => format!("IRP_MJ_DEVICE_CONTROL {:#010x}", self.code),
        }
    }

    /// A request that never reached a driver.
    fn failed(file: &Arc<FileCtx>, major: u8, code: u32, status: NTSTATUS) -> Arc<Request> {
        let r = Request::new(0, major, code, file, None, None, Vec::new(), Vec::new());
        {
            let mut s = r.state();
            s.io = Some(IoStatus {
                status,
                information: 0,
            });
            s.done = true;
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        irp: usize,
        major: u8,
        code: u32,
        file: &Arc<FileCtx>,
        copy_out: Option<(usize, usize)>,
        system_buffer: Option<SystemBuffer>,
        input: Vec<u8>,
        output: Vec<u8>,
    ) -> Arc<Request> {
        let value = Request {
            irp,
            major,
            code,
            file: file.clone(),
            file_slot: AtomicUsize::new(usize::MAX),
            copy_out,
            system_buffer: Mutex::new(system_buffer),
            _input: input,
            output: Mutex::new(output),
            state: Mutex::new(ReqState::default()),
            cv: Condvar::new(),
        };
        let spare = SPARE_REQUESTS
            .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
            .ok()
            .flatten();
        match spare {
            Some(mut a) => match Arc::get_mut(&mut a) {
                Some(slot) => {
                    slot.write(value);
                    // SAFETY: just written.
                    unsafe { a.assume_init() }
                }
                None => Arc::new(value),
            },
            None => Arc::new(value),
        }
    }
}

/// IRPs issued by the I/O manager and not yet through I/O completion. Each one's request is
/// kept in its IRP's slot header (`irp::set_request`), where I/O completion finds it.
static PENDING_REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// A stand-in for the requesting thread's ETHREAD / the process's EPROCESS: only their
/// addresses are ever used.
static FAKE_THREAD: u64 = 0;
static FAKE_PROCESS: u64 = 0;

/// `IoGetCurrentProcess`: a fake, non-NULL `PEPROCESS`.
#[no_mangle]
pub extern "system" fn IoGetCurrentProcess() -> windows_sys::Wdk::Foundation::PEPROCESS {
    std::ptr::addr_of!(FAKE_PROCESS) as isize
}

/// Allocates an I/O-manager IRP for `file`'s device and fills what every request shares:
/// the file object, the thread, the requestor mode, and the next stack location's major
/// function and file object. Returns the IRP and that stack location.
fn build_irp(
    ctx: &FileCtx,
    major: u8,
    mode: i8,
    flags: u32,
) -> Option<(*mut IRP, *mut IO_STACK_LOCATION)> {
    // SAFETY: the device is live while a file object references it.
    let stack = unsafe { (*(ctx.dev as *const DEVICE_OBJECT)).StackSize };
    let irp = irp::allocate(stack, Origin::IoManager);
    if irp.is_null() {
        return None;
    }
    // SAFETY: fresh IRP with `stack` >= 1 locations; IoGetNextIrpStackLocation is the
    // location just below the current (one-past-the-end) one.
    unsafe {
        (*irp).RequestorMode = mode;
        (*irp).Flags = flags;
        (*irp).Tail.Overlay.OriginalFileObject = ctx.file as *mut FILE_OBJECT;
        (*irp).Tail.Overlay.Thread = std::ptr::addr_of!(FAKE_THREAD) as isize;
        let sl = irp::current_stack_location(irp).sub(1);
        (*sl).MajorFunction = major;
        (*sl).FileObject = ctx.file as *mut FILE_OBJECT;
        Some((irp, sl))
    }
}

/// Registers `req` and sends its IRP to the device (`IoCallDriver`) at PASSIVE_LEVEL, as a
/// user thread's system call does; checks the dispatch routine's return against the IRP's
/// pending state.
fn submit(req: Arc<Request>) -> Arc<Request> {
    let irp = req.irp as *mut IRP;
    let raw = Arc::into_raw(req.clone()) as usize;
    if irp::set_request(irp, raw) {
        PENDING_REQUESTS.fetch_add(1, Ordering::SeqCst);
    } else {
        // SAFETY: from Arc::into_raw just above, not recorded anywhere.
        drop(unsafe { Arc::from_raw(raw as *const Request) });
    }
    {
        let mut st = req.file.state();
        let slot = st.irps.insert(req.clone());
        // Read by `finish` under the same lock.
        req.file_slot.store(slot, Ordering::Relaxed);
    }
    let dev = req.file.dev as *const DEVICE_OBJECT;
    if req.major == IRP_MJ_DEVICE_CONTROL
        && crate::sched::inject_cancel(crate::sched::Point::BeforeDispatch)
    {
        // A CancelIoEx from another thread that ran before the dispatch routine set a cancel
        // routine: IoCancelIrp only sets Irp->Cancel.
        cancel(&req);
    }
    if req.major == IRP_MJ_DEVICE_CONTROL {
        // SAFETY: live IRP, not yet dispatched; its next location is the one the I/O manager
        // filled (build_irp).
        let params = unsafe { device_control_params(irp) };
        req.state().dispatch_params = Some(params);
    }
    let old = irql::set(irql::PASSIVE_LEVEL);
    // SAFETY: live IRP with its next stack location filled; live device.
    let status = unsafe { super::IofCallDriver(dev, irp) };
    let after = irql::set(old);
    if after != irql::PASSIVE_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!(
                "dispatch routine for {} returned at IRQL {after}",
                req.what()
            ),
        );
    }
    let mut s = req.state();
    s.dispatch_status = Some(status);
    if s.io.is_some() {
        check_pending_protocol(&req, &s);
        drop(s);
    } else if status == STATUS_PENDING {
        drop(s);
        if req.major == IRP_MJ_DEVICE_CONTROL
            && crate::sched::inject_cancel(crate::sched::Point::AfterDispatch)
        {
            // A CancelIoEx racing in just after the dispatch routine returned.
            cancel(&req);
        }
    } else {
        drop(s);
        verifier::violation(
            Rule::DriverObject,
            format!(
                "dispatch routine returned {status:#010x} for {} without completing the IRP (return STATUS_PENDING after IoMarkIrpPending, or complete it first)",
                req.what()
            ),
        );
    }
    req
}

/// Driver Verifier's pending checks: STATUS_PENDING must go with IoMarkIrpPending and the
/// reverse.
fn check_pending_protocol(req: &Request, s: &ReqState) {
    let Some(status) = s.dispatch_status else {
        return;
    };
    if status == STATUS_PENDING && !s.pending_returned {
        verifier::violation(
            Rule::PendingStatusMismatch,
            format!(
                "dispatch routine returned STATUS_PENDING for {} without IoMarkIrpPending",
                req.what()
            ),
        );
    } else if status != STATUS_PENDING && s.pending_returned {
        verifier::violation(
            Rule::PendingStatusMismatch,
            format!(
                "dispatch routine marked {} pending (IoMarkIrpPending) but returned {status:#010x}, not STATUS_PENDING",
                req.what()
            ),
        );
    }
}

/// Frees the IRP of a completed request and wakes its waiters; queues its completion packet
/// if the handle is associated with a completion port (see [`Overlapped::queues_packet`]).
fn finish(req: &Arc<Request>) {
    irp::free(req.irp as *const IRP, "I/O completion");
    let (last, wake) = {
        let mut st = req.file.state();
        st.irps.remove(req.file_slot.load(Ordering::Relaxed));
        (claim_close(&mut st), st.waiters > 0)
    };
    if wake {
        req.file.changed.notify_all();
    }
    let (packet, wake) = {
        let mut s = req.state();
        s.done = true;
        (
            s.io.filter(|_| req.major == IRP_MJ_DEVICE_CONTROL && queues_packet(&s)),
            s.waiters > 0,
        )
    };
    if wake {
        req.cv.notify_all();
    }
    if let (Some(status), Some((port, key))) = (packet, req.file.port.get()) {
        port.inner.push(super::port::CompletionPacket {
            key: *key,
            status,
            overlapped: Some(Overlapped { req: req.clone() }),
            posted: 0,
        });
    }
    if last {
        // The last reference to the file object went with this IRP (its handle was closed
        // while it was in flight).
        send_close_deferred(req.file.clone());
    }
}

/// I/O completion: called by `IofCompleteRequest` when an I/O-manager IRP unwinds past its
/// top stack location. Copies METHOD_BUFFERED output back, unlocks and frees the IRP's
/// MDLs, frees the system buffer, records the status, frees the IRP and wakes the waiter.
pub(crate) fn io_completion(irp: *mut IRP) {
    let raw = irp::take_request(irp);
    let req = (raw != 0).then(|| {
        PENDING_REQUESTS.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: recorded by `submit` from Arc::into_raw, and taken back once (the slot's
        // record is cleared by take_request).
        unsafe { Arc::from_raw(raw as *const Request) }
    });
    let Some(req) = req else {
        verifier::violation(
            Rule::DoubleFree,
            format!("I/O completion of IRP {irp:p} that the I/O manager has no request for"),
        );
        irp::free(irp, "I/O completion");
        return;
    };
    // SAFETY: the IRP is live and back with the I/O manager (IofCompleteRequest made its
    // originator its holder); no driver may touch it now.
    let (status, information, pending_returned) = unsafe {
        (
            (*irp).IoStatus.Anonymous.Status,
            (*irp).IoStatus.Information,
            (*irp).PendingReturned,
        )
    };
    if let Some((dst, len)) = req.copy_out {
        // NT_ERROR: severity 3. Success, informational and warning statuses copy out.
        if (status as u32) >> 30 != 3 {
            if information > len {
                verifier::violation(
                    Rule::DriverObject,
                    format!(
                        "{} completed with Information {information} > OutputBufferLength {len} (would overrun the caller's buffer)",
                        req.what()
                    ),
                );
            }
            let n = information.min(len);
            if let Some(sb) = req
                .system_buffer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                // SAFETY: the system buffer holds max(in, out) >= len >= n bytes; `dst` is the
                // request's own output Vec, alive and not otherwise accessed while pending.
                unsafe {
                    std::ptr::copy_nonoverlapping(sb.as_ptr(), dst as *mut u8, n.min(sb.len))
                };
                COUNTERS
                    .io_manager_bytes_copied
                    .fetch_add(n.min(sb.len) as u64, Ordering::SeqCst);
            }
        }
    }
    // SAFETY: as above; the MDL chain at MdlAddress belongs to the request now (Windows frees
    // every MDL on it in I/O completion).
    unsafe {
        let mut mdl: *mut MDL = (*irp).MdlAddress;
        (*irp).MdlAddress = std::ptr::null_mut();
        while !mdl.is_null() {
            let next = (*mdl).Next;
            if (*mdl).MdlFlags & crate::mdl::MDL_PAGES_LOCKED != 0 {
                crate::mdl::MmUnlockPages(mdl);
            }
            crate::mdl::IoFreeMdl(mdl);
            mdl = next;
        }
    }
    drop(
        req.system_buffer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(),
    );
    if let Some(before) = req.state().dispatch_params {
        // SAFETY: the IRP is live and back with the I/O manager; its current location is one
        // past the top, so the driver's location is just below, as at dispatch.
        let after = unsafe { device_control_params(irp) };
        if after != before {
            verifier::violation(
                Rule::StackLocationClobbered,
                format!(
                    "{}: the driver's stack location's Parameters.DeviceIoControl (OutputBufferLength, InputBufferLength, IoControlCode, Type3InputBuffer) were {before:#x?} at dispatch and {after:#x?} at I/O completion (an I/O manager that reads them then, as Wine's does, sees garbage)",
                    req.what()
                ),
            );
        }
    }
    let free_now = {
        let mut s = req.state();
        s.io = Some(IoStatus {
            status,
            information,
        });
        s.pending_returned = pending_returned;
        if s.dispatch_status.is_some() {
            check_pending_protocol(&req, &s);
        }
        s.free_claimed = s.cancel_refs == 0;
        s.free_claimed
    };
    if free_now {
        finish(&req);
    }
}

/// The `Parameters.DeviceIoControl` of the stack location the I/O manager filled for the
/// driver (the one below the IRP's current location, before dispatch and after completion):
/// (OutputBufferLength, InputBufferLength, IoControlCode, Type3InputBuffer).
///
/// # Safety
/// `irp` is a live I/O-manager IRP that is not dispatched yet or has completed.
unsafe fn device_control_params(irp: *mut IRP) -> (u32, u32, u32, usize) {
    // SAFETY: caller contract; the location below the current one is the driver's.
    unsafe {
        let p = *nt_imports::device_io_control(irp::current_stack_location(irp).sub(1));
        (
            p.OutputBufferLength,
            p.InputBufferLength,
            p.IoControlCode,
            p.Type3InputBuffer as usize,
        )
    }
}

/// Whether a finished request queues a completion packet: it was marked pending, or it did
/// not fail (NT_ERROR), as `IopCompleteRequest` decides it.
fn queues_packet(s: &ReqState) -> bool {
    s.pending_returned || s.io.is_some_and(|io| (io.status as u32) >> 30 != 3)
}

/// `IoCancelIrp` on a request's IRP, keeping the IRP's memory alive across the call even if
/// the cancel routine completes it.
fn cancel(req: &Arc<Request>) {
    {
        let mut s = req.state();
        if s.io.is_some() || req.irp == 0 {
            return;
        }
        s.cancel_refs += 1;
    }
    // SAFETY: the IRP is live: it has not been through I/O completion, and completion
    // defers freeing it while cancel_refs > 0.
    unsafe { irp::IoCancelIrp(req.irp as *const IRP) };
    let free_now = {
        let mut s = req.state();
        s.cancel_refs -= 1;
        let claim = s.io.is_some() && s.cancel_refs == 0 && !s.free_claimed;
        if claim {
            s.free_claimed = true;
        }
        claim
    };
    if free_now {
        finish(req);
    }
}

/// A user-mode handle to a device (a file object), as `CreateFile` returns it. Dropping it
/// is `CloseHandle`.
pub struct UserHandle {
    ctx: Arc<FileCtx>,
}

// SAFETY: the file object is only touched by the I/O manager's request paths, which
// serialise on the request and file-context locks; the raw addresses are plain integers.
unsafe impl Send for FileCtx {}
// SAFETY: as above.
unsafe impl Sync for FileCtx {}
// SAFETY: a request's raw addresses (IRP, user buffers) are used only under its locks and
// the I/O manager's completion protocol.
unsafe impl Send for Request {}
// SAFETY: as above.
unsafe impl Sync for Request {}

impl std::fmt::Debug for UserHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserHandle")
            .field("file_object", &(self.ctx.file as *const FILE_OBJECT))
            .field("device", &(self.ctx.dev as *const DEVICE_OBJECT))
            .finish()
    }
}

/// Splits a user path into the object-manager name to look up and the remainder that
/// becomes `FileObject->FileName`.
fn parse_path(path: &str) -> Option<(String, String)> {
    let rest = if let Some(r) = path
        .strip_prefix("\\\\.\\")
        .or_else(|| path.strip_prefix("\\\\?\\"))
    {
        // Win32 device namespace: the first component is a DOS device name.
        format!("\\??\\{r}")
    } else if path.starts_with('\\') {
        path.to_owned()
    } else {
        return None;
    };
    let key = objects::name_key(&rest);
    // The object to look up is a directory prefix plus one component: `\??\X` or
    // `\Device\X`; anything after it is the file name within the device.
    let comps: Vec<&str> = key.splitn(4, '\\').collect();
    // ["", dir, name, remainder?]
    if comps.len() < 3 || comps[1].is_empty() || comps[2].is_empty() {
        return None;
    }
    let object = format!("\\{}\\{}", comps[1], comps[2]);
    let remainder = match comps.get(3) {
        Some(r) => {
            // Preserve the caller's case for the file name.
            let start = rest.len() - r.len() - 1;
            rest[start..].to_owned()
        }
        None => String::new(),
    };
    Some((object, remainder))
}

/// `CreateFile(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, ...)`: resolves
/// `path` (`\\.\X` through the symbolic link `\??\X`, or a native `\Device\X` name), creates a
/// file object and sends IRP_MJ_CREATE, waiting (bounded by the hang limit) if it pends.
pub fn open(path: &str) -> Result<UserHandle, i32> {
    let Some((object, remainder)) = parse_path(path) else {
        return Err(STATUS_OBJECT_NAME_INVALID);
    };
    let dev = match objects::reference_for_open(&object) {
        Resolved::Device(d) => d,
        Resolved::NotFound => return Err(STATUS_OBJECT_NAME_NOT_FOUND),
        Resolved::Unavailable => return Err(STATUS_NO_SUCH_DEVICE),
        Resolved::Exclusive => return Err(STATUS_ACCESS_DENIED),
    };
    let file_name = UnicodeString::new(&remainder);
    // SAFETY: FILE_OBJECT is a plain C structure; all-zero is valid.
    let file: *mut FILE_OBJECT = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
    // SAFETY: fresh allocation, ours.
    unsafe {
        (*file).Type = IO_TYPE_FILE;
        (*file).Size = std::mem::size_of::<FILE_OBJECT>() as i16;
        (*file).DeviceObject = dev as *mut DEVICE_OBJECT;
        (*file).FileName = file_name.header();
        (*file).ReadAccess = true;
        (*file).WriteAccess = true;
        crate::event::KeInitializeEvent(
            std::ptr::addr_of_mut!((*file).Lock),
            crate::event::SYNCHRONIZATION_EVENT,
            false,
        );
        crate::event::KeInitializeEvent(
            std::ptr::addr_of_mut!((*file).Event),
            crate::event::NOTIFICATION_EVENT,
            false,
        );
    }
    let ctx = Arc::new(FileCtx {
        file: file as usize,
        dev,
        _file_name: file_name,
        state: Mutex::new(FileState {
            irps: Outstanding::default(),
            handle_open: true,
            refs: 0,
            close: CloseState::NotSent,
            waiters: 0,
        }),
        changed: Condvar::new(),
        port: OnceLock::new(),
    });
    let discard = |ctx: Arc<FileCtx>| {
        // SAFETY: no IRP references the file object any more; allocated by Box above.
        unsafe { drop(Box::from_raw(ctx.file as *mut FILE_OBJECT)) };
        objects::dereference(ctx.dev);
    };
    // SAFETY: IO_SECURITY_CONTEXT is a plain C structure; all-zero is valid.
    let mut security: Box<IO_SECURITY_CONTEXT> = Box::new(unsafe { std::mem::zeroed() });
    security.DesiredAccess = DESIRED_ACCESS;
    let Some((irp, sl)) = build_irp(
        &ctx,
        IRP_MJ_CREATE,
        USER_MODE,
        IRP_CREATE_OPERATION | IRP_SYNCHRONOUS_API,
    ) else {
        discard(ctx);
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    };
    // SAFETY: live IRP and its next stack location; `security` outlives the request (it is
    // leaked below if the request never completes).
    unsafe {
        (*sl).Parameters.Create.SecurityContext = &mut *security;
        (*sl).Parameters.Create.Options = (FILE_OPEN << 24) | FILE_NON_DIRECTORY_FILE;
        (*sl).Parameters.Create.ShareAccess = 0;
        (*sl).Parameters.Create.FileAttributes = 0;
    }
    let req = submit(Request::new(
        irp as usize,
        IRP_MJ_CREATE,
        0,
        &ctx,
        None,
        None,
        Vec::new(),
        Vec::new(),
    ));
    let Some(st) = req.wait(crate::config::hang_limit()) else {
        verifier::violation(
            Rule::HangSuspected,
            format!(
                "IRP_MJ_CREATE for {path} not completed within {:?}",
                crate::config::hang_limit()
            ),
        );
        // The driver still holds the IRP, which points at the file object and the security
        // context: leave them to it.
        std::mem::forget(security);
        return Err(STATUS_IO_TIMEOUT);
    };
    drop(req);
    drop(security);
    if st.status < 0 {
        discard(ctx);
        return Err(st.status);
    }
    Ok(UserHandle { ctx })
}

/// An overlapped `DeviceIoControl` in flight (or finished): the `OVERLAPPED` plus the buffers
/// the request owns until it completes.
pub struct Overlapped {
    req: Arc<Request>,
}

impl std::fmt::Debug for Overlapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlapped")
            .field("request", &self.req.what())
            .field("status", &self.req.state().io)
            .finish()
    }
}

impl Overlapped {
    /// `GetOverlappedResult` with a bound: the final status once the IRP has been through I/O
    /// completion, or `None` if it has not within `timeout`.
    pub fn wait(&self, timeout: Duration) -> Option<IoStatus> {
        self.req.wait(timeout)
    }

    /// Whether the request has finished (`HasOverlappedIoCompleted`).
    pub fn is_complete(&self) -> bool {
        self.req.state().done
    }

    /// The status, if complete.
    pub fn status(&self) -> Option<IoStatus> {
        let s = self.req.state();
        if s.done {
            s.io
        } else {
            None
        }
    }

    /// Whether this request queues (or queued) a packet to the completion port of its handle
    /// when it finishes: false only when it failed synchronously (never reached the driver,
    /// or completed with an error status without being marked pending), the case where
    /// `DeviceIoControl` returns FALSE with an error other than `ERROR_IO_PENDING`. Meaningful
    /// once the submitting call has returned.
    pub fn queues_packet(&self) -> bool {
        let s = self.req.state();
        s.io.is_none() || queues_packet(&s)
    }

    /// An identity of the request (the `lpOverlapped` of its packet), stable while any
    /// `Overlapped` for it is alive.
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.req) as usize
    }

    /// `CancelIoEx(handle, &overlapped)`: cancels this one request.
    pub fn cancel(&self) {
        cancel(&self.req);
    }

    /// The output buffer after completion.
    ///
    /// # Panics
    /// If the request has not completed (the driver may still write to the buffer).
    pub fn output(self) -> Vec<u8> {
        self.take_output()
    }

    fn take_output(&self) -> Vec<u8> {
        assert!(
            self.is_complete(),
            "Overlapped::output before the request completed"
        );
        std::mem::take(&mut *self.req.output.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl UserHandle {
    /// The file object (for tests that look at what the driver stored in `FsContext`).
    pub fn file_object(&self) -> *mut FILE_OBJECT {
        self.ctx.file as *mut FILE_OBJECT
    }

    /// `CreateIoCompletionPort(handle, port, key, 0)`: from now on every request of this
    /// handle queues a packet with `key` to `port` when it finishes (see
    /// [`Overlapped::queues_packet`]). Returns `STATUS_SUCCESS`, or `STATUS_INVALID_PARAMETER`
    /// if the handle is already associated with a port (an association cannot change).
    pub fn associate_completion_port(
        &self,
        port: &super::port::CompletionPort,
        key: usize,
    ) -> NTSTATUS {
        match self.ctx.port.set((port.clone(), key)) {
            Ok(()) => STATUS_SUCCESS,
            Err(_) => STATUS_INVALID_PARAMETER,
        }
    }

    /// Requests of this handle that have not completed yet.
    pub fn pending_requests(&self) -> usize {
        self.ctx.state().irps.len()
    }

    /// IRPs issued on this handle whose dispatch routine has returned `STATUS_PENDING` and
    /// that have not completed: requests the driver holds pending now. Unlike
    /// [`UserHandle::pending_requests`], this does not count an IRP that is registered with
    /// the file object but whose dispatch routine has not run yet (a test that closes the
    /// handle "while requests are pending in the driver" waits on this).
    pub fn requests_pending_in_driver(&self) -> usize {
        let reqs: Vec<Arc<Request>> = self.ctx.state().irps.values().cloned().collect();
        reqs.iter()
            .filter(|r| {
                let s = r.state();
                s.dispatch_status == Some(STATUS_PENDING) && s.io.is_none()
            })
            .count()
    }

    /// Whether IRP_MJ_CLOSE has been sent and completed and the file object freed.
    pub fn is_released(&self) -> bool {
        self.ctx.state().close == CloseState::Done
    }

    /// Synchronous `DeviceIoControl`: waits for completion (up to 60 s; on expiry the IRP is
    /// cancelled with `IoCancelIrp` and waited for again, bounded by the hang limit; if it
    /// still does not complete, a [`Rule::HangSuspected`] violation is recorded and
    /// `STATUS_IO_TIMEOUT` returned). The output buffer receives what the driver returned
    /// (METHOD_BUFFERED: `Information` bytes, clamped to its length).
    pub fn device_io_control(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        let ov = self.device_io_control_overlapped(code, buffer_copy(input), buffer_copy(output));
        let st = match ov.wait(SYNC_IOCTL_LIMIT) {
            Some(st) => st,
            None => {
                eprintln!(
                    "ntsim: synchronous DeviceIoControl {code:#010x} not complete after {SYNC_IOCTL_LIMIT:?}; cancelling it"
                );
                ov.cancel();
                match ov.wait(crate::config::hang_limit()) {
                    Some(st) => st,
                    None => {
                        verifier::violation(
                            Rule::HangSuspected,
                            format!(
                                "DeviceIoControl {code:#010x}: IRP not completed after IoCancelIrp"
                            ),
                        );
                        return IoStatus {
                            status: STATUS_IO_TIMEOUT,
                            information: 0,
                        };
                    }
                }
            }
        };
        let out = ov.take_output();
        // A request that never reached a driver (closed handle, no resources) has no buffer.
        if out.len() == output.len() {
            output.copy_from_slice(&out);
        }
        recycle_buffer(out);
        recycle_request(ov.req);
        st
    }

    /// Overlapped `DeviceIoControl`: builds the IRP per the code's transfer method, calls the
    /// driver, and returns once the dispatch routine has returned. The request owns `input`
    /// and `output` until it completes ([`Overlapped::output`] gives the output back).
    ///
    /// - METHOD_BUFFERED: one system buffer of max(input, output) bytes in
    ///   `AssociatedIrp.SystemBuffer`, the input copied in; on completion `Information` bytes
    ///   (at most the output length) are copied back.
    /// - METHOD_IN_DIRECT / METHOD_OUT_DIRECT: the input copied to a system buffer (if any);
    ///   the output buffer described by a locked MDL in `MdlAddress`, not copied.
    /// - METHOD_NEITHER: `Type3InputBuffer` and `UserBuffer` are the caller's buffers.
    pub fn device_io_control_overlapped(
        &self,
        code: u32,
        input: Vec<u8>,
        output: Vec<u8>,
    ) -> Overlapped {
        self.device_io_control_with(code, input, output, false)
    }

    /// Overlapped `DeviceIoControl` whose IRP another thread's `CancelIoEx` reaches before
    /// the dispatch routine runs: the IRP is already queued to the requesting thread, has no
    /// cancel routine, so `IoCancelIrp` only sets `Irp->Cancel` (and returns FALSE). The
    /// dispatch routine then sees `Cancel` set. This is the window the "IoSetCancelRoutine,
    /// then check Irp->Cancel" pattern of the "Cancel-Safe IRP Queues" / "Points to Consider
    /// When Cancelling IRPs" pages exists for; here it is hit deterministically.
    pub fn device_io_control_cancelled_before_dispatch(
        &self,
        code: u32,
        input: Vec<u8>,
        output: Vec<u8>,
    ) -> Overlapped {
        self.device_io_control_with(code, input, output, true)
    }

    fn device_io_control_with(
        &self,
        code: u32,
        input: Vec<u8>,
        output: Vec<u8>,
        cancel_first: bool,
    ) -> Overlapped {
        let ctx = &self.ctx;
        // NtDeviceIoControlFile: resolve the handle to the file object and reference it
        // (ObReferenceObjectByHandle). A closed handle fails here; a call that referenced the
        // file object before another thread closed the handle still sends its IRP, which may
        // then reach the driver after IRP_MJ_CLEANUP, as on Windows.
        {
            let mut st = ctx.state();
            if !st.handle_open {
                drop(st);
                return Overlapped {
                    req: Request::failed(ctx, IRP_MJ_DEVICE_CONTROL, code, STATUS_INVALID_HANDLE),
                };
            }
            st.refs += 1;
        }
        crate::sched::point(crate::sched::Point::HandleReferenced);
        let ov = self.issue_device_io_control(code, input, output, cancel_first);
        // ObDereferenceObject: the IRP (if one was issued) holds its own reference now.
        let last = {
            let mut st = ctx.state();
            st.refs -= 1;
            claim_close(&mut st)
        };
        if last {
            send_close(ctx);
        }
        ov
    }

    fn issue_device_io_control(
        &self,
        code: u32,
        input: Vec<u8>,
        mut output: Vec<u8>,
        cancel_first: bool,
    ) -> Overlapped {
        let ctx = &self.ctx;
        let fail = |status| Overlapped {
            req: Request::failed(ctx, IRP_MJ_DEVICE_CONTROL, code, status),
        };
        let (Ok(in_len), Ok(out_len)) = (u32::try_from(input.len()), u32::try_from(output.len()))
        else {
            return fail(STATUS_INVALID_PARAMETER);
        };
        let method = code & 3;
        let in_ptr = if input.is_empty() {
            std::ptr::null_mut()
        } else {
            input.as_ptr() as *mut c_void
        };
        let out_ptr: *mut c_void = if output.is_empty() {
            std::ptr::null_mut()
        } else {
            output.as_mut_ptr().cast()
        };
        // The system buffer and the IRP flags for it.
        let sys_len = match method {
            METHOD_BUFFERED => in_len.max(out_len) as usize,
            METHOD_IN_DIRECT | METHOD_OUT_DIRECT => in_len as usize,
            _ => 0,
        };
        let system_buffer = if sys_len > 0 {
            let Some(sb) = SystemBuffer::new(sys_len, &input) else {
                return fail(STATUS_INSUFFICIENT_RESOURCES);
            };
            COUNTERS
                .io_manager_bytes_copied
                .fetch_add(in_len as u64, Ordering::SeqCst);
            Some(sb)
        } else {
            None
        };
        let mut flags = 0;
        if system_buffer.is_some() {
            flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
            if method == METHOD_BUFFERED && out_len > 0 {
                flags |= IRP_INPUT_OPERATION;
            }
        }
        let Some((irp, sl)) = build_irp(ctx, IRP_MJ_DEVICE_CONTROL, USER_MODE, flags) else {
            return fail(STATUS_INSUFFICIENT_RESOURCES);
        };
        // SAFETY: live IRP and its next stack location, ours until IoCallDriver; the buffers
        // pointed to move into the request, which keeps them alive until completion.
        unsafe {
            (*irp).UserBuffer = out_ptr;
            (*irp).AssociatedIrp.SystemBuffer = system_buffer
                .as_ref()
                .map_or(std::ptr::null_mut(), |sb| sb.as_ptr().cast());
            // wdm.h's x64 layout (windows-sys's struct lacks POINTER_ALIGNMENT).
            let p = &mut *nt_imports::device_io_control(sl);
            p.OutputBufferLength = out_len;
            p.InputBufferLength = in_len;
            p.IoControlCode = code;
            if method == METHOD_NEITHER {
                p.Type3InputBuffer = in_ptr;
            }
            if (method == METHOD_IN_DIRECT || method == METHOD_OUT_DIRECT) && out_len > 0 {
                let mdl = crate::faults::internal(|| {
                    crate::mdl::IoAllocateMdl(out_ptr, out_len, false, false, irp)
                });
                if mdl.is_null() {
                    irp::free(irp, "IoBuildDeviceIoControlRequest");
                    return fail(STATUS_INSUFFICIENT_RESOURCES);
                }
                // MmProbeAndLockPages(mdl, UserMode, IoReadAccess for METHOD_IN_DIRECT,
                // IoWriteAccess for METHOD_OUT_DIRECT), on the MDL just allocated here.
                crate::mdl::lock_new(mdl);
            }
        }
        if cancel_first {
            // SAFETY: live IRP, not yet sent to any driver: IoCancelIrp with no cancel
            // routine set does exactly this.
            unsafe { (*irp).Cancel = true };
        }
        let copy_out = (method == METHOD_BUFFERED && out_len > 0)
            .then_some((out_ptr as usize, out_len as usize));
        let req = Request::new(
            irp as usize,
            IRP_MJ_DEVICE_CONTROL,
            code,
            ctx,
            copy_out,
            system_buffer,
            input,
            output,
        );
        Overlapped { req: submit(req) }
    }

    /// `CancelIoEx(handle, NULL)`: `IoCancelIrp` on every pending IRP of this handle.
    pub fn cancel_io(&self) {
        let reqs: Vec<Arc<Request>> = self.ctx.state().irps.values().cloned().collect();
        for r in reqs {
            cancel(&r);
        }
    }

    /// `CloseHandle`: closes the handle. The handle is gone at once (later calls on it fail
    /// with `STATUS_INVALID_HANDLE`); IRP_MJ_CLEANUP is sent and waited for (bounded by the
    /// hang limit), even while other threads are inside `DeviceIoControl` on the handle: the
    /// driver's cleanup must complete the file object's pending requests. IRP_MJ_CLOSE
    /// follows when the last reference to the file object goes: here, if nothing is in
    /// flight; otherwise when the last outstanding IRP finishes I/O completion (from a
    /// system thread at PASSIVE_LEVEL), or when a call that had already referenced the file
    /// object has issued its IRP. Returns `STATUS_SUCCESS`, or `STATUS_INVALID_HANDLE` if
    /// the handle was already closed.
    pub fn close(&self) -> NTSTATUS {
        {
            let mut st = self.ctx.state();
            if !st.handle_open {
                return STATUS_INVALID_HANDLE;
            }
            st.handle_open = false;
            // CloseHandle's own reference while IRP_MJ_CLEANUP is in flight.
            st.refs += 1;
        }
        crate::sched::point(crate::sched::Point::HandleClosed);
        let cleaned = close_irp(&self.ctx, IRP_MJ_CLEANUP);
        let last = {
            let mut st = self.ctx.state();
            st.refs -= 1;
            // A cleanup that never completed keeps the file object alive: Windows would not
            // send IRP_MJ_CLOSE while the driver holds the cleanup IRP.
            cleaned && claim_close(&mut st)
        };
        if last {
            send_close(&self.ctx);
        }
        STATUS_SUCCESS
    }

    /// Waits (bounded by the hang limit) until IRP_MJ_CLOSE has completed and the file
    /// object is freed; on expiry records a [`Rule::HangSuspected`] violation naming the
    /// IRPs the driver still holds and returns false.
    pub fn wait_released(&self) -> bool {
        let limit = crate::config::hang_limit();
        let deadline = Instant::now() + limit;
        let mut st = self.ctx.state();
        while st.close != CloseState::Done {
            let now = Instant::now();
            if now >= deadline {
                let what: Vec<String> = st.irps.values().map(|r| r.what()).collect();
                drop(st);
                verifier::violation(
                    Rule::HangSuspected,
                    format!(
                        "file object {:#x}: not released {limit:?} after CloseHandle (the driver must complete its pending IRPs in its cleanup); IRPs still pending: {what:?}",
                        self.ctx.file
                    ),
                );
                return false;
            }
            st.waiters += 1;
            st = self
                .ctx
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            st.waiters -= 1;
        }
        true
    }
}

/// Sends a cleanup or close IRP for `ctx` and waits for it (bounded). False if it never
/// completed.
fn close_irp(ctx: &Arc<FileCtx>, major: u8) -> bool {
    let flags = IRP_CLOSE_OPERATION | IRP_SYNCHRONOUS_API;
    let Some((irp, _sl)) = build_irp(ctx, major, KERNEL_MODE, flags) else {
        verifier::violation(Rule::DriverObject, "could not allocate a cleanup/close IRP");
        return false;
    };
    let req = submit(Request::new(
        irp as usize,
        major,
        0,
        ctx,
        None,
        None,
        Vec::new(),
        Vec::new(),
    ));
    if req.wait(crate::config::hang_limit()).is_none() {
        verifier::violation(
            Rule::HangSuspected,
            format!(
                "{} not completed within {:?}",
                req.what(),
                crate::config::hang_limit()
            ),
        );
        return false;
    }
    true
}

impl Drop for UserHandle {
    /// `CloseHandle` (if [`UserHandle::close`] was not called), then a bounded wait until the
    /// file object is released (IRP_MJ_CLOSE completed): if requests stay pending after
    /// IRP_MJ_CLEANUP, a violation is recorded and the file object is left alive (Windows
    /// would never send IRP_MJ_CLOSE).
    fn drop(&mut self) {
        self.close();
        self.wait_released();
    }
}
