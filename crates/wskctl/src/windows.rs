//! `--device windows`: `\\.\WskClient` through `CreateFileW` and
//! `NtDeviceIoControlFile`.
//!
//! `NtDeviceIoControlFile` rather than `DeviceIoControl`: the latter turns the
//! driver's NTSTATUS into a Win32 error (`RtlNtStatusToDosError`), which loses
//! information (several statuses map to one error), while the native call
//! returns `IoStatus` as the driver completed it. The handle is opened without
//! `FILE_FLAG_OVERLAPPED`, so the file object is synchronous and the call
//! returns only after the Irp completes.
//! [`Device::open_overlapped`] opens a second handle with `FILE_FLAG_OVERLAPPED`, associated
//! with an I/O completion port, for event-driven commands (`wskctl echo`).
//! Sources: <https://learn.microsoft.com/en-us/windows/win32/api/winternl/nf-winternl-ntdeviceiocontrolfile>,
//! <https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew>,
//! <https://learn.microsoft.com/en-us/windows/win32/fileio/i-o-completion-ports>.

use std::ffi::c_void;
use std::ptr;

use windows_sys::Wdk::System::IO::NtDeviceIoControlFile;
use windows_sys::Win32::Foundation::{
    CloseHandle, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, STATUS_PENDING,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
};
use windows_sys::Win32::System::IO::{
    CancelIoEx, CreateIoCompletionPort, GetQueuedCompletionStatus, PostQueuedCompletionStatus,
    IO_STATUS_BLOCK, OVERLAPPED,
};

use crate::device::{Completion, Device, FileHandle, IoStatus, OverlappedDevice};

/// An open handle to `\\.\WskClient`.
pub struct WindowsDevice {
    handle: HANDLE,
}

// SAFETY: a file HANDLE is a process-wide kernel object reference; the I/O
// manager serialises nothing on our behalf that would make concurrent
// NtDeviceIoControlFile calls from several threads unsound.
unsafe impl Send for WindowsDevice {}
// SAFETY: as above; `&WindowsDevice` only issues I/O on the handle.
unsafe impl Sync for WindowsDevice {}

/// `CreateFileW` of `\\.\WskClient` for read and write with `flags` (`FILE_FLAG_OVERLAPPED`
/// for an asynchronous file object); `what` qualifies the error message.
fn create_device_handle(flags: u32, what: &str) -> anyhow::Result<HANDLE> {
    let path: Vec<u16> = wskclient_ioctl::USER_PATH
        .encode_utf16()
        .chain(std::iter::once(0))
        .collect();
    // SAFETY: `path` is NUL-terminated UTF-16 that outlives the call; null
    // security attributes and template handle are allowed.
    let handle = unsafe {
        CreateFileW(
            path.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            ptr::null(),
            OPEN_EXISTING,
            flags,
            ptr::null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        let error = std::io::Error::last_os_error();
        anyhow::bail!("open {}{what}: {error}", wskclient_ioctl::USER_PATH);
    }
    Ok(handle)
}

/// Opens `\\.\WskClient` for read and write.
///
/// Errors: the Win32 error of `CreateFileW` (e.g. `ERROR_FILE_NOT_FOUND` when
/// the driver is not loaded).
pub fn open() -> anyhow::Result<Box<dyn Device>> {
    let handle = create_device_handle(FILE_ATTRIBUTE_NORMAL, "")?;
    Ok(Box::new(WindowsDevice { handle }))
}

impl WindowsDevice {
    fn call(&self, code: u32, input: &[u8], output: *mut c_void, output_len: usize) -> IoStatus {
        let (Ok(input_len), Ok(output_len)) =
            (u32::try_from(input.len()), u32::try_from(output_len))
        else {
            return IoStatus {
                status: wskclient_ioctl::status::STATUS_INVALID_BUFFER_SIZE,
                information: 0,
            };
        };
        let mut iosb = IO_STATUS_BLOCK {
            Anonymous: windows_sys::Win32::System::IO::IO_STATUS_BLOCK_0 { Status: 0 },
            Information: 0,
        };
        // SAFETY: the handle is open; `input` and `output` are valid for their
        // lengths for the whole (synchronous) call; `iosb` outlives it. The
        // driver only reads `output` for METHOD_IN_DIRECT codes.
        let status = unsafe {
            NtDeviceIoControlFile(
                self.handle,
                ptr::null_mut(),
                None,
                ptr::null(),
                &mut iosb,
                code,
                input.as_ptr().cast(),
                input_len,
                output,
                output_len,
            )
        };
        debug_assert_ne!(status, STATUS_PENDING, "synchronous handle");
        IoStatus {
            status,
            information: if status >= 0 { iosb.Information } else { 0 },
        }
    }
}

impl Device for WindowsDevice {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        self.call(code, input, output.as_mut_ptr().cast(), output.len())
    }

    fn ioctl_in_direct(&self, code: u32, input: &[u8], data: &[u8]) -> IoStatus {
        // METHOD_IN_DIRECT: the I/O manager locks the buffer for read access
        // (IoReadAccess) and the driver only reads it, so a shared slice is enough.
        self.call(code, input, data.as_ptr().cast_mut().cast(), data.len())
    }

    /// A second handle, `FILE_FLAG_OVERLAPPED`, associated with a new completion port.
    fn open_overlapped(&self) -> anyhow::Result<Box<dyn OverlappedDevice + '_>> {
        Ok(Box::new(open_overlapped_handle()?))
    }

    /// `CreateFileW` through `std::fs::OpenOptions` (`GENERIC_READ`, or `GENERIC_WRITE` when
    /// `write_only`): a handle of this process, which the driver references with UserMode
    /// access checks. Closed with `CloseHandle` when the [`FileHandle`] drops.
    fn open_file_handle(
        &self,
        path: &std::path::Path,
        write_only: bool,
    ) -> anyhow::Result<FileHandle> {
        use std::os::windows::io::{FromRawHandle, IntoRawHandle};
        let file = std::fs::OpenOptions::new()
            .read(!write_only)
            .write(write_only)
            .open(path)
            .map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))?;
        let raw = file.into_raw_handle() as usize as u64;
        Ok(FileHandle::new(
            raw,
            Box::new(|raw| {
                // SAFETY: `raw` came from into_raw_handle above and is closed exactly once,
                // here, by dropping the File that owns it again.
                drop(unsafe { std::fs::File::from_raw_handle(raw as usize as *mut c_void) });
            }),
        ))
    }
}

