//! ntsim's I/O completion port model (`CreateIoCompletionPort`, `GetQueuedCompletionStatus`,
//! `PostQueuedCompletionStatus`) with the real driver: a request that succeeds inline queues a
//! packet, one that pends queues it when it completes, one that fails synchronously queues
//! none (DeviceIoControl's FALSE + error), and a posted packet comes back as posted.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ntsim::iomgr::{self, CompletionPort};
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn requests_of_an_associated_handle_queue_packets_as_iocp_does() {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(ntsim::config::CompletionMode::Pending);
    let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
    let h = iomgr::open(USER_PATH).expect("open");
    let port = CompletionPort::new();
    assert_eq!(h.associate_completion_port(&port, 7), STATUS_SUCCESS);
    // An association is permanent.
    assert_eq!(
        h.associate_completion_port(&CompletionPort::new(), 8),
        STATUS_INVALID_PARAMETER
    );

    // QUERY_STATS succeeds in the dispatch routine: still one packet, with the key.
    let ov = h.device_io_control_overlapped(
        IOCTL_WSKCLIENT_QUERY_STATS,
        QueryStatsRequest::new().as_bytes().to_vec(),
        vec![0u8; std::mem::size_of::<StatsResponse>()],
    );
    assert!(ov.queues_packet());
    let p = port.get(WAIT).expect("QUERY_STATS packet");
    assert_eq!(p.key, 7);
    assert_eq!(p.status.status, STATUS_SUCCESS);
    assert_eq!(p.status.information, std::mem::size_of::<StatsResponse>());
    assert_eq!(p.overlapped.as_ref().map(|o| o.id()), Some(ov.id()));
    drop(ov);
    let out = p.overlapped.unwrap().output();
    StatsResponse::read_from_bytes(&out).expect("stats response");

    // CLOSE of a handle never issued: the driver marks every request pending, so its error
    // status still comes as a packet.
    let bogus = SocketHandle::new(77, 1).unwrap();
    let ov = h.device_io_control_overlapped(
        IOCTL_WSKCLIENT_CLOSE,
        CloseRequest::new(bogus).as_bytes().to_vec(),
        Vec::new(),
    );
    assert!(ov.queues_packet());
    let p = port.get(WAIT).expect("CLOSE packet");
    assert_eq!(p.overlapped.as_ref().map(|o| o.id()), Some(ov.id()));
    assert!(p.status.status < 0, "{p:?}");
    drop((p, ov));

    // A request on a closed handle fails before any IRP exists (DeviceIoControl returns
    // FALSE with the error): no packet.
    let h2 = iomgr::open(USER_PATH).expect("open 2");
    assert_eq!(h2.associate_completion_port(&port, 8), STATUS_SUCCESS);
    assert_eq!(h2.close(), STATUS_SUCCESS);
    let ov = h2.device_io_control_overlapped(
        IOCTL_WSKCLIENT_QUERY_STATS,
        QueryStatsRequest::new().as_bytes().to_vec(),
        vec![0u8; std::mem::size_of::<StatsResponse>()],
    );
    assert_eq!(ov.status().map(|s| s.status), Some(STATUS_INVALID_HANDLE));
    assert!(!ov.queues_packet());
    drop((ov, h2));
    assert!(
        port.get(Duration::ZERO).is_none(),
        "a synchronous failure queued a packet"
    );

    // ACCEPT pends until a client connects, then queues its packet.
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut out = vec![0u8; 48];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_OPEN_LISTEN,
        OpenListenRequest::new(&loopback).as_bytes(),
        &mut out,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    assert!(port.get(WAIT).is_some(), "OPEN_LISTEN packet");
    let listen = OpenListenResponse::read_from_bytes(&out).unwrap();
    let accept = h.device_io_control_overlapped(
        IOCTL_WSKCLIENT_ACCEPT,
        AcceptRequest::new(listen.handle).as_bytes().to_vec(),
        vec![0u8; std::mem::size_of::<AcceptResponse>()],
    );
    assert!(accept.queues_packet());
    assert!(
        port.get(Duration::from_millis(50)).is_none(),
        "ACCEPT completed without a client"
    );
    let client =
        TcpStream::connect_timeout(&listen.local_address.to_socket_addr().unwrap(), WAIT).unwrap();
    let p = port.get(WAIT).expect("ACCEPT packet");
    assert_eq!(p.overlapped.as_ref().map(|o| o.id()), Some(accept.id()));
    assert_eq!(p.status.status, STATUS_SUCCESS);
    drop(p);
    drop(accept);
    drop(client);

    // PostQueuedCompletionStatus.
    port.post(9, 3, 0x55);
    let p = port.get(WAIT).expect("posted packet");
    assert_eq!((p.key, p.status.information, p.posted), (9, 3, 0x55));
    assert!(p.overlapped.is_none());

    drop(h);
    driver.unload().expect("unload");
    scope.assert_clean();
}
