//! The driver's two front-ends, for tests that run against both: the WDM one
//! (`wskclient::DriverEntry`, loaded by the I/O manager) and the KMDF one
//! (`wskclient::KmdfDriverEntry`, `src/kmdf.rs`'s DriverEntry, loaded through `ntsim::wdf`, the KMDF model). The same
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
