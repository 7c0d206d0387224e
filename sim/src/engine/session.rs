//! The server side of one BACKUP or RESTORE, as SQL Server drives the VDI (SPEC §1.4, §3.1-§3.3):
//! Open the set named by the first VIRTUAL_DEVICE, check the client's device count,
//! BeginConfiguration / RequestBuffers / EndConfiguration, OpenDevice for every name in statement
//! order, then a pool of BUFFERCOUNT buffers of MAXTRANSFERSIZE shared by all devices (§2.6).
//!
//! Also the shared failure slot of the device threads: the first failure wins, later ones are
//! consequences (other devices see the abort) and are not reported.

use super::messages::{self, Message, OsError};
use crate::protocol::server::ConfigParams;
use crate::server::{ServerBuffer, ServerCommand, ServerVirtualDevice, ServerVirtualDeviceSet};
use crate::vdi::{features, CommandCode, VdError, VdResult};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Called with (bytes done, bytes in total; 0 = not known yet) while data moves.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How long one wait for a completion lasts before the loop re-checks for failures elsewhere.
pub(crate) const SLICE_MS: u32 = 200;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the statement asks of the VDI.
pub(crate) struct SessionSpec<'a> {
    pub instance: Option<&'a str>,
    /// VIRTUAL_DEVICE names in statement order; the first is the set name (§3.3).
    pub devices: &'a [String],
    /// VDF_WriteMedia for BACKUP, VDF_ReadMedia for RESTORE.
    pub media: u32,
    /// Whether this operation sends VDC_Complete when the client asks for it (BACKUP only).
    pub offers_complete: bool,
    pub blocksize: u32,
    pub maxtransfersize: u32,
    pub buffercount: u32,
    /// How long to retry Open while the client has not created the set yet.
    pub open_grace: Duration,
    /// Operation name for messages ("BackupVirtualDeviceSet" / "RestoreVirtualDeviceSet").
    pub context: &'static str,
}

/// An open, configured set with its devices and buffer pool.
pub(crate) struct Session {
    pub set: ServerVirtualDeviceSet,
    pub devices: Vec<ServerVirtualDevice>,
    pub names: Vec<String>,
    /// The client asked for VDF_RequestComplete and the answer carries VDF_CompleteEnabled.
    pub complete_enabled: bool,
    pub pool: BufferPool,
    /// Per-device cap on commands in flight, so one device cannot hold the whole pool.
    pub per_device: usize,
}

/// Opens the set, retrying while it does not exist yet (the client creates it, §3.1 step 1).
pub(crate) fn open_with_grace(instance: Option<&str>, name: &str, grace: Duration) -> VdResult<ServerVirtualDeviceSet> {
    let deadline = Instant::now() + grace;
    loop {
        match ServerVirtualDeviceSet::open(instance, name) {
            Err(VdError::Invalid) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            other => return other,
        }
    }
}

/// When a statement fails before its transfer starts, SQL Server never opens the set, and the
/// client only sees VD_E_TIMEOUT (§3.1 step 3). vdisim aborts the set if it already exists so
/// the client learns of the failure at once instead of after its own timeout.
pub(crate) fn abort_if_created(instance: Option<&str>, name: &str) {
    if let Ok(set) = ServerVirtualDeviceSet::open(instance, name) {
        let _ = set.signal_abort();
        let _ = set.close();
    }
}

fn abort_and_close(set: &ServerVirtualDeviceSet) {
    let _ = set.signal_abort();
    let _ = set.close();
}

