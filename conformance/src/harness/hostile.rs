//! Tools for the hostile and dying-peer cases: the harness maps the set's header a second
//! time and writes into it what a crashed or broken peer would leave there. The header is
//! all atomics, so this needs no unsafe code.

use std::sync::atomic::Ordering;
use std::time::Duration;
use vdisim::shm::layout::{abort_by, SetHeader, RING_SLOTS};
use vdisim::shm::{self, ring, HeaderMapping};

/// A pid above Linux's `pid_max` limit (4194304): no process has it, so a liveness token
/// naming it reads as a dead process, which is what a SIGKILLed peer leaves behind.
pub(crate) const DEAD_PID: u32 = 0x7FFF_FFF0;

fn instance() -> String {
    shm::normalize_instance(None).unwrap_or_else(|_| shm::DEFAULT_INSTANCE.to_string())
}

/// A second mapping of a set's header, if the set exists.
pub(crate) fn header(set: &str) -> Option<HeaderMapping> {
    shm::open_header(&instance(), set, Duration::from_millis(200)).ok()
}

/// Whether the set's header segment still exists (`None` where that cannot be seen).
pub(crate) fn segment_exists(set: &str) -> Option<bool> {
    if cfg!(target_os = "linux") {
        let name = shm::header_segment_name(&instance(), set);
        Some(
            std::path::Path::new("/dev/shm")
                .join(name.trim_start_matches('/'))
                .exists(),
        )
    } else {
        None
    }
}

/// Removes whatever is left of a set (header and buffer area), e.g. after a killed process.
pub(crate) fn unlink_set(set: &str) {
    let inst = instance();
    if let Some(h) = header(set) {
        let generation = h.header().buffer_generation.load(Ordering::Acquire);
        if generation != 0 {
            shm::unlink(&shm::buffer_segment_name(&inst, set, generation));
        }
    }
    shm::unlink(&shm::header_segment_name(&inst, set));
}

/// Publishes an abort by `by` directly in the header and wakes every waiter (for stopping a
/// client the harness never got to open as a server).
pub(crate) fn force_abort(h: &SetHeader, by: u32) {
    let _ = h
        .abort
        .compare_exchange(abort_by::NONE, by, Ordering::AcqRel, Ordering::Acquire);
    ring::notify_all(&h.set_wake);
    for d in h.devices.iter() {
        ring::notify_all(&d.commands.wake.0);
        ring::notify_all(&d.completions.wake.0);
    }
}

/// The server "dies": its liveness token now names no process.
pub(crate) fn kill_server_token(h: &SetHeader) {
    h.server.pid.store(DEAD_PID, Ordering::Release);
    ring::notify_all(&h.set_wake);
}

/// The client "dies": its liveness token now names no process.
pub(crate) fn kill_client_token(h: &SetHeader) {
    h.client.pid.store(DEAD_PID, Ordering::Release);
    ring::notify_all(&h.set_wake);
}

/// What garbage to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Garbage {
    /// A Write whose buffer lies far outside the buffer area.
    BufferOutsideArea,
    /// A command with code 0, which is no VDI command.
    BadCommandCode,
    /// The producer index jumps far ahead of the consumer.
    RingIndexJump,
    /// A completion for a command id that was never sent.
    UnknownCompletionId,
    /// A completion claiming more bytes than the command's size.
    BytesExceedSize { id: u64, size: u32 },
}

/// Writes garbage into device `device`'s command ring (as a broken server would).
pub(crate) fn garbage_command(h: &SetHeader, device: usize, what: Garbage) {
    let Some(d) = h.devices.get(device) else { return };
    let r = &d.commands;
    let tail = r.tail.0.load(Ordering::Acquire);
    if what == Garbage::RingIndexJump {
        r.tail
            .0
            .store(tail.wrapping_add(10 * RING_SLOTS as u64), Ordering::Release);
    } else {
        let slot = &r.slots[(tail % RING_SLOTS as u64) as usize];
        slot.id.store(1 << 40, Ordering::Relaxed);
        let (code, offset) = match what {
            Garbage::BadCommandCode => (0, u64::MAX),
            _ => (vdisim::vdi::CommandCode::Write.code(), 1 << 50),
        };
        slot.code.store(code, Ordering::Relaxed);
        slot.size.store(65536, Ordering::Relaxed);
        slot.position.store(0, Ordering::Relaxed);
        slot.buffer_offset.store(offset, Ordering::Relaxed);
        r.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        // Published as a well-formed record (its slot's seq), so only its content is garbage.
        slot.seq.store(tail.wrapping_add(1), Ordering::Release);
    }
    ring::notify_all(&r.wake.0);
}

/// Writes garbage into device `device`'s completion ring (as a broken client would).
pub(crate) fn garbage_completion(h: &SetHeader, device: usize, what: Garbage) {
    let Some(d) = h.devices.get(device) else { return };
    let r = &d.completions;
    let tail = r.tail.0.load(Ordering::Acquire);
    match what {
        Garbage::RingIndexJump => {
            r.tail
                .0
                .store(tail.wrapping_add(10 * RING_SLOTS as u64), Ordering::Release);
        }
        _ => {
            let slot = &r.slots[(tail % RING_SLOTS as u64) as usize];
            let (id, bytes) = match what {
                Garbage::BytesExceedSize { id, size } => (id, size.saturating_add(4096)),
                _ => (1 << 40, 0),
            };
            slot.id.store(id, Ordering::Relaxed);
            slot.code.store(0, Ordering::Relaxed);
            slot.bytes.store(bytes, Ordering::Relaxed);
            slot.position.store(0, Ordering::Relaxed);
            r.tail.0.store(tail.wrapping_add(1), Ordering::Release);
            slot.seq.store(tail.wrapping_add(1), Ordering::Release);
        }
    }
    ring::notify_all(&r.wake.0);
}

/// Whether the set was aborted (by, reason), read straight from the header.
pub(crate) fn abort_state(h: &SetHeader) -> Option<(u32, u32)> {
    match h.abort.load(Ordering::Acquire) {
        abort_by::NONE => None,
        by => Some((by, h.abort_reason.load(Ordering::Acquire))),
    }
}

/// Whether a server ever opened the set.
pub(crate) fn server_connected(h: &SetHeader) -> bool {
    h.phase.load(Ordering::Acquire) != vdisim::shm::layout::phase::WAITING
}

/// Whether the server called Close.
pub(crate) fn server_closed(h: &SetHeader) -> bool {
    h.phase.load(Ordering::Acquire) == vdisim::shm::layout::phase::SERVER_CLOSED
}

/// Whether the client opened device `i` (the claim flag in the header).
pub(crate) fn client_opened(h: &SetHeader, i: usize) -> bool {
    h.devices
        .get(i)
        .is_some_and(|d| d.client_opened.load(Ordering::Acquire) != 0)
}
