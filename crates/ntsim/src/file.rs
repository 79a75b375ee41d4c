//! Emulated file objects, the process and kernel handle tables, and the object-manager and
//! file routines a driver uses on a caller's file handle: `ObReferenceObjectByHandle`,
//! `ObOpenObjectByPointer`, `ObfDereferenceObject`, `ZwReadFile`, `ZwQueryInformationFile`
//! (`FileStandardInformation`), `ZwClose`, and the `IoFileObjectType` data export.
//!
//! User side ([`open_file`], [`create_event`], [`close_handle`]): a test or the embedded
//! console opens a real host file read-only or write-only, or a non-file object (an event),
//! and gets a HANDLE value valid in the emulated process handle table; it may close it at any
//! time. As on Windows, an object lives while any handle or reference to it exists: "The
//! object manager ... increments the reference count ... the driver must call
//! ObDereferenceObject when it is done with the object"
//! (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-obreferenceobjectbyhandle>),
//! and ZwClose: "the object ... is deleted when the last reference to it is released"
//! (<https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose>). So a
//! driver that referenced a file keeps reading it after the caller closed its handle.
//!
//! Emulation limits (our choices): every read is synchronous (`pread` on the host file; never
//! `STATUS_PENDING`); `ZwReadFile` needs an explicit `ByteOffset`; only
//! `FileStandardInformation` is answered. Kernel handles (`OBJ_KERNEL_HANDLE`) have the high
//! bits set, as on Windows, and are refused with `UserMode`.

use rustc_hash::FxHashMap;
use std::ffi::c_void;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use windows_sys::Win32::Foundation::*;
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

use crate::event::NOTIFICATION_EVENT;
use crate::irql;
use crate::verifier::{self, Rule};

/// `FILE_READ_DATA` (1): read access to a file.
pub const FILE_READ_DATA: u32 = 0x0001;
/// `FILE_WRITE_DATA` (2): write access to a file.
pub const FILE_WRITE_DATA: u32 = 0x0002;
/// `SYNCHRONIZE` (0x0010_0000).
pub const SYNCHRONIZE: u32 = 0x0010_0000;
/// `EVENT_ALL_ACCESS` (0x1F0003).
pub const EVENT_ALL_ACCESS: u32 = 0x001F_0003;
/// `OBJ_KERNEL_HANDLE` (0x200): the handle goes to the kernel (System) handle table.
pub const OBJ_KERNEL_HANDLE: u32 = 0x0200;
/// `KernelMode` (0) of `KPROCESSOR_MODE`.
pub const KERNEL_MODE: i8 = 0;
/// `UserMode` (1) of `KPROCESSOR_MODE`.
pub const USER_MODE: i8 = 1;
/// `FileStandardInformation` (5) of `FILE_INFORMATION_CLASS`.
pub const FILE_STANDARD_INFORMATION_CLASS: i32 = 5;

/// How a user-side handle to a host file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `GENERIC_READ`-like: `FILE_READ_DATA | SYNCHRONIZE`.
    Read,
    /// `GENERIC_WRITE`-like: `FILE_WRITE_DATA | SYNCHRONIZE` (no read access).
    Write,
}

/// An `OBJECT_TYPE` stand-in: the emulator compares type pointers only.
#[repr(C)]
pub struct ObjectType {
    name: &'static str,
}

