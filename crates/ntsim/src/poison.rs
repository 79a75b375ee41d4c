//! Freed memory is poisoned, then really freed: pool blocks, IRPs, MDLs and the provider's
//! `WSK_SOCKET` objects are filled with [`FREED`] before they go back to the allocator, so a
//! read after free sees the pattern (a dereferenced pointer of `0xdfdfdfdfdfdfdfdf` is not
//! canonical on x64 and faults), and under AddressSanitizer (`.ci/run`'s ASan suite) the
//! access itself is reported as a heap-use-after-free. Driver Verifier's special pool plays
//! this role on Windows.

/// The byte freed memory is filled with.
pub const FREED: u8 = 0xdf;

/// Fills `len` bytes at `p` with [`FREED`].
///
/// # Safety
/// `p..p+len` is writable memory the caller is about to free.
pub(crate) unsafe fn fill(p: *mut u8, len: usize) {
    // SAFETY: caller contract.
    unsafe { std::ptr::write_bytes(p, FREED, len) };
}
