//! Issue 13, item 1, through the driver: N steady-state SEND, SEND_TO and RECEIVE IOCTLs
//! on the embedded device allocate no IRP, no MDL and no pool of ours (`IoAllocateIrp`,
//! `IoAllocateMdl`, `ExAllocatePool2` and `wsk::alloc` by the driver and `wsk`, as ntsim's
//! `faults::OwnAllocations` counts them). The kernel's own allocations are not ours: the I/O
//! manager's IRP, MDL and system buffer for each request, and the `IoCx` context of
//! `IoSetCompletionRoutineEx` (reported in the assertion messages). Both front-ends, both
//! completion paths; bytes checked at the peer; nothing leaked at the end.
//!
//! Before the per-socket operation cache each of these IOCTLs cost one `IoAllocateIrp` and
//! one `ExAllocatePool2` (this test failed with 1 IRP + 1 pool block per operation).

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use ntsim::config::CompletionMode;
use ntsim::faults::OwnAllocations;
use ntsim::iomgr;

#[macro_use]
mod frontend;
use frontend::{close, open_stream, Frontend};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

/// IOCTLs measured per kind, after one warm-up.
const N: usize = 100;
const CHUNK: usize = 256;

fn pattern(i: usize) -> Vec<u8> {
    (0..CHUNK).map(|j| (i * 31 + j * 7) as u8).collect()
}

/// Runs `f` N times: our allocations and the kernel's IoCx contexts meanwhile.
fn measure(mut f: impl FnMut(usize)) -> (OwnAllocations, u64) {
    let before = OwnAllocations::now();
    let cx = ntsim::completion_ex::contexts_allocated();
    for i in 1..=N {
        f(i);
    }
    (
        OwnAllocations::now().since(&before),
        ntsim::completion_ex::contexts_allocated() - cx,
    )
}

fn assert_none(fe: Frontend, mode: CompletionMode, what: &str, (own, cx): (OwnAllocations, u64)) {
    assert_eq!(
        own,
        OwnAllocations::default(),
        "{fe:?} {mode:?}: {N} steady-state {what} IOCTLs: our allocations {own:?} \
         ({:.2} IRPs, {:.2} pool, {:.2} MDLs per operation); the kernel's IoCx contexts \
         (IoSetCompletionRoutineEx): {cx}",
        own.irps as f64 / N as f64,
        (own.pool + own.heap) as f64 / N as f64,
        own.mdls as f64 / N as f64,
    );
    eprintln!("{fe:?} {mode:?}: {what}: 0 allocations of ours per IOCTL; IoCx: {cx} for {N}");
}

fn ok(s: iomgr::IoStatus, n: usize) {
    assert_eq!((s.status, s.information), (STATUS_SUCCESS, n));
}

fn steady_state_ioctls(fe: Frontend) {
    for mode in [
        CompletionMode::Pending,
        CompletionMode::Inline,
        CompletionMode::Provider,
    ] {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        let driver = fe.load();
        let h = iomgr::open(USER_PATH).expect("open");

        // SEND to a real TCP sink.
        let sink = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = open_stream(&h, sink.local_addr().unwrap());
        let (mut peer, _) = sink.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let send = |i: usize| {
            let mut d = pattern(i);
            let s = h.device_io_control(
                IOCTL_WSKCLIENT_SEND,
                SendRequest::new(stream).as_bytes(),
                &mut d,
            );
            ok(s, CHUNK);
        };
        send(0);
        assert_none(fe, mode, "SEND", measure(send));
        let mut got = vec![0u8; CHUNK * (N + 1)];
        peer.read_exact(&mut got).unwrap();
        for (i, c) in got.chunks(CHUNK).enumerate() {
            assert_eq!(c, &pattern(i)[..], "{fe:?} {mode:?}: SEND {i} at the peer");
        }

        // RECEIVE from the same connection: the peer writes, each IOCTL reads what came.
        let feed: Vec<u8> = (0..=N).flat_map(pattern).collect();
        peer.write_all(&feed).unwrap();
        let mut received = Vec::with_capacity(feed.len());
        let receive = |received: &mut Vec<u8>| {
            let mut out = vec![0u8; CHUNK];
            let s = h.device_io_control(
                IOCTL_WSKCLIENT_RECEIVE,
                ReceiveRequest::new(stream).as_bytes(),
                &mut out,
            );
            assert_eq!(s.status, STATUS_SUCCESS);
            assert!(s.information > 0, "the peer has not closed");
            received.extend_from_slice(&out[..s.information]);
        };
        receive(&mut received);
        let mut ops = 0;
        let before = OwnAllocations::now();
        let cx = ntsim::completion_ex::contexts_allocated();
        while received.len() < feed.len() {
            receive(&mut received);
            ops += 1;
        }
        let own = OwnAllocations::now().since(&before);
        let cx = ntsim::completion_ex::contexts_allocated() - cx;
        assert_eq!(
            own,
            OwnAllocations::default(),
            "{fe:?} {mode:?}: {ops} steady-state RECEIVE IOCTLs: our allocations {own:?}; \
             IoCx: {cx}"
        );
        assert!(received == feed, "{fe:?} {mode:?}: RECEIVE bytes");
        close(&h, stream);

        // SEND_TO to a real UDP peer (one datagram at a time, read before the next).
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let to = udp.local_addr().unwrap();
        let mut out = vec![0u8; 48];
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_OPEN_DATAGRAM,
            OpenDatagramRequest::new(&"127.0.0.1:0".parse().unwrap()).as_bytes(),
            &mut out,
        );
        ok(s, 48);
        let dgram = OpenDatagramResponse::read_from_bytes(&out).unwrap();
        let mut buf = [0u8; 2048];
        let mut send_to = |i: usize| {
            let mut d = pattern(i);
            let s = h.device_io_control(
                IOCTL_WSKCLIENT_SEND_TO,
                SendToRequest::new(dgram.handle, Some(&to)).as_bytes(),
                &mut d,
            );
            ok(s, CHUNK);
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &pattern(i)[..], "{fe:?} {mode:?}: datagram {i}");
            assert_eq!(from, dgram.local_address.to_socket_addr().unwrap());
        };
        send_to(0);
        assert_none(fe, mode, "SEND_TO", measure(send_to));
        close(&h, dgram.handle);

        drop(h);
        drop(peer);
        driver.unload().expect("unload");
        scope.assert_clean();
    }
}

both_frontends!(steady_state_ioctls);
