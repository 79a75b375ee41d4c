//! Lookaside lists for the blocks the emulated kernel hands out per request (IRPs, MDLs,
//! the I/O manager's system buffers, pool blocks, KMDF object contexts), after the
//! per-processor lookaside lists Windows is described to keep for IRPs, MDLs and small pool
//! blocks (Windows Internals; not observed here, and nothing depends on it): packets are carved
//! from chunks of equal-sized slots, a freed packet is parked on its size class's free list
//! instead of going back to the heap, and the verifier's bookkeeping for a packet (is it
//! live, its size, what the caller keeps about it) lives in a header next to its slot
//! rather than in a hash table. A packet address is checked by finding its chunk in a
//! table sorted by address (a binary search over a handful of chunks) and its slot by
//! arithmetic, so any pointer (a freed packet, a stray one) is checked without reading the
//! memory it points to.
//!
//! A parked slot stays unusable:
//! - it is filled with [`crate::poison::FREED`] when parked, as a freed block is;
//! - the free lists are first-in first-out, a class keeps at least [`quarantine`] slots
//!   parked before reusing the oldest one, and slots never handed out are taken first, so
//!   a freed slot is handed out again only after [`quarantine`] later frees of its class: a
//!   stale pointer to a freed packet points to a parked (poisoned, not-live) slot until
//!   then, not at once to a new packet (the heap's per-thread caches reuse the last freed
//!   block first);
//! - under AddressSanitizer (the `ntsim_asan` cfg, set by `build.rs` when the crate is built
//!   with `-Zsanitizer=address`, as `.ci/run`'s ASan suite does) parked slots and the
//!   bytes past each packet are poisoned for ASan (`__asan_poison_memory_region`), so a read
//!   or write of a freed IRP or MDL, or past the end of a live one, is an ASan report as it
//!   was when each packet was its own heap block; the quarantine is larger there.
//!
//! Packets larger than [`MAX_CLASS_BYTES`] (MDLs for buffers of about 2 MB and more) are
//! each their own heap block, registered while live and really freed (poisoned first).

use std::alloc::{alloc, dealloc, Layout};
use std::collections::{BTreeMap, VecDeque};

/// Slot sizes are multiples of this, and slots are aligned to it.
pub(crate) const GRANULE: usize = 16;
/// Packets up to this size come from slabs; larger ones are single heap blocks.
pub(crate) const MAX_CLASS_BYTES: usize = 4096;
/// Bytes after each slot that no packet uses (poisoned for ASan: an overrun of a live packet
/// is reported, as a heap block's redzone would report it).
const REDZONE: usize = if cfg!(ntsim_asan) { 32 } else { 0 };
/// Size of a new chunk (at least [`MIN_CHUNK_SLOTS`] slots).
const CHUNK_BYTES: usize = 16 * 1024;
const MIN_CHUNK_SLOTS: usize = 4;
/// Bytes of parked slots a class keeps before reusing one (and at least
/// [`MIN_QUARANTINE_SLOTS`] slots). Under ASan 16 MiB per class: with the dozen or so
/// classes a run uses, about the window ASan's own quarantine keeps freed heap blocks
/// unaddressable (256 MiB on 64-bit Linux, `quarantine_size_mb`), so a use of a packet long
/// after it was freed is still a report, as it was when each packet was its own heap block.
const QUARANTINE_BYTES: usize = if cfg!(ntsim_asan) {
    16 * 1024 * 1024
} else {
    4096
};
const MIN_QUARANTINE_SLOTS: usize = if cfg!(ntsim_asan) { 64 } else { 8 };

#[cfg(ntsim_asan)]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Marks `len` bytes at `p` unaddressable for AddressSanitizer (nothing without ASan).
#[inline]
fn asan_poison(p: usize, len: usize) {
    #[cfg(ntsim_asan)]
    // SAFETY: the ASan runtime's interface; `p..p+len` is memory this module owns.
    unsafe {
        __asan_poison_memory_region(p as *const u8, len)
    };
    let _ = (p, len);
}

