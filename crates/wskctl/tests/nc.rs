//! `wskctl nc` against real servers the tests start themselves, on the embedded device (the
//! driver's source on the emulated kernel, real host sockets), on both ntsim completion
//! paths (`WSKCTL_NTSIM_COMPLETION`); every run ends with the verifier's clean verdict and
//! every server is stopped (Drop guards kill python, threads are joined).
//!
//! - HTTP: Python's `http.server` serves a file of random bytes; an HTTP/1.0 GET piped
//!   through `nc` must come back byte-exact (sha256 of the body), which needs the graceful
//!   half-close at stdin EOF to leave receiving working.
//! - UDP: a std UdpSocket responder must see the datagram and its answer must be printed;
//!   a silent responder gives `timeout` and exit 1.
//! - `--listen`: a std client connects, both directions byte-exact.
//! - The peer closing first ends nc although stdin stays open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use sha2::{Digest, Sha256};

mod common;
use common::*;

const MODES: [&str; 3] = ["pending", "inline", "provider"];

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Kills and reaps a server process on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `len` random bytes (xorshift64*, seeded from the clock and pid: different every run).
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ (u64::from(std::process::id()) << 32)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Starts `python3 -m http.server` on an ephemeral loopback port serving `dir`; returns the
/// guard and the port (read from its banner, bounded by [`WAIT`]).
fn http_server(dir: &std::path::Path) -> (Server, u16) {
    let mut child = Command::new("python3")
        .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("http.server banner");
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    let port = line
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("http.server banner: {line:?}"));
    (server, port)
}

/// [`Kill::finish`], reading stdout and stderr meanwhile (a response larger than the pipe
/// would otherwise block wskctl).
fn finish_draining(mut child: Kill) -> std::process::Output {
    fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    }
    let stdout = drain(child.child().stdout.take().unwrap());
    let stderr = drain(child.child().stderr.take().unwrap());
    let mut out = child.finish();
    out.stdout = stdout.join().unwrap();
    out.stderr = stderr.join().unwrap();
    out
}

