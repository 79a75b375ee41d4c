//! The Linux peer (`wskctl::peer`): the accept server's addresses, each sender byte-exact
//! at an independent std::net reader, shutdown seen as end of stream, and the driver
//! (embedded device, both ntsim completion paths) connecting to the peer server, which
//! checks the driver's local address with getpeername. IPv4 and IPv6.

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use ntsim::config::CompletionMode;
use sha2::{Digest, Sha256};
use wskctl::client::Client;
use wskctl::payload::Payload;
use wskctl::peer::{self, Ending, SendMethod, SendOptions, ServeOptions, Server};

const WAIT: Duration = Duration::from_secs(30);

fn families() -> Vec<SocketAddr> {
    let mut v = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    // IPv6 loopback is required: a machine without it fails here rather than passing
    // silently.
    TcpListener::bind(v6).expect("[::1] must be available for the IPv6 half");
    v.push(v6);
    v
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    Payload::new(seed, len as u64).fill(0, &mut d);
    d
}

fn sha(d: &[u8]) -> [u8; 32] {
    Sha256::digest(d).into()
}

struct Temp(PathBuf);
impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> Temp {
    let p = std::env::temp_dir().join(format!("wskctl-peer-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    Temp(p)
}

#[test]
fn accept_server_reports_the_clients_addresses_and_bytes() {
    for bind in families() {
        let mut server = Server::start(ServeOptions {
            listen: bind,
            connections: 2,
            echo: true,
            greeting: b"hello".to_vec(),
            idle: WAIT,
            ..ServeOptions::default()
        })
        .unwrap();
        let at = server.local_addr();
        assert_eq!(at.ip(), bind.ip());
        assert_ne!(at.port(), 0);
        for round in 0..2u64 {
            let payload = data(round, 300_001);
            let mut client = TcpStream::connect(at).unwrap();
            client.set_read_timeout(Some(WAIT)).unwrap();
            let mine = client.local_addr().unwrap();
            let mut greeting = [0u8; 5];
            client.read_exact(&mut greeting).unwrap();
            assert_eq!(&greeting, b"hello");
            let reader = {
                let mut c = client.try_clone().unwrap();
                std::thread::spawn(move || {
                    let mut back = Vec::new();
                    c.read_to_end(&mut back).map(|_| back)
                })
            };
            for chunk in payload.chunks(9_999) {
                client.write_all(chunk).unwrap();
            }
            client.shutdown(Shutdown::Write).unwrap();
            let c = server.next(WAIT).unwrap();
            assert_eq!(c.local, at, "getsockname of the accepted socket");
            assert_eq!(c.remote, mine, "getpeername = the client's own address");
            assert!(c.addresses_agree);
            assert_eq!(c.accepted_with, "accept+getsockname/getpeername");
            assert_eq!((c.bytes, c.sha256), (payload.len() as u64, sha(&payload)));
            assert_eq!(c.sent_back, 5 + payload.len() as u64);
            // The echo came back whole, then the server's end of stream.
            let back = reader.join().unwrap().unwrap();
            assert_eq!(back, payload);
        }
        // Both connections reported: the server has nothing more.
        assert!(server.next(Duration::from_millis(10)).is_err());
    }
}

/// An independent reader: accepts one connection, reads to EOF, then writes `ack` back
/// (so the sender can only finish if its side was half-closed, not closed) and closes.
fn reader(
    bind: SocketAddr,
    ack: &'static [u8],
) -> (SocketAddr, mpsc::Receiver<(Vec<u8>, SocketAddr)>) {
    let l = TcpListener::bind(bind).unwrap();
    let at = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(ack).unwrap();
        let _ = tx.send((got, peer));
    });
    (at, rx)
}

#[test]
fn every_linux_sender_is_byte_exact_and_ends_with_shutdown() {
    let payload = data(7, 2_500_003);
    let file = temp_file("senders", &payload);
    for bind in families() {
        for method in [
            SendMethod::Sendfile,
            SendMethod::Writev,
            SendMethod::Sendmmsg,
            SendMethod::Write,
        ] {
            for initial in [0u32, 1000] {
                let (at, rx) = reader(bind, b"ack");
                let report = peer::send_file(
                    &file.0,
                    &SendOptions {
                        to: at,
                        method,
                        initial,
                        ending: Ending::Shutdown,
                        timeout: WAIT,
                    },
                )
                .unwrap_or_else(|e| panic!("{method:?} {bind}: {e}"));
                let (got, peer) = rx.recv_timeout(WAIT).unwrap();
                assert_eq!(got.len(), payload.len(), "{method:?} {bind}");
                assert_eq!(sha(&got), sha(&payload), "{method:?} {bind}");
                assert_eq!(report.local, peer, "getsockname = what the reader accepted");
                assert_eq!(report.remote, at, "getpeername");
                assert_eq!(report.bytes, payload.len() as u64);
                assert_eq!(report.initial, u64::from(initial));
                // The reader saw EOF (shutdown) while our socket stayed open for its ack.
                assert_eq!(report.received, 3);
                assert_eq!(report.ending, "shutdown");
                assert!(report.calls >= 1);
                if method == SendMethod::Write {
                    assert!(report.calls >= (payload.len() as u64 - 1000) / (64 << 10));
                }
            }
        }
    }
}

