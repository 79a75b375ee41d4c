//! Build script of wsk-sys. Does nothing unless the opt-in `wdk-layout-check` feature is
//! enabled on a Windows host: then it generates, from the installed WDK's wsk.h, the
//! bindgen layout of every WSK type into `$OUT_DIR/wdk_wsk_layout.rs` for
//! `tests/wdk_layout.rs`. WINDOWS-ONLY code path: not compiled on the project's Linux
//! machines (paper only in docs/verification.md).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(all(windows, feature = "wdk-layout-check"))]
    wdk_check::generate()?;
    Ok(())
}

#[cfg(all(windows, feature = "wdk-layout-check"))]
mod wdk_check {
    use wdk_build::BuilderExt;

    pub fn generate() -> Result<(), Box<dyn std::error::Error>> {
        // The WDK found as for a driver build: include paths, target, defines.
        let config = wdk_build::Config::from_env_auto()?;
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("wdk_wsk_layout.rs");
        wdk_bindgen::Builder::wdk_default(&config)?
            .header_contents(
                "wsk_layout_check.h",
                "#include <ntddk.h>\n#include <wsk.h>\n",
            )
            .allowlist_type("_?WSK_.*")
            .layout_tests(true)
            .generate()?
            .write_to_file(out)?;
        Ok(())
    }
}
