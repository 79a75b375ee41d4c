//! Framework objects: one handle table for drivers, devices, queues, requests and file
//! objects, their context memory (`WDF_OBJECT_ATTRIBUTES` with a context type), and the
//! tombstones of completed requests the verifier needs to recognise a second completion.
//!
//! Handles are opaque values the model hands out (never reused within a process), as a
//! framework handle is opaque to a driver; a driver reaches its context memory only through
//! `WdfObjectGetTypedContextWorker`.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::sync::{Mutex, MutexGuard};

use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_INFO_LENGTH_MISMATCH, STATUS_INSUFFICIENT_RESOURCES,
};

use super::types::*;
use crate::lookaside::Slab;
use crate::verifier::{self, Rule};

/// Context memory of one object: zeroed at creation, as the framework zeroes it.
pub(crate) struct Context {
    ptr: usize,
    /// `UniqueType` of the declared context type.
    type_info: usize,
}

impl Context {
    pub(crate) fn ptr(&self) -> *mut std::ffi::c_void {
        self.ptr as *mut std::ffi::c_void
    }
}

/// Object contexts, from lookaside lists by size like IRPs (see [`crate::lookaside`]; KMDF
/// allocates a request's object and context from a lookaside list too): a freed context is
/// poisoned and parked (under ASan, unaddressable), and a steady state of requests
/// allocates no heap for them.
static CONTEXTS: Mutex<Slab<()>> = Mutex::new(Slab::new());

fn contexts() -> MutexGuard<'static, Slab<()>> {
    CONTEXTS.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Context {
    fn drop(&mut self) {
        // Allocated in `allocate_context`; dropped once. Poisons and parks it.
        contexts().free(self.ptr);
    }
}

/// What the framework keeps for a driver object (`WDFDRIVER`).
pub(crate) struct Driver {
    pub(crate) driver_object: usize,
    pub(crate) unload: PFN_WDF_DRIVER_UNLOAD,
    /// The resolved `ExecutionLevel` (KMDF's default for a driver is Dispatch).
    pub(crate) passive: bool,
}

/// A framework device (`WDFDEVICE`), here always a control device.
pub(crate) struct Device {
    pub(crate) device_object: usize,
    /// The device's name (`WdfDeviceInitAssignName`).
    pub(crate) name: Option<crate::iomgr::UnicodeString>,
    pub(crate) passive: bool,
    pub(crate) file_config: Option<WDF_FILEOBJECT_CONFIG>,
    pub(crate) file_attributes: Option<WDF_OBJECT_ATTRIBUTES>,
    pub(crate) request_attributes: Option<WDF_OBJECT_ATTRIBUTES>,
    pub(crate) default_queue: Option<usize>,
    /// Symbolic links created with `WdfDeviceCreateSymbolicLink`, deleted with the device.
    pub(crate) links: Vec<crate::iomgr::UnicodeString>,
}

/// A framework queue (`WDFQUEUE`).
pub(crate) struct Queue {
    pub(crate) device: usize,
    pub(crate) passive: bool,
    /// The most requests the queue presents to the driver at once (`NumberOfPresentedRequests`
    /// for a parallel queue, 1 for a sequential one, 0 for a manual one).
    pub(crate) max_presented: u32,
    /// Requests presented and not completed yet (FxIoQueue's `m_DriverIoCount`).
    pub(crate) presented: u32,
    /// Requests waiting in the queue, oldest first.
    pub(crate) waiting: VecDeque<usize>,
    pub(crate) evt_io_device_control: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    pub(crate) evt_io_default: PFN_WDF_IO_QUEUE_IO_DEFAULT,
}

/// Who owns a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Waiting in a queue: the framework owns it (and cancels it on IoCancelIrp).
    Queue,
    /// Presented to (or created for) the driver.
    Driver,
}

/// A framework request (`WDFREQUEST`) for an IRP the I/O manager sent.
pub(crate) struct Request {
    pub(crate) irp: usize,
    pub(crate) major: u8,
    pub(crate) queue: Option<usize>,
    pub(crate) file: Option<usize>,
    pub(crate) owner: Owner,
    /// `EvtRequestCancel` while the driver holds the request cancelable.
    pub(crate) cancel: PFN_WDF_REQUEST_CANCEL,
    /// The IRP was cancelled while driver-cancelable: the framework took the cancel routine
    /// and `EvtRequestCancel` will run (or ran). `WdfRequestUnmarkCancelable` returns
    /// STATUS_CANCELLED from then on.
    pub(crate) cancel_claimed: bool,
    /// `EvtRequestCancel` has been called.
    pub(crate) cancel_delivered: bool,
    /// Callbacks for this request run at PASSIVE_LEVEL (its queue's level).
    pub(crate) passive: bool,
    /// An MDL the framework built for a METHOD_BUFFERED output buffer, freed at completion.
    pub(crate) built_mdl: usize,
}

/// A framework file object (`WDFFILEOBJECT`).
pub(crate) struct File {
    pub(crate) wdm: usize,
    pub(crate) device: usize,
}

