//! Local TCP and UDP receivers that verify what the driver sent.
//!
//! Every wait is bounded: socket reads have timeouts, the TCP receiver has an
//! overall deadline, and waiting for results uses `recv_timeout` /
//! `Condvar::wait_timeout_while`. No sleeps.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::payload::verify_datagram;

/// What the TCP receiver got from its one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpReport {
    /// Bytes received before EOF.
    pub bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: [u8; 32],
    /// The connecting peer.
    pub peer: SocketAddr,
}

/// Accepts one TCP connection and reads it to EOF on a thread, hashing.
pub struct TcpReceiver {
    addr: SocketAddr,
    result: mpsc::Receiver<io::Result<TcpReport>>,
    received: Arc<AtomicU64>,
}

impl TcpReceiver {
    /// Listens on `addr` (port 0 = ephemeral). The reader fails with
    /// `TimedOut` when no byte arrives for `idle`, or when the connection is
    /// not finished within `deadline` of this call.
    pub fn bind(addr: SocketAddr, idle: Duration, deadline: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let (tx, result) = mpsc::sync_channel(1);
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        let end = Instant::now() + deadline;
        thread::Builder::new()
            .name("wskctl-tcp-rx".into())
            .spawn(move || {
                let outcome = listener
                    .accept()
                    .and_then(|(stream, peer)| read_to_end(stream, peer, idle, end, &counter));
                // The receiver may have given up waiting; nothing to do then.
                let _ = tx.send(outcome);
            })?;
        Ok(TcpReceiver {
            addr,
            result,
            received,
        })
    }

    /// The address to connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes received so far.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Gives up on the connection (e.g. the device never connected): unblocks a
    /// pending accept with a connection from this process so the thread ends.
    pub fn abandon(self) {
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }

    /// Waits at most `timeout` for EOF and returns what was received.
    ///
    /// Errors: `TimedOut` if the connection has not finished in time (a
    /// connection from this process then unblocks a pending accept so the
    /// thread ends), or the reader's I/O error.
    pub fn wait(self, timeout: Duration) -> io::Result<TcpReport> {
        match self.result.recv_timeout(timeout) {
            Ok(outcome) => outcome,
            Err(_) => {
                // Unblock `accept` if nobody ever connected; the reader then sees EOF.
                let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "TCP receiver on {} not finished after {timeout:?} ({} bytes so far)",
                        self.addr,
                        self.received.load(Ordering::Relaxed)
                    ),
                ))
            }
        }
    }
}

fn read_to_end(
    mut stream: TcpStream,
    peer: SocketAddr,
    idle: Duration,
    end: Instant,
    counter: &AtomicU64,
) -> io::Result<TcpReport> {
    stream.set_read_timeout(Some(idle))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut bytes = 0u64;
    loop {
        if Instant::now() > end {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TCP receiver deadline passed after {bytes} bytes"),
            ));
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TCP receiver idle for {idle:?} after {bytes} bytes"),
                ))
            }
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
        counter.store(bytes, Ordering::Relaxed);
    }
    Ok(TcpReport {
        bytes,
        sha256: hasher.finalize().into(),
        peer,
    })
}

/// What the UDP receiver got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdpReport {
    /// Datagrams matching the pattern, first copy of each sequence number.
    pub valid: u64,
    /// Bytes of the valid datagrams.
    pub bytes: u64,
    /// Datagrams not matching the pattern.
    pub invalid: u64,
    /// Valid datagrams whose sequence number was already seen.
    pub duplicates: u64,
    /// Sequence number → length, for each valid datagram.
    pub seen: BTreeMap<u64, usize>,
    /// The first pattern mismatch, for the report.
    pub first_error: Option<String>,
}

struct UdpShared {
    report: Mutex<UdpReport>,
    changed: Condvar,
    stop: AtomicBool,
}

/// Receives and verifies pattern datagrams ([`crate::payload::encode_datagram`])
/// on a thread.
pub struct UdpReceiver {
    addr: SocketAddr,
    shared: Arc<UdpShared>,
    thread: JoinHandle<io::Result<()>>,
}

/// How often the UDP reader re-checks its stop flag if the wake-up datagram
/// of [`UdpReceiver::finish`] were lost; bounds `finish`.
const UDP_POLL: Duration = Duration::from_millis(500);

