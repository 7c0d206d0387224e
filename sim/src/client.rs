//! The client API, shaped like `IClientVirtualDeviceSet2` and `IClientVirtualDevice`
//! (SPEC §1.2, §1.3): what a backup application calls.
//!
//! This is the transport: it asks [`ClientMachine`] what each call may do, then reads and
//! writes the shared segments. Timeouts are VDI milliseconds ([`crate::vdi::INFINITE`] waits
//! for ever, but every wait still re-checks abort and the server's liveness).

use crate::protocol::client::{ClientMachine, Incoming, SetState};
use crate::protocol::PeerMisbehaved;
use crate::shm::layout::{abort_by, abort_reason, phase, CLOSE_MARKER, LAYOUT_VERSION, MAX_DEVICES, NO_BUFFER};
use crate::shm::platform::{LivenessToken, PeerState};
use crate::shm::ring::{self, Check, Consumer, Producer, Timeout};
use crate::shm::{self, BufferMapping, HeaderMapping};
use crate::vdi::{completion, CommandCode, VDConfig, VdError, VdResult};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long OpenDevice waits for the server to publish a device name before answering
/// VD_E_OPEN ("benign, clients may loop until it appears", §1.2).
const OPEN_DEVICE_WAIT: Duration = Duration::from_secs(2);

/// A virtual device set, client side (`IClientVirtualDeviceSet2`).
///
/// Safe to share between threads: one thread per device is the intended use (§3.3).
#[derive(Default)]
pub struct ClientVirtualDeviceSet {
    inner: Option<Arc<ClientSet>>,
}

/// One virtual device, client side (`IClientVirtualDevice`).
#[derive(Clone)]
pub struct ClientVirtualDevice {
    set: Arc<ClientSet>,
    index: usize,
}

/// A command handed out by GetCommand. Its buffer belongs to the client until
/// CompleteCommand (§3.1 step 5).
pub struct Command {
    set: Arc<ClientSet>,
    device: usize,
    id: u64,
    code: u32,
    size: u32,
    position: u64,
    buffer: *mut u8,
    done: AtomicBool,
}

// SAFETY: `buffer` points into the buffer-area mapping that `set` keeps alive; the range is
// reserved for this command until it is completed, so moving the handle to another thread
// moves the exclusive right to use it.
unsafe impl Send for Command {}

struct DeviceIo {
    commands: Consumer,
    last_id: u64,
    /// A ClearError held back until the outstanding commands complete (§3.5).
    held_clear: Option<Record>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    id: u64,
    code: u32,
    size: u32,
    position: u64,
    buffer_offset: u64,
}

/// The protocol machine and the completion-ring producers under one lock, so CompleteCommand
/// takes one lock (issue 7). The command-ring consumers have their own per-device locks:
/// GetCommand holds one for its whole wait.
struct ClientCore {
    machine: ClientMachine,
    /// Per device: the completion-ring producer, `None` until the device is opened.
    writers: Vec<Option<Producer>>,
}

pub(crate) struct ClientSet {
    instance: String,
    name: String,
    primary: bool,
    header: HeaderMapping,
    buffers: OnceLock<BufferMapping>,
    core: Mutex<ClientCore>,
    /// Per device: the command-ring consumer (GetCommand).
    readers: Vec<Mutex<Option<DeviceIo>>>,
    /// Why the set was aborted by this side's validation, for diagnostics.
    last_error: Mutex<Option<String>>,
    /// The highest `phase` seen: it must never go back (F8).
    phase_seen: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another thread while holding the lock leaves consistent data here (every
    // critical section is a few plain updates), so recover instead of propagating.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientVirtualDeviceSet {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(&self) -> VdResult<&Arc<ClientSet>> {
        self.inner.as_ref().ok_or(VdError::Protocol)
    }

    /// The set's name, once created or opened.
    pub fn name(&self) -> Option<&str> {
        self.inner.as_ref().map(|s| s.name.as_str())
    }

    /// The set's protocol state (§1.5), DNE before CreateEx and after Close.
    pub fn state(&self) -> SetState {
        self.inner
            .as_ref()
            .map_or(SetState::Dne, |s| lock(&s.core).machine.state())
    }

