//! WSK client registration: `WskRegister` + `WskCaptureProviderNPI`, released with
//! `WskReleaseProviderNPI` + `WskDeregister` on drop.
//! Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/registering-a-winsock-kernel-application>

use wsk_sys::{
    WskCaptureProviderNPI, WskDeregister, WskRegister, WskReleaseProviderNPI, MAKE_WSK_VERSION,
    PWSK_CLIENT, WSK_CLIENT_DISPATCH, WSK_CLIENT_NPI, WSK_PROVIDER_DISPATCH, WSK_PROVIDER_NPI,
    WSK_REGISTRATION,
};

use crate::error::{check, Error, Result};
use crate::pool::{PoolBox, WSK_TAG};

struct Block {
    registration: WSK_REGISTRATION,
    dispatch: WSK_CLIENT_DISPATCH,
    /// Kept for the registration's lifetime: a provider may keep the pointer given to
    /// `WskRegister` (Wine 8.0's netio.sys does).
    npi: WSK_CLIENT_NPI,
}

/// A registered WSK client with a captured provider NPI.
///
/// Dropping it releases the NPI and deregisters, which (per `WskDeregister`'s docs) waits
/// until every socket this client created is closed: close sockets first. PASSIVE_LEVEL.
pub struct WskClient {
    block: PoolBox<Block>,
    provider: WSK_PROVIDER_NPI,
}

// SAFETY: the provider NPI is usable from any thread; the block is owned.
unsafe impl Send for WskClient {}
// SAFETY: WSK provider routines may be called concurrently.
unsafe impl Sync for WskClient {}

impl WskClient {
    /// Registers as a WSK 1.0 client and captures the provider NPI, waiting at most
    /// `wait_ms` milliseconds for it (`0` = `WSK_NO_WAIT`).
    ///
    /// PASSIVE_LEVEL. Errors: `STATUS_DEVICE_NOT_READY` if the provider is not available in
    /// time; `STATUS_NOINTERFACE` if WSK 1.0 is not supported; `STATUS_INSUFFICIENT_RESOURCES`;
    /// any status `WskRegister` returns.
    /// Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nf-wsk-wskregister>,
    /// <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nf-wsk-wskcaptureprovidernpi>
    pub fn register(wait_ms: u32) -> Result<WskClient> {
        if nt_imports::current_irql() != nt_imports::PASSIVE_LEVEL {
            return Err(Error::InvalidDeviceState);
        }
        crate::pool::resolve();
        let mut block = PoolBox::try_new(
            Block {
                registration: WSK_REGISTRATION::default(),
                dispatch: WSK_CLIENT_DISPATCH {
                    Version: MAKE_WSK_VERSION(1, 0),
                    Reserved: 0,
                    WskClientEvent: None,
                },
                npi: WSK_CLIENT_NPI {
                    ClientContext: core::ptr::null_mut(),
                    Dispatch: core::ptr::null(),
                },
            },
            WSK_TAG,
        )?;
        let b = block.as_ptr();
        // SAFETY: the NPI, its dispatch table and the registration block live in `block`
        // (nonpaged, never moved), which outlives the registration (deregistered in Drop
        // before the block is freed).
        check(unsafe {
            (*b).npi.Dispatch = &(*b).dispatch;
            WskRegister(&(*b).npi, &mut (*b).registration)
        })?;
        let mut provider = WSK_PROVIDER_NPI {
            Client: core::ptr::null_mut(),
            Dispatch: core::ptr::null(),
        };
        // SAFETY: registered block; out pointer to our local.
        let status =
            unsafe { WskCaptureProviderNPI(&mut block.registration, wait_ms, &mut provider) };
        if let Err(e) = check(status) {
            // SAFETY: undo the successful WskRegister.
            unsafe { WskDeregister(&mut block.registration) };
            return Err(e);
        }
        if provider.Dispatch.is_null() {
            // SAFETY: undo capture and registration.
            unsafe {
                WskReleaseProviderNPI(&mut block.registration);
                WskDeregister(&mut block.registration);
            }
            return Err(Error::DeviceNotReady);
        }
        Ok(WskClient { block, provider })
    }