impl ObjectType {
    /// The type's name ("File", "Event").
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The file object type (`*IoFileObjectType`).
pub static FILE_TYPE: ObjectType = ObjectType { name: "File" };
/// The event object type (`*ExEventObjectType`).
pub static EVENT_TYPE: ObjectType = ObjectType { name: "Event" };

/// A pointer-sized static that may be exported as data.
#[repr(transparent)]
pub struct DataPtr(pub *const c_void);
// SAFETY: immutable pointers to immutable statics.
unsafe impl Sync for DataPtr {}

static FILE_TYPE_PTR: DataPtr = DataPtr(&FILE_TYPE as *const ObjectType as *const c_void);

/// `IoFileObjectType`: ntoskrnl exports it as data of type `POBJECT_TYPE *` (wdm.h:
/// `extern POBJECT_TYPE *IoFileObjectType;`); drivers pass `*IoFileObjectType`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-obreferenceobjectbyhandle>
#[no_mangle]
pub static IoFileObjectType: DataPtr = DataPtr(&FILE_TYPE_PTR as *const DataPtr as *const c_void);

enum Kind {
    File(std::fs::File),
    Event,
}

struct Object {
    kind: Kind,
    /// A file object opened for asynchronous I/O (no FILE_SYNCHRONOUS_IO_*): `ZwReadFile`
    /// returns STATUS_PENDING and completes later.
    asynchronous: bool,
    /// The file object's own event (`FILE_OBJECT.Event`): what a wait on a file handle waits
    /// for; signalled by an asynchronous read given no event. A KEVENT.
    file_event: Box<[u64; 4]>,
    /// The access the creating open was granted (the most any handle may get).
    max_access: u32,
    /// Handles plus references.
    count: u64,
    /// The body whose address is the object pointer (a zeroed FILE_OBJECT-sized block).
    body: Box<[u64; 32]>,
}

impl Object {
    fn type_ptr(&self) -> *const ObjectType {
        match self.kind {
            Kind::File(_) => &FILE_TYPE,
            Kind::Event => &EVENT_TYPE,
        }
    }
}

#[derive(Clone, Copy)]
struct HandleEntry {
    object: usize,
    access: u32,
    kernel: bool,
}

#[derive(Default)]
struct Tables {
    objects: FxHashMap<usize, Object>,
    handles: FxHashMap<u64, HandleEntry>,
    next: u64,
}

static TABLES: Mutex<Option<Tables>> = Mutex::new(None);
static KERNEL_REFERENCES: AtomicU64 = AtomicU64::new(0);

fn tables() -> MutexGuard<'static, Option<Tables>> {
    TABLES.lock().unwrap_or_else(|p| p.into_inner())
}

fn with<R>(f: impl FnOnce(&mut Tables) -> R) -> R {
    let mut g = tables();
    f(g.get_or_insert_with(Tables::default))
}

/// High bits of a kernel handle (Windows kernel handles are negative when sign-extended).
const KERNEL_HANDLE_BITS: u64 = 0xFFFF_FFFF_8000_0000;

fn insert_handle(t: &mut Tables, object: usize, access: u32, kernel: bool) -> u64 {
    t.next += 1;
    let base = 0x1000 + t.next * 4;
    let h = if kernel {
        KERNEL_HANDLE_BITS | base
    } else {
        base
    };
    t.handles.insert(
        h,
        HandleEntry {
            object,
            access,
            kernel,
        },
    );
    if let Some(o) = t.objects.get_mut(&object) {
        o.count += 1;
    }
    h
}

fn new_object(t: &mut Tables, kind: Kind, max_access: u32) -> usize {
    new_object_with(
        t,
        kind,
        max_access,
        false,
        crate::event::NOTIFICATION_EVENT,
        false,
    )
}

fn new_object_with(
    t: &mut Tables,
    kind: Kind,
    max_access: u32,
    asynchronous: bool,
    event_type: i32,
    signalled: bool,
) -> usize {
    let mut body = Box::new([0u64; 32]);
    let mut file_event = Box::new([0u64; 4]);
    // SAFETY: both blocks are larger than a KEVENT (24 bytes) and 8-aligned. An event
    // object's body is its KEVENT.
    unsafe {
        crate::event::KeInitializeEvent(file_event.as_mut_ptr().cast(), NOTIFICATION_EVENT, false);
        if matches!(kind, Kind::Event) {
            crate::event::KeInitializeEvent(body.as_mut_ptr().cast(), event_type, signalled);
        }
    }
    let key = body.as_ptr() as usize;
    t.objects.insert(
        key,
        Object {
            kind,
            asynchronous,
            file_event,
            max_access,
            count: 0,
            body,
        },
    );
    key
}

fn release(t: &mut Tables, object: usize) -> Option<u64> {
    let o = t.objects.get_mut(&object)?;
    o.count = o.count.saturating_sub(1);
    let left = o.count;
    if left == 0 {
        // The last handle or reference: the object goes (its host file closes).
        let o = t.objects.remove(&object);
        drop(o.map(|o| o.body));
    }
    Some(left)
}

/// Opens the host file at `path` (read-only for [`Access::Read`], write-only for
/// [`Access::Write`]) and returns a process handle to a new file object.
pub fn open_file(path: &std::path::Path, access: Access) -> std::io::Result<u64> {
    let (file, mask) = match access {
        Access::Read => (std::fs::File::open(path)?, FILE_READ_DATA | SYNCHRONIZE),
        Access::Write => (
            std::fs::OpenOptions::new().write(true).open(path)?,
            FILE_WRITE_DATA | SYNCHRONIZE,
        ),
    };
    Ok(with(|t| {
        let o = new_object(t, Kind::File(file), mask);
        insert_handle(t, o, mask, false)
    }))
}

