//! Model checking of the SPSC rings and their wake-up protocol with loom (issue 5).
//!
//! What is checked: a faithful copy of `vdisim::shm::ring` (Producer::push, Consumer::pop,
//! `notify`, the blocking part of `wait_for`) over loom's atomics, with the futex modelled as
//! "compare the word and sleep under a lock; wake everyone under the same lock" (the kernel's
//! FUTEX_WAIT/FUTEX_WAKE contract) and no timeout, so a lost wake-up is a deadlock that loom
//! reports. Records carry fields derived from their sequence number, so a torn or stale record
//! fails an assertion. The ring is 2 slots here, so slots are reused.
//!
//! Why a copy rather than `#[cfg(loom)]` in ring.rs: the ring lives in a `#[repr(C)]` shared
//! memory layout of std atomics (zero-initialised, mapped by two processes); swapping in loom's
//! atomics would change the layout module too. `ring_source_still_matches_the_model` pins the
//! memory orderings of ring.rs to the ones modelled here, so the copy cannot drift silently.
//!
//! loom models SeqCst *accesses* as AcqRel (only SeqCst fences are exact; see loom's docs), so
//! each "SeqCst read-modify-write, then SeqCst load" pair of the real code (the Dekker-style
//! handshake between `notify` and `wait_for`) is modelled as the access followed by a SeqCst
//! fence: the C++20/Rust guarantee the real code relies on. The `weakened_*` test removes the
//! fences (what the code would be with AcqRel orderings) and loom finds the lost wake-up.

use loom::sync::atomic::{fence, AtomicU32, AtomicU64};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

const SLOTS: u64 = 2;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// The algorithm as in ring.rs.
    Faithful,
    /// SeqCst weakened to AcqRel: no store-load ordering between "announce" and "check".
    Weakened,
    /// `notify` reads `waiters` before bumping `wake` (an interleaving bug, wrong even under SC).
    CheckBeforeBump,
    /// The slot's `seq` stored Relaxed: a consumer can see it before the record's fields.
    RelaxedSeq,
}

struct Slot {
    /// The record's ring index plus one, stored last: what the consumer polls.
    seq: AtomicU64,
    id: AtomicU64,
    code: AtomicU32,
}

struct Ring {
    head: AtomicU64,
    tail: AtomicU64,
    wake: AtomicU32,
    waiters: AtomicU32,
    abort: AtomicU32,
    slots: [Slot; SLOTS as usize],
    /// The futex: the kernel's hash-bucket lock and wait queue.
    futex: Mutex<()>,
    sleepers: Condvar,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            wake: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            abort: AtomicU32::new(0),
            slots: [0, 1].map(|_| Slot {
                seq: AtomicU64::new(0),
                id: AtomicU64::new(0),
                code: AtomicU32::new(0),
            }),
            futex: Mutex::new(()),
            sleepers: Condvar::new(),
        }
    }

    /// FUTEX_WAIT without timeout: sleeps only if the word still holds `expected`.
    fn futex_wait(&self, expected: u32) {
        let guard = self.futex.lock().unwrap();
        if self.wake.load(SeqCst) == expected {
            let _guard = self.sleepers.wait(guard).unwrap();
        }
    }

    /// FUTEX_WAKE of every sleeper.
    fn futex_wake_all(&self) {
        let _guard = self.futex.lock().unwrap();
        self.sleepers.notify_all();
    }
}

/// `ring::notify`: bump the word, then wake only if someone announced a wait.
fn notify(r: &Ring, v: Variant) {
    match v {
        Variant::CheckBeforeBump => {
            let someone = r.waiters.load(SeqCst) > 0;
            r.wake.fetch_add(1, SeqCst);
            if someone {
                r.futex_wake_all();
            }
        }
        _ => {
            r.wake.fetch_add(1, SeqCst);
            if v != Variant::Weakened {
                fence(SeqCst);
            }
            if r.waiters.load(SeqCst) > 0 {
                r.futex_wake_all();
            }
        }
    }
}

/// `ring::notify_all`: unconditional (set-level events, abort).
fn notify_all(r: &Ring) {
    r.wake.fetch_add(1, SeqCst);
    r.futex_wake_all();
}

/// `Producer::push`. `Ok(false)`: full. `head_seen` is the producer's cached view of `head`,
/// read again only when that view says full.
fn push(r: &Ring, tail: &mut u64, head_seen: &mut u64, seq: u64, v: Variant) -> bool {
    if tail.wrapping_sub(*head_seen) >= SLOTS {
        let head = r.head.load(Acquire);
        let used = tail.wrapping_sub(head);
        assert!(used <= SLOTS, "producer sees an impossible head");
        *head_seen = head;
        if used == SLOTS {
            return false;
        }
    }
    let s = &r.slots[(*tail % SLOTS) as usize];
    s.id.store(seq, Relaxed);
    s.code.store(seq as u32 + 100, Relaxed);
    *tail += 1;
    r.tail.store(*tail, Release);
    // SYNC POINT: the slot's fields and `tail` happen-before the consumer's Acquire load of `seq`.
    s.seq
        .store(*tail, if v == Variant::RelaxedSeq { Relaxed } else { Release });
    notify(r, v);
    true
}