/// The `--json` summary line of wskctl's stderr.
fn summary(stderr: &str) -> serde_json::Value {
    let line = stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no --json summary: {stderr}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn http_get_through_nc_is_byte_exact() {
    let dir = std::env::temp_dir().join(format!("wskctl-nc-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = random_bytes(3 << 20);
    std::fs::write(dir.join("blob.bin"), &body).unwrap();
    let (server, port) = http_server(&dir);
    let target = format!("127.0.0.1:{port}");
    for mode in MODES {
        let mut child = Kill(Some(
            wskctl(mode, &["nc", &target, "--json"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
        let request = b"GET /blob.bin HTTP/1.0\r\nHost: localhost\r\n\r\n";
        {
            let mut stdin = child.child().stdin.take().unwrap();
            stdin.write_all(request).unwrap();
        } // EOF: nc half-closes and keeps receiving until the server closes.
        let out = finish_draining(child);
        let stdout = out.stdout.clone();
        let _ = success(&format!("nc http ({mode})"), &out);
        let split = stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{mode}: no HTTP header in {} bytes", stdout.len()));
        let head = String::from_utf8_lossy(&stdout[..split]);
        assert!(head.starts_with("HTTP/1.0 200"), "{mode}: {head}");
        assert!(
            head.lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("content-length: {}", body.len()))),
            "{mode}: {head}"
        );
        let got = &stdout[split + 4..];
        assert_eq!(got.len(), body.len(), "{mode}: body length");
        assert_eq!(sha256_hex(got), sha256_hex(&body), "{mode}: body sha256");
        let s = summary(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(s["mode"], "tcp");
        assert_eq!(s["remote"], target.as_str());
        assert_eq!(s["bytes_sent"], request.len() as u64);
        assert_eq!(s["bytes_received"], stdout.len() as u64);
        assert_eq!(s["sha256_received"], sha256_hex(&stdout).as_str());
        assert_eq!(s["half_close"], "STATUS_SUCCESS (0x00000000)");
        assert_eq!(s["receive_end"], "peer closed");
        assert_eq!(s["ok"], true);
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A UDP responder thread: answers each datagram with `answer:` + the datagram reversed,
/// `count` times; returns what it received.
fn udp_responder(count: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let addr = socket.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 65_536];
        for _ in 0..count {
            let (n, from) = socket
                .recv_from(&mut buf)
                .expect("datagram within the bound");
            let mut answer = b"answer:".to_vec();
            answer.extend(buf[..n].iter().rev());
            socket.send_to(&answer, from).unwrap();
            seen.push(buf[..n].to_vec());
        }
        seen
    });
    (addr, thread)
}

#[test]
fn udp_query_gets_its_answer() {
    for mode in MODES {
        // --data: one datagram.
        let (addr, responder) = udp_responder(1);
        let target = addr.to_string();
        let child = Kill(Some(
            wskctl(
                mode,
                &["nc", "--udp", &target, "--data", "question", "--json"],
            )
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        ));
        let out = child.finish();
        let stdout = success(&format!("nc --udp --data ({mode})"), &out);
        assert_eq!(responder.join().unwrap(), vec![b"question".to_vec()]);
        assert_eq!(stdout, "answer:noitseuq", "{mode}");
        let s = summary(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(s["mode"], "udp");
        assert_eq!(
            (s["sends"].as_u64(), s["receives"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            (s["bytes_sent"].as_u64(), s["bytes_received"].as_u64()),
            (Some(8), Some(15))
        );
        assert_eq!(s["ok"], true);

        // stdin: one write, one read, one datagram.
        let (addr, responder) = udp_responder(1);
        let target = addr.to_string();
        let mut child = Kill(Some(
            wskctl(mode, &["nc", "--udp", &target])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
        child
            .child()
            .stdin
            .take()
            .unwrap()
            .write_all(b"ping 42")
            .unwrap();
        let out = child.finish();
        let stdout = success(&format!("nc --udp stdin ({mode})"), &out);
        assert_eq!(responder.join().unwrap(), vec![b"ping 42".to_vec()]);
        assert_eq!(stdout, "answer:24 gnip", "{mode}");
    }
}

#[test]
fn udp_without_reply_times_out() {
    for mode in MODES {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        silent.set_read_timeout(Some(WAIT)).unwrap();
        let target = silent.local_addr().unwrap().to_string();
        let started = Instant::now();
        let child = Kill(Some(
            wskctl(
                mode,
                &[
                    "nc",
                    "--udp",
                    &target,
                    "--data",
                    "hello?",
                    "--timeout-ms",
                    "300",
                    "--json",
                ],
            )
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        ));
        let out = child.finish();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert_clean("nc --udp timeout", &stderr);
        assert!(
            started.elapsed().as_millis() >= 300,
            "{mode}: returned before the timeout"
        );
        let mut buf = [0u8; 64];
        let (n, _) = silent.recv_from(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"hello?",
            "{mode}: the datagram reached the peer"
        );
        let s = summary(&stderr);
        assert_eq!(s["receive_end"], "timeout");
        assert_eq!(s["close"], "STATUS_SUCCESS (0x00000000)");
        assert_eq!(s["ok"], false);
        assert!(out.stdout.is_empty());
    }
}

/// Reads wskctl's stderr on a thread: forwards the `listening on ADDR` address, returns
/// all of it at the end.
fn watch_stderr(
    child: &mut Child,
) -> (mpsc::Receiver<SocketAddr>, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.parse().unwrap());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, thread)
}

#[test]
fn listen_accepts_one_connection_both_directions() {
    for (mode, at) in [("pending", "127.0.0.1:0"), ("inline", "[::1]:0")] {
        let mut child = Kill(Some(
            wskctl(
                mode,
                &["nc", "--listen", at, "--data", "from the driver", "--json"],
            )
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        ));
        let (addr, stderr) = watch_stderr(child.child());
        let addr = addr.recv_timeout(WAIT).expect("listening on ...");
        let mut peer = TcpStream::connect(addr).unwrap();
        peer.set_read_timeout(Some(WAIT)).unwrap();
        peer.write_all(b"from the peer").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got)
            .expect("EOF from nc's half-close");
        assert_eq!(got, b"from the driver", "{mode}");
        let out = child.finish();
        let stderr = stderr.join().unwrap();
        assert!(out.status.success(), "{mode}: {stderr}");
        assert_clean("nc --listen", &stderr);
        assert_eq!(out.stdout, b"from the peer", "{mode}");
        let s = summary(&stderr);
        assert_eq!(s["mode"], "tcp-listen");
        assert_eq!(s["remote"], peer.local_addr().unwrap().to_string().as_str());
        assert_eq!(s["local"], addr.to_string().as_str());
    }
}

#[test]
fn peer_close_ends_nc_while_stdin_stays_open() {
    for mode in MODES {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let mut child = Kill(Some(
            wskctl(mode, &["nc", &target])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
        let stdin = child.child().stdin.take().unwrap(); // held open until after exit
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + WAIT;
        let mut conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        child.child().try_wait().unwrap().is_none(),
                        "{mode}: nc exited"
                    );
                    assert!(Instant::now() < deadline, "{mode}: nc did not connect");
                    std::thread::yield_now();
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.write_all(b"bye").unwrap();
        drop(conn);
        let out = child.finish();
        drop(stdin);
        let stdout = success(&format!("nc peer close ({mode})"), &out);
        assert_eq!(stdout, "bye", "{mode}");
    }
}
