//! One test per verifier rule: a deliberately broken driver-side routine, and the rule that
//! must fire for it (as a bugcheck or Driver Verifier would stop Windows).

mod common;

use std::ffi::c_void;
use std::time::Duration;

use common::*;
use ntsim::verifier::{take_violations, Rule};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP, KEVENT};
use windows_sys::Wdk::System::SystemServices::*;
use windows_sys::Win32::Foundation::*;
use wsk::irp::set_completion_routine;
use wsk_sys::*;

fn expect_rule(rule: Rule) {
    let v = take_violations();
    assert!(
        v.iter().any(|x| x.rule == rule),
        "expected a {rule:?} violation, got {v:#?}"
    );
}

struct Raw {
    reg: Box<WSK_REGISTRATION>,
    _dispatch: Box<WSK_CLIENT_DISPATCH>,
    npi: WSK_PROVIDER_NPI,
}

fn raw_client() -> Raw {
    let dispatch = Box::new(WSK_CLIENT_DISPATCH {
        Version: MAKE_WSK_VERSION(1, 0),
        Reserved: 0,
        WskClientEvent: None,
    });
    let npi = WSK_CLIENT_NPI {
        ClientContext: std::ptr::null_mut(),
        Dispatch: &*dispatch,
    };
    let mut reg = Box::new(WSK_REGISTRATION::default());
    let mut p = WSK_PROVIDER_NPI {
        Client: std::ptr::null_mut(),
        Dispatch: std::ptr::null(),
    };
    // SAFETY: documented registration sequence on boxed, stable storage.
    unsafe {
        assert_eq!(WskRegister(&npi, &mut *reg), STATUS_SUCCESS);
        assert_eq!(
            WskCaptureProviderNPI(&mut *reg, WSK_NO_WAIT, &mut p),
            STATUS_SUCCESS
        );
    }
    Raw {
        reg,
        _dispatch: dispatch,
        npi: p,
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: captured and registered above.
        unsafe {
            WskReleaseProviderNPI(&mut *self.reg);
            WskDeregister(&mut *self.reg);
        }
    }
}

unsafe extern "system" fn signal(
    _d: *mut DEVICE_OBJECT,
    _i: *mut IRP,
    ctx: *mut c_void,
) -> NTSTATUS {
    // SAFETY: ctx is a live KEVENT owned by the test.
    unsafe { KeSetEvent(ctx as *mut KEVENT, 0, false) };
    STATUS_MORE_PROCESSING_REQUIRED
}

/// The broken routine: returns STATUS_SUCCESS for a driver-allocated IRP.
unsafe extern "system" fn broken(
    _d: *mut DEVICE_OBJECT,
    _i: *mut IRP,
    ctx: *mut c_void,
) -> NTSTATUS {
    // SAFETY: as above.
    unsafe { KeSetEvent(ctx as *mut KEVENT, 0, false) };
    STATUS_SUCCESS
}

fn event() -> Box<KEVENT> {
    // SAFETY: zeroed KEVENT storage initialised by KeInitializeEvent.
    let mut e: Box<KEVENT> = Box::new(unsafe { std::mem::zeroed() });
    unsafe { KeInitializeEvent(&mut *e, 0, false) };
    e
}

fn wait(e: &mut KEVENT) {
    let t: i64 = -50_000_000; // 5 s
                              // SAFETY: live event.
    let s = unsafe { KeWaitForSingleObject(e as *mut KEVENT as *const c_void, 0, 0, false, &t) };
    assert_eq!(s, STATUS_SUCCESS, "completion within 5 s");
}

/// Creates a datagram socket with a raw IRP whose completion routine is `routine`.
fn create_socket(
    c: &Raw,
    routine: wsk::irp::CompletionRoutine,
) -> (PWSK_SOCKET, *mut IRP, Box<KEVENT>) {
    let mut ev = event();
    // SAFETY: raw WSK call sequence with a fresh IRP and a live event as context.
    unsafe {
        let irp = IoAllocateIrp(1, false);
        set_completion_routine(irp, routine, &mut *ev as *mut KEVENT as *mut c_void);
        let d = &*c.npi.Dispatch;
        d.WskSocket.unwrap()(
            c.npi.Client,
            2,
            2,
            17,
            WSK_FLAG_DATAGRAM_SOCKET,
            std::ptr::null_mut(),
            std::ptr::null(),
            0,
            0,
            std::ptr::null_mut(),
            irp,
        );
        (std::ptr::null_mut(), irp, ev)
    }
}

