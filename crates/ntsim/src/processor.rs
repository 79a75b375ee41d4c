//! The processors of the emulated machine: `KeQueryMaximumProcessorCountEx`,
//! `KeQueryActiveProcessorCountEx` and `KeGetCurrentProcessorNumberEx`.
//!
//! The model has [`MODELLED_PROCESSORS`] processors in group 0, all active, whatever the
//! host has. Each host thread runs on one of them for its whole life: the first time a thread
//! asks, it is given the next index in turn (0, 1, .., N-1, 0, ..), so two threads that ask
//! in a row are on different processors, as a driver's request path and the provider's
//! completion thread usually are on Windows. A thread never migrates in the model; on Windows
//! a thread below DISPATCH_LEVEL can, which per-processor data must tolerate anyway.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

use windows_sys::Win32::System::Kernel::PROCESSOR_NUMBER;

/// How many processors the emulated machine has (one group).
pub const MODELLED_PROCESSORS: u32 = 4;
/// `ALL_PROCESSOR_GROUPS` (wdm.h): every group.
pub const ALL_PROCESSOR_GROUPS: u16 = 0xFFFF;

static NEXT: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static CURRENT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// The calling thread's processor index, `< MODELLED_PROCESSORS`.
pub fn current() -> u32 {
    CURRENT.with(|c| match c.get() {
        Some(i) => i,
        None => {
            let i = NEXT.fetch_add(1, Ordering::Relaxed) % MODELLED_PROCESSORS;
            c.set(Some(i));
            i
        }
    })
}

/// Puts the calling thread on processor `index % MODELLED_PROCESSORS` (tests that need a
/// request path and a completion on chosen processors).
pub fn set_current(index: u32) {
    CURRENT.with(|c| c.set(Some(index % MODELLED_PROCESSORS)));
}

fn count(group: u16) -> u32 {
    if group == 0 || group == ALL_PROCESSOR_GROUPS {
        MODELLED_PROCESSORS
    } else {
        0
    }
}

/// `KeQueryMaximumProcessorCountEx`: the processors group `GroupNumber` can have (0 for a
/// group that does not exist). Any IRQL.
#[no_mangle]
pub extern "system" fn KeQueryMaximumProcessorCountEx(GroupNumber: u16) -> u32 {
    count(GroupNumber)
}

/// `KeQueryActiveProcessorCountEx`: the active processors of group `GroupNumber`. Any IRQL.
#[no_mangle]
pub extern "system" fn KeQueryActiveProcessorCountEx(GroupNumber: u16) -> u32 {
    count(GroupNumber)
}

/// `KeGetCurrentProcessorNumberEx`: the calling thread's system-wide processor index; fills
/// `ProcNumber` (group 0, the same number) when it is not NULL. Any IRQL.
///
/// # Safety
/// `ProcNumber` is NULL or points to a writable `PROCESSOR_NUMBER`.
#[no_mangle]
pub unsafe extern "system" fn KeGetCurrentProcessorNumberEx(
    ProcNumber: *mut PROCESSOR_NUMBER,
) -> u32 {
    let i = current();
    if !ProcNumber.is_null() {
        // SAFETY: the caller's contract.
        unsafe {
            ProcNumber.write(PROCESSOR_NUMBER {
                Group: 0,
                Number: i as u8,
                Reserved: 0,
            })
        };
    }
    i
}