    /// Why this side aborted the set, if it did so on its own (a dead or misbehaving peer).
    pub fn last_error(&self) -> Option<String> {
        self.inner.as_ref().and_then(|s| lock(&s.last_error).clone())
    }

    /// CreateEx (§1.2): creates the set's shared segment. VD_E_PROTOCOL if this handle already
    /// has a set or a live set of that name exists; VD_E_NOTSUPPORTED for a bad config field;
    /// VD_E_INVALID for a bad name; VD_E_INSTANCE_NAME for a bad instance.
    pub fn create_ex(&mut self, instance: Option<&str>, name: &str, config: &VDConfig) -> VdResult<()> {
        if self.inner.is_some() {
            return Err(VdError::Protocol);
        }
        let instance = shm::normalize_instance(instance)?;
        shm::validate_name(name)?;
        let mut machine = ClientMachine::new();
        machine.create(config)?;
        let header = shm::create_header(&instance, name, shm::group_access_from_env())?;
        let h = header.header();
        crate::shm::layout::SetHeader::store_config(&h.request, config);
        // SYNC POINT: everything written above happens-before an opener's Acquire of version.
        h.version.store(LAYOUT_VERSION, Ordering::Release);
        self.inner = Some(Arc::new(ClientSet::new(instance, name, true, header, machine)));
        Ok(())
    }

    /// Create (§1.2, deprecated): CreateEx with the instance from `_VIRTUAL_SERVER_NAME_`.
    pub fn create(&mut self, name: &str, config: &VDConfig) -> VdResult<()> {
        let instance = std::env::var("_VIRTUAL_SERVER_NAME_").ok();
        self.create_ex(instance.as_deref(), name, config)
    }

    /// GetConfiguration (§1.2): waits up to `timeout_ms` for the server's EndConfiguration.
    /// VD_E_TIMEOUT leaves the state unchanged, so the call may be retried.
    pub fn get_configuration(&self, timeout_ms: u32) -> VdResult<VDConfig> {
        let set = self.set()?;
        set.get_configuration(timeout_ms)
    }

    /// OpenDevice (§1.2): the first device is named like the set (§3.3).
    pub fn open_device(&self, name: &str) -> VdResult<ClientVirtualDevice> {
        let set = self.set()?;
        let index = set.open_device(name)?;
        Ok(ClientVirtualDevice {
            set: set.clone(),
            index,
        })
    }

    /// SignalAbort (§1.2, §3.6).
    pub fn signal_abort(&self) -> VdResult<()> {
        let set = self.set()?;
        lock(&set.core).machine.signal_abort()?;
        set.publish_abort(abort_reason::SIGNAL);
        Ok(())
    }

    /// Close (§1.2). VD_E_PROTOCOL if no set is open. VD_E_OPEN if devices are still open: it
    /// then signals abort and frees everything anyway. The handle can be reused afterwards.
    pub fn close(&mut self) -> VdResult<()> {
        let Some(set) = self.inner.take() else {
            return Err(VdError::Protocol);
        };
        // An abort the server published but no call of ours has seen yet still puts the set in
        // Abort, where Close is NOERROR (§1.5), not VD_E_OPEN.
        let _ = set.check(Check::Fast);
        let (result, was_normal) = {
            let m = &mut lock(&set.core).machine;
            let normal = m.state() == SetState::NormTerm;
            (m.close(), normal)
        };
        if !was_normal {
            // A set closed before its normal end is over for the server too.
            set.publish_abort(abort_reason::PREMATURE_CLOSE);
        }
        if set.primary {
            set.unlink();
        }
        result
    }

