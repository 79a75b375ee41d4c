//! Deterministic test data: the stream payload, send-size schedule and the
//! datagram pattern, all reproducible from a seed so receivers can verify
//! without the sender's buffers.

use sha2::{Digest, Sha256};

/// SplitMix64 step: a fast, well-mixed 64-bit hash of `x`.
/// Source: Steele, Lea, Flood, "Fast splittable pseudorandom number generators" (2014).
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A position-addressable pseudo-random byte stream: byte `i` depends only on
/// `(seed, i)`, so any range can be produced or checked independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// Seed.
    pub seed: u64,
    /// Total length in bytes.
    pub len: u64,
}

impl Payload {
    /// A payload of `len` bytes from `seed`.
    pub const fn new(seed: u64, len: u64) -> Self {
        Payload { seed, len }
    }

    /// Fills `buf` with bytes `offset .. offset + buf.len()` of the stream
    /// (the stream is defined past `len` too; callers clamp).
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = offset;
        let mut i = 0;
        while i < buf.len() {
            let word = splitmix64(self.seed ^ (pos / 8).wrapping_mul(0xA076_1D64_78BD_642F));
            let bytes = word.to_le_bytes();
            let start = (pos % 8) as usize;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&bytes[start..start + n]);
            i += n;
            pos += n as u64;
        }
    }

    /// SHA-256 of the whole payload, computed in 64 KiB pieces.
    pub fn sha256(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut offset = 0;
        while offset < self.len {
            let n = (self.len - offset).min(buf.len() as u64) as usize;
            self.fill(offset, &mut buf[..n]);
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        hasher.finalize().into()
    }
}

/// Deterministic send sizes in `1 ..= max` summing exactly to `total`: the
/// first two are 1 and `max` (edge cases), the rest pseudo-random from `seed`;
/// the last is whatever remains.
pub fn send_sizes(seed: u64, total: u64, max: usize) -> Vec<usize> {
    assert!(max > 0, "max send size must be positive");
    let mut sizes = Vec::new();
    let mut left = total;
    let mut n: u64 = 0;
    while left > 0 {
        let want = match n {
            0 => 1,
            1 => max,
            _ => 1 + (splitmix64(seed.wrapping_add(n)) % max as u64) as usize,
        };
        let size = (want as u64).min(left) as usize;
        sizes.push(size);
        left -= size as u64;
        n += 1;
    }
    sizes
}

/// Bytes of the sequence-number prefix of every datagram.
pub const DATAGRAM_HEADER: usize = 8;

/// Byte `i` (>= 8) of datagram `seq`.
fn datagram_byte(seq: u64, i: usize) -> u8 {
    let word = splitmix64(seq.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (i / 8) as u64);
    word.to_le_bytes()[i % 8]
}

/// Datagram `seq` of `size` bytes (`size >= 8`): the sequence number as 8
/// big-endian bytes, then bytes that depend only on `(seq, position)`.
pub fn encode_datagram(seq: u64, size: usize, out: &mut Vec<u8>) {
    assert!(
        size >= DATAGRAM_HEADER,
        "a datagram carries at least its sequence number"
    );
    out.clear();
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend((DATAGRAM_HEADER..size).map(|i| datagram_byte(seq, i)));
}

/// Why a received datagram does not match the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// Shorter than the 8-byte sequence number.
    #[error("datagram of {0} bytes is shorter than its sequence number")]
    Short(usize),
    /// A byte differs from the pattern of its sequence number.
    #[error("datagram {seq}: byte {offset} differs from the pattern")]
    Corrupt {
        /// Sequence number found.
        seq: u64,
        /// First differing offset.
        offset: usize,
    },
}

