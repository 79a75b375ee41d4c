//! `--device embedded`: the emulated kernel (`ntsim`) and the real driver source
//! (`wskclient`), in process. The driver is loaded through its `DriverEntry` — the WDM
//! front-end's by the I/O manager, or (`--frontend kmdf`) the KMDF front-end's through
//! `ntsim::wdf`, the KMDF model, which binds the WDF function table first — the device is
//! opened through `\\.\WskClient` as user mode opens it, and every call goes down as an
//! `IRP_MJ_DEVICE_CONTROL` IRP built for its METHOD by the emulated I/O manager
//! (METHOD_IN_DIRECT data reaches the driver through an MDL). Dropping the device closes the
//! handle (IRP_MJ_CLEANUP, IRP_MJ_CLOSE), unloads the driver (DriverUnload, WskDeregister),
//! and reports the verifier's verdict.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use ntsim::iomgr::{CompletionPort, LoadedDriver, UserHandle};

use crate::cli::Frontend;
use crate::device::{Completion, Device, IoStatus, KernelCounters, OverlappedDevice};

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
    let handle = open_user_handle().context("embedded device")?;
    Ok(Box::new(Embedded {
        handle: RwLock::new(Some(handle)),
        driver: Mutex::new(Some(driver)),
    }))
}

/// `CreateFile` of `\\.\WskClient` in the emulated process (a new file object).
fn open_user_handle() -> anyhow::Result<UserHandle> {
    ntsim::iomgr::open(wskclient_ioctl::USER_PATH).map_err(|s| {
        anyhow!(
            "open {}: {}",
            wskclient_ioctl::USER_PATH,
            crate::client::NtStatus(s)
        )
    })
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

    /// Another `\\.\WskClient` handle (file object) associated with an emulated completion
    /// port; see [`ntsim::iomgr::CompletionPort`] for what is modelled.
    fn open_overlapped(&self) -> anyhow::Result<Box<dyn OverlappedDevice + '_>> {
        let handle = open_user_handle().context("embedded device, overlapped handle")?;
        let port = CompletionPort::new();
        let status = handle.associate_completion_port(&port, KEY_IO);
        anyhow::ensure!(
            status == 0,
            "associate the completion port: {}",
            crate::client::NtStatus(status)
        );
        Ok(Box::new(EmbeddedOverlapped {
            handle: Some(handle),
            port,
            tags: Mutex::new(HashMap::new()),
        }))
    }

    /// The verifier's counters: live pool (by tag), live IRPs split by origin (the I/O
    /// manager's are its pending requests), live MDLs, system buffers. Read once no
    /// `IofCompleteRequest` is under way (bounded wait): the ACCEPT the caller just saw
    /// complete may still have its `IoCx` context, freed after the driver's routine returned.
    fn kernel_counters(&self) -> Option<KernelCounters> {
        ntsim::irp::wait_for_completions(COMPLETIONS_WAIT);
        let s = ntsim::verifier::snapshot();
        let io = ntsim::iomgr::stats();
        let io_irps = io.pending_requests as u64;
        Some(KernelCounters {
            pool_bytes: s.live_pool_bytes,
            pool_by_tag: s
                .pool_by_tag
                .iter()
                .map(|(t, (bytes, blocks))| (t.clone(), *bytes, *blocks))
                .collect(),
            driver_irps: s.live_irps.saturating_sub(io_irps),
            io_manager_irps: io_irps,
            irp_bytes: (std::mem::size_of::<windows_sys::Wdk::Foundation::IRP>()
                + std::mem::size_of::<windows_sys::Wdk::Foundation::IO_STACK_LOCATION>())
                as u64,
            mdls: s.live_mdls,
            system_buffer_bytes: io.system_buffer_bytes,
            socket_object_bytes: wskclient::core::SOCKET_OBJECT_BYTES as u64,
            table_slot_bytes: wskclient::core::TABLE_SLOT_BYTES as u64,
        })
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

/// Completion key of the overlapped handle's requests.
const KEY_IO: usize = 1;
/// Completion key of posted completions.
const KEY_POSTED: usize = 2;

/// How long [`Device::kernel_counters`] waits for the completions under way to return.
const COMPLETIONS_WAIT: Duration = Duration::from_secs(5);

/// A second handle to `\\.\WskClient` associated with an emulated I/O completion port
/// (`ntsim::iomgr::CompletionPort`).
struct EmbeddedOverlapped {
    handle: Option<UserHandle>,
    port: CompletionPort,
    /// The caller's tag of each request in flight, by the request's identity (its
    /// `lpOverlapped`). Held across the submission so that a completion dequeued by another
    /// thread before `submit` returned finds its tag.
    tags: Mutex<HashMap<usize, u64>>,
}

impl EmbeddedOverlapped {
    fn handle(&self) -> &UserHandle {
        // Only `drop` takes the handle.
        self.handle.as_ref().expect("overlapped handle open")
    }
}

impl OverlappedDevice for EmbeddedOverlapped {
    fn submit(
        &self,
        tag: u64,
        code: u32,
        input: Vec<u8>,
        output: Vec<u8>,
    ) -> Result<(), Completion> {
        let mut tags = self.tags.lock().unwrap_or_else(|p| p.into_inner());
        let ov = self
            .handle()
            .device_io_control_overlapped(code, input, output);
        if !ov.queues_packet() {
            drop(tags);
            let s = ov.status().unwrap_or(ntsim::iomgr::IoStatus {
                status: wskclient_ioctl::status::STATUS_INVALID_HANDLE,
                information: 0,
            });
            return Err(Completion {
                tag,
                status: IoStatus {
                    status: s.status,
                    information: s.information,
                },
                output: ov.output(),
            });
        }
        tags.insert(ov.id(), tag);
        Ok(())
    }

    fn dequeue(&self, timeout: Duration) -> Option<Completion> {
        let deadline = Instant::now() + timeout;
        loop {
            let p = self
                .port
                .get(deadline.saturating_duration_since(Instant::now()))?;
            let status = IoStatus {
                status: p.status.status,
                information: p.status.information,
            };
            if p.key == KEY_POSTED {
                return Some(Completion {
                    tag: p.posted as u64,
                    status,
                    output: Vec::new(),
                });
            }
            let Some(ov) = p.overlapped else { continue };
            let tag = self
                .tags
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&ov.id());
            if let Some(tag) = tag {
                return Some(Completion {
                    tag,
                    status,
                    output: ov.output(),
                });
            }
        }
    }

    fn post(&self, tag: u64) {
        self.port.post(KEY_POSTED, 0, tag as usize);
    }
}

impl Drop for EmbeddedOverlapped {
    /// `CloseHandle` (the driver's cleanup completes what is pending and closes the sockets),
    /// a bounded wait until the file object is released, then the queue is emptied: a queued
    /// packet holds its request, which holds the file object's context.
    fn drop(&mut self) {
        drop(self.handle.take());
        while self.port.get(Duration::ZERO).is_some() {}
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
