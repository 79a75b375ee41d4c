//! The framework's I/O path: the dispatch routine it installs in every `MajorFunction` entry
//! of the driver object, file objects (create, cleanup, close callbacks), the default queue's
//! presentation of requests, request completion and the two cancel paths (a request waiting
//! in a queue is cancelled by the framework; a driver-owned cancelable one through the
//! driver's `EvtRequestCancel`).
//!
//! Sources: "Framework File Objects", "Request Handlers", "Canceling I/O Requests",
//! "Dispatching Methods for I/O Requests" (learn.microsoft.com, WDF), and the framework's
//! documented behaviour as the open-source KMDF implements it (FxPkgGeneral::OnCreate /
//! OnCleanup / OnClose, FxIoQueue::DispatchEvents, FxIoQueue::RequestCancelable).

use std::ffi::c_void;
use std::ptr::null_mut;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_CANCELLED, STATUS_INVALID_DEVICE_REQUEST, STATUS_PENDING, STATUS_SUCCESS,
};

use super::object::{self, fx, File, Kind, Object, Owner, Request};
use super::types::*;
use crate::irp;
use crate::irql;
use crate::verifier::{self, Rule};

const IRP_MJ_CREATE: u8 = 0x00;
const IRP_MJ_CLOSE: u8 = 0x02;
const IRP_MJ_DEVICE_CONTROL: u8 = 0x0e;
const IRP_MJ_CLEANUP: u8 = 0x12;

/// Sets the IRP's status and completes it (`IoCompleteRequest`, at the caller's IRQL).
///
/// # Safety
/// The framework owns `irp` and completes it once.
pub(crate) unsafe fn complete_irp(irp: *mut IRP, status: NTSTATUS, information: usize) {
    // SAFETY: caller contract.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = status;
        (*irp).IoStatus.Information = information;
        irp::IofCompleteRequest(irp, 0);
    }
}

/// Runs a driver callback at the level its object's `ExecutionLevel` gives: PASSIVE_LEVEL
/// (on this thread if it is at PASSIVE_LEVEL, else on a worker thread, as the framework
/// defers to a work item), or — for `WdfExecutionLevelDispatch` — at the IRQL set by
/// [`super::set_dispatch_callback_irql`] (DISPATCH_LEVEL by default: the highest the
/// contract allows).
pub(crate) fn invoke_at(passive: bool, f: impl FnOnce() + Send + 'static) {
    if passive {
        if irql::current() == irql::PASSIVE_LEVEL {
            f();
        } else {
            std::thread::spawn(f);
        }
    } else {
        let level = super::dispatch_callback_irql().max(irql::current());
        irql::with_raised(level, f);
    }
}

/// Creates a request object for `irp` with the device's request attributes.
fn new_request(
    device: usize,
    irp: *mut IRP,
    major: u8,
    queue: Option<usize>,
    file: Option<usize>,
    passive: bool,
) -> Result<usize, NTSTATUS> {
    let mut fx = fx();
    let attrs = fx.device(device).and_then(|d| d.request_attributes);
    // SAFETY: the attributes were validated when the driver set them; their context type
    // info is the driver's static declaration.
    let context = unsafe { object::allocate_context(attrs.as_ref()) }?;
    let h = fx.insert(Object {
        kind: Kind::Request(Request {
            irp: irp as usize,
            major,
            queue,
            file,
            owner: if queue.is_some() {
                Owner::Queue
            } else {
                Owner::Driver
            },
            cancel: None,
            cancel_claimed: false,
            cancel_delivered: false,
            passive,
            built_mdl: 0,
        }),
        context,
        cleanup: attrs.and_then(|a| a.EvtCleanupCallback),
        destroy: attrs.and_then(|a| a.EvtDestroyCallback),
    });
    fx.by_irp.insert(irp as usize, h);
    Ok(h)
}

