//! Security descriptors on device objects: the runtime-library routines a driver builds an
//! absolute security descriptor with (`RtlCreateSecurityDescriptor`, `RtlCreateAcl`,
//! `RtlAddAccessAllowedAce`, `RtlSetDaclSecurityDescriptor`), kernel handles to device
//! objects (`ObOpenObjectByPointer` on a `DEVICE_OBJECT`, closed by `ZwClose`), and
//! `ZwSetSecurityObject`, which records the DACL it sets on the device, rendered as SDDL, for
//! [`crate::iomgr::device_security`].
//!
//! Layouts (winnt.h, documented): `SECURITY_DESCRIPTOR` (absolute: Revision, Sbz1, Control,
//! then Owner, Group, Sacl, Dacl pointers; self-relative: the same four as 32-bit offsets),
//! `ACL` (8-byte header), `ACCESS_ALLOWED_ACE` (ACE_HEADER, Mask, SID), `SID`.
//! Emulation limits: only the DACL is recorded; only ACCESS_ALLOWED / ACCESS_DENIED ACEs are
//! rendered; SIDs other than SYSTEM (`SY`) and Administrators (`BA`) render as `S-1-...`.

use rustc_hash::FxHashMap;
use std::ffi::c_void;
use std::sync::Mutex;

use windows_sys::Win32::Foundation::*;

use crate::irql;
use crate::verifier::{self, Rule};

/// `SECURITY_DESCRIPTOR_REVISION` (1).
pub const SECURITY_DESCRIPTOR_REVISION: u32 = 1;
/// `ACL_REVISION` (2).
pub const ACL_REVISION: u32 = 2;
/// `SE_DACL_PRESENT`.
pub const SE_DACL_PRESENT: u16 = 0x0004;
/// `SE_DACL_DEFAULTED`.
pub const SE_DACL_DEFAULTED: u16 = 0x0008;
/// `SE_DACL_PROTECTED`.
pub const SE_DACL_PROTECTED: u16 = 0x1000;
/// `SE_SELF_RELATIVE`.
pub const SE_SELF_RELATIVE: u16 = 0x8000;
/// `DACL_SECURITY_INFORMATION`.
pub const DACL_SECURITY_INFORMATION: u32 = 0x0000_0004;
/// `PROTECTED_DACL_SECURITY_INFORMATION`.
pub const PROTECTED_DACL_SECURITY_INFORMATION: u32 = 0x8000_0000;
/// `WRITE_DAC`.
pub const WRITE_DAC: u32 = 0x0004_0000;
/// `GENERIC_ALL`.
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// `FILE_ALL_ACCESS`.
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
/// Size of an absolute `SECURITY_DESCRIPTOR` on this target.
pub const SECURITY_DESCRIPTOR_MIN_LENGTH: usize = 4 + 4 * std::mem::size_of::<usize>();

const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const ACCESS_DENIED_ACE_TYPE: u8 = 1;

/// Kernel handles to device objects: handle value -> device address.
static DEVICE_HANDLES: Mutex<Option<FxHashMap<u64, usize>>> = Mutex::new(None);
/// Kernel handle values for devices: high bits as a kernel handle, a range of their own.
const DEVICE_HANDLE_BASE: u64 = 0xFFFF_FFFF_8800_0000;

fn device_handles<R>(f: impl FnOnce(&mut FxHashMap<u64, usize>) -> R) -> R {
    let mut g = DEVICE_HANDLES.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(FxHashMap::default))
}

/// `ObOpenObjectByPointer` on a device object: a kernel handle (KernelMode only, as the
/// emulation needs no more). Called by [`crate::file::ObOpenObjectByPointer`] when the object
/// is not one of its file or event objects. `None`: not a device.
pub(crate) fn open_device_handle(object: *const c_void, access_mode: i8) -> Option<NTSTATUS> {
    if !crate::iomgr::is_device(object.cast()) {
        return None;
    }
    if access_mode != crate::file::KERNEL_MODE {
        return Some(STATUS_ACCESS_DENIED);
    }
    Some(STATUS_SUCCESS)
}