    /// OpenInSecondary / OpenInSecondaryEx (§1.2): opens a set created and configured by a
    /// primary client in another process. VD_E_PROTOCOL if it does not exist, is not ready, or
    /// this handle already has a set.
    pub fn open_in_secondary(&mut self, instance: Option<&str>, name: &str) -> VdResult<()> {
        if self.inner.is_some() {
            return Err(VdError::Protocol);
        }
        let instance = shm::normalize_instance(instance)?;
        shm::validate_name(name)?;
        let header = match shm::open_header(&instance, name, Duration::from_millis(200)) {
            Ok(h) => h,
            Err(VdError::Security) => return Err(VdError::Security),
            Err(_) => return Err(VdError::Protocol),
        };
        let h = header.header();
        if h.abort.load(Ordering::Acquire) != abort_by::NONE {
            return Err(VdError::Abort);
        }
        if h.phase.load(Ordering::Acquire) != phase::CONFIGURED {
            return Err(VdError::Protocol);
        }
        let set = ClientSet::new(instance, name, false, header, ClientMachine::new());
        set.phase_seen.store(phase::CONFIGURED, Ordering::Relaxed);
        let answer = set.map_buffers()?;
        let names = set.published_names();
        lock(&set.core).machine.open_secondary(answer, names)?;
        self.inner = Some(Arc::new(set));
        Ok(())
    }

    /// GetBufferHandle (§1.2): a buffer address → a handle valid in any process of the set.
    pub fn get_buffer_handle(&self, ptr: *const u8) -> VdResult<u32> {
        let set = self.set()?;
        let area = set.buffers.get().ok_or(VdError::Protocol)?;
        let offset = area.offset_of(ptr).ok_or(VdError::Invalid)?;
        u32::try_from(offset).map_err(|_| VdError::Invalid)
    }

    /// MapBufferHandle (§1.2): a handle from GetBufferHandle → this process's address.
    pub fn map_buffer_handle(&self, handle: u32) -> VdResult<*mut u8> {
        let set = self.set()?;
        let area = set.buffers.get().ok_or(VdError::Protocol)?;
        area.range(u64::from(handle), 1).ok_or(VdError::Invalid)
    }
}

impl Drop for ClientVirtualDeviceSet {
    fn drop(&mut self) {
        // Releasing a set without Close still frees it (as Release does on Windows).
        if self.inner.is_some() {
            let _ = self.close();
        }
    }
}

impl ClientSet {
    fn new(instance: String, name: &str, primary: bool, header: HeaderMapping, machine: ClientMachine) -> ClientSet {
        ClientSet {
            instance,
            name: name.to_string(),
            primary,
            header,
            buffers: OnceLock::new(),
            core: Mutex::new(ClientCore {
                machine,
                writers: (0..MAX_DEVICES).map(|_| None).collect(),
            }),
            readers: (0..MAX_DEVICES).map(|_| Mutex::new(None)).collect(),
            last_error: Mutex::new(None),
            phase_seen: AtomicU32::new(phase::WAITING),
        }
    }

    fn unlink(&self) {
        let h = self.header.header();
        let generation = h.buffer_generation.load(Ordering::Acquire);
        if generation != 0 {
            shm::unlink(&shm::buffer_segment_name(&self.instance, &self.name, generation));
        }
        shm::unlink(self.header.segment().name());
    }

    /// Publishes an abort by this side and wakes every waiter on both sides.
    fn publish_abort(&self, reason: u32) {
        let h = self.header.header();
        if h.abort
            .compare_exchange(abort_by::NONE, abort_by::CLIENT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            h.abort_reason.store(reason, Ordering::Release);
        }
        lock(&self.core).machine.handle_abort();
        ring::notify_all(&h.set_wake);
        for d in h.devices.iter() {
            ring::notify_all(&d.commands.wake.0);
            ring::notify_all(&d.completions.wake.0);
        }
    }

    fn misbehaved(&self, e: PeerMisbehaved) -> VdError {
        *lock(&self.last_error) = Some(format!("server misbehaved: {e}"));
        self.publish_abort(abort_reason::PEER_MISBEHAVED);
        VdError::Abort
    }

    /// Cheap check: has anyone aborted? Full check adds the server's liveness.
    fn check(&self, check: Check) -> VdResult<()> {
        let h = self.header.header();
        if h.abort.load(Ordering::Acquire) != abort_by::NONE {
            lock(&self.core).machine.handle_abort();
            return Err(VdError::Abort);
        }
        if check == Check::Full {
            self.header
                .check_shared(&self.phase_seen)
                .map_err(|e| self.misbehaved(e))?;
            let server = LivenessToken {
                pid: h.server.pid.load(Ordering::Acquire),
                start: h.server.start.load(Ordering::Acquire),
            };
            // A server that closed normally may exit before we drained its last commands.
            let closed = h.phase.load(Ordering::Acquire) == phase::SERVER_CLOSED;
            if server.pid != 0 && !closed && server.state() == PeerState::Dead {
                *lock(&self.last_error) = Some(format!("server process {} died", server.pid));
                self.publish_abort(abort_reason::PEER_DIED);
                return Err(VdError::Abort);
            }
        }
        Ok(())
    }

