//! `UNICODE_STRING` helpers: strings the emulated I/O manager (or a test driver) builds and
//! owns, and reading a caller's `UNICODE_STRING` back into Rust.

use windows_sys::Win32::Foundation::UNICODE_STRING;

/// A `UNICODE_STRING` together with the UTF-16 buffer it points to. `Length` and
/// `MaximumLength` are in bytes; the buffer carries a terminating NUL that `Length` excludes
/// (as `RtlInitUnicodeString` leaves it). The `UNICODE_STRING` lives in its own heap block,
/// so the pointer from [`UnicodeString::as_ptr`] stays valid while this value lives, even if
/// the value moves.
pub struct UnicodeString {
    us: Box<UNICODE_STRING>,
    buf: Vec<u16>,
}

// SAFETY: the raw pointer inside `us` points into `buf`, which this value owns exclusively;
// nothing else aliases it mutably.
unsafe impl Send for UnicodeString {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for UnicodeString {}

impl UnicodeString {
    /// Builds a counted string from `s`, truncated to the 32767 UTF-16 units a
    /// `UNICODE_STRING` can count.
    pub fn new(s: &str) -> UnicodeString {
        let mut buf: Vec<u16> = s.encode_utf16().take(32_766).collect();
        let len = buf.len() * 2;
        buf.push(0);
        let us = Box::new(UNICODE_STRING {
            Length: len as u16,
            MaximumLength: (len + 2) as u16,
            Buffer: buf.as_mut_ptr(),
        });
        UnicodeString { us, buf }
    }

    /// The `PCUNICODE_STRING`.
    pub fn as_ptr(&self) -> *const UNICODE_STRING {
        &*self.us
    }

    /// A copy of the `UNICODE_STRING` header (pointing into this value's buffer), for
    /// embedding in a kernel structure such as `DRIVER_OBJECT.DriverName`.
    pub fn header(&self) -> UNICODE_STRING {
        *self.us
    }

    /// The text (without the terminating NUL).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf16_lossy(&self.buf[..self.buf.len() - 1])
    }
}

impl std::fmt::Debug for UnicodeString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// Reads a caller's `UNICODE_STRING`. `None` for a NULL pointer or a malformed string (odd
/// `Length`, `Length > MaximumLength`, or a NULL buffer with a non-zero length).
///
/// # Safety
/// `us` is NULL or points to a `UNICODE_STRING` whose buffer holds `Length` readable bytes.
pub unsafe fn read(us: *const UNICODE_STRING) -> Option<String> {
    if us.is_null() {
        return None;
    }
    // SAFETY: caller contract: non-NULL `us` is readable.
    let u = unsafe { &*us };
    if u.Length % 2 != 0 || u.Length > u.MaximumLength {
        return None;
    }
    if u.Length == 0 {
        return Some(String::new());
    }
    if u.Buffer.is_null() {
        return None;
    }
    // SAFETY: caller contract: Buffer holds Length readable bytes, u16-aligned as PWSTR is.
    let units = unsafe { std::slice::from_raw_parts(u.Buffer, u.Length as usize / 2) };
    Some(String::from_utf16_lossy(units))
}
