//! Layout check (a): the WDK's own wsk.h, through wdk-build's bindgen configuration, against
//! wsk-sys — every struct's size, alignment and field offsets. Windows with the WDK only,
//! opt-in: `cargo test -p wsk-sys --features wdk-layout-check`. The comparison is the same
//! code as check (b) (`tests/wine_layout.rs`), whose negative test proves it can fail.
#![cfg(all(windows, feature = "wdk-layout-check"))]

mod layout;

#[test]
fn wdk_wsk_h_layouts_match_wsk_sys() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/wdk_wsk_layout.rs"));
    let wdk = layout::parse_bindgen_layouts(generated);
    assert!(!wdk.is_empty(), "no WSK types found in the WDK's wsk.h");
    let report = layout::compare(&wdk, &layout::ours());
    println!(
        "wdk layout: {} structs, {} fields checked, {} mismatches",
        report.structs,
        report.fields,
        report.mismatches.len()
    );
    assert!(
        report.mismatches.is_empty(),
        "{}",
        report.mismatches.join("\n")
    );
}