    fn published_names(&self) -> Vec<String> {
        let h = self.header.header();
        let n = (h.devices_published.load(Ordering::Acquire) as usize).min(MAX_DEVICES);
        h.devices[..n]
            .iter()
            .map(|d| d.load_name().unwrap_or_default())
            .collect()
    }

    /// Maps the buffer area the server announced and returns its configuration answer.
    fn map_buffers(&self) -> VdResult<VDConfig> {
        let h = self.header.header();
        let answer = crate::shm::layout::SetHeader::load_config(&h.answer);
        let request = lock(&self.core)
            .machine
            .config()
            .copied()
            .unwrap_or_else(|| crate::shm::layout::SetHeader::load_config(&h.request));
        if let Err(e) = validate_answer(&request, &answer) {
            return Err(self.misbehaved(e));
        }
        if self.buffers.get().is_none() {
            let generation = h.buffer_generation.load(Ordering::Acquire);
            let size = h.buffer_area_size.load(Ordering::Acquire);
            let name = shm::buffer_segment_name(&self.instance, &self.name, generation);
            let area = BufferMapping::open(&name, size, generation).map_err(|e| {
                if e == VdError::Security {
                    // Not the server's fault: this user may not map its area (§4 permissions).
                    *lock(&self.last_error) = Some(format!("no permission to map the buffer area {name}"));
                    self.publish_abort(abort_reason::PEER_MISBEHAVED);
                    return e;
                }
                // The set is aborted either way: say so (reliability fix F7).
                self.misbehaved(PeerMisbehaved::BadHeaderField {
                    field: "buffer area",
                    value: size,
                })
            })?;
            let _ = self.buffers.set(area);
        }
        Ok(answer)
    }

    fn get_configuration(&self, timeout_ms: u32) -> VdResult<VDConfig> {
        self.check(Check::Fast)?;
        if let Some(cfg) = lock(&self.core).machine.get_configuration()? {
            return Ok(cfg);
        }
        let h = self.header.header();
        let ready = ring::wait_for(&h.set_wake, None, Timeout::from_ms(timeout_ms), |c| {
            self.check(c)?;
            Ok::<_, VdError>((h.phase.load(Ordering::Acquire) >= phase::CONFIGURED).then_some(()))
        })?;
        if ready.is_none() {
            return Err(VdError::Timeout);
        }
        match h.phase.load(Ordering::Acquire) {
            phase::CONFIGURED => {
                self.phase_seen.fetch_max(phase::CONFIGURED, Ordering::AcqRel);
            }
            phase::SERVER_CLOSED => {
                *lock(&self.last_error) = Some("the server closed the set before configuring it".into());
                self.publish_abort(abort_reason::SIGNAL);
                return Err(VdError::Abort);
            }
            other => {
                return Err(self.misbehaved(PeerMisbehaved::BadHeaderField {
                    field: "phase",
                    value: u64::from(other),
                }))
            }
        }
        let answer = self.map_buffers()?;
        let m = &mut lock(&self.core).machine;
        m.handle_server_configured(answer, Vec::new());
        m.get_configuration()?.ok_or(VdError::Unexpected)
    }

