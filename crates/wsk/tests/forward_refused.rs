//! `StreamSocket::receive_forwarded` / `send_forwarded` refuse an IRP without a stack
//! location for WSK below the caller's (on Windows WSK would write its stack location in
//! front of the packet: pool corruption): `STATUS_INVALID_PARAMETER`, the IRP untouched and
//! still the caller's, `ForwardedCompletion::done` not called, nothing passed to the provider
//! (no verifier violation), and the socket still usable. The accepted case is exercised
//! through the driver (tests/forwarded_irps.rs at the workspace root).

mod common;

use std::ffi::c_void;
use std::net::TcpListener;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_INVALID_PARAMETER};
use wsk::irp::OwnedIrp;
use wsk::{ForwardedCompletion, MdlBuffer, NonPagedBuffer, StreamSocket, WskClient};

static DONE: AtomicUsize = AtomicUsize::new(0);

struct Count;

// SAFETY: touches only a static counter.
unsafe impl ForwardedCompletion for Count {
    unsafe fn done(_context: *mut c_void, _status: NTSTATUS, _information: usize) {
        DONE.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn restore(
        _location: *mut windows_sys::Wdk::Foundation::IO_STACK_LOCATION,
        _len: usize,
    ) {
    }
}

#[test]
fn forwarding_needs_a_stack_location_for_wsk() {
    let scope = begin(CompletionMode::Pending);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = WskClient::register(1000).unwrap();
    let sock = StreamSocket::connect(
        &client,
        l.local_addr().unwrap(),
        Some(Duration::from_secs(5)),
    )
    .unwrap();
    let (_peer, _) = l.accept().unwrap();
    let buf = NonPagedBuffer::new(64, wsk::pool::tag(b"Test")).unwrap();
    let mdl = NonNull::new(buf.mdl()).unwrap();

    // IoAllocateIrp(1), not passed down: no current location of the caller (one past the
    // end), so no next one either.
    let irp = OwnedIrp::allocate().unwrap();
    let p = NonNull::new(irp.as_ptr()).unwrap();
    let before = unsafe { ((*p.as_ptr()).CurrentLocation, (*p.as_ptr()).StackCount) };
    // SAFETY: a live IRP we own; the call must refuse it without touching it.
    let r = unsafe { sock.receive_forwarded::<Count>(p, mdl, 64, false, std::ptr::null_mut()) };
    assert_eq!(r.map_err(|e| e.status()), Err(STATUS_INVALID_PARAMETER));
    // SAFETY: as above.
    let r = unsafe { sock.send_forwarded::<Count>(p, mdl, 64, std::ptr::null_mut()) };
    assert_eq!(r.map_err(|e| e.status()), Err(STATUS_INVALID_PARAMETER));
    let after = unsafe { ((*p.as_ptr()).CurrentLocation, (*p.as_ptr()).StackCount) };
    assert_eq!(before, after, "the IRP is untouched");
    assert_eq!(
        DONE.load(Ordering::SeqCst),
        0,
        "no completion for a refused IRP"
    );

    // The socket still works (a synchronous send reaches the provider).
    assert_eq!(sock.send(&buf, 0, 64), Ok(64));
    drop(irp);
    sock.close().unwrap();
    drop(sock);
    drop(buf);
    drop(client);
    scope.assert_clean();
}
