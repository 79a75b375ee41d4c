//! Issue 4 through the console app on the embedded device (the driver's source on the
//! emulated kernel, real host sockets): `wskctl resolve` (RESOLVE), `wskctl connect` with
//! socket options (SET_OPTION + GET_OPTION) and `wskctl connect-ex` (CONNECT_WITH_DATA),
//! with the bytes checked at real std::net peers and the verifier's clean verdict checked
//! after every run.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// The verdict the embedded device prints when it unloads the driver: nothing leaked.
const CLEAN: &str =
    "verifier: 0 live IRPs, 0 live MDLs, 0 live pool bytes, 0 live sockets, 0 violations";

fn wskctl(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wskctl"));
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn assert_clean(what: &str, stderr: &str) {
    assert!(
        stderr.lines().any(|l| l == CLEAN),
        "wskctl {what}: verifier not clean: {stderr}"
    );
}

/// Asserts wskctl exited 0 and its driver unloaded clean; returns stdout.
fn success(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wskctl {what}: {stderr}\n{stdout}");
    assert_clean(what, &stderr);
    stdout
}

/// Kills the child if the test fails before it exits.
struct Kill(Option<Child>);

impl Kill {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// Waits (bounded) for the child to exit and returns its output.
    fn finish(mut self) -> Output {
        let mut child = self.0.take().unwrap();
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "wskctl did not exit within {WAIT:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::yield_now();
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Accepts one connection (bounded: fails if wskctl exits first or after [`WAIT`]) and
/// reads it to the end; returns the peer's address and the bytes.
fn accept_all(listener: &TcpListener, child: &mut Kill) -> (SocketAddr, Vec<u8>) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WAIT;
    let (mut conn, from): (TcpStream, SocketAddr) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(status) = child.child().try_wait().unwrap() {
                    panic!("wskctl exited before connecting: {status}");
                }
                assert!(Instant::now() < deadline, "wskctl did not connect");
                std::thread::yield_now();
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut data = Vec::new();
    conn.read_to_end(&mut data).unwrap();
    (from, data)
}

#[test]
fn resolve_localhost_prints_loopback_addresses() {
    let out = wskctl(&["resolve", "localhost"]).output().unwrap();
    let stdout = success("resolve localhost", &out);
    let addrs: Vec<IpAddr> = stdout.lines().map(|l| l.parse().unwrap()).collect();
    assert!(!addrs.is_empty(), "{stdout}");
    assert!(addrs.iter().all(|a| a.is_loopback()), "{stdout}");

    let out = wskctl(&["resolve", "::1", "--family", "6", "--json"])
        .output()
        .unwrap();
    let stdout = success("resolve ::1", &out);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["addresses"], serde_json::json!(["::1"]));
    assert_eq!(v["total"], 1);

    let out = wskctl(&["resolve", "--reverse", "127.0.0.1"])
        .output()
        .unwrap();
    let name = success("resolve --reverse 127.0.0.1", &out);
    let name = name.trim();
    assert!(!name.is_empty());
    // The name resolves back to 127.0.0.1 (the host's own name for it).
    let out = wskctl(&["resolve", name, "--family", "4"])
        .output()
        .unwrap();
    let back = success("resolve (name of 127.0.0.1)", &out);
    assert!(back.lines().any(|l| l == "127.0.0.1"), "{name} -> {back}");
}

#[test]
fn resolve_unknown_host_fails_with_status_no_match() {
    let out = wskctl(&["resolve", "no-such-host.invalid"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "resolve of an .invalid name succeeded"
    );
    assert!(out.stdout.is_empty());
    // WskGetAddressInfo: "STATUS_NO_MATCH: The host name cannot be resolved",
    // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info
    assert!(
        stderr
            .lines()
            .any(|l| l == "wskctl: resolve no-such-host.invalid: STATUS_NO_MATCH (0xC0000272)"),
        "{stderr}"
    );
    assert_clean("resolve no-such-host.invalid", &stderr);
}

fn connect_with_options(at: &str) {
    let listener = TcpListener::bind(at).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let text = format!("options over {at}");
    let mut child = Kill(Some(
        wskctl(&[
            "connect",
            &target,
            "--text",
            &text,
            "--nodelay",
            "--keepalive",
            "--sndbuf",
            "65536",
        ])
        .spawn()
        .unwrap(),
    ));
    let (from, data) = accept_all(&listener, &mut child);
    let out = child.finish();
    let stdout = success("connect --nodelay", &out);
    assert_eq!(data, text.as_bytes());
    for line in [
        "option TCP_NODELAY = 1",
        "option SO_KEEPALIVE = 1",
        "option SO_SNDBUF = 65536",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line}: {stdout}");
    }
    assert!(
        stdout.contains(&format!("sent {} bytes", text.len()))
            && stdout.contains(&format!("from {from} to {target}")),
        "{stdout}"
    );
}

#[test]
fn connect_with_socket_options_ipv4() {
    connect_with_options("127.0.0.1:0");
}

#[test]
fn connect_with_socket_options_ipv6() {
    connect_with_options("[::1]:0");
}

fn connect_ex(at: &str, data: &[u8], from_file: bool) {
    let listener = TcpListener::bind(at).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let file = std::env::temp_dir().join(format!(
        "wskctl-connect-ex-{}-{}",
        std::process::id(),
        data.len()
    ));
    let spec = if from_file {
        std::fs::write(&file, data).unwrap();
        format!("@{}", file.display())
    } else {
        String::from_utf8(data.to_vec()).unwrap()
    };
    let mut child = Kill(Some(
        wskctl(&["connect-ex", &target, "--data", &spec])
            .spawn()
            .unwrap(),
    ));
    let (from, got) = accept_all(&listener, &mut child);
    let out = child.finish();
    if from_file {
        std::fs::remove_file(&file).unwrap();
    }
    let stdout = success("connect-ex", &out);
    assert_eq!(got, data, "initial data at the peer");
    assert_eq!(
        stdout.trim(),
        format!(
            "connect-ex: sent {} bytes with the connect from {from} to {target}",
            data.len()
        )
    );
}

#[test]
fn connect_ex_text_ipv4() {
    connect_ex("127.0.0.1:0", b"hello from connect-ex", false);
}

#[test]
fn connect_ex_file_ipv6() {
    let data: Vec<u8> = (0..150u32).map(|i| (i * 7 + 3) as u8).collect();
    connect_ex("[::1]:0", &data, true);
}