/// Opens the host file at `path` read-only **for asynchronous I/O** (as `CreateFile` with
/// `FILE_FLAG_OVERLAPPED`, or `NtCreateFile` without `FILE_SYNCHRONOUS_IO_*`): reads through
/// any handle to it return STATUS_PENDING and complete after [`async_read_delay`], writing
/// the caller's buffer and IO_STATUS_BLOCK then, and signalling the read's event (or, with
/// none, the file object's event). Returns a process handle.
pub fn open_file_async(path: &std::path::Path) -> std::io::Result<u64> {
    let file = std::fs::File::open(path)?;
    let mask = FILE_READ_DATA | SYNCHRONIZE;
    Ok(with(|t| {
        let o = new_object_with(t, Kind::File(file), mask, true, NOTIFICATION_EVENT, false);
        insert_handle(t, o, mask, false)
    }))
}

static ASYNC_READ_DELAY_MS: AtomicU64 = AtomicU64::new(50);

/// How long an asynchronous read takes to complete (default 50 ms).
pub fn async_read_delay() -> std::time::Duration {
    std::time::Duration::from_millis(ASYNC_READ_DELAY_MS.load(Ordering::SeqCst))
}

/// Sets how long an asynchronous read takes (a test that needs the driver's timeout path
/// sets a long one).
pub fn set_async_read_delay(delay: std::time::Duration) {
    ASYNC_READ_DELAY_MS.store(delay.as_millis() as u64, Ordering::SeqCst);
}

/// Whether `object` is the body of a live file object (not a dispatcher object: a driver
/// that passes it to KeWaitForSingleObject waits on garbage).
pub(crate) fn is_file_object(object: *const c_void) -> bool {
    with(|t| {
        t.objects
            .get(&(object as usize))
            .is_some_and(|o| matches!(o.kind, Kind::File(_)))
    })
}

/// Creates an event object (a non-file object) and returns a process handle to it.
pub fn create_event() -> u64 {
    with(|t| {
        let o = new_object(t, Kind::Event, EVENT_ALL_ACCESS);
        insert_handle(t, o, EVENT_ALL_ACCESS, false)
    })
}

/// `CloseHandle` of the user side: closes a process handle. The object lives on while the
/// kernel holds references or handles to it. Errors: `STATUS_INVALID_HANDLE`.
pub fn close_handle(handle: u64) -> NTSTATUS {
    abandon_reads(handle, "CloseHandle");
    with(|t| match t.handles.get(&handle).copied() {
        Some(e) if !e.kernel => {
            t.handles.remove(&handle);
            release(t, e.object);
            STATUS_SUCCESS
        }
        _ => STATUS_INVALID_HANDLE,
    })
}

/// Live objects, handles and references of the emulated object manager.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Objects (files and events) alive.
    pub objects: u64,
    /// Process (user) handles open.
    pub user_handles: u64,
    /// Kernel handles open (`OBJ_KERNEL_HANDLE`).
    pub kernel_handles: u64,
    /// References taken by `ObReferenceObjectByHandle` and not yet released.
    pub references: u64,
}

/// The live counts.
pub fn live() -> Live {
    with(|t| Live {
        objects: t.objects.len() as u64,
        user_handles: t.handles.values().filter(|e| !e.kernel).count() as u64,
        kernel_handles: t.handles.values().filter(|e| e.kernel).count() as u64
            + crate::security::open_device_handles(),
        references: KERNEL_REFERENCES.load(Ordering::SeqCst),
    })
}

/// Records a violation if a driver still holds kernel handles or object references (called
/// by [`crate::Scope::assert_clean`]: at the end of a test no request is in progress, so
/// every reference a driver took must have been released).
pub fn check_released() {
    abandon_reads(0, "the end of the test");
    let l = live();
    if l.kernel_handles != 0 || l.references != 0 {
        verifier::violation(
            Rule::ObjectReferenceLeak,
            format!(
                "{} kernel handle(s) and {} object reference(s) never closed/released",
                l.kernel_handles, l.references
            ),
        );
    }
}

fn require_irql(what: &str, max: u8) {
    let now = irql::current();
    if now > max {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("{what} called at IRQL {now} (max {max})"),
        );
    }
}