/// The dispatch routine the framework puts in every `MajorFunction` entry
/// (`FxDevice::Dispatch`): turns the IRP into framework callbacks.
///
/// # Safety
/// Called by the I/O manager with a live device and IRP.
pub(crate) unsafe extern "system" fn fx_dispatch(
    dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the I/O manager's IRP at our stack location.
    let (major, wdm_file) = unsafe {
        let sl = irp::current_stack_location(irp);
        ((*sl).MajorFunction, (*sl).FileObject as usize)
    };
    let device = fx().by_device_object.get(&(dev as usize)).copied();
    // SAFETY: the IRP is ours to complete in each branch.
    unsafe {
        match (major, device) {
            (IRP_MJ_CREATE, Some(d)) => on_create(d, irp, wdm_file),
            (IRP_MJ_CLEANUP, _) => on_cleanup(device, irp, wdm_file),
            (IRP_MJ_CLOSE, _) => on_close(device, irp, wdm_file),
            (IRP_MJ_DEVICE_CONTROL, Some(d)) => on_device_control(d, irp, wdm_file),
            _ => {
                complete_irp(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
                STATUS_INVALID_DEVICE_REQUEST
            }
        }
    }
}

/// IRP_MJ_CREATE: a framework file object with the file-object attributes' context, then
/// `EvtDeviceFileCreate` with a request the driver completes (or success at once if the
/// driver registered none).
unsafe fn on_create(device: usize, irp: *mut IRP, wdm_file: usize) -> NTSTATUS {
    let (config, attrs) = {
        let mut fx = fx();
        match fx.device(device) {
            Some(d) => (d.file_config, d.file_attributes),
            None => (None, None),
        }
    };
    // SAFETY: validated when set; the driver's static type info.
    let context = match unsafe { object::allocate_context(attrs.as_ref()) } {
        Ok(c) => c,
        Err(s) => {
            // SAFETY: ours to complete.
            unsafe { complete_irp(irp, s, 0) };
            return s;
        }
    };
    let file = {
        let mut fx = fx();
        let h = fx.insert(Object {
            kind: Kind::File(File {
                wdm: wdm_file,
                device,
            }),
            context,
            cleanup: attrs.and_then(|a| a.EvtCleanupCallback),
            destroy: attrs.and_then(|a| a.EvtDestroyCallback),
        });
        fx.by_file_object.insert(wdm_file, h);
        h
    };
    let Some(create) = config.and_then(|c| c.EvtDeviceFileCreate) else {
        // SAFETY: ours to complete.
        unsafe { complete_irp(irp, STATUS_SUCCESS, 0) };
        return STATUS_SUCCESS;
    };
    let request = match new_request(device, irp, IRP_MJ_CREATE, None, Some(file), true) {
        Ok(r) => r,
        Err(s) => {
            destroy_file(wdm_file);
            // SAFETY: ours to complete.
            unsafe { complete_irp(irp, s, 0) };
            return s;
        }
    };
    // SAFETY: live IRP; the request may be completed on another thread from now on.
    unsafe { irp::mark_pending(irp) };
    // EvtDeviceFileCreate runs at PASSIVE_LEVEL (the create arrives there).
    invoke_at(true, move || {
        // SAFETY: the driver's callback with live framework handles.
        unsafe {
            create(
                device as WDFDEVICE,
                request as WDFREQUEST,
                file as WDFFILEOBJECT,
            )
        }
    });
    STATUS_PENDING
}

fn destroy_file(wdm_file: usize) {
    let h = fx().by_file_object.remove(&wdm_file);
    if let Some(h) = h {
        object::destroy(h);
    }
}

fn file_callbacks(device: Option<usize>) -> Option<WDF_FILEOBJECT_CONFIG> {
    device.and_then(|d| fx().device(d).and_then(|d| d.file_config))
}

/// IRP_MJ_CLEANUP: `EvtFileCleanup`, then the requests of this file object still waiting in
/// a queue are cancelled (presented ones are the driver's to complete).
unsafe fn on_cleanup(device: Option<usize>, irp: *mut IRP, wdm_file: usize) -> NTSTATUS {
    let file = fx().by_file_object.get(&wdm_file).copied();
    if let (Some(cleanup), Some(file)) =
        (file_callbacks(device).and_then(|c| c.EvtFileCleanup), file)
    {
        // SAFETY: the driver's callback with a live file object, at PASSIVE_LEVEL.
        invoke_at(true, move || unsafe { cleanup(file as WDFFILEOBJECT) });
    }
    if let Some(file) = file {
        let waiting: Vec<usize> = {
            let mut fx = fx();
            let mut out = Vec::new();
            let queues: Vec<usize> = fx
                .objects
                .iter()
                .filter(|(_, o)| matches!(o.kind, Kind::Queue(_)))
                .map(|(&h, _)| h)
                .collect();
            for q in queues {
                let reqs: Vec<usize> = fx
                    .queue(q)
                    .map(|q| q.waiting.iter().copied().collect())
                    .unwrap_or_default();
                for r in reqs {
                    if fx.request(r).is_some_and(|r| r.file == Some(file)) {
                        if let Some(q) = fx.queue(q) {
                            q.waiting.retain(|&x| x != r);
                        }
                        out.push(r);
                    }
                }
            }
            out
        };
        for r in waiting {
            cancel_waiting(r);
        }
    }
    // SAFETY: ours to complete.
    unsafe { complete_irp(irp, STATUS_SUCCESS, 0) };
    STATUS_SUCCESS
}

/// IRP_MJ_CLOSE: `EvtFileClose`, then the file object (and its context) goes.
unsafe fn on_close(device: Option<usize>, irp: *mut IRP, wdm_file: usize) -> NTSTATUS {
    let file = fx().by_file_object.get(&wdm_file).copied();
    if let (Some(close), Some(file)) = (file_callbacks(device).and_then(|c| c.EvtFileClose), file) {
        // SAFETY: the driver's callback with a live file object, at PASSIVE_LEVEL.
        invoke_at(true, move || unsafe { close(file as WDFFILEOBJECT) });
    }
    destroy_file(wdm_file);
    // SAFETY: ours to complete.
    unsafe { complete_irp(irp, STATUS_SUCCESS, 0) };
    STATUS_SUCCESS
}

/// IRP_MJ_DEVICE_CONTROL: a request into the device's default queue (failed with
/// STATUS_INVALID_DEVICE_REQUEST if the device has none). Always pends.
unsafe fn on_device_control(device: usize, irp: *mut IRP, wdm_file: usize) -> NTSTATUS {
    let (queue, file) = {
        let mut fx = fx();
        let file = fx.by_file_object.get(&wdm_file).copied();
        let q = fx.device(device).and_then(|d| d.default_queue);
        let passive = q.and_then(|q| fx.queue(q).map(|q| q.passive));
        (q.zip(passive), file)
    };
    let Some((queue, passive)) = queue else {
        // SAFETY: ours to complete.
        unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_REQUEST, 0) };
        return STATUS_INVALID_DEVICE_REQUEST;
    };
    let request = match new_request(
        device,
        irp,
        IRP_MJ_DEVICE_CONTROL,
        Some(queue),
        file,
        passive,
    ) {
        Ok(r) => r,
        Err(s) => {
            // SAFETY: ours to complete.
            unsafe { complete_irp(irp, s, 0) };
            return s;
        }
    };
    // SAFETY: live IRP, ours: FxPkgIo marks every queued IRP pending.
    unsafe { irp::mark_pending(irp) };
    enqueue(queue, request);
    STATUS_PENDING
}

