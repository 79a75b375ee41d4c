//! Device objects, symbolic links and driver objects: `IoCreateDevice`,
//! `IoCreateDeviceSecure` (wdmsec), `IoDeleteDevice`, `IoCreateSymbolicLink`,
//! `IoDeleteSymbolicLink`, and the driver loader (`DriverEntry` / `DriverUnload`).
//!
//! One process-wide namespace table stands in for the object manager: device names
//! (`\Device\X`) and symbolic links (`\??\X`, also spelt `\DosDevices\X` or `\GLOBAL??\X`),
//! compared case-insensitively as the object manager compares them.

use rustc_hash::FxHashMap;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::{LazyLock, Mutex, MutexGuard};

use windows_sys::core::GUID;
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_EXTENSION, DRIVER_OBJECT, IRP};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_IMAGE_ALREADY_LOADED, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_COLLISION,
    STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS, UNICODE_STRING,
};

use super::ustr::{self, UnicodeString};
use crate::irql;
use crate::verifier::{self, Rule};

/// `IO_TYPE_DEVICE`.
pub const IO_TYPE_DEVICE: i16 = 3;
/// `IO_TYPE_DRIVER`.
pub const IO_TYPE_DRIVER: i16 = 4;
/// `DO_EXCLUSIVE`.
pub const DO_EXCLUSIVE: u32 = 0x0000_0008;
/// `DO_BUFFERED_IO`.
pub const DO_BUFFERED_IO: u32 = 0x0000_0004;
/// `DO_DIRECT_IO`.
pub const DO_DIRECT_IO: u32 = 0x0000_0010;
/// `DO_DEVICE_INITIALIZING`.
pub const DO_DEVICE_INITIALIZING: u32 = 0x0000_0080;
/// `IRP_MJ_MAXIMUM_FUNCTION + 1`.
pub const IRP_MJ_COUNT: usize = 28;

/// The signature of a driver's `DriverEntry` (`DRIVER_INITIALIZE`).
pub type DriverEntry =
    unsafe extern "system" fn(*mut DRIVER_OBJECT, *const UNICODE_STRING) -> NTSTATUS;

pub(crate) struct DeviceRec {
    pub(crate) driver: usize,
    name_key: Option<String>,
    sddl: Option<String>,
    /// The routine that set `sddl` (`IoCreateDeviceSecure`, `ZwSetSecurityObject`).
    security_by: &'static str,
    layout: Layout,
    /// File objects open on the device (user handles that got past IRP_MJ_CREATE, until
    /// their IRP_MJ_CLOSE).
    pub(crate) open: usize,
    /// `IoDeleteDevice` was called while file objects were open: the name is gone, the
    /// memory is freed when the last one closes.
    delete_pending: bool,
}

struct DriverRec {
    service_key: String,
    unload_pending: bool,
    /// Keys of every device name this driver created, for the symbolic-link check.
    device_names: Vec<String>,
    extension: usize,
    _driver_name: UnicodeString,
    _service_name: UnicodeString,
}

#[derive(Default)]
pub(crate) struct Namespace {
    pub(crate) devices: FxHashMap<usize, DeviceRec>,
    /// Device name key -> device object.
    names: FxHashMap<String, usize>,
    /// Link name key -> (link name as created, target name key).
    links: FxHashMap<String, (String, String)>,
    drivers: FxHashMap<usize, DriverRec>,
}

static NS: LazyLock<Mutex<Namespace>> = LazyLock::new(|| Mutex::new(Namespace::default()));

pub(crate) fn ns() -> MutexGuard<'static, Namespace> {
    NS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The case-insensitive key of an object name; the DOS-device directory's aliases
/// (`\DosDevices\`, `\GLOBAL??\`) are folded into `\??\`.
pub(crate) fn name_key(name: &str) -> String {
    let lower = name.to_lowercase();
    for alias in ["\\dosdevices\\", "\\global??\\"] {
        if let Some(rest) = lower.strip_prefix(alias) {
            return format!("\\??\\{rest}");
        }
    }
    lower
}

