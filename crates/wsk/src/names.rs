//! Name resolution through the provider: `WskGetAddressInfo` (+ `WskFreeAddressInfo`,
//! always) and `WskGetNameInfo`. Both are IRP-based and run at PASSIVE_LEVEL.
//!
//! Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_free_address_info>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>.

use core::net::SocketAddr;
use rust_alloc::string::String;
use rust_alloc::vec::Vec;

use windows_sys::Win32::Foundation::UNICODE_STRING;
use wsk_sys::ADDRINFOEXW;

use crate::addr::{SockAddrBuf, AF_INET, AF_INET6};
use crate::alloc::{try_extend_from_slice, try_push, try_with_capacity};
use crate::client::WskClient;
use crate::error::{Error, Result};
use crate::socket::{new_op, require_passive, run_sync};

/// Largest host name [`WskClient::get_name_info`] returns, in UTF-16 units (`NI_MAXHOST`,
/// 1025, with its NUL).
pub const MAX_HOST_NAME: usize = 1025;
/// Most addresses [`WskClient::get_address_info`] returns (the rest of the list is freed
/// unread).
pub const MAX_ADDRESSES: usize = 64;

/// Hints of [`WskClient::get_address_info`] (`ADDRINFOEXW` hints): which family to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FamilyHint {
    /// IPv4 and IPv6 (`AF_UNSPEC`).
    #[default]
    Any,
    /// IPv4 only (`AF_INET`).
    V4,
    /// IPv6 only (`AF_INET6`).
    V6,
}

/// A `UNICODE_STRING` over owned UTF-16 units.
fn ustr(units: &mut [u16], len_units: usize) -> UNICODE_STRING {
    UNICODE_STRING {
        Length: (len_units.min(units.len()) * 2).min(u16::MAX as usize) as u16,
        MaximumLength: (units.len() * 2).min(u16::MAX as usize) as u16,
        Buffer: units.as_mut_ptr(),
    }
}

fn utf16(s: &str) -> Result<Vec<u16>> {
    // UTF-16 never has more units than UTF-8 has bytes: no push below reallocates.
    let mut v = try_with_capacity(s.len())?;
    for u in s.encode_utf16() {
        try_push(&mut v, u)?;
    }
    if v.len() * 2 > u16::MAX as usize {
        return Err(Error::InvalidParameter);
    }
    Ok(v)
}

/// `String::from_utf16_lossy` without an infallible allocation: at most 3 UTF-8 bytes per
/// UTF-16 unit (a surrogate pair, 2 units, is 4 bytes), reserved up front.
fn utf16_to_string(units: &[u16]) -> Result<String> {
    let mut bytes = try_with_capacity(units.len().saturating_mul(3))?;
    for c in core::char::decode_utf16(units.iter().copied()) {
        let c = c.unwrap_or(core::char::REPLACEMENT_CHARACTER);
        let mut b = [0u8; 4];
        try_extend_from_slice(&mut bytes, c.encode_utf8(&mut b).as_bytes())?;
    }
    // No allocation here: `from_utf8` takes the vector's buffer as it is. Every byte came
    // from `char::encode_utf8`, so the error arm is unreachable; it maps to a status rather
    // than a panic because this is kernel code.
    String::from_utf8(bytes).map_err(|_| Error::InvalidParameter)
}

