//! `wskctl demo` on the embedded device passes through either driver front-end
//! (`--frontend wdm`, `--frontend kmdf` on the KMDF model), on every completion path, and the
//! verifier is clean when the driver unloads.

mod common;

use common::{assert_clean, wskctl, Kill};

#[test]
fn demo_passes_with_both_frontends() {
    for frontend in ["wdm", "kmdf"] {
        for mode in ["pending", "inline", "provider"] {
            let child = wskctl(
                mode,
                &[
                    "--frontend",
                    frontend,
                    "demo",
                    "--bytes",
                    "1000000",
                    "--datagrams",
                    "200",
                    "--ipv6-optional",
                ],
            )
            .spawn()
            .unwrap();
            let out = Kill(Some(child)).finish();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert!(
                out.status.success() && stdout.contains("demo: OK"),
                "--frontend {frontend} ({mode}): {stdout}\n{stderr}"
            );
            assert_clean(&format!("--frontend {frontend} demo ({mode})"), &stderr);
        }
    }
}
