//! The provider's I/O thread: a mio poll loop over every socket's descriptor, plus a work
//! queue through which dispatch routines hand it deferred completions and socket kicks.

use rustc_hash::FxHashMap;
use std::os::fd::RawFd;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use windows_sys::Wdk::Foundation::IRP;
use windows_sys::Win32::Foundation::NTSTATUS;

use super::socket::SimSocket;

const WAKER: Token = Token(usize::MAX);

/// Work for the I/O thread.
pub(crate) enum Work {
    /// Try the socket's queued operations again.
    Kick(usize),
    /// Complete an IRP (the pending path of an operation that finished in its dispatch call).
    Complete(usize, NTSTATUS, usize),
    /// Signal when everything queued before this has been done.
    Barrier(SyncSender<()>),
}

pub(crate) struct IoThread {
    registry: Registry,
    waker: Waker,
    work: Mutex<Vec<Work>>,
    sockets: Mutex<FxHashMap<usize, Arc<SimSocket>>>,
}

static IO: OnceLock<IoThread> = OnceLock::new();

pub(crate) fn io() -> &'static IoThread {
    IO.get_or_init(|| {
        let poll = Poll::new().unwrap_or_else(|e| panic!("ntsim: mio Poll::new failed: {e}"));
        let registry = poll
            .registry()
            .try_clone()
            .unwrap_or_else(|e| panic!("ntsim: registry clone failed: {e}"));
        let waker =
            Waker::new(poll.registry(), WAKER).unwrap_or_else(|e| panic!("ntsim: waker: {e}"));
        std::thread::Builder::new()
            .name("ntsim-wsk-io".into())
            .spawn(move || run(poll))
            .unwrap_or_else(|e| panic!("ntsim: spawn I/O thread: {e}"));
        IoThread {
            registry,
            waker,
            work: Mutex::new(Vec::with_capacity(256)),
            sockets: Mutex::new(FxHashMap::with_capacity_and_hasher(256, Default::default())),
        }
    })
}

impl IoThread {
    pub(crate) fn push(&self, w: Work) {
        self.work.lock().unwrap_or_else(|p| p.into_inner()).push(w);
        let _ = self.waker.wake();
    }

    pub(crate) fn register(&self, fd: RawFd, key: usize) -> std::io::Result<()> {
        self.registry.register(
            &mut SourceFd(&fd),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    pub(crate) fn deregister(&self, fd: RawFd) {
        let _ = self.registry.deregister(&mut SourceFd(&fd));
    }

    pub(crate) fn sockets(&self) -> MutexGuard<'_, FxHashMap<usize, Arc<SimSocket>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn socket(&self, key: usize) -> Option<Arc<SimSocket>> {
        self.sockets().get(&key).cloned()
    }
}

fn run(mut poll: Poll) {
    let mut events = Events::with_capacity(256);
    // The batch being run; swapped with the shared queue each round, so both vectors keep
    // their capacity and a steady state of pushes does not allocate.
    let mut work: Vec<Work> = Vec::with_capacity(256);
    loop {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(500))) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                eprintln!("ntsim: poll failed: {e}");
            }
            continue;
        }
        let io = io();
        for ev in events.iter() {
            if ev.token() != WAKER {
                if let Some(s) = io.socket(ev.token().0) {
                    s.pump();
                }
            }
        }
        debug_assert!(work.is_empty());
        std::mem::swap(
            &mut work,
            &mut *io.work.lock().unwrap_or_else(|p| p.into_inner()),
        );
        // A seeded schedule (crate::sched) reorders the batch's completions and puts some off
        // by a round; a barrier is put off with them, so it still waits for all earlier work.
        let barriers: Vec<Work> = if crate::sched::seed().is_some() {
            let (b, mut rest): (Vec<Work>, Vec<Work>) = work
                .into_iter()
                .partition(|w| matches!(w, Work::Barrier(_)));
            crate::sched::shuffle(&mut rest);
            work = rest;
            b
        } else {
            Vec::new()
        };
        let mut later = Vec::new();
        for w in work.drain(..) {
            if matches!(w, Work::Complete(..)) && crate::sched::delay_completion() {
                later.push(w);
                continue;
            }
            match w {
                Work::Kick(key) => {
                    if let Some(s) = io.socket(key) {
                        s.pump();
                    }
                }
                Work::Complete(irp, status, info) => {
                    crate::irp::complete(irp as *mut IRP, status, info)
                }
                Work::Barrier(tx) => {
                    let _ = tx.send(());
                }
            }
        }
        if later.is_empty() {
            for w in barriers {
                if let Work::Barrier(tx) = w {
                    let _ = tx.send(());
                }
            }
        } else {
            later.extend(barriers);
            let mut q = io.work.lock().unwrap_or_else(|p| p.into_inner());
            // Put off work goes before anything queued meanwhile.
            let newer = std::mem::replace(&mut *q, later);
            q.extend(newer);
            drop(q);
            let _ = io.waker.wake();
        }
    }
}

/// Waits (at most `limit`) until the I/O thread has done all work queued before the call.
pub fn wait_quiescent(limit: Duration) -> bool {
    let (tx, rx) = sync_channel(1);
    io().push(Work::Barrier(tx));
    rx.recv_timeout(limit).is_ok()
}