/// Checks `datagram` against the pattern; returns its sequence number.
pub fn verify_datagram(datagram: &[u8]) -> Result<u64, DatagramError> {
    let header: [u8; DATAGRAM_HEADER] = datagram
        .get(..DATAGRAM_HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or(DatagramError::Short(datagram.len()))?;
    let seq = u64::from_be_bytes(header);
    match (DATAGRAM_HEADER..datagram.len()).find(|&i| datagram[i] != datagram_byte(seq, i)) {
        Some(offset) => Err(DatagramError::Corrupt { seq, offset }),
        None => Ok(seq),
    }
}

/// The demo's datagram size for `seq`: 8 ..= 1,472 bytes (a 1,500-byte
/// Ethernet MTU minus IPv4 and UDP headers), deterministic.
pub fn demo_datagram_size(seq: u64) -> usize {
    DATAGRAM_HEADER + (splitmix64(seq ^ 0xD1B5_4A32_D192_ED03) % 1_465) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_position_addressable() {
        let p = Payload::new(7, 1000);
        let mut whole = vec![0u8; 1000];
        p.fill(0, &mut whole);
        // Any split gives the same bytes.
        for split in [1usize, 3, 8, 9, 511, 999] {
            let mut a = vec![0u8; split];
            let mut b = vec![0u8; 1000 - split];
            p.fill(0, &mut a);
            p.fill(split as u64, &mut b);
            assert_eq!([a, b].concat(), whole, "split at {split}");
        }
        // Different seeds differ; bytes look varied.
        let mut other = vec![0u8; 1000];
        Payload::new(8, 1000).fill(0, &mut other);
        assert_ne!(other, whole);
        let distinct: std::collections::HashSet<u8> = whole.iter().copied().collect();
        assert!(
            distinct.len() > 200,
            "only {} distinct bytes",
            distinct.len()
        );
    }

    #[test]
    fn payload_hash_matches_direct_hash() {
        let p = Payload::new(42, 200_000);
        let mut all = vec![0u8; 200_000];
        p.fill(0, &mut all);
        let direct: [u8; 32] = Sha256::digest(&all).into();
        assert_eq!(p.sha256(), direct);
        assert_ne!(Payload::new(42, 199_999).sha256(), direct);
    }

    #[test]
    fn send_sizes_cover_the_range_and_sum() {
        let sizes = send_sizes(1, 4 << 20, 64 << 10);
        assert_eq!(sizes.iter().map(|&s| s as u64).sum::<u64>(), 4 << 20);
        assert_eq!(sizes[0], 1);
        assert_eq!(sizes[1], 64 << 10);
        assert!(sizes.iter().all(|&s| (1..=64 << 10).contains(&s)));
        assert!(sizes.iter().any(|&s| s < 4096), "some small sends");
        assert_eq!(sizes, send_sizes(1, 4 << 20, 64 << 10), "deterministic");
        assert!(send_sizes(1, 0, 10).is_empty());
        assert_eq!(send_sizes(1, 5, 10), vec![1, 4]);
    }

    #[test]
    fn datagram_round_trip_and_corruption() {
        let mut d = Vec::new();
        for (seq, size) in [(0u64, 8usize), (1, 9), (999, 1472), (u64::MAX, 100)] {
            encode_datagram(seq, size, &mut d);
            assert_eq!(d.len(), size);
            assert_eq!(&d[..8], &seq.to_be_bytes());
            assert_eq!(verify_datagram(&d), Ok(seq));
        }
        encode_datagram(5, 64, &mut d);
        d[40] ^= 1;
        assert_eq!(
            verify_datagram(&d),
            Err(DatagramError::Corrupt { seq: 5, offset: 40 })
        );
        // Same content under another sequence number fails too.
        encode_datagram(5, 64, &mut d);
        d[..8].copy_from_slice(&6u64.to_be_bytes());
        assert!(matches!(
            verify_datagram(&d),
            Err(DatagramError::Corrupt { seq: 6, .. })
        ));
        assert_eq!(verify_datagram(&[1, 2, 3]), Err(DatagramError::Short(3)));
    }

    #[test]
    fn demo_sizes_in_range() {
        let sizes: Vec<usize> = (0..2000).map(demo_datagram_size).collect();
        assert!(sizes.iter().all(|&s| (8..=1472).contains(&s)));
        assert!(sizes.iter().any(|&s| s < 100) && sizes.iter().any(|&s| s > 1400));
    }
}