fn close_socket(sock: PWSK_SOCKET) {
    let mut ev = event();
    // SAFETY: raw close of a live socket with a fresh IRP.
    unsafe {
        let irp = IoAllocateIrp(1, false);
        set_completion_routine(irp, signal, &mut *ev as *mut KEVENT as *mut c_void);
        let basic = &*((*sock).Dispatch as *const WSK_PROVIDER_BASIC_DISPATCH);
        basic.WskCloseSocket.unwrap()(sock, irp);
        wait(&mut ev);
        IoFreeIrp(irp);
    }
}

#[test]
fn completion_routine_must_return_more_processing_required() {
    let scope = begin(CompletionMode::Pending);
    {
        let c = raw_client();
        let (_, irp, mut ev) = create_socket(&c, broken);
        wait(&mut ev);
        ntsim::wait_quiescent(Duration::from_secs(5));
        expect_rule(Rule::CompletionRoutineStatus);
        // SAFETY: completed IRP; clean up the socket it created.
        unsafe {
            close_socket((*irp).IoStatus.Information as PWSK_SOCKET);
            IoFreeIrp(irp);
        }
    }
    scope.assert_clean();
}

#[test]
fn irp_freed_or_reused_while_pending() {
    let scope = begin(CompletionMode::Pending);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    {
        let client = wsk::WskClient::register(1000).unwrap();
        let sock =
            wsk::StreamSocket::connect(&client, listener.local_addr().unwrap(), None).unwrap();
        let (_peer, _) = listener.accept().unwrap(); // never reads
        let buf = wsk::NonPagedBuffer::new(64 << 20, 1).unwrap();
        let mut ev = event();
        // SAFETY: a raw WskSend whose IRP stays pending (64 MiB to a peer that never reads);
        // the deliberately broken calls are refused by the emulator and recorded.
        unsafe {
            use wsk::MdlBuffer;
            let mut wb = WSK_BUF {
                Mdl: buf.mdl(),
                Offset: 0,
                Length: 64 << 20,
            };
            let irp = IoAllocateIrp(1, false);
            set_completion_routine(irp, signal, &mut *ev as *mut KEVENT as *mut c_void);
            let raw = sock.as_raw();
            let d = &*((*raw).Dispatch as *const WSK_PROVIDER_CONNECTION_DISPATCH);
            assert_eq!(d.WskSend.unwrap()(raw, &mut wb, 0, irp), STATUS_PENDING);
            IoFreeIrp(irp);
            expect_rule(Rule::IrpFreedWhilePending);
            IoReuseIrp(irp, STATUS_SUCCESS);
            expect_rule(Rule::IrpReusedWhilePending);
            // Cancel it for real and wait for the completion before freeing.
            IoCancelIrp(irp);
            wait(&mut ev);
            assert_eq!((*irp).IoStatus.Anonymous.Status, STATUS_CANCELLED);
            IoFreeIrp(irp);
        }
        sock.close().unwrap();
    }
    scope.assert_clean();
}

#[test]
fn wsk_buf_longer_than_its_mdl_chain() {
    let scope = begin(CompletionMode::Inline);
    {
        let c = raw_client();
        let (_, irp, mut ev) = create_socket(&c, signal);
        wait(&mut ev);
        // SAFETY: raw calls on the socket just created; the WSK_BUF is deliberately too long.
        unsafe {
            let sock = (*irp).IoStatus.Information as PWSK_SOCKET;
            IoFreeIrp(irp);
            let buf = wsk::NonPagedBuffer::new(100, 1).unwrap();
            use wsk::MdlBuffer;
            let mut wb = WSK_BUF {
                Mdl: buf.mdl(),
                Offset: 10,
                Length: 100,
            };
            let mut to = wsk::addr::SockAddrBuf::new("127.0.0.1:9".parse().unwrap());
            let mut ev2 = event();
            let irp2 = IoAllocateIrp(1, false);
            set_completion_routine(irp2, signal, &mut *ev2 as *mut KEVENT as *mut c_void);
            let d = &*((*sock).Dispatch as *const WSK_PROVIDER_DATAGRAM_DISPATCH);
            d.WskSendTo.unwrap()(
                sock,
                &mut wb,
                0,
                to.as_mut_ptr(),
                0,
                std::ptr::null_mut(),
                irp2,
            );
            wait(&mut ev2);
            expect_rule(Rule::WskBufBeyondMdl);
            IoFreeIrp(irp2);
            close_socket(sock);
        }
    }
    scope.assert_clean();
}

