//! Regression test for issue 12, defect 12: a full socket table. Every request that adds a
//! socket to a file object's table (OPEN_STREAM, OPEN_DATAGRAM, OPEN_LISTEN,
//! CONNECT_WITH_DATA, ACCEPT) fails the same way when the table already holds
//! `MAX_SOCKETS_PER_FILE` (16,384 since issue 13; 4,096 before) sockets, and docs/ioctl.md
//! says so for each. Each emulated socket is a host socket: the test raises its soft
//! RLIMIT_NOFILE to the hard limit, and skips (saying so) when the hard limit is too low.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ntsim::iomgr::{self, IoStatus, UserHandle};
use wskclient_ioctl::options::ConnectWithDataRequest;
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

const IOCTL_DOC: &str = include_str!("../docs/ioctl.md");

/// Raises the soft RLIMIT_NOFILE to the hard limit; `Err(hard)` if that is below `need`.
fn raise_nofile(need: u64) -> Result<(), u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    if r.rlim_max < need {
        return Err(r.rlim_max);
    }
    r.rlim_cur = r.rlim_max;
    // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
    Ok(())
}

fn ioctl(h: &UserHandle, code: u32, input: &[u8], out_len: usize) -> (IoStatus, Vec<u8>) {
    let mut out = vec![0u8; out_len];
    let s = h.device_io_control(code, input, &mut out);
    (s, out)
}

/// The text of the docs/ioctl.md section whose heading starts with `heading`, up to the next
/// heading.
fn section(heading: &str) -> &'static str {
    let start = IOCTL_DOC
        .find(heading)
        .unwrap_or_else(|| panic!("docs/ioctl.md has no section {heading:?}"));
    let rest = &IOCTL_DOC[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn full_table_is_too_many_opened_files_for_every_opening_request_as_documented() {
    // The documentation first: each request that adds a socket names the full-table status.
    for heading in [
        "### OPEN_STREAM",
        "### OPEN_DATAGRAM",
        "### OPEN_LISTEN",
        "### ACCEPT",
        "## CONNECT_WITH_DATA",
    ] {
        let text = section(heading);
        assert!(
            text.contains("STATUS_TOO_MANY_OPENED_FILES"),
            "docs/ioctl.md {heading} does not name STATUS_TOO_MANY_OPENED_FILES for a full table"
        );
        assert!(
            !text.contains(
                "`STATUS_INSUFFICIENT_RESOURCES`\nwhen the file object's socket table is full"
            ) && !text.contains(
                "`STATUS_INSUFFICIENT_RESOURCES` when the file object's socket table is full"
            ),
            "docs/ioctl.md {heading} still gives STATUS_INSUFFICIENT_RESOURCES for a full table"
        );
    }
    assert_eq!(wskclient::core::MAX_SOCKETS_PER_FILE, 16_384);
    let need = wskclient::core::MAX_SOCKETS_PER_FILE as u64 + 256;
    if let Err(have) = raise_nofile(need) {
        eprintln!(
            "SKIPPED: a full socket table needs {need} file descriptors; the hard RLIMIT_NOFILE is {have}"
        );
        return;
    }

    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(ntsim::config::CompletionMode::Pending);
    let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
    let h = iomgr::open(USER_PATH).expect("open");
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();

    // One listening socket, then datagram sockets up to the limit.
    let (s, out) = ioctl(
        &h,
        IOCTL_WSKCLIENT_OPEN_LISTEN,
        OpenListenRequest::new(&loopback).as_bytes(),
        48,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    let listen = OpenListenResponse::read_from_bytes(&out).unwrap();
    let listen_addr = listen.local_address.to_socket_addr().unwrap();
    let mut opened = 1;
    while opened < wskclient::core::MAX_SOCKETS_PER_FILE {
        let (s, _) = ioctl(
            &h,
            IOCTL_WSKCLIENT_OPEN_DATAGRAM,
            OpenDatagramRequest::new(&loopback).as_bytes(),
            48,
        );
        assert_eq!(s.status, STATUS_SUCCESS, "datagram socket {opened}");
        opened += 1;
    }

    // The table is full: every request that would add a socket gets the same status.
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let (s, _) = ioctl(
        &h,
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&peer_addr, None).as_bytes(),
        72,
    );
    assert_eq!(s.status, STATUS_TOO_MANY_OPENED_FILES, "OPEN_STREAM");
    let (s, _) = ioctl(
        &h,
        IOCTL_WSKCLIENT_OPEN_DATAGRAM,
        OpenDatagramRequest::new(&loopback).as_bytes(),
        48,
    );
    assert_eq!(s.status, STATUS_TOO_MANY_OPENED_FILES, "OPEN_DATAGRAM");
    let (s, _) = ioctl(
        &h,
        IOCTL_WSKCLIENT_OPEN_LISTEN,
        OpenListenRequest::new(&loopback).as_bytes(),
        48,
    );
    assert_eq!(s.status, STATUS_TOO_MANY_OPENED_FILES, "OPEN_LISTEN");
    let mut cwd = ConnectWithDataRequest::new(&peer_addr, None, 0)
        .as_bytes()
        .to_vec();
    cwd.truncate(ConnectWithDataRequest::SIZE);
    let (s, _) = ioctl(&h, IOCTL_WSKCLIENT_CONNECT_WITH_DATA, &cwd, 80);
    assert_eq!(s.status, STATUS_TOO_MANY_OPENED_FILES, "CONNECT_WITH_DATA");
    let accept = h.device_io_control_overlapped(
        IOCTL_WSKCLIENT_ACCEPT,
        AcceptRequest::new(listen.handle).as_bytes().to_vec(),
        vec![0u8; 72],
    );
    let _client = TcpStream::connect_timeout(&listen_addr, Duration::from_secs(5)).unwrap();
    let st = accept
        .wait(Duration::from_secs(10))
        .expect("accept completes");
    assert_eq!(st.status, STATUS_TOO_MANY_OPENED_FILES, "ACCEPT");

    drop(h);
    driver.unload().expect("unload");
    scope.assert_clean();
}
