//! `--device embedded`: the emulated kernel (`ntsim`) and the real driver source
//! (`wskclient`), in process. The driver is loaded through its `DriverEntry` — the WDM
//! front-end's by the I/O manager, or (`--frontend kmdf`) the KMDF front-end's through
//! `ntsim::wdf`, the KMDF model, which binds the WDF function table first — the device is
//! opened through `\\.\WskClient` as user mode opens it, and every call goes down as an
//! `IRP_MJ_DEVICE_CONTROL` IRP built for its METHOD by the emulated I/O manager
//! (METHOD_IN_DIRECT data reaches the driver through an MDL). Dropping the device closes the
//! handle (IRP_MJ_CLEANUP, IRP_MJ_CLOSE), unloads the driver (DriverUnload, WskDeregister),
//! and reports the verifier's verdict.

use std::sync::{Mutex, RwLock};

use anyhow::{anyhow, Context};
use ntsim::iomgr::{LoadedDriver, UserHandle};

use crate::cli::Frontend;
use crate::device::{Device, IoStatus};

struct Embedded {
    /// Read-locked by every call, so calls from several threads run concurrently (a pending
    /// ACCEPT or RECEIVE does not hold up the others: `UserHandle` is `Send + Sync` and
    /// each call is its own IRP); write-locked only to close the handle.
    handle: RwLock<Option<UserHandle>>,
    driver: Mutex<Option<LoadedDriver>>,
}

// SAFETY: UserHandle is Send + Sync; LoadedDriver is only touched under its mutex, in drop.
unsafe impl Send for Embedded {}
// SAFETY: as above.
unsafe impl Sync for Embedded {}

/// Opens the in-process emulated device: loads the driver through `frontend` and opens
/// `\\.\WskClient`.
///
/// Errors: the driver's `DriverEntry` status (for example `STATUS_DEVICE_NOT_READY` when no
/// WSK provider is available), or the open's status.
pub fn open(frontend: Frontend) -> anyhow::Result<Box<dyn Device>> {
    ntsim::link();
    let loaded = match frontend {
        Frontend::Wdm => ntsim::iomgr::load_driver(wskclient::DriverEntry, "wskclient"),
        Frontend::Kmdf => ntsim::wdf::load_driver(wskclient::KmdfDriverEntry, "wskclient"),
    };
    let driver = loaded.map_err(|s| {
        anyhow!(
            "{frontend:?} DriverEntry failed: {}",
            crate::client::NtStatus(s)
        )
    })?;
    let handle = ntsim::iomgr::open(wskclient_ioctl::USER_PATH)
        .map_err(|s| {
            anyhow!(
                "open {}: {}",
                wskclient_ioctl::USER_PATH,
                crate::client::NtStatus(s)
            )
        })
        .context("embedded device")?;
    Ok(Box::new(Embedded {
        handle: RwLock::new(Some(handle)),
        driver: Mutex::new(Some(driver)),
    }))
}

impl Device for Embedded {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        let g = self.handle.read().unwrap_or_else(|p| p.into_inner());
        match g.as_ref() {
            Some(h) => {
                let s = h.device_io_control(code, input, output);
                IoStatus {
                    status: s.status,
                    information: s.information,
                }
            }
            None => IoStatus {
                status: wskclient_ioctl::status::STATUS_INVALID_HANDLE,
                information: 0,
            },
        }
    }

    /// A handle in the emulated process handle table (`ntsim::file`) to the real host file.
    fn open_file_handle(
        &self,
        path: &std::path::Path,
        write_only: bool,
    ) -> anyhow::Result<crate::device::FileHandle> {
        let access = if write_only {
            ntsim::file::Access::Write
        } else {
            ntsim::file::Access::Read
        };
        let raw = ntsim::file::open_file(path, access)
            .with_context(|| format!("open {}", path.display()))?;
        Ok(crate::device::FileHandle::new(
            raw,
            Box::new(|h| {
                let _ = ntsim::file::close_handle(h);
            }),
        ))
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        drop(
            self.handle
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        if let Some(d) = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if let Err(e) = d.unload() {
                eprintln!("wskctl: driver unload: {e}");
            }
        }
        ntsim::wait_quiescent(std::time::Duration::from_secs(5));
        let s = ntsim::verifier::snapshot();
        let v = ntsim::verifier::violations();
        if std::env::var_os("WSKCTL_QUIET").is_none() {
            eprintln!(
                "verifier: {} live IRPs, {} live MDLs, {} live pool bytes, {} live sockets, {} violations",
                s.live_irps, s.live_mdls, s.live_pool_bytes, s.live_sockets, v.len()
            );
        }
        for x in &v {
            eprintln!("verifier: {:?}: {}", x.rule, x.detail);
        }
    }
}