impl WskClient {
    /// Resolves `node` (a host name or numeric address) and the optional numeric `service`
    /// (the port) with `WskGetAddressInfo`, and returns the addresses in the provider's
    /// order (at most [`MAX_ADDRESSES`]). The provider's list is always freed with
    /// `WskFreeAddressInfo` before returning.
    ///
    /// PASSIVE_LEVEL (it waits). Errors: `STATUS_NO_MATCH` when the host name cannot be
    /// resolved (the page's return table), `STATUS_INVALID_PARAMETER`,
    /// `STATUS_NOT_IMPLEMENTED` (no `WskGetAddressInfo`, e.g. before Windows 7),
    /// `STATUS_INSUFFICIENT_RESOURCES`, `STATUS_INVALID_DEVICE_STATE` (above PASSIVE_LEVEL),
    /// any status of the provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>
    pub fn get_address_info(
        &self,
        node: &str,
        service: Option<&str>,
        hint: FamilyHint,
    ) -> Result<Vec<SocketAddr>> {
        require_passive()?;
        let d = self.dispatch();
        let get = d.WskGetAddressInfo.ok_or(Error::NotImplemented)?;
        let free = d.WskFreeAddressInfo.ok_or(Error::NotImplemented)?;
        let mut node_units = utf16(node)?;
        let mut service_units = utf16(service.unwrap_or(""))?;
        let (nl, sl) = (node_units.len(), service_units.len());
        let mut node_us = ustr(&mut node_units, nl);
        let mut service_us = ustr(&mut service_units, sl);
        let mut hints = ADDRINFOEXW {
            ai_family: match hint {
                FamilyHint::Any => 0,
                FamilyHint::V4 => AF_INET as i32,
                FamilyHint::V6 => AF_INET6 as i32,
            },
            ..Default::default()
        };
        let mut result: *mut ADDRINFOEXW = core::ptr::null_mut();
        // Allocated before the call, so collecting the provider's list cannot fail half way
        // (with the list still to be freed).
        let mut out = try_with_capacity(MAX_ADDRESSES)?;
        let mut op = new_op()?;
        let client = self.raw_client();
        let has_service = service.is_some();
        run_sync(&mut op, None, |irp, _, _, _| {
            let svc = if has_service {
                &mut service_us as *mut UNICODE_STRING
            } else {
                core::ptr::null_mut()
            };
            // SAFETY: the strings, hints and result variable live on this frame until the
            // synchronous call returns (after completion).
            unsafe {
                get(
                    client,
                    &mut node_us,
                    svc,
                    0,
                    core::ptr::null_mut(),
                    &mut hints,
                    &mut result,
                    0,
                    0,
                    irp,
                )
            }
        })?;
        let mut p = result;
        while !p.is_null() && out.len() < MAX_ADDRESSES {
            // SAFETY: a live entry of the provider's list (freed below, after this walk).
            let e = unsafe { &*p };
            let len = e.ai_addrlen.min(28);
            if !e.ai_addr.is_null() && len >= 16 {
                let mut b = SockAddrBuf::zeroed();
                // SAFETY: ai_addr holds ai_addrlen bytes; we copy at most 28.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        e.ai_addr as *const u8,
                        b.as_mut_ptr() as *mut u8,
                        len,
                    )
                };
                if let Some(a) = b.get() {
                    // Within the capacity reserved above (the loop stops at MAX_ADDRESSES),
                    // so this never allocates and cannot fail.
                    if !out.contains(&a) && try_push(&mut out, a).is_err() {
                        break;
                    }
                }
            }
            p = e.ai_next;
        }
        if !result.is_null() {
            // SAFETY: the list WskGetAddressInfo returned, freed exactly once.
            unsafe { free(client, result) };
        }
        Ok(out)
    }

    /// The host name of `addr` with `WskGetNameInfo` (no service name requested).
    ///
    /// PASSIVE_LEVEL (it waits). Errors: `STATUS_NOT_IMPLEMENTED` (no `WskGetNameInfo`),
    /// `STATUS_INVALID_DEVICE_STATE` (above PASSIVE_LEVEL), any status of the provider (the
    /// emulator: `STATUS_NO_MATCH` when the address has no name).
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>
    pub fn get_name_info(&self, addr: SocketAddr) -> Result<String> {
        require_passive()?;
        let get = self
            .dispatch()
            .WskGetNameInfo
            .ok_or(Error::NotImplemented)?;
        let mut units: Vec<u16> = try_with_capacity(MAX_HOST_NAME)?;
        for _ in 0..MAX_HOST_NAME {
            try_push(&mut units, 0)?;
        }
        let mut name = ustr(&mut units, 0);
        let mut sa = SockAddrBuf::new(addr);
        let sa_len = sa.len() as u32;
        let mut op = new_op()?;
        let client = self.raw_client();
        run_sync(&mut op, None, |irp, _, _, _| {
            // SAFETY: the address and the name buffer live on this frame until the
            // synchronous call returns (after completion).
            unsafe {
                get(
                    client,
                    sa.as_mut_ptr(),
                    sa_len,
                    &mut name,
                    core::ptr::null_mut(),
                    0,
                    0,
                    0,
                    irp,
                )
            }
        })?;
        let n = (name.Length as usize / 2).min(units.len());
        let s = units.get(..n).ok_or(Error::InvalidParameter)?;
        utf16_to_string(s)
    }
}
