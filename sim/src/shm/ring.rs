//! Single-producer single-consumer rings over [`Ring`], and bounded waits on wake words.
//!
//! Each side keeps its own ring index in process memory and only reads the peer's index from
//! shared memory, validating it: a hostile or broken peer can make a ring look empty or full,
//! or be reported as misbehaving, but never make us read outside the slot array.

use super::layout::{Ring, RING_SLOTS};
use super::platform;
use crate::protocol::PeerMisbehaved;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const MASK: u64 = RING_SLOTS as u64 - 1;

/// The producer's private view of a ring.
#[derive(Debug)]
pub struct Producer {
    tail: u64,
}

/// The consumer's private view of a ring.
#[derive(Debug)]
pub struct Consumer {
    head: u64,
}

impl Producer {
    /// Starts producing at the ring's current tail (trusted once, at device open).
    pub fn attach<S>(ring: &Ring<S>) -> Producer {
        Producer {
            tail: ring.tail.0.load(Ordering::Acquire),
        }
    }

    /// Publishes one record written by `fill` into the next free slot. `Ok(false)`: full.
    pub fn push<S>(
        &mut self,
        ring: &Ring<S>,
        device: usize,
        name: &'static str,
        fill: impl FnOnce(&S),
    ) -> Result<bool, PeerMisbehaved> {
        let head = ring.head.0.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        if used > RING_SLOTS as u64 {
            return Err(PeerMisbehaved::RingIndex {
                device,
                ring: name,
                head,
                tail: self.tail,
                capacity: RING_SLOTS as u64,
            });
        }
        if used == RING_SLOTS as u64 {
            return Ok(false);
        }
        fill(&ring.slots[(self.tail & MASK) as usize]);
        self.tail = self.tail.wrapping_add(1);
        // SYNC POINT: the slot's fields happen-before the consumer's Acquire load of `tail`.
        ring.tail.0.store(self.tail, Ordering::Release);
        notify(&ring.wake.0, &ring.waiters);
        Ok(true)
    }
}

impl Consumer {
    /// Starts consuming at the ring's current head (trusted once, at device open).
    pub fn attach<S>(ring: &Ring<S>) -> Consumer {
        Consumer {
            head: ring.head.0.load(Ordering::Acquire),
        }
    }

    /// Whether a record is waiting, after validating the producer's index.
    pub fn has_next<S>(&self, ring: &Ring<S>, device: usize, name: &'static str) -> Result<bool, PeerMisbehaved> {
        // SYNC POINT: pairs with the producer's Release store of `tail`.
        let tail = ring.tail.0.load(Ordering::Acquire);
        let available = tail.wrapping_sub(self.head);
        if available > RING_SLOTS as u64 {
            return Err(PeerMisbehaved::RingIndex {
                device,
                ring: name,
                head: self.head,
                tail,
                capacity: RING_SLOTS as u64,
            });
        }
        Ok(available > 0)
    }

    /// Takes the next record through `read`, if there is one.
    pub fn pop<S, R>(
        &mut self,
        ring: &Ring<S>,
        device: usize,
        name: &'static str,
        read: impl FnOnce(&S) -> R,
    ) -> Result<Option<R>, PeerMisbehaved> {
        if !self.has_next(ring, device, name)? {
            return Ok(None);
        }
        let record = read(&ring.slots[(self.head & MASK) as usize]);
        self.head = self.head.wrapping_add(1);
        // Frees the slot for the producer; the record was copied out above.
        ring.head.0.store(self.head, Ordering::Release);
        Ok(Some(record))
    }
}

/// Wakes whoever waits on a wake word (after the caller published what they wait for).
pub fn notify(wake: &AtomicU32, waiters: &AtomicU32) {
    // SYNC POINT: SeqCst on both sides (here and in `wait_for`) orders "publish, bump, read
    // waiters" against "announce waiter, read wake, re-check": no lost wake-up.
    wake.fetch_add(1, Ordering::SeqCst);
    if waiters.load(Ordering::SeqCst) > 0 {
        platform::wake_all(wake);
    }
}

/// Wakes everyone on a word regardless of the waiter count (set-level events, abort).
pub fn notify_all(wake: &AtomicU32) {
    wake.fetch_add(1, Ordering::SeqCst);
    platform::wake_all(wake);
}

/// How long one blocking slice lasts: liveness and abort are re-checked at least this often.
pub const SLICE: Duration = Duration::from_millis(50);
/// Busy-poll iterations before yielding, then blocking.
pub const SPINS: u32 = 64;
/// Yields before blocking.
pub const YIELDS: u32 = 16;

/// What a wait's `poll` closure is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Only cheap checks (shared-memory reads).
    Fast,
    /// Also the expensive ones (peer liveness): once per blocking slice.
    Full,
}