fn require_passive(routine: &str) {
    let now = irql::current();
    if now != irql::PASSIVE_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("{routine} at IRQL {now}; it must be called at PASSIVE_LEVEL"),
        );
    }
}

/// Reads an object name argument: `Ok(None)` for NULL, `Err` for a malformed or relative name.
///
/// # Safety
/// `name` is NULL or a readable `UNICODE_STRING`.
unsafe fn object_name(name: *const UNICODE_STRING) -> Result<Option<String>, NTSTATUS> {
    if name.is_null() {
        return Ok(None);
    }
    // SAFETY: caller contract.
    match unsafe { ustr::read(name) } {
        Some(s) if s.starts_with('\\') && s.len() > 1 => Ok(Some(s)),
        _ => Err(STATUS_OBJECT_NAME_INVALID),
    }
}

fn device_layout(extension_size: u32) -> Option<(Layout, usize)> {
    let head = std::mem::size_of::<DEVICE_OBJECT>().next_multiple_of(16);
    let size = head.checked_add(extension_size as usize)?;
    Some((Layout::from_size_align(size, 16).ok()?, head))
}

/// Creates a device object (shared by `IoCreateDevice` and `IoCreateDeviceSecure`).
///
/// # Safety
/// As `IoCreateDevice`.
#[allow(clippy::too_many_arguments)]
unsafe fn create_device(
    routine: &'static str,
    driver: *const DRIVER_OBJECT,
    extension_size: u32,
    name: *const UNICODE_STRING,
    device_type: u32,
    characteristics: u32,
    exclusive: bool,
    sddl: Option<String>,
    out: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    require_passive(routine);
    if driver.is_null() || out.is_null() {
        verifier::violation(
            Rule::DriverObject,
            format!("{routine}: NULL DriverObject or DeviceObject"),
        );
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: caller contract: `out` is writable.
    unsafe { out.write(std::ptr::null_mut()) };
    // SAFETY: caller contract.
    let name = match unsafe { object_name(name) } {
        Ok(n) => n,
        Err(s) => return s,
    };
    let Some((layout, head)) = device_layout(extension_size) else {
        return STATUS_INSUFFICIENT_RESOURCES;
    };
    let key = name.as_deref().map(name_key);
    let mut ns = ns();
    if let Some(k) = &key {
        if ns.names.contains_key(k) || ns.links.contains_key(k) {
            return STATUS_OBJECT_NAME_COLLISION;
        }
    }
    // SAFETY: non-zero size (DEVICE_OBJECT is not a ZST).
    let dev = unsafe { alloc_zeroed(layout) }.cast::<DEVICE_OBJECT>();
    if dev.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let driver = driver as *mut DRIVER_OBJECT;
    // SAFETY: `dev` is a fresh zeroed block of `layout.size()` bytes; `driver` is the
    // caller's live driver object, whose device list only the I/O manager edits (under NS).
    unsafe {
        (*dev).Type = IO_TYPE_DEVICE;
        (*dev).Size = layout.size().min(u16::MAX as usize) as u16;
        (*dev).DriverObject = driver;
        (*dev).StackSize = 1;
        (*dev).DeviceType = device_type;
        (*dev).Characteristics = characteristics;
        (*dev).Flags = DO_DEVICE_INITIALIZING | if exclusive { DO_EXCLUSIVE } else { 0 };
        if extension_size > 0 {
            (*dev).DeviceExtension = dev.cast::<u8>().add(head).cast();
        }
        crate::event::KeInitializeEvent(
            std::ptr::addr_of_mut!((*dev).DeviceLock),
            crate::event::SYNCHRONIZATION_EVENT,
            true,
        );
        (*dev).NextDevice = (*driver).DeviceObject;
        (*driver).DeviceObject = dev;
    }
    if let Some(k) = &key {
        ns.names.insert(k.clone(), dev as usize);
        if let Some(d) = ns.drivers.get_mut(&(driver as usize)) {
            d.device_names.push(k.clone());
        }
    }
    ns.devices.insert(
        dev as usize,
        DeviceRec {
            driver: driver as usize,
            name_key: key,
            security_by: if sddl.is_some() { routine } else { "" },
            sddl,
            layout,
            open: 0,
            delete_pending: false,
        },
    );
    // SAFETY: caller contract: `out` is writable.
    unsafe { out.write(dev) };
    STATUS_SUCCESS
}

/// `IoCreateDevice`.
///
/// # Safety
/// `DriverObject` is the caller's driver object, `DeviceName` NULL or a readable
/// `UNICODE_STRING`, `DeviceObject` writable.
#[no_mangle]
pub unsafe extern "system" fn IoCreateDevice(
    DriverObject: *const DRIVER_OBJECT,
    DeviceExtensionSize: u32,
    DeviceName: *const UNICODE_STRING,
    DeviceType: u32,
    DeviceCharacteristics: u32,
    Exclusive: bool,
    DeviceObject: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    // SAFETY: caller contract, forwarded.
    unsafe {
        create_device(
            "IoCreateDevice",
            DriverObject,
            DeviceExtensionSize,
            DeviceName,
            DeviceType,
            DeviceCharacteristics,
            Exclusive,
            None,
            DeviceObject,
        )
    }
}

/// `IoCreateDeviceSecure` (wdmsec.lib; the header maps it to `WdmlibIoCreateDeviceSecure`):
/// `IoCreateDevice` plus a default security descriptor in SDDL, recorded for
/// [`device_sddl`].
///
/// # Safety
/// As [`IoCreateDevice`]; `DefaultSDDLString` is a readable `UNICODE_STRING`,
/// `DeviceClassGuid` NULL or a readable GUID.
#[no_mangle]
pub unsafe extern "system" fn IoCreateDeviceSecure(
    DriverObject: *const DRIVER_OBJECT,
    DeviceExtensionSize: u32,
    DeviceName: *const UNICODE_STRING,
    DeviceType: u32,
    DeviceCharacteristics: u32,
    Exclusive: bool,
    DefaultSDDLString: *const UNICODE_STRING,
    DeviceClassGuid: *const GUID,
    DeviceObject: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    let _ = DeviceClassGuid;
    // SAFETY: caller contract.
    let sddl = match unsafe { ustr::read(DefaultSDDLString) } {
        Some(s) if s.starts_with("D:") => s,
        _ => return STATUS_INVALID_PARAMETER,
    };
    // SAFETY: caller contract, forwarded.
    unsafe {
        create_device(
            "IoCreateDeviceSecure",
            DriverObject,
            DeviceExtensionSize,
            DeviceName,
            DeviceType,
            DeviceCharacteristics,
            Exclusive,
            Some(sddl),
            DeviceObject,
        )
    }
}

/// `WdmlibIoCreateDeviceSecure`: the name wdmsec.h maps `IoCreateDeviceSecure` to.
///
/// # Safety
/// As [`IoCreateDeviceSecure`].
#[no_mangle]
pub unsafe extern "system" fn WdmlibIoCreateDeviceSecure(
    DriverObject: *const DRIVER_OBJECT,
    DeviceExtensionSize: u32,
    DeviceName: *const UNICODE_STRING,
    DeviceType: u32,
    DeviceCharacteristics: u32,
    Exclusive: bool,
    DefaultSDDLString: *const UNICODE_STRING,
    DeviceClassGuid: *const GUID,
    DeviceObject: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    // SAFETY: caller contract, forwarded.
    unsafe {
        IoCreateDeviceSecure(
            DriverObject,
            DeviceExtensionSize,
            DeviceName,
            DeviceType,
            DeviceCharacteristics,
            Exclusive,
            DefaultSDDLString,
            DeviceClassGuid,
            DeviceObject,
        )
    }
}

/// Unlinks `dev` from its driver's device list.
///
/// # Safety
/// `dev` is a live device whose driver object is live; NS is held.
unsafe fn unlink(dev: *mut DEVICE_OBJECT) {
    // SAFETY: caller contract.
    unsafe {
        let driver = (*dev).DriverObject;
        if driver.is_null() {
            return;
        }
        let mut slot: *mut *mut DEVICE_OBJECT = std::ptr::addr_of_mut!((*driver).DeviceObject);
        while !(*slot).is_null() {
            if *slot == dev {
                *slot = (*dev).NextDevice;
                (*dev).NextDevice = std::ptr::null_mut();
                return;
            }
            slot = std::ptr::addr_of_mut!((**slot).NextDevice);
        }
    }
}

/// Frees a device object's memory and forgets it. NS is held by the caller.
fn free_device(ns: &mut Namespace, dev: usize) {
    if let Some(rec) = ns.devices.remove(&dev) {
        // SAFETY: allocated in create_device with this layout; now untracked.
        unsafe { dealloc(dev as *mut u8, rec.layout) };
    }
}

/// Deletes a device as `IoDeleteDevice` does: the name goes at once, the object when no file
/// object references it. NS is held by the caller.
fn delete_device(ns: &mut Namespace, dev: usize) {
    let Some(rec) = ns.devices.get_mut(&dev) else {
        return;
    };
    if let Some(k) = rec.name_key.take() {
        ns.names.remove(&k);
    }
    // SAFETY: live device, NS held.
    unsafe { unlink(dev as *mut DEVICE_OBJECT) };
    if rec.open == 0 {
        free_device(ns, dev);
    } else {
        rec.delete_pending = true;
    }
}

/// `IoDeleteDevice`.
///
/// # Safety
/// `DeviceObject` was created by the caller's driver and not yet deleted.
#[no_mangle]
pub unsafe extern "system" fn IoDeleteDevice(DeviceObject: *const DEVICE_OBJECT) {
    require_passive("IoDeleteDevice");
    let mut ns = ns();
    match ns.devices.get(&(DeviceObject as usize)) {
        Some(r) if !r.delete_pending => delete_device(&mut ns, DeviceObject as usize),
        _ => {
            drop(ns);
            verifier::violation(
                Rule::DriverObject,
                format!(
                    "IoDeleteDevice({DeviceObject:p}): not a live device object (deleted twice?)"
                ),
            );
        }
    }
}

/// `IoCreateSymbolicLink`.
///
/// # Safety
/// Both arguments are readable `UNICODE_STRING`s.
#[no_mangle]
pub unsafe extern "system" fn IoCreateSymbolicLink(
    SymbolicLinkName: *const UNICODE_STRING,
    DeviceName: *const UNICODE_STRING,
) -> NTSTATUS {
    require_passive("IoCreateSymbolicLink");
    // SAFETY: caller contract.
    let (link, target) = match unsafe { (object_name(SymbolicLinkName), object_name(DeviceName)) } {
        (Ok(Some(l)), Ok(Some(t))) => (l, t),
        _ => return STATUS_OBJECT_NAME_INVALID,
    };
    let key = name_key(&link);
    let mut ns = ns();
    if ns.links.contains_key(&key) || ns.names.contains_key(&key) {
        return STATUS_OBJECT_NAME_COLLISION;
    }
    ns.links.insert(key, (link, name_key(&target)));
    STATUS_SUCCESS
}

/// `IoDeleteSymbolicLink`.
///
/// # Safety
/// `SymbolicLinkName` is a readable `UNICODE_STRING`.
#[no_mangle]
pub unsafe extern "system" fn IoDeleteSymbolicLink(
    SymbolicLinkName: *const UNICODE_STRING,
) -> NTSTATUS {
    require_passive("IoDeleteSymbolicLink");
    // SAFETY: caller contract.
    let link = match unsafe { object_name(SymbolicLinkName) } {
        Ok(Some(l)) => l,
        _ => return STATUS_OBJECT_NAME_INVALID,
    };
    match ns().links.remove(&name_key(&link)) {
        Some(_) => STATUS_SUCCESS,
        None => STATUS_OBJECT_NAME_NOT_FOUND,
    }
}

/// What a user-mode open resolved to.
pub(crate) enum Resolved {
    Device(usize),
    NotFound,
    /// Initialising, delete pending or unload pending (`STATUS_NO_SUCH_DEVICE`).
    Unavailable,
    /// Exclusive device already open (`STATUS_ACCESS_DENIED`).
    Exclusive,
}

/// Resolves an object-manager path (a device name, or a link name that names one) and, on
/// success, counts a new file object on the device.
pub(crate) fn reference_for_open(key: &str) -> Resolved {
    let mut ns = ns();
    let target = match ns.links.get(key) {
        Some((_, t)) => t.clone(),
        None => key.to_owned(),
    };
    let Some(&dev) = ns.names.get(&target) else {
        return Resolved::NotFound;
    };
    let Some(rec) = ns.devices.get(&dev) else {
        return Resolved::NotFound;
    };
    let unload_pending = ns
        .drivers
        .get(&rec.driver)
        .is_some_and(|d| d.unload_pending);
    // SAFETY: live device (tracked in NS, which is held).
    let flags = unsafe { (*(dev as *const DEVICE_OBJECT)).Flags };
    if rec.delete_pending || unload_pending || flags & DO_DEVICE_INITIALIZING != 0 {
        return Resolved::Unavailable;
    }
    if flags & DO_EXCLUSIVE != 0 && rec.open > 0 {
        return Resolved::Exclusive;
    }
    if let Some(rec) = ns.devices.get_mut(&dev) {
        rec.open += 1;
    }
    // SAFETY: as above; ReferenceCount is the I/O manager's field.
    unsafe { (*(dev as *mut DEVICE_OBJECT)).ReferenceCount += 1 };
    Resolved::Device(dev)
}

/// Drops a file object's reference on its device; frees a delete-pending device and runs a
/// deferred driver unload when the last reference goes.
pub(crate) fn dereference(dev: usize) {
    let driver_to_unload = {
        let mut ns = ns();
        let Some(rec) = ns.devices.get_mut(&dev) else {
            return;
        };
        rec.open = rec.open.saturating_sub(1);
        // SAFETY: live device (tracked, NS held).
        unsafe { (*(dev as *mut DEVICE_OBJECT)).ReferenceCount -= 1 };
        let driver = rec.driver;
        if rec.open == 0 && rec.delete_pending {
            free_device(&mut ns, dev);
        }
        let pending = ns.drivers.get(&driver).is_some_and(|d| d.unload_pending);
        (pending && open_on_driver(&ns, driver) == 0).then_some(driver)
    };
    if let Some(driver) = driver_to_unload {
        finish_unload(driver);
    }
}

fn open_on_driver(ns: &Namespace, driver: usize) -> usize {
    ns.devices
        .values()
        .filter(|r| r.driver == driver)
        .map(|r| r.open)
        .sum()
}

/// Whether `dev` is a live (possibly delete-pending) device object.
pub(crate) fn is_device(dev: *const DEVICE_OBJECT) -> bool {
    ns().devices.contains_key(&(dev as usize))
}

/// The SDDL string of a device's DACL (set by `IoCreateDeviceSecure`, or by
/// `ZwSetSecurityObject`, see [`device_security`]), looked up by device
/// name (`\Device\X`) or by a symbolic link to it (`\??\X`, `\DosDevices\X`).
pub fn device_sddl(device_name: &str) -> Option<String> {
    let ns = ns();
    let key = name_key(device_name);
    let key = ns.links.get(&key).map(|(_, t)| t.clone()).unwrap_or(key);
    let dev = ns.names.get(&key)?;
    ns.devices.get(dev)?.sddl.clone()
}

/// The device's security as SDDL and the routine that set it (`IoCreateDeviceSecure`, or
/// `ZwSetSecurityObject` on a handle from `ObOpenObjectByPointer`), looked up as
/// [`device_sddl`]. `None`: no such device, or it has the default descriptor.
pub fn device_security(device_name: &str) -> Option<(String, &'static str)> {
    let ns = ns();
    let key = name_key(device_name);
    let key = ns.links.get(&key).map(|(_, t)| t.clone()).unwrap_or(key);
    let dev = ns.names.get(&key)?;
    let rec = ns.devices.get(dev)?;
    rec.sddl.clone().map(|s| (s, rec.security_by))
}

/// Records the DACL `ZwSetSecurityObject` set on a device.
pub(crate) fn set_device_security(dev: *const DEVICE_OBJECT, sddl: String, by: &'static str) {
    if let Some(rec) = ns().devices.get_mut(&(dev as usize)) {
        rec.sddl = Some(sddl);
        rec.security_by = by;
    }
}

/// The symbolic links that exist now, as (link name, target device name key).
pub fn symbolic_links() -> Vec<(String, String)> {
    ns().links.values().cloned().collect()
}

/// `IopInvalidDeviceRequest`: what every `MajorFunction` entry points to until the driver
/// sets it.
unsafe extern "system" fn invalid_device_request(
    _dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the I/O manager passes a live IRP this driver level owns.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = STATUS_INVALID_DEVICE_REQUEST;
        (*irp).IoStatus.Information = 0;
        crate::irp::IofCompleteRequest(irp, 0);
    }
    STATUS_INVALID_DEVICE_REQUEST
}

