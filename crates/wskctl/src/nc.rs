//! `wskctl nc`: a netcat through the driver.
//!
//! - TCP (default): OPEN_STREAM to `HOST:PORT` (or, with `--listen ADDR`, OPEN_LISTEN +
//!   one ACCEPT), then stdin (or `--data`) goes out by SEND and what RECEIVE returns goes to
//!   stdout. At the end of the input nc half-closes with a graceful DISCONNECT
//!   (`WskDisconnect` without `WSK_FLAG_ABORTIVE`: the FIN goes out after the queued data)
//!   and keeps receiving; it exits when the peer closes (RECEIVE returns 0 bytes), then
//!   CLOSEs the socket.
//! - UDP (`--udp`): OPEN_DATAGRAM on the wildcard address of the target's family; each stdin
//!   read (or `--data`) is one SEND_TO datagram, after which nc waits up to `--timeout-ms`
//!   for a reply (RECEIVE_FROM) and writes every datagram it receives to stdout. A reply
//!   that does not come in time ends the session with status `timeout` (exit 1); CLOSE then
//!   cancels the pending RECEIVE_FROM.
//!
//! Stdout carries only the peer's bytes; progress lines (`listening on ...`) and the
//! `--json` summary go to stderr, so `wskctl nc host:80 < request > response` keeps the
//! response byte-exact.
//!
//! Half-close and the contract: DISCONNECT (docs/ioctl.md) is the only send-side shutdown
//! the IOCTL surface has. On the host emulation a graceful `WskDisconnect` is
//! `shutdown(SHUT_WR)` and RECEIVE keeps working after it (tests/nc.rs); that a RECEIVE
//! after a graceful `WskDisconnect` keeps delivering on Windows is the WSK documentation's
//! model of a graceful disconnect, not observed here.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wskclient_ioctl::{SocketHandle, MAX_SEND_TO_BYTES};

use crate::cli::{parse_target, wildcard_for};
use crate::client::{Client, Error, NtStatus};

/// Bytes per stdin read and per RECEIVE of `nc` over TCP.
const CHUNK: usize = 64 << 10;

/// `nc` arguments.
#[derive(Debug, Args)]
pub struct NcArgs {
    /// Remote HOST:PORT (names resolved here, in user mode). Not with `--listen`.
    #[arg(value_parser = parse_target, required_unless_present = "listen", conflicts_with = "listen")]
    pub target: Option<SocketAddr>,
    /// Listen on ADDR:PORT (port 0 = ephemeral; the address goes to stderr) and accept one
    /// connection (TCP only).
    #[arg(long, value_parser = parse_target, conflicts_with = "udp")]
    pub listen: Option<SocketAddr>,
    /// UDP: SEND_TO one datagram per stdin read (or `--data`), RECEIVE_FROM the replies.
    #[arg(long)]
    pub udp: bool,
    /// Send TEXT instead of reading stdin (UDP: one datagram).
    #[arg(long)]
    pub data: Option<String>,
    /// UDP: how long to wait for the reply to each datagram, in milliseconds.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
    /// Print a JSON summary to stderr at the end: bytes each way, addresses, statuses.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` summary (one line on stderr).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// `tcp`, `tcp-listen` or `udp`.
    pub mode: &'static str,
    /// Local address of the socket (`null` when the provider cannot tell it).
    pub local: Option<String>,
    /// The peer (TCP) or the target (UDP).
    pub remote: Option<String>,
    /// Bytes handed to SEND / SEND_TO and reported sent.
    pub bytes_sent: u64,
    /// Bytes RECEIVE / RECEIVE_FROM returned (written to stdout).
    pub bytes_received: u64,
    /// SHA-256 of the bytes received, hex.
    pub sha256_received: String,
    /// SEND or SEND_TO requests that succeeded.
    pub sends: u64,
    /// UDP: datagrams received; TCP: RECEIVE requests that returned bytes.
    pub receives: u64,
    /// TCP: the graceful DISCONNECT's status at the end of the input (`null` if not reached).
    pub half_close: Option<String>,
    /// How receiving ended: `peer closed`, `timeout` (UDP), or the failing status.
    pub receive_end: String,
    /// The first SEND / SEND_TO error, if any.
    pub send_error: Option<String>,
    /// CLOSE's status.
    pub close: Option<String>,
    /// Whether the session succeeded (the exit code is 0 exactly then).
    pub ok: bool,
}

