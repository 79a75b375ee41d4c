//! IRQL modelling: ntsim runs completion routines and event callbacks at DISPATCH_LEVEL
//! (inline completions too), and every routine with an IRQL limit checks it. Each test here
//! is deliberately wrong code: a routine called above its documented IRQL must leave an
//! `IrqlNotLessOrEqual` (or `WaitAboveApcLevel`) violation naming it.

use std::ffi::c_void;
use std::ptr::null_mut;

use ntsim::irql::{self, APC_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL};
use ntsim::verifier::{self, Rule};
use wsk_sys::*;

/// Runs `f`, then checks that it recorded a violation of `rule` whose text names `routine`;
/// drops the violations it recorded so the scope ends clean.
fn expect(rule: Rule, routine: &str, f: impl FnOnce()) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    f();
    let v = verifier::take_violations();
    assert!(
        v.iter()
            .any(|v| v.rule == rule && v.detail.contains(routine)),
        "expected a {rule:?} violation naming {routine}, got {v:#?}"
    );
    scope.assert_clean();
}

/// The same call at an allowed IRQL records nothing.
fn expect_none(f: impl FnOnce()) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    f();
    scope.assert_clean();
}

/// A WSK registration for the tests that need one (PASSIVE_LEVEL).
struct Registration {
    reg: Box<WSK_REGISTRATION>,
    _dispatch: Box<WSK_CLIENT_DISPATCH>,
    _npi: Box<WSK_CLIENT_NPI>,
}

fn register() -> Registration {
    let dispatch = Box::new(WSK_CLIENT_DISPATCH {
        Version: MAKE_WSK_VERSION(1, 0),
        Reserved: 0,
        WskClientEvent: None,
    });
    let npi = Box::new(WSK_CLIENT_NPI {
        ClientContext: null_mut(),
        Dispatch: &*dispatch,
    });
    let mut reg = Box::<WSK_REGISTRATION>::default();
    // SAFETY: live NPI and registration block.
    let s = unsafe { WskRegister(&*npi, &mut *reg) };
    assert_eq!(s, 0, "WskRegister");
    Registration {
        reg,
        _dispatch: dispatch,
        _npi: npi,
    }
}

impl Registration {
    fn provider(&mut self) -> WSK_PROVIDER_NPI {
        let mut p = WSK_PROVIDER_NPI {
            Client: null_mut(),
            Dispatch: std::ptr::null(),
        };
        // SAFETY: registered block, writable out NPI.
        let s = unsafe { WskCaptureProviderNPI(&mut *self.reg, WSK_INFINITE_WAIT, &mut p) };
        assert_eq!(s, 0, "WskCaptureProviderNPI");
        p
    }

    fn release(mut self, captured: bool) {
        // SAFETY: the NPI was captured by this registration; PASSIVE_LEVEL.
        unsafe {
            if captured {
                WskReleaseProviderNPI(&mut *self.reg);
            }
            WskDeregister(&mut *self.reg);
        }
    }
}

#[test]
fn wsk_register_above_passive() {
    expect(Rule::IrqlNotLessOrEqual, "WskRegister", || {
        let r = irql::with_raised(DISPATCH_LEVEL, register);
        r.release(false);
    });
}

#[test]
fn wsk_deregister_above_passive() {
    expect(Rule::IrqlNotLessOrEqual, "WskDeregister", || {
        let mut r = register();
        // SAFETY: registered block; the IRQL is the deliberate bug.
        irql::with_raised(APC_LEVEL, || unsafe { WskDeregister(&mut *r.reg) });
    });
}

#[test]
fn wsk_socket_and_close_above_dispatch() {
    let mut r = register();
    let p = r.provider();
    // SAFETY: captured provider NPI.
    let d = unsafe { &*p.Dispatch };
    expect(Rule::IrqlNotLessOrEqual, "WskSocket", || {
        // No IRP: the provider refuses the call after the IRQL check.
        irql::with_raised(DISPATCH_LEVEL + 1, || unsafe {
            (d.WskSocket.unwrap())(
                p.Client,
                2,
                2,
                17,
                WSK_FLAG_DATAGRAM_SOCKET,
                null_mut(),
                std::ptr::null(),
                0,
                0,
                null_mut(),
                null_mut(),
            )
        });
    });
    expect(Rule::IrqlNotLessOrEqual, "WskSocketConnect", || {
        irql::with_raised(DISPATCH_LEVEL + 1, || unsafe {
            (d.WskSocketConnect.unwrap())(
                p.Client,
                1,
                6,
                null_mut(),
                null_mut(),
                0,
                null_mut(),
                std::ptr::null(),
                0,
                0,
                null_mut(),
                null_mut(),
            )
        });
    });
    r.release(true);
}