/// Presents `request` to the driver if the queue may present one more
/// (`presented < max_presented`, FxIoQueue::DispatchEvents), else keeps it waiting,
/// cancelable by the framework.
fn enqueue(queue: usize, request: usize) {
    let present = {
        let mut fx = fx();
        let Some(q) = fx.queue(queue) else {
            return;
        };
        if q.waiting.is_empty() && q.presented < q.max_presented {
            q.presented += 1;
            if let Some(r) = fx.request(request) {
                r.owner = Owner::Driver;
            }
            true
        } else {
            q.waiting.push_back(request);
            let irp = fx.request(request).map_or(0, |r| r.irp) as *mut IRP;
            // SAFETY: the framework owns the queued IRP.
            unsafe { irp::set_cancel_routine(irp, fx_queue_cancel as *mut c_void) };
            false
        }
    };
    if present {
        present_to_driver(queue, request);
        return;
    }
    // Cancelled before the cancel routine was set: the framework completes it now.
    let irp = fx().request(request).map_or(0, |r| r.irp) as *mut IRP;
    // SAFETY: live IRP (still in our table).
    let cancelled = unsafe { (*irp).Cancel } && {
        // SAFETY: as above.
        !unsafe { irp::set_cancel_routine(irp, null_mut()) }.is_null()
    };
    if cancelled {
        if let Some(q) = fx().queue(queue) {
            q.waiting.retain(|&r| r != request);
        }
        finish(request, STATUS_CANCELLED, 0);
    }
}