/// Marks `len` bytes at `p` addressable again for AddressSanitizer (nothing without ASan).
#[inline]
fn asan_unpoison(p: usize, len: usize) {
    #[cfg(ntsim_asan)]
    // SAFETY: as in `asan_poison`.
    unsafe {
        __asan_unpoison_memory_region(p as *const u8, len)
    };
    let _ = (p, len);
}

/// How many parked slots of `stride` bytes a class keeps before reusing the oldest.
pub(crate) fn quarantine(stride: usize) -> usize {
    (QUARANTINE_BYTES / stride.max(1)).max(MIN_QUARANTINE_SLOTS)
}

/// `ceil(2^32 / stride)`, for [`slot_index`].
fn magic(stride: usize) -> u64 {
    (1u64 << 32).div_ceil(stride.max(1) as u64)
}

/// The slot index of `off` in a chunk of slots of `stride` bytes (`magic` = [`magic`]).
/// Exact when `off` is `k * stride`: `k * stride * ceil(2^32 / stride) = k * 2^32 + k * e`
/// with `e < stride`, and `k * e < 2^32` in every chunk (a slab chunk has at most 1,024
/// slots of at most 4,128 bytes; a single block has only k = 0). For any other `off` the
/// result is an index whose slot does not start at `off`, which the caller's
/// `idx * stride == off` check rejects.
fn slot_index(off: usize, magic: u64) -> usize {
    ((off as u64).wrapping_mul(magic) >> 32) as usize
}

/// What the verifier keeps about one slot.
#[derive(Clone, Copy)]
pub(crate) struct Header<H> {
    /// The slot holds a live packet (false: parked on the free list).
    pub live: bool,
    /// The bytes the packet was allocated with.
    pub size: usize,
    /// The caller's bookkeeping for the live packet (stale while parked).
    pub data: H,
}

/// What [`Slab::free_if`] did.
pub(crate) enum Freed<H> {
    /// `p` is not a live packet: nothing done.
    NotLive,
    /// The check said no: nothing done.
    Refused,
    /// Freed; its last bookkeeping.
    Done(Header<H>),
}

struct Chunk<H> {
    start: usize,
    end: usize,
    stride: usize,
    /// [`magic`] of `stride`: slot lookups multiply instead of dividing.
    magic: u64,
    /// The size class.
    class: usize,
    /// One per slot (`None`: never handed out). Never resized: the free lists point into it.
    headers: Box<[Option<Header<H>>]>,
}

/// A packet larger than [`MAX_CLASS_BYTES`].
struct Single<H> {
    layout: Layout,
    header: Header<H>,
}

struct Class<H> {
    /// Parked (freed) slots, oldest first, with their headers (in their chunk's `headers`).
    free: VecDeque<(usize, *mut Option<Header<H>>)>,
    /// Slots never handed out, taken before a parked slot is reused: a freed slot waits for
    /// [`quarantine`] later frees of its class, however many fresh slots a chunk brought.
    fresh: Vec<(usize, *mut Option<Header<H>>)>,
    /// Slot size, redzone included.
    stride: usize,
    /// [`quarantine`] for `stride`.
    quarantine: usize,
}

/// A set of slabs for packets of any size, each size class with its free list.
pub(crate) struct Slab<H> {
    /// Every chunk of slots, sorted by address.
    chunks: Vec<Chunk<H>>,
    /// Packets larger than [`MAX_CLASS_BYTES`], each its own heap block, by address (a
    /// tree: there may be many, and each comes and goes).
    singles: BTreeMap<usize, Single<H>>,
    /// Size classes by `size.div_ceil(GRANULE)`.
    classes: Vec<Class<H>>,
}

// SAFETY: the slab holds addresses of memory it owns; it is used under a mutex.
unsafe impl<H: Send> Send for Slab<H> {}

impl<H: Copy> Slab<H> {
    /// An empty slab (allocates nothing until the first packet).
    pub(crate) const fn new() -> Slab<H> {
        Slab {
            chunks: Vec::new(),
            singles: BTreeMap::new(),
            classes: Vec::new(),
        }
    }