#[test]
fn windows_only_methods_and_endings_are_refused_on_linux() {
    let file = temp_file("refused", b"x");
    let (at, _rx) = reader(SocketAddr::from(([127, 0, 0, 1], 0)), b"");
    for (method, ending) in [
        (SendMethod::TransmitFile, Ending::Shutdown),
        (SendMethod::TransmitPackets, Ending::Shutdown),
        (SendMethod::Sendfile, Ending::DisconnectExReuse),
    ] {
        let e = peer::send_file(
            &file.0,
            &SendOptions {
                to: at,
                method,
                initial: 0,
                ending,
                timeout: WAIT,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::Unsupported,
            "{method:?} {ending:?}"
        );
    }
    // Unblock the reader (it accepts once).
    let _ = TcpStream::connect(at);
}

#[test]
fn the_driver_connects_to_the_peer_which_verifies_its_local_address() {
    for mode in [CompletionMode::Pending, CompletionMode::Inline] {
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        let device = wskctl::embedded::open(wskctl::cli::Frontend::Wdm).unwrap();
        {
            let client = Client::new(device.as_ref());
            for bind in families() {
                let mut server = Server::start(ServeOptions {
                    listen: bind,
                    idle: WAIT,
                    ..ServeOptions::default()
                })
                .unwrap();
                let payload = data(mode as u64 ^ bind.is_ipv6() as u64, 1_000_000);
                let socket = client.open_stream(server.local_addr()).unwrap();
                for chunk in payload.chunks(65_536) {
                    let mut done = 0;
                    while done < chunk.len() {
                        done += client.send(socket.handle, &chunk[done..]).unwrap();
                    }
                }
                client.close(socket.handle).unwrap();
                let c = server.next(WAIT).unwrap();
                // OPEN_STREAM's addresses against the peer's getsockname/getpeername.
                assert_eq!(socket.remote, c.local, "{mode:?} {bind}");
                assert_eq!(socket.local, Some(c.remote), "{mode:?} {bind}");
                assert_eq!((c.bytes, c.sha256), (payload.len() as u64, sha(&payload)));
            }
        }
        drop(device);
        scope.assert_clean();
    }
}

#[test]
fn peer_subcommands_serve_and_send_without_a_driver() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let payload = data(11, 777_777);
    let file = temp_file("cli", &payload);
    // `--device none`: no driver is loaded; the peer never needs one. The server bounds
    // its own waits (--timeout-secs).
    let mut serve = Command::new(env!("CARGO_BIN_EXE_wskctl"))
        .args(["--device", "none", "peer", "serve", "--listen", "[::1]:0"])
        .args(["--connections", "1", "--timeout-secs", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let at = first
        .strip_prefix("peer: listening on ")
        .unwrap()
        .to_string();
    let send = Command::new(env!("CARGO_BIN_EXE_wskctl"))
        .args([
            "--device", "none", "peer", "send", "--to", &at, "--method", "sendmmsg",
        ])
        .arg("--file")
        .arg(&file.0)
        .output()
        .unwrap();
    let sent = String::from_utf8_lossy(&send.stdout);
    assert!(
        send.status.success(),
        "{sent} {}",
        String::from_utf8_lossy(&send.stderr)
    );
    assert!(
        sent.starts_with("sent 777777 bytes (0 with connect) via sendmmsg"),
        "{sent}"
    );
    let from = sent
        .split(" from ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let accepted = lines.next().unwrap().unwrap();
    assert!(serve.wait().unwrap().success());
    let want = format!(
        "remote {from} via accept+getsockname/getpeername (getsockname/getpeername agree); \
         initial 0 bytes; received 777777 bytes sha256 {}",
        peer::hex(&sha(&payload))
    );
    assert!(accepted.contains(&want), "{accepted}\nwant {want}");
    assert!(
        accepted.starts_with(&format!("accepted: local {at} ")),
        "{accepted}"
    );
}