/// Calls the queue's `EvtIoDeviceControl` (or `EvtIoDefault`) for a request it now presents,
/// at the queue's execution level.
fn present_to_driver(queue: usize, request: usize) {
    let (callbacks, passive, irp) = {
        let mut fx = fx();
        let Some(q) = fx.queue(queue) else {
            return;
        };
        let cb = (q.evt_io_device_control, q.evt_io_default);
        let passive = q.passive;
        (cb, passive, fx.request(request).map_or(0, |r| r.irp))
    };
    // SAFETY: a live IRP_MJ_DEVICE_CONTROL IRP at our stack location.
    let (out_len, in_len, code) = unsafe {
        let p = *nt_imports::device_io_control(irp::current_stack_location(irp as *mut IRP));
        (
            p.OutputBufferLength as usize,
            p.InputBufferLength as usize,
            p.IoControlCode,
        )
    };
    match callbacks {
        (Some(devctl), _) => invoke_at(passive, move || {
            // SAFETY: the driver's callback with live handles; the request is presented.
            unsafe {
                devctl(
                    queue as WDFQUEUE,
                    request as WDFREQUEST,
                    out_len,
                    in_len,
                    code,
                )
            }
        }),
        (None, Some(default)) => invoke_at(passive, move || {
            // SAFETY: as above.
            unsafe { default(queue as WDFQUEUE, request as WDFREQUEST) }
        }),
        (None, None) => finish(request, STATUS_INVALID_DEVICE_REQUEST, 0),
    }
}

/// Presents waiting requests while the queue may present more.
fn dispatch_next(queue: usize) {
    loop {
        let next = {
            let mut fx = fx();
            let Some(q) = fx.queue(queue) else {
                return;
            };
            if q.presented >= q.max_presented {
                return;
            }
            let Some(r) = q.waiting.pop_front() else {
                return;
            };
            let irp = fx.request(r).map_or(0, |r| r.irp) as *mut IRP;
            // SAFETY: live queued IRP: take the framework's cancel routine back.
            if unsafe { irp::set_cancel_routine(irp, null_mut()) }.is_null() {
                // Being cancelled: fx_queue_cancel completes it.
                continue;
            }
            if let Some(q) = fx.queue(queue) {
                q.presented += 1;
            }
            if let Some(req) = fx.request(r) {
                req.owner = Owner::Driver;
            }
            r
        };
        present_to_driver(queue, next);
    }
}

/// The cancel routine of a request waiting in a queue: the framework completes it with
/// STATUS_CANCELLED (the driver never saw it).
unsafe extern "system" fn fx_queue_cancel(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: IoCancelIrp's contract: called with the cancel spin lock held.
    crate::irql::IoReleaseCancelSpinLock(unsafe { (*irp).CancelIrql });
    let request = {
        let mut fx = fx();
        let r = fx.by_irp.get(&(irp as usize)).copied();
        if let Some(r) = r {
            let q = fx.request(r).and_then(|r| r.queue);
            if let Some(q) = q.and_then(|q| fx.queue(q)) {
                q.waiting.retain(|&x| x != r);
            }
        }
        r
    };
    if let Some(r) = request {
        finish(r, STATUS_CANCELLED, 0);
    }
}

/// A waiting request flushed by cleanup: completed with STATUS_CANCELLED unless its cancel
/// routine already runs (which then completes it).
fn cancel_waiting(request: usize) {
    let irp = fx().request(request).map_or(0, |r| r.irp) as *mut IRP;
    if irp.is_null() {
        return;
    }
    // SAFETY: live queued IRP.
    if !unsafe { irp::set_cancel_routine(irp, null_mut()) }.is_null() {
        finish(request, STATUS_CANCELLED, 0);
    }
}

/// The cancel routine of a driver-owned cancelable request: the framework takes the request
/// off the driver-cancelable list and calls `EvtRequestCancel` (at once, or when released if
/// the test holds cancel callbacks back, as FxIoQueue defers them to its dispatch loop).
pub(crate) unsafe extern "system" fn fx_driver_cancel(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: IoCancelIrp's contract: called with the cancel spin lock held.
    crate::irql::IoReleaseCancelSpinLock(unsafe { (*irp).CancelIrql });
    let request = {
        let mut fx = fx();
        let r = fx.by_irp.get(&(irp as usize)).copied();
        let Some(r) = r else {
            return;
        };
        if let Some(req) = fx.request(r) {
            req.cancel_claimed = true;
        }
        if super::cancel_callbacks_held() {
            fx.held_cancels.push(r);
            return;
        }
        r
    };
    deliver_cancel(request);
}

