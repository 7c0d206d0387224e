//! Single-producer single-consumer rings over [`Ring`], and bounded waits on wake words.
//!
//! Each side keeps its own ring index in process memory and only reads the peer's index from
//! shared memory, validating it: a hostile or broken peer can make a ring look empty or full,
//! or be reported as misbehaving, but never make us read outside the slot array.
//!
//! A record is published by its slot's `seq` word (the record's index plus one, stored last),
//! not only by `tail`: the consumer polls the slot itself, so one cache line carries both the
//! "ready" signal and the record across cores (issue 7: a round trip used to move the `tail`
//! line and the slot line, and `head` for the producer, each direction). `tail` is still
//! published, just before `seq`, and validated whenever the slot is not ready.

use super::layout::{Ring, RingSlot, RING_SLOTS};
use super::platform;
use crate::protocol::PeerMisbehaved;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const MASK: u64 = RING_SLOTS as u64 - 1;

/// The producer's private view of a ring.
#[derive(Debug)]
pub struct Producer {
    tail: u64,
    /// The consumer's `head` as last read. Slots before it are free for good, so `push` reads
    /// the shared `head` (a cache line the consumer keeps writing) only when this view says
    /// the ring is full: one cross-core transfer less per record (issue 7).
    head_seen: u64,
}

/// The consumer's private view of a ring.
#[derive(Debug)]
pub struct Consumer {
    head: u64,
}

impl Producer {
    /// Starts producing at the ring's current tail (trusted once, at device open).
    pub fn attach<S>(ring: &Ring<S>) -> Producer {
        let tail = ring.tail.0.load(Ordering::Acquire);
        Producer {
            tail,
            // "Full": the first push reads (and validates) the real head.
            head_seen: tail.wrapping_sub(RING_SLOTS as u64),
        }
    }

    /// Publishes one record written by `fill` into the next free slot. `Ok(false)`: full.
    pub fn push<S: RingSlot>(
        &mut self,
        ring: &Ring<S>,
        device: usize,
        name: &'static str,
        fill: impl FnOnce(&S),
    ) -> Result<bool, PeerMisbehaved> {
        if self.tail.wrapping_sub(self.head_seen) >= RING_SLOTS as u64 {
            self.check_head(ring, device, name)?;
            if self.tail.wrapping_sub(self.head_seen) == RING_SLOTS as u64 {
                return Ok(false);
            }
        }
        let slot = &ring.slots[(self.tail & MASK) as usize];
        fill(slot);
        self.tail = self.tail.wrapping_add(1);
        // `tail` first: a consumer that sees `seq` must not then read an older `tail` than
        // the records it took (it would look like a broken index; found by loom).
        ring.tail.0.store(self.tail, Ordering::Release);
        // SYNC POINT: the slot's fields (and `tail`) happen-before the consumer's Acquire
        // load of `seq`.
        slot.seq().store(self.tail, Ordering::Release);
        notify(&ring.wake.0, &ring.waiters);
        Ok(true)
    }