#[test]
fn io_complete_request_and_cancel_above_dispatch() {
    expect(Rule::IrqlNotLessOrEqual, "IoCompleteRequest", || {
        let irp = ntsim::irp::IoAllocateIrp(1, false);
        // SAFETY: a live IRP that was never sent anywhere; completing it is a second bug the
        // verifier also reports.
        irql::with_raised(DISPATCH_LEVEL + 1, || unsafe {
            ntsim::irp::IofCompleteRequest(irp, 0)
        });
        let _ = verifier::take_violations()
            .into_iter()
            .filter(|v| v.rule == Rule::IrqlNotLessOrEqual)
            .map(|v| verifier::violation(v.rule, v.detail))
            .count();
        ntsim::irp::IoFreeIrp(irp);
    });
    expect(Rule::IrqlNotLessOrEqual, "IoCancelIrp", || {
        let irp = ntsim::irp::IoAllocateIrp(1, false);
        // SAFETY: a live IRP; no cancel routine is set.
        irql::with_raised(DISPATCH_LEVEL + 1, || unsafe {
            ntsim::irp::IoCancelIrp(irp);
        });
        ntsim::irp::IoFreeIrp(irp);
    });
}

#[test]
fn wait_with_timeout_above_apc() {
    let mut ev = std::mem::MaybeUninit::<[u8; 24]>::zeroed();
    let ev = ev.as_mut_ptr().cast::<c_void>();
    // SAFETY: a KEVENT-sized local, initialised signalled so no wait blocks.
    unsafe { ntsim::event::KeInitializeEvent(ev.cast(), ntsim::event::NOTIFICATION_EVENT, true) };
    let timeout: i64 = -10_000;
    expect(Rule::WaitAboveApcLevel, "non-zero timeout", || {
        // SAFETY: a live event; the IRQL is the deliberate bug.
        irql::with_raised(DISPATCH_LEVEL, || unsafe {
            ntsim::event::KeWaitForSingleObject(ev, 0, 0, false, &timeout)
        });
    });
    // A zero timeout is allowed at DISPATCH_LEVEL.
    let zero: i64 = 0;
    expect_none(|| {
        // SAFETY: as above.
        irql::with_raised(DISPATCH_LEVEL, || unsafe {
            ntsim::event::KeWaitForSingleObject(ev, 0, 0, false, &zero)
        });
    });
}

