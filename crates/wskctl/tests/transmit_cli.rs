//! `wskctl transmit` (TRANSMIT_FILE) through the console app on the embedded device (the
//! driver's source on the emulated kernel, real host sockets): a real std::net peer reads
//! the connection to its end and hashes it; head + a 1 MiB file range + tail must arrive
//! byte-exact, over IPv4 and IPv6, on both ntsim completion paths
//! (`WSKCTL_NTSIM_COMPLETION`), and the driver must unload with the verifier's clean verdict.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

mod common;
use common::*;

const MIB: usize = 1 << 20;

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A file of `len` pattern bytes (no period that divides 1 MiB, so an offset error shows).
fn pattern_file(name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let path = std::env::temp_dir().join(format!("wskctl-transmit-{}-{name}", std::process::id()));
    let data: Vec<u8> = (0..len).map(|i| ((i * 7 + i / 251) % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

struct Case<'a> {
    name: &'a str,
    at: &'a str,
    mode: &'a str,
    file_len: usize,
    offset: usize,
    /// 0 = to the end of the file.
    length: usize,
    head: &'a str,
    tail: &'a str,
    block_size: Option<u32>,
    disconnect: bool,
    json: bool,
}

fn transmit(case: Case<'_>) {
    let listener = TcpListener::bind(case.at).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (path, file) = pattern_file(case.name, case.file_len);
    let end = if case.length == 0 {
        file.len()
    } else {
        case.offset + case.length
    };
    let mut expected = case.head.as_bytes().to_vec();
    expected.extend_from_slice(&file[case.offset..end]);
    expected.extend_from_slice(case.tail.as_bytes());

    let (offset, length) = (case.offset.to_string(), case.length.to_string());
    let path_arg = path.display().to_string();
    let mut args = vec![
        "transmit", &target, "--file", &path_arg, "--offset", &offset, "--length", &length,
        "--head", case.head, "--tail", case.tail,
    ];
    let block = case.block_size.map(|b| b.to_string());
    if let Some(b) = &block {
        args.extend(["--block-size", b]);
    }
    if case.disconnect {
        args.push("--disconnect");
    }
    if case.json {
        args.push("--json");
    }
    let mut child = Kill(Some(wskctl(case.mode, &args).spawn().unwrap()));
    let (from, got) = accept_and_hash(&listener, &mut child);
    let out = child.finish();
    std::fs::remove_file(&path).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wskctl {}: {stderr}\n{stdout}",
        case.name
    );
    assert_eq!(
        (got.len(), sha256(&got)),
        (expected.len(), sha256(&expected)),
        "{}: bytes at the peer differ from head + file[{}..{end}] + tail",
        case.name,
        case.offset
    );
    let sends = if case.json {
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["bytes_sent"], expected.len() as u64, "{stdout}");
        assert_eq!(v["disconnected"], case.disconnect, "{stdout}");
        assert_eq!(v["local"], from.to_string(), "{stdout}");
        assert_eq!(v["remote"], target, "{stdout}");
        v["sends"].as_u64().unwrap()
    } else {
        let line = stdout.trim();
        let prefix = format!("transmit: sent {} bytes in ", expected.len());
        let suffix = format!(
            " sends from {from} to {target}{}",
            if case.disconnect {
                " (disconnected)"
            } else {
                ""
            }
        );
        assert!(
            line.starts_with(&prefix) && line.ends_with(&suffix),
            "{line:?} is not {prefix:?}K{suffix:?}"
        );
        line[prefix.len()..line.len() - suffix.len()]
            .parse()
            .unwrap()
    };
    // Every send carries at most one block (default 64 KiB).
    let block = case.block_size.filter(|b| *b != 0).unwrap_or(64 << 10) as usize;
    assert!(
        sends as usize >= expected.len().div_ceil(block),
        "{}: {sends} sends for {} bytes in blocks of {block}",
        case.name,
        expected.len()
    );
    assert_clean(case.name, &stderr);
}

