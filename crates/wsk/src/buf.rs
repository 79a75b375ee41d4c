//! MDL-described buffers for WSK I/O.
//!
//! A WSK operation reads or writes memory through a `WSK_BUF` (an MDL chain, an offset into
//! its first MDL, and a length), and the memory must stay valid until the operation's IRP
//! completes. Types here own their memory and MDLs; the socket APIs either borrow a buffer for
//! the whole of a synchronous call (which returns only after completion) or take it by value
//! for an asynchronous one and hand it back in the completion callback. Safe code therefore
//! cannot free or reuse a buffer under a pending operation.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;
use rust_alloc::vec::Vec;

use windows_sys::Wdk::Foundation::MDL;
use windows_sys::Wdk::System::SystemServices::{
    IoAllocateMdl, IoFreeMdl, MmBuildMdlForNonPagedPool,
};
use wsk_sys::WSK_BUF;

use crate::error::{Error, Result};

/// Memory described by a locked MDL chain of [`MdlBuffer::len`] bytes.
///
/// # Safety
/// Implementors guarantee that `mdl()` heads a chain of live MDLs that are locked or built
/// for nonpaged pool, describing at least `len()` bytes of valid memory, for as long as the
/// value lives and is not mutated.
pub unsafe trait MdlBuffer {
    /// The first MDL of the chain.
    fn mdl(&self) -> *mut MDL;
    /// The bytes the chain describes.
    fn len(&self) -> usize;
    /// True when `len() == 0`.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds the `WSK_BUF` for `len` bytes from `offset` of `buf`: walks past whole MDLs so
/// that `Offset` lies inside the first MDL. Errors: `STATUS_INVALID_PARAMETER` if the range
/// runs past the buffer.
pub fn wsk_buf<B: MdlBuffer + ?Sized>(buf: &B, offset: usize, len: usize) -> Result<WSK_BUF> {
    let end = offset.checked_add(len).ok_or(Error::InvalidParameter)?;
    if end > buf.len() {
        return Err(Error::InvalidParameter);
    }
    let mut mdl = buf.mdl();
    let mut off = offset;
    // SAFETY: the MdlBuffer contract: a chain of live MDLs.
    unsafe {
        while !mdl.is_null() && off >= (*mdl).ByteCount as usize && len > 0 {
            off -= (*mdl).ByteCount as usize;
            mdl = (*mdl).Next;
        }
    }
    Ok(WSK_BUF {
        Mdl: mdl,
        Offset: u32::try_from(off).map_err(|_| Error::InvalidParameter)?,
        Length: len,
    })
}

/// A nonpaged pool buffer with its own MDL (`MmBuildMdlForNonPagedPool`). Reusable for any
/// number of operations with no further allocation. IRQL <= DISPATCH_LEVEL.
pub struct NonPagedBuffer {
    mem: NonNull<u8>,
    len: usize,
    mdl: NonNull<MDL>,
    tag: u32,
}

// SAFETY: owns its memory and MDL like a Box<[u8]>.
unsafe impl Send for NonPagedBuffer {}
// SAFETY: shared access only reads.
unsafe impl Sync for NonPagedBuffer {}

impl NonPagedBuffer {
    /// Allocates `len` zeroed bytes (1 ..= 4 GiB - 1) of nonpaged pool tagged `tag`, and an
    /// MDL for them. Errors: `STATUS_INVALID_PARAMETER` for 0 or oversize lengths,
    /// `STATUS_INSUFFICIENT_RESOURCES` when pool or MDL allocation fails.
    /// Sources: ExAllocatePool2 (resolved at run time, see `pool::resolve`), IoAllocateMdl, MmBuildMdlForNonPagedPool (wdm.h).
    pub fn new(len: usize, tag: u32) -> Result<Self> {
        let mdl_len = u32::try_from(len).map_err(|_| Error::InvalidParameter)?;
        if len == 0 {
            return Err(Error::InvalidParameter);
        }
        let mem = crate::pool::allocate_nonpaged(len, tag) as *mut u8;
        let mem = NonNull::new(mem).ok_or(Error::InsufficientResources)?;
        // SAFETY: describes the block just allocated; not attached to an IRP.
        let mdl = unsafe {
            IoAllocateMdl(
                mem.as_ptr() as *const c_void,
                mdl_len,
                false,
                false,
                core::ptr::null_mut(),
            )
        };
        let Some(mdl) = NonNull::new(mdl) else {
            // SAFETY: freeing our own block.
            unsafe { crate::pool::free(mem.as_ptr() as *mut c_void, tag) };
            return Err(Error::InsufficientResources);
        };
        // SAFETY: the MDL describes nonpaged pool.
        unsafe { MmBuildMdlForNonPagedPool(mdl.as_ptr()) };
        Ok(NonPagedBuffer { mem, len, mdl, tag })
    }

