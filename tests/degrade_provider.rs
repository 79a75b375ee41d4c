//! Issue 14, item 1: the driver degrades where the WSK provider lacks an optional routine.
//! ntsim acts as Wine 8.0's netio.sys does for `WskGetLocalAddress` / `WskGetRemoteAddress`
//! (`ntsim::config::set_address_queries_implemented(false)`: the routine refuses with
//! `STATUS_NOT_IMPLEMENTED` without completing the IRP), and OPEN_LISTEN must still serve
//! (docs/ioctl.md, OPEN_LISTEN; docs/verification.md, "Provider routines").

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ntsim::config::CompletionMode;
use ntsim::iomgr::{self, UserHandle};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

const MODES: [CompletionMode; 2] = [CompletionMode::Pending, CompletionMode::Inline];

fn open_listen(h: &UserHandle, at: SocketAddr) -> (i32, Option<OpenListenResponse>) {
    let mut out = vec![0u8; 48];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_OPEN_LISTEN,
        OpenListenRequest::new(&at).as_bytes(),
        &mut out,
    );
    let r =
        (s.status == STATUS_SUCCESS).then(|| OpenListenResponse::read_from_bytes(&out).unwrap());
    (s.status, r)
}

/// A loopback port nobody listens on right now (the kernel's pick, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// With an explicit port, OPEN_LISTEN reports the address that was asked for; ACCEPT reports
/// both addresses from `WskAccept` itself; bytes flow both ways, checked at the Linux peer.
/// The old code failed OPEN_LISTEN with STATUS_NOT_IMPLEMENTED (its `WskGetLocalAddress`).
#[test]
fn open_listen_with_an_explicit_port_works_without_get_local_address() {
    for mode in MODES {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        ntsim::config::set_address_queries_implemented(false);
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        let h = iomgr::open(USER_PATH).expect("open");
        // A port picked then released may be taken in between: retry a few (bounded).
        let mut listening = None;
        for _ in 0..5 {
            let at: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            match open_listen(&h, at) {
                (STATUS_SUCCESS, Some(r)) => {
                    listening = Some((at, r));
                    break;
                }
                (STATUS_ADDRESS_ALREADY_EXISTS, _) => continue,
                (s, _) => panic!("OPEN_LISTEN {at} ({mode:?}): {s:#010x}"),
            }
        }
        let (at, l) = listening.expect("OPEN_LISTEN on a free port");
        assert_eq!(l.local_address.to_socket_addr().unwrap(), at, "{mode:?}");

        let accept = h.device_io_control_overlapped(
            IOCTL_WSKCLIENT_ACCEPT,
            AcceptRequest::new(l.handle).as_bytes().to_vec(),
            vec![0u8; 72],
        );
        let mut peer = TcpStream::connect(at).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let st = accept
            .wait(Duration::from_secs(10))
            .expect("ACCEPT completes");
        assert_eq!(st.status, STATUS_SUCCESS, "ACCEPT ({mode:?})");
        let out = accept.output();
        let a = AcceptResponse::read_from_bytes(&out[..72]).unwrap();
        assert_eq!(a.local_address.to_socket_addr().unwrap(), at);
        assert_eq!(
            a.remote_address.to_socket_addr().unwrap(),
            peer.local_addr().unwrap()
        );

        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut out = data.clone();
        let st = h.device_io_control(
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(a.handle).as_bytes(),
            &mut out,
        );
        assert_eq!((st.status, st.information), (STATUS_SUCCESS, data.len()));
        let mut got = vec![0u8; data.len()];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, data, "bytes at the Linux peer ({mode:?})");
        peer.write_all(b"back").unwrap();
        let mut buf = vec![0u8; 4];
        let st = h.device_io_control(
            IOCTL_WSKCLIENT_RECEIVE,
            ReceiveRequest::new(a.handle).as_bytes(),
            &mut buf,
        );
        assert_eq!(st.status, STATUS_SUCCESS);
        assert_eq!(&buf[..st.information], &b"back"[..st.information]);

        drop(peer);
        drop(h);
        driver.unload().expect("unload");
        scope.assert_clean();
    }
}

/// With port 0 the port the provider picked cannot be learned without
/// `WskGetLocalAddress`: OPEN_LISTEN fails with STATUS_NOT_SUPPORTED and the socket it made
/// is closed (no leak, no handle). The old code failed with STATUS_NOT_IMPLEMENTED.
#[test]
fn open_listen_on_port_zero_without_get_local_address_fails_not_supported() {
    for mode in MODES {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        ntsim::config::set_address_queries_implemented(false);
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        let h = iomgr::open(USER_PATH).expect("open");
        let (s, _) = open_listen(&h, "127.0.0.1:0".parse().unwrap());
        assert_eq!(s, STATUS_NOT_SUPPORTED, "{mode:?}");
        drop(h);
        driver.unload().expect("unload");
        scope.assert_clean();
    }
}