/// `ObReferenceObjectByHandle`: validates `Handle` for `AccessMode` and takes a reference on
/// its object. IRQL <= APC_LEVEL.
///
/// Errors: `STATUS_INVALID_HANDLE` (no such handle, or a kernel handle with `UserMode`),
/// `STATUS_OBJECT_TYPE_MISMATCH` (`ObjectType` given and different), `STATUS_ACCESS_DENIED`
/// (`UserMode` and the handle lacks `DesiredAccess`; `KernelMode` skips the check, as
/// documented).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-obreferenceobjectbyhandle>
#[no_mangle]
pub unsafe extern "system" fn ObReferenceObjectByHandle(
    handle: HANDLE,
    desired_access: u32,
    object_type: *const c_void,
    access_mode: i8,
    object: *mut *mut c_void,
    _handle_information: *mut c_void,
) -> NTSTATUS {
    require_irql("ObReferenceObjectByHandle", irql::APC_LEVEL);
    let h = handle as u64;
    with(|t| {
        let Some(e) = t.handles.get(&h).copied() else {
            return STATUS_INVALID_HANDLE;
        };
        if e.kernel && access_mode != KERNEL_MODE {
            return STATUS_INVALID_HANDLE;
        }
        let Some(o) = t.objects.get_mut(&e.object) else {
            return STATUS_INVALID_HANDLE;
        };
        if !object_type.is_null() && object_type != o.type_ptr() as *const c_void {
            return STATUS_OBJECT_TYPE_MISMATCH;
        }
        if access_mode != KERNEL_MODE && e.access & desired_access != desired_access {
            return STATUS_ACCESS_DENIED;
        }
        o.count += 1;
        KERNEL_REFERENCES.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller passes a valid out pointer.
        unsafe { *object = e.object as *mut c_void };
        STATUS_SUCCESS
    })
}

/// `ObfDereferenceObject` (what `ObDereferenceObject` expands to): releases a reference; the
/// object goes with its last reference. IRQL <= DISPATCH_LEVEL. Returns the count left.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-obdereferenceobject>
#[no_mangle]
pub unsafe extern "system" fn ObfDereferenceObject(object: *const c_void) -> isize {
    require_irql("ObfDereferenceObject", irql::DISPATCH_LEVEL);
    let left = with(|t| release(t, object as usize));
    match left {
        Some(n) => {
            let _ = KERNEL_REFERENCES
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
            n as isize
        }
        None => {
            verifier::violation(
                Rule::DoubleFree,
                format!("ObfDereferenceObject({object:p}): not a live object"),
            );
            0
        }
    }
}

/// `ObOpenObjectByPointer`: opens a handle to a referenced object; with `OBJ_KERNEL_HANDLE`
/// in `HandleAttributes` the handle is a kernel handle. PASSIVE_LEVEL.
///
/// Errors: `STATUS_INVALID_PARAMETER` (not an object), `STATUS_OBJECT_TYPE_MISMATCH`,
/// `STATUS_ACCESS_DENIED` (`UserMode` asking for more than the object was opened with).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer>
#[no_mangle]
pub unsafe extern "system" fn ObOpenObjectByPointer(
    object: *const c_void,
    handle_attributes: u32,
    _passed_access_state: *const c_void,
    desired_access: u32,
    object_type: *const c_void,
    access_mode: i8,
    handle: *mut HANDLE,
) -> NTSTATUS {
    require_irql("ObOpenObjectByPointer", irql::PASSIVE_LEVEL);
    if let Some(s) = crate::security::open_device_handle(object, access_mode) {
        // A device object (to set its security): a kernel handle of its own table.
        if s == STATUS_SUCCESS {
            let h = crate::security::insert_device_handle(object);
            // SAFETY: the caller passes a valid out pointer.
            unsafe { *handle = h as HANDLE };
        }
        return s;
    }
    with(|t| {
        let Some(o) = t.objects.get(&(object as usize)) else {
            return STATUS_INVALID_PARAMETER;
        };
        if !object_type.is_null() && object_type != o.type_ptr() as *const c_void {
            return STATUS_OBJECT_TYPE_MISMATCH;
        }
        if access_mode != KERNEL_MODE && o.max_access & desired_access != desired_access {
            return STATUS_ACCESS_DENIED;
        }
        let kernel = handle_attributes & OBJ_KERNEL_HANDLE != 0;
        let h = insert_handle(t, object as usize, desired_access, kernel);
        // SAFETY: the caller passes a valid out pointer.
        unsafe { *handle = h as HANDLE };
        STATUS_SUCCESS
    })
}

