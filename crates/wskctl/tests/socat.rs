//! Real peers not written by us: socat, installed by `.ci/run` from Debian, receives what
//! `wskctl` sends through the driver (embedded device: the driver's source on the emulated
//! kernel, real sockets).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wskctl::payload::{encode_datagram, verify_datagram};

fn socat() -> Command {
    assert!(
        Command::new("socat")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok(),
        "socat is required (apt-get install socat; .ci/run installs it)"
    );
    Command::new("socat")
}

/// Waits (bounded) until a local socket on `port` is in `state` in /proc/net/{proto}
/// (0A = TCP LISTEN, 07 = UDP bound). This observes socat's own socket; not a timed sleep.
fn wait_for_socket(proto: &str, port: u16, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let suffix = format!(":{port:04X}");
    loop {
        let table = std::fs::read_to_string(format!("/proc/net/{proto}")).unwrap_or_default();
        let found = table.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&suffix) && f[3] == state
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "socat did not open {proto} port {port}"
        );
        std::thread::yield_now();
    }
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wskctl-socat-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&d);
    d
}

fn wskctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wskctl"));
    c.env("WSKCTL_QUIET", "1");
    c
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn connect_sends_a_file_to_socat() {
    let src = temp("src.bin");
    let dst = temp("dst.bin");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let port = common::free_port();
    let mut peer = Kill(
        socat()
            .args([
                "-u",
                &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
                &format!("OPEN:{},creat,trunc", dst.display()),
            ])
            .spawn()
            .unwrap(),
    );
    wait_for_socket("tcp", port, "0A");
    let out = wskctl()
        .args([
            "connect",
            &format!("127.0.0.1:{port}"),
            "--file",
            src.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wskctl connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // socat -u exits at the end of the connection's data.
    let deadline = Instant::now() + Duration::from_secs(20);
    while peer.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "socat did not finish");
        std::thread::yield_now();
    }
    let got = std::fs::read(&dst).unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes received by socat differ");
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&dst);
}

#[test]
fn sendto_datagrams_to_socat() {
    for fixed in [false, true] {
        let dst = temp(if fixed { "udp-fixed.bin" } else { "udp.bin" });
        let port = common::free_port();
        // 64 datagrams fit socat's receive buffer even if socat does not read until the last
        // one arrived (Linux's default rmem 212,992 bytes; a 512-byte loopback datagram's
        // truesize is at most about 2.3 KiB), so a loaded machine cannot make UDP drop one
        // (200 did: socat once wrote only 191 of them under load average 10).
        let (count, size) = (64usize, 512usize);
        let peer = Kill(
            socat()
                .args([
                    "-u",
                    &format!("UDP-RECV:{port},bind=127.0.0.1"),
                    &format!("OPEN:{},creat,trunc", dst.display()),
                ])
                .spawn()
                .unwrap(),
        );
        wait_for_socket("udp", port, "07");
        let mut args = vec![
            "sendto".to_string(),
            format!("127.0.0.1:{port}"),
            "--count".into(),
            count.to_string(),
            "--size".into(),
            size.to_string(),
        ];
        if fixed {
            args.push("--fixed-remote".into());
        }
        let out = wskctl().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "wskctl sendto: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Wait (bounded) until socat has written every datagram.
        let len = || std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while len() < (count * size) as u64 {
            assert!(Instant::now() < deadline, "socat received {} bytes", len());
            std::thread::yield_now();
        }
        drop(peer);
        let got = std::fs::read(&dst).unwrap();
        assert_eq!(got.len(), count * size);
        let mut want = Vec::new();
        for (i, d) in got.chunks(size).enumerate() {
            assert_eq!(
                verify_datagram(d).unwrap(),
                i as u64,
                "datagram order and content"
            );
            encode_datagram(i as u64, size, &mut want);
            assert_eq!(d, &want[..]);
        }
        let _ = std::fs::remove_file(&dst);
    }
}
