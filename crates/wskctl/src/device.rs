//! The one seam between `wskctl` and the driver: a synchronous `DeviceIoControl`.

/// Final status of a device I/O control request: the Irp's `IoStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoStatus {
    /// `IoStatus.Status`, an NTSTATUS (`STATUS_SUCCESS` = 0).
    pub status: i32,
    /// `IoStatus.Information`: bytes of response written, or for SEND/SEND_TO the
    /// bytes sent.
    pub information: usize,
}

/// An open handle to the wskclient device (`\\.\WskClient` or an in-process
/// emulation). Implementations must be usable from several threads.
pub trait Device: Send + Sync {
    /// Synchronous DeviceIoControl: `input` is copied in, `output` (or, for
    /// `METHOD_IN_DIRECT`, the data buffer) is described per the code's method.
    /// Returns once the Irp has completed; never returns `STATUS_PENDING`.
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus;

    /// A `METHOD_IN_DIRECT` request whose data buffer the driver only reads
    /// (SEND, SEND_TO). The default copies `data` into a scratch buffer and
    /// calls [`Device::ioctl`]; backends that can describe a read-only buffer
    /// directly (the Windows backend, an emulation building the MDL over
    /// `data`) override it to avoid the copy.
    fn ioctl_in_direct(&self, code: u32, input: &[u8], data: &[u8]) -> IoStatus {
        let mut scratch = data.to_vec();
        self.ioctl(code, input, &mut scratch)
    }

    /// Opens the file at `path` in the caller's process, for read (`write_only` false) or
    /// write only, and returns its handle value as TRANSMIT_FILE / TRANSMIT_PACKETS carry it
    /// (the driver references it with the caller's access mode and needs read access). The
    /// handle closes when the returned value drops. Default: unsupported.
    fn open_file_handle(
        &self,
        path: &std::path::Path,
        write_only: bool,
    ) -> anyhow::Result<FileHandle> {
        let _ = (path, write_only);
        anyhow::bail!("this device cannot open file handles")
    }
}

/// A file handle of the caller's process, closed on drop.
pub struct FileHandle {
    raw: u64,
    close: Option<Box<dyn FnOnce(u64) + Send>>,
}

impl FileHandle {
    /// Wraps a handle value and the routine that closes it.
    pub fn new(raw: u64, close: Box<dyn FnOnce(u64) + Send>) -> Self {
        FileHandle {
            raw,
            close: Some(close),
        }
    }

    /// The handle value.
    pub fn raw(&self) -> u64 {
        self.raw
    }
}

impl Drop for FileHandle {
    fn drop(&mut self) {
        if let Some(c) = self.close.take() {
            c(self.raw);
        }
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        (**self).ioctl(code, input, output)
    }
    fn ioctl_in_direct(&self, code: u32, input: &[u8], data: &[u8]) -> IoStatus {
        (**self).ioctl_in_direct(code, input, data)
    }
    fn open_file_handle(
        &self,
        path: &std::path::Path,
        write_only: bool,
    ) -> anyhow::Result<FileHandle> {
        (**self).open_file_handle(path, write_only)
    }
}

impl<D: Device + ?Sized> Device for std::sync::Arc<D> {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        (**self).ioctl(code, input, output)
    }
    fn ioctl_in_direct(&self, code: u32, input: &[u8], data: &[u8]) -> IoStatus {
        (**self).ioctl_in_direct(code, input, data)
    }
    fn open_file_handle(
        &self,
        path: &std::path::Path,
        write_only: bool,
    ) -> anyhow::Result<FileHandle> {
        (**self).open_file_handle(path, write_only)
    }
}