impl Session {
    /// Runs §1.4 from Open to the last OpenDevice. On failure the set is aborted and closed and
    /// the messages say why (without the final 3013, which the caller adds).
    pub fn start(spec: &SessionSpec<'_>) -> Result<Session, Vec<Message>> {
        let first = spec.devices.first().map(String::as_str).unwrap_or_default();
        let ctx = spec.context;
        let set = match open_with_grace(spec.instance, first, spec.open_grace) {
            Ok(s) => s,
            Err(VdError::Invalid) => return Err(vec![messages::cannot_open(first, OsError::NotFound)]),
            Err(e) => return Err(vec![messages::cannot_open(first, OsError::Vdi(e))]),
        };
        let request = match set.get_configuration() {
            Ok(r) => r,
            Err(e) => {
                abort_and_close(&set);
                return Err(vec![messages::device_failure(
                    &format!("{ctx}::Initialize"),
                    "Open",
                    first,
                    OsError::Vdi(e),
                )]);
            }
        };
        // §3.3: cfg.deviceCount = n for n VIRTUAL_DEVICE clauses.
        if request.deviceCount as usize != spec.devices.len() {
            abort_and_close(&set);
            let device = spec
                .devices
                .get(request.deviceCount as usize)
                .map_or(first, String::as_str);
            return Err(vec![messages::cannot_open_because(
                device,
                &format!(
                    "Operating system error 0x80770006(VD_E_INVALID): the client created the virtual device set \
                     '{first}' for {} device(s), but the statement names {}.",
                    request.deviceCount,
                    spec.devices.len()
                ),
            )]);
        }
        // §2.2, §3.4: CompleteEnabled answers the client's RequestComplete, and only if the
        // server will send VDC_Complete.
        let complete_enabled = spec.offers_complete && request.features & features::VDF_REQUEST_COMPLETE != 0;
        let feats = spec.media
            | if complete_enabled {
                features::VDF_COMPLETE_ENABLED
            } else {
                0
            };
        let configured = set
            .begin_configuration(ConfigParams {
                features: feats,
                alignment: 0,
                block_size: spec.blocksize,
                max_transfer_size: spec.maxtransfersize,
                timeout_ms: 10_000,
            })
            .map_err(|e| ("BeginConfiguration", e))
            .and_then(|()| {
                set.request_buffers(spec.maxtransfersize, 0, spec.buffercount)
                    .map_err(|e| ("Request large buffers", e))
            })
            .and_then(|()| set.end_configuration().map_err(|e| ("EndConfiguration", e)));
        if let Err((what, e)) = configured {
            abort_and_close(&set);
            return Err(vec![messages::device_failure(
                &format!("{ctx}::Initialize"),
                what,
                first,
                OsError::Vdi(e),
            )]);
        }
        let mut devices = Vec::with_capacity(spec.devices.len());
        for name in spec.devices {
            match set.open_device(name) {
                Ok(d) => devices.push(d),
                Err(e) => {
                    abort_and_close(&set);
                    return Err(vec![messages::device_failure(
                        &format!("{ctx}::OpenDevice"),
                        "Open",
                        name,
                        OsError::Vdi(e),
                    )]);
                }
            }
        }
        let mut buffers = Vec::with_capacity(spec.buffercount as usize);
        for _ in 0..spec.buffercount {
            match set.allocate_buffer(spec.maxtransfersize, 0) {
                Ok(b) => buffers.push(b),
                Err(e) => {
                    drop(buffers);
                    abort_and_close(&set);
                    return Err(vec![messages::device_failure(
                        &format!("{ctx}::Initialize"),
                        "Request large buffers",
                        first,
                        OsError::Vdi(e),
                    )]);
                }
            }
        }
        let per_device = (spec.buffercount as usize)
            .div_ceil(spec.devices.len().max(1))
            .clamp(1, crate::shm::layout::MAX_OUTSTANDING);
        Ok(Session {
            set,
            devices,
            names: spec.devices.to_vec(),
            complete_enabled,
            pool: BufferPool::new(buffers),
            per_device,
        })
    }

    /// Aborts the set (§3.6) and closes it; used on every failure after configuration.
    pub fn abort(self) {
        drop(self.pool);
        abort_and_close(&self.set);
    }
}

/// BUFFERCOUNT buffers shared by all devices (§2.6, §3.3 "buffers are not tied to devices").
pub(crate) struct BufferPool {
    free: Mutex<Vec<ServerBuffer>>,
    returned: Condvar,
}

impl BufferPool {
    fn new(buffers: Vec<ServerBuffer>) -> Self {
        BufferPool {
            free: Mutex::new(buffers),
            returned: Condvar::new(),
        }
    }

