//! The runtime a `no_std` kernel driver must provide itself on the Windows target
//! (`x86_64-pc-windows-msvc`, linked by lld-link with `/DRIVER /NODEFAULTLIB`): there is no
//! CRT and no std, so nothing else supplies these.
//!
//! - [`panic`]: the `#[panic_handler]`. A kernel driver cannot unwind or exit; the Windows
//!   norm for an unrecoverable driver error is a bug check with a driver-defined code, so
//!   it calls `KeBugCheckEx(WSKCLIENT_PANIC, line, 0, 0, 0)` (imported from ntoskrnl.exe
//!   through `nt-imports`). The build uses `panic = "abort"`, so no unwinding code is
//!   emitted. The driver's own code denies `unwrap`/`expect`/`panic!`/indexing (see lib.rs),
//!   so a panic can only come from a bug in a dependency or an arithmetic/assert check.
//! - [`PoolAllocator`]: the `#[global_allocator]` for `alloc` (`Box`, `Arc`, `Vec`):
//!   nonpaged, no-execute pool tagged `WskA` through `wsk::pool::allocate_nonpaged` (which
//!   uses `ExAllocatePool2` when `MmGetSystemRoutineAddress` finds it, else
//!   `ExAllocatePoolWithTag` + zeroing) and `wsk::pool::free` (`ExFreePoolWithTag`). Pool
//!   blocks are 16-byte aligned on x64, so layouts with alignment <= 16 are served and larger
//!   alignments get NULL (an allocation failure, never a misaligned block).
//! - `__chkstk`: LLVM calls it from the prologue of every function whose frame is larger
//!   than a page (RAX = frame size). The MSVC CRT normally supplies it. Kernel stacks are
//!   fully committed and resident (no guard-page growth as in user mode), so the kernel
//!   CRT's version does no allocation work; what a probe still buys is that a frame larger
//!   than the remaining stack touches the guard page below the stack in order (a clean
//!   stack-overflow bug check) instead of jumping past it into unrelated memory. So this
//!   one keeps the full probing semantics: it touches every page from the caller's RSP
//!   down to RSP - RAX, and preserves every register (it only reads memory). It is written
//!   in `global_asm!` so that the symbol is not a Rust item and is not exported by the
//!   cdylib. ntoskrnl.exe also exports `__chkstk` on x64, but depending on our own copy
//!   keeps the import list minimal.
//! - `_fltused`: the MSVC linker convention marking that floating point is used; code
//!   generated for `f32`/`f64` references it. A 32-bit zero, also in `global_asm!` so it is
//!   not exported.
//!
//! `memcpy`, `memset`, `memmove`, `memcmp` come from `compiler_builtins` (built with
//! `-Zbuild-std-features=compiler-builtins-mem`), so the driver does not import them.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

/// Pool tag of the driver's heap allocations (`Box`, `Arc`, `Vec`): `WskA`.
pub const HEAP_TAG: u32 = wsk::pool::tag(b"WskA");

/// The bug-check code of a driver panic: a driver-defined code with the customer bit
/// (bit 29, `0x20000000`) set, as Microsoft reserves codes without it.
/// Parameter 1 is the source line of the panic, when known.
pub const WSKCLIENT_PANIC: u32 = 0xE57C_0001;

/// Largest alignment the pool guarantees on x64.
const POOL_ALIGN: usize = 16;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let line = info.location().map_or(0, |l| l.line() as usize);
    // SAFETY: KeBugCheckEx may be called at any IRQL and does not return; it stops the
    // system with our driver-defined code, the documented way for a driver to stop on an
    // unrecoverable inconsistency.
    unsafe { nt_imports::KeBugCheckEx(WSKCLIENT_PANIC, line, 0, 0, 0) }
}

/// The global allocator: nonpaged pool tagged [`HEAP_TAG`]. IRQL <= DISPATCH_LEVEL.
pub struct PoolAllocator;

// SAFETY: blocks come from the pool with the layout's size and are 16-byte aligned, so any
// layout with align <= 16 is satisfied; larger alignments return NULL (allowed: an
// allocation failure). Blocks are freed once with the tag they were allocated with.
unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > POOL_ALIGN {
            return core::ptr::null_mut();
        }
        wsk::pool::allocate_nonpaged(layout.size().max(1), HEAP_TAG) as *mut u8
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // allocate_nonpaged returns zeroed memory on both of its paths.
        // SAFETY: forwarded caller contract.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above (GlobalAlloc contract) with HEAP_TAG.
        unsafe { wsk::pool::free(ptr as *mut c_void, HEAP_TAG) }
    }
}

#[global_allocator]
static ALLOCATOR: PoolAllocator = PoolAllocator;

// __chkstk (RAX = bytes the caller's prologue is about to subtract from RSP). On entry
// [rsp] is the return address, so the caller's RSP is rsp + 8; after the two pushes it is
// rsp + 24. Touch one byte in every page from there down to caller_rsp - RAX, then restore
// RAX and RCX; flags are the only other state changed, which the calling convention allows.
core::arch::global_asm!(
    ".globl __chkstk",
    ".p2align 4",
    "__chkstk:",
    "    push rcx",
    "    push rax",
    "    lea rcx, [rsp + 24]",
    "    cmp rax, 0x1000",
    "    jb 2f",
    "1:",
    "    sub rcx, 0x1000",
    "    test [rcx], rcx",
    "    sub rax, 0x1000",
    "    cmp rax, 0x1000",
    "    ja 1b",
    "2:",
    "    sub rcx, rax",
    "    test [rcx], rcx",
    "    pop rax",
    "    pop rcx",
    "    ret",
    "",
    ".data",
    ".globl _fltused",
    ".p2align 2",
    "_fltused:",
    "    .long 0",
    ".text",
);
