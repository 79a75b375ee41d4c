pub(crate) fn io_completion(_irp: *mut windows_sys::Wdk::Foundation::IRP) {}
