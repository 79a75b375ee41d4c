//! `wskctl demo`: drive every operation against local receivers and verify
//! every byte.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use serde::Serialize;
use wskclient_ioctl::StatsResponse;

use crate::client::Client;
use crate::payload::{demo_datagram_size, encode_datagram, send_sizes, Payload};
use crate::progress::Progress;
use crate::receiver::UdpReceiver;

/// Demo parameters.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Stream payload size in bytes (per address family).
    pub bytes: u64,
    /// Datagrams per phase (explicit address, then fixed remote).
    pub datagrams: u64,
    /// Seed of the payload and size schedules.
    pub seed: u64,
    /// Largest single SEND in bytes.
    pub max_send: usize,
    /// Datagrams in flight before the sender waits for the receiver.
    pub window: u64,
    /// Bound on every wait (receiver idle time, result waits).
    pub timeout: Duration,
    /// Draw progress bars (after a second).
    pub progress: bool,
    /// Report a failed IPv6 OPEN_STREAM as skipped (with its status), for WSK providers
    /// without IPv6 (Wine 8.0's netio.sys passes 16-byte sockaddr lengths to bind/connect).
    /// Without it only `STATUS_NOT_IMPLEMENTED`/`STATUS_NOT_SUPPORTED` are skipped.
    pub ipv6_optional: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            bytes: 4 << 20,
            datagrams: 1_000,
            seed: 0x5753_4B43_4C49_454E, // "WSKCLIEN"
            max_send: 64 << 10,
            window: 64,
            timeout: Duration::from_secs(30),
            progress: false,
            ipv6_optional: false,
        }
    }
}

/// One row of the summary.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OpResult {
    /// What was exercised, e.g. `stream send`.
    pub operation: String,
    /// `IPv4`, `IPv6` or `-`.
    pub family: String,
    /// Bytes sent by the driver.
    pub bytes: u64,
    /// Requests (sends / datagrams).
    pub count: u64,
    /// `yes`, `no` or `skipped`.
    pub verified: String,
    /// Wall time of the sending part, seconds.
    pub seconds: f64,
    /// `bytes / seconds` in MiB/s.
    pub mib_per_s: f64,
    /// Explanation (errors, mismatches, skip reason).
    pub detail: String,
}

impl OpResult {
    fn new(operation: &str, family: &str) -> Self {
        OpResult {
            operation: operation.into(),
            family: family.into(),
            bytes: 0,
            count: 0,
            verified: "no".into(),
            seconds: 0.0,
            mib_per_s: 0.0,
            detail: String::new(),
        }
    }

    fn timed(mut self, elapsed: Duration) -> Self {
        self.seconds = elapsed.as_secs_f64();
        if self.seconds > 0.0 {
            self.mib_per_s = self.bytes as f64 / self.seconds / (1024.0 * 1024.0);
        }
        self
    }

    /// Whether the row counts as a failure.
    pub fn failed(&self) -> bool {
        self.verified == "no"
    }
}

/// The demo's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    /// No row failed.
    pub ok: bool,
    /// One row per part.
    pub results: Vec<OpResult>,
}

impl DemoReport {
    /// The summary as an aligned text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:<6} {:>12} {:>7} {:<8} {:>10}  detail",
            "operation", "family", "bytes", "count", "verified", "MiB/s"
        );
        for r in &self.results {
            let _ = writeln!(
                out,
                "{:<28} {:<6} {:>12} {:>7} {:<8} {:>10.1}  {}",
                r.operation, r.family, r.bytes, r.count, r.verified, r.mib_per_s, r.detail
            );
        }
        let _ = write!(out, "{}", if self.ok { "demo: OK" } else { "demo: FAILED" });
        out
    }
}