/// The default dispatch routine, for `IofCallDriver` when an entry is NULL.
pub(crate) fn default_dispatch(
) -> unsafe extern "system" fn(*const DEVICE_OBJECT, *mut IRP) -> NTSTATUS {
    invalid_device_request
}

/// Runs `f` at PASSIVE_LEVEL (as the system thread calling DriverEntry / DriverUnload runs)
/// and checks that the driver returned at PASSIVE_LEVEL.
fn at_passive<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let old = irql::set(irql::PASSIVE_LEVEL);
    let r = f();
    let after = irql::set(old);
    if after != irql::PASSIVE_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("{what} returned at IRQL {after}, not PASSIVE_LEVEL"),
        );
    }
    r
}

/// A driver loaded by [`load_driver`]. Dropping it unloads it (as [`LoadedDriver::unload`]).
pub struct LoadedDriver {
    driver: usize,
    service: String,
    done: bool,
}

impl std::fmt::Debug for LoadedDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedDriver")
            .field("driver_object", &(self.driver as *const DRIVER_OBJECT))
            .field("service", &self.service)
            .finish()
    }
}

/// Loads a driver as the I/O manager does for a legacy (non-PnP) service: allocates its
/// `DRIVER_OBJECT` (every `MajorFunction` entry set to the invalid-request routine), calls
/// `DriverEntry` at PASSIVE_LEVEL with the registry path
/// `\Registry\Machine\System\CurrentControlSet\Services\<service_name>` (valid only during the
/// call, as on Windows), then clears `DO_DEVICE_INITIALIZING` on the devices it created.
/// On failure everything is freed; a failing `DriverEntry` that left devices behind breaks
/// [`Rule::DriverObject`] (they are deleted for it).
pub fn load_driver(entry: DriverEntry, service_name: &str) -> Result<LoadedDriver, NTSTATUS> {
    let service_key = service_name.to_lowercase();
    if ns().drivers.values().any(|d| d.service_key == service_key) {
        return Err(STATUS_IMAGE_ALREADY_LOADED);
    }
    let driver_name = UnicodeString::new(&format!("\\Driver\\{service_name}"));
    let service_us = UnicodeString::new(service_name);
    // SAFETY: DRIVER_EXTENSION and DRIVER_OBJECT are plain C structures for which all-zero
    // is a valid value (NULL pointers, None function pointers).
    let ext: *mut DRIVER_EXTENSION = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
    // SAFETY: as above.
    let drv: *mut DRIVER_OBJECT = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
    // SAFETY: both freshly allocated and exclusively ours until DriverEntry.
    unsafe {
        (*drv).Type = IO_TYPE_DRIVER;
        (*drv).Size = std::mem::size_of::<DRIVER_OBJECT>() as i16;
        (*drv).DriverExtension = ext;
        (*drv).DriverName = driver_name.header();
        (*drv).MajorFunction = [Some(invalid_device_request); IRP_MJ_COUNT];
        (*ext).DriverObject = drv;
        (*ext).ServiceKeyName = service_us.header();
    }
    ns().drivers.insert(
        drv as usize,
        DriverRec {
            service_key,
            unload_pending: false,
            device_names: Vec::new(),
            extension: ext as usize,
            _driver_name: driver_name,
            _service_name: service_us,
        },
    );
    let registry_path = UnicodeString::new(&format!(
        "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\{service_name}"
    ));
    // SAFETY: the driver object is initialised; the registry path lives across the call.
    let status = at_passive("DriverEntry", || unsafe {
        entry(drv, registry_path.as_ptr())
    });
    drop(registry_path);
    if status < 0 {
        let mut ns = ns();
        let left: Vec<usize> = ns
            .devices
            .iter()
            .filter(|(_, r)| r.driver == drv as usize)
            .map(|(&d, _)| d)
            .collect();
        if !left.is_empty() {
            verifier::violation(
                Rule::DriverObject,
                format!(
                    "DriverEntry of {service_name} failed ({status:#010x}) but left {} device object(s) undeleted",
                    left.len()
                ),
            );
        }
        release_driver(&mut ns, drv as usize, service_name, "failed DriverEntry");
        return Err(status);
    }
    {
        let _ns = ns();
        // SAFETY: the driver object and its device list are live; NS held.
        unsafe {
            let mut d = (*drv).DeviceObject;
            while !d.is_null() {
                (*d).Flags &= !DO_DEVICE_INITIALIZING;
                d = (*d).NextDevice;
            }
        }
    }
    Ok(LoadedDriver {
        driver: drv as usize,
        service: service_name.to_owned(),
        done: false,
    })
}

