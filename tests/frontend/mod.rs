//! The driver's two front-ends, for tests that run against both: the WDM one
//! (`wskclient::DriverEntry`, loaded by the I/O manager) and the KMDF one
//! (`wskclient::KmdfDriverEntry`, `src/kmdf.rs`'s DriverEntry, loaded through `ntsim::wdf`, the KMDF model). The same
//! user-mode calls reach the same device core through either.
//!
//! `both_frontends!(f, g, ..)` turns each `fn f(fe: Frontend)` into the tests `f::wdm` and
//! `f::kmdf`. Also the calls most tests make through `\\.\WskClient`: [`Loaded`],
//! [`ioctl`], [`open_stream`], [`close`], [`stats`] (not every test binary uses each).

#![allow(dead_code)]

use std::net::SocketAddr;

use ntsim::iomgr::{self, IoStatus, LoadedDriver, UserHandle};
use wskclient_ioctl::status::STATUS_SUCCESS;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

/// Which front-end a test loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frontend {
    /// `src/wdm.rs`.
    Wdm,
    /// `src/kmdf.rs` on the KMDF model.
    Kmdf,
}

impl Frontend {
    /// Loads the driver through this front-end (as the service `wskclient`).
    pub fn load(self) -> LoadedDriver {
        match self {
            Frontend::Wdm => iomgr::load_driver(wskclient::DriverEntry, "wskclient"),
            Frontend::Kmdf => ntsim::wdf::load_driver(wskclient::KmdfDriverEntry, "wskclient"),
        }
        .unwrap_or_else(|s| panic!("{self:?} DriverEntry failed: {s:#010x}"))
    }
}

/// For each `fn name(fe: Frontend)`, the tests `name::wdm` and `name::kmdf`.
#[macro_export]
macro_rules! both_frontends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn wdm() {
                    super::$name($crate::frontend::Frontend::Wdm)
                }
                #[test]
                fn kmdf() {
                    super::$name($crate::frontend::Frontend::Kmdf)
                }
            }
        )*
    };
}

/// The driver loaded through one front-end inside a verifier scope; unloaded on drop, and
/// checked clean by [`Loaded::finish`].
pub struct Loaded {
    scope: ntsim::Scope,
    driver: Option<LoadedDriver>,
}

/// Begins a verifier scope in completion `mode` and loads the driver through `fe`.
pub fn load(fe: Frontend, mode: ntsim::config::CompletionMode) -> Loaded {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = fe.load();
    Loaded {
        scope,
        driver: Some(driver),
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // A failed test still unloads, so the next test can load the driver again.
        if let Some(d) = self.driver.take() {
            let _ = d.unload();
        }
    }
}

impl Loaded {
    /// `CreateFile` of `\\.\WskClient`.
    pub fn open(&self) -> UserHandle {
        iomgr::open(USER_PATH).expect("open \\\\.\\WskClient")
    }

    /// Unloads the driver and asserts that WskDeregister ran and nothing leaked.
    pub fn finish(mut self) {
        let d = self.driver.take().expect("loaded");
        d.unload().expect("unload");
        assert_eq!(ntsim::wsk::live_registrations(), 0, "WskDeregister ran");
        self.scope.assert_clean();
    }
}

/// `DeviceIoControl` with an output buffer of `out_len` bytes: the status and that buffer.
pub fn ioctl(h: &UserHandle, code: u32, input: &[u8], out_len: usize) -> (IoStatus, Vec<u8>) {
    let mut out = vec![0u8; out_len];
    let s = h.device_io_control(code, input, &mut out);
    (s, out)
}

/// OPEN_STREAM to `to`; asserts it succeeded with a whole response.
pub fn open_stream(h: &UserHandle, to: SocketAddr) -> SocketHandle {
    let (s, out) = ioctl(
        h,
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&to, None).as_bytes(),
        72,
    );
    assert_eq!(
        (s.status, s.information),
        (STATUS_SUCCESS, 72),
        "OPEN_STREAM"
    );
    OpenStreamResponse::read_from_bytes(&out).unwrap().handle
}

/// CLOSE; asserts it succeeded.
pub fn close(h: &UserHandle, handle: SocketHandle) {
    let (s, _) = ioctl(
        h,
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(handle).as_bytes(),
        0,
    );
    assert_eq!(s.status, STATUS_SUCCESS, "CLOSE");
}

/// QUERY_STATS; asserts it succeeded.
pub fn stats(h: &UserHandle) -> StatsResponse {
    let (s, out) = ioctl(
        h,
        IOCTL_WSKCLIENT_QUERY_STATS,
        QueryStatsRequest::new().as_bytes(),
        160,
    );
    assert_eq!(s.status, STATUS_SUCCESS, "QUERY_STATS");
    StatsResponse::read_from_bytes(&out).unwrap()
}
