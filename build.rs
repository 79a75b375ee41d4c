//! Build script. Only a KMDF build on a Windows host configures the WDK (wdk-build finds the
//! WDK, sets the linker arguments, generates bindings); every other build — the Linux host
//! build, and the Linux-hosted cross build of the WDM variant — does nothing here and never
//! compiles wdk-build (it is a Windows-host-only optional build-dependency, see Cargo.toml).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    // The negative compile check of src/kmdf.rs (tests/kmdf_negative.rs) sets this cfg.
    println!("cargo::rustc-check-cfg=cfg(wskclient_kmdf_type_error)");
    #[cfg(all(windows, feature = "kmdf"))]
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        wdk_build::configure_wdk_binary_build()?;
    }
    Ok(())
}