/// Deletes what a departing driver left (devices, links to its device names) — each one is a
/// [`Rule::DriverObject`] violation — and frees the driver object. NS is held.
fn release_driver(ns: &mut Namespace, driver: usize, service: &str, when: &str) {
    let left: Vec<usize> = ns
        .devices
        .iter()
        .filter(|(_, r)| r.driver == driver)
        .map(|(&d, _)| d)
        .collect();
    for dev in left {
        let name = ns.devices.get(&dev).and_then(|r| r.name_key.clone());
        if when == "unload" {
            verifier::violation(
                Rule::DriverObject,
                format!(
                    "driver {service} unloaded without IoDeleteDevice({dev:#x}, name {name:?}): DriverUnload must delete every device it created"
                ),
            );
        }
        if let Some(r) = ns.devices.get_mut(&dev) {
            r.open = 0;
        }
        delete_device(ns, dev);
    }
    let names: Vec<String> = ns
        .drivers
        .get(&driver)
        .map(|d| d.device_names.clone())
        .unwrap_or_default();
    let stale: Vec<String> = ns
        .links
        .iter()
        .filter(|(_, (_, target))| names.contains(target))
        .map(|(k, _)| k.clone())
        .collect();
    for k in stale {
        if let Some((link, target)) = ns.links.remove(&k) {
            verifier::violation(
                Rule::DriverObject,
                format!(
                    "driver {service} ({when}) left symbolic link {link} -> {target}: IoDeleteSymbolicLink missing"
                ),
            );
        }
    }
    if let Some(rec) = ns.drivers.remove(&driver) {
        // SAFETY: allocated by Box in load_driver; now untracked and unreachable from NS.
        unsafe {
            drop(Box::from_raw(rec.extension as *mut DRIVER_EXTENSION));
            drop(Box::from_raw(driver as *mut DRIVER_OBJECT));
        }
    }
}

