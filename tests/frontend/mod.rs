//! The driver's two front-ends, for tests that run against both: the WDM one
//! (`wskclient::DriverEntry`, loaded by the I/O manager) and the KMDF one
//! (`wskclient::kmdf::driver_entry`, loaded through `ntsim::wdf`, the KMDF model). The same
//! user-mode calls reach the same device core through either.
//!
//! `both_frontends!(f, g, ..)` turns each `fn f(fe: Frontend)` into the tests `f::wdm` and
//! `f::kmdf`.

use ntsim::iomgr::{self, LoadedDriver};

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
            Frontend::Kmdf => ntsim::wdf::load_driver(kmdf_entry(), "wskclient"),
        }
        .unwrap_or_else(|s| panic!("{self:?} DriverEntry failed: {s:#010x}"))
    }
}

/// The KMDF front-end's DriverEntry as the I/O manager's `DRIVER_INITIALIZE`.
pub fn kmdf_entry() -> iomgr::DriverEntry {
    let f = wskclient::kmdf::driver_entry as *const ();
    // SAFETY: the same ABI: both take a pointer to the DRIVER_OBJECT and to the registry
    // path's UNICODE_STRING and return an NTSTATUS; only the Rust-side type names differ.
    unsafe { std::mem::transmute::<*const (), iomgr::DriverEntry>(f) }
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
