//! The structures the KMDF front-end fills (through `wdk-sys-standin`, as wdk-sys lays them
//! out) are the ones `ntsim::wdf` reads (its own declarations in `ntsim::wdf::types`): same
//! size and the same offset for every field, so the model sees what the driver wrote. Both
//! sides are separately checked against the KMDF 1.33 headers
//! (`crates/wdk-sys-standin/tests/layout.rs`).
#![cfg(all(feature = "kmdf", target_pointer_width = "64"))]

use std::mem::{align_of, offset_of, size_of};

use ntsim::wdf::types as model;
use wdk_sys_standin as wdk;

macro_rules! same {
    ($a:ty, $b:ty, [$($fa:ident $(= $fb:ident)?),* $(,)?]) => {{
        assert_eq!(size_of::<$a>(), size_of::<$b>(), "size of {}", stringify!($a));
        assert_eq!(align_of::<$a>(), align_of::<$b>(), "alignment of {}", stringify!($a));
        $(same!(@field $a, $b, $fa $(, $fb)?);)*
    }};
    (@field $a:ty, $b:ty, $fa:ident) => { same!(@field $a, $b, $fa, $fa) };
    (@field $a:ty, $b:ty, $fa:ident, $fb:ident) => {
        assert_eq!(
            offset_of!($a, $fa),
            offset_of!($b, $fb),
            "{}.{}",
            stringify!($a),
            stringify!($fa)
        )
    };
}

#[test]
fn model_and_front_end_agree_on_every_wdf_structure() {
    same!(
        wdk::WDF_DRIVER_GLOBALS,
        model::WDF_DRIVER_GLOBALS,
        [
            Driver,
            DriverFlags,
            DriverTag,
            DriverName,
            DisplaceDriverUnload
        ]
    );
    same!(
        wdk::WDF_DRIVER_CONFIG,
        model::WDF_DRIVER_CONFIG,
        [
            Size,
            EvtDriverDeviceAdd,
            EvtDriverUnload,
            DriverInitFlags,
            DriverPoolTag
        ]
    );
    same!(
        wdk::WDF_OBJECT_ATTRIBUTES,
        model::WDF_OBJECT_ATTRIBUTES,
        [
            Size,
            EvtCleanupCallback,
            EvtDestroyCallback,
            ExecutionLevel,
            SynchronizationScope,
            ParentObject,
            ContextSizeOverride,
            ContextTypeInfo,
        ]
    );
    same!(
        wdk::WDF_OBJECT_CONTEXT_TYPE_INFO,
        model::WDF_OBJECT_CONTEXT_TYPE_INFO,
        [
            Size,
            ContextName,
            ContextSize,
            UniqueType,
            EvtDriverGetUniqueContextType
        ]
    );
    same!(
        wdk::WDF_FILEOBJECT_CONFIG,
        model::WDF_FILEOBJECT_CONFIG,
        [
            Size,
            EvtDeviceFileCreate,
            EvtFileClose,
            EvtFileCleanup,
            AutoForwardCleanupClose,
            FileObjectClass,
        ]
    );
    same!(
        wdk::WDF_IO_QUEUE_CONFIG,
        model::WDF_IO_QUEUE_CONFIG,
        [
            Size,
            DispatchType,
            PowerManaged,
            AllowZeroLengthRequests,
            DefaultQueue,
            EvtIoDefault,
            EvtIoRead,
            EvtIoWrite,
            EvtIoDeviceControl,
            EvtIoInternalDeviceControl,
            EvtIoStop,
            EvtIoResume,
            EvtIoCanceledOnQueue,
            // Settings.Parallel.NumberOfPresentedRequests: the model flattens the union.
            Settings = NumberOfPresentedRequests,
            Driver,
        ]
    );
}
