//! The server-side IOCTLs through the console app: `wskctl echo` (a driver-side echo server,
//! OPEN_LISTEN + ACCEPT + RECEIVE + SEND + CLOSE as overlapped requests on a completion port,
//! two threads for every client; `echo_10k.rs` takes it to 10,000 clients) and
//! `wskctl listen` / `wskctl recv`, against real std::net peers whose bytes are checked here.
//! Embedded device: the driver's source on the emulated kernel, real host sockets.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(30);

/// Waits (bounded) until a local TCP socket on `port` is in LISTEN (0A) in /proc/net/tcp:
/// observes wskctl's (the emulated driver's) listening socket; not a timed sleep.
fn wait_for_listen(port: u16, child: &mut Child) {
    let deadline = Instant::now() + WAIT;
    let suffix = format!(":{port:04X}");
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let found = table.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&suffix) && f[3] == "0A"
        });
        if found {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("wskctl exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "wskctl did not listen on {port}");
        std::thread::yield_now();
    }
}

/// The verdict the embedded device prints when it unloads the driver: nothing leaked.
const CLEAN: &str =
    "verifier: 0 live IRPs, 0 live MDLs, 0 live pool bytes, 0 live sockets, 0 violations";

fn wskctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wskctl"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Asserts wskctl exited 0 and its driver unloaded clean; returns stdout.
fn success(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wskctl {what}: {stderr}\n{stdout}");
    assert!(
        stderr.lines().any(|l| l == CLEAN),
        "wskctl {what}: verifier not clean: {stderr}"
    );
    stdout
}

/// Kills the child if the test fails before it exits.
struct Kill(Option<Child>);

impl Kill {
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

/// A barrier whose wait is bounded: `arrive_and_wait` panics if not every party arrived
/// within [`WAIT`].
struct Gate {
    left: Mutex<usize>,
    all_in: Condvar,
}

impl Gate {
    fn new(parties: usize) -> Self {
        Gate {
            left: Mutex::new(parties),
            all_in: Condvar::new(),
        }
    }

    fn arrive_and_wait(&self, what: &str) {
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        *left -= 1;
        if *left == 0 {
            self.all_in.notify_all();
            return;
        }
        let (left, timeout) = self
            .all_in
            .wait_timeout_while(left, WAIT, |l| *l > 0)
            .unwrap_or_else(|p| p.into_inner());
        assert!(
            !timeout.timed_out() || *left == 0,
            "{what}: {} parties missing after {WAIT:?}",
            *left
        );
    }
}

fn payload(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            (i.wrapping_add(seed.wrapping_mul(7919))
                .wrapping_mul(2_654_435_761)
                >> 13) as u8
        })
        .collect()
}

#[test]
fn echo_serves_100_concurrent_clients_byte_exact() {
    const CLIENTS: usize = 100;
    const SIZE: usize = 10 * 1024;
    let port = common::free_port();
    let mut child = Kill(Some(
        wskctl()
            .args([
                "echo",
                &format!("127.0.0.1:{port}"),
                "--clients",
                &CLIENTS.to_string(),
            ])
            .spawn()
            .unwrap(),
    ));
    wait_for_listen(port, child.0.as_mut().unwrap());
    // Every client connects before any sends, and keeps its connection open until every
    // client has its echo back: only a server holding all 100 connections at once passes
    // (a one-client-at-a-time server fails the second gate).
    let connected = Arc::new(Gate::new(CLIENTS));
    let echoed = Arc::new(Gate::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (connected, echoed) = (connected.clone(), echoed.clone());
            std::thread::spawn(move || {
                let data = payload(i as u32 + 1, SIZE);
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                s.set_write_timeout(Some(WAIT)).unwrap();
                connected.arrive_and_wait("connected");
                s.write_all(&data).unwrap();
                let mut back = vec![0u8; SIZE];
                s.read_exact(&mut back).unwrap();
                assert!(back == data, "client {i}: echoed bytes differ");
                echoed.arrive_and_wait("echoed");
                s.shutdown(Shutdown::Write).unwrap();
                // After our FIN the server closes: end of stream, nothing extra.
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "client {i}: {} extra bytes", rest.len());
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    let stdout = success("echo", &child.finish());
    assert!(
        stdout.contains(&format!(
            "served {CLIENTS} clients (0 failed), echoed {} bytes",
            CLIENTS * SIZE
        )),
        "{stdout}"
    );
}

#[test]
fn listen_accepts_one_client_and_reports_its_addresses_and_bytes() {
    let port = common::free_port();
    let mut child = Kill(Some(
        wskctl()
            .args(["listen", &format!("127.0.0.1:{port}")])
            .spawn()
            .unwrap(),
    ));
    wait_for_listen(port, child.0.as_mut().unwrap());
    let data = payload(42, 300_000);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_local = s.local_addr().unwrap();
    s.write_all(&data).unwrap();
    drop(s);
    let stdout = success("listen", &child.finish());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(&*format!("listening on 127.0.0.1:{port}"))
    );
    // GetAcceptExSockaddrs counterpart: both ends of the connection as the peer saw them.
    assert_eq!(
        lines.get(1).copied(),
        Some(&*format!(
            "accepted: local 127.0.0.1:{port} remote {client_local}"
        ))
    );
    let sha: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        lines.get(2).copied(),
        Some(&*format!(
            "received {} bytes sha256 {sha} from {client_local}",
            data.len()
        ))
    );
}

#[test]
fn recv_receives_until_the_peer_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = payload(7, 1_000_000);
    let expected = data.clone();
    let peer = std::thread::spawn(move || {
        let (mut s, from) = listener.accept().unwrap();
        s.write_all(&data).unwrap();
        from
    });
    let child = Kill(Some(
        wskctl()
            .args(["recv", &format!("127.0.0.1:{port}")])
            .spawn()
            .unwrap(),
    ));
    let stdout = success("recv", &child.finish());
    let from = peer.join().unwrap();
    let sha: String = Sha256::digest(&expected)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        stdout.trim_end(),
        format!(
            "received {} bytes sha256 {sha} from 127.0.0.1:{port} on {from}",
            expected.len()
        )
    );
}