#[test]
fn zw_read_file_above_passive() {
    expect(Rule::IrqlNotLessOrEqual, "ZwReadFile", || {
        // SAFETY: NULL arguments are refused after the IRQL check.
        irql::with_raised(APC_LEVEL, || unsafe {
            ntsim::file::ZwReadFile(
                null_mut(),
                null_mut(),
                std::ptr::null(),
                std::ptr::null(),
                null_mut(),
                null_mut(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        });
    });
}

#[test]
fn ob_reference_object_by_handle_above_apc() {
    expect(
        Rule::IrqlNotLessOrEqual,
        "ObReferenceObjectByHandle",
        || {
            let mut obj = null_mut();
            // SAFETY: an unknown handle is refused after the IRQL check.
            irql::with_raised(DISPATCH_LEVEL, || unsafe {
                ntsim::file::ObReferenceObjectByHandle(
                    0x1234 as *mut c_void,
                    0,
                    std::ptr::null(),
                    0,
                    &mut obj,
                    null_mut(),
                )
            });
        },
    );
}

#[test]
fn io_create_device_above_passive() {
    expect(Rule::IrqlNotLessOrEqual, "IoCreateDevice", || {
        let mut dev = null_mut();
        // SAFETY: a NULL driver object is refused after the IRQL check (and is reported).
        irql::with_raised(DISPATCH_LEVEL, || unsafe {
            ntsim::iomgr::IoCreateDevice(null_mut(), 0, std::ptr::null(), 0, 0, false, &mut dev)
        });
        // Keep only the IRQL violation for `expect`.
        for v in verifier::take_violations() {
            if v.rule == Rule::IrqlNotLessOrEqual {
                verifier::violation(v.rule, v.detail);
            }
        }
    });
}

/// Completion routines run at DISPATCH_LEVEL on both provider paths: when the provider
/// completes an IRP inline, inside the dispatch call made at PASSIVE_LEVEL, the routine
/// still runs raised (and the caller's IRQL is restored afterwards).
#[test]
fn inline_and_pending_completion_routines_run_at_dispatch() {
    for mode in [
        ntsim::config::CompletionMode::Inline,
        ntsim::config::CompletionMode::Pending,
    ] {
        expect_none(|| {
            ntsim::config::set_completion_mode(mode);
            let mut r = register();
            let p = r.provider();
            // SAFETY: captured provider NPI.
            let d = unsafe { &*p.Dispatch };
            static SEEN: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0xff);
            SEEN.store(0xff, std::sync::atomic::Ordering::SeqCst);
            unsafe extern "system" fn done(
                _dev: *mut c_void,
                _irp: *mut c_void,
                ev: *mut c_void,
            ) -> i32 {
                SEEN.store(irql::current(), std::sync::atomic::Ordering::SeqCst);
                // SAFETY: the event the test waits on.
                unsafe { ntsim::event::KeSetEvent(ev.cast(), 0, false) };
                0xC000_0016u32 as i32 // STATUS_MORE_PROCESSING_REQUIRED
            }
            let mut ev = Box::new([0u8; 24]);
            let evp = ev.as_mut_ptr().cast::<c_void>();
            // SAFETY: a KEVENT-sized block.
            unsafe {
                ntsim::event::KeInitializeEvent(evp.cast(), ntsim::event::NOTIFICATION_EVENT, false)
            };
            let irp = ntsim::irp::IoAllocateIrp(1, false);
            // SAFETY: a fresh IRP with one stack location: set the completion routine in it
            // (IoSetCompletionRoutine), then create a datagram socket at PASSIVE_LEVEL.
            unsafe {
                let sl = ntsim::irp::current_stack_location(irp.cast()).sub(1);
                (*sl).CompletionRoutine = Some(std::mem::transmute::<
                    unsafe extern "system" fn(*mut c_void, *mut c_void, *mut c_void) -> i32,
                    unsafe extern "system" fn() -> i32,
                >(done));
                (*sl).Context = evp;
                (*sl).Control = 0xe0;
                assert_eq!(irql::current(), PASSIVE_LEVEL);
                (d.WskSocket.unwrap())(
                    p.Client,
                    2,
                    2,
                    17,
                    WSK_FLAG_DATAGRAM_SOCKET,
                    null_mut(),
                    std::ptr::null(),
                    0,
                    0,
                    null_mut(),
                    irp.cast(),
                );
                let t: i64 = -50_000_000;
                assert_eq!(
                    ntsim::event::KeWaitForSingleObject(evp, 0, 0, false, &t),
                    0,
                    "completion within 5 s"
                );
                assert_eq!(irql::current(), PASSIVE_LEVEL, "{mode:?}: IRQL restored");
                let sock = (*irp).IoStatus.Information as *mut WSK_SOCKET;
                assert!(!sock.is_null());
                ntsim::irp::IoReuseIrp(irp, 0);
                let sl = ntsim::irp::current_stack_location(irp.cast()).sub(1);
                (*sl).CompletionRoutine = Some(std::mem::transmute::<
                    unsafe extern "system" fn(*mut c_void, *mut c_void, *mut c_void) -> i32,
                    unsafe extern "system" fn() -> i32,
                >(done));
                (*sl).Context = evp;
                (*sl).Control = 0xe0;
                ntsim::event::KeClearEvent(evp.cast());
                let basic = &*((*sock).Dispatch as *const WSK_PROVIDER_BASIC_DISPATCH);
                // Deliberately wrong: WskCloseSocket above DISPATCH_LEVEL (without an IRP, so
                // the provider refuses it after the IRQL check and the socket stays open).
                irql::with_raised(DISPATCH_LEVEL + 1, || {
                    (basic.WskCloseSocket.unwrap())(sock, null_mut())
                });
                let v = verifier::take_violations();
                assert!(
                    v.iter().any(|v| v.rule == Rule::IrqlNotLessOrEqual
                        && v.detail.contains("WskCloseSocket")),
                    "WskCloseSocket above DISPATCH_LEVEL: {v:#?}"
                );
                (basic.WskCloseSocket.unwrap())(sock, irp.cast());
                assert_eq!(
                    ntsim::event::KeWaitForSingleObject(evp, 0, 0, false, &t),
                    0,
                    "close completion within 5 s"
                );
                ntsim::irp::IoFreeIrp(irp);
            }
            assert_eq!(
                SEEN.load(std::sync::atomic::Ordering::SeqCst),
                DISPATCH_LEVEL,
                "{mode:?}: completion routine IRQL"
            );
            r.release(true);
        });
    }
}
