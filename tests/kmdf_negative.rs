//! The host compile of `src/kmdf.rs` is a real type check: a deliberate type error in the
//! KMDF file (`kmdf_type_error`, compiled only under `--cfg wskclient_kmdf_type_error`:
//! windows-sys's `UNICODE_STRING` passed where `WdfControlDeviceInitAllocate` takes
//! wdk-sys's, issue 11's defect 1) fails the check with E0308 at that call, while the same
//! check without the cfg passes. `cargo rustc --profile check` in a target directory of its
//! own (dependencies are checked once, then cached); only the driver crate gets the cfg.
#![cfg(feature = "kmdf")]

use std::process::{Command, Output};

fn check_kmdf(inject_type_error: bool) -> Output {
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/kmdf-negative");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "rustc",
        "-p",
        "wskclient",
        "--lib",
        "--profile",
        "check",
        "--color",
        "never",
        "--message-format",
        "short",
        "--target-dir",
        target,
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env_remove("RUSTC_WRAPPER");
    if inject_type_error {
        cmd.args(["--", "--cfg", "wskclient_kmdf_type_error"]);
    }
    cmd.output().expect("run cargo rustc")
}

#[test]
fn a_type_error_in_kmdf_rs_fails_the_host_compile() {
    let bad = check_kmdf(true);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success(),
        "the injected type error compiled:\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("src/kmdf.rs") && l.contains("E0308")),
        "expected E0308 in src/kmdf.rs:\n{stderr}"
    );
    let e0308 = errors.iter().filter(|l| l.contains("E0308")).count();
    assert_eq!(e0308, 1, "only the injected call is wrong:\n{stderr}");

    let good = check_kmdf(false);
    assert!(
        good.status.success(),
        "the same check without the injection fails:\n{}",
        String::from_utf8_lossy(&good.stderr)
    );
}
