//! The server API, shaped like `IServerVirtualDeviceSet2` and `IServerVirtualDevice`
//! (SPEC §1.4): the side SQL Server plays. The engine and the conformance harness use it.
//!
//! Completions are delivered per device by [`ServerVirtualDevice::get_completion`] (the role
//! of the completion routine): a command's buffer travels back with its completion. After an
//! abort, every outstanding command comes back once with ERROR_OPERATION_ABORTED.

use crate::protocol::buffers::BufferAllocator;
use crate::protocol::server::{send_error_completion, Completion, ConfigParams, ServerMachine, ServerState};
use crate::protocol::PeerMisbehaved;
use crate::shm::layout::{abort_by, abort_reason, phase, CLOSE_MARKER, MAX_DEVICES, MAX_OUTSTANDING, NO_BUFFER};
use crate::shm::platform::{LivenessToken, PeerState};
use crate::shm::ring::{self, Check, Consumer, Producer, Timeout};
use crate::shm::{self, BufferMapping, HeaderMapping};
use crate::vdi::{CommandCode, VDConfig, VdError, VdResult};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Extra buffer-area bytes beyond RequestBuffers, for small metadata buffers (§2.6: "Small
/// metadata buffers come on top and are not counted").
const METADATA_AREA: u64 = 1 << 20;

/// A virtual device set, server side (`IServerVirtualDeviceSet2`).
#[derive(Clone)]
pub struct ServerVirtualDeviceSet {
    set: Arc<ServerSet>,
}

/// One virtual device, server side (`IServerVirtualDevice`).
#[derive(Clone)]
pub struct ServerVirtualDevice {
    set: Arc<ServerSet>,
    index: usize,
}

/// A buffer in the shared area, owned by the server until sent with a command.
pub struct ServerBuffer {
    set: Arc<ServerSet>,
    offset: u64,
    size: u32,
    ptr: *mut u8,
}

// SAFETY: the buffer range is exclusively this handle's (the allocator hands each range out
// once) and `set` keeps the mapping alive, so the handle may move between threads.
unsafe impl Send for ServerBuffer {}

/// A command to send (the useful fields of `VDS_Command`).
pub struct ServerCommand {
    pub code: u32,
    pub size: u32,
    pub position: u64,
    pub buffer: Option<ServerBuffer>,
}

/// SendCommand refused the command: the code, the completion code the callback would have
/// seen (§1.4), and the command with its buffer, handed back.
pub struct Rejected {
    pub error: VdError,
    pub completion_code: u32,
    pub command: ServerCommand,
}

impl std::fmt::Debug for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rejected({}, completion {})", self.error, self.completion_code)
    }
}

/// A completed command and its buffer.
pub struct ServerCompletion {
    pub completion: Completion,
    pub buffer: Option<ServerBuffer>,
}

/// What Close did: its result and the commands it completed with ERROR_OPERATION_ABORTED.
pub struct CloseOutcome {
    pub result: VdResult<()>,
    pub aborted: Vec<Completion>,
}

/// The protocol machine and the buffers lent with its outstanding commands, under one lock:
/// a command's buffer is parked and taken back in the critical section that handles its id
/// (one lock per call on the round trip's path, issue 7).
struct Core {
    machine: ServerMachine,
    /// Per device: buffers lent to the client with their command ids, in id order (a
    /// device's completions mostly come in order, so the id is found at the front).
    lent: Vec<VecDeque<(u64, ServerBuffer)>>,
    /// Per device: the command-ring producer, `None` until the device is opened. Under this
    /// lock rather than the device's own: SendCommand then takes one lock, and CloseDevice
    /// never waits for a GetCompletion blocked on the same device.
    commands: Vec<Option<Producer>>,
}

