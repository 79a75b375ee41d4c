//! I/O completion ports as user mode sees them: `CreateIoCompletionPort` (a port, and the
//! association of a handle with it under a completion key), `GetQueuedCompletionStatus` with a
//! bounded wait, and `PostQueuedCompletionStatus`.
//!
//! A request issued on an associated handle ([`UserHandle::device_io_control_overlapped`])
//! queues one packet when it finishes I/O completion, unless it failed synchronously: as
//! `IopCompleteRequest` does it, a request whose IRP was never marked pending and that completed
//! with an error status (NT_ERROR), or that never reached the driver, queues nothing (the
//! caller's `DeviceIoControl` returned FALSE with that error instead). Source: "I/O Completion
//! Ports" (learn.microsoft.com, Win32 file I/O) and "GetQueuedCompletionStatus function".
//! Not modelled: the concurrency value (every waiting thread may take a packet),
//! `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`, LIFO wake order of waiting threads.
//!
//! [`UserHandle::device_io_control_overlapped`]: super::UserHandle::device_io_control_overlapped

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{IoStatus, Overlapped};

/// One completion packet, as `GetQueuedCompletionStatus` returns it.
#[derive(Debug)]
pub struct CompletionPacket {
    /// The completion key: the one the handle was associated with, or the one posted.
    pub key: usize,
    /// The final status of the request (`lpNumberOfBytesTransferred` is `information`), or
    /// what was posted.
    pub status: IoStatus,
    /// The finished request (`lpOverlapped`); `None` for a posted packet.
    pub overlapped: Option<Overlapped>,
    /// For a posted packet, the value given as `lpOverlapped`; 0 otherwise.
    pub posted: usize,
}

#[derive(Default)]
struct Queue {
    packets: VecDeque<CompletionPacket>,
}

pub(crate) struct PortInner {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl PortInner {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, packet: CompletionPacket) {
        self.queue().packets.push_back(packet);
        self.ready.notify_one();
    }
}

/// An I/O completion port (`CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0)`). Clones
/// share the port.
#[derive(Clone)]
pub struct CompletionPort {
    pub(crate) inner: Arc<PortInner>,
}

impl std::fmt::Debug for CompletionPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionPort")
            .field("queued", &self.queued())
            .finish()
    }
}

impl Default for CompletionPort {
    fn default() -> Self {
        Self::new()
    }
}

impl CompletionPort {
    /// A new port with an empty queue.
    pub fn new() -> CompletionPort {
        CompletionPort {
            inner: Arc::new(PortInner {
                queue: Mutex::new(Queue::default()),
                ready: Condvar::new(),
            }),
        }
    }

    /// `GetQueuedCompletionStatus(port, ..., timeout)`: the oldest queued packet, waiting at
    /// most `timeout` for one; `None` when none came (`WAIT_TIMEOUT`).
    pub fn get(&self, timeout: Duration) -> Option<CompletionPacket> {
        let deadline = Instant::now() + timeout;
        let mut q = self.inner.queue();
        loop {
            if let Some(p) = q.packets.pop_front() {
                return Some(p);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            q = self
                .inner
                .ready
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// `PostQueuedCompletionStatus(port, information, key, posted)`: queues a packet that no
    /// request produced (status `STATUS_SUCCESS`).
    pub fn post(&self, key: usize, information: usize, posted: usize) {
        self.inner.push(CompletionPacket {
            key,
            status: IoStatus {
                status: 0,
                information,
            },
            overlapped: None,
            posted,
        });
    }

    /// Packets queued and not yet taken.
    pub fn queued(&self) -> usize {
        self.inner.queue().packets.len()
    }
}
