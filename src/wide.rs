//! Compile-time UTF-16 names (`L"..."`) and UNICODE_STRING views of them.

use windows_sys::Win32::Foundation::UNICODE_STRING;

/// ASCII to UTF-16 at compile time.
// Only evaluated in constants: an out-of-range index fails the build, never the driver.
#[allow(clippy::indexing_slicing)]
pub const fn utf16<const N: usize>(s: &str) -> [u16; N] {
    let b = s.as_bytes();
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N && i < b.len() {
        out[i] = b[i] as u16;
        i += 1;
    }
    out
}

macro_rules! wide {
    ($name:ident = $s:expr) => {
        /// UTF-16 form of the string.
        pub static $name: [u16; $s.len()] = utf16::<{ $s.len() }>($s);
    };
}

wide!(DEVICE_NAME_W = wskclient_ioctl::DEVICE_NAME);
wide!(DOS_DEVICE_NAME_W = wskclient_ioctl::DOS_DEVICE_NAME);
/// SDDL of the control device: protected DACL, generic all for SYSTEM and Administrators.
pub const SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";
wide!(SDDL_W = SDDL);

wide!(ZW_CANCEL_IO_FILE_EX_W = "ZwCancelIoFileEx");

/// A UNICODE_STRING over a static UTF-16 array (lengths in bytes, no terminator).
pub fn unicode(s: &'static [u16]) -> UNICODE_STRING {
    let bytes = (s.len() * 2) as u16;
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: s.as_ptr() as *mut u16,
    }
}