#[test]
fn wait_with_timeout_above_apc_level() {
    let scope = begin(CompletionMode::Pending);
    let mut ev = event();
    let mut lock: usize = 0;
    // SAFETY: a local spin lock and event; the wait at DISPATCH_LEVEL is the deliberate bug.
    unsafe {
        let old = nt_imports_shim::acquire(&mut lock);
        let t: i64 = -10_000; // 1 ms
        KeWaitForSingleObject(&mut *ev as *mut KEVENT as *const c_void, 0, 0, false, &t);
        nt_imports_shim::release(&mut lock, old);
    }
    expect_rule(Rule::WaitAboveApcLevel);
    scope.assert_clean();
}

mod nt_imports_shim {
    extern "system" {
        fn KeAcquireSpinLockRaiseToDpc(l: *mut usize) -> u8;
        fn KeReleaseSpinLock(l: *mut usize, irql: u8);
    }
    pub unsafe fn acquire(l: *mut usize) -> u8 {
        // SAFETY: caller's lock word.
        unsafe { KeAcquireSpinLockRaiseToDpc(l) }
    }
    pub unsafe fn release(l: *mut usize, irql: u8) {
        // SAFETY: held lock.
        unsafe { KeReleaseSpinLock(l, irql) }
    }
}

#[test]
fn double_frees() {
    let scope = begin(CompletionMode::Pending);
    // SAFETY: deliberate double frees; the emulator refuses the second and records it.
    unsafe {
        let p = ExAllocatePool2(0x40, 64, 0x74736554);
        ExFreePoolWithTag(p, 0x74736554);
        ExFreePoolWithTag(p, 0x74736554);
        expect_rule(Rule::DoubleFree);
        let p = ExAllocatePool2(0x40, 64, 0x74736554);
        ExFreePoolWithTag(p, 0x41414141);
        expect_rule(Rule::PoolTagMismatch);
        let mdl = IoAllocateMdl(p, 64, false, false, std::ptr::null_mut());
        IoFreeMdl(mdl);
        IoFreeMdl(mdl);
        expect_rule(Rule::DoubleFree);
        let irp = IoAllocateIrp(1, false);
        IoFreeIrp(irp);
        IoFreeIrp(irp);
        expect_rule(Rule::DoubleFree);
    }
    scope.assert_clean();
}

#[test]
fn leaks_are_reported_by_the_scope() {
    // The leak check itself must be able to fail.
    let scope = begin(CompletionMode::Pending);
    // SAFETY: deliberately leaked, then freed after the check.
    let p = unsafe { ExAllocatePool2(0x40, 10, 0x6b61654c) };
    assert_eq!(scope.leaks().2, 10);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scope.assert_clean()));
    assert!(r.is_err(), "assert_clean must fail on a leak");
    // SAFETY: free the deliberate leak.
    unsafe { ExFreePoolWithTag(p, 0x6b61654c) };
    scope.assert_clean();
}

// ---------------------------------------------------------------------------------------
// IndicationNotReleased: a receive event keeps its list (STATUS_PENDING) and the socket is
// closed without WskRelease. Raw FFI on purpose: the safe `wsk::events` API releases on drop.
// ---------------------------------------------------------------------------------------

static KEPT: std::sync::Mutex<Option<std::sync::mpsc::Sender<usize>>> = std::sync::Mutex::new(None);

