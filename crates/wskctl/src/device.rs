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
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        (**self).ioctl(code, input, output)
    }
    fn ioctl_in_direct(&self, code: u32, input: &[u8], data: &[u8]) -> IoStatus {
        (**self).ioctl_in_direct(code, input, data)
    }
}

impl<D: Device + ?Sized> Device for std::sync::Arc<D> {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        (**self).ioctl(code, input, output)
    }
    fn ioctl_in_direct(&self, code: u32, input: &[u8], data: &[u8]) -> IoStatus {
        (**self).ioctl_in_direct(code, input, data)
    }
}
