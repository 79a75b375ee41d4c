//! Issue 13, item 4: `wskctl echo --clients 10000` serves 10,000 concurrent connections from
//! a fixed number of completion threads, byte-exact. Two processes: wskctl (the driver on the
//! emulated kernel: 10,000 emulated sockets, each a host socket) and this test (10,000 real
//! client sockets). All 10,000 are connected at once before any sends; each client's bytes
//! come back checked here, then each half-closes and sees the server's end of stream. The
//! server reports its nonpaged memory per idle connection at the moment all are connected.
//!
//! Before issue 13 this failed: `--clients` stopped at 4,000 (one thread per client), and
//! the driver's socket table at 4,096 sockets per file object.
//!
//! File descriptors: each process needs about 10,000; the test raises its soft
//! RLIMIT_NOFILE to the hard limit (wskctl does the same for itself), and is SKIPPED, saying
//! so on stderr, when the hard limit is below what it needs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{wskctl, Kill, WAIT};

const CLIENTS: usize = 10_000;
const SIZE: usize = 2048;

fn payload(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            (i.wrapping_add(seed.wrapping_mul(7919))
                .wrapping_mul(2_654_435_761)
                >> 13) as u8
        })
        .collect()
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; `Err(hard)` if that is below `need`.
fn raise_nofile(need: u64) -> Result<(), u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    if r.rlim_max < need {
        return Err(r.rlim_max);
    }
    r.rlim_cur = r.rlim_max;
    // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
    Ok(())
}

/// The next stdout line of wskctl (bounded wait).
fn line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(WAIT)
        .unwrap_or_else(|e| panic!("wskctl echo: no {what} line within {WAIT:?}: {e}"))
}

#[test]
fn echo_serves_10000_concurrent_clients_byte_exact_from_two_threads() {
    let need = CLIENTS as u64 + 512;
    if let Err(hard) = raise_nofile(need) {
        eprintln!(
            "SKIPPED: 10,000 concurrent connections need {need} file descriptors per process; the hard RLIMIT_NOFILE is {hard}"
        );
        return;
    }
    let start = Instant::now();
    let mut child = Kill(Some(
        wskctl(
            "pending",
            &[
                "echo",
                "127.0.0.1:0",
                "--clients",
                &CLIENTS.to_string(),
                "--threads",
                "2",
                "--accepts",
                "64",
            ],
        )
        .spawn()
        .unwrap(),
    ));
    let stdout = child.child().stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let first = line(&lines, "listening");
    let addr: SocketAddr = first
        .strip_prefix("echo: listening on ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));

    // Every client connects before any sends.
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let s = match TcpStream::connect_timeout(&addr, WAIT) {
            Ok(s) => s,
            Err(e) => {
                // Say what the server said (it may have stopped accepting).
                let mut c = child.0.take().unwrap();
                let _ = c.kill();
                let out = c.wait_with_output().unwrap();
                panic!(
                    "client {i}: connect {addr}: {e}; wskctl: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        clients.push(s);
    }
    let connected_at = start.elapsed();
    // The server says so once it has accepted all of them, each with a RECEIVE in flight,
    // and has read its idle memory.
    let all = line(&lines, "all connected");
    assert_eq!(all, format!("echo: {CLIENTS} clients connected"));
    let mut idle = Vec::new();
    let ours: f64 = loop {
        let l = line(&lines, "idle memory");
        idle.push(l.clone());
        if let Some(rest) = l.split(" ours ").nth(1) {
            break rest.split(' ').next().unwrap().parse().unwrap();
        }
    };
    for _ in 0..64 {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(l) if l.starts_with("echo:   ") => idle.push(l),
            Ok(l) => panic!("unexpected line: {l}"),
            Err(_) => break,
        }
    }

    // Every client sends its own bytes (small enough for the socket buffers: no client
    // waits for another), then every client reads its echo back and checks every byte.
    for (i, s) in clients.iter_mut().enumerate() {
        s.write_all(&payload(i as u32 + 1, SIZE))
            .unwrap_or_else(|e| panic!("client {i}: send: {e}"));
    }
    let mut back = vec![0u8; SIZE];
    for (i, s) in clients.iter_mut().enumerate() {
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("client {i}: receive the echo: {e}"));
        assert!(
            back == payload(i as u32 + 1, SIZE),
            "client {i}: echoed bytes differ"
        );
    }
    // Our FIN, then the server's: end of stream, nothing extra.
    for s in &clients {
        s.shutdown(Shutdown::Write).unwrap();
    }
    for (i, s) in clients.iter_mut().enumerate() {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("client {i}: end of stream: {e}"));
        assert!(rest.is_empty(), "client {i}: {} extra bytes", rest.len());
    }
    drop(clients);
    let summary = line(&lines, "summary");
    let out = child.finish();
    reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wskctl echo: {stderr}\n{summary}");
    common::assert_clean("echo", &stderr);
    assert!(
        summary.starts_with(&format!(
            "echo: served {CLIENTS} clients (0 failed), echoed {} bytes on {addr}",
            CLIENTS * SIZE
        )),
        "{summary}"
    );
    // Reported, not asserted (issue 13's goal is <= 512 B of our pool per idle connection).
    eprintln!(
        "10,000 clients connected in {connected_at:?}; all echoed and closed in {:?}",
        start.elapsed()
    );
    for l in &idle {
        eprintln!("{l}");
    }
    assert!(ours > 0.0, "{idle:?}");
}
