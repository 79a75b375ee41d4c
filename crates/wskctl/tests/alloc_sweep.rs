//! Allocation-failure sweep (issue 12): every driver operation, driven through the real I/O
//! path (DriverEntry, `\\.\WskClient`, IRP_MJ_DEVICE_CONTROL built by the emulated I/O
//! manager, real loopback peers), is run with its 1st, 2nd, ... Nth allocation failed, where
//! "allocation" is one sequence over pool (`ExAllocatePool2`/`ExAllocatePoolWithTag`),
//! `IoAllocateIrp`, `IoAllocateMdl` and the Rust heap through `wsk::alloc` (`ntsim::faults`),
//! until a run no longer reaches N. Every run must end with an NTSTATUS (success, or the
//! failure the request reports), no panic, and a clean verifier after unload: 0 leaked IRPs,
//! MDLs, pool bytes or sockets, 0 violations. DriverEntry and unload are swept the same way.
//!
//! Unlike Driver Verifier's low-resources simulation (random failures), this is exhaustive
//! over the allocations each operation reaches. The summary (sites swept, runs) is printed.
#![cfg(not(windows))]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use ntsim::faults::{self, AllocSite, SweepRun};
use ntsim::iomgr::{self, UserHandle};
use wskctl::client::Client;
use wskctl::device::{Device, IoStatus};
use wskctl::transmit::{transmit_file, TransmitOptions};

/// The test's global allocator: the system allocator, except that while a sweep is armed a
/// heap allocation whose innermost project frame is driver code (`wskclient::`) and that
/// did not come through `wsk::alloc` (which counts itself) is counted in the same sequence,
/// and fails when its turn comes. The driver's kernel build allocates from nonpaged pool,
/// where such an allocation can fail; an infallible `Box::new`/`Vec::push` then panics,
/// which is a bug check. Here it returns NULL and the infallible call aborts the test.
/// Allocations of the emulator (`ntsim::`), of the test and of `wsk::` (its own sites are
/// converted separately) are not counted.
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    pub struct SweepAlloc;

    thread_local! {
        static BUSY: Cell<bool> = const { Cell::new(false) };
    }

    #[derive(Clone)]
    enum Owner {
        /// A driver frame: count the allocation, at this site.
        Driver(String),
        /// `wsk::alloc` (already counted), the emulator, the test, `wsk`: do not count.
        Stop,
        /// Library code (core, alloc, std, ...): look at the next frame out.
        Neutral,
    }

    static OWNERS: Mutex<Option<HashMap<usize, Owner>>> = Mutex::new(None);

    /// Also count `wsk::` frames as the driver's (`ALLOC_SWEEP_INCLUDE_WSK=1`): for checking
    /// wsk's own conversion to `wsk::alloc`, and the default once that has landed.
    pub static INCLUDE_WSK: AtomicBool = AtomicBool::new(false);

    fn classify(ip: usize) -> Owner {
        if let Some(o) = OWNERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|m| m.get(&ip).cloned())
        {
            return o;
        }
        let mut owner = Owner::Neutral;
        backtrace::resolve(ip as *mut c_void, |sym| {
            if !matches!(owner, Owner::Neutral) {
                return;
            }
            let Some(name) = sym.name() else { return };
            let name = format!("{name:#}");
            let bare = name.trim_start_matches('<');
            // ntsim's kernel routines are #[no_mangle] (no crate in the name): by file.
            let in_ntsim = sym
                .filename()
                .is_some_and(|f| f.to_string_lossy().contains("/crates/ntsim/"));
            owner = if in_ntsim {
                Owner::Stop
            } else if bare.starts_with("alloc_sweep::heap::") || bare.starts_with("backtrace::") {
                // This allocator and its stack walk: the frames below the allocation.
                Owner::Neutral
            } else if bare.starts_with("wsk::alloc::") || name.contains("<wsk::alloc::") {
                Owner::Stop
            } else if bare.starts_with("wskclient::")
                || (INCLUDE_WSK.load(Ordering::Relaxed) && bare.starts_with("wsk::"))
            {
                let at = match (sym.filename(), sym.lineno()) {
                    (Some(f), Some(l)) => {
                        let f = f.to_string_lossy();
                        let f = f.rsplit_once("/src/").map_or(&*f, |(_, r)| r);
                        format!(" (src/{f}:{l})")
                    }
                    _ => String::new(),
                };
                Owner::Driver(format!("infallible, in {name}{at}"))
            } else if ["ntsim::", "wsk::", "wskctl::", "alloc_sweep::"]
                .iter()
                .any(|p| bare.starts_with(p))
            {
                Owner::Stop
            } else {
                Owner::Neutral
            };
        });
        OWNERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(ip, owner.clone());
        owner
    }

    /// True if this allocation is the driver's and the sweep fails it.
    fn fail_this_one() -> bool {
        if !ntsim::faults::armed() {
            return false;
        }
        let Ok(busy) = BUSY.try_with(|b| b.replace(true)) else {
            return false;
        };
        if busy {
            return false;
        }
        let mut ips = [0usize; 32];
        let mut n = 0;
        // SAFETY: no other thread unwinds this thread's stack; the closure only stores IPs.
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                if let Some(slot) = ips.get_mut(n) {
                    *slot = f.ip() as usize;
                    n += 1;
                }
                n < ips.len()
            })
        };
        let mut fail = false;
        for &ip in ips.iter().take(n) {
            match classify(ip) {
                Owner::Neutral => continue,
                Owner::Stop => break,
                Owner::Driver(site) => {
                    fail = ntsim::faults::count_heap_allocation(|| site.clone());
                    if fail {
                        // Said before the abort that follows, so that the log names it.
                        eprintln!("alloc sweep: failing the driver's allocation {site}");
                    }
                    break;
                }
            }
        }
        let _ = BUSY.try_with(|b| b.set(false));
        fail
    }

    // SAFETY: forwards to the system allocator, or returns NULL (allowed: an allocation
    // failure) without touching the layout's memory.
    unsafe impl GlobalAlloc for SweepAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if fail_this_one() {
                return std::ptr::null_mut();
            }
            // SAFETY: forwarded contract.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            if fail_this_one() {
                return std::ptr::null_mut();
            }
            // SAFETY: forwarded contract.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if new_size > layout.size() && fail_this_one() {
                return std::ptr::null_mut();
            }
            // SAFETY: forwarded contract.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded contract.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static HEAP: heap::SweepAlloc = heap::SweepAlloc;