/// A broken WskReceiveFromEvent: retains every list and never releases it.
unsafe extern "system" fn keep_forever(
    _ctx: *mut c_void,
    _flags: u32,
    list: PWSK_DATAGRAM_INDICATION,
) -> NTSTATUS {
    if let Some(tx) = KEPT.lock().unwrap().as_ref() {
        let _ = tx.send(list as usize);
    }
    STATUS_PENDING
}

static KEEPER: WSK_CLIENT_DATAGRAM_DISPATCH = WSK_CLIENT_DATAGRAM_DISPATCH {
    WskReceiveFromEvent: Some(keep_forever),
};

/// Runs one raw WSK call with a fresh IRP and waits for it; returns IoStatus.
fn raw_call(f: impl FnOnce(*mut IRP)) -> (NTSTATUS, usize) {
    let mut ev = event();
    // SAFETY: fresh IRP; the routine signals our event; freed after completion.
    unsafe {
        let irp = IoAllocateIrp(1, false);
        set_completion_routine(irp, signal, &mut *ev as *mut KEVENT as *mut c_void);
        f(irp);
        wait(&mut ev);
        let r = (
            (*irp).IoStatus.Anonymous.Status,
            (*irp).IoStatus.Information,
        );
        IoFreeIrp(irp);
        r
    }
}

#[test]
fn retained_indication_not_released_before_close() {
    let scope = begin(CompletionMode::Pending);
    let (tx, rx) = std::sync::mpsc::channel();
    *KEPT.lock().unwrap() = Some(tx);
    {
        let c = raw_client();
        // SAFETY: raw WSK sequence: WskSocket with our static table, WskBind, enable the
        // receive-from event, then close without releasing.
        unsafe {
            let d = &*c.npi.Dispatch;
            let (s, info) = raw_call(|irp| {
                d.WskSocket.unwrap()(
                    c.npi.Client,
                    2,
                    2,
                    17,
                    WSK_FLAG_DATAGRAM_SOCKET,
                    std::ptr::null_mut(),
                    &KEEPER as *const _ as *const c_void,
                    0,
                    0,
                    std::ptr::null_mut(),
                    irp,
                );
            });
            assert_eq!(s, STATUS_SUCCESS);
            let sock = info as PWSK_SOCKET;
            let dg = &*((*sock).Dispatch as *const WSK_PROVIDER_DATAGRAM_DISPATCH);
            let mut addr = [0u8; 28];
            addr[0] = 2; // AF_INET, port 0
            addr[4..8].copy_from_slice(&[127, 0, 0, 1]);
            let (s, _) = raw_call(|irp| {
                dg.WskBind.unwrap()(sock, addr.as_mut_ptr() as PSOCKADDR, 0, irp);
            });
            assert_eq!(s, STATUS_SUCCESS);
            let (s, _) = raw_call(|irp| {
                dg.WskGetLocalAddress.unwrap()(sock, addr.as_mut_ptr() as PSOCKADDR, irp);
            });
            assert_eq!(s, STATUS_SUCCESS);
            let port = u16::from_be_bytes([addr[2], addr[3]]);
            let mut ctl = WSK_EVENT_CALLBACK_CONTROL {
                NpiId: &NPI_WSK_INTERFACE_ID,
                EventMask: WSK_EVENT_RECEIVE_FROM,
            };
            let s = dg.Basic.WskControlSocket.unwrap()(
                sock,
                WskSetOption,
                SO_WSK_EVENT_CALLBACK,
                0xffff,
                std::mem::size_of::<WSK_EVENT_CALLBACK_CONTROL>(),
                &mut ctl as *mut _ as *mut c_void,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            assert_eq!(s, STATUS_SUCCESS);
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.send_to(b"kept", ("127.0.0.1", port)).unwrap();
            rx.recv_timeout(Duration::from_secs(10))
                .expect("receive-from event");
            assert_eq!(ntsim::wsk::retained_indications(), 1);
            close_socket(sock);
        }
        expect_rule(Rule::IndicationNotReleased);
        assert_eq!(ntsim::wsk::retained_indications(), 0, "reclaimed at close");
    }
    *KEPT.lock().unwrap() = None;
    // The provider freed the list's pool and MDL: nothing leaked.
    scope.assert_clean();
}