    fn open_device(&self, name: &str) -> VdResult<usize> {
        shm::validate_name(name).map_err(|_| VdError::Invalid)?;
        self.check(Check::Fast)?;
        let h = self.header.header();
        let deadline = Instant::now() + OPEN_DEVICE_WAIT;
        let found = ring::wait_for(&h.set_wake, None, Timeout::At(deadline), |c| {
            self.check(c)?;
            let names = self.published_names();
            let published = names.len();
            let m = &mut lock(&self.core).machine;
            m.handle_device_names(names);
            match m.open_device(name)? {
                Some(i) => Ok(Some(i)),
                None => {
                    let expected = m.config().map_or(0, |c| c.deviceCount as usize);
                    if published >= expected {
                        Err(VdError::Invalid)
                    } else {
                        Ok(None)
                    }
                }
            }
        })?;
        let Some(index) = found else {
            return Err(VdError::Open);
        };
        let slot = &h.devices[index];
        if slot
            .client_opened
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another process (a secondary) opened it.
            return Err(VdError::Protocol);
        }
        *lock(&self.readers[index]) = Some(DeviceIo {
            commands: Consumer::attach(&slot.commands),
            last_id: 0,
            held_clear: None,
        });
        let mut core = lock(&self.core);
        core.writers[index] = Some(Producer::attach(&slot.completions));
        core.machine.device_opened(index);
        Ok(index)
    }

    /// Validates a record the server wrote (everything in it is untrusted).
    fn validate(&self, device: usize, io: &mut DeviceIo, r: &Record) -> Result<(), PeerMisbehaved> {
        if r.id <= io.last_id {
            return Err(PeerMisbehaved::SequenceJump {
                device,
                previous: io.last_id,
                id: r.id,
            });
        }
        if r.code == 0 || r.code > 0xFFFF {
            return Err(PeerMisbehaved::BadCommandCode { device, code: r.code });
        }
        let is_data = r.code == CommandCode::Read.code() || r.code == CommandCode::Write.code();
        if is_data != (r.buffer_offset != NO_BUFFER) {
            return Err(PeerMisbehaved::BufferMismatch { device, code: r.code });
        }
        if is_data {
            let area = self.buffers.get().map_or(0, |b| b.area_size());
            let fits = self
                .buffers
                .get()
                .and_then(|b| b.range(r.buffer_offset, u64::from(r.size)))
                .is_some();
            if !fits {
                return Err(PeerMisbehaved::BufferOutsideSegment {
                    device,
                    offset: r.buffer_offset,
                    size: u64::from(r.size),
                    area,
                });
            }
        }
        io.last_id = r.id;
        Ok(())
    }

    fn get_command(self: &Arc<Self>, index: usize, timeout_ms: u32) -> VdResult<Command> {
        self.check(Check::Fast)?;
        let mut guard = self.readers[index].try_lock().map_err(|_| VdError::Busy)?;
        let io = guard.as_mut().ok_or(VdError::Protocol)?;
        let slot = &self.header.header().devices[index];
        enum Got {
            Command(Record),
            Close,
        }
        // §1.5's checks of this call run with the first command taken (accept_incoming), or
        // before the first real wait: a command that is already there costs one lock.
        let mut checked = false;
        let got = ring::wait_for(
            &slot.commands.wake.0,
            Some(&slot.commands.waiters),
            Timeout::from_ms(timeout_ms),
            |c| -> VdResult<Option<Got>> {
                self.check(c)?;
                if let Some(held) = io.held_clear {
                    if lock(&self.core).machine.accept_incoming(index, held.id, held.code)? == Incoming::Deliver {
                        io.held_clear = None;
                        return Ok(Some(Got::Command(held)));
                    }
                }
                loop {
                    if io.held_clear.is_some() {
                        return Ok(None);
                    }
                    let popped = io.commands.pop(&slot.commands, |s| Record {
                        id: s.id.load(Ordering::Relaxed),
                        code: s.code.load(Ordering::Relaxed),
                        size: s.size.load(Ordering::Relaxed),
                        position: s.position.load(Ordering::Relaxed),
                        buffer_offset: s.buffer_offset.load(Ordering::Relaxed),
                    });
                    let Some(r) = popped else {
                        if !checked {
                            lock(&self.core).machine.check_get_command(index)?;
                            checked = true;
                        }
                        if c == Check::Full {
                            // A normal server Close comes after every device's close marker, so
                            // a closed server with this ring empty sends nothing more: end an
                            // otherwise unbounded (INFINITE) wait. Phase first, ring second:
                            // the server publishes the marker before the phase.
                            let closed = self.header.header().phase.load(Ordering::Acquire) == phase::SERVER_CLOSED;
                            // The indices the fast path never reads, validated once per slice.
                            let waiting = io
                                .commands
                                .has_next(&slot.commands, index, "command")
                                .map_err(|e| self.misbehaved(e))?;
                            let head = match lock(&self.core).writers[index].as_mut() {
                                Some(completions) => completions.check_head(&slot.completions, index, "completion"),
                                None => Ok(()),
                            };
                            head.map_err(|e| self.misbehaved(e))?;
                            if closed && !waiting {
                                *lock(&self.last_error) =
                                    Some(format!("server closed the set without closing device {index}"));
                                self.publish_abort(abort_reason::PEER_MISBEHAVED);
                                return Err(VdError::Abort);
                            }
                        }
                        return Ok(None);
                    };
                    if r.code == CLOSE_MARKER {
                        return Ok(Some(Got::Close));
                    }
                    self.validate(index, io, &r).map_err(|e| self.misbehaved(e))?;
                    let class = lock(&self.core).machine.accept_incoming(index, r.id, r.code)?;
                    match class {
                        Incoming::Deliver => return Ok(Some(Got::Command(r))),
                        Incoming::Hold => io.held_clear = Some(r),
                        Incoming::AutoFail => {
                            self.publish_completion(index, r.id, completion::ERROR_IO_DEVICE, 0, 0)?;
                        }
                    }
                }
            },
        )?;
        match got {
            None => Err(VdError::Timeout),
            Some(Got::Close) => {
                let machine = &mut lock(&self.core).machine;
                machine.check_get_command(index)?;
                Err(machine.close_delivered(index))
            }
            Some(Got::Command(r)) => {
                let buffer = if r.buffer_offset == NO_BUFFER {
                    std::ptr::null_mut()
                } else {
                    // Validated in `validate`.
                    self.buffers
                        .get()
                        .and_then(|b| b.range(r.buffer_offset, u64::from(r.size)))
                        .unwrap_or(std::ptr::null_mut())
                };
                Ok(Command {
                    set: self.clone(),
                    device: index,
                    id: r.id,
                    code: r.code,
                    size: r.size,
                    position: r.position,
                    buffer,
                    done: AtomicBool::new(false),
                })
            }
        }
    }

    fn publish_completion(&self, index: usize, id: u64, code: u32, bytes: u32, position: u64) -> VdResult<()> {
        self.publish_completion_locked(lock(&self.core), index, id, code, bytes, position)
    }

    /// Pushes a completion with the core lock held (and released before any misbehaviour
    /// is reported: that takes the lock again).
    fn publish_completion_locked(
        &self,
        mut guard: MutexGuard<'_, ClientCore>,
        index: usize,
        id: u64,
        code: u32,
        bytes: u32,
        position: u64,
    ) -> VdResult<()> {
        let slot = &self.header.header().devices[index];
        let producer = guard.writers[index].as_mut().ok_or(VdError::Protocol)?;
        let pushed = producer.push(&slot.completions, index, "completion", |s| {
            s.id.store(id, Ordering::Relaxed);
            s.code.store(code, Ordering::Relaxed);
            s.bytes.store(bytes, Ordering::Relaxed);
            s.position.store(position, Ordering::Relaxed);
        });
        drop(guard);
        match pushed {
            Ok(true) => Ok(()),
            Err(e) => Err(self.misbehaved(e)),
            // At most MAX_OUTSTANDING completions can be unconsumed unless the server broke
            // its ring index.
            Ok(false) => Err(self.misbehaved(PeerMisbehaved::RingIndex {
                device: index,
                ring: "completion",
                head: slot.completions.head.0.load(Ordering::Relaxed),
                tail: 0,
                capacity: crate::shm::layout::RING_SLOTS as u64,
            })),
        }
    }

    fn complete_command(&self, cmd: &Command, code: u32, bytes: u32, position: u64) -> VdResult<()> {
        self.check(Check::Fast)?;
        if !std::ptr::eq(Arc::as_ptr(&cmd.set), self) {
            return Err(VdError::Invalid);
        }
        if cmd.done.load(Ordering::Acquire) {
            return Err(VdError::Invalid);
        }
        let is_data = cmd.code == CommandCode::Read.code() || cmd.code == CommandCode::Write.code();
        if is_data && bytes > cmd.size {
            return Err(VdError::Invalid);
        }
        let mut core = lock(&self.core);
        core.machine.complete_command(cmd.device, cmd.id, code)?;
        cmd.done.store(true, Ordering::Release);
        self.publish_completion_locked(core, cmd.device, cmd.id, code, bytes, position)
    }
}