/// Runs the demo on `client`: stream over IPv4 (and IPv6 when `[::1]` can be
/// bound), datagrams with explicit and fixed remote address, and a stats
/// cross-check. Never fails as a whole; failures are rows with `verified = no`.
pub fn run(client: &Client<'_>, options: &DemoOptions) -> DemoReport {
    let before = client.stats().ok();
    let mut results = vec![stream_part(
        client,
        options,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        "IPv4",
    )];
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
    match TcpListener::bind(v6) {
        Ok(probe) => {
            drop(probe);
            results.push(stream_part(client, options, v6, "IPv6"));
        }
        Err(e) => {
            let mut row = OpResult::new("open_stream+send+close", "IPv6");
            row.verified = "skipped".into();
            row.detail = format!("[::1] unavailable: {e}");
            results.push(row);
        }
    }
    results.extend(datagram_part(client, options));
    results.push(stats_part(client, before.as_ref(), &results));
    DemoReport {
        ok: results.iter().all(|r| !r.failed()),
        results,
    }
}

fn stream_part(
    client: &Client<'_>,
    options: &DemoOptions,
    bind: SocketAddr,
    family: &str,
) -> OpResult {
    let mut row = OpResult::new("open_stream+send+close", family);
    // The platform's peer is the receiver (Linux: accept + getpeername; Windows: AcceptEx +
    // GetAcceptExSockaddrs), so the driver's local address is checked against what the
    // peer saw.
    let mut receiver = match crate::peer::Server::start(crate::peer::ServeOptions {
        listen: bind,
        connections: 1,
        idle: options.timeout,
        ..crate::peer::ServeOptions::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            row.detail = format!("receiver: {e}");
            return row;
        }
    };
    let target = receiver.local_addr();
    let payload = Payload::new(options.seed ^ bind.is_ipv6() as u64, options.bytes);
    let start = Instant::now();
    // Never connected: nothing to wait for (dropping the server ends its accept).
    let Some((sent, local)) = send_stream(client, options, target, &payload, &mut row) else {
        return row;
    };
    row.bytes = sent;
    let mut row = row.timed(start.elapsed());
    match receiver.next(options.timeout) {
        Ok(report) => {
            let expected = payload.sha256();
            let complete = sent == options.bytes && row.detail.is_empty();
            let address = match local {
                Some(local) if local != report.remote => Some(format!(
                    "driver's local address {local} but the peer saw {}",
                    report.remote
                )),
                _ => None,
            };
            if let Some(mismatch) = address.filter(|_| row.detail.is_empty()) {
                row.detail = mismatch;
            } else if complete && report.bytes == options.bytes && report.sha256 == expected {
                row.verified = "yes".into();
                row.detail = format!(
                    "sha256 {} at the {} peer from {}{}",
                    hex(&report.sha256[..8]),
                    if cfg!(windows) { "AcceptEx" } else { "accept" },
                    report.remote,
                    if local.is_some() {
                        " (= driver's local address)"
                    } else {
                        ""
                    }
                );
            } else if row.detail.is_empty() {
                row.detail = format!(
                    "received {} of {} bytes, sha256 {} expected {}",
                    report.bytes,
                    options.bytes,
                    hex(&report.sha256[..8]),
                    hex(&expected[..8])
                );
            }
        }
        Err(e) if row.detail.is_empty() => row.detail = format!("receiver: {e}"),
        Err(_) => {}
    }
    row
}

