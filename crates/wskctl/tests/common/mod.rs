//! The harness the CLI tests share: run the wskctl binary on the embedded device, bound
//! every wait, and check the verifier verdict the device prints when the driver unloads.
#![allow(dead_code)]

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Bound on every wait of a CLI test.
pub const WAIT: Duration = Duration::from_secs(60);

/// The verdict the embedded device prints when it unloads the driver: nothing leaked.
pub const CLEAN: &str =
    "verifier: 0 live IRPs, 0 live MDLs, 0 live pool bytes, 0 live sockets, 0 violations";

/// The wskctl binary with `args`, on ntsim completion path `mode` (`pending`/`inline`).
pub fn wskctl(mode: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wskctl"));
    c.args(args)
        .env("WSKCTL_NTSIM_COMPLETION", mode)
        .env_remove("WSKCTL_QUIET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub fn assert_clean(what: &str, stderr: &str) {
    assert!(
        stderr.lines().any(|l| l == CLEAN),
        "wskctl {what}: verifier not clean: {stderr}"
    );
}

/// Kills the child if the test fails before it exits.
pub struct Kill(pub Option<Child>);

impl Kill {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// Waits (bounded) for the child to exit and returns its output.
    pub fn finish(mut self) -> Output {
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
/// reads it to end of stream (a read timeout fails the test: no EOF seen); returns the
/// peer's address and the bytes.
pub fn accept_and_hash(listener: &TcpListener, child: &mut Kill) -> (SocketAddr, Vec<u8>) {
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
    // read_to_end returns only at end of stream (FIN); a timeout is an error here.
    conn.read_to_end(&mut data)
        .expect("peer: end of stream (EOF) within the bound");
    (from, data)
}

/// Asserts wskctl exited 0 and its driver unloaded clean; returns stdout.
pub fn success(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wskctl {what}: {stderr}\n{stdout}");
    assert_clean(what, &stderr);
    stdout
}

/// A loopback port that is free for both TCP and UDP right now, drawn from below Linux's
/// ephemeral range (32768–60999 by default): a port the kernel picked for `bind(:0)` and
/// released could be taken by another test's outgoing connection before the program under
/// test binds it (seen as STATUS_ADDRESS_ALREADY_EXISTS under load); ports below the range
/// are never handed out as ephemeral ports. Bounded: panics after 2,000 taken candidates.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..2_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below the ephemeral range");
}