/// Checks the server's configuration answer (everything in the header is untrusted) against
/// §1.4 BeginConfiguration's rules and the client's own request (reliability fix F7).
fn validate_answer(request: &VDConfig, answer: &VDConfig) -> Result<(), PeerMisbehaved> {
    let bad = |field: &'static str, value: u32| {
        Err(PeerMisbehaved::BadHeaderField {
            field,
            value: u64::from(value),
        })
    };
    if answer.deviceCount != request.deviceCount {
        return bad("answer.deviceCount", answer.deviceCount);
    }
    if !answer.blockSize.is_power_of_two() || !(512..=65536).contains(&answer.blockSize) {
        return bad("answer.blockSize", answer.blockSize);
    }
    if answer.alignment != 0 && (!answer.alignment.is_power_of_two() || answer.alignment > 65536) {
        return bad("answer.alignment", answer.alignment);
    }
    let mts = answer.maxTransferSize;
    if mts == 0 || mts % 65536 != 0 || mts > 4 << 20 {
        return bad("answer.maxTransferSize", mts);
    }
    if answer.prefixZoneSize != request.prefixZoneSize {
        return bad("answer.prefixZoneSize", answer.prefixZoneSize);
    }
    Ok(())
}

impl ClientVirtualDevice {
    /// The device's index in the set (0 is the device named like the set).
    pub fn index(&self) -> usize {
        self.index
    }