/// Inserts a kernel handle for device `object`.
pub(crate) fn insert_device_handle(object: *const c_void) -> u64 {
    device_handles(|m| {
        let mut h = DEVICE_HANDLE_BASE + (m.len() as u64 + 1) * 4;
        while m.contains_key(&h) {
            h += 4;
        }
        m.insert(h, object as usize);
        h
    })
}

/// `ZwClose` of a device handle: true if `handle` was one.
pub(crate) fn close_device_handle(handle: u64) -> bool {
    device_handles(|m| m.remove(&handle).is_some())
}

/// Device handles open now (counted with the kernel handles a test must have closed).
pub(crate) fn open_device_handles() -> u64 {
    device_handles(|m| m.len() as u64)
}

/// `RtlCreateSecurityDescriptor`: an absolute descriptor with no owner, group, SACL or DACL.
/// Errors: `STATUS_UNKNOWN_REVISION`. Any IRQL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcreatesecuritydescriptor>
#[no_mangle]
pub unsafe extern "system" fn RtlCreateSecurityDescriptor(
    SecurityDescriptor: *mut c_void,
    Revision: u32,
) -> NTSTATUS {
    if Revision != SECURITY_DESCRIPTOR_REVISION {
        return STATUS_UNKNOWN_REVISION;
    }
    let p = SecurityDescriptor.cast::<u8>();
    // SAFETY: the caller's buffer of SECURITY_DESCRIPTOR_MIN_LENGTH bytes.
    unsafe {
        std::ptr::write_bytes(p, 0, SECURITY_DESCRIPTOR_MIN_LENGTH);
        *p = Revision as u8;
    }
    STATUS_SUCCESS
}

/// `RtlCreateAcl`: an empty ACL of `AclLength` bytes. Errors: `STATUS_INVALID_PARAMETER`
/// (revision, or a length under 8 or over 64 KiB). Any IRQL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtlcreateacl>
#[no_mangle]
pub unsafe extern "system" fn RtlCreateAcl(
    Acl: *mut c_void,
    AclLength: u32,
    AclRevision: u32,
) -> NTSTATUS {
    if !(2..=4).contains(&AclRevision) || !(8..=0xFFFF).contains(&AclLength) {
        return STATUS_INVALID_PARAMETER;
    }
    let p = Acl.cast::<u8>();
    // SAFETY: the caller's buffer of AclLength >= 8 bytes.
    unsafe {
        std::ptr::write_bytes(p, 0, 8);
        *p = AclRevision as u8;
        p.add(2).cast::<u16>().write_unaligned(AclLength as u16);
    }
    STATUS_SUCCESS
}

/// Length of a SID in bytes (8 + 4 per sub-authority).
unsafe fn sid_len(sid: *const u8) -> usize {
    // SAFETY: caller passes a readable SID header.
    8 + 4 * unsafe { *sid.add(1) } as usize
}

