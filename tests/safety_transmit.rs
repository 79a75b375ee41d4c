//! Regression test for issue 12, defect 5: TRANSMIT_FILE on a file handle opened for
//! asynchronous I/O. `ZwReadFile` then returns STATUS_PENDING and completes later, writing the
//! driver's IO_STATUS_BLOCK and buffer; the driver must wait for that read (on an event of
//! its own given to ZwReadFile), not return while the read still targets its stack and pool.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use ntsim::file as nfile;
use ntsim::iomgr::{self, UserHandle};
use ntsim::verifier::Rule;
use sha2::{Digest, Sha256};
use wskclient_ioctl::status::*;
use wskclient_ioctl::transmit::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

fn open_stream(h: &UserHandle, to: std::net::SocketAddr) -> SocketHandle {
    let mut out = vec![0u8; 72];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_OPEN_STREAM,
        OpenStreamRequest::new(&to, None).as_bytes(),
        &mut out,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    OpenStreamResponse::read_from_bytes(&out).unwrap().handle
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(7) as u8)
        .collect()
}

/// The file is read in 64 KiB blocks, each read pending for 20 ms on an asynchronous file
/// object; the peer must receive the file exactly, the verifier must see no wait on the
/// FILE_OBJECT and no read left in flight. Before the fix the driver waited with
/// KeWaitForSingleObject on the FILE_OBJECT (not a dispatcher object: `NotADispatcherObject`),
/// read an IO_STATUS_BLOCK nobody had written yet, failed with STATUS_END_OF_FILE and closed
/// its handle with the read still in flight (`AsyncIoOutstanding`).
#[test]
fn transmit_file_waits_for_asynchronous_reads() {
    for mode in [
        ntsim::config::CompletionMode::Pending,
        ntsim::config::CompletionMode::Inline,
    ] {
        ntsim::link();
        let scope = ntsim::Scope::begin();
        ntsim::config::set_completion_mode(mode);
        nfile::set_async_read_delay(Duration::from_millis(20));
        let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
        let h = iomgr::open(USER_PATH).expect("open");
        let data = pattern(300_000);
        let path = std::env::temp_dir().join(format!(
            "wskclient-safety-transmit-{}-{mode:?}.bin",
            std::process::id()
        ));
        std::fs::write(&path, &data).unwrap();
        let fh = nfile::open_file_async(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut v = Vec::new();
            let _ = c.read_to_end(&mut v);
            v
        });
        let s = open_stream(&h, addr);
        let mut r = TransmitFileRequest::new(s, fh);
        r.block_size = 64 << 10;
        r.flags = TRANSMIT_DISCONNECT;
        let mut out = vec![0u8; TransmitResponse::SIZE];
        let st = h.device_io_control(IOCTL_WSKCLIENT_TRANSMIT_FILE, r.as_bytes(), &mut out);
        let violations = ntsim::verifier::violations();
        assert!(
            !violations.iter().any(|v| matches!(
                v.rule,
                Rule::NotADispatcherObject | Rule::AsyncIoOutstanding
            )),
            "{mode:?}: {violations:#?}"
        );
        assert_eq!(st.status, STATUS_SUCCESS, "{mode:?}");
        let resp = TransmitResponse::read_from_bytes(&out).unwrap();
        assert_eq!(resp.bytes_sent, data.len() as u64);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert_eq!(
            Sha256::digest(&got),
            Sha256::digest(&data),
            "bytes at the peer"
        );
        assert_eq!(nfile::close_handle(fh), STATUS_SUCCESS);
        let _ = std::fs::remove_file(&path);
        drop(h);
        driver.unload().expect("unload");
        assert_eq!(
            nfile::live(),
            nfile::Live::default(),
            "file objects/handles"
        );
        scope.assert_clean();
    }
}

/// A read that does not complete within the driver's 30 s limit is cancelled
/// (`ZwCancelIoFileEx`, which the driver looks up with `MmGetSystemRoutineAddress`) and still
/// waited for: the request fails with STATUS_IO_TIMEOUT and the verifier sees no read left in
/// flight. Takes 30 s (the driver's limit).
#[test]
fn transmit_file_cancels_a_read_that_exceeds_its_timeout() {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    nfile::set_async_read_delay(Duration::from_secs(600));
    let driver = iomgr::load_driver(wskclient::DriverEntry, "wskclient").expect("DriverEntry");
    let h = iomgr::open(USER_PATH).expect("open");
    let data = pattern(10_000);
    let path = std::env::temp_dir().join(format!(
        "wskclient-safety-transmit-timeout-{}.bin",
        std::process::id()
    ));
    std::fs::write(&path, &data).unwrap();
    let fh = nfile::open_file_async(&path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut v = Vec::new();
        let _ = c.read_to_end(&mut v);
        v
    });
    let s = open_stream(&h, addr);
    let r = TransmitFileRequest::new(s, fh);
    let mut out = vec![0u8; TransmitResponse::SIZE];
    let t = std::time::Instant::now();
    let st = h.device_io_control(IOCTL_WSKCLIENT_TRANSMIT_FILE, r.as_bytes(), &mut out);
    assert_eq!(st.status, STATUS_IO_TIMEOUT);
    assert!(t.elapsed() >= Duration::from_secs(29), "{:?}", t.elapsed());
    let violations = ntsim::verifier::violations();
    assert!(violations.is_empty(), "{violations:#?}");
    assert_eq!(nfile::close_handle(fh), STATUS_SUCCESS);
    let _ = std::fs::remove_file(&path);
    drop(h); // closes the socket: the peer sees end-of-stream with nothing sent
    assert!(reader.join().unwrap().is_empty());
    driver.unload().expect("unload");
    assert_eq!(
        nfile::live(),
        nfile::Live::default(),
        "file objects/handles"
    );
    scope.assert_clean();
}