    /// GetCommand (§1.3): the next command, or VD_E_CLOSE at the normal end of the device's
    /// stream, VD_E_TIMEOUT (retry is fine), VD_E_ABORT. VD_E_BUSY if another thread is in
    /// GetCommand on the same device.
    pub fn get_command(&self, timeout_ms: u32) -> VdResult<Command> {
        self.set.get_command(self.index, timeout_ms)
    }

    /// CompleteCommand (§1.3): `completion_code` is a Win32 code (§2.5); bytes matter for
    /// Read/Write, position for Get/SetPosition. VD_E_INVALID if the command is not active
    /// (already completed, or not this set's).
    pub fn complete_command(&self, cmd: &Command, completion_code: u32, bytes: u32, position: u64) -> VdResult<()> {
        if cmd.device != self.index {
            return Err(VdError::Invalid);
        }
        self.set.complete_command(cmd, completion_code, bytes, position)
    }
}

impl Command {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn device(&self) -> usize {
        self.device
    }

    /// The raw VDC_* code (unknown codes are delivered so the client can answer
    /// ERROR_NOT_SUPPORTED, §2.5).
    pub fn code(&self) -> u32 {
        self.code
    }

    pub fn command(&self) -> Option<CommandCode> {
        CommandCode::from_code(self.code)
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    /// Whether CompleteCommand already ran.
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// The data of a Write (or the space of a Read); empty once completed or without buffer.
    pub fn buffer(&self) -> &[u8] {
        if self.buffer.is_null() || self.is_completed() {
            return &[];
        }
        // SAFETY: `buffer..buffer+size` was bounds-checked against the buffer area, which
        // `self.set` keeps mapped; the server handed the range to this command until it is
        // completed, and we stop handing out slices after completion.
        unsafe { std::slice::from_raw_parts(self.buffer, self.size as usize) }
    }

    /// Mutable access to the buffer, to fill a Read.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        if self.buffer.is_null() || self.is_completed() {
            return &mut [];
        }
        // SAFETY: as in `buffer`; `&mut self` makes this the only slice into the range.
        unsafe { std::slice::from_raw_parts_mut(self.buffer, self.size as usize) }
    }

    /// The raw address, for the C ABIs (null without a buffer).
    pub fn buffer_ptr(&self) -> *mut u8 {
        self.buffer
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("device", &self.device)
            .field("id", &self.id)
            .field("code", &self.command().map_or("unknown", |c| c.name()))
            .field("size", &self.size)
            .field("position", &self.position)
            .finish()
    }
}