/// `RtlAddAccessAllowedAce`: appends an ACCESS_ALLOWED_ACE for `Sid` with `AccessMask`.
/// Errors: `STATUS_ALLOTTED_SPACE_EXCEEDED` (no room), `STATUS_INVALID_SID`,
/// `STATUS_REVISION_MISMATCH`. Any IRQL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtladdaccessallowedace>
#[no_mangle]
pub unsafe extern "system" fn RtlAddAccessAllowedAce(
    Acl: *mut c_void,
    AceRevision: u32,
    AccessMask: u32,
    Sid: *const c_void,
) -> NTSTATUS {
    let acl = Acl.cast::<u8>();
    let sid = Sid.cast::<u8>();
    // SAFETY: the caller's ACL (RtlCreateAcl) and SID.
    unsafe {
        if *sid != 1 || *sid.add(1) > 15 {
            return STATUS_INVALID_SID;
        }
        if AceRevision != ACL_REVISION || (*acl as u32) < ACL_REVISION {
            return STATUS_REVISION_MISMATCH;
        }
        let size = acl.add(2).cast::<u16>().read_unaligned() as usize;
        let count = acl.add(4).cast::<u16>().read_unaligned();
        let mut off = 8;
        for _ in 0..count {
            off += acl.add(off + 2).cast::<u16>().read_unaligned() as usize;
        }
        let slen = sid_len(sid);
        let ace = 8 + slen;
        if off + ace > size {
            return STATUS_ALLOTTED_SPACE_EXCEEDED;
        }
        let a = acl.add(off);
        *a = ACCESS_ALLOWED_ACE_TYPE;
        *a.add(1) = 0;
        a.add(2).cast::<u16>().write_unaligned(ace as u16);
        a.add(4).cast::<u32>().write_unaligned(AccessMask);
        std::ptr::copy_nonoverlapping(sid, a.add(8), slen);
        acl.add(4).cast::<u16>().write_unaligned(count + 1);
    }
    STATUS_SUCCESS
}

/// `RtlSetDaclSecurityDescriptor`: sets (or, `DaclPresent` false, removes) the DACL of an
/// absolute descriptor. Errors: `STATUS_UNKNOWN_REVISION`, `STATUS_INVALID_SECURITY_DESCR`
/// (self-relative). Any IRQL.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlsetdaclsecuritydescriptor>
#[no_mangle]
pub unsafe extern "system" fn RtlSetDaclSecurityDescriptor(
    SecurityDescriptor: *mut c_void,
    DaclPresent: bool,
    Dacl: *const c_void,
    DaclDefaulted: bool,
) -> NTSTATUS {
    let sd = SecurityDescriptor.cast::<u8>();
    // SAFETY: the caller's absolute descriptor.
    unsafe {
        if *sd as u32 != SECURITY_DESCRIPTOR_REVISION {
            return STATUS_UNKNOWN_REVISION;
        }
        let control = sd.add(2).cast::<u16>();
        let mut c = control.read_unaligned();
        if c & SE_SELF_RELATIVE != 0 {
            return STATUS_INVALID_SECURITY_DESCR;
        }
        let dacl_slot = sd.add(4 + 3 * std::mem::size_of::<usize>()).cast::<usize>();
        if DaclPresent {
            c |= SE_DACL_PRESENT;
            dacl_slot.write_unaligned(Dacl as usize);
            if DaclDefaulted {
                c |= SE_DACL_DEFAULTED;
            } else {
                c &= !SE_DACL_DEFAULTED;
            }
        } else {
            c &= !(SE_DACL_PRESENT | SE_DACL_DEFAULTED);
            dacl_slot.write_unaligned(0);
        }
        control.write_unaligned(c);
    }
    STATUS_SUCCESS
}

fn render_sid(sid: *const u8) -> String {
    // SAFETY: a SID inside an ACE the driver built (RtlAddAccessAllowedAce checked it).
    let (auth, subs) = unsafe {
        let n = *sid.add(1) as usize;
        let mut auth = 0u64;
        for i in 0..6 {
            auth = (auth << 8) | *sid.add(2 + i) as u64;
        }
        let subs: Vec<u32> = (0..n)
            .map(|i| sid.add(8 + 4 * i).cast::<u32>().read_unaligned())
            .collect();
        (auth, subs)
    };
    match (auth, subs.as_slice()) {
        (5, [18]) => "SY".into(),
        (5, [32, 544]) => "BA".into(),
        _ => {
            let mut s = format!("S-1-{auth}");
            for x in subs {
                s.push_str(&format!("-{x}"));
            }
            s
        }
    }
}

fn render_mask(mask: u32) -> String {
    match mask {
        GENERIC_ALL => "GA".into(),
        FILE_ALL_ACCESS => "FA".into(),
        m => format!("{m:#x}"),
    }
}