/// The device over one emulated user-mode handle.
struct Dev(UserHandle);

impl Device for Dev {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        let s = self.0.device_io_control(code, input, output);
        IoStatus {
            status: s.status,
            information: s.information,
        }
    }
}

/// What the sweeps saw.
#[derive(Default)]
struct Tally {
    /// The WSK provider's completion path for this pass (None = the default, Pending).
    mode: Option<ntsim::config::CompletionMode>,
    runs: u64,
    injected: u64,
    sites: BTreeSet<AllocSite>,
    failed_requests: u64,
}

/// How far the sweep goes at most for one operation (a bound, not an expected count).
const MAX_N: u64 = 200;

/// The result of an operation under test: `Err` carries the failure as text (an NTSTATUS).
type OpResult = Result<(), String>;

fn st<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{e:#}"))
}

/// Sweeps one operation: `setup` runs unarmed on a freshly loaded driver and open handle,
/// `op` runs with the Nth allocation failed, then everything is torn down and checked.
fn sweep<S>(
    tally: &mut Tally,
    name: &str,
    setup: impl Fn(&Client<'_>) -> S,
    op: impl Fn(&Client<'_>, &Dev, &mut S) -> OpResult,
) {
    for n in 1..=MAX_N {
        let scope = ntsim::Scope::begin();
        ntsim::config::set_hang_limit(Duration::from_secs(10));
        if let Some(mode) = tally.mode {
            ntsim::config::set_completion_mode(mode);
        }
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        let dev = Dev(iomgr::open(wskclient_ioctl::USER_PATH).expect("open"));
        let (run, result) = {
            let c = Client::new(&dev);
            let mut s = setup(&c);
            faults::arm(Some(n));
            let r = op(&c, &dev, &mut s);
            let run = faults::disarm();
            drop(s);
            (run, r)
        };
        drop(dev);
        let unloaded = driver.unload();
        let done = record(tally, name, n, &run, &result);
        assert!(unloaded.is_ok(), "{name} n={n}: unload: {unloaded:?}");
        assert_eq!(ntsim::wsk::live_registrations(), 0, "{name} n={n}");
        scope.assert_clean();
        if done {
            return;
        }
    }
    panic!("{name}: still allocating after {MAX_N} failures");
}

/// Records one run; true when the operation completed without reaching N (the sweep ends).
fn record(tally: &mut Tally, name: &str, n: u64, run: &SweepRun, result: &OpResult) -> bool {
    tally.runs += 1;
    tally.sites.extend(run.sites.iter().cloned());
    match &run.failed {
        Some(site) => {
            tally.injected += 1;
            if result.is_err() {
                tally.failed_requests += 1;
            }
            eprintln!("{name} {:?} n={n}: failed {site} -> {result:?}", tally.mode);
            false
        }
        None => {
            assert!(
                result.is_ok(),
                "{name}: with no allocation failed ({} allocations) the operation must succeed: {result:?}",
                run.allocations
            );
            eprintln!(
                "{name} {:?}: {} allocation(s), {} run(s)",
                tally.mode, run.allocations, n
            );
            true
        }
    }
}

/// A TCP peer on loopback: the connection the driver opens lands in its backlog.
fn tcp_peer() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

fn accept_bounded(l: &TcpListener) -> TcpStream {
    let (s, _) = l
        .accept()
        .expect("accept (the connection is in the backlog)");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

#[test]
fn every_operation_survives_each_allocation_failure() {
    ntsim::link();
    if std::env::var_os("ALLOC_SWEEP_INCLUDE_WSK").is_some_and(|v| v == "1") {
        heap::INCLUDE_WSK.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let mut t = Tally::default();

    // DriverEntry: each failure makes it return an error and leave nothing behind.
    for n in 1..=MAX_N {
        let scope = ntsim::Scope::begin();
        faults::arm(Some(n));
        let r = iomgr::load_driver(wskclient::DriverEntry, "wskclient");
        let run = faults::disarm();
        let result: OpResult = match r {
            Ok(d) => {
                d.unload().expect("unload");
                Ok(())
            }
            Err(s) => Err(format!("DriverEntry: {s:#010x}")),
        };
        if run.failed.is_some() {
            assert!(
                result.is_err(),
                "DriverEntry n={n}: an allocation failed but it returned success"
            );
        }
        let done = record(&mut t, "DriverEntry", n, &run, &result);
        assert_eq!(ntsim::wsk::live_registrations(), 0, "DriverEntry n={n}");
        scope.assert_clean();
        if done {
            break;
        }
    }

    // DriverUnload (WskDeregister, device deletion) after a handle was opened and closed.
    for n in 1..=MAX_N {
        let scope = ntsim::Scope::begin();
        let d = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        drop(iomgr::open(wskclient_ioctl::USER_PATH).expect("open"));
        faults::arm(Some(n));
        let r = d.unload();
        let run = faults::disarm();
        assert!(r.is_ok(), "unload n={n}: {r:?}");
        let done = record(&mut t, "unload", n, &run, &Ok(()));
        assert_eq!(ntsim::wsk::live_registrations(), 0, "unload n={n}");
        scope.assert_clean();
        if done {
            break;
        }
    }

    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
        ntsim::config::CompletionMode::Provider,
    ] {
        t.mode = Some(mode);
        operations(&mut t);
    }

    eprintln!(
        "alloc sweep: {} runs, {} allocation failures injected ({} failed their request), {} distinct allocation sites:",
        t.runs,
        t.injected,
        t.failed_requests,
        t.sites.len()
    );
    for s in &t.sites {
        eprintln!("  {s}");
    }
    assert!(t.injected > 0 && !t.sites.is_empty());
}

/// Every IOCTL, CREATE and cleanup, in the completion mode `t.mode`.
fn operations(t: &mut Tally) {
    // IRP_MJ_CREATE (+ CLEANUP/CLOSE of the new handle).
    sweep(
        t,
        "CREATE",
        |_| (),
        |_, _, _| {
            let h = iomgr::open(wskclient_ioctl::USER_PATH).map_err(|s| format!("{s:#010x}"))?;
            drop(h);
            Ok(())
        },
    );

    sweep(
        t,
        "OPEN_STREAM",
        |_| tcp_peer(),
        |c, _, (_l, a)| st(c.open_stream(*a)).map(drop),
    );
    sweep(
        t,
        "OPEN_DATAGRAM",
        |_| (),
        |c, _, _| st(c.open_datagram("127.0.0.1:0".parse().expect("addr"))).map(drop),
    );
    sweep(
        t,
        "OPEN_LISTEN",
        |_| (),
        |c, _, _| st(c.open_listen("127.0.0.1:0".parse().expect("addr"))).map(drop),
    );

    // SEND: the bytes reach the peer when the request succeeds.
    sweep(
        t,
        "SEND",
        |c| {
            let (l, a) = tcp_peer();
            let s = c.open_stream(a).expect("open_stream");
            let peer = accept_bounded(&l);
            (s, peer)
        },
        |c, _, (s, peer)| {
            let n = st(c.send(s.handle, b"sweep-send"))?;
            let mut got = vec![0u8; n];
            peer.read_exact(&mut got).expect("peer reads");
            assert_eq!(&got, &b"sweep-send"[..n]);
            Ok(())
        },
    );

    sweep(
        t,
        "SEND_TO",
        |c| {
            let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
            peer.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let d = c
                .open_datagram("127.0.0.1:0".parse().expect("addr"))
                .expect("open_datagram");
            (d, peer)
        },
        |c, _, (d, peer)| {
            let to = peer.local_addr().expect("addr");
            st(c.send_to(d.handle, Some(to), b"sweep-dgram"))?;
            let mut b = [0u8; 64];
            let (n, _) = peer.recv_from(&mut b).expect("peer receives");
            assert_eq!(&b[..n], b"sweep-dgram");
            Ok(())
        },
    );

    sweep(
        t,
        "RECEIVE",
        |c| {
            let (l, a) = tcp_peer();
            let s = c.open_stream(a).expect("open_stream");
            let mut peer = accept_bounded(&l);
            peer.write_all(b"sweep-recv").expect("peer writes");
            (s, peer)
        },
        |c, _, (s, _peer)| {
            let mut b = [0u8; 10];
            let n = st(c.receive(s.handle, &mut b))?;
            assert_eq!(&b[..n], &b"sweep-recv"[..n]);
            Ok(())
        },
    );

    sweep(
        t,
        "RECEIVE_FROM",
        |c| {
            let d = c
                .open_datagram("127.0.0.1:0".parse().expect("addr"))
                .expect("open_datagram");
            let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
            peer.send_to(b"sweep-from", d.local).expect("peer sends");
            d
        },
        |c, _, d| {
            let mut b = [0u8; 64];
            let (n, _) = st(c.receive_from(d.handle, &mut b))?;
            assert_eq!(&b[..n], b"sweep-from");
            Ok(())
        },
    );

    sweep(
        t,
        "ACCEPT",
        |c| {
            let l = c
                .open_listen("127.0.0.1:0".parse().expect("addr"))
                .expect("open_listen");
            let client = TcpStream::connect(l.local).expect("connect");
            (l, client)
        },
        |c, _, (l, _client)| st(c.accept(l.handle)).map(drop),
    );

    for abortive in [false, true] {
        sweep(
            t,
            if abortive {
                "DISCONNECT abortive"
            } else {
                "DISCONNECT graceful"
            },
            |c| {
                let (l, a) = tcp_peer();
                let s = c.open_stream(a).expect("open_stream");
                (s, l)
            },
            move |c, _, (s, _l)| st(c.disconnect(s.handle, abortive)),
        );
    }

    sweep(
        t,
        "SET_OPTION/GET_OPTION",
        |c| {
            let (l, a) = tcp_peer();
            (c.open_stream(a).expect("open_stream"), l)
        },
        |c, _, (s, _l)| {
            use wskclient_ioctl::options::OPTION_KEEPALIVE;
            st(c.set_option(s.handle, OPTION_KEEPALIVE, 1))?;
            let v = st(c.get_option(s.handle, OPTION_KEEPALIVE))?;
            assert_eq!(v, 1);
            Ok(())
        },
    );

    sweep(
        t,
        "RESOLVE",
        |_| (),
        |c, _, _| {
            // A success must carry the answer: an allocation failure may fail the request,
            // never silently drop the address.
            match st(c.resolve("127.0.0.1", 80, 2))? {
                wskctl::client::Resolved::Addresses { addresses, .. }
                    if addresses.contains(&"127.0.0.1:80".parse().expect("addr")) =>
                {
                    Ok(())
                }
                other => panic!("RESOLVE succeeded without 127.0.0.1:80: {other:?}"),
            }
        },
    );

    sweep(
        t,
        "CONNECT_WITH_DATA",
        |_| tcp_peer(),
        |c, _, (l, a)| {
            let r = st(c.connect_with_data(*a, None, b"sweep-cwd"))?;
            let mut peer = accept_bounded(l);
            let mut got = vec![0u8; r.bytes_sent as usize];
            peer.read_exact(&mut got).expect("peer reads");
            assert_eq!(&got, &b"sweep-cwd"[..got.len()]);
            Ok(())
        },
    );

    let file = std::env::temp_dir().join(format!("wsk-alloc-sweep-{}.bin", std::process::id()));
    std::fs::write(&file, vec![0x5au8; 3000]).expect("write the file");
    sweep(
        t,
        "TRANSMIT_FILE",
        |c| {
            let (l, a) = tcp_peer();
            let s = c.open_stream(a).expect("open_stream");
            let peer = accept_bounded(&l);
            let h = ntsim::file::open_file(&file, ntsim::file::Access::Read).expect("handle");
            (s, peer, h)
        },
        |_, dev, (s, peer, h)| {
            let opts = TransmitOptions {
                head: b"head".to_vec(),
                tail: b"tail".to_vec(),
                block_size: 1024,
                ..Default::default()
            };
            let r = transmit_file(dev, s.handle, *h, &opts);
            let _ = ntsim::file::close_handle(*h);
            let r = st(r)?;
            let mut got = vec![0u8; r.bytes_sent as usize];
            peer.read_exact(&mut got).expect("peer reads");
            assert_eq!(got.len(), 3008);
            Ok(())
        },
    );
    // TRANSMIT_PACKETS on a datagram socket: two datagrams gathered from memory and the file.
    sweep(
        t,
        "TRANSMIT_PACKETS datagram",
        |c| {
            let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
            peer.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let d = c
                .open_datagram("127.0.0.1:0".parse().expect("addr"))
                .expect("open_datagram");
            let h = ntsim::file::open_file(&file, ntsim::file::Access::Read).expect("handle");
            (d, peer, h)
        },
        |_, dev, (d, peer, h)| {
            use wskclient_ioctl::transmit::{TransmitElement, TransmitPacketsRequest};
            use zerocopy::IntoBytes;
            let to = peer.local_addr().expect("addr");
            let els = [
                TransmitElement::memory(0, 4, false),
                TransmitElement::file(*h, 0, 100, true),
                TransmitElement::memory(4, 4, true),
            ];
            let mut r = TransmitPacketsRequest::new(d.handle);
            r.element_count = els.len() as u32;
            r.data_length = 8;
            r.remote_address = wskclient_ioctl::InetAddress::from_socket_addr(&to);
            let mut input = r.as_bytes().to_vec();
            for e in &els {
                input.extend_from_slice(e.as_bytes());
            }
            input.extend_from_slice(b"headtail");
            let mut out = vec![0u8; 64];
            let io = dev.ioctl(
                wskclient_ioctl::IOCTL_WSKCLIENT_TRANSMIT_PACKETS,
                &input,
                &mut out,
            );
            let _ = ntsim::file::close_handle(*h);
            if io.status != 0 {
                return Err(format!("TRANSMIT_PACKETS: {:#010x}", io.status));
            }
            let mut b = [0u8; 256];
            let (n, _) = peer.recv_from(&mut b).expect("first datagram");
            assert_eq!(n, 104);
            assert_eq!(&b[..4], b"head");
            let (n, _) = peer.recv_from(&mut b).expect("second datagram");
            assert_eq!(&b[..n], b"tail");
            Ok(())
        },
    );
    let _ = std::fs::remove_file(&file);

    sweep(
        t,
        "SET_REMOTE + QUERY_STATS",
        |c| {
            c.open_datagram("127.0.0.1:0".parse().expect("addr"))
                .expect("open_datagram")
        },
        |c, _, d| {
            st(c.set_remote(d.handle, Some("127.0.0.1:9".parse().expect("addr"))))?;
            st(c.stats()).map(drop)
        },
    );

    sweep(
        t,
        "CLOSE",
        |c| {
            let (l, a) = tcp_peer();
            (c.open_stream(a).expect("open_stream"), l)
        },
        |c, _, (s, _l)| st(c.close(s.handle)),
    );

    // IRP_MJ_CLEANUP/CLOSE of a handle with a stream, a datagram and a listening socket.
    sweep(
        t,
        "cleanup",
        |c| {
            let (l, a) = tcp_peer();
            let s = c.open_stream(a).expect("open_stream");
            let d = c
                .open_datagram("127.0.0.1:0".parse().expect("addr"))
                .expect("open_datagram");
            let ls = c
                .open_listen("127.0.0.1:0".parse().expect("addr"))
                .expect("open_listen");
            let second = iomgr::open(wskclient_ioctl::USER_PATH).expect("open");
            (Some(second), l, s, d, ls)
        },
        |_, _, (second, ..)| {
            // Another handle's sockets close on its cleanup; this one is left for teardown.
            let c2 = Dev(second.take().expect("handle"));
            let client = Client::new(&c2);
            let (l, a) = tcp_peer();
            let opened = client.open_stream(a).map(drop);
            drop(c2);
            drop(l);
            st(opened)
        },
    );
}