    /// Reads and validates the consumer's index (which `push` reads only when its view says
    /// the ring is full): the waits call this once per slice, so a consumer that broke its
    /// index is reported within a slice even while the ring never fills.
    pub fn check_head<S>(&mut self, ring: &Ring<S>, device: usize, name: &'static str) -> Result<(), PeerMisbehaved> {
        // SYNC POINT: pairs with the consumer's Release store of `head`: it finished reading
        // every slot before `head` before `push` refills one.
        let head = ring.head.0.load(Ordering::Acquire);
        if self.tail.wrapping_sub(head) > RING_SLOTS as u64 {
            return Err(PeerMisbehaved::RingIndex {
                device,
                ring: name,
                head,
                tail: self.tail,
                capacity: RING_SLOTS as u64,
            });
        }
        self.head_seen = head;
        Ok(())
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
    pub fn pop<S: RingSlot, R>(&mut self, ring: &Ring<S>, read: impl FnOnce(&S) -> R) -> Option<R> {
        let slot = &ring.slots[(self.head & MASK) as usize];
        let ready = self.head.wrapping_add(1);
        // SYNC POINT: pairs with the producer's Release store of the slot's `seq`.
        if slot.seq().load(Ordering::Acquire) != ready {
            // Not published (yet). `tail` is not read here: its line would then bounce
            // between the cores on every poll. The waits validate it once per slice
            // ([`Consumer::has_next`]).
            return None;
        }
        let record = read(slot);
        self.head = self.head.wrapping_add(1);
        // Frees the slot for the producer; the record was copied out above.
        ring.head.0.store(self.head, Ordering::Release);
        Some(record)
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
/// Longest spin (polling, no system call) before blocking, used while recent waits on the same
/// word were short: about what a futex sleep and wake-up costs on a virtual machine, so a
/// round trip with a live peer never pays for one (issue 7: round trip <= 3x a bare spin).
pub const MAX_SPIN: Duration = Duration::from_micros(20);
/// Spin used while recent waits were long (a busy peer, more device threads than cores):
/// none, as spinning then only steals the CPU the peer needs (issue 7: the 64-device stream,
/// 128 threads on 2 cores, lost about 4 % to a 4 us floor). Two peers that both fell back to
/// blocking still return to spinning: a wait that a running peer ends by its wake-up within
/// [`MAX_SPIN`] counts as short, and every `PROBE_EVERY`-th wait spins in full.
pub const MIN_SPIN: Duration = Duration::ZERO;
/// While spinning is off, every PROBE_EVERY-th wait spins [`MAX_SPIN`] anyway, to notice
/// that waits became short again.
const PROBE_EVERY: u8 = 16;

/// What a wait's `poll` closure is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Only cheap checks (shared-memory reads).
    Fast,
    /// Also the expensive ones (peer liveness, reading /proc): at most once per [`SLICE`] of
    /// blocking, and once more when the deadline passes.
    Full,
}

/// Recent history of one thread's waits on one wake word: the adaptive part of the spin.
#[derive(Debug, Clone, Copy)]
struct SpinHistory {
    /// Address of the wake word (0: unused entry).
    word: usize,
    /// Moving average (weight 1/8) of "the wait ended within MAX_SPIN", scaled to 0..=256.
    score: u16,
    /// Waits since the last probe while spinning was off.
    since_probe: u8,
}

const HISTORY: usize = 4;
const SCORE_MAX: u16 = 256;
/// Spin [`MAX_SPIN`] while at least half of the recent waits were short enough.
const SCORE_SPIN: u16 = SCORE_MAX / 2;

thread_local! {
    static HISTORIES: std::cell::Cell<([SpinHistory; HISTORY], usize)> = const {
        std::cell::Cell::new(([SpinHistory { word: 0, score: SCORE_MAX, since_probe: 0 }; HISTORY], 0))
    };
}

/// How long this thread should spin on `word` now (and counts a probe if it is one).
fn spin_budget(word: usize) -> Duration {
    HISTORIES.with(|cell| {
        let (mut entries, mut victim) = cell.get();
        let i = match entries.iter().position(|e| e.word == word) {
            Some(i) => i,
            None => {
                let i = victim;
                victim = (victim + 1) % HISTORY;
                entries[i] = SpinHistory {
                    word,
                    score: SCORE_MAX,
                    since_probe: 0,
                };
                i
            }
        };
        let e = &mut entries[i];
        let budget = if e.score >= SCORE_SPIN {
            MAX_SPIN
        } else if e.since_probe + 1 >= PROBE_EVERY {
            e.since_probe = 0;
            MAX_SPIN
        } else {
            e.since_probe += 1;
            MIN_SPIN
        };
        cell.set((entries, victim));
        budget
    })
}

/// Records how a wait on `word` that had to wait ended: within [`MAX_SPIN`] or not.
fn record_wait(word: usize, short: bool) {
    HISTORIES.with(|cell| {
        let (mut entries, victim) = cell.get();
        if let Some(e) = entries.iter_mut().find(|e| e.word == word) {
            e.score = e.score - e.score / 8 + if short { SCORE_MAX / 8 } else { 0 };
        }
        cell.set((entries, victim));
    })
}

/// How long a wait may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// No end (VDI's INFINITE); the wait still re-checks every slice.
    Never,
    /// Until this instant.
    At(Instant),
    /// This long from the start of the wait. The start is taken at the wait's first clock
    /// read, a few polls in: a wait that ends within those polls (a round trip with a
    /// running peer) reads no clock at all (issue 7).
    After(Duration),
}

impl Timeout {
    /// A VDI timeout argument in milliseconds; [`crate::vdi::INFINITE`] is no end.
    pub fn from_ms(timeout_ms: u32) -> Timeout {
        if timeout_ms == crate::vdi::INFINITE {
            Timeout::Never
        } else {
            Timeout::After(Duration::from_millis(u64::from(timeout_ms)))
        }
    }