/// `ZwClose`: closes a handle (kernel or, from kernel mode, process). PASSIVE_LEVEL.
/// Errors: `STATUS_INVALID_HANDLE`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose>
#[no_mangle]
pub unsafe extern "system" fn ZwClose(handle: HANDLE) -> NTSTATUS {
    require_irql("ZwClose", irql::PASSIVE_LEVEL);
    let h = handle as u64;
    if crate::security::close_device_handle(h) {
        return STATUS_SUCCESS;
    }
    abandon_reads(h, "ZwClose");
    with(|t| match t.handles.remove(&h) {
        Some(e) => {
            release(t, e.object);
            STATUS_SUCCESS
        }
        None => STATUS_INVALID_HANDLE,
    })
}

fn file_of<R>(
    handle: HANDLE,
    need: u32,
    f: impl FnOnce(&std::fs::File) -> R,
) -> Result<R, NTSTATUS> {
    let h = handle as u64;
    with(|t| {
        let e = t.handles.get(&h).copied().ok_or(STATUS_INVALID_HANDLE)?;
        let o = t.objects.get(&e.object).ok_or(STATUS_INVALID_HANDLE)?;
        let Kind::File(file) = &o.kind else {
            return Err(STATUS_OBJECT_TYPE_MISMATCH);
        };
        if e.access & need != need {
            return Err(STATUS_ACCESS_DENIED);
        }
        Ok(f(file))
    })
}

/// `ZwReadFile` at an explicit `ByteOffset` (required by this emulation). PASSIVE_LEVEL.
/// `IoStatusBlock.Information` = bytes read. On a file opened for synchronous I/O the read is
/// done when it returns. On one opened for asynchronous I/O ([`open_file_async`]) it returns
/// STATUS_PENDING: `Event` (if given) and the file object's event are cleared, and the read
/// completes after [`async_read_delay`] on another thread, which then writes the buffer and
/// the IO_STATUS_BLOCK and sets `Event` (or, with none, the file object's event), as the
/// ZwReadFile page describes; the file and event objects are referenced meanwhile. A read
/// still in flight when its handle is closed, or at the end of the test, is a
/// [`Rule::AsyncIoOutstanding`] violation (on Windows it would write into memory its caller
/// has moved on from); it is then never written.
///
/// Errors: `STATUS_END_OF_FILE` (offset at or past the end: nothing read),
/// `STATUS_ACCESS_DENIED` (handle without `FILE_READ_DATA`), `STATUS_INVALID_HANDLE`,
/// `STATUS_OBJECT_TYPE_MISMATCH`, `STATUS_INVALID_PARAMETER` (no `ByteOffset`).
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwreadfile>
#[no_mangle]
pub unsafe extern "system" fn ZwReadFile(
    file_handle: HANDLE,
    event: HANDLE,
    _apc_routine: *const c_void,
    _apc_context: *const c_void,
    io_status_block: *mut IO_STATUS_BLOCK,
    buffer: *mut c_void,
    length: u32,
    byte_offset: *const i64,
    _key: *const u32,
) -> NTSTATUS {
    require_irql("ZwReadFile", irql::PASSIVE_LEVEL);
    if byte_offset.is_null() || io_status_block.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: non-NULL LARGE_INTEGER per the API contract.
    let Ok(offset) = u64::try_from(unsafe { *byte_offset }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if let Some(s) = start_async_read(file_handle, event, io_status_block, buffer, length, offset) {
        return s;
    }
    // SAFETY: the caller's buffer of `length` bytes.
    let buf = unsafe { std::slice::from_raw_parts_mut(buffer as *mut u8, length as usize) };
    let r = file_of(file_handle, FILE_READ_DATA, |f| {
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        if offset >= size && length > 0 {
            return Err(STATUS_END_OF_FILE);
        }
        f.read_at(buf, offset)
            .map_err(|_| STATUS_UNEXPECTED_IO_ERROR)
    })
    .and_then(|r| r);
    let (status, n) = match r {
        Ok(n) => (STATUS_SUCCESS, n),
        Err(s) => (s, 0),
    };
    // SAFETY: non-NULL IO_STATUS_BLOCK.
    unsafe {
        (*io_status_block).Anonymous.Status = status;
        (*io_status_block).Information = n;
    }
    status
}

/// `FILE_STANDARD_INFORMATION` (24 bytes on x64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStandardInformation {
    /// `AllocationSize`.
    pub allocation_size: i64,
    /// `EndOfFile`: the file size in bytes.
    pub end_of_file: i64,
    /// `NumberOfLinks`.
    pub number_of_links: u32,
    /// `DeletePending`.
    pub delete_pending: u8,
    /// `Directory`.
    pub directory: u8,
}

