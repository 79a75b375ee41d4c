//! `--device embedded`: the emulated kernel and the driver, in process.
//!
//! PLACEHOLDER — the lead replaces the body of [`open`]: build the `ntsim`
//! kernel, load the driver (DriverEntry, device `\Device\WskClient`), open a
//! file object on it (`IRP_MJ_CREATE`) and return a [`Device`] that sends each
//! call as an `IRP_MJ_DEVICE_CONTROL` Irp (METHOD_IN_DIRECT data described by
//! an MDL, ideally overriding [`Device::ioctl_in_direct`] to build it over the
//! caller's slice without a copy), waits (bounded) for completion and returns
//! `IoStatus`; dropping it must send `IRP_MJ_CLEANUP` / `IRP_MJ_CLOSE`.

use crate::device::Device;

/// Opens the in-process emulated device.
///
/// Errors: always, until the lead wires the emulation in ("embedded backend
/// not wired yet").
pub fn open() -> anyhow::Result<Box<dyn Device>> {
    anyhow::bail!("embedded backend not wired yet")
}