/// Calls DriverUnload and releases the driver. No file object is open on its devices.
fn finish_unload(driver: usize) {
    let drv = driver as *mut DRIVER_OBJECT;
    // SAFETY: the driver object is live until release_driver below.
    let unload = unsafe { (*drv).DriverUnload };
    let service = ns()
        .drivers
        .get(&driver)
        .map(|d| d.service_key.clone())
        .unwrap_or_default();
    // Queued or running work items reference the driver's devices: the unload waits for
    // them (IoQueueWorkItem's reference), bounded.
    if !crate::workitem::wait_driver_idle(driver, std::time::Duration::from_secs(60)) {
        crate::verifier::violation(
            crate::verifier::Rule::DriverObject,
            format!("driver {service}: a work item still runs 60 s after the unload request"),
        );
    }
    if let Some(unload) = unload {
        // SAFETY: a loaded driver's unload routine, called once, at PASSIVE_LEVEL.
        at_passive("DriverUnload", || unsafe { unload(drv) });
    }
    release_driver(&mut ns(), driver, &service, "unload");
}

impl LoadedDriver {
    /// The driver object.
    pub fn driver_object(&self) -> *mut DRIVER_OBJECT {
        self.driver as *mut DRIVER_OBJECT
    }

    /// File objects (user handles) open on the driver's devices now.
    pub fn open_handles(&self) -> usize {
        open_on_driver(&ns(), self.driver)
    }