/// Calls a claimed request's `EvtRequestCancel`, once.
pub(crate) fn deliver_cancel(request: usize) {
    let (cb, passive) = {
        let mut fx = fx();
        let Some(r) = fx.request(request) else {
            // Completed meanwhile: the driver completed a request whose cancel callback was
            // due (already reported as WdfCompleteCancelable).
            return;
        };
        if r.cancel_delivered {
            return;
        }
        r.cancel_delivered = true;
        (r.cancel.take(), r.passive)
    };
    if let Some(cb) = cb {
        // SAFETY: the driver's cancel callback for its live, cancelled request.
        invoke_at(passive, move || unsafe { cb(request as WDFREQUEST) });
    }
}

/// Completes a request: the IRP goes back to the I/O manager, the request object (and its
/// context) goes, a failed create destroys its file object, and the queue may present the
/// next waiting request.
pub(crate) fn finish(request: usize, status: NTSTATUS, information: usize) {
    let done = {
        let mut fx = fx();
        let Some(r) = fx.request(request) else {
            return;
        };
        let (irp, major, queue, owner, file, mdl) =
            (r.irp, r.major, r.queue, r.owner, r.file, r.built_mdl);
        fx.completed.insert(request);
        fx.by_irp.remove(&irp);
        fx.held_cancels.retain(|&r| r != request);
        (irp, major, queue, owner, file, mdl)
    };
    let (irp, major, queue, owner, file, mdl) = done;
    object::destroy(request);
    if mdl != 0 {
        // SAFETY: the MDL the framework built for this request; the IRP no longer uses it.
        unsafe { crate::mdl::IoFreeMdl(mdl as *mut _) };
    }
    // SAFETY: the framework owned the IRP through the request; completed once here.
    unsafe { complete_irp(irp as *mut IRP, status, information) };
    if major == IRP_MJ_CREATE && status < 0 {
        let wdm = file.and_then(|f| fx().file(f).map(|f| f.wdm));
        if let Some(wdm) = wdm {
            destroy_file(wdm);
        }
    }
    if let (Some(q), Owner::Driver) = (queue, owner) {
        if let Some(q) = fx().queue(q) {
            q.presented = q.presented.saturating_sub(1);
        }
        dispatch_next(q);
    }
}

/// Completion by the driver (`WdfRequestComplete*`), with KMDF Verifier's checks: a second
/// completion, a request the framework still owns, a cancelable request completed without
/// `WdfRequestUnmarkCancelable` (or completed after it returned STATUS_CANCELLED but before
/// `EvtRequestCancel` ran).
pub(crate) fn complete_by_driver(
    routine: &str,
    request: usize,
    status: NTSTATUS,
    information: usize,
) {
    {
        let mut fx = fx();
        if fx.completed.contains(&request) {
            drop(fx);
            verifier::violation(
                Rule::WdfRequestCompletedTwice,
                format!(
                    "{routine}({request:#x}, {status:#010x}): the request was already completed"
                ),
            );
            return;
        }
        let Some(r) = fx.request(request) else {
            drop(fx);
            verifier::violation(
                Rule::WdfApi,
                format!("{routine}({request:#x}): not a WDFREQUEST"),
            );
            return;
        };
        if r.owner == Owner::Queue {
            drop(fx);
            verifier::violation(
                Rule::WdfApi,
                format!(
                    "{routine}({request:#x}): the request is in a queue, not owned by the driver"
                ),
            );
            return;
        }
        let irp = r.irp as *mut IRP;
        if r.cancel.is_some() && !r.cancel_claimed {
            r.cancel = None;
            drop(fx);
            verifier::violation(
                Rule::WdfCompleteCancelable,
                format!("{routine}({request:#x}): completing a cancelable request; call WdfRequestUnmarkCancelable first"),
            );
            // SAFETY: live IRP: take the framework's cancel routine off so that the I/O
            // manager's own check does not report the same bug twice.
            unsafe { irp::set_cancel_routine(irp, null_mut()) };
        } else if r.cancel_claimed && !r.cancel_delivered {
            drop(fx);
            verifier::violation(
                Rule::WdfCompleteCancelable,
                format!("{routine}({request:#x}): completing a request whose EvtRequestCancel is due (WdfRequestUnmarkCancelable returned STATUS_CANCELLED: wait for the cancel callback)"),
            );
        }
    }
    finish(request, status, information);
}
