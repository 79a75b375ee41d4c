//! `wskctl bench` with a small workload: every row verified at its sink (bytes and
//! sha256), a ratio printed, the measurement's meaning stated, the driver unloaded clean.
//! Not a timing assertion.

#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};

const CLEAN: &str =
    "verifier: 0 live IRPs, 0 live MDLs, 0 live pool bytes, 0 live sockets, 0 violations";

#[test]
fn bench_verifies_both_rows_and_prints_the_ratio() {
    let out = Command::new(env!("CARGO_BIN_EXE_wskctl"))
        .args([
            "bench",
            "--mib",
            "4",
            "--chunk",
            "262144",
            "--timeout-secs",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.lines().any(|l| l == CLEAN), "verifier: {stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("driver: ") || l.starts_with("user mode: "))
        .collect();
    assert!(rows.len() >= 2, "{stdout}");
    for row in &rows {
        assert!(row.contains(" 4194304 "), "bytes: {row}");
        assert!(row.contains(" yes "), "verified: {row}");
    }
    for path in [
        "driver: OPEN_STREAM + TRANSMIT_FILE",
        "driver: OPEN_STREAM + SEND",
        "user mode: sendfile",
    ] {
        assert!(rows.iter().any(|r| r.starts_with(path)), "{path}: {stdout}");
    }
    let ratio = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ratio: "))
        .unwrap_or_else(|| panic!("no ratio: {stdout}"));
    let value: f64 = ratio.rsplit(" = ").next().unwrap().parse().unwrap();
    assert!(value > 0.0, "{ratio}");
    assert!(stdout.contains("not Windows kernel speed"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "bench: OK"));
}

#[test]
fn bench_json_reports_the_same() {
    let out = Command::new(env!("CARGO_BIN_EXE_wskctl"))
        .args(["bench", "--mib", "1", "--json"])
        .env("WSKCTL_QUIET", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["bytes"], 1 << 20);
    let rows = v["rows"].as_array().unwrap();
    assert!(rows.len() >= 2);
    assert!(rows
        .iter()
        .all(|r| r["verified"] == true && r["bytes"] == 1 << 20));
    assert!(v["ratio"].as_f64().unwrap() > 0.0);
}
