//! Hostile peers (issue 8 item 3): a `vdisim-peer` process behaves until the honest side is
//! set up, then writes crafted values into the shared header, the rings, command and
//! completion records, offsets or the buffer area. The honest side runs in this test process
//! and must return an error code (VD_E_ABORT, or VD_E_INVALID where the set cannot even be
//! opened), within twice its timeout, without panicking, with `last_error()` naming the bad
//! field; and nothing may be left in /dev/shm. One test per hostile-field class and side.
//!
//! `scripts/asan.sh` runs this file under AddressSanitizer (no read or write outside the
//! mappings).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use vdisim::pump::{self, StreamSpec};
use vdisim::server::ServerCommand;
use vdisim::vdi::{completion, CommandCode, VDConfig, VdError};
use vdisim::{ClientVirtualDevice, ClientVirtualDeviceSet, ServerVirtualDeviceSet};

mod common;
use common::{assert_no_leftovers, PEER};

/// The honest side's timeout for each call.
const T: u32 = 2000;

fn unique(tag: &str) -> String {
    common::unique("rel-h", tag)
}

struct Peer {
    child: Child,
    events: Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args);
        let (child, events) = common::spawn_with_events(cmd, Stdio::inherit());
        Peer {
            child,
            events,
            seen: Vec::new(),
        }
    }

    fn wait_event(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self.seen.iter().find(|e| e.starts_with(prefix)) {
                return e.clone();
            }
            match self.events.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => self.seen.push(e),
                Err(_) if Instant::now() < deadline && !self.exited() => {}
                Err(_) => panic!("no `{prefix}` event from the hostile peer; saw {:?}", self.seen),
            }
        }
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the peer to leave by itself (it lingers until the set is aborted).
    fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(40);
        while !self.exited() {
            assert!(Instant::now() < deadline, "the hostile peer did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one honest call, asserting it returns within twice the timeout.
fn timed<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(2 * u64::from(T)),
        "{what} took {took:?}, more than twice its {T} ms timeout"
    );
    r
}

fn open_device(vds: &ClientVirtualDeviceSet, name: &str) -> Result<ClientVirtualDevice, VdError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match vds.open_device(name) {
            Err(VdError::Open) if Instant::now() < deadline => continue,
            other => return other,
        }
    }
}

