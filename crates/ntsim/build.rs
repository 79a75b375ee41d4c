//! Sets the `ntsim_asan` cfg when the crate is built with AddressSanitizer
//! (`-Zsanitizer=address` in RUSTFLAGS, as `.ci/run`'s ASan suite and the fuzz build do): the
//! lookaside lists (src/lookaside.rs) then poison parked IRPs and MDLs for ASan.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(ntsim_asan)");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags
        .split('\u{1f}')
        .any(|f| f.contains("sanitizer=address"))
    {
        println!("cargo:rustc-cfg=ntsim_asan");
    }
}