enum Event {
    Input(Vec<u8>),
    InputEnd(Option<io::Error>),
    Received(Vec<u8>),
    /// RECEIVE returned 0 bytes (TCP) or failed; `None` = peer closed gracefully.
    ReceiveEnd(Option<Error>),
    Datagram(Vec<u8>),
}

fn status_text(r: &Result<(), Error>) -> String {
    match r {
        Ok(()) => NtStatus(0).to_string(),
        Err(e) => e.to_string(),
    }
}

/// Feeds `Event::Input` from stdin (one event per read) or `--data`. Stdin is read on a
/// detached thread: a blocking read cannot be interrupted, and nc exits when the peer
/// closes even while stdin stays open (as netcat does).
fn start_input(data: Option<&str>, max: usize, tx: mpsc::Sender<Event>) {
    if let Some(d) = data {
        if !d.is_empty() {
            let _ = tx.send(Event::Input(d.as_bytes().to_vec()));
        }
        let _ = tx.send(Event::InputEnd(None));
        return;
    }
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut buf = vec![0u8; max];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send(Event::InputEnd(None));
                    return;
                }
                Ok(n) => {
                    if tx.send(Event::Input(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Event::InputEnd(Some(e)));
                    return;
                }
            }
        }
    });
}

/// Runs `wskctl nc`: the peer's bytes go to `out`, the rest to stderr.
///
/// Errors: opening, listening or accepting failed (the driver's status), or writing `out`.
/// A session that ends badly after the socket is up (reset, timeout, send failure) is
/// `Ok(ExitCode::FAILURE)` with the reason on stderr (and in the `--json` summary).
pub fn command(
    client: &Client<'_>,
    args: &NcArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let summary = if args.udp {
        let target = args.target.context("--udp needs HOST:PORT")?;
        udp(client, args, target, out)?
    } else {
        tcp(client, args, out)?
    };
    if args.json {
        eprintln!("{}", serde_json::to_string(&summary)?);
    }
    Ok(if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn tcp(client: &Client<'_>, args: &NcArgs, out: &mut dyn Write) -> anyhow::Result<Summary> {
    let (socket, mode) = match (args.listen, args.target) {
        (Some(local), _) => {
            let listener = client
                .open_listen(local)
                .with_context(|| format!("listen {local}"))?;
            eprintln!("listening on {}", listener.local);
            let accepted = client
                .accept(listener.handle)
                .with_context(|| format!("accept {}", listener.local));
            let closed = client
                .close(listener.handle)
                .with_context(|| format!("close {}", listener.local));
            let socket = accepted?;
            closed?;
            eprintln!(
                "accepted {} on {}",
                socket.remote,
                socket
                    .local
                    .map_or_else(|| "(local address unknown)".into(), |a| a.to_string())
            );
            (socket, "tcp-listen")
        }
        (None, Some(target)) => (
            client
                .open_stream(target)
                .with_context(|| format!("connect {target}"))?,
            "tcp",
        ),
        (None, None) => anyhow::bail!("nc needs HOST:PORT or --listen ADDR"),
    };
    let mut summary = Summary {
        mode,
        local: socket.local.map(|a| a.to_string()),
        remote: Some(socket.remote.to_string()),
        ..Summary::default()
    };
    let handle = socket.handle;
    let (tx, rx) = mpsc::channel();
    let mut hasher = Sha256::new();
    let written = std::thread::scope(|scope| -> io::Result<()> {
        let receiver_tx = tx.clone();
        // Input first: `--data` is queued here, synchronously, ahead of anything the receive
        // thread reports. Started after it, a peer that sent and closed at once could have
        // its end of stream handled before the `--data` bytes were queued, and nc ended
        // without sending them.
        start_input(args.data.as_deref(), CHUNK, tx);
        let c = *client;
        let receiver = scope.spawn(move || receive_loop(&c, handle, &receiver_tx));
        let mut written = Ok(());
        let mut input_open = true;
        let mut sending = true;
        let end = loop {
            let Ok(event) = rx.recv() else {
                break None;
            };
            match event {
                Event::Input(data) if sending => {
                    match send_all(client, handle, &data) {
                        Ok(()) => {
                            summary.bytes_sent += data.len() as u64;
                            summary.sends += 1;
                        }
                        Err(e) => {
                            // Stop sending; keep receiving what the peer still sends.
                            summary.send_error = Some(e.to_string());
                            sending = false;
                        }
                    }
                }
                Event::Input(_) => {}
                Event::InputEnd(err) if input_open => {
                    input_open = false;
                    if let Some(e) = err {
                        eprintln!("wskctl: nc: read stdin: {e}");
                        summary.send_error.get_or_insert(format!("stdin: {e}"));
                    }
                    if sending {
                        let r = client.disconnect(handle, false);
                        summary.half_close = Some(status_text(&r));
                    }
                }
                Event::InputEnd(_) => {}
                Event::Received(data) => {
                    summary.bytes_received += data.len() as u64;
                    summary.receives += 1;
                    hasher.update(&data);
                    if written.is_ok() {
                        written = out.write_all(&data).and_then(|()| out.flush());
                    }
                }
                Event::ReceiveEnd(e) => break Some(e),
                Event::Datagram(_) => {}
            }
        };
        // CLOSE cancels a RECEIVE still pending (its thread then ends with
        // STATUS_CANCELLED), so the join below is bounded.
        let closed = client.close(handle);
        summary.close = Some(status_text(&closed));
        let _ = receiver.join();
        summary.receive_end = match &end {
            Some(None) => "peer closed".into(),
            Some(Some(e)) => e.to_string(),
            None => "receiver ended".into(),
        };
        summary.ok = matches!(end, Some(None))
            && summary.send_error.is_none()
            && closed.is_ok()
            && summary
                .half_close
                .as_deref()
                .is_none_or(|s| s.starts_with("STATUS_SUCCESS"));
        written
    });
    summary.sha256_received = hex(&hasher.finalize());
    report_failure(&summary);
    written.context("write stdout")?;
    Ok(summary)
}

fn report_failure(summary: &Summary) {
    if summary.ok {
        return;
    }
    eprintln!(
        "wskctl: nc {}: receive ended: {}; send error: {}; half-close: {}; close: {}",
        summary.remote.as_deref().unwrap_or("?"),
        summary.receive_end,
        summary.send_error.as_deref().unwrap_or("none"),
        summary.half_close.as_deref().unwrap_or("not reached"),
        summary.close.as_deref().unwrap_or("not reached"),
    );
}

/// SEND until all of `data` went out.
fn send_all(client: &Client<'_>, handle: SocketHandle, data: &[u8]) -> Result<(), Error> {
    let mut done = 0;
    while done < data.len() {
        let k = client.send(handle, &data[done..])?;
        if k == 0 {
            return Err(Error::BadInformation {
                operation: wskclient_ioctl::Operation::Send,
                information: 0,
                len: data.len() - done,
            });
        }
        done += k;
    }
    Ok(())
}

fn receive_loop(client: &Client<'_>, handle: SocketHandle, tx: &mpsc::Sender<Event>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match client.receive(handle, &mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::ReceiveEnd(None));
                return;
            }
            Ok(n) => {
                if tx.send(Event::Received(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Event::ReceiveEnd(Some(e)));
                return;
            }
        }
    }
}