/// `ZwQueryInformationFile` for `FileStandardInformation` only. PASSIVE_LEVEL.
///
/// Errors: `STATUS_INFO_LENGTH_MISMATCH` (buffer under 24 bytes), `STATUS_INVALID_INFO_CLASS`
/// (any other class: not emulated), `STATUS_INVALID_HANDLE`, `STATUS_OBJECT_TYPE_MISMATCH`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-zwqueryinformationfile>
#[no_mangle]
pub unsafe extern "system" fn ZwQueryInformationFile(
    file_handle: HANDLE,
    io_status_block: *mut IO_STATUS_BLOCK,
    file_information: *mut c_void,
    length: u32,
    class: i32,
) -> NTSTATUS {
    require_irql("ZwQueryInformationFile", irql::PASSIVE_LEVEL);
    let size = std::mem::size_of::<FileStandardInformation>();
    let r = if class != FILE_STANDARD_INFORMATION_CLASS {
        Err(STATUS_INVALID_INFO_CLASS)
    } else if (length as usize) < size || file_information.is_null() {
        Err(STATUS_INFO_LENGTH_MISMATCH)
    } else {
        file_of(file_handle, 0, |f| f.metadata().map(|m| m.len()))
            .and_then(|m| m.map_err(|_| STATUS_UNEXPECTED_IO_ERROR))
    };
    let (status, n) = match r {
        Ok(len) => {
            let info = FileStandardInformation {
                allocation_size: len.next_multiple_of(4096) as i64,
                end_of_file: len as i64,
                number_of_links: 1,
                ..Default::default()
            };
            // SAFETY: a buffer of at least 24 bytes, checked above; unaligned write.
            unsafe { (file_information as *mut FileStandardInformation).write_unaligned(info) };
            (STATUS_SUCCESS, size)
        }
        Err(s) => (s, 0),
    };
    if !io_status_block.is_null() {
        // SAFETY: non-NULL IO_STATUS_BLOCK.
        unsafe {
            (*io_status_block).Anonymous.Status = status;
            (*io_status_block).Information = n;
        }
    }
    status
}

/// An asynchronous read in flight.
struct AsyncRead {
    id: u64,
    handle: u64,
    object: usize,
    /// The event object's body (its KEVENT) to set, or 0: the file object's event.
    event_object: usize,
    iosb: usize,
    buffer: usize,
    length: usize,
    offset: u64,
    /// Pending until completed, cancelled or abandoned.
    pending: bool,
}

type ReadList = Vec<(u64, std::sync::Arc<Mutex<AsyncRead>>)>;
static READS: Mutex<ReadList> = Mutex::new(Vec::new());
static READ_IDS: AtomicU64 = AtomicU64::new(1);

fn reads() -> MutexGuard<'static, ReadList> {
    READS.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_read(r: &Mutex<AsyncRead>) -> MutexGuard<'_, AsyncRead> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts an asynchronous read if `file_handle` names a file opened for asynchronous I/O;
