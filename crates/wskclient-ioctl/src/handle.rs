//! [`SocketHandle`]: the opaque name of a socket in a file object's socket table.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Most sockets one file object's table holds; a request that would add one more fails with
/// `STATUS_TOO_MANY_OPENED_FILES` (docs/ioctl.md, "Handles").
pub const MAX_SOCKETS_PER_FILE: u32 = 16_384;

/// An opaque 64-bit socket handle, never a kernel pointer.
///
/// Shape: low 32 bits = slot index + 1 (so 0 is never a valid slot field),
/// high 32 bits = the slot's generation (wrapping, never 0; see
/// [`SocketHandle::next_generation`]). [`SocketHandle::NULL`] (0) is never
/// handed out. Handles are scoped to the file object (the `CreateFileW` handle)
/// that opened the socket: the same value means nothing on another file object.
///
/// The driver answers a handle that is malformed, stale (generation mismatch),
/// or unknown to the calling file object with `STATUS_INVALID_HANDLE`
/// ([`crate::ContractError::InvalidHandle`]).
#[repr(transparent)]
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct SocketHandle(u64);

impl core::fmt::Debug for SocketHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SocketHandle({:#018x})", self.0)
    }
}

impl core::fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

impl SocketHandle {
    /// The null handle (0); never valid.
    pub const NULL: SocketHandle = SocketHandle(0);

    /// The handle for table slot `slot` (0-based) at `generation`.
    ///
    /// Returns `None` when `slot == u32::MAX` (slot + 1 would not fit) or
    /// `generation == 0` (0 is never a generation).
    pub const fn new(slot: u32, generation: u32) -> Option<SocketHandle> {
        if slot == u32::MAX || generation == 0 {
            return None;
        }
        Some(SocketHandle(
            ((generation as u64) << 32) | (slot as u64 + 1),
        ))
    }

    /// Wraps a raw value received from a caller; no validation (see [`Self::is_well_formed`]).
    pub const fn from_raw(raw: u64) -> SocketHandle {
        SocketHandle(raw)
    }

    /// The raw 64-bit value.
    pub const fn into_raw(self) -> u64 {
        self.0
    }

    /// The 0-based slot index, or `None` when the low 32 bits are 0.
    pub const fn slot(self) -> Option<u32> {
        match self.0 as u32 {
            0 => None,
            low => Some(low - 1),
        }
    }

    /// The generation (high 32 bits); 0 only for malformed handles.
    pub const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Whether the handle could have been issued: slot field and generation non-zero.
    pub const fn is_well_formed(self) -> bool {
        self.slot().is_some() && self.generation() != 0
    }

    /// The generation after `generation` for a reused slot: wraps, skipping 0.
    pub const fn next_generation(generation: u32) -> u32 {
        match generation.wrapping_add(1) {
            0 => 1,
            next => next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        let h = SocketHandle::new(0, 1).unwrap();
        assert_eq!(h.into_raw(), 0x0000_0001_0000_0001);
        assert_eq!(h.slot(), Some(0));
        assert_eq!(h.generation(), 1);
        assert!(h.is_well_formed());

        let h = SocketHandle::new(u32::MAX - 1, u32::MAX).unwrap();
        assert_eq!(h.into_raw(), 0xFFFF_FFFF_FFFF_FFFF);
        assert_eq!(h.slot(), Some(u32::MAX - 1));
        assert_eq!(h.generation(), u32::MAX);
        assert_eq!(SocketHandle::from_raw(h.into_raw()), h);
    }

    #[test]
    fn invalid_handles() {
        assert_eq!(SocketHandle::new(u32::MAX, 1), None);
        assert_eq!(SocketHandle::new(3, 0), None);
        assert!(!SocketHandle::NULL.is_well_formed());
        assert_eq!(SocketHandle::NULL.slot(), None);
        assert!(!SocketHandle::from_raw(0x0000_0001_0000_0000).is_well_formed());
        assert!(!SocketHandle::from_raw(0x0000_0000_0000_0001).is_well_formed());
    }

    #[test]
    fn generations_wrap_past_zero() {
        assert_eq!(SocketHandle::next_generation(1), 2);
        assert_eq!(SocketHandle::next_generation(u32::MAX), 1);
    }
}