    /// A free buffer, waiting at most `wait` for one to come back.
    pub fn take(&self, wait: Duration) -> Option<ServerBuffer> {
        let deadline = Instant::now() + wait;
        let mut free = lock(&self.free);
        loop {
            if let Some(b) = free.pop() {
                return Some(b);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            free = self
                .returned
                .wait_timeout(free, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Gives a buffer back to the pool.
    pub fn put(&self, b: ServerBuffer) {
        lock(&self.free).push(b);
        self.returned.notify_one();
    }
}

/// How much a failure explains. A device that sees the set aborted (995, VD_E_ABORT) reports a
/// consequence; a client's own error code (e.g. ERROR_DISK_FULL) or a bad stream is the cause
/// and replaces a consequence recorded before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Weight {
    Consequence,
    Cause,
}

/// The first failure of an operation (by [`Weight`]) and a flag every device thread polls.
#[derive(Default)]
pub(crate) struct Failure {
    failed: AtomicBool,
    slot: Mutex<Option<(Weight, Vec<Message>)>>,
}

impl Failure {
    pub fn is_set(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records a cause unless a cause was recorded already.
    pub fn set(&self, messages: Vec<Message>) {
        self.set_weighted(Weight::Cause, messages);
    }

    /// Records a consequence (the set was aborted) unless anything was recorded already.
    pub fn set_consequence(&self, messages: Vec<Message>) {
        self.set_weighted(Weight::Consequence, messages);
    }

    fn set_weighted(&self, weight: Weight, messages: Vec<Message>) {
        let mut slot = lock(&self.slot);
        let replace = match slot.as_ref() {
            None => true,
            Some((w, _)) => *w < weight,
        };
        if replace {
            *slot = Some((weight, messages));
        }
        self.failed.store(true, Ordering::Release);
    }

    pub fn take(&self) -> Vec<Message> {
        lock(&self.slot).take().map(|(_, m)| m).unwrap_or_default()
    }
}

/// Waits for the completions of every command still in flight on `dev`, giving buffers back
/// to the pool, for at most `bound` without progress. After an abort they come back as
/// ERROR_OPERATION_ABORTED and then VD_E_ABORT ends the wait (§3.6).
pub(crate) fn drain(dev: &ServerVirtualDevice, pool: &BufferPool, in_flight: &mut usize, bound: Duration) {
    let mut last = Instant::now();
    while *in_flight > 0 {
        match dev.get_completion(SLICE_MS) {
            Ok(c) => {
                *in_flight -= 1;
                last = Instant::now();
                if let Some(b) = c.buffer {
                    pool.put(b);
                }
            }
            Err(VdError::Timeout) if last.elapsed() < bound => {}
            Err(_) => return,
        }
    }
}

/// Sends a command without a buffer (Flush, ClearError, Complete) and waits for its completion
/// code, at most `bound`.
pub(crate) fn run_simple(dev: &ServerVirtualDevice, code: CommandCode, bound: Duration) -> Result<u32, VdError> {
    dev.send_command(ServerCommand {
        code: code.code(),
        size: 0,
        position: 0,
        buffer: None,
    })
    .map_err(|r| r.error)?;
    let start = Instant::now();
    loop {
        match dev.get_completion(SLICE_MS) {
            Ok(c) => return Ok(c.completion.completion_code),
            Err(VdError::Timeout) if start.elapsed() < bound => {}
            Err(e) => return Err(e),
        }
    }
}

/// Bytes moved so far, reported to an optional progress callback and used for WITH STATS.
pub(crate) struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    callback: Option<ProgressFn>,
    stats: Option<u32>,
    percent_messages: Mutex<(u32, Vec<Message>)>,
}

impl Progress {
    pub fn new(callback: Option<ProgressFn>, stats: Option<u32>) -> Self {
        Progress {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            callback,
            stats,
            percent_messages: Mutex::new((0, Vec::new())),
        }
    }

    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Release);
        if let Some(cb) = &self.callback {
            cb(self.done.load(Ordering::Acquire), total);
        }
    }

    pub fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::AcqRel) + n;
        let total = self.total.load(Ordering::Acquire);
        if let Some(cb) = &self.callback {
            cb(done, total);
        }
        if let (Some(step), true) = (self.stats, total > 0) {
            let pct = (done.saturating_mul(100) / total).min(100) as u32;
            let mut g = lock(&self.percent_messages);
            let step = step.max(1);
            while g.0 + step <= pct {
                g.0 += step;
                let p = g.0;
                g.1.push(messages::percent(p));
            }
        }
    }

    /// The "N percent processed." messages so far (WITH STATS).
    pub fn percent_messages(&self) -> Vec<Message> {
        std::mem::take(&mut lock(&self.percent_messages).1)
    }
}