pub(crate) enum Kind {
    Driver(Driver),
    Device(Device),
    Queue(Queue),
    Request(Request),
    File(File),
}

impl Kind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::Driver(_) => "WDFDRIVER",
            Kind::Device(_) => "WDFDEVICE",
            Kind::Queue(_) => "WDFQUEUE",
            Kind::Request(_) => "WDFREQUEST",
            Kind::File(_) => "WDFFILEOBJECT",
        }
    }
}

pub(crate) struct Object {
    pub(crate) kind: Kind,
    pub(crate) context: Option<Context>,
    pub(crate) cleanup: PFN_WDF_OBJECT_CONTEXT,
    pub(crate) destroy: PFN_WDF_OBJECT_CONTEXT,
}

/// What `WdfControlDeviceInitAllocate` returns (`PWDFDEVICE_INIT`).
#[derive(Default)]
pub(crate) struct DeviceInit {
    pub(crate) sddl: Option<crate::iomgr::UnicodeString>,
    pub(crate) name: Option<crate::iomgr::UnicodeString>,
    pub(crate) device_type: u32,
    pub(crate) characteristics: u32,
    pub(crate) file_config: Option<WDF_FILEOBJECT_CONFIG>,
    pub(crate) file_attributes: Option<WDF_OBJECT_ATTRIBUTES>,
    pub(crate) request_attributes: Option<WDF_OBJECT_ATTRIBUTES>,
}

/// A set of object handles as a bitmap over the handle numbers (handles are handed out in
/// increasing steps of 0x10 from [`FIRST_HANDLE`]): one bit per object ever created instead
/// of a hash-set entry per completed request, and no hashing per request.
#[derive(Default)]
pub(crate) struct Tombstones {
    bits: Vec<u64>,
}

/// The first handle [`Fx::insert`] hands out, less one step.
const FIRST_HANDLE: usize = 0x5df0_0000;

impl Tombstones {
    fn index(h: usize) -> Option<usize> {
        let n = h.checked_sub(FIRST_HANDLE)?;
        (n % 0x10 == 0).then_some(n / 0x10)
    }

    /// Adds `h`.
    pub(crate) fn insert(&mut self, h: usize) {
        let Some(i) = Self::index(h) else {
            return;
        };
        let word = i / 64;
        if self.bits.len() <= word {
            // Grows by doubling, from 16 KiB (131,072 handles) on.
            let want = (word + 1).next_power_of_two().max(2048);
            self.bits.resize(want, 0);
        }
        self.bits[word] |= 1 << (i % 64);
    }

    /// Whether `h` was added.
    pub(crate) fn contains(&self, h: &usize) -> bool {
        Self::index(*h)
            .and_then(|i| self.bits.get(i / 64).map(|w| w & (1 << (i % 64)) != 0))
            .unwrap_or(false)
    }
}

/// The framework's state.
#[derive(Default)]
pub(crate) struct Fx {
    next: usize,
    pub(crate) objects: FxHashMap<usize, Object>,
    /// Requests completed so far (a completed handle is never handed out again).
    pub(crate) completed: Tombstones,
    /// Live `PWDFDEVICE_INIT` allocations.
    pub(crate) inits: FxHashMap<usize, Box<DeviceInit>>,
    /// DEVICE_OBJECT -> WDFDEVICE.
    pub(crate) by_device_object: FxHashMap<usize, usize>,
    /// FILE_OBJECT -> WDFFILEOBJECT.
    pub(crate) by_file_object: FxHashMap<usize, usize>,
    /// IRP -> WDFREQUEST.
    pub(crate) by_irp: FxHashMap<usize, usize>,
    /// The loaded driver's WDFDRIVER.
    pub(crate) driver: Option<usize>,
    /// Cancelled requests whose `EvtRequestCancel` is held back (see
    /// [`super::hold_cancel_callbacks`]).
    pub(crate) held_cancels: Vec<usize>,
}

// SAFETY: the raw pointers inside (attributes' context type info, MDL and IRP addresses)
// name the driver's static declarations and kernel objects, valid on any thread; all
// access is under FX's lock.
unsafe impl Send for Fx {}

static FX: Mutex<Option<Fx>> = Mutex::new(None);