/// Serves commands until a call fails (completing what arrives): the failing code.
fn client_until_error(dev: &ClientVirtualDevice, calls: usize) -> Option<VdError> {
    for _ in 0..calls {
        let cmd = match timed("GetCommand", || dev.get_command(T)) {
            Ok(c) => c,
            Err(VdError::Timeout) => continue,
            Err(e) => return Some(e),
        };
        let bytes = if cmd.command() == Some(CommandCode::Write) {
            cmd.size()
        } else {
            0
        };
        if let Err(e) = timed("CompleteCommand", || {
            dev.complete_command(&cmd, completion::ERROR_SUCCESS, bytes, 0)
        }) {
            return Some(e);
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The damage happens before the client's GetConfiguration.
    Configuration,
    /// The damage happens once the client opened device 0.
    Streaming,
}

/// The honest client against a hostile server of `class`; `expect` must appear in
/// last_error() (None: any error, or none for random scribbling).
fn hostile_server(class: &str, stage: Stage, expect: Option<&str>) {
    let set = unique(class);
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, &set, &VDConfig::request(1, 0)).unwrap();
    let mut peer = Peer::spawn(&["hostile-server", &set, class]);
    let failure = match stage {
        Stage::Configuration => {
            peer.wait_event("ready");
            timed("GetConfiguration", || vds.get_configuration(T)).err()
        }
        Stage::Streaming => {
            let cfg = vds.get_configuration(30_000);
            let dev = cfg.and_then(|_| open_device(&vds, &set));
            match dev {
                Err(e) => Some(e),
                Ok(dev) => {
                    peer.wait_event("ready");
                    let mut failure = client_until_error(&dev, 6);
                    if failure.is_none() && expect.is_none() {
                        // Random scribbling that broke nothing we look at: end it ourselves.
                        vds.signal_abort().unwrap();
                        failure = client_until_error(&dev, 1);
                    }
                    failure
                }
            }
        }
    };
    let last_error = vds.last_error();
    if let Some(expect) = expect {
        assert_eq!(failure, Some(VdError::Abort), "{class}: the honest client must abort");
        let le = last_error.unwrap_or_default();
        assert!(
            le.contains(expect),
            "{class}: last_error {le:?} does not name {expect:?}"
        );
        // Every later call is refused too (§3.6).
        assert_eq!(vds.get_configuration(0).err(), Some(VdError::Abort), "{class}");
    } else {
        assert!(failure.is_some(), "{class}: the set must end with an error");
    }
    let _ = vds.close();
    peer.finish();
    assert_no_leftovers(&set);
}

/// The honest server against a hostile client of `class`.
fn hostile_client(class: &str, expect: Option<&str>) {
    let set = unique(class);
    let mut peer = Peer::spawn(&["hostile-client", &set, class]);
    peer.wait_event("created");
    let server = pump::open_when_created(&set, Duration::from_secs(30)).expect("open");
    let devices = pump::configure(&server, &StreamSpec::new(1, 0), true).expect("configure");
    let dev = &devices[0];
    let write = |server: &ServerVirtualDeviceSet| {
        let buf = server.allocate_buffer(65536, 0).expect("buffer");
        dev.send_command(ServerCommand {
            code: CommandCode::Write.code(),
            size: 65536,
            position: 0,
            buffer: Some(buf),
        })
    };
    write(&server).expect("send");
    peer.wait_event("ready");
    let mut failure = None;
    if class == "cmd-head-jump" {
        timed("completion", || dev.get_completion(T)).expect("the honest completion");
        // The producer reads the consumer's index when its view of the ring is full or once
        // per slice of a wait, so the jump is reported within a ring's worth of writes (the
        // hostile client keeps completing them) or by the first wait that lasts a slice.
        for _ in 0..2 * vdisim::shm::layout::RING_SLOTS {
            failure = match write(&server) {
                Err(r) => Some(r.error),
                Ok(_) => timed("completion", || dev.get_completion(T)).err(),
            };
            if failure.is_some() {
                break;
            }
        }
    } else {
        let deadline = Instant::now() + Duration::from_secs(8);
        while failure.is_none() && Instant::now() < deadline {
            match timed("completion", || dev.get_completion(T)) {
                Ok(_) | Err(VdError::Timeout) => {}
                Err(e) => failure = Some(e),
            }
        }
        if failure.is_none() && expect.is_none() {
            server.signal_abort().unwrap();
            while let Ok(c) = dev.get_completion(T) {
                assert_eq!(c.completion.completion_code, completion::ERROR_OPERATION_ABORTED);
            }
            failure = Some(VdError::Abort);
        }
    }
    assert_eq!(failure, Some(VdError::Abort), "{class}: the honest server must abort");
    if let Some(expect) = expect {
        let le = server.last_error().unwrap_or_default();
        assert!(
            le.contains(expect),
            "{class}: last_error {le:?} does not name {expect:?}"
        );
        assert!(server.abort_info().is_some());
    }
    let _ = server.close();
    peer.finish();
    assert_no_leftovers(&set);
}

/// Damage done before any server opens the set: Open refuses it.
fn hostile_creator(class: &str) {
    let set = unique(class);
    let mut peer = Peer::spawn(&["hostile-client", &set, class]);
    peer.wait_event("ready");
    let r = timed("Open", || ServerVirtualDeviceSet::open(None, &set));
    assert_eq!(r.err(), Some(VdError::Invalid), "{class}");
    peer.finish();
    assert_no_leftovers(&set);
}

// ---- hostile server, honest client ---------------------------------------------------------

#[test]
fn server_writes_garbage_phase() {
    hostile_server("phase-garbage", Stage::Configuration, Some("phase holds 77"));
}

#[test]
fn server_answers_with_wrong_device_count() {
    hostile_server("answer-devices", Stage::Configuration, Some("answer.deviceCount"));
}

#[test]
fn server_answers_with_bad_block_size() {
    hostile_server("answer-blocksize", Stage::Configuration, Some("answer.blockSize"));
}

#[test]
fn server_claims_a_buffer_area_larger_than_its_segment() {
    hostile_server("buffer-size", Stage::Configuration, Some("buffer area"));
}

// The hostile peer writes the garbage through /dev/shm (Unix only; Windows mappings have no file).
#[cfg(unix)]
#[test]
fn server_corrupts_the_buffer_segment_magic() {
    hostile_server("buffer-magic", Stage::Configuration, Some("buffer area"));
}

#[test]
fn server_overwrites_header_magic() {
    hostile_server("magic", Stage::Streaming, Some("magic"));
}

#[test]
fn server_overwrites_layout_version() {
    hostile_server("version", Stage::Streaming, Some("version"));
}

#[test]
fn server_overwrites_header_size() {
    hostile_server("header-size", Stage::Streaming, Some("header_size"));
}

#[test]
fn server_moves_phase_backwards() {
    hostile_server("phase-regress", Stage::Streaming, Some("went back from 2 to 0"));
}

#[test]
fn server_jumps_the_command_ring_index() {
    hostile_server("cmd-ring-jump", Stage::Streaming, Some("ring command of device 0"));
}

#[test]
fn server_sends_an_unknown_command_code() {
    hostile_server("cmd-code", Stage::Streaming, Some("not a VDI command code"));
}

#[test]
fn server_sends_command_code_zero() {
    hostile_server(
        "cmd-code-zero",
        Stage::Streaming,
        Some("command 0 is not a VDI command code"),
    );
}

#[test]
fn server_reuses_an_older_command_id() {
    hostile_server("cmd-sequence", Stage::Streaming, Some("does not follow"));
}

#[test]
fn server_sends_a_buffer_offset_past_the_area() {
    hostile_server("cmd-offset", Stage::Streaming, Some("outside the"));
}

#[test]
fn server_sends_a_size_past_the_area() {
    hostile_server("cmd-size", Stage::Streaming, Some("outside the"));
}

#[test]
fn server_sends_an_offset_that_overflows() {
    hostile_server("cmd-overflow", Stage::Streaming, Some("outside the"));
}

#[test]
fn server_sends_a_write_without_buffer() {
    hostile_server("cmd-nobuffer", Stage::Streaming, Some("a data command has none"));
}

#[test]
fn server_sends_a_flush_with_a_buffer() {
    hostile_server("cmd-buffer-on-flush", Stage::Streaming, Some("carries a buffer"));
}

#[test]
fn server_jumps_the_completion_ring_consumer_index() {
    hostile_server("cmpl-ring-head", Stage::Streaming, Some("ring completion of device 0"));
}

#[test]
fn server_scribbles_random_bytes_over_the_header() {
    hostile_server("random", Stage::Streaming, None);
}

// ---- hostile client, honest server ---------------------------------------------------------

#[test]
fn client_publishes_an_invalid_request() {
    hostile_creator("request");
}

#[test]
fn client_publishes_garbage_magic_before_open() {
    hostile_creator("magic-early");
}

#[test]
fn client_publishes_an_unknown_layout_version() {
    hostile_creator("version-early");
}

#[test]
fn client_overwrites_header_magic() {
    hostile_client("magic", Some("magic"));
}

#[test]
fn client_overwrites_layout_version() {
    hostile_client("version", Some("version"));
}

#[test]
fn client_moves_phase_backwards() {
    hostile_client("phase-regress", Some("went back from 2 to 0"));
}

#[test]
fn client_writes_garbage_phase() {
    hostile_client("phase-garbage", Some("phase holds 1234"));
}

#[test]
fn client_jumps_the_completion_ring_index() {
    hostile_client("cmpl-ring-jump", Some("ring completion of device 0"));
}

#[test]
fn client_completes_an_unknown_command() {
    hostile_client("cmpl-unknown", Some("which is not outstanding"));
}

#[test]
fn client_completes_a_command_twice() {
    hostile_client("cmpl-duplicate", Some("which is not outstanding"));
}

#[test]
fn client_reports_more_bytes_than_the_command_had() {
    hostile_client("cmpl-bytes", Some("bytes transferred"));
}

#[test]
fn client_jumps_the_command_ring_consumer_index() {
    hostile_client("cmd-head-jump", Some("ring command of device 0"));
}

#[test]
fn client_scribbles_random_bytes_over_the_header() {
    hostile_client("random", None);
}

// ---- the pure part: ring validation on a heap-allocated ring (also run under Miri) ----------

/// A peer may store any value in the indices it owns; the honest end must report it or take a
/// slot inside the array, never index outside it. Runs in-process on a ring on the heap, so
/// `scripts/asan.sh miri` can check it for undefined behaviour.
#[test]
fn heap_ring_validation_never_leaves_the_slots() {
    use std::sync::atomic::{AtomicU32 as A32, AtomicU64 as A64};
    use vdisim::protocol::PeerMisbehaved;
    use vdisim::shm::layout::{CommandSlot, Padded, Ring, RING_SLOTS};
    use vdisim::shm::ring::{Consumer, Producer};

    let ring: Box<Ring<CommandSlot>> = Box::new(Ring {
        head: Padded(A64::new(0)),
        tail: Padded(A64::new(0)),
        wake: Padded(A32::new(0)),
        waiters: A32::new(0),
        slots: std::array::from_fn(|i| CommandSlot {
            seq: A64::new(0),
            id: A64::new(i as u64),
            code: A32::new(0),
            size: A32::new(0),
            position: A64::new(0),
            buffer_offset: A64::new(0),
        }),
    });
    let slots = RING_SLOTS as u64;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let iterations = if cfg!(miri) { 300 } else { 20_000 };
    let (mut reported, mut taken) = (0, 0);
    for _ in 0..iterations {
        // The consumer's view is trusted once at attach; everything after is the peer's.
        let base = next();
        ring.head.0.store(base, Ordering::SeqCst);
        let mut consumer = Consumer::attach(&*ring);
        let hostile_tail = match next() % 4 {
            0 => base.wrapping_add(next() % (slots + 1)),
            1 => base.wrapping_add(slots + 1 + next() % 1000),
            2 => base.wrapping_sub(1 + next() % 1000),
            _ => next(),
        };
        ring.tail.0.store(hostile_tail, Ordering::SeqCst);
        // The record at `base` is published by its slot's `seq`, which the peer also owns.
        let seq = match next() % 3 {
            0 => base.wrapping_add(1),
            1 => base,
            _ => next(),
        };
        ring.slots[(base % slots) as usize].seq.store(seq, Ordering::SeqCst);
        let published = seq == base.wrapping_add(1);
        match consumer.pop(&ring, |s| s.id.load(Ordering::Relaxed)) {
            Some(id) => {
                assert!(id < slots);
                assert!(published);
                taken += 1;
            }
            None => assert!(!published),
        }
        // The producer's index is validated apart (the waits do it once per slice).
        let head_now = if published { base.wrapping_add(1) } else { base };
        let available = hostile_tail.wrapping_sub(head_now);
        match consumer.has_next(&ring, 0, "command") {
            Ok(waiting) => assert!(available <= slots && waiting == (available > 0)),
            Err(PeerMisbehaved::RingIndex { .. }) => {
                assert!(available > slots);
                reported += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
        // The producer side: a hostile consumer index.
        ring.tail.0.store(base, Ordering::SeqCst);
        let mut producer = Producer::attach(&*ring);
        ring.head.0.store(next(), Ordering::SeqCst);
        let used = base.wrapping_sub(ring.head.0.load(Ordering::SeqCst));
        match producer.push(&ring, 0, "command", |s| s.code.store(1, Ordering::Relaxed)) {
            Ok(true) => assert!(used < slots),
            Ok(false) => assert_eq!(used, slots),
            Err(_) => assert!(used > slots),
        }
    }
    assert!(reported > 0 && taken > 0, "both outcomes exercised: {reported} {taken}");
}