    /// Allocates a packet of `size` bytes, with `data` as its bookkeeping. Its contents are
    /// the poison pattern: the caller initialises it. `None` if memory for a new chunk (or
    /// the bookkeeping for it) cannot be had.
    pub(crate) fn alloc(&mut self, size: usize, data: H) -> Option<*mut u8> {
        let class = size.max(1).div_ceil(GRANULE);
        if class * GRANULE > MAX_CLASS_BYTES {
            return self.alloc_single(size, data);
        }
        if self.classes.len() <= class {
            let more = class + 1 - self.classes.len();
            self.classes.try_reserve_exact(more).ok()?;
            let mut next = self.classes.len();
            self.classes.resize_with(class + 1, || {
                let stride = next * GRANULE + REDZONE;
                next += 1;
                Class {
                    free: VecDeque::new(),
                    fresh: Vec::new(),
                    stride,
                    quarantine: quarantine(stride),
                }
            });
        }
        let c = &mut self.classes[class];
        let reuse = c.free.len() > c.quarantine;
        if !reuse && c.fresh.is_empty() {
            self.grow(class)?;
        }
        let c = &mut self.classes[class];
        let (p, h) = if reuse {
            c.free.pop_front()?
        } else {
            c.fresh.pop()?
        };
        // SAFETY: `h` points into a chunk's `headers`, which live as long as the slab and
        // are never resized; the slab is borrowed mutably.
        unsafe {
            *h = Some(Header {
                live: true,
                size,
                data,
            })
        };
        asan_unpoison(p, size);
        Some(p as *mut u8)
    }

    /// Adds a chunk of slots of `stride` bytes to `class`, all parked.
    fn grow(&mut self, class: usize) -> Option<()> {
        let stride = self.classes[class].stride;
        let slots = (CHUNK_BYTES / stride).max(MIN_CHUNK_SLOTS);
        let layout = Layout::from_size_align(slots * stride, GRANULE).ok()?;
        let mut headers = Vec::new();
        headers.try_reserve_exact(slots).ok()?;
        headers.resize_with(slots, || None);
        let mut headers = headers.into_boxed_slice();
        self.chunks.try_reserve(1).ok()?;
        let c = &mut self.classes[class];
        c.free.try_reserve(slots).ok()?;
        c.fresh.try_reserve(slots).ok()?;
        // SAFETY: non-zero size.
        let start = unsafe { alloc(layout) } as usize;
        if start == 0 {
            return None;
        }
        // SAFETY: fresh allocation of layout.size() bytes.
        unsafe { crate::poison::fill(start as *mut u8, layout.size()) };
        asan_poison(start, layout.size());
        let first = headers.as_mut_ptr();
        let fresh = &mut self.classes[class].fresh;
        // SAFETY: i < slots, the length of `headers` (moved into the chunk below: a boxed
        // slice's buffer does not move with it). Reversed: taken from the back, lowest first.
        fresh.extend(
            (0..slots)
                .rev()
                .map(|i| (start + i * stride, unsafe { first.add(i) })),
        );
        let chunk = Chunk {
            start,
            end: start + layout.size(),
            stride,
            magic: magic(stride),
            class,
            headers,
        };
        let at = self.chunks.partition_point(|c| c.start < start);
        self.chunks.insert(at, chunk);
        Some(())
    }

    fn alloc_single(&mut self, size: usize, data: H) -> Option<*mut u8> {
        let stride = size.div_ceil(GRANULE) * GRANULE;
        let layout = Layout::from_size_align(stride + REDZONE, GRANULE).ok()?;
        // SAFETY: non-zero size.
        let start = unsafe { alloc(layout) } as usize;
        if start == 0 {
            return None;
        }
        asan_poison(start + size, layout.size() - size);
        self.singles.insert(
            start,
            Single {
                layout,
                header: Header {
                    live: true,
                    size,
                    data,
                },
            },
        );
        Some(start as *mut u8)
    }

    /// The chunk and slot index of the slot starting at `p`, if `p` is the start of a slot.
    #[inline]
    fn find(&self, p: usize) -> Option<(usize, usize)> {
        let i = self
            .chunks
            .partition_point(|c| c.start <= p)
            .checked_sub(1)?;
        let c = &self.chunks[i];
        if p >= c.end {
            return None;
        }
        let off = p - c.start;
        let idx = slot_index(off, c.magic);
        (idx * c.stride == off).then_some((i, idx))
    }