    fn deadline(self, start: Instant) -> Option<Instant> {
        match self {
            Timeout::Never => None,
            Timeout::At(d) => Some(d),
            Timeout::After(d) => Some(start + d),
        }
    }
}

/// Waits until `poll` returns `Some`, an error, or the timeout passes (`Ok(None)`).
///
/// Spins first, for an adaptive time: up to [`MAX_SPIN`] (busy polls, then polls between
/// yields) while at least half of this thread's recent waits on `wake` ended that fast, else
/// [`MIN_SPIN`] (with a full-length probe every `PROBE_EVERY` waits). Then
/// blocks on `wake` in slices of at most [`SLICE`]; a blocked waiter uses no CPU. `poll` gets
/// [`Check::Full`] at most once per slice of waiting and when the deadline passes, else
/// [`Check::Fast`]. [`Timeout::Never`] waits without end but still re-checks every slice.
pub fn wait_for<T, E>(
    wake: &AtomicU32,
    waiters: Option<&AtomicU32>,
    timeout: Timeout,
    mut poll: impl FnMut(Check) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    if let Some(v) = poll(Check::Fast)? {
        return Ok(Some(v));
    }
    // From here on this is a real wait: how it ends feeds the spin history. The clock is read
    // only every CLOCK_EVERY polls, so a wait that ends within a few polls (a round trip with
    // a running peer) costs no clock read at all.
    const CLOCK_EVERY: u32 = 16;
    let word = wake as *const AtomicU32 as usize;
    let budget = spin_budget(word);
    let mut polls = 0u32;
    let mut started: Option<Instant> = None;
    let mut deadline = None;
    let start = if budget.is_zero() {
        let now = Instant::now();
        deadline = timeout.deadline(now);
        now
    } else {
        // Busy polls for the first quarter of the budget, then polls between yields: on an
        // idle machine a yield returns at once, on a loaded one it lets a peer queued on this
        // CPU run (a futex sleep would cost it a wake-up).
        let mut yielding = false;
        loop {
            if yielding {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
            match poll(Check::Fast) {
                Ok(None) => {}
                other => {
                    if let Ok(v) = &other {
                        // Found while spinning: short by construction.
                        record_wait(word, v.is_some());
                    }
                    return other;
                }
            }
            polls = polls.wrapping_add(1);
            if yielding || polls % CLOCK_EVERY == 0 {
                let now = Instant::now();
                let start = *started.get_or_insert_with(|| {
                    deadline = timeout.deadline(now);
                    now
                });
                if deadline.is_some_and(|d| now >= d) {
                    let got = poll(Check::Full);
                    record_wait(word, false);
                    return got;
                }
                let spun = now.duration_since(start);
                if spun >= budget {
                    break start;
                }
                yielding = budget >= MAX_SPIN && spun >= budget / 4;
            }
        }
    };
    let finish = |got: Result<Option<T>, E>| {
        if let Ok(v) = &got {
            record_wait(word, v.is_some() && start.elapsed() <= MAX_SPIN);
        }
        got
    };
    let mut last_full = start;
    loop {
        if let Some(w) = waiters {
            w.fetch_add(1, Ordering::SeqCst);
        }
        let seen = wake.load(Ordering::SeqCst);
        let now = Instant::now();
        let check = if now.duration_since(last_full) >= SLICE {
            last_full = now;
            Check::Full
        } else {
            Check::Fast
        };
        let ready = match poll(check) {
            Ok(None) => {
                let slice = match deadline {
                    Some(d) => d.saturating_duration_since(now).min(SLICE),
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
        match ready {
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => return finish(poll(Check::Full)),
            Ok(None) => {}
            other => return finish(other),
        }
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
            assert_eq!(c.pop(&r, |s| s.id.load(Ordering::Relaxed)), Some(i));
        }
        assert_eq!(c.pop(&r, |_| ()), None);
    }

    #[test]
    fn hostile_indices_are_reported_not_followed() {
        let r = ring();
        let mut c = Consumer::attach(&*r);
        r.tail.0.store(RING_SLOTS as u64 + 1, Ordering::SeqCst);
        assert_eq!(
            c.pop(&r, |_| ()),
            None,
            "a slot is taken only when its seq publishes it"
        );
        assert!(matches!(
            c.has_next(&r, 3, "cmd"),
            Err(PeerMisbehaved::RingIndex { device: 3, .. })
        ));
        r.tail.0.store(u64::MAX, Ordering::SeqCst);
        assert!(c.has_next(&r, 3, "cmd").is_err());
        let mut p = Producer::attach(&*r);
        r.head.0.store(p.tail.wrapping_add(5), Ordering::SeqCst);
        assert!(p.push(&r, 3, "cmd", |_| ()).is_err());
    }

    /// The producer reads `head` only when its cached view is full: records keep flowing
    /// across many wraps, and a head a hostile consumer breaks later is still reported, at
    /// the latest one ring's worth of records on (before any slot it has not freed is used),
    /// or by the waits' per-slice `check_head`.
    #[test]
    fn cached_head_wraps_and_still_catches_a_broken_head() {
        let r = ring();
        let (mut p, mut c) = (Producer::attach(&*r), Consumer::attach(&*r));
        for i in 0..3 * RING_SLOTS as u64 + 5 {
            assert!(p.push(&r, 0, "cmd", |s| s.id.store(i, Ordering::Relaxed)).unwrap());
            assert_eq!(c.pop(&r, |s| s.id.load(Ordering::Relaxed)), Some(i));
        }
        r.head.0.store(u64::MAX / 2, Ordering::SeqCst);
        let pushed_before_error = (0..=RING_SLOTS)
            .take_while(|_| p.push(&r, 0, "cmd", |_| ()).is_ok())
            .count();
        assert!(
            pushed_before_error <= RING_SLOTS,
            "never more than a ring's worth past the last good head"
        );
        assert!(
            p.push(&r, 0, "cmd", |_| ()).is_err(),
            "reported, and again on the next push"
        );
        // And at once by the per-slice check.
        let mut p = Producer::attach(&*r);
        r.head.0.store(p.tail, Ordering::SeqCst);
        assert!(p.push(&r, 0, "cmd", |_| ()).unwrap());
        assert!(p.check_head(&r, 0, "cmd").is_ok());
        r.head.0.store(u64::MAX / 2, Ordering::SeqCst);
        assert!(p.check_head(&r, 0, "cmd").is_err());
    }

    #[test]
    fn spin_budget_backs_off_after_long_waits_probes_and_recovers() {
        // Thread-local history, and each test runs on its own thread: a fresh word.
        let word = 0x5eed_0001;
        assert_eq!(spin_budget(word), MAX_SPIN, "optimistic at first");
        for _ in 0..32 {
            record_wait(word, false);
        }
        let budgets: Vec<Duration> = (0..PROBE_EVERY).map(|_| spin_budget(word)).collect();
        assert_eq!(
            budgets.iter().filter(|b| **b == MAX_SPIN).count(),
            1,
            "one probe: {budgets:?}"
        );
        assert!(budgets.contains(&MIN_SPIN));
        for _ in 0..32 {
            record_wait(word, true);
        }
        assert_eq!(spin_budget(word), MAX_SPIN, "short waits turn spinning back on");
        // Another word has its own history.
        assert_eq!(spin_budget(0x5eed_0002), MAX_SPIN);
    }

    #[test]
    fn full_checks_are_rationed_to_one_per_slice_plus_the_deadline() {
        let wake = AtomicU32::new(0);
        let (mut full, mut fast) = (0u32, 0u32);
        let t = Instant::now();
        let r: Result<Option<()>, ()> = wait_for(&wake, None, Timeout::At(t + SLICE * 2 + SLICE / 2), |c| {
            match c {
                Check::Full => full += 1,
                Check::Fast => fast += 1,
            }
            Ok(None)
        });
        assert_eq!(r, Ok(None));
        // At most one Full per elapsed slice before the deadline (2), plus the final one.
        assert!((1..=3).contains(&full), "{full} Full polls");
        assert!(fast > 0);
    }

    #[test]
    fn wait_for_times_out_and_sees_a_late_value() {
        let wake = AtomicU32::new(0);
        let waiters = AtomicU32::new(0);
        let t = Instant::now();
        let r: Result<Option<()>, ()> =
            wait_for(&wake, Some(&waiters), Timeout::After(Duration::from_millis(60)), |_| {
                Ok(None)
            });
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
        let got: Result<Option<u64>, ()> = wait_for(&wake, Some(&waiters), Timeout::Never, |_| {
            Ok(match value.load(Ordering::SeqCst) {
                0 => None,
                v => Some(v),
            })
        });
        assert_eq!(got, Ok(Some(7)));
        h.join().unwrap();
    }
}
