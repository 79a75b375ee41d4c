//! Independent layout check: run bindgen on Wine's `ddk/wsk.h` (from Debian's `libwine-dev`)
//! and compare size, alignment and every field offset of each WSK struct Wine defines with
//! the `wsk-sys` definitions.
//!
//! The header is located among known install paths; if it is missing the test fails,
//! unless `WSK_SYS_SKIP_WINE_LAYOUT=1` is set (then it prints "skipped").
//! Override the location with `WSK_SYS_WINE_WSK_H=/path/to/ddk/wsk.h`.

mod layout;

use layout::{compare, ours, parse_bindgen_layouts, Layout};
use std::path::{Path, PathBuf};

/// Where Debian/Ubuntu and other distributions put Wine's Windows headers.
const KNOWN_WINDOWS_INCLUDE_DIRS: &[&str] = &[
    "/usr/include/wine/wine/windows",
    "/usr/include/wine/windows",
    "/usr/include/wine-development/wine/windows",
    "/usr/include/wine-development/windows",
    "/usr/local/include/wine/wine/windows",
    "/usr/local/include/wine/windows",
    "/opt/wine/include/wine/windows",
];

fn find_wsk_h() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WSK_SYS_WINE_WSK_H") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let mut candidates: Vec<PathBuf> = KNOWN_WINDOWS_INCLUDE_DIRS
        .iter()
        .map(|d| Path::new(d).join("ddk/wsk.h"))
        .collect();
    // Also glob /usr/include/wine*/{wine/,}windows/ddk/wsk.h for other layouts.
    if let Ok(rd) = std::fs::read_dir("/usr/include") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("wine") {
                candidates.push(e.path().join("wine/windows/ddk/wsk.h"));
                candidates.push(e.path().join("windows/ddk/wsk.h"));
            }
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Run bindgen on Wine's wsk.h and return the generated Rust source (layout tests included).
fn bindgen_wine(wsk_h: &Path) -> String {
    let windows_dir = wsk_h
        .parent()
        .and_then(Path::parent)
        .expect("wsk.h lives in <windows>/ddk/");
    let wine_root = windows_dir.parent().expect("<wine>/windows");
    let msvcrt_dir = wine_root.join("msvcrt");

    // Include order as a Wine kernel driver would use it.
    let wrapper = "\
#include <stdarg.h>
#include <ntstatus.h>
#define WIN32_NO_STATUS
#include <windef.h>
#include <winbase.h>
#include <winternl.h>
#include <ddk/wdm.h>
#include <ddk/wsk.h>
";
    let mut b = bindgen::Builder::default()
        .header_contents("wsk_wrapper.h", wrapper)
        .clang_arg("--target=x86_64-pc-windows-msvc")
        .clang_arg("-fms-extensions")
        .clang_arg("-Wno-pragma-pack")
        .clang_arg("-D_WIN64")
        .clang_arg("-DWINE_NO_LONG_TYPES")
        .clang_arg("-D__WINESRC__")
        .clang_arg("-D_NTSYSTEM_");
    if msvcrt_dir.is_dir() {
        b = b.clang_arg(format!("-I{}", msvcrt_dir.display()));
    }
    b = b
        .clang_arg(format!("-I{}", windows_dir.display()))
        // Only what wsk.h itself declares; dependencies stay out (we only read layouts).
        .allowlist_file(r".*[/\\]ddk[/\\]wsk\.h")
        .allowlist_recursively(false)
        .layout_tests(true)
        .derive_debug(false)
        .derive_default(false)
        .generate_comments(false);
    b.generate()
        .unwrap_or_else(|e| panic!("bindgen failed on {}: {e}", wsk_h.display()))
        .to_string()
}

#[test]
fn wine_layout_matches() {
    let skip = std::env::var("WSK_SYS_SKIP_WINE_LAYOUT").is_ok_and(|v| v == "1");
    let Some(wsk_h) = find_wsk_h() else {
        if skip {
            println!(
                "wine layout: skipped (WSK_SYS_SKIP_WINE_LAYOUT=1, Wine's ddk/wsk.h not found)"
            );
            return;
        }
        panic!(
            "Wine's ddk/wsk.h not found (looked in {KNOWN_WINDOWS_INCLUDE_DIRS:?} and \
             /usr/include/wine*). Install it with `apt-get install -y --no-install-recommends \
             libwine-dev libclang-dev`, point WSK_SYS_WINE_WSK_H at it, or set \
             WSK_SYS_SKIP_WINE_LAYOUT=1 to skip this check."
        );
    };
    if skip {
        println!("wine layout: skipped (WSK_SYS_SKIP_WINE_LAYOUT=1)");
        return;
    }

    let generated = bindgen_wine(&wsk_h);
    let wine = parse_bindgen_layouts(&generated);
    assert!(
        wine.len() >= 10,
        "bindgen produced only {} WSK layouts from {}; generated code:\n{generated}",
        wine.len(),
        wsk_h.display()
    );

    let report = compare(&wine, &ours());
    for m in &report.mismatches {
        println!("MISMATCH: {m}");
    }
    println!(
        "not in Wine's header ({}): {}",
        report.not_in_wine.len(),
        report.not_in_wine.join(", ")
    );
    println!(
        "wine layout: {} structs, {} fields checked, {} mismatches (header: {})",
        report.structs,
        report.fields,
        report.mismatches.len(),
        wsk_h.display()
    );
    assert!(
        report.mismatches.is_empty(),
        "{} layout mismatches against Wine's wsk.h:\n{}",
        report.mismatches.len(),
        report.mismatches.join("\n")
    );
}