/// Opens, sends the payload in varied sizes, closes; returns bytes sent and the driver's
/// local address (None when OPEN_STREAM failed) and records the first error in
/// `row.detail`.
fn send_stream(
    client: &Client<'_>,
    options: &DemoOptions,
    target: SocketAddr,
    payload: &Payload,
    row: &mut OpResult,
) -> Option<(u64, Option<SocketAddr>)> {
    let socket = match client.open_stream(target) {
        Ok(s) => s,
        Err(e) if target.is_ipv6() && (options.ipv6_optional || provider_lacks_it(&e)) => {
            row.verified = "skipped".into();
            row.detail =
                format!("skipped: provider fails IPv6 stream sockets (connect {target}: {e})");
            return None;
        }
        Err(e) => {
            row.detail = format!("connect {target}: {e}");
            return None;
        }
    };
    let mut progress = Progress::new(
        payload.len,
        &format!("stream {}", row.family),
        options.progress,
    );
    let mut buf = vec![0u8; options.max_send];
    let mut offset = 0u64;
    let mut sent = 0u64;
    'sends: for size in send_sizes(options.seed, payload.len, options.max_send) {
        let chunk = &mut buf[..size];
        payload.fill(offset, chunk);
        let mut done = 0;
        while done < size {
            match client.send(socket.handle, &chunk[done..]) {
                Ok(0) => {
                    row.detail = format!("send returned 0 bytes at offset {offset}");
                    break 'sends;
                }
                Ok(n) => {
                    done += n;
                    sent += n as u64;
                    row.count += 1;
                    progress.inc(n as u64);
                }
                Err(e) => {
                    row.detail = format!("send at offset {}: {e}", offset + done as u64);
                    break 'sends;
                }
            }
        }
        offset += size as u64;
    }
    progress.finish();
    if let Err(e) = client.close(socket.handle) {
        if row.detail.is_empty() {
            row.detail = format!("close: {e}");
        }
    }
    Some((sent, socket.local))
}

fn datagram_part(client: &Client<'_>, options: &DemoOptions) -> Vec<OpResult> {
    let mut explicit = OpResult::new("open_datagram+send_to", "IPv4");
    let mut fixed = OpResult::new("set_remote+send_to(fixed)", "IPv4");
    let receiver = match UdpReceiver::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))) {
        Ok(r) => r,
        Err(e) => {
            explicit.detail = format!("receiver: {e}");
            fixed.detail = explicit.detail.clone();
            return vec![explicit, fixed];
        }
    };
    let target = receiver.local_addr();
    let n = options.datagrams;
    let mut elapsed = [Duration::ZERO; 2];
    match client.open_datagram(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))) {
        Err(e) if provider_lacks_it(&e) => {
            // A provider without datagram sockets (Wine 8.0's netio.sys): not a failure of
            // the driver, and never a pass.
            for row in [&mut explicit, &mut fixed] {
                row.verified = "skipped".into();
                row.detail =
                    format!("skipped: provider lacks datagram sockets (open_datagram: {e})");
            }
            drop(receiver.finish());
            return vec![explicit, fixed];
        }
        Err(e) => explicit.detail = format!("open_datagram: {e}"),
        Ok(socket) => {
            let start = Instant::now();
            send_datagrams(
                client,
                options,
                &receiver,
                socket.handle,
                Some(target),
                0..n,
                &mut explicit,
            );
            elapsed[0] = start.elapsed();
            let start = Instant::now();
            match client.set_remote(socket.handle, Some(target)) {
                Ok(()) => send_datagrams(
                    client,
                    options,
                    &receiver,
                    socket.handle,
                    None,
                    n..2 * n,
                    &mut fixed,
                ),
                Err(e) => fixed.detail = format!("set_remote {target}: {e}"),
            }
            elapsed[1] = start.elapsed();
            if let Err(e) = client.close(socket.handle) {
                fixed.detail.push_str(&format!(" close: {e}"));
            }
        }
    }
    if fixed.detail.is_empty() && explicit.detail.is_empty() {
        // Everything was sent; give the last datagrams time to land (bounded).
        receiver.wait_for(2 * n, options.timeout);
    }
    let report = match receiver.finish() {
        Ok(r) => r,
        Err(e) => {
            explicit.detail = format!("receiver: {e}");
            return vec![explicit.timed(elapsed[0]), fixed.timed(elapsed[1])];
        }
    };
    for (row, range) in [(&mut explicit, 0..n), (&mut fixed, n..2 * n)] {
        if !row.detail.is_empty() {
            continue;
        }
        let missing = range
            .clone()
            .filter(|s| !report.seen.contains_key(s))
            .count();
        let wrong_len = range
            .clone()
            .filter(|s| {
                report
                    .seen
                    .get(s)
                    .is_some_and(|&len| len != demo_datagram_size(*s))
            })
            .count();
        if missing == 0 && wrong_len == 0 && report.invalid == 0 && report.duplicates == 0 {
            row.verified = "yes".into();
            row.detail = format!(
                "{} datagrams to {target}, each verified",
                range.end - range.start
            );
        } else {
            row.detail = format!(
                "missing {missing}, wrong length {wrong_len}, invalid {} ({}), duplicates {}",
                report.invalid,
                report.first_error.as_deref().unwrap_or("-"),
                report.duplicates
            );
        }
    }
    let explicit = explicit.timed(elapsed[0]);
    let fixed = fixed.timed(elapsed[1]);
    vec![explicit, fixed]
}

