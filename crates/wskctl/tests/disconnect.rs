//! `wskctl connect --disconnect graceful|abortive` (issue 14, item 2): how the connection
//! ends, as a real Linux peer sees it. Graceful DISCONNECT: every byte, then end of stream
//! (FIN); abortive: a reset (RST); no flag: CLOSE alone, FIN. Embedded device (the driver's
//! source on the emulated kernel, real sockets); both completion paths; the verifier must
//! report no leak at unload. The same peer logic runs in the Wine lane (ci/windows-lane.sh).

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpListener;
use std::time::Instant;

use common::{success, wskctl, Kill, WAIT};

/// How the peer saw the connection end, and the bytes it read before.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Fin(usize),
    Rst(usize),
}

/// Accepts one connection (bounded) and reads until end of stream or reset.
fn accept_and_watch(listener: &TcpListener, child: &mut Kill) -> End {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
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
    let mut n = 0;
    let mut buf = vec![0u8; 65536];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return End::Fin(n),
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return End::Rst(n),
            Err(e) => panic!("peer read: {e}"),
        }
    }
}

fn run(mode: &str, extra: &[&str]) -> (End, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap().to_string();
    let text = "x".repeat(100_000);
    let mut args = vec!["connect", to.as_str(), "--text", text.as_str()];
    args.extend_from_slice(extra);
    let mut child = Kill(Some(wskctl(mode, &args).spawn().unwrap()));
    let end = accept_and_watch(&listener, &mut child);
    let out = child.finish();
    (end, success(&format!("connect {extra:?}"), &out))
}

#[test]
fn graceful_disconnect_is_a_fin_after_every_byte() {
    for mode in ["pending", "inline"] {
        let (end, stdout) = run(mode, &["--disconnect", "graceful"]);
        assert_eq!(end, End::Fin(100_000), "{mode}");
        assert!(
            stdout.contains("disconnected (Graceful) after 100000 bytes"),
            "{stdout}"
        );
    }
}

#[test]
fn abortive_disconnect_is_a_reset() {
    for mode in ["pending", "inline"] {
        let (end, stdout) = run(mode, &["--disconnect", "abortive"]);
        assert!(matches!(end, End::Rst(_)), "{mode}: {end:?}");
        assert!(stdout.contains("disconnected (Abortive)"), "{stdout}");
    }
}

#[test]
fn close_alone_is_a_fin() {
    for mode in ["pending", "inline"] {
        let (end, _) = run(mode, &[]);
        assert_eq!(end, End::Fin(100_000), "{mode}");
    }
}