struct ServerSet {
    instance: String,
    name: String,
    header: HeaderMapping,
    buffers: OnceLock<BufferMapping>,
    core: Mutex<Core>,
    allocator: Mutex<Option<BufferAllocator>>,
    /// Per device: the completion-ring consumer, `None` until the device is opened; held by
    /// GetCompletion for its whole wait (one thread per device is the intended use).
    completions: Vec<Mutex<Option<Consumer>>>,
    last_error: Mutex<Option<String>>,
    /// The highest `phase` seen or published: it must never go back (F8).
    phase_seen: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves consistent data; recover from a poisoned lock.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServerVirtualDeviceSet {
    /// Open (§1.4): connects to the set a client created. VD_E_INVALID for an unknown set,
    /// VD_E_SECURITY without permission, VD_E_BUSY if another live server has it,
    /// VD_E_ABORT if the client already aborted.
    pub fn open(instance: Option<&str>, name: &str) -> VdResult<ServerVirtualDeviceSet> {
        let instance = shm::normalize_instance(instance)?;
        shm::validate_name(name)?;
        let header = open_live_header(&instance, name)?;
        let h = header.header();
        let me = LivenessToken::current();
        let previous = h.server.pid.load(Ordering::Acquire);
        if previous != 0 {
            let other = LivenessToken {
                pid: previous,
                start: h.server.start.load(Ordering::Acquire),
            };
            if other.state() == PeerState::Alive {
                return Err(VdError::Busy);
            }
        }
        if h.server
            .pid
            .compare_exchange(previous, me.pid, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(VdError::Busy);
        }
        h.server.start.store(me.start, Ordering::Release);
        if h.abort.load(Ordering::Acquire) != abort_by::NONE {
            return Err(VdError::Abort);
        }
        let request = crate::shm::layout::SetHeader::load_config(&h.request);
        let mut machine = ServerMachine::new(MAX_OUTSTANDING);
        // The request was validated by the client library, but the segment is untrusted.
        if request.validate_request().is_err() {
            return Err(VdError::Invalid);
        }
        machine.open(request)?;
        if h.phase
            .compare_exchange(phase::WAITING, phase::CONNECTED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // A dead server got further before; the set cannot be resumed.
            return Err(VdError::Busy);
        }
        ring::notify_all(&h.set_wake);
        Ok(ServerVirtualDeviceSet {
            set: Arc::new(ServerSet {
                instance,
                name: name.to_string(),
                header,
                buffers: OnceLock::new(),
                core: Mutex::new(Core {
                    machine,
                    lent: (0..MAX_DEVICES).map(|_| VecDeque::new()).collect(),
                    commands: (0..MAX_DEVICES).map(|_| None).collect(),
                }),
                allocator: Mutex::new(None),
                completions: (0..MAX_DEVICES).map(|_| Mutex::new(None)).collect(),
                last_error: Mutex::new(None),
                phase_seen: AtomicU32::new(phase::CONNECTED),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.set.name
    }

    pub fn state(&self) -> ServerState {
        lock(&self.set.core).machine.state()
    }

    /// Why this side aborted the set on its own (dead or misbehaving client, serverTimeOut).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.set.last_error).clone()
    }

    /// Whether the set is aborted, and by whom ([`abort_by`]) and why ([`abort_reason`]).
    pub fn abort_info(&self) -> Option<(u32, u32)> {
        let h = self.set.header.header();
        match h.abort.load(Ordering::Acquire) {
            abort_by::NONE => None,
            by => Some((by, h.abort_reason.load(Ordering::Acquire))),
        }
    }

    /// GetConfiguration (§1.4): the client's request.
    pub fn get_configuration(&self) -> VdResult<VDConfig> {
        self.set.check(Check::Fast)?;
        lock(&self.set.core).machine.get_configuration()
    }

    /// BeginConfiguration (§1.4).
    pub fn begin_configuration(&self, params: ConfigParams) -> VdResult<()> {
        self.set.check(Check::Fast)?;
        lock(&self.set.core).machine.begin_configuration(params)
    }

    /// RequestBuffers (§1.4): `count` buffers of `size` bytes, summed until EndConfiguration.
    pub fn request_buffers(&self, size: u32, alignment: u32, count: u32) -> VdResult<()> {
        self.set.check(Check::Fast)?;
        lock(&self.set.core).machine.request_buffers(size, alignment, count)
    }

    /// EndConfiguration (§1.4): allocates the buffer area and releases the client's
    /// GetConfiguration. VD_E_MEMORY leaves the set Configurable.
    pub fn end_configuration(&self) -> VdResult<VDConfig> {
        let set = &self.set;
        set.check(Check::Fast)?;
        let mut core = lock(&set.core);
        let m = &mut core.machine;
        let answer = m.end_configuration()?;
        let area_size = (m.buffer_bytes() + METADATA_AREA).next_multiple_of(4096);
        let generation = generation();
        let name = shm::buffer_segment_name(&set.instance, &set.name, generation);
        let h = set.header.header();
        // Published before the segment exists, so that whoever cleans up after a server killed
        // inside EndConfiguration finds the area by name (reliability fix F5: it leaked).
        h.buffer_generation.store(generation, Ordering::Release);
        let area = match BufferMapping::create(&name, area_size, generation, shm::group_access_from_env()) {
            Ok(a) => a,
            Err(_) => {
                m.end_configuration_failed();
                return Err(VdError::Memory);
            }
        };
        *lock(&set.allocator) = Some(BufferAllocator::new(area_size, answer.prefixZoneSize));
        let _ = set.buffers.set(area);
        h.buffer_area_size.store(area_size, Ordering::Relaxed);
        crate::shm::layout::SetHeader::store_config(&h.answer, &answer);
        // SYNC POINT: the answer, generation and size happen-before the client's Acquire
        // load of `phase`.
        h.phase.store(phase::CONFIGURED, Ordering::Release);
        set.phase_seen.fetch_max(phase::CONFIGURED, Ordering::AcqRel);
        drop(core);
        ring::notify_all(&h.set_wake);
        Ok(answer)
    }

    /// OpenDevice (§1.4): opens the next device under `name` and publishes the name so the
    /// client can open it. VD_E_OPEN once all are open.
    pub fn open_device(&self, name: &str) -> VdResult<ServerVirtualDevice> {
        let set = &self.set;
        shm::validate_name(name)?;
        set.check(Check::Fast)?;
        let h = set.header.header();
        let index = {
            let mut core = lock(&set.core);
            let index = core.machine.open_device(name)?;
            core.commands[index] = Some(Producer::attach(&h.devices[index].commands));
            index
        };
        let slot = &h.devices[index];
        *lock(&set.completions[index]) = Some(Consumer::attach(&slot.completions));
        slot.store_name(name);
        h.devices_published.store(index as u32 + 1, Ordering::Release);
        ring::notify_all(&h.set_wake);
        Ok(ServerVirtualDevice {
            set: set.clone(),
            index,
        })
    }

    /// AllocateBuffer (§1.4): `size` bytes aligned to `alignment` (0 = the configured
    /// alignment), with the prefix zone before them.
    pub fn allocate_buffer(&self, size: u32, alignment: u32) -> VdResult<ServerBuffer> {
        let set = &self.set;
        let answer = *lock(&set.core).machine.answer();
        let align = u64::from(alignment.max(answer.alignment).max(1));
        let mut guard = lock(&set.allocator);
        let alloc = guard.as_mut().ok_or(VdError::Protocol)?;
        let offset = alloc.allocate(u64::from(size), align)?;
        let area = set.buffers.get().ok_or(VdError::Protocol)?;
        let ptr = area.range(offset, u64::from(size)).ok_or(VdError::Memory)?;
        Ok(ServerBuffer {
            set: set.clone(),
            offset,
            size,
            ptr,
        })
    }

    /// FreeBuffer (§1.4). Dropping a [`ServerBuffer`] frees it too.
    pub fn free_buffer(&self, buffer: ServerBuffer) -> VdResult<()> {
        if !Arc::ptr_eq(&buffer.set, &self.set) {
            return Err(VdError::Invalid);
        }
        drop(buffer);
        Ok(())
    }

    /// SignalAbort (§1.4, §3.6).
    pub fn signal_abort(&self) -> VdResult<()> {
        // Learn an abort the client already published first: it stays the client's (its
        // completions published before it still count), found by the model (issue 5).
        let _ = self.set.check(Check::Fast);
        lock(&self.set.core).machine.signal_abort()?;
        self.set.publish_abort(abort_reason::SIGNAL);
        Ok(())
    }

    /// Close (seed document): VD_E_PROTOCOL if devices are still open, but it still aborts,
    /// unmaps and completes outstanding commands with ERROR_OPERATION_ABORTED.
    pub fn close(&self) -> CloseOutcome {
        let set = &self.set;
        // An abort the client published but no call of ours has seen yet still puts the set
        // in Abort, where Close is not premature (found by the property-based model, issue 5).
        let _ = set.check(Check::Fast);
        let (result, aborted, already_closed) = {
            let mut core = lock(&set.core);
            let m = &mut core.machine;
            // A second Close is VD_E_PROTOCOL ("no set open") and must not abort the set
            // after a normal end (found by the property-based model, issue 5).
            let already_closed = m.state() == ServerState::Closed;
            let result = m.close();
            (result, m.drain_completions(), already_closed)
        };
        if !already_closed && (result == Err(VdError::Protocol) || !aborted.is_empty()) {
            set.publish_abort(abort_reason::PREMATURE_CLOSE);
        }
        // Dropped outside the lock: a buffer's drop takes the allocator's.
        let lent: Vec<_> = lock(&set.core).lent.iter_mut().map(std::mem::take).collect();
        drop(lent);
        let h = set.header.header();
        h.phase.store(phase::SERVER_CLOSED, Ordering::Release);
        ring::notify_all(&h.set_wake);
        if let Some(area) = set.buffers.get() {
            shm::unlink(area.name());
        }
        // A client that died never unlinks its header; clean up after it.
        if set.client_token().state() == PeerState::Dead
            && h.reclaimed
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            shm::unlink(set.header.segment().name());
        }
        CloseOutcome { result, aborted }
    }
}

/// How long Open gives the next CreateEx of a name to replace the set of a dead creator.
const DEAD_CREATOR_GRACE: Duration = Duration::from_secs(1);

/// Opens a set's header for Open. A set whose creator died is the remains of an earlier run,
/// which the next CreateEx of the name reclaims and replaces: a server that latched onto it
/// while racing that CreateEx failed with VD_E_BUSY or VD_E_ABORT and the new run timed out
/// (reliability fix F9, found by the kill campaign). So Open gives such a set a moment to be
/// replaced; if nothing replaces it, it is opened as before and the first liveness check
/// aborts it.
fn open_live_header(instance: &str, name: &str) -> VdResult<HeaderMapping> {
    let deadline = Instant::now() + DEAD_CREATOR_GRACE;
    let mut saw_dead = false;
    loop {
        match shm::open_header(instance, name, Duration::from_millis(500)) {
            Ok(header) => {
                let h = header.header();
                let creator = LivenessToken {
                    pid: h.client.pid.load(Ordering::Acquire),
                    start: h.client.start.load(Ordering::Acquire),
                };
                if creator.state() != PeerState::Dead || Instant::now() >= deadline {
                    return Ok(header);
                }
                saw_dead = true;
            }
            // Being reclaimed, or not re-created yet.
            Err(VdError::Invalid) if saw_dead && Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn generation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 40)).max(1)
}

impl ServerSet {
    fn client_token(&self) -> LivenessToken {
        let h = self.header.header();
        LivenessToken {
            pid: h.client.pid.load(Ordering::Acquire),
            start: h.client.start.load(Ordering::Acquire),
        }
    }

    fn publish_abort(&self, reason: u32) {
        let h = self.header.header();
        if h.abort
            .compare_exchange(abort_by::NONE, abort_by::SERVER, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            h.abort_reason.store(reason, Ordering::Release);
        }
        let _ = lock(&self.core).machine.signal_abort();
        ring::notify_all(&h.set_wake);
        for d in h.devices.iter() {
            ring::notify_all(&d.commands.wake.0);
            ring::notify_all(&d.completions.wake.0);
        }
    }

    fn misbehaved(&self, e: PeerMisbehaved) {
        *lock(&self.last_error) = Some(format!("client misbehaved: {e}"));
        self.publish_abort(abort_reason::PEER_MISBEHAVED);
    }

    /// Abort by anyone → the machine learns it. Full adds the client's liveness.
    fn check(&self, check: Check) -> VdResult<()> {
        let h = self.header.header();
        if h.abort.load(Ordering::Acquire) != abort_by::NONE {
            lock(&self.core).machine.handle_abort();
            return Err(VdError::Abort);
        }
        if check == Check::Full {
            if let Err(e) = self.header.check_shared(&self.phase_seen) {
                self.misbehaved(e);
                return Err(VdError::Abort);
            }
        }
        if check == Check::Full && self.client_token().state() == PeerState::Dead {
            *lock(&self.last_error) = Some(format!("client process {} died", self.client_token().pid));
            self.publish_abort(abort_reason::PEER_DIED);
            return Err(VdError::Abort);
        }
        Ok(())
    }

    fn send_command(&self, index: usize, mut cmd: ServerCommand) -> Result<u64, Rejected> {
        let reject = |error: VdError, command: ServerCommand| Rejected {
            error,
            completion_code: send_error_completion(error),
            command,
        };
        if let Err(e) = self.check(Check::Fast) {
            return Err(reject(e, cmd));
        }
        let is_data = cmd.code == CommandCode::Read.code() || cmd.code == CommandCode::Write.code();
        let buffer_ok = match &cmd.buffer {
            Some(b) => is_data && cmd.size <= b.size && std::ptr::eq(Arc::as_ptr(&b.set), self),
            None => !is_data,
        };
        if !buffer_ok || cmd.code == 0 || cmd.code == CLOSE_MARKER {
            return Err(reject(VdError::Invalid, cmd));
        }
        let offset = cmd.buffer.as_ref().map_or(NO_BUFFER, |b| b.offset);
        // One critical section: the id, the record and the parked buffer go together.
        let mut guard = lock(&self.core);
        let core = &mut *guard;
        let Some(producer) = core.commands[index].as_mut() else {
            return Err(reject(VdError::Protocol, cmd));
        };
        let id = match core.machine.send_command(index, cmd.code, cmd.size, Instant::now) {
            Ok(id) => id,
            Err(e) => return Err(reject(e, cmd)),
        };
        let slot = &self.header.header().devices[index];
        let pushed = producer.push(&slot.commands, index, "command", |s| {
            s.id.store(id, Ordering::Relaxed);
            s.code.store(cmd.code, Ordering::Relaxed);
            s.size.store(cmd.size, Ordering::Relaxed);
            s.position.store(cmd.position, Ordering::Relaxed);
            s.buffer_offset.store(offset, Ordering::Relaxed);
        });
        match pushed {
            Ok(true) => {
                if let Some(b) = cmd.buffer.take() {
                    core.lent[index].push_back((id, b));
                }
                Ok(id)
            }
            // Outstanding commands never exceed the ring, so a full ring means a broken head.
            Ok(false) | Err(_) => {
                drop(guard); // `misbehaved` takes the lock
                let e = pushed.err().unwrap_or(PeerMisbehaved::RingIndex {
                    device: index,
                    ring: "command",
                    head: 0,
                    tail: 0,
                    capacity: crate::shm::layout::RING_SLOTS as u64,
                });
                self.misbehaved(e);
                Err(reject(VdError::Abort, cmd))
            }
        }
    }

    fn get_completion(&self, index: usize, timeout_ms: u32) -> VdResult<ServerCompletion> {
        let slot = &self.header.header().devices[index];
        let mut guard = lock(&self.completions[index]);
        let consumer = guard.as_mut().ok_or(VdError::Protocol)?;
        let got = ring::wait_for(
            &slot.completions.wake.0,
            Some(&slot.completions.waiters),
            Timeout::from_ms(timeout_ms),
            |c| -> VdResult<Option<ServerCompletion>> {
                // Order matters: note a peer abort, then take completions the client published
                // before it (they still count), then fail the rest with ERROR_OPERATION_ABORTED.
                let mut aborted = self.check(c).is_err();
                if c == Check::Full {
                    // The indices the fast path never reads, validated once per slice.
                    let indices = consumer.has_next(&slot.completions, index, "completion").and_then(|_| {
                        match lock(&self.core).commands[index].as_mut() {
                            Some(commands) => commands.check_head(&slot.commands, index, "command"),
                            None => Ok(()),
                        }
                    });
                    if let Err(e) = indices {
                        self.misbehaved(e);
                        aborted = true;
                    }
                }
                while let Some((id, code, bytes, position)) = consumer.pop(&slot.completions, |s| {
                    (
                        s.id.load(Ordering::Relaxed),
                        s.code.load(Ordering::Relaxed),
                        s.bytes.load(Ordering::Relaxed),
                        s.position.load(Ordering::Relaxed),
                    )
                }) {
                    let mut core = lock(&self.core);
                    match core
                        .machine
                        .handle_completion(index, id, code, bytes, position, Instant::now)
                    {
                        Ok(Some(done)) => return Ok(Some(core.deliver(done))),
                        Ok(None) => continue,
                        Err(e) => {
                            drop(core);
                            self.misbehaved(e);
                            aborted = true;
                            break;
                        }
                    }
                }
                // The machine adds completions of its own only once the set is aborted (or
                // closed with commands outstanding, which aborts it), and every path there
                // publishes the abort flag `check` read: without it, a fast poll is done.
                if !aborted && c == Check::Fast {
                    return Ok(None);
                }
                {
                    let mut core = lock(&self.core);
                    if let Some(done) = core.machine.poll_completion(index) {
                        return Ok(Some(core.deliver(done)));
                    }
                    if aborted || core.machine.state() == ServerState::Abort {
                        return Err(VdError::Abort);
                    }
                }
                if c == Check::Full {
                    let fired = lock(&self.core).machine.handle_timeout(Instant::now());
                    if fired {
                        *lock(&self.last_error) = Some("serverTimeOut: no progress for two intervals".into());
                        self.publish_abort(abort_reason::SERVER_TIMEOUT);
                        let mut core = lock(&self.core);
                        return match core.machine.poll_completion(index) {
                            Some(done) => Ok(Some(core.deliver(done))),
                            None => Err(VdError::Abort),
                        };
                    }
                }
                Ok(None)
            },
        )?;
        got.ok_or(VdError::Timeout)
    }
}

impl Core {
    /// The completion with the buffer its command lent, if it had one.
    fn deliver(&mut self, c: Completion) -> ServerCompletion {
        let buffer = self.take_lent(c.device, c.id);
        ServerCompletion { completion: c, buffer }
    }

    fn take_lent(&mut self, device: usize, id: u64) -> Option<ServerBuffer> {
        let lent = self.lent.get_mut(device)?;
        crate::protocol::take_first(lent, |(lent_id, _)| *lent_id == id).map(|(_, b)| b)
    }
}

impl ServerVirtualDevice {
    pub fn index(&self) -> usize {
        self.index
    }

    /// SendCommand (§1.4). On error the command comes back in [`Rejected`] with the
    /// completion code the callback would have received.
    pub fn send_command(&self, command: ServerCommand) -> Result<u64, Rejected> {
        self.set.send_command(self.index, command)
    }

    /// Waits up to `timeout_ms` for the next completion on this device (the completion
    /// routine's role). VD_E_TIMEOUT if none; VD_E_ABORT once aborted and drained. While
    /// waiting it applies serverTimeOut's two-interval rule and watches the client's liveness.
    pub fn get_completion(&self, timeout_ms: u32) -> VdResult<ServerCompletion> {
        self.set.get_completion(self.index, timeout_ms)
    }

    /// Commands sent on this device and not completed yet.
    pub fn outstanding(&self) -> usize {
        lock(&self.set.core).machine.outstanding(self.index)
    }

    /// CloseDevice (§1.4): after the commands already sent, the client's GetCommand returns
    /// VD_E_CLOSE. VD_E_CLOSE if already closed, VD_E_ABORT after abort.
    pub fn close_device(&self) -> VdResult<()> {
        let set = &self.set;
        set.check(Check::Fast)?;
        let mut guard = lock(&set.core);
        let core = &mut *guard;
        let producer = core.commands[self.index].as_mut().ok_or(VdError::Protocol)?;
        core.machine.close_device(self.index)?;
        let slot = &set.header.header().devices[self.index];
        let pushed = producer.push(&slot.commands, self.index, "command", |s| {
            s.id.store(0, Ordering::Relaxed);
            s.code.store(CLOSE_MARKER, Ordering::Relaxed);
            s.size.store(0, Ordering::Relaxed);
            s.position.store(0, Ordering::Relaxed);
            s.buffer_offset.store(NO_BUFFER, Ordering::Relaxed);
        });
        if !matches!(pushed, Ok(true)) {
            drop(guard); // `misbehaved` takes the lock
            set.misbehaved(pushed.err().unwrap_or(PeerMisbehaved::BadHeaderField {
                field: "command ring head",
                value: slot.commands.head.0.load(Ordering::Relaxed),
            }));
            return Err(VdError::Abort);
        }
        Ok(())
    }
}

impl Drop for ServerBuffer {
    fn drop(&mut self) {
        if let Some(alloc) = lock(&self.set.allocator).as_mut() {
            let _ = alloc.free(self.offset, u64::from(self.size));
        }
    }
}

impl ServerBuffer {
    pub fn len(&self) -> usize {
        self.size as usize
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Offset in the buffer area (what travels in command records).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+size` was bounds-checked in allocate_buffer; the allocator gave
        // this range to this handle only; `set` keeps the mapping alive. While the buffer is
        // lent to the client the handle is parked in `lent` and not reachable.
        unsafe { std::slice::from_raw_parts(self.ptr, self.size as usize) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` makes this the only slice.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.size as usize) }
    }

    /// The prefix zone before the data (§2.4 prefixZoneSize).
    pub fn prefix_mut(&mut self) -> &mut [u8] {
        let prefix = lock(&self.set.core).machine.answer().prefixZoneSize as usize;
        // SAFETY: the allocator reserved `prefix` bytes directly before `offset` for this
        // allocation (BufferAllocator::allocate), inside the mapped area.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.sub(prefix), prefix) }
    }
}
