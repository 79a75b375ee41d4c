//! Freed memory is poisoned: pool blocks, IRPs, MDLs, system buffers and the provider's
//! `WSK_SOCKET` objects are filled with [`FREED`] before they go back to the allocator (or,
//! for packets up to 4 KiB, to their lookaside list's quarantine), so a read after free sees
//! the pattern (a dereferenced pointer of `0xdfdfdfdfdfdfdfdf` is not canonical on x64 and
//! faults), and under AddressSanitizer (`.ci/run`'s ASan suite) the access itself is
//! reported (heap-use-after-free, or use-after-poison for a parked packet). Driver
//! Verifier's special pool plays this role on Windows.

/// The byte freed memory is filled with.
pub const FREED: u8 = 0xdf;

/// Whether ntsim was built with AddressSanitizer (`-Zsanitizer=address`, `.ci/run`'s ASan
/// suite). Then a freed packet of up to 4 KiB stays parked and unaddressable until 16 MiB of
/// its size class were freed after it, so the lookaside lists grow for that long before
/// they reuse anything: a steady state without heap allocations comes only after that.
pub const ASAN: bool = cfg!(ntsim_asan);

/// Fills `len` bytes at `p` with [`FREED`].
///
/// # Safety
/// `p..p+len` is writable memory the caller is about to free.
pub(crate) unsafe fn fill(p: *mut u8, len: usize) {
    // SAFETY: caller contract.
    unsafe { std::ptr::write_bytes(p, FREED, len) };
}
