//! `wskctl bench --small` with tiny counts, through the CLI on the embedded device in its
//! default completion mode: every case present in the table and in the JSON, every ratio
//! finite and positive, each side's bytes exactly the requests' bytes, and the peers saw
//! exactly those bytes (the sinks count per sender; the receive cases check the source's
//! byte pattern). Not a timing assertion: no duration is checked.

#![cfg(target_os = "linux")]

mod common;

use common::{success, Kill};

const OPS: u64 = 40;
const ROUNDS: u64 = 3;
const WARMUP: u64 = 4;

const CASES: [(&str, &str, u64); 5] = [
    ("send-64", "SEND 64 B vs send(2)", 64),
    ("send-1k", "SEND 1 KiB vs send(2)", 1024),
    ("send-to-64", "SEND_TO 64 B vs sendto(2)", 64),
    ("receive-64", "RECEIVE 64 B vs recv(2)", 64),
    ("receive-1k", "RECEIVE 1 KiB vs recv(2)", 1024),
];

fn run(extra: &[&str]) -> String {
    let (ops, rounds, warmup) = (OPS.to_string(), ROUNDS.to_string(), WARMUP.to_string());
    let mut args = vec![
        "bench",
        "--small",
        "--ops",
        &ops,
        "--rounds",
        &rounds,
        "--warmup",
        &warmup,
        "--timeout-secs",
        "30",
    ];
    args.extend_from_slice(extra);
    let mut c = common::wskctl("pending", &args);
    // The default completion mode: no override.
    c.env_remove("WSKCTL_NTSIM_COMPLETION");
    let out = Kill(Some(c.spawn().unwrap())).finish();
    success("bench --small", &out)
}

#[test]
fn small_bench_json_has_every_case_with_exact_bytes_and_finite_ratios() {
    let stdout = run(&["--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], true, "{stdout}");
    assert_eq!(v["ops"], OPS);
    assert_eq!(v["rounds"], ROUNDS);
    assert_eq!(v["completion_mode"], "provider", "the default mode");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), CASES.len(), "{stdout}");
    let requests = OPS * ROUNDS + WARMUP;
    for ((case, label, size), row) in CASES.iter().zip(rows) {
        assert_eq!(row["case"], *case, "{row}");
        assert_eq!(row["label"], *label, "{row}");
        assert_eq!(row["bytes_per_op"], *size, "{row}");
        assert_eq!(row["verified"], true, "{row}");
        for side in ["ours", "raw"] {
            let s = &row[side];
            assert_eq!(s["ops"], OPS * ROUNDS, "{case} {side}: {row}");
            let ns = s["ns_per_op"].as_f64().unwrap();
            assert!(ns.is_finite() && ns > 0.0, "{case} {side}: {row}");
            assert_eq!(
                s["ns_per_op_rounds"].as_array().unwrap().len() as u64,
                ROUNDS
            );
            let bytes = s["bytes"].as_u64().unwrap();
            if case.starts_with("receive") {
                // A stream receive returns 1 ..= size bytes per request.
                assert!(
                    (requests..=requests * size).contains(&bytes),
                    "{case} {side}: {row}"
                );
            } else {
                assert_eq!(bytes, requests * size, "{case} {side}: {row}");
            }
            // What the peer counted from this side: exactly the bytes sent.
            assert_eq!(s["peer_bytes"].as_u64().unwrap(), bytes, "{case} {side}");
        }
        let ratio = row["ratio"].as_f64().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0, "{case}: {row}");
        assert_eq!(row["ratio_rounds"].as_array().unwrap().len() as u64, ROUNDS);
        let a = &row["allocations_per_op"];
        let keys = [
            "ours",
            "ours_irps",
            "ours_mdls",
            "ours_pool",
            "ours_heap",
            "irps",
            "mdls",
            "pool",
            "io_cx",
        ];
        for k in keys {
            let x = a[k].as_f64().unwrap_or_else(|| panic!("{case} {k}: {row}"));
            assert!(x.is_finite() && x >= 0.0, "{case} {k}: {row}");
        }
        let f = |k: &str| a[k].as_f64().unwrap();
        // Ours is the sum of its kinds, and a part of everyone's.
        let sum = f("ours_irps") + f("ours_mdls") + f("ours_pool") + f("ours_heap");
        assert!((f("ours") - sum).abs() < 1e-9, "{case}: {row}");
        assert!(
            f("ours_irps") <= f("irps") && f("ours_mdls") <= f("mdls"),
            "{row}"
        );
        assert!(
            f("ours_pool") + f("io_cx") <= f("pool") + 1e-9,
            "{case}: {row}"
        );
        // The I/O manager describes each request's data buffer (METHOD_IN_DIRECT /
        // METHOD_OUT_DIRECT) with an MDL: at least one per request.
        assert!(f("mdls") >= 1.0, "{case}: {row}");
    }
}

#[test]
fn small_bench_table_lists_every_case_and_ours_only_skips_raw() {
    let stdout = run(&[]);
    for (_, label, _) in CASES {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no row {label}: {stdout}"));
        let cols: Vec<&str> = line[label.len()..].split_whitespace().collect();
        // ours µs/op, raw µs/op, ratio, ours al/op, IRP/op, MDL/op, pool/op, verified.
        assert!(cols.len() >= 8, "{line}");
        for c in &cols[..7] {
            let x: f64 = c.parse().unwrap_or_else(|_| panic!("{c}: {line}"));
            assert!(x.is_finite(), "{line}");
        }
        assert_eq!(cols[7], "yes", "{line}");
    }
    assert!(stdout.contains("not Windows kernel speed"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "bench: OK"), "{stdout}");

    let stdout = run(&["--json", "--ours-only", "--case", "send-64"]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["case"], "send-64");
    assert!(rows[0]["raw"].is_null() && rows[0]["ratio"].is_null());
    assert_eq!(rows[0]["ours"]["peer_bytes"], (OPS * ROUNDS + WARMUP) * 64);
}