impl UdpReceiver {
    /// Binds `addr` (port 0 = ephemeral) and starts reading.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(UDP_POLL))?;
        let addr = socket.local_addr()?;
        let shared = Arc::new(UdpShared {
            report: Mutex::new(UdpReport::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let state = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("wskctl-udp-rx".into())
            .spawn(move || udp_loop(&socket, &state))?;
        Ok(UdpReceiver {
            addr,
            shared,
            thread,
        })
    }

    /// The address to send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Valid datagrams received so far.
    pub fn valid(&self) -> u64 {
        lock(&self.shared.report).valid
    }

    /// Waits at most `timeout` until at least `count` valid datagrams have
    /// arrived; returns whether they did.
    pub fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let guard = lock(&self.shared.report);
        let (guard, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |r| r.valid < count)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.valid >= count
    }

    /// Stops the reader and returns its report. Bounded: an empty datagram
    /// wakes the reader at once, and its read timeout (500 ms) bounds the join
    /// should that datagram be lost.
    pub fn finish(self) -> io::Result<UdpReport> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let wake_from: SocketAddr = if self.addr.is_ipv4() {
            (std::net::Ipv4Addr::LOCALHOST, 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        if let Ok(waker) = UdpSocket::bind(wake_from) {
            let _ = waker.send_to(&[], self.addr);
        }
        let outcome = self
            .thread
            .join()
            .map_err(|_| io::Error::other("UDP receiver thread panicked"))?;
        outcome?;
        let report = lock(&self.shared.report).clone();
        Ok(report)
    }
}

fn lock(report: &Mutex<UdpReport>) -> std::sync::MutexGuard<'_, UdpReport> {
    report
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn udp_loop(socket: &UdpSocket, shared: &UdpShared) -> io::Result<()> {
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = socket.recv_from(&mut buf);
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = match received {
            Ok((n, _)) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            // ICMP port unreachable from an earlier send on Windows; not ours to judge.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => return Err(e),
        };
        let mut report = lock(&shared.report);
        match verify_datagram(&buf[..n]) {
            Ok(seq) => {
                if report.seen.insert(seq, n).is_some() {
                    report.duplicates += 1;
                } else {
                    report.valid += 1;
                    report.bytes += n as u64;
                }
            }
            Err(e) => {
                report.invalid += 1;
                if report.first_error.is_none() {
                    report.first_error = Some(e.to_string());
                }
            }
        }
        drop(report);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{encode_datagram, Payload};
    use std::io::Write;

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn tcp_receiver_hashes_what_a_client_sends() {
        let rx = TcpReceiver::bind("127.0.0.1:0".parse().unwrap(), T, T).unwrap();
        let payload = Payload::new(3, 300_000);
        let mut data = vec![0u8; 300_000];
        payload.fill(0, &mut data);
        let mut client = TcpStream::connect(rx.local_addr()).unwrap();
        for chunk in data.chunks(7_777) {
            client.write_all(chunk).unwrap();
        }
        let local = client.local_addr().unwrap();
        drop(client);
        let report = rx.wait(T).unwrap();
        assert_eq!(report.bytes, 300_000);
        assert_eq!(report.sha256, payload.sha256());
        assert_eq!(report.peer, local);
    }

    #[test]
    fn tcp_receiver_times_out_without_a_connection() {
        let rx = TcpReceiver::bind("127.0.0.1:0".parse().unwrap(), T, T).unwrap();
        let err = rx.wait(Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn tcp_receiver_abandon_ends_the_thread() {
        let rx = TcpReceiver::bind("127.0.0.1:0".parse().unwrap(), T, T).unwrap();
        let (tx, done) = mpsc::channel();
        let addr = rx.local_addr();
        rx.abandon();
        // The listener is closed once the thread has ended: connecting then fails.
        thread::spawn(move || {
            let mut refused = false;
            let start = Instant::now();
            while start.elapsed() < T && !refused {
                refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err();
            }
            let _ = tx.send(refused);
        });
        assert_eq!(done.recv_timeout(T * 2), Ok(true));
    }

    #[test]
    fn tcp_receiver_reports_idle_peer() {
        let rx = TcpReceiver::bind(
            "127.0.0.1:0".parse().unwrap(),
            Duration::from_millis(100),
            T,
        )
        .unwrap();
        let mut client = TcpStream::connect(rx.local_addr()).unwrap();
        client.write_all(b"abc").unwrap();
        // Keep the connection open without sending: the reader's idle timeout fires.
        let err = rx.wait(T).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[test]
    fn udp_receiver_verifies_datagrams() {
        let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut d = Vec::new();
        for seq in 0..50u64 {
            encode_datagram(seq, 8 + seq as usize * 10, &mut d);
            tx.send_to(&d, rx.local_addr()).unwrap();
            // Flow control as in the demo: a bounded window in flight.
            assert!(rx.wait_for(seq + 1, T), "datagram {seq} not received");
        }
        // A duplicate and a corrupt datagram.
        encode_datagram(3, 38, &mut d);
        tx.send_to(&d, rx.local_addr()).unwrap();
        d[20] ^= 0xFF;
        tx.send_to(&d, rx.local_addr()).unwrap();
        // A datagram too short to carry a sequence number, then one more valid
        // one to know the previous ones were processed (same socket, in order).
        tx.send_to(&[1, 2, 3], rx.local_addr()).unwrap();
        encode_datagram(50, 8, &mut d);
        tx.send_to(&d, rx.local_addr()).unwrap();
        assert!(rx.wait_for(51, T));
        let report = rx.finish().unwrap();
        assert_eq!(report.valid, 51);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.invalid, 2);
        assert_eq!(report.seen.len(), 51);
        assert_eq!(report.seen[&49], 8 + 490);
        assert_eq!(
            report.bytes,
            (0..50u64).map(|s| 8 + s * 10).sum::<u64>() + 8
        );
        assert!(report.first_error.unwrap().contains("datagram 3"));
    }

    #[test]
    fn udp_wait_for_is_bounded() {
        let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(!rx.wait_for(1, Duration::from_millis(20)));
        assert_eq!(rx.finish().unwrap(), UdpReport::default());
    }
}