/// The DACL of a descriptor as SDDL (`D:P(A;;GA;;;SY)...`), or an error text.
unsafe fn dacl_sddl(sd: *const u8, protected_info: bool) -> Result<String, String> {
    // SAFETY: the caller's descriptor, absolute or self-relative.
    unsafe {
        if *sd as u32 != SECURITY_DESCRIPTOR_REVISION {
            return Err("security descriptor revision is not 1".into());
        }
        let c = sd.add(2).cast::<u16>().read_unaligned();
        if c & SE_DACL_PRESENT == 0 {
            // No DACL: everyone has access, as SDDL writes it.
            return Ok("D:NO_ACCESS_CONTROL".into());
        }
        let acl: *const u8 = if c & SE_SELF_RELATIVE != 0 {
            let off = sd.add(16).cast::<u32>().read_unaligned() as usize;
            if off == 0 {
                std::ptr::null()
            } else {
                sd.add(off)
            }
        } else {
            sd.add(4 + 3 * std::mem::size_of::<usize>())
                .cast::<usize>()
                .read_unaligned() as *const u8
        };
        if acl.is_null() {
            return Ok("D:NO_ACCESS_CONTROL".into());
        }
        let mut s = String::from("D:");
        if c & SE_DACL_PROTECTED != 0 || protected_info {
            s.push('P');
        }
        let count = acl.add(4).cast::<u16>().read_unaligned();
        let mut off = 8;
        for _ in 0..count {
            let a = acl.add(off);
            let kind = match *a {
                ACCESS_ALLOWED_ACE_TYPE => "A",
                ACCESS_DENIED_ACE_TYPE => "D",
                t => return Err(format!("ACE type {t} not emulated")),
            };
            let mask = a.add(4).cast::<u32>().read_unaligned();
            s.push_str(&format!(
                "({kind};;{};;;{})",
                render_mask(mask),
                render_sid(a.add(8))
            ));
            off += a.add(2).cast::<u16>().read_unaligned() as usize;
        }
        Ok(s)
    }
}

/// `ZwSetSecurityObject` on a device handle with `DACL_SECURITY_INFORMATION`: records the
/// device's new DACL (as SDDL). PASSIVE_LEVEL. Errors: `STATUS_INVALID_HANDLE` (not a device
/// handle: other objects are not emulated), `STATUS_INVALID_PARAMETER` (no
/// DACL_SECURITY_INFORMATION), `STATUS_INVALID_SECURITY_DESCR`.
/// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwsetsecurityobject>
#[no_mangle]
pub unsafe extern "system" fn ZwSetSecurityObject(
    Handle: HANDLE,
    SecurityInformation: u32,
    SecurityDescriptor: *const c_void,
) -> NTSTATUS {
    if irql::current() != irql::PASSIVE_LEVEL {
        verifier::violation(
            Rule::IrqlNotLessOrEqual,
            format!("ZwSetSecurityObject at IRQL {}", irql::current()),
        );
    }
    let Some(dev) = device_handles(|m| m.get(&(Handle as u64)).copied()) else {
        return STATUS_INVALID_HANDLE;
    };
    if SecurityInformation & DACL_SECURITY_INFORMATION == 0 || SecurityDescriptor.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let protected = SecurityInformation & PROTECTED_DACL_SECURITY_INFORMATION != 0;
    // SAFETY: the caller's descriptor.
    match unsafe { dacl_sddl(SecurityDescriptor.cast(), protected) } {
        Ok(sddl) => {
            crate::iomgr::set_device_security(dev as *const _, sddl, "ZwSetSecurityObject");
            STATUS_SUCCESS
        }
        Err(e) => {
            eprintln!("ntsim: ZwSetSecurityObject: {e}");
            STATUS_INVALID_SECURITY_DESCR
        }
    }
}