/// `None` for a synchronous one (read inline by the caller).
fn start_async_read(
    file_handle: HANDLE,
    event: HANDLE,
    iosb: *mut IO_STATUS_BLOCK,
    buffer: *mut c_void,
    length: u32,
    offset: u64,
) -> Option<NTSTATUS> {
    let h = file_handle as u64;
    let r = with(|t| {
        let e = t.handles.get(&h).copied()?;
        let o = t.objects.get(&e.object)?;
        if !o.asynchronous {
            return None;
        }
        if e.access & FILE_READ_DATA == 0 {
            return Some(Err(STATUS_ACCESS_DENIED));
        }
        let file_event = o.file_event.as_ptr() as usize;
        let mut event_object = 0;
        if !event.is_null() {
            let Some(ev) = t.handles.get(&(event as u64)).copied() else {
                return Some(Err(STATUS_INVALID_HANDLE));
            };
            match t.objects.get(&ev.object).map(|o| &o.kind) {
                Some(Kind::Event) => event_object = ev.object,
                _ => return Some(Err(STATUS_OBJECT_TYPE_MISMATCH)),
            }
        }
        // The I/O references the file and the event object until it completes.
        if let Some(o) = t.objects.get_mut(&e.object) {
            o.count += 1;
        }
        if event_object != 0 {
            if let Some(o) = t.objects.get_mut(&event_object) {
                o.count += 1;
            }
        }
        Some(Ok((e.object, file_event, event_object)))
    })?;
    let (object, file_event, event_object) = match r {
        Ok(v) => v,
        Err(s) => return Some(s),
    };
    // SAFETY: initialised KEVENTs of live objects (referenced above).
    unsafe {
        crate::event::KeClearEvent(file_event as *mut _);
        if event_object != 0 {
            crate::event::KeClearEvent(event_object as *mut _);
        }
    }
    let id = READ_IDS.fetch_add(1, Ordering::SeqCst);
    let read = std::sync::Arc::new(Mutex::new(AsyncRead {
        id,
        handle: h,
        object,
        event_object,
        iosb: iosb as usize,
        buffer: buffer as usize,
        length: length as usize,
        offset,
        pending: true,
    }));
    reads().push((id, read.clone()));
    let delay = async_read_delay();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut r = lock_read(&read);
        if !r.pending {
            return;
        }
        let res = with(|t| {
            let o = t.objects.get(&r.object).ok_or(STATUS_INVALID_HANDLE)?;
            let Kind::File(f) = &o.kind else {
                return Err(STATUS_OBJECT_TYPE_MISMATCH);
            };
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            if r.offset >= size && r.length > 0 {
                return Err(STATUS_END_OF_FILE);
            }
            // SAFETY: the caller's buffer, which it must keep until the read completes; the
            // read is still pending (not abandoned), so it has not closed the handle.
            let buf = unsafe { std::slice::from_raw_parts_mut(r.buffer as *mut u8, r.length) };
            f.read_at(buf, r.offset)
                .map_err(|_| STATUS_UNEXPECTED_IO_ERROR)
        });
        let (status, n) = match res {
            Ok(n) => (STATUS_SUCCESS, n),
            Err(s) => (s, 0),
        };
        complete_read(&mut r, status, n);
    });
    Some(STATUS_PENDING)
}

/// Writes a pending read's IO_STATUS_BLOCK, sets its event, releases its references.
fn complete_read(r: &mut AsyncRead, status: NTSTATUS, n: usize) {
    r.pending = false;
    // SAFETY: the caller's IO_STATUS_BLOCK, alive while the read is pending.
    unsafe {
        let iosb = r.iosb as *mut IO_STATUS_BLOCK;
        (*iosb).Anonymous.Status = status;
        (*iosb).Information = n;
    }
    finish_read(r, true);
}

fn finish_read(r: &mut AsyncRead, signal: bool) {
    let (object, event_object) = (r.object, r.event_object);
    with(|t| {
        if signal {
            let target = if event_object != 0 {
                Some(event_object)
            } else {
                t.objects
                    .get(&object)
                    .map(|o| o.file_event.as_ptr() as usize)
            };
            if let Some(ev) = target {
                // SAFETY: an initialised KEVENT of a referenced, live object.
                unsafe { crate::event::KeSetEvent(ev as *mut _, 0, false) };
            }
        }
        release(t, object);
        if event_object != 0 {
            release(t, event_object);
        }
    });
    let id = r.id;
    reads().retain(|(x, _)| *x != id);
}

/// Abandons the reads still pending on `handle` (0: every read) with a violation.
fn abandon_reads(handle: u64, at: &str) {
    let list: Vec<_> = reads().iter().map(|(_, r)| r.clone()).collect();
    for read in list {
        let mut r = lock_read(&read);
        if r.pending && (handle == 0 || r.handle == handle) {
            verifier::violation(
                Rule::AsyncIoOutstanding,
                format!(
                    "asynchronous ZwReadFile of {} bytes at offset {} still in flight at {at}: its IO_STATUS_BLOCK {:#x} and buffer {:#x} would be written after the caller moved on (wait for the read's event before leaving, cancel it on timeout and still wait)",
                    r.length, r.offset, r.iosb, r.buffer
                ),
            );
            r.pending = false;
            finish_read(&mut r, false);
        }
    }
}

