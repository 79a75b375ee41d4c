//! `--device windows`: `\\.\WskClient` through `CreateFileW` and
//! `NtDeviceIoControlFile`.
//!
//! `NtDeviceIoControlFile` rather than `DeviceIoControl`: the latter turns the
//! driver's NTSTATUS into a Win32 error (`RtlNtStatusToDosError`), which loses
//! information (several statuses map to one error), while the native call
//! returns `IoStatus` as the driver completed it. The handle is opened without
//! `FILE_FLAG_OVERLAPPED`, so the file object is synchronous and the call
//! returns only after the Irp completes.
//! Sources: <https://learn.microsoft.com/en-us/windows/win32/api/winternl/nf-winternl-ntdeviceiocontrolfile>,
//! <https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew>.

use std::ffi::c_void;
use std::ptr;

use windows_sys::Wdk::System::IO::NtDeviceIoControlFile;
use windows_sys::Win32::Foundation::{
    CloseHandle, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, STATUS_PENDING,
};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_ATTRIBUTE_NORMAL, OPEN_EXISTING};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

use crate::device::{Device, FileHandle, IoStatus};

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

/// Opens `\\.\WskClient` for read and write.
///
/// Errors: the Win32 error of `CreateFileW` (e.g. `ERROR_FILE_NOT_FOUND` when
/// the driver is not loaded).
pub fn open() -> anyhow::Result<Box<dyn Device>> {
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
            FILE_ATTRIBUTE_NORMAL,
            ptr::null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        let error = std::io::Error::last_os_error();
        anyhow::bail!("open {}: {error}", wskclient_ioctl::USER_PATH);
    }
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