/// The framework's state, locked. Never held across a call into the driver or into
/// `IofCompleteRequest`.
pub(crate) struct FxGuard(MutexGuard<'static, Option<Fx>>);

impl std::ops::Deref for FxGuard {
    type Target = Fx;
    fn deref(&self) -> &Fx {
        self.0.as_ref().expect("initialised in fx()")
    }
}

impl std::ops::DerefMut for FxGuard {
    fn deref_mut(&mut self) -> &mut Fx {
        self.0.as_mut().expect("initialised in fx()")
    }
}

pub(crate) fn fx() -> FxGuard {
    let mut g = FX.lock().unwrap_or_else(|p| p.into_inner());
    if g.is_none() {
        *g = Some(Fx {
            next: FIRST_HANDLE,
            ..Fx::default()
        });
    }
    FxGuard(g)
}

impl Fx {
    /// Inserts an object and returns its handle.
    pub(crate) fn insert(&mut self, object: Object) -> usize {
        self.next += 0x10;
        let h = self.next;
        self.objects.insert(h, object);
        h
    }

    pub(crate) fn request(&mut self, h: usize) -> Option<&mut Request> {
        match self.objects.get_mut(&h).map(|o| &mut o.kind) {
            Some(Kind::Request(r)) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn queue(&mut self, h: usize) -> Option<&mut Queue> {
        match self.objects.get_mut(&h).map(|o| &mut o.kind) {
            Some(Kind::Queue(q)) => Some(q),
            _ => None,
        }
    }

    pub(crate) fn device(&mut self, h: usize) -> Option<&mut Device> {
        match self.objects.get_mut(&h).map(|o| &mut o.kind) {
            Some(Kind::Device(d)) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn file(&self, h: usize) -> Option<&File> {
        match self.objects.get(&h).map(|o| &o.kind) {
            Some(Kind::File(f)) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn driver_rec(&mut self) -> Option<&mut Driver> {
        let h = self.driver?;
        match self.objects.get_mut(&h).map(|o| &mut o.kind) {
            Some(Kind::Driver(d)) => Some(d),
            _ => None,
        }
    }

    /// Live requests (the verifier's "outstanding" count).
    pub(crate) fn live_requests(&self) -> Vec<usize> {
        self.objects
            .iter()
            .filter(|(_, o)| matches!(o.kind, Kind::Request(_)))
            .map(|(&h, _)| h)
            .collect()
    }
}

/// Reads optional object attributes: `Ok(None)` for WDF_NO_OBJECT_ATTRIBUTES, `Err` with
/// STATUS_INFO_LENGTH_MISMATCH for a wrong `Size` (the framework's validation).
///
/// # Safety
/// `p` is NULL or points to readable attributes.
pub(crate) unsafe fn read_attributes(
    routine: &str,
    p: *const WDF_OBJECT_ATTRIBUTES,
) -> Result<Option<WDF_OBJECT_ATTRIBUTES>, NTSTATUS> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: caller contract.
    let a = unsafe { *p };
    if a.Size as usize != std::mem::size_of::<WDF_OBJECT_ATTRIBUTES>() {
        verifier::violation(
            Rule::WdfApi,
            format!("{routine}: WDF_OBJECT_ATTRIBUTES.Size {} (not initialised with WDF_OBJECT_ATTRIBUTES_INIT?)", a.Size),
        );
        return Err(STATUS_INFO_LENGTH_MISMATCH);
    }
    Ok(Some(a))
}

/// The context an object gets from its attributes (none without a context type).
///
/// # Safety
/// `attributes.ContextTypeInfo` is NULL or points to a declared context type.
pub(crate) unsafe fn allocate_context(
    attributes: Option<&WDF_OBJECT_ATTRIBUTES>,
) -> Result<Option<Context>, NTSTATUS> {
    let Some(a) = attributes else {
        return Ok(None);
    };
    if a.ContextTypeInfo.is_null() {
        return Ok(None);
    }
    // SAFETY: caller contract.
    let info = unsafe { &*a.ContextTypeInfo };
    let size = info.ContextSize.max(a.ContextSizeOverride).max(1);
    if isize::try_from(size).is_err() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    let ptr = contexts()
        .alloc(size, ())
        .ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    // SAFETY: a fresh slot of `size` bytes, ours; zeroed as the framework's context is.
    unsafe { std::ptr::write_bytes(ptr, 0, size) };
    let unique = if info.UniqueType.is_null() {
        a.ContextTypeInfo as usize
    } else {
        info.UniqueType as usize
    };
    Ok(Some(Context {
        ptr: ptr as usize,
        type_info: unique,
    }))
}

/// The context of `h` if it was declared with type `type_info` (`UniqueType`).
pub(crate) fn context_of(fx: &Fx, h: usize, type_info: usize) -> Option<*mut std::ffi::c_void> {
    let o = fx.objects.get(&h)?;
    let c = o.context.as_ref()?;
    // The type's identity: its UniqueType, or the info itself when a driver passes that.
    let matches = c.type_info == type_info || {
        // SAFETY: a driver passes a pointer to its declared type info.
        let info = type_info as *const WDF_OBJECT_CONTEXT_TYPE_INFO;
        !info.is_null() && unsafe { (*info).UniqueType } as usize == c.type_info
    };
    matches.then(|| c.ptr())
}

/// Runs an object's `EvtCleanupCallback` and `EvtDestroyCallback` (outside the lock, with
/// its context still reachable, as the framework does), then removes it and frees its
/// context.
pub(crate) fn destroy(h: usize) {
    let callbacks = fx().objects.get(&h).map(|o| (o.cleanup, o.destroy));
    let Some((cleanup, destroy)) = callbacks else {
        return;
    };
    // SAFETY: the driver's own callbacks for its object, called once each.
    unsafe {
        if let Some(f) = cleanup {
            f(h as WDFOBJECT);
        }
        if let Some(f) = destroy {
            f(h as WDFOBJECT);
        }
    }
    let o = fx().objects.remove(&h);
    drop(o);
}