/// The comparison must catch a wrong layout: feed it a test-only `WSK_BUF` whose
/// `Offset` and `Length` fields are swapped, and a perturbed copy of the real table.
#[test]
fn comparison_detects_wrong_layout() {
    // Wine-side reference built by hand from the C definition (x86_64).
    let mut wine = std::collections::BTreeMap::new();
    wine.insert(
        "WSK_BUF".to_string(),
        Layout {
            name: "WSK_BUF".into(),
            size: 24,
            align: 8,
            fields: vec![
                ("Mdl".into(), 0),
                ("Offset".into(), 8),
                ("Length".into(), 16),
            ],
        },
    );

    // 1. The real wsk-sys WSK_BUF agrees with it.
    let real: Vec<Layout> = ours().into_iter().filter(|l| l.name == "WSK_BUF").collect();
    let ok = compare(&wine, &real);
    assert!(ok.mismatches.is_empty(), "{:?}", ok.mismatches);
    assert_eq!((ok.structs, ok.fields), (1, 3));

    // 2. A struct with moved fields is reported.
    #[repr(C)]
    #[allow(non_snake_case, dead_code)]
    struct WSK_BUF {
        Mdl: *mut u8,
        Length: usize,
        Offset: u32,
    }
    let wrong = vec![layout::layout_of!(WSK_BUF {
        Mdl,
        Offset,
        Length
    })];
    let bad = compare(&wine, &wrong);
    assert!(
        bad.mismatches.iter().any(|m| m.contains("WSK_BUF::Offset")
            && m.contains("wine 8")
            && m.contains("ours 16")),
        "moved field not reported: {:?}",
        bad.mismatches
    );
    assert!(bad.mismatches.iter().any(|m| m.contains("WSK_BUF::Length")));

    // 3. A perturbed size, and a field Wine has but we lack, are reported.
    let mut perturbed = real.clone();
    perturbed[0].size = 32;
    perturbed[0].fields.retain(|(f, _)| f != "Length");
    let bad = compare(&wine, &perturbed);
    assert!(bad.mismatches.iter().any(|m| m.contains("size")));
    assert!(bad
        .mismatches
        .iter()
        .any(|m| m.contains("WSK_BUF::Length") && m.contains("missing")));

    // 4. A WSK struct Wine defines that wsk-sys lacks is a mismatch, not a skip.
    let bad = compare(&wine, &[]);
    assert!(bad.mismatches.iter().any(|m| m.contains("WSK_BUF")));
}

/// The parser reads bindgen's layout assertions (checked on a fixed sample).
#[test]
fn parser_reads_bindgen_assertions() {
    let sample = r#"
        #[repr(C)]
        pub struct _WSK_BUF { pub Mdl: PMDL, pub Offset: ULONG, pub Length: SIZE_T }
        #[allow(clippy::unnecessary_operation, clippy::identity_op)]
        const _: () = {
            ["Size of _WSK_BUF"][::std::mem::size_of::<_WSK_BUF>() - 24usize];
            ["Alignment of _WSK_BUF"][::std::mem::align_of::<_WSK_BUF>() - 8usize];
            ["Offset of field: _WSK_BUF::Mdl"][::std::mem::offset_of!(_WSK_BUF, Mdl) - 0usize];
            ["Offset of field: _WSK_BUF::Offset"][::std::mem::offset_of!(_WSK_BUF, Offset) - 8usize];
            ["Offset of field: _WSK_BUF::Length"][::std::mem::offset_of!(_WSK_BUF, Length) - 16usize];
        };
        pub type WSK_BUF = _WSK_BUF;
        pub type PWSK_BUF = *mut _WSK_BUF;
    "#;
    let m = parse_bindgen_layouts(sample);
    let buf = &m["WSK_BUF"];
    assert_eq!((buf.size, buf.align), (24, 8));
    assert_eq!(
        buf.fields,
        vec![
            ("Mdl".to_string(), 0),
            ("Offset".to_string(), 8),
            ("Length".to_string(), 16)
        ]
    );
}