    /// The provider's client object (`WSK_PROVIDER_NPI.Client`).
    pub fn raw_client(&self) -> PWSK_CLIENT {
        self.provider.Client
    }

    /// The provider dispatch table (`WSK_PROVIDER_NPI.Dispatch`).
    pub fn dispatch(&self) -> &WSK_PROVIDER_DISPATCH {
        // SAFETY: non-NULL (checked in register); valid while the NPI is captured.
        unsafe { &*self.provider.Dispatch }
    }
}

use crate::control::{Transport, MAX_TRANSPORTS};

impl WskClient {
    /// The available transports (`WskControlClient(WSK_TRANSPORT_LIST_QUERY)`, no IRP): a
    /// first call with no buffer learns the size (`STATUS_BUFFER_OVERFLOW` and the bytes
    /// needed in `*OutputSizeReturned`), a second fills the array.
    ///
    /// PASSIVE_LEVEL (it allocates). Errors: `STATUS_NOT_IMPLEMENTED` (no
    /// `WskControlClient`), `STATUS_INSUFFICIENT_RESOURCES`, `STATUS_BUFFER_OVERFLOW` (the
    /// list grew between the calls, or is above [`MAX_TRANSPORTS`]), any status of the
    /// provider.
    /// Source: <https://learn.microsoft.com/en-us/windows-hardware/drivers/network/wsk-transport-list-query>
    pub fn transports(&self) -> Result<rust_alloc::vec::Vec<Transport>> {
        use core::mem::size_of;
        use windows_sys::Win32::Foundation::STATUS_BUFFER_OVERFLOW;
        use wsk_sys::{WSK_TRANSPORT, WSK_TRANSPORT_LIST_QUERY};
        crate::socket::require_passive()?;
        let control = self
            .dispatch()
            .WskControlClient
            .ok_or(Error::NotImplemented)?;
        let mut need = 0usize;
        // SAFETY: size query: no buffers but the SIZE_T on this frame; no IRP.
        let s = unsafe {
            control(
                self.raw_client(),
                WSK_TRANSPORT_LIST_QUERY,
                0,
                core::ptr::null_mut(),
                0,
                core::ptr::null_mut(),
                &mut need,
                core::ptr::null_mut(),
            )
        };
        if s != STATUS_BUFFER_OVERFLOW {
            check(s)?;
        }
        let count = need / size_of::<WSK_TRANSPORT>();
        if count > MAX_TRANSPORTS {
            return Err(Error::Status(STATUS_BUFFER_OVERFLOW));
        }
        let mut list = crate::alloc::try_with_capacity(count)?;
        for _ in 0..count {
            crate::alloc::try_push(&mut list, WSK_TRANSPORT::default())?;
        }
        let mut got = 0usize;
        // SAFETY: the array holds `count` entries on the heap until the call returns; no IRP.
        check(unsafe {
            control(
                self.raw_client(),
                WSK_TRANSPORT_LIST_QUERY,
                0,
                core::ptr::null_mut(),
                count * size_of::<WSK_TRANSPORT>(),
                list.as_mut_ptr() as *mut core::ffi::c_void,
                &mut got,
                core::ptr::null_mut(),
            )
        })?;
        list.truncate(got / size_of::<WSK_TRANSPORT>());
        let mut out = crate::alloc::try_with_capacity(list.len())?;
        for t in &list {
            crate::alloc::try_push(
                &mut out,
                Transport {
                    version: t.Version,
                    socket_type: t.SocketType,
                    protocol: t.Protocol,
                    address_family: t.AddressFamily,
                    provider_id: ((t.ProviderId.data1 as u128) << 96)
                        | ((t.ProviderId.data2 as u128) << 80)
                        | ((t.ProviderId.data3 as u128) << 64)
                        | u64::from_be_bytes(t.ProviderId.data4) as u128,
                },
            )?;
        }
        Ok(out)
    }
}

impl Drop for WskClient {
    fn drop(&mut self) {
        // SAFETY: captured and registered in `register`; released exactly once here.
        unsafe {
            WskReleaseProviderNPI(&mut self.block.registration);
            WskDeregister(&mut self.block.registration);
        }
    }
}