impl Drop for WindowsDevice {
    fn drop(&mut self) {
        // SAFETY: the handle came from CreateFileW and is closed once.
        unsafe { CloseHandle(self.handle) };
    }
}

/// Completion key of the overlapped handle's requests.
const KEY_IO: usize = 1;
/// Completion key of posted completions (`lpOverlapped` carries the tag).
const KEY_POSTED: usize = 2;

/// One overlapped request: the `OVERLAPPED` (first, so the packet's `lpOverlapped` is the
/// box's address) and what it owns until its packet is dequeued.
#[repr(C)]
struct Request {
    overlapped: OVERLAPPED,
    tag: u64,
    _input: Vec<u8>,
    output: Vec<u8>,
}

/// `\\.\WskClient` opened with `FILE_FLAG_OVERLAPPED` and associated with an I/O completion
/// port (`CreateIoCompletionPort`). Requests go down through `NtDeviceIoControlFile` with the
/// `OVERLAPPED` as both the APC context (the packet's `lpOverlapped`) and the
/// `IO_STATUS_BLOCK` (`Internal` = NTSTATUS, `InternalHigh` = Information), as
/// `DeviceIoControl` issues them, so the driver's NTSTATUS arrives unmapped.
/// Sources: "I/O Completion Ports", `CreateIoCompletionPort`, `GetQueuedCompletionStatus`,
/// `PostQueuedCompletionStatus` (learn.microsoft.com, Win32 System Services).
struct WindowsOverlapped {
    handle: HANDLE,
    port: HANDLE,
    /// Requests submitted whose packet has not been dequeued.
    in_flight: std::sync::atomic::AtomicUsize,
}

// SAFETY: the handle and the port are process-wide kernel object references; requests are
// owned by the kernel until their packet is dequeued, then by the dequeuing thread.
unsafe impl Send for WindowsOverlapped {}
// SAFETY: as above; `&WindowsOverlapped` only issues I/O and dequeues packets.
unsafe impl Sync for WindowsOverlapped {}

fn open_overlapped_handle() -> anyhow::Result<WindowsOverlapped> {
    let handle = create_device_handle(
        FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED,
        " (overlapped)",
    )?;
    // SAFETY: a new port (no existing port) associated with our open handle.
    let port = unsafe { CreateIoCompletionPort(handle, ptr::null_mut(), KEY_IO, 0) };
    if port.is_null() {
        let error = std::io::Error::last_os_error();
        // SAFETY: opened above, closed once.
        unsafe { CloseHandle(handle) };
        anyhow::bail!("CreateIoCompletionPort: {error}");
    }
    Ok(WindowsOverlapped {
        handle,
        port,
        in_flight: std::sync::atomic::AtomicUsize::new(0),
    })
}