fn udp(
    client: &Client<'_>,
    args: &NcArgs,
    target: SocketAddr,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    let local = wildcard_for(&target);
    let socket = client
        .open_datagram(local)
        .with_context(|| format!("open_datagram {local}"))?;
    let mut summary = Summary {
        mode: "udp",
        local: Some(socket.local.to_string()),
        remote: Some(target.to_string()),
        ..Summary::default()
    };
    let handle = socket.handle;
    let timeout = Duration::from_millis(args.timeout_ms);
    let (tx, rx) = mpsc::channel();
    let mut hasher = Sha256::new();
    let written = std::thread::scope(|scope| -> io::Result<()> {
        let receiver_tx = tx.clone();
        let c = *client;
        let receiver = scope.spawn(move || {
            let mut buf = vec![0u8; MAX_SEND_TO_BYTES];
            loop {
                match c.receive_from(handle, &mut buf) {
                    Ok((n, _from)) => {
                        if receiver_tx
                            .send(Event::Datagram(buf[..n].to_vec()))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = receiver_tx.send(Event::ReceiveEnd(Some(e)));
                        return;
                    }
                }
            }
        });
        start_input(args.data.as_deref(), MAX_SEND_TO_BYTES, tx);
        let mut written = Ok(());
        let mut take = |data: Vec<u8>, summary: &mut Summary| {
            summary.bytes_received += data.len() as u64;
            summary.receives += 1;
            hasher.update(&data);
            if written.is_ok() {
                written = out.write_all(&data).and_then(|()| out.flush());
            }
        };
        let mut outcome: Result<(), String> = Ok(());
        'session: loop {
            let Ok(event) = rx.recv() else {
                outcome = Err("receiver ended".into());
                break;
            };
            match event {
                Event::Input(data) => {
                    if let Err(e) = client.send_to(handle, Some(target), &data) {
                        summary.send_error = Some(e.to_string());
                        outcome = Err("send failed".into());
                        break;
                    }
                    summary.bytes_sent += data.len() as u64;
                    summary.sends += 1;
                    // One reply per datagram, within the timeout. The end of the input
                    // may arrive meanwhile: the session ends after this reply.
                    let mut input_done = false;
                    loop {
                        match rx.recv_timeout(timeout) {
                            Ok(Event::Datagram(d)) => {
                                take(d, &mut summary);
                                break;
                            }
                            Ok(Event::ReceiveEnd(e)) => {
                                outcome = Err(
                                    e.map_or_else(|| "receiver ended".into(), |e| e.to_string())
                                );
                                break 'session;
                            }
                            Ok(Event::InputEnd(e)) => {
                                if let Some(e) = e {
                                    summary.send_error = Some(format!("stdin: {e}"));
                                }
                                input_done = true;
                            }
                            Ok(_) => {}
                            Err(_) => {
                                outcome = Err("timeout".into());
                                break 'session;
                            }
                        }
                    }
                    if input_done {
                        break;
                    }
                }
                Event::InputEnd(e) => {
                    if let Some(e) = e {
                        summary.send_error = Some(format!("stdin: {e}"));
                    }
                    break;
                }
                Event::Datagram(d) => take(d, &mut summary),
                Event::ReceiveEnd(e) => {
                    outcome = Err(e.map_or_else(|| "receiver ended".into(), |e| e.to_string()));
                    break;
                }
                Event::Received(_) => {}
            }
        }
        // CLOSE cancels the pending RECEIVE_FROM (STATUS_CANCELLED), ending the receiver.
        let closed = client.close(handle);
        summary.close = Some(status_text(&closed));
        let _ = receiver.join();
        summary.ok = outcome.is_ok() && summary.send_error.is_none() && closed.is_ok();
        summary.receive_end = match outcome {
            Ok(()) => "input ended".into(),
            Err(e) => e,
        };
        written
    });
    summary.sha256_received = hex(&hasher.finalize());
    report_failure(&summary);
    written.context("write stdout")?;
    Ok(summary)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["wskctl", "nc"].into_iter().chain(args.iter().copied()))
    }

    #[test]
    fn nc_arguments() {
        let Command::Nc(a) = parse(&["127.0.0.1:80", "--json"]).unwrap().command else {
            panic!("not nc")
        };
        assert_eq!(a.target, Some("127.0.0.1:80".parse().unwrap()));
        assert!(a.json && !a.udp && a.listen.is_none() && a.data.is_none());
        assert_eq!(a.timeout_ms, 5_000);
        let Command::Nc(a) = parse(&["--listen", "[::1]:0"]).unwrap().command else {
            panic!("not nc")
        };
        assert_eq!(
            (a.target, a.listen),
            (None, Some("[::1]:0".parse().unwrap()))
        );
        let Command::Nc(a) = parse(&["--udp", "127.0.0.1:53", "--data", "q", "--timeout-ms", "7"])
            .unwrap()
            .command
        else {
            panic!("not nc")
        };
        assert!(a.udp);
        assert_eq!((a.data.as_deref(), a.timeout_ms), (Some("q"), 7));
        assert!(parse(&[]).is_err(), "HOST:PORT or --listen");
        assert!(parse(&["127.0.0.1:1", "--listen", "127.0.0.1:0"]).is_err());
        assert!(parse(&["--udp", "--listen", "127.0.0.1:0"]).is_err());
        assert!(parse(&["--udp", "127.0.0.1:1", "--timeout-ms", "0"]).is_err());
    }
}