fn send_datagrams(
    client: &Client<'_>,
    options: &DemoOptions,
    receiver: &UdpReceiver,
    handle: wskclient_ioctl::SocketHandle,
    remote: Option<SocketAddr>,
    seqs: std::ops::Range<u64>,
    row: &mut OpResult,
) {
    let mut datagram = Vec::with_capacity(2048);
    for seq in seqs {
        // Flow control: at most `window` datagrams in flight, so the receiver's
        // socket buffer never overflows on loopback.
        let sent_total = seq;
        if sent_total >= options.window
            && !receiver.wait_for(sent_total - options.window + 1, options.timeout)
        {
            row.detail = format!(
                "receiver stalled: {} datagrams after {seq} sent",
                receiver.valid()
            );
            return;
        }
        encode_datagram(seq, demo_datagram_size(seq), &mut datagram);
        match client.send_to(handle, remote, &datagram) {
            Ok(n) if n == datagram.len() => {
                row.count += 1;
                row.bytes += n as u64;
            }
            Ok(n) => {
                row.detail = format!("datagram {seq}: sent {n} of {} bytes", datagram.len());
                return;
            }
            Err(e) => {
                let to = remote.map_or("fixed remote".to_string(), |a| a.to_string());
                row.detail = format!("send_to {to} (datagram {seq}): {e}");
                return;
            }
        }
    }
}

fn stats_part(client: &Client<'_>, before: Option<&StatsResponse>, rows: &[OpResult]) -> OpResult {
    let mut row = OpResult::new("query_stats", "-");
    let after = match client.stats() {
        Ok(s) => s,
        Err(e) => {
            row.detail = format!("query_stats: {e}");
            return row;
        }
    };
    let Some(before) = before else {
        row.detail = "first query_stats failed".into();
        return row;
    };
    let stream: u64 = rows
        .iter()
        .filter(|r| r.operation.starts_with("open_stream"))
        .map(|r| r.bytes)
        .sum();
    let datagrams: u64 = rows
        .iter()
        .filter(|r| r.operation.contains("send_to"))
        .map(|r| r.count)
        .sum();
    let d_bytes = after.bytes_sent.wrapping_sub(before.bytes_sent);
    let d_datagrams = after.datagrams_sent.wrapping_sub(before.datagrams_sent);
    row.bytes = d_bytes;
    row.count = d_datagrams;
    // Other clients of a real device may add to the counters: at least ours.
    if d_bytes >= stream && d_datagrams >= datagrams {
        row.verified = "yes".into();
    }
    row.detail = format!(
        "bytes_sent +{d_bytes} (ours {stream}), datagrams_sent +{d_datagrams} (ours {datagrams}), connects +{}, fallbacks +{}, live_sockets {}",
        after.connects.wrapping_sub(before.connects),
        after.connect_fallbacks.wrapping_sub(before.connect_fallbacks),
        after.live_sockets
    );
    row
}

/// Whether `e` says the WSK provider does not implement the operation
/// (`STATUS_NOT_IMPLEMENTED` or `STATUS_NOT_SUPPORTED`), as opposed to the driver or the
/// network failing it. Such parts are reported as skipped, never as passed.
pub fn provider_lacks_it(e: &crate::client::Error) -> bool {
    use wskclient_ioctl::status::{STATUS_NOT_IMPLEMENTED, STATUS_NOT_SUPPORTED};
    matches!(
        e.status(),
        Some(STATUS_NOT_IMPLEMENTED | STATUS_NOT_SUPPORTED)
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
