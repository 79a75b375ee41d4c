//! `wskctl`: test console for the wskclient WSK driver.
//!
//! It reaches the driver only through [`device::Device`] (a synchronous
//! DeviceIoControl). Backends: [`embedded`] (the emulated kernel and driver in
//! process) and, on Windows, `windows` (`\\.\WskClient`). [`client::Client`]
//! wraps the IOCTL contract of `wskclient-ioctl`; [`demo`] verifies the driver
//! end to end against local receivers.

pub mod bench;
pub mod cli;
pub mod client;
pub mod demo;
pub mod device;
pub mod echo;
#[cfg(not(windows))]
pub mod embedded;
pub mod nc;
pub mod options;
pub mod payload;
pub mod peer;
pub mod progress;
pub mod receiver;
pub mod resolve;
#[cfg(test)]
mod testdev;
pub mod transmit;
#[cfg(windows)]
pub mod windows;