/// `Consumer::pop`: the record's sequence number, checked for tearing.
fn pop(r: &Ring, head: &mut u64) -> Option<u64> {
    let s = &r.slots[(*head % SLOTS) as usize];
    let ready = *head + 1;
    if s.seq.load(Acquire) != ready {
        return None;
    }
    let id = s.id.load(Relaxed);
    let code = s.code.load(Relaxed);
    assert_eq!(u64::from(code), id + 100, "torn record");
    *head += 1;
    r.head.store(*head, Release);
    Some(id)
}

/// The blocking loop of `ring::wait_for` (the spin and yield phases only poll more often).
fn wait_for<T>(r: &Ring, v: Variant, mut poll: impl FnMut() -> Option<T>) -> T {
    loop {
        r.waiters.fetch_add(1, SeqCst);
        if v != Variant::Weakened {
            fence(SeqCst);
        }
        let seen = r.wake.load(SeqCst);
        let ready = poll();
        if ready.is_none() {
            r.futex_wait(seen);
        }
        r.waiters.fetch_sub(1, SeqCst);
        if let Some(x) = ready {
            return x;
        }
    }
}

/// A producer publishes `n` records (waiting by yielding while the ring is full); the
/// consumer takes them in order through `wait_for`.
fn producer_consumer(v: Variant, n: u64) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let r = Arc::new(Ring::new());
        let p = r.clone();
        let producer = thread::spawn(move || {
            let mut tail = 0;
            // As `Producer::attach`: the first push reads the real head.
            let mut head_seen = 0u64.wrapping_sub(SLOTS);
            for seq in 0..n {
                while !push(&p, &mut tail, &mut head_seen, seq, v) {
                    thread::yield_now();
                }
            }
        });
        let mut head = 0;
        for want in 0..n {
            let got = wait_for(&r, v, || pop(&r, &mut head));
            assert_eq!(got, want, "records out of order");
        }
        producer.join().unwrap();
    });
}

#[test]
fn one_record_is_never_lost() {
    producer_consumer(Variant::Faithful, 1);
}

#[test]
fn records_arrive_whole_and_in_order_across_slot_reuse() {
    producer_consumer(Variant::Faithful, 3);
}

/// The abort path: a third party sets the flag and calls `notify_all`; a consumer blocked in
/// `wait_for` (which re-checks abort in its poll) must wake.
#[test]
fn abort_wakes_a_blocked_consumer() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let r = Arc::new(Ring::new());
        let a = r.clone();
        let aborter = thread::spawn(move || {
            a.abort.store(1, Release);
            notify_all(&a);
        });
        let mut head = 0;
        let woke = wait_for(&r, Variant::Faithful, || {
            if r.abort.load(Acquire) != 0 {
                return Some(u64::MAX);
            }
            pop(&r, &mut head)
        });
        assert_eq!(woke, u64::MAX);
        aborter.join().unwrap();
    });
}

/// With the SeqCst handshake weakened to AcqRel, the consumer can read a stale `wake` while
/// the producer reads a stale `waiters == 0`: nobody wakes the sleeper. loom reports the
/// deadlock (in the real code, a lost wake-up costs one 50 ms slice instead of a hang).
#[test]
#[should_panic]
fn weakened_ordering_loses_a_wake_up() {
    producer_consumer(Variant::Weakened, 1);
}

/// Reading `waiters` before bumping `wake` loses wake-ups even with SeqCst everywhere.
#[test]
#[should_panic]
fn checking_waiters_before_bumping_loses_a_wake_up() {
    producer_consumer(Variant::CheckBeforeBump, 1);
}

/// Publishing a record by a Relaxed `seq` lets the consumer read the slot before its fields
/// arrive: it takes the slot's previous record (loom reports "records out of order").
#[test]
#[should_panic(expected = "records out of order")]
fn relaxed_seq_tears_records() {
    producer_consumer(Variant::RelaxedSeq, 3);
}

/// The memory orderings in ring.rs, function by function, in source order: if they change,
/// the model above must be revisited (and this list updated with it).
#[test]
fn ring_source_still_matches_the_model() {
    let src = include_str!("../../sim/src/shm/ring.rs");
    // Methods end at their 4-space-indented brace, free functions at column 0.
    let orderings = |name: &str| -> Vec<String> {
        let start = src.find(name).unwrap_or_else(|| panic!("{name} not found in ring.rs"));
        let body = &src[start..];
        let close = if ["pub fn push", "pub fn check_head", "pub fn has_next", "pub fn pop"]
            .iter()
            .any(|m| name.starts_with(m))
        {
            "\n    }\n"
        } else {
            "\n}\n"
        };
        let end = body.find(close).unwrap_or(body.len());
        body[..end]
            .split("Ordering::")
            .skip(1)
            .map(|rest| rest.chars().take_while(|c| c.is_alphanumeric()).collect())
            .collect()
    };
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    assert_eq!(
        orderings("pub fn push<S: RingSlot>("),
        v(&["Release", "Release"]),
        "Producer::push"
    );
    assert_eq!(
        orderings("pub fn check_head<S>("),
        v(&["Acquire"]),
        "Producer::check_head"
    );
    assert_eq!(orderings("pub fn has_next<S>("), v(&["Acquire"]), "Consumer::has_next");
    assert_eq!(
        orderings("pub fn pop<S: RingSlot, R>("),
        v(&["Acquire", "Release"]),
        "Consumer::pop"
    );
    assert_eq!(orderings("pub fn notify(wake"), v(&["SeqCst", "SeqCst"]), "notify");
    let wait = orderings("pub fn wait_for<T, E>(");
    assert_eq!(wait, v(&["SeqCst", "SeqCst", "SeqCst"]), "wait_for");
}