    /// Allocates a buffer holding a copy of `data` (which must not be empty).
    pub fn from_slice(data: &[u8], tag: u32) -> Result<Self> {
        let mut b = Self::new(data.len(), tag)?;
        b.as_mut_slice().copy_from_slice(data);
        Ok(b)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: owned block of `len` initialised bytes.
        unsafe { core::slice::from_raw_parts(self.mem.as_ptr(), self.len) }
    }

    /// The bytes, writable (no operation can hold the buffer: that needs `&self` or `self`).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: owned block, unique access.
        unsafe { core::slice::from_raw_parts_mut(self.mem.as_ptr(), self.len) }
    }
}

// SAFETY: the MDL describes the owned nonpaged block for the value's whole life.
unsafe impl MdlBuffer for NonPagedBuffer {
    fn mdl(&self) -> *mut MDL {
        self.mdl.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for NonPagedBuffer {
    fn drop(&mut self) {
        // SAFETY: owned MDL (unlinked from any chain by its owner) and block, freed once.
        unsafe {
            (*self.mdl.as_ptr()).Next = core::ptr::null_mut();
            IoFreeMdl(self.mdl.as_ptr());
            crate::pool::free(self.mem.as_ptr() as *mut c_void, self.tag);
        }
    }
}

/// Several [`NonPagedBuffer`]s linked into one MDL chain (`MDL.Next`), sent as one `WSK_BUF`.
pub struct BufferChain {
    parts: Vec<NonPagedBuffer>,
    len: usize,
}

impl BufferChain {
    /// Links `parts` in order. Errors: `STATUS_INVALID_PARAMETER` if `parts` is empty.
    pub fn new(mut parts: Vec<NonPagedBuffer>) -> Result<Self> {
        if parts.is_empty() {
            return Err(Error::InvalidParameter);
        }
        let mut len = 0usize;
        let mut next: *mut MDL = core::ptr::null_mut();
        for p in parts.iter_mut().rev() {
            // SAFETY: each part owns its MDL; linking them is the chain's purpose.
            unsafe { (*p.mdl()).Next = next };
            next = p.mdl();
            len += p.len();
        }
        Ok(BufferChain { parts, len })
    }

    /// The parts, in chain order.
    pub fn parts(&self) -> &[NonPagedBuffer] {
        &self.parts
    }
}

// SAFETY: the chain links live, nonpaged MDLs owned by `parts`.
unsafe impl MdlBuffer for BufferChain {
    fn mdl(&self) -> *mut MDL {
        self.parts
            .first()
            .map_or(core::ptr::null_mut(), |p| p.mdl())
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// An MDL chain owned by someone else for the lifetime `'a` — for example the MDL of a
/// pending `METHOD_IN_DIRECT` request, which the I/O manager keeps locked until the request
/// completes.
pub struct BorrowedMdl<'a> {
    mdl: NonNull<MDL>,
    len: usize,
    _life: PhantomData<&'a MDL>,
}

// SAFETY: a view of locked memory; the owner keeps it valid for 'a.
unsafe impl Send for BorrowedMdl<'_> {}

impl BorrowedMdl<'_> {
    /// Wraps an MDL chain describing at least `len` bytes.
    ///
    /// # Safety
    /// The chain must be live and locked (or nonpaged) for the chosen lifetime, and must
    /// describe at least `len` bytes.
    pub unsafe fn new(mdl: NonNull<MDL>, len: usize) -> Self {
        BorrowedMdl {
            mdl,
            len,
            _life: PhantomData,
        }
    }
}

// SAFETY: per the constructor's contract.
unsafe impl MdlBuffer for BorrowedMdl<'_> {
    fn mdl(&self) -> *mut MDL {
        self.mdl.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}
