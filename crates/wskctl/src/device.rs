//! The one seam between `wskctl` and the driver: a synchronous `DeviceIoControl`, and (for
//! event-driven commands such as `wskctl echo`) overlapped `DeviceIoControl` on a handle of its
//! own whose completions arrive through an I/O completion port ([`OverlappedDevice`]).

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

    /// Opens another handle to the device for overlapped I/O (`FILE_FLAG_OVERLAPPED`),
    /// associated with a new I/O completion port. It is another file object: its socket table
    /// is its own (a socket opened through it is unknown to [`Device::ioctl`] and the
    /// reverse). The handle closes (its sockets with it) when the returned value drops.
    /// Default: unsupported.
    fn open_overlapped(&self) -> anyhow::Result<Box<dyn OverlappedDevice + '_>> {
        anyhow::bail!("this device has no overlapped I/O")
    }

    /// The kernel's live allocations now, where the backend can see them (the emulated
    /// kernel's verifier counters, read once no `IoCompleteRequest` is under way: a request
    /// the caller saw complete may still have its completion routines on the stack, and
    /// `IoSetCompletionRoutineEx`'s context freed just after); `None` for a real kernel.
    fn kernel_counters(&self) -> Option<KernelCounters> {
        None
    }
}

/// What the kernel holds now (the emulated kernel's verifier counters): the driver's pool by
/// tag, and the IRPs and MDLs in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Live pool bytes (every `ExAllocatePool2` block not yet freed; the driver's and `wsk`'s).
    pub pool_bytes: u64,
    /// Live pool by tag: (tag as its four characters, bytes, blocks).
    pub pool_by_tag: Vec<(String, u64, u64)>,
    /// Live IRPs the driver allocated (`IoAllocateIrp`).
    pub driver_irps: u64,
    /// Live IRPs of the I/O manager: user requests not yet through I/O completion.
    pub io_manager_irps: u64,
    /// Bytes of one IRP with one stack location: `sizeof(IRP) + sizeof(IO_STACK_LOCATION)`
    /// (x64: 208 + 72).
    pub irp_bytes: u64,
    /// Live MDLs (the I/O manager's for direct-I/O requests, and the driver's).
    pub mdls: u64,
    /// Live system buffers of the I/O manager, bytes.
    pub system_buffer_bytes: u64,
    /// Bytes of the driver's heap object per socket (`wskclient::core::SOCKET_OBJECT_BYTES`),
    /// nonpaged pool on Windows but the host's heap under ntsim, so not in `pool_bytes`.
    pub socket_object_bytes: u64,
    /// Bytes of one slot of a file object's socket table (`wskclient::core::TABLE_SLOT_BYTES`;
    /// host heap under ntsim, as above).
    pub table_slot_bytes: u64,
}

/// One finished overlapped request, as `GetQueuedCompletionStatus` hands it back.
#[derive(Debug)]
pub struct Completion {
    /// The caller's tag given to [`OverlappedDevice::submit`] (or [`OverlappedDevice::post`]).
    pub tag: u64,
    /// The request's final `IoStatus` (for a posted completion: `STATUS_SUCCESS`, 0).
    pub status: IoStatus,
    /// The output buffer given to `submit`, owned by the request until now: for
    /// METHOD_BUFFERED the response (`status.information` bytes), for METHOD_OUT_DIRECT the
    /// received data, for METHOD_IN_DIRECT the data that was sent. Empty for a posted one.
    pub output: Vec<u8>,
}

/// A handle to the device opened for overlapped I/O and associated with an I/O completion
/// port: any number of requests in flight, completions taken by a few threads. Usable from
/// several threads at once.
pub trait OverlappedDevice: Send + Sync {
    /// Overlapped `DeviceIoControl`: issues the request and returns once the driver's dispatch
    /// routine has returned. The request owns `input` and `output` until it completes.
    /// `Ok(())`: exactly one [`Completion`] carrying `tag` will come from
    /// [`OverlappedDevice::dequeue`] (also when the request completed at once). `Err`: the
    /// request failed synchronously (it never reached the driver, or the driver failed it
    /// without marking it pending) and nothing will be queued; the completion is returned
    /// here.
    fn submit(
        &self,
        tag: u64,
        code: u32,
        input: Vec<u8>,
        output: Vec<u8>,
    ) -> Result<(), Completion>;

    /// `GetQueuedCompletionStatus`: the next completion, waiting at most `timeout`; `None`
    /// when none came in time.
    fn dequeue(&self, timeout: std::time::Duration) -> Option<Completion>;

    /// `PostQueuedCompletionStatus`: queues a completion carrying `tag` that no request
    /// produced (to wake a thread waiting in [`OverlappedDevice::dequeue`]).
    fn post(&self, tag: u64);
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
    fn open_overlapped(&self) -> anyhow::Result<Box<dyn OverlappedDevice + '_>> {
        (**self).open_overlapped()
    }
    fn kernel_counters(&self) -> Option<KernelCounters> {
        (**self).kernel_counters()
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
    fn open_overlapped(&self) -> anyhow::Result<Box<dyn OverlappedDevice + '_>> {
        (**self).open_overlapped()
    }
    fn kernel_counters(&self) -> Option<KernelCounters> {
        (**self).kernel_counters()
    }
}