/// `ZwCancelIoFileEx`: cancels the pending reads of `FileHandle`'s file object (those with
/// `IoRequestToCancel` as their IO_STATUS_BLOCK, or all when NULL): each completes at once
/// with STATUS_CANCELLED and 0 bytes, its event set. PASSIVE_LEVEL. Errors:
/// `STATUS_NOT_FOUND` (nothing to cancel), `STATUS_INVALID_HANDLE`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-ntcanceliofileex>
#[no_mangle]
pub unsafe extern "system" fn ZwCancelIoFileEx(
    FileHandle: HANDLE,
    IoRequestToCancel: *const IO_STATUS_BLOCK,
    IoStatusBlock: *mut IO_STATUS_BLOCK,
) -> NTSTATUS {
    require_irql("ZwCancelIoFileEx", irql::PASSIVE_LEVEL);
    let Some(object) = with(|t| t.handles.get(&(FileHandle as u64)).map(|e| e.object)) else {
        return STATUS_INVALID_HANDLE;
    };
    let list: Vec<_> = reads().iter().map(|(_, r)| r.clone()).collect();
    let mut n = 0;
    for read in list {
        let mut r = lock_read(&read);
        if r.pending
            && r.object == object
            && (IoRequestToCancel.is_null() || r.iosb == IoRequestToCancel as usize)
        {
            complete_read(&mut r, STATUS_CANCELLED, 0);
            n += 1;
        }
    }
    let status = if n == 0 {
        STATUS_NOT_FOUND
    } else {
        STATUS_SUCCESS
    };
    if !IoStatusBlock.is_null() {
        // SAFETY: the caller's IO_STATUS_BLOCK.
        unsafe {
            (*IoStatusBlock).Anonymous.Status = status;
            (*IoStatusBlock).Information = 0;
        }
    }
    status
}

/// `ZwCreateEvent`: creates an event object (`EventType` 0 notification, 1 synchronization)
/// and a handle to it (a kernel handle with `OBJ_KERNEL_HANDLE` in the attributes).
/// PASSIVE_LEVEL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwcreateevent>
#[no_mangle]
pub unsafe extern "system" fn ZwCreateEvent(
    EventHandle: *mut HANDLE,
    DesiredAccess: u32,
    ObjectAttributes: *const windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES,
    EventType: i32,
    InitialState: bool,
) -> NTSTATUS {
    require_irql("ZwCreateEvent", irql::PASSIVE_LEVEL);
    if EventHandle.is_null() || !(0..=1).contains(&EventType) {
        return STATUS_INVALID_PARAMETER;
    }
    let kernel = !ObjectAttributes.is_null()
        // SAFETY: the caller's OBJECT_ATTRIBUTES.
        && unsafe { (*ObjectAttributes).Attributes } & OBJ_KERNEL_HANDLE != 0;
    let h = with(|t| {
        let o = new_object_with(
            t,
            Kind::Event,
            EVENT_ALL_ACCESS,
            false,
            EventType,
            InitialState,
        );
        insert_handle(t, o, DesiredAccess, kernel)
    });
    // SAFETY: the caller's out pointer.
    unsafe { *EventHandle = h as HANDLE };
    STATUS_SUCCESS
}

/// `ZwWaitForSingleObject` on an event handle (its KEVENT) or a file handle (the file
/// object's event). Returns `STATUS_SUCCESS` or `STATUS_TIMEOUT`. PASSIVE_LEVEL (any timeout)
/// or up to APC_LEVEL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwwaitforsingleobject>
#[no_mangle]
pub unsafe extern "system" fn ZwWaitForSingleObject(
    Handle: HANDLE,
    Alertable: bool,
    Timeout: *const i64,
) -> NTSTATUS {
    require_irql("ZwWaitForSingleObject", irql::APC_LEVEL);
    let target = with(|t| {
        let e = t.handles.get(&(Handle as u64))?;
        let o = t.objects.get(&e.object)?;
        Some(match o.kind {
            Kind::Event => o.body.as_ptr() as usize,
            Kind::File(_) => o.file_event.as_ptr() as usize,
        })
    });
    let Some(ev) = target else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: an initialised KEVENT; the caller's handle keeps its object alive during the
    // wait (closing a handle someone waits on is the caller's bug, as on Windows).
    unsafe { crate::event::wait_for_event(ev as *const c_void, Alertable, Timeout) }
}
