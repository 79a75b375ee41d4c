//! The per-IOCTL hot path of both front-ends (issue 13): the code decoded once, direct-method
//! inputs parsed in place, buffered inputs copied without a zero fill, and the QUERY_STATS
//! counters sharded per processor. What is observable from user mode is checked here: every
//! malformed input still gets its documented status, and the counters stay exact when
//! requests run on several (modelled) processors at once.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Barrier;
use std::time::Duration;

use ntsim::iomgr::UserHandle;

#[macro_use]
mod frontend;
use frontend::{close, ioctl, load, open_stream, stats, Frontend};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

fn open_datagram(h: &UserHandle) -> SocketHandle {
    let (s, out) = ioctl(
        h,
        IOCTL_WSKCLIENT_OPEN_DATAGRAM,
        OpenDatagramRequest::new(&"127.0.0.1:0".parse().unwrap()).as_bytes(),
        48,
    );
    assert_eq!(s.status, STATUS_SUCCESS, "OPEN_DATAGRAM");
    OpenDatagramResponse::read_from_bytes(&out).unwrap().handle
}

/// `bytes` with `extra` more bytes of `fill` after them.
fn padded(bytes: &[u8], extra: usize, fill: u8) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.resize(bytes.len() + extra, fill);
    v
}

/// Malformed inputs around every boundary the front-ends' input handling has: empty, shorter
/// than the header, shorter than the request, one byte too long, and around the 256-byte
/// stack copy (256, 257, 258, 4096 bytes), for the direct methods (SEND, SEND_TO, RECEIVE:
/// parsed in place) and buffered requests (copied), plus unknown codes of every method and
/// inline-data requests over their maximum. Each gets docs/ioctl.md's status with
/// Information 0, is counted once in `failed_requests`, and leaves a healthy socket working.
fn malformed_requests_keep_their_statuses(fe: Frontend) {
    let l = load(fe, ntsim::config::CompletionMode::Inline);
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let pa = peer.local_addr().unwrap();
    let h = l.open();
    let stream = open_stream(&h, pa);
    let (mut server, _) = peer.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let dgram = open_datagram(&h);
    let send = SendRequest::new(stream);
    let send_to = SendToRequest::new(dgram, Some(&pa));
    let recv = ReceiveRequest::new(stream);
    let query = QueryStatsRequest::new();
    let mut v2 = SendRequest::new(stream);
    v2.header.version = 2;
    let mut flagged = ReceiveRequest::new(stream);
    flagged.header.flags = 1;
    let mut q_v2 = QueryStatsRequest::new();
    q_v2.header.version = 2;
    let unknown = |method| ctl_code(FILE_DEVICE_WSKCLIENT, 0x8ff, method, FILE_ANY_ACCESS);
    let resolve_max = Operation::Resolve.max_input();
    let cwd_max = Operation::ConnectWithData.max_input();
    let cases: Vec<(&str, u32, Vec<u8>, usize, i32)> = vec![
        (
            "SEND no input",
            IOCTL_WSKCLIENT_SEND,
            vec![],
            4,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "SEND 7 bytes",
            IOCTL_WSKCLIENT_SEND,
            send.as_bytes()[..7].to_vec(),
            4,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "SEND 15 bytes",
            IOCTL_WSKCLIENT_SEND,
            send.as_bytes()[..15].to_vec(),
            4,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "SEND 17 bytes",
            IOCTL_WSKCLIENT_SEND,
            padded(send.as_bytes(), 1, 0),
            4,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "SEND 256 bytes",
            IOCTL_WSKCLIENT_SEND,
            padded(send.as_bytes(), 240, 0),
            4,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "SEND 257 bytes",
            IOCTL_WSKCLIENT_SEND,
            padded(send.as_bytes(), 241, 0),
            4,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "SEND 258 bytes",
            IOCTL_WSKCLIENT_SEND,
            padded(send.as_bytes(), 242, 0xee),
            4,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "SEND 4096 bytes",
            IOCTL_WSKCLIENT_SEND,
            padded(send.as_bytes(), 4080, 0xee),
            4,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "SEND 300 bytes, version 2",
            IOCTL_WSKCLIENT_SEND,
            padded(v2.as_bytes(), 284, 0),
            4,
            STATUS_REVISION_MISMATCH,
        ),
        (
            "SEND no data buffer",
            IOCTL_WSKCLIENT_SEND,
            send.as_bytes().to_vec(),
            0,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "SEND_TO 47 bytes",
            IOCTL_WSKCLIENT_SEND_TO,
            send_to.as_bytes()[..47].to_vec(),
            4,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "SEND_TO 300 bytes",
            IOCTL_WSKCLIENT_SEND_TO,
            padded(send_to.as_bytes(), 252, 0),
            4,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "RECEIVE 4 bytes",
            IOCTL_WSKCLIENT_RECEIVE,
            recv.as_bytes()[..4].to_vec(),
            4,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "RECEIVE 257 bytes",
            IOCTL_WSKCLIENT_RECEIVE,
            padded(recv.as_bytes(), 241, 0),
            4,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "RECEIVE flags",
            IOCTL_WSKCLIENT_RECEIVE,
            flagged.as_bytes().to_vec(),
            4,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "QUERY_STATS no input",
            IOCTL_WSKCLIENT_QUERY_STATS,
            vec![],
            160,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "QUERY_STATS 9 bytes",
            IOCTL_WSKCLIENT_QUERY_STATS,
            padded(query.as_bytes(), 1, 0),
            160,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "QUERY_STATS 256 bytes",
            IOCTL_WSKCLIENT_QUERY_STATS,
            padded(query.as_bytes(), 248, 0),
            160,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "QUERY_STATS 257 bytes",
            IOCTL_WSKCLIENT_QUERY_STATS,
            padded(query.as_bytes(), 249, 0),
            160,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "QUERY_STATS 5000 bytes",
            IOCTL_WSKCLIENT_QUERY_STATS,
            padded(query.as_bytes(), 4992, 0),
            160,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "QUERY_STATS 300 bytes, version 2",
            IOCTL_WSKCLIENT_QUERY_STATS,
            padded(q_v2.as_bytes(), 292, 0),
            160,
            STATUS_REVISION_MISMATCH,
        ),
        (
            "QUERY_STATS output 159",
            IOCTL_WSKCLIENT_QUERY_STATS,
            query.as_bytes().to_vec(),
            159,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "CLOSE 300 bytes",
            IOCTL_WSKCLIENT_CLOSE,
            padded(CloseRequest::new(dgram).as_bytes(), 284, 0),
            0,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "RESOLVE over its maximum",
            IOCTL_WSKCLIENT_RESOLVE,
            vec![0; resolve_max + 1],
            64,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "CONNECT_WITH_DATA over its maximum",
            IOCTL_WSKCLIENT_CONNECT_WITH_DATA,
            vec![0; cwd_max + 1],
            80,
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "RESOLVE 300 zero bytes",
            IOCTL_WSKCLIENT_RESOLVE,
            vec![0; 300],
            64,
            STATUS_REVISION_MISMATCH,
        ),
        (
            "unknown BUFFERED code",
            unknown(METHOD_BUFFERED),
            padded(query.as_bytes(), 300, 1),
            16,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
        (
            "unknown IN_DIRECT code",
            unknown(METHOD_IN_DIRECT),
            send.as_bytes().to_vec(),
            16,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
        (
            "unknown OUT_DIRECT code",
            unknown(METHOD_OUT_DIRECT),
            recv.as_bytes().to_vec(),
            16,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
        (
            "unknown NEITHER code",
            unknown(METHOD_NEITHER),
            vec![],
            0,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
    ];
    for (what, code, input, out_len, want) in &cases {
        let (s, out) = ioctl(&h, *code, input, *out_len);
        assert_eq!(
            (s.status, s.information),
            (*want, 0),
            "{what}: got {:#x} ({:?})",
            s.status as u32,
            ntstatus_name(s.status)
        );
        if method_of(*code) == METHOD_BUFFERED {
            assert!(out.iter().all(|&b| b == 0), "{what}: nothing written");
        }
    }
    let st = stats(&h);
    // The two over-maximum inline-data requests are refused by the front-end before the core
    // (and its counters) sees them, as before; every other one is counted once.
    assert_eq!(
        st.failed_requests,
        cases.len() as u64 - 2,
        "one failure each"
    );
    assert_eq!((st.sends, st.bytes_sent), (0, 0));
    // The healthy sockets still carry bytes, both ways.
    let mut data = *b"after the table";
    let s = h.device_io_control(IOCTL_WSKCLIENT_SEND, send.as_bytes(), &mut data);
    assert_eq!((s.status, s.information), (STATUS_SUCCESS, 15));
    let mut got = [0u8; 15];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"after the table");
    server.write_all(b"back").unwrap();
    let mut buf = [0u8; 4];
    let s = h.device_io_control(IOCTL_WSKCLIENT_RECEIVE, recv.as_bytes(), &mut buf);
    assert_eq!(
        (s.status, s.information, &buf),
        (STATUS_SUCCESS, 4, b"back")
    );
    let st = stats(&h);
    assert_eq!(
        (
            st.sends,
            st.bytes_sent,
            st.pending_requests,
            st.live_sockets
        ),
        (1, 15, 0, 2)
    );
    close(&h, stream);
    close(&h, dgram);
    drop(h);
    l.finish();
}

const THREADS: usize = 3;
const ROUNDS: usize = 60;

/// SEND, SEND_TO and RECEIVE from several threads on different modelled processors at once
/// (completions in the pending mode run on the provider's thread, another processor; in the
/// provider mode, ntsim's default, inline when the socket can take the data), with QUERY_STATS
/// read concurrently: the final QUERY_STATS is exact (counts,
/// bytes), and the gauges raised on one processor and lowered on another come back to
/// exactly 0 pending and the live sockets open.
fn stats_exact_under_concurrent_data_requests(fe: Frontend) {
    use ntsim::config::CompletionMode;
    for mode in [CompletionMode::Pending, CompletionMode::Provider] {
        concurrent_data_requests(fe, mode);
    }
}

/// One run of [`stats_exact_under_concurrent_data_requests`] in completion mode `mode`.
fn concurrent_data_requests(fe: Frontend, mode: ntsim::config::CompletionMode) {
    let l = load(fe, mode);
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let h = l.open();
    // One TCP connection and one datagram socket per thread; each server side echoes
    // nothing: it reads what the thread sends and writes what the thread receives.
    let mut work = Vec::new();
    for _ in 0..THREADS {
        let stream = open_stream(&h, tcp_addr);
        let (server, _) = tcp.accept().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        work.push((stream, open_datagram(&h), server));
    }
    let barrier = Barrier::new(THREADS + 1);
    let (sent, dgram_bytes) = std::thread::scope(|sc| {
        let mut joins = Vec::new();
        for (t, (stream, dgram, mut server)) in work.into_iter().enumerate() {
            let (h, barrier) = (&h, &barrier);
            joins.push(sc.spawn(move || {
                ntsim::processor::set_current(t as u32);
                // The peer of this thread's connection: reads every byte sent, and writes
                // the bytes the thread receives, one round at a time.
                let peer = std::thread::spawn(move || {
                    let mut total = 0usize;
                    let mut buf = [0u8; 4096];
                    for r in 0..ROUNDS {
                        let want = 1 + (r * 7 + t) % 300;
                        let mut got = 0;
                        while got < want {
                            let n = server.read(&mut buf[..want - got]).unwrap();
                            assert!(n > 0, "peer: early EOF");
                            assert!(buf[..n].iter().all(|&b| b == r as u8), "peer: bytes");
                            got += n;
                        }
                        total += got;
                        server.write_all(&[r as u8; 32]).unwrap();
                    }
                    total
                });
                barrier.wait();
                let (mut sent, mut dgram_bytes) = (0u64, 0u64);
                for r in 0..ROUNDS {
                    let len = 1 + (r * 7 + t) % 300;
                    let mut data = vec![r as u8; len];
                    let s = h.device_io_control(
                        IOCTL_WSKCLIENT_SEND,
                        SendRequest::new(stream).as_bytes(),
                        &mut data,
                    );
                    assert_eq!((s.status, s.information), (STATUS_SUCCESS, len), "SEND");
                    sent += len as u64;
                    let dlen = 1 + (r + t * 11) % 200;
                    let mut d = vec![t as u8; dlen];
                    let s = h.device_io_control(
                        IOCTL_WSKCLIENT_SEND_TO,
                        SendToRequest::new(dgram, Some(&udp_addr)).as_bytes(),
                        &mut d,
                    );
                    assert_eq!((s.status, s.information), (STATUS_SUCCESS, dlen), "SEND_TO");
                    dgram_bytes += dlen as u64;
                    // RECEIVE the 32 bytes the peer writes for this round (maybe in pieces).
                    let mut got = 0;
                    while got < 32 {
                        let mut buf = vec![0u8; 32 - got];
                        let s = h.device_io_control(
                            IOCTL_WSKCLIENT_RECEIVE,
                            ReceiveRequest::new(stream).as_bytes(),
                            &mut buf,
                        );
                        assert_eq!(s.status, STATUS_SUCCESS, "RECEIVE");
                        assert!(s.information > 0, "RECEIVE: peer closed early");
                        assert!(buf[..s.information].iter().all(|&b| b == r as u8));
                        got += s.information;
                    }
                    if r % 10 == 0 {
                        let st = stats(h);
                        assert!(st.pending_requests <= THREADS as u32 * 2, "{st:?}");
                    }
                }
                assert_eq!(peer.join().unwrap() as u64, sent, "peer got every byte");
                (stream, dgram, sent, dgram_bytes)
            }));
        }
        barrier.wait();
        // Drain the datagrams meanwhile (every one is counted at the peer).
        let total_dgrams = THREADS * ROUNDS;
        let mut buf = [0u8; 2048];
        let mut received = 0u64;
        for _ in 0..total_dgrams {
            let (n, _) = udp.recv_from(&mut buf).expect("datagram");
            received += n as u64;
        }
        let mut sent = 0;
        let mut dgram_bytes = 0;
        for j in joins {
            let (stream, dgram, s, d) = j.join().unwrap();
            sent += s;
            dgram_bytes += d;
            close(&h, stream);
            close(&h, dgram);
        }
        assert_eq!(received, dgram_bytes, "every datagram byte arrived");
        (sent, dgram_bytes)
    });
    let st = stats(&h);
    let n = (THREADS * ROUNDS) as u64;
    assert_eq!((st.sends, st.bytes_sent), (n, sent), "{st:?}");
    assert_eq!(
        (st.datagrams_sent, st.datagram_bytes_sent),
        (n, dgram_bytes),
        "{st:?}"
    );
    assert_eq!(st.connects, THREADS as u64, "{st:?}");
    assert_eq!(st.closes, 2 * THREADS as u64, "{st:?}");
    assert_eq!(
        (st.pending_requests, st.live_sockets, st.open_files),
        (0, 0, 1),
        "{st:?}"
    );
    assert_eq!(
        (st.failed_requests, st.cancelled_requests),
        (0, 0),
        "{st:?}"
    );
    drop(h);
    l.finish();
}

/// Gauges raised on one processor and lowered on another: sockets opened by a thread on
/// processor 0 and closed by one on processor 1, a file opened on 2 and closed on 3. Each
/// shard alone then holds +n or -n; QUERY_STATS reports the exact sum from any processor.
fn gauges_exact_across_processors(fe: Frontend) {
    let l = load(fe, ntsim::config::CompletionMode::Inline);
    let h = l.open();
    let handles: Vec<SocketHandle> = std::thread::scope(|sc| {
        sc.spawn(|| {
            ntsim::processor::set_current(0);
            (0..5).map(|_| open_datagram(&h)).collect()
        })
        .join()
        .unwrap()
    });
    let other = std::thread::scope(|sc| {
        sc.spawn(|| {
            ntsim::processor::set_current(2);
            l.open()
        })
        .join()
        .unwrap()
    });
    for cpu in 0..4 {
        let st = std::thread::scope(|sc| {
            sc.spawn(|| {
                ntsim::processor::set_current(cpu);
                stats(&h)
            })
            .join()
            .unwrap()
        });
        assert_eq!(
            (st.live_sockets, st.open_files),
            (5, 2),
            "from {cpu}: {st:?}"
        );
    }
    std::thread::scope(|sc| {
        sc.spawn(|| {
            ntsim::processor::set_current(1);
            for &d in &handles[..3] {
                close(&h, d);
            }
        });
    });
    std::thread::scope(|sc| {
        sc.spawn(|| {
            ntsim::processor::set_current(3);
            drop(other);
        });
    });
    let st = stats(&h);
    assert_eq!(
        (st.live_sockets, st.closes, st.open_files),
        (2, 3, 1),
        "{st:?}"
    );
    for &d in &handles[3..] {
        close(&h, d);
    }
    let st = stats(&h);
    assert_eq!((st.live_sockets, st.closes), (0, 5), "{st:?}");
    drop(h);
    l.finish();
}

both_frontends!(
    malformed_requests_keep_their_statuses,
    stats_exact_under_concurrent_data_requests,
    gauges_exact_across_processors,
);

/// The shards: 128 bytes each, each starting a 128-byte block (so no two share a cache line
/// or an adjacent-line prefetch pair), one per processor up to the cap, whatever address the
/// heap returned for the block.
#[test]
fn stats_shards_are_cache_line_aligned_and_apart() {
    use wskclient::core::{Shard, Stats, MAX_STATS_SHARDS, SHARD_ALIGN};
    assert_eq!(SHARD_ALIGN, 128);
    assert_eq!(std::mem::size_of::<Shard>(), SHARD_ALIGN);
    assert_eq!(std::mem::align_of::<Shard>(), SHARD_ALIGN);
    for n in [0usize, 1, 2, 3, 4, 7, 64, 65, 4096] {
        // Several blocks alive at once, so their heap addresses differ.
        let blocks: Vec<Stats> = (0..8).map(|_| Stats::new(n).unwrap()).collect();
        for s in &blocks {
            assert_eq!(
                s.shard_count(),
                n.clamp(1, MAX_STATS_SHARDS).next_power_of_two()
            );
            let addrs: Vec<usize> = (0..s.shard_count())
                .map(|i| s.shard_address(i).unwrap())
                .collect();
            assert!(addrs.iter().all(|a| a % SHARD_ALIGN == 0), "{addrs:x?}");
            assert!(addrs.windows(2).all(|w| w[1] - w[0] == SHARD_ALIGN));
            assert_eq!(s.shard_address(s.shard_count()), None);
            let z = s.snapshot();
            assert_eq!((z.sends, z.live_sockets, z.pending_requests), (0, 0, 0));
        }
    }
}