    /// The header of the packet at `p` if `p` is a slot this slab handed out (live or
    /// parked); never reads the memory at `p`.
    #[inline]
    pub(crate) fn get(&mut self, p: usize) -> Option<&mut Header<H>> {
        if let Some((i, idx)) = self.find(p) {
            return self.chunks[i].headers.get_mut(idx)?.as_mut();
        }
        self.get_single(p)
    }

    /// [`Slab::get`] for a single block (out of line: the slab path is the hot one).
    #[inline(never)]
    fn get_single(&mut self, p: usize) -> Option<&mut Header<H>> {
        self.singles.get_mut(&p).map(|s| &mut s.header)
    }

    /// Whether `f(address, bookkeeping)` holds for some live packet (a scan of every slot:
    /// for rare questions only).
    pub(crate) fn any_live(&self, mut f: impl FnMut(usize, &H) -> bool) -> bool {
        self.chunks.iter().any(|c| {
            c.headers.iter().enumerate().any(|(i, h)| {
                h.as_ref()
                    .is_some_and(|h| h.live && f(c.start + i * c.stride, &h.data))
            })
        }) || self
            .singles
            .iter()
            .any(|(&p, s)| s.header.live && f(p, &s.header.data))
    }

    /// The bookkeeping of the live packet at `p`, if there is one.
    #[inline]
    pub(crate) fn live(&mut self, p: usize) -> Option<&mut H> {
        self.get(p).filter(|h| h.live).map(|h| &mut h.data)
    }

    /// Frees the live packet at `p`: poisons it and parks its slot (or frees a single
    /// block). Returns its bookkeeping, or `None` (and does nothing) if `p` is not a live
    /// packet.
    pub(crate) fn free(&mut self, p: usize) -> Option<Header<H>> {
        match self.free_if(p, |_| true) {
            Freed::Done(h) => Some(h),
            _ => None,
        }
    }

    /// [`Slab::free`] if `ok` (given the live packet's bookkeeping; the packet's memory is
    /// still readable while it runs) says so, in one lookup.
    pub(crate) fn free_if(&mut self, p: usize, ok: impl FnOnce(&H) -> bool) -> Freed<H> {
        let Some((i, idx)) = self.find(p) else {
            return self.free_single_if(p, ok);
        };
        let c = &mut self.chunks[i];
        let Some(Some(h)) = c.headers.get_mut(idx) else {
            return Freed::NotLive;
        };
        if !h.live {
            return Freed::NotLive;
        }
        if !ok(&h.data) {
            return Freed::Refused;
        }
        let Some(slot) = c.headers.get_mut(idx) else {
            return Freed::NotLive;
        };
        let size = slot.as_ref().map_or(0, |h| h.size);
        // SAFETY: a live packet's `size` bytes are this slab's memory.
        unsafe { crate::poison::fill(p as *mut u8, size) };
        asan_poison(p, c.stride);
        let class = c.class;
        let slot: *mut Option<Header<H>> = slot;
        // SAFETY: points into the chunk's headers (see `Class::free`).
        let h = unsafe { (*slot).as_mut() }.map(|h| {
            h.live = false;
            *h
        });
        // The free list had room for every slot of its chunks (reserved in `grow`).
        self.classes[class].free.push_back((p, slot));
        h.map_or(Freed::NotLive, Freed::Done)
    }

    /// [`Slab::free_if`] for a single block.
    #[inline(never)]
    fn free_single_if(&mut self, p: usize, ok: impl FnOnce(&H) -> bool) -> Freed<H> {
        match self.singles.get(&p) {
            None => return Freed::NotLive,
            Some(s) if !ok(&s.header.data) => return Freed::Refused,
            Some(_) => {}
        }
        let Some(s) = self.singles.remove(&p) else {
            return Freed::NotLive;
        };
        // SAFETY: allocated in `alloc_single` with this layout, `size` bytes of it the
        // packet's; freed once (it is gone from the table).
        unsafe {
            crate::poison::fill(p as *mut u8, s.header.size);
            dealloc(p as *mut u8, s.layout)
        };
        Freed::Done(s.header)
    }
}
