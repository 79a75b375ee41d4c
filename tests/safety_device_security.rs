//! Regression test for issue 12, defect 8: the WDM build's control device is restricted to
//! SYSTEM and Administrators (`src/wide.rs` `SDDL`) by the routine the Windows build uses.
//! wdmsec.lib (`IoCreateDeviceSecure`) is not available to that build, so the driver creates
//! the device with `IoCreateDevice` and sets its DACL with ntoskrnl exports
//! (`RtlCreateSecurityDescriptor`, `RtlCreateAcl`, `RtlAddAccessAllowedAce`,
//! `RtlSetDaclSecurityDescriptor`, `ObOpenObjectByPointer`, `ZwSetSecurityObject`). The host
//! runs the same code as the Windows build; ntsim records the DACL `ZwSetSecurityObject` set.

use ntsim::iomgr;
use wskclient_ioctl::{DEVICE_NAME, USER_PATH};

/// Before the fix the host build called `IoCreateDeviceSecure` (which only the host had) and
/// the Windows build `IoCreateDevice` with the default descriptor: any user could open the
/// device. This test failed then: the security came from `IoCreateDeviceSecure`, not from
/// the Windows build's path.
#[test]
fn wdm_device_dacl_is_system_and_administrators_only() {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
    let (sddl, by) = iomgr::device_security(DEVICE_NAME).expect("the device has a DACL");
    assert_eq!(
        (sddl.as_str(), by),
        (wskclient::wide::SDDL, "ZwSetSecurityObject"),
        "SYSTEM and Administrators only, set as the Windows WDM build sets it"
    );
    assert_eq!(wskclient::wide::SDDL, "D:P(A;;GA;;;SY)(A;;GA;;;BA)");
    // The device works, and the kernel handle used to set the DACL was closed.
    let h = iomgr::open(USER_PATH).expect("open");
    drop(h);
    assert_eq!(ntsim::file::live().kernel_handles, 0);
    driver.unload().expect("unload");
    scope.assert_clean();
}