/// Waits until `poll` returns `Some`, an error, or `deadline` passes (`Ok(None)`).
/// Spins briefly, yields, then blocks on `wake` in slices of at most [`SLICE`]; a blocked
/// waiter uses no CPU. `deadline = None` waits without end but still re-checks every slice.
pub fn wait_for<T, E>(
    wake: &AtomicU32,
    waiters: Option<&AtomicU32>,
    deadline: Option<Instant>,
    mut poll: impl FnMut(Check) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    for i in 0..SPINS + YIELDS {
        if let Some(v) = poll(Check::Fast)? {
            return Ok(Some(v));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return poll(Check::Full);
        }
        if i < SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    loop {
        if let Some(w) = waiters {
            w.fetch_add(1, Ordering::SeqCst);
        }
        let seen = wake.load(Ordering::SeqCst);
        let ready = poll(Check::Full);
        let ready = match ready {
            Ok(None) => {
                let slice = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                    None => SLICE,
                };
                if !slice.is_zero() {
                    platform::wait_on(wake, seen, slice);
                }
                Ok(None)
            }
            other => other,
        };
        if let Some(w) = waiters {
            w.fetch_sub(1, Ordering::SeqCst);
        }
        match ready? {
            Some(v) => return Ok(Some(v)),
            None if deadline.is_some_and(|d| Instant::now() >= d) => return poll(Check::Full),
            None => {}
        }
    }
}

/// A deadline from a VDI millisecond timeout: `INFINITE` is none.
pub fn deadline_after(timeout_ms: u32) -> Option<Instant> {
    if timeout_ms == crate::vdi::INFINITE {
        None
    } else {
        Some(Instant::now() + Duration::from_millis(u64::from(timeout_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::CommandSlot;
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn ring() -> Box<Ring<CommandSlot>> {
        // SAFETY: every field of Ring<CommandSlot> is an atomic integer (or padding around
        // one), for which all-zero bytes are a valid value.
        unsafe { Box::new_zeroed().assume_init() }
    }

    #[test]
    fn push_pop_in_order_until_full() {
        let r = ring();
        let (mut p, mut c) = (Producer::attach(&*r), Consumer::attach(&*r));
        for i in 0..RING_SLOTS as u64 {
            assert!(p.push(&r, 0, "cmd", |s| s.id.store(i, Ordering::Relaxed)).unwrap());
        }
        assert!(!p.push(&r, 0, "cmd", |_| ()).unwrap(), "full");
        for i in 0..RING_SLOTS as u64 {
            assert_eq!(c.pop(&r, 0, "cmd", |s| s.id.load(Ordering::Relaxed)).unwrap(), Some(i));
        }
        assert_eq!(c.pop(&r, 0, "cmd", |_| ()).unwrap(), None);
    }

    #[test]
    fn hostile_indices_are_reported_not_followed() {
        let r = ring();
        let mut c = Consumer::attach(&*r);
        r.tail.0.store(RING_SLOTS as u64 + 1, Ordering::SeqCst);
        assert!(matches!(
            c.pop(&r, 3, "cmd", |_| ()),
            Err(PeerMisbehaved::RingIndex { device: 3, .. })
        ));
        r.tail.0.store(u64::MAX, Ordering::SeqCst);
        assert!(c.pop(&r, 3, "cmd", |_| ()).is_err());
        let mut p = Producer::attach(&*r);
        r.head.0.store(p.tail.wrapping_add(5), Ordering::SeqCst);
        assert!(p.push(&r, 3, "cmd", |_| ()).is_err());
    }

    #[test]
    fn wait_for_times_out_and_sees_a_late_value() {
        let wake = AtomicU32::new(0);
        let waiters = AtomicU32::new(0);
        let t = Instant::now();
        let r: Result<Option<()>, ()> =
            wait_for(&wake, Some(&waiters), Some(t + Duration::from_millis(60)), |_| Ok(None));
        assert_eq!(r, Ok(None));
        assert!(t.elapsed() >= Duration::from_millis(60));
        assert_eq!(waiters.load(Ordering::SeqCst), 0);

        let value = std::sync::Arc::new(AtomicU64::new(0));
        let wake = std::sync::Arc::new(AtomicU32::new(0));
        let waiters = std::sync::Arc::new(AtomicU32::new(0));
        let (v2, w2, n2) = (value.clone(), wake.clone(), waiters.clone());
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            v2.store(7, Ordering::SeqCst);
            notify(&w2, &n2);
        });
        let got: Result<Option<u64>, ()> = wait_for(&wake, Some(&waiters), None, |_| {
            Ok(match value.load(Ordering::SeqCst) {
                0 => None,
                v => Some(v),
            })
        });
        assert_eq!(got, Ok(Some(7)));
        h.join().unwrap();
    }
}
