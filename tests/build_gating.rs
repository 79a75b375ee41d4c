//! The Linux build, and the Linux-hosted cross build of the WDM variant, never compile
//! wdk-build, wdk-sys or wdk: only the KMDF build for Windows pulls them in (issue 5). The
//! Linux build compiles `src/kmdf.rs` against the stand-ins instead (issue 11), which no
//! Windows build pulls in. Checked on the resolved dependency graph with `cargo tree`, which
//! needs no Windows toolchain.

use std::process::Command;

/// The crates whose name starts with `wdk` in the resolved graph (stand-ins included).
fn wdk_crates_and_standins(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "wskclient",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("wdk"))
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The windows-drivers-rs crates (wdk, wdk-sys, ...) in the resolved graph.
fn wdk_crates(args: &[&str]) -> Vec<String> {
    wdk_crates_and_standins(args)
        .into_iter()
        .filter(|n| !n.ends_with("-standin"))
        .collect()
}

/// The host stand-ins for them.
fn standins(args: &[&str]) -> Vec<String> {
    wdk_crates_and_standins(args)
        .into_iter()
        .filter(|n| n.ends_with("-standin"))
        .collect()
}

#[test]
fn linux_build_compiles_kmdf_against_the_standins() {
    // The check can fail: the stand-ins are what src/kmdf.rs compiles against on Linux.
    assert_eq!(
        standins(&["--target", "x86_64-unknown-linux-gnu"]),
        ["wdk-macros-standin", "wdk-standin", "wdk-sys-standin"]
    );
}

#[test]
fn windows_builds_have_no_standins() {
    for extra in [&[][..], &["--no-default-features"][..]] {
        let mut args = vec!["--target", "x86_64-pc-windows-msvc"];
        args.extend_from_slice(extra);
        assert_eq!(standins(&args), Vec::<String>::new(), "{args:?}");
    }
}

#[test]
fn linux_build_has_no_wdk_crates() {
    assert_eq!(
        wdk_crates(&["--target", "x86_64-unknown-linux-gnu"]),
        Vec::<String>::new()
    );
}

#[test]
fn wdm_cross_build_has_no_wdk_crates() {
    assert_eq!(
        wdk_crates(&[
            "--target",
            "x86_64-pc-windows-msvc",
            "--no-default-features"
        ]),
        Vec::<String>::new()
    );
}

#[test]
fn kmdf_windows_build_uses_windows_drivers_rs() {
    // The check can fail: the KMDF build does resolve the WDK crates.
    let v = wdk_crates(&["--target", "x86_64-pc-windows-msvc"]);
    for c in ["wdk", "wdk-alloc", "wdk-build", "wdk-panic", "wdk-sys"] {
        assert!(v.iter().any(|x| x == c), "{c} missing from {v:?}");
    }
}
