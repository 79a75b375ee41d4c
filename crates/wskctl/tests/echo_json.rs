//! `wskctl echo --json` through both front-ends: three concurrent clients echoed byte-exact
//! (checked here), one JSON summary whose idle-memory figures add up (ours = pool + driver
//! IRPs + socket object + table slot), the driver unloaded clean.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Child;
use std::sync::mpsc;
use std::time::Instant;

use common::{wskctl, Kill, WAIT};

/// Connects to `port` once wskctl listens (bounded; refused until then).
fn connect(port: u16, child: &mut Kill) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            return s;
        }
        if let Some(status) = child.child().try_wait().unwrap() {
            panic!("wskctl exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "wskctl did not listen on {port}");
        std::thread::yield_now();
    }
}

/// Reads wskctl's stderr on a thread: the receiver gets `()` at the line `echo: N clients
/// connected`; the thread returns all of it.
fn watch_stderr(child: &mut Child) -> (mpsc::Receiver<()>, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("echo: ") && line.ends_with(" clients connected") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, thread)
}

#[test]
fn echo_json_summary_with_idle_memory_through_both_frontends() {
    for frontend in ["wdm", "kmdf"] {
        let port = common::free_port();
        let mut child = Kill(Some(
            wskctl(
                "pending",
                &[
                    "--frontend",
                    frontend,
                    "echo",
                    &format!("127.0.0.1:{port}"),
                    "--clients",
                    "3",
                    "--threads",
                    "1",
                    "--json",
                ],
            )
            .spawn()
            .unwrap(),
        ));
        let (connected, stderr) = watch_stderr(child.child());
        let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(port, &mut child)).collect();
        // The idle figures are read when the last client is accepted; a client that sent
        // before that could have its connection busy (or closed) at that moment, and the
        // figures would not be those of idle connections.
        connected
            .recv_timeout(WAIT)
            .expect("echo: 3 clients connected");
        let data: Vec<Vec<u8>> = (0..3u8)
            .map(|i| {
                (0..20_000u32)
                    .map(|k| (k as u8) ^ i.wrapping_mul(91))
                    .collect()
            })
            .collect();
        for (s, d) in clients.iter_mut().zip(&data) {
            s.set_read_timeout(Some(WAIT)).unwrap();
            s.write_all(d).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        }
        for (s, d) in clients.iter_mut().zip(&data) {
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            assert!(&back == d, "{frontend}: echoed bytes differ");
        }
        let out = child.finish();
        let stderr = stderr.join().unwrap();
        assert!(out.status.success(), "wskctl echo --json: {stderr}");
        common::assert_clean("echo --json", &stderr);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let j: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        assert_eq!(j["served"], 3, "{frontend}: {j}");
        assert_eq!(j["failed"], 0, "{frontend}: {j}");
        assert_eq!(j["bytes"], 60_000, "{frontend}: {j}");
        let p = &j["idle_pool"];
        let f = |k: &str| {
            p[k].as_f64()
                .unwrap_or_else(|| panic!("{frontend}: no {k}: {j}"))
        };
        assert_eq!(p["connections"], 3);
        if frontend == "wdm" {
            // The idle RECEIVE is the user's own IRP, forwarded to WskReceive: no driver IRP,
            // no operation block, no IoCx context (tests/forwarded_irps.rs).
            assert_eq!(f("pool_bytes_per_connection"), 0.0, "{j}");
            assert_eq!(f("driver_irps_per_connection"), 0.0, "{j}");
        } else {
            assert!(f("pool_bytes_per_connection") > 0.0, "{j}");
            assert!(f("driver_irps_per_connection") >= 1.0, "{j}");
        }
        let sum = f("pool_bytes_per_connection")
            + f("driver_irp_bytes_per_connection")
            + f("socket_object_bytes")
            + f("table_slot_bytes");
        assert!((f("ours_bytes_per_connection") - sum).abs() < 1e-6, "{j}");
        let tags: f64 = p["pool_by_tag"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t[1].as_f64().unwrap())
            .sum();
        assert!((tags - f("pool_bytes_per_connection")).abs() < 1e-6, "{j}");
    }
}