    /// Unloads the driver: calls `DriverUnload` at PASSIVE_LEVEL, then checks that it deleted
    /// every device and every symbolic link to them (each leftover is a
    /// [`Rule::DriverObject`] violation, and is deleted for it), and frees the driver object.
    ///
    /// `Err` when it cannot happen now:
    /// - user handles are open on its devices: Windows defers the unload until the last one
    ///   closes, and so does this (new opens fail with `STATUS_NO_SUCH_DEVICE` meanwhile;
    ///   `DriverUnload` runs on the thread that closes the last handle);
    /// - the driver set no `DriverUnload`: it can never be unloaded (it stays loaded).
    pub fn unload(mut self) -> Result<(), String> {
        self.do_unload()
    }

    fn do_unload(&mut self) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let drv = self.driver as *mut DRIVER_OBJECT;
        {
            let mut ns = ns();
            // SAFETY: the driver object is live until it is released.
            if unsafe { (*drv).DriverUnload }.is_none() {
                return Err(format!(
                    "driver {} has no DriverUnload routine: it cannot be unloaded",
                    self.service
                ));
            }
            let open = open_on_driver(&ns, self.driver);
            if open > 0 {
                if let Some(d) = ns.drivers.get_mut(&self.driver) {
                    d.unload_pending = true;
                }
                return Err(format!(
                    "driver {}: {open} user handle(s) open on its devices; unload deferred until they are closed",
                    self.service
                ));
            }
        }
        finish_unload(self.driver);
        Ok(())
    }
}

impl Drop for LoadedDriver {
    fn drop(&mut self) {
        if let Err(e) = self.do_unload() {
            eprintln!("ntsim: dropping LoadedDriver: {e}");
        }
    }
}

// SAFETY: the driver object is only touched through the I/O manager's routines, which
// serialise on the namespace lock; the handle itself is just an address.
unsafe impl Send for LoadedDriver {}
// SAFETY: as above; &LoadedDriver only reads counters under the lock.
unsafe impl Sync for LoadedDriver {}