impl OverlappedDevice for WindowsOverlapped {
    fn submit(
        &self,
        tag: u64,
        code: u32,
        input: Vec<u8>,
        mut output: Vec<u8>,
    ) -> Result<(), Completion> {
        let (Ok(input_len), Ok(output_len)) =
            (u32::try_from(input.len()), u32::try_from(output.len()))
        else {
            return Err(Completion {
                tag,
                status: IoStatus {
                    status: wskclient_ioctl::status::STATUS_INVALID_BUFFER_SIZE,
                    information: 0,
                },
                output,
            });
        };
        let in_ptr = input.as_ptr();
        let out_ptr = output.as_mut_ptr();
        let request = Box::into_raw(Box::new(Request {
            // SAFETY: OVERLAPPED is a plain C structure; all-zero is its initial state.
            overlapped: unsafe { std::mem::zeroed() },
            tag,
            _input: input,
            output,
        }));
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: the handle is open; the request (its OVERLAPPED, used as the
        // IO_STATUS_BLOCK, and the buffers it owns) stays alive until its packet is
        // dequeued, or is reclaimed below when no packet will come.
        let status = unsafe {
            NtDeviceIoControlFile(
                self.handle,
                ptr::null_mut(),
                None,
                request as *const c_void,
                std::ptr::addr_of_mut!((*request).overlapped).cast::<IO_STATUS_BLOCK>(),
                code,
                in_ptr.cast(),
                input_len,
                out_ptr.cast(),
                output_len,
            )
        };
        // NT_ERROR returned by the call itself: the request failed synchronously and no
        // packet is queued (STATUS_PENDING, success and warnings all queue one).
        if (status as u32) >> 30 == 3 {
            self.in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            // SAFETY: no packet will reference the request: it is ours again.
            let r = unsafe { Box::from_raw(request) };
            return Err(Completion {
                tag,
                status: IoStatus {
                    status,
                    information: 0,
                },
                output: r.output,
            });
        }
        Ok(())
    }

    fn dequeue(&self, timeout: std::time::Duration) -> Option<Completion> {
        let mut bytes = 0u32;
        let mut key = 0usize;
        let mut overlapped: *mut OVERLAPPED = ptr::null_mut();
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1);
        // SAFETY: the port is open; the out-parameters are valid.
        unsafe { GetQueuedCompletionStatus(self.port, &mut bytes, &mut key, &mut overlapped, ms) };
        if key == KEY_POSTED {
            return Some(Completion {
                tag: overlapped as usize as u64,
                status: IoStatus {
                    status: 0,
                    information: bytes as usize,
                },
                output: Vec::new(),
            });
        }
        if overlapped.is_null() {
            // WAIT_TIMEOUT (or the port is gone): no packet.
            return None;
        }
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: a packet of our handle: lpOverlapped is the first field of a request boxed
        // by `submit`, which the kernel no longer references.
        let r = unsafe { Box::from_raw(overlapped.cast::<Request>()) };
        Some(Completion {
            tag: r.tag,
            status: IoStatus {
                status: r.overlapped.Internal as i32,
                information: r.overlapped.InternalHigh,
            },
            output: r.output,
        })
    }

    fn post(&self, tag: u64) {
        // SAFETY: the port is open; lpOverlapped carries the tag and is never dereferenced.
        unsafe {
            PostQueuedCompletionStatus(self.port, 0, KEY_POSTED, tag as usize as *const OVERLAPPED)
        };
    }
}

impl Drop for WindowsOverlapped {
    /// Cancels what is in flight, closes the handle (the driver's cleanup completes the rest
    /// and closes the sockets), takes the remaining packets (bounded: 10 s) so that their
    /// requests are freed, then closes the port. A request whose packet never came is leaked,
    /// not freed: the kernel may still write to it.
    fn drop(&mut self) {
        // SAFETY: our handle; NULL cancels every request of this thread and others on it.
        unsafe {
            CancelIoEx(self.handle, ptr::null());
            CloseHandle(self.handle);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.dequeue(left).is_none() {
                break;
            }
        }
        // SAFETY: our port, closed once.
        unsafe { CloseHandle(self.port) };
    }
}