#[test]
fn transmit_ipv4_pending_head_range_tail_disconnect() {
    transmit(Case {
        name: "v4-pending",
        at: "127.0.0.1:0",
        mode: "pending",
        file_len: MIB + 10_000,
        offset: 4_097,
        length: MIB,
        head: "HEAD: transmit over IPv4\n",
        tail: "\nTAIL: end of IPv4",
        block_size: Some(16 << 10),
        disconnect: true,
        json: false,
    });
}

#[test]
fn transmit_ipv6_inline_head_range_tail_disconnect_json() {
    transmit(Case {
        name: "v6-inline",
        at: "[::1]:0",
        mode: "inline",
        file_len: MIB + 333,
        offset: 333,
        length: MIB,
        head: "head over IPv6 ",
        tail: " tail over IPv6",
        block_size: None,
        disconnect: true,
        json: true,
    });
}

#[test]
fn transmit_ipv4_inline_to_end_of_file_without_disconnect() {
    // No --disconnect: the peer's end of stream comes from wskctl's CLOSE.
    transmit(Case {
        name: "v4-inline-to-end",
        at: "127.0.0.1:0",
        mode: "inline",
        file_len: MIB + 77,
        offset: 77,
        length: 0,
        head: "h",
        tail: "t",
        block_size: Some(100_000),
        disconnect: false,
        json: false,
    });
}

#[test]
fn transmit_ipv6_pending_to_end_of_file_without_disconnect() {
    transmit(Case {
        name: "v6-pending-to-end",
        at: "[::1]:0",
        mode: "pending",
        file_len: MIB,
        offset: 0,
        length: 0,
        head: "",
        tail: "",
        block_size: Some(1 << 20),
        disconnect: false,
        json: true,
    });
}

#[test]
fn transmit_range_past_end_fails_with_end_of_file_and_closes() {
    for (at, mode) in [("127.0.0.1:0", "pending"), ("[::1]:0", "inline")] {
        let listener = TcpListener::bind(at).unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let (path, _) = pattern_file(&format!("eof-{mode}"), 1000);
        let path_arg = path.display().to_string();
        let mut child = Kill(Some(
            wskctl(
                mode,
                &[
                    "transmit", &target, "--file", &path_arg, "--offset", "900", "--length", "101",
                    "--head", "never",
                ],
            )
            .spawn()
            .unwrap(),
        ));
        // The socket is closed after the failure: the peer sees EOF, and no byte (the range
        // is checked before anything is sent).
        let (_, got) = accept_and_hash(&listener, &mut child);
        let out = child.finish();
        std::fs::remove_file(&path).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{at}: a range past the end succeeded"
        );
        assert!(got.is_empty(), "{at}: {} bytes sent", got.len());
        let prefix = format!("wskctl: transmit {target}: TRANSMIT_FILE: ");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains("0xC0000011")),
            "{at}: no STATUS_END_OF_FILE line: {stderr}"
        );
        assert_clean("transmit past the end", &stderr);
    }
}

#[test]
fn bad_completion_mode_is_refused() {
    let out = wskctl("sometimes", &["stats"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WSKCTL_NTSIM_COMPLETION=sometimes"));
}

#[test]
fn peer_runs_without_opening_the_driver() {
    // No --device none: `peer` must not load the driver (no verifier line is printed, since
    // the embedded device is never opened), and it must still work against a real client.
    let mut child = Kill(Some(
        wskctl(
            "pending",
            &[
                "peer",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--timeout-secs",
                "30",
            ],
        )
        .spawn()
        .unwrap(),
    ));
    let mut stdout = child.child().stdout.take().unwrap();
    // The first line is the listening address.
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while first.last() != Some(&b'\n') {
        let n = stdout.read(&mut byte).unwrap();
        assert_eq!(n, 1, "peer exited before printing its address");
        first.push(byte[0]);
    }
    let line = String::from_utf8(first).unwrap();
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    {
        let mut c = TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut c, b"to the peer").unwrap();
    }
    let out = child.finish();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "peer: {stderr}\n{line}{rest}");
    let hex: String = sha256(b"to the peer")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        rest.contains(&format!("received 11 bytes sha256 {hex}")),
        "bytes at the peer: {rest}"
    );
    assert!(
        !stderr.contains("verifier:"),
        "peer loaded the driver: {stderr}"
    );
}
