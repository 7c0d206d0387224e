//! The built-in server: a BACKUP/RESTORE-like job over `vdisim::server`, in the manner of
//! `vdisim::pump` (one thread per device, BUFFERCOUNT buffers shared by all devices, Flush
//! and VDC_Complete at the end, every Read checked against the data the backup sent).
//! [`KnobServer`] carries switches that each turn on one classic server bug (the server
//! mutants); with every switch off it is [`BuiltinServer`].

use crate::harness::{hostile, pattern};
use crate::plugin::{spawn_thread_job, Cancel, JobExit, Mode, RunningJob, ServerJob, ServerUnderTest};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vdisim::protocol::server::ConfigParams;
use vdisim::reference_client::device_name;
use vdisim::server::{ServerBuffer, ServerCommand, ServerVirtualDevice, ServerVirtualDeviceSet};
use vdisim::vdi::{completion, features, CommandCode, VDConfig, VdError};

/// Switches for the knob-driven server. Each one is a classic real-world bug.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerKnobs {
    /// Streams one device completely, then the next, instead of one thread per device.
    pub sequential_devices: bool,
    /// Ignores the client's serverTimeOut (as if it were 0).
    pub ignore_server_timeout: bool,
    /// Aborts after one serverTimeOut interval without progress instead of two.
    pub timeout_one_interval: bool,
    /// Aborts when the job has run two intervals, even while commands complete.
    pub timeout_total: bool,
    /// Closes the set without CloseDevice on the devices.
    pub close_without_close_device: bool,
    /// Never sends the final Flush of a backup.
    pub no_flush: bool,
    /// Takes only ERROR_HANDLE_EOF as end of data; ERROR_NO_DATA_DETECTED fails the restore.
    pub no_data_detected_is_error: bool,
    /// Does not check the completion codes of VDC_Flush and VDC_Complete.
    pub ignore_flush_errors: bool,
    /// Treats VD_E_ABORT (and ERROR_OPERATION_ABORTED) like a timeout: waits and retries.
    pub ignore_abort: bool,
    /// Sends the last chunk with its exact length, not padded to a BLOCKSIZE multiple.
    pub unaligned_tail: bool,
    /// Sends Writes of twice maxTransferSize.
    pub oversize_writes: bool,
    /// Answers VDF_ReadMedia for a backup.
    pub wrong_media: bool,
    /// Answers VDF_CompleteEnabled but never sends VDC_Complete.
    pub never_sends_complete: bool,
    /// Sends VDC_Complete although the client did not ask for it.
    pub complete_unrequested: bool,
    /// Reports a restore that ended early as a success.
    pub accepts_truncated: bool,
    /// Never calls Close on the set.
    pub never_closes: bool,
}

/// The built-in server (every switch off).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinServer;

impl ServerUnderTest for BuiltinServer {
    fn name(&self) -> String {
        "builtin-server".into()
    }

    fn start(&self, job: &ServerJob) -> Result<Box<dyn RunningJob>, String> {
        let job = job.clone();
        Ok(spawn_thread_job(move |cancel| {
            run(&job, ServerKnobs::default(), &cancel)
        }))
    }
}

/// The knob-driven server as an implementation under test.
#[derive(Debug, Clone)]
pub struct KnobServer {
    pub name: String,
    pub knobs: ServerKnobs,
}

impl ServerUnderTest for KnobServer {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start(&self, job: &ServerJob) -> Result<Box<dyn RunningJob>, String> {
        let job = job.clone();
        let knobs = self.knobs;
        Ok(spawn_thread_job(move |cancel| run(&job, knobs, &cancel)))
    }
}

struct Job<'a> {
    job: &'a ServerJob,
    k: ServerKnobs,
    cancel: &'a Cancel,
    set: ServerVirtualDeviceSet,
    pool: Mutex<Vec<ServerBuffer>>,
    freed: Condvar,
    transfer: u32,
    /// serverTimeOut from the request (for the mutants' own timers).
    server_timeout: Option<Duration>,
    send_complete: bool,
    started: Instant,
    /// Failures seen by any device thread; the first one aborts the set.
    failure: Mutex<Option<String>>,
}

fn run(job: &ServerJob, k: ServerKnobs, cancel: &Cancel) -> JobExit {
    if k.ignore_server_timeout {
        // The bug, emulated: the serverTimeOut rule lives in vdisim::server, so the field is
        // cleared before Open, which is what a server that never reads it amounts to.
        if let Some(h) = hostile::header(&job.set) {
            h.header().request[6].store(0, Ordering::Release);
        }
    }
    let set = loop {
        match vdisim::pump::open_when_created(&job.set, Duration::from_secs(10)) {
            Ok(s) => break s,
            Err(VdError::Abort) if k.ignore_abort => {
                if stuck(cancel) {
                    return JobExit::Failure("killed".into());
                }
            }
            Err(e) => return JobExit::Failure(format!("Open returned {}", e.name())),
        }
    };
    let fail_now = |set: &ServerVirtualDeviceSet, why: String| {
        if k.ignore_abort && set.abort_info().is_some() {
            // The bug: an aborted set is waited on for ever.
            while !stuck(cancel) {}
            return JobExit::Failure("killed".into());
        }
        let _ = set.signal_abort();
        if !k.never_closes {
            let _ = set.close();
        }
        JobExit::Failure(why)
    };
    let request = match set.get_configuration() {
        Ok(r) => r,
        Err(e) => return fail_now(&set, format!("GetConfiguration returned {}", e.name())),
    };
    if request.deviceCount != job.devices {
        return fail_now(
            &set,
            format!("the set has {} devices, the job {}", request.deviceCount, job.devices),
        );
    }
    let (answer, transfer) = match configure(&set, job, k, &request) {
        Ok(a) => a,
        Err(e) => return fail_now(&set, e),
    };
    let mut devices = Vec::new();
    for i in 0..job.devices {
        match set.open_device(&device_name(&job.set, i)) {
            Ok(d) => devices.push(d),
            Err(e) => return fail_now(&set, format!("OpenDevice returned {}", e.name())),
        }
    }
    let mut pool = Vec::new();
    for _ in 0..job.buffer_count {
        match set.allocate_buffer(transfer, 0) {
            Ok(b) => pool.push(b),
            Err(e) => return fail_now(&set, format!("AllocateBuffer returned {}", e.name())),
        }
    }
    let j = Job {
        job,
        k,
        cancel,
        set: set.clone(),
        pool: Mutex::new(pool),
        freed: Condvar::new(),
        transfer,
        server_timeout: (request.serverTimeOut != 0).then(|| Duration::from_millis(u64::from(request.serverTimeOut))),
        send_complete: (answer.features & features::VDF_COMPLETE_ENABLED != 0 && !k.never_sends_complete)
            || k.complete_unrequested,
        started: Instant::now(),
        failure: Mutex::new(None),
    };
    if k.sequential_devices {
        for (i, dev) in devices.iter().enumerate() {
            j.device(i, dev);
            if j.failed().is_some() {
                break;
            }
        }
    } else {
        std::thread::scope(|s| {
            for (i, dev) in devices.iter().enumerate() {
                let j = &j;
                s.spawn(move || j.device(i, dev));
            }
        });
    }
    let failure = j.failed();
    if failure.is_some() {
        let _ = set.signal_abort();
    }
    if !k.never_closes {
        let _ = set.close();
    }
    match failure {
        Some(why) => JobExit::Failure(why),
        None => JobExit::Success,
    }
}

/// The ignore-abort bug's idea of handling VD_E_ABORT: wait a little and try again. True
/// once the harness killed the job.
fn stuck(cancel: &Cancel) -> bool {
    std::thread::sleep(Duration::from_millis(50));
    cancel.is_cancelled()
}

fn configure(
    set: &ServerVirtualDeviceSet,
    job: &ServerJob,
    k: ServerKnobs,
    request: &VDConfig,
) -> Result<(VDConfig, u32), String> {
    let mut feats = match (job.mode, k.wrong_media) {
        (Mode::Backup, false) | (Mode::Restore, true) => features::VDF_WRITE_MEDIA,
        (Mode::Backup, true) | (Mode::Restore, false) => features::VDF_READ_MEDIA,
    };
    // CompleteEnabled answers the client's RequestComplete on a backup (§2.2, §3.4).
    if job.mode == Mode::Backup && request.features & features::VDF_REQUEST_COMPLETE != 0 {
        feats |= features::VDF_COMPLETE_ENABLED;
    }
    set.begin_configuration(ConfigParams {
        features: feats,
        alignment: 0,
        block_size: job.block_size,
        max_transfer_size: job.max_transfer,
        timeout_ms: 10_000,
    })
    .map_err(|e| format!("BeginConfiguration returned {}", e.name()))?;
    let transfer = if k.oversize_writes {
        job.max_transfer * 2
    } else {
        job.max_transfer
    };
    set.request_buffers(transfer, 0, job.buffer_count)
        .map_err(|e| format!("RequestBuffers returned {}", e.name()))?;
    let answer = set
        .end_configuration()
        .map_err(|e| format!("EndConfiguration returned {}", e.name()))?;
    Ok((answer, transfer))
}

/// Rounds up to a multiple of `block`.
fn padded(n: u64, block: u32) -> u64 {
    n.next_multiple_of(u64::from(block.max(1)))
}

impl Job<'_> {
    fn pool(&self) -> MutexGuard<'_, Vec<ServerBuffer>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(why);
            drop(f);
            // One device failed: the whole operation is over (as SQL Server does).
            let _ = self.set.signal_abort();
        }
    }

    /// A buffer from the shared pool, waiting up to 50 ms.
    fn take_buffer(&self) -> Option<ServerBuffer> {
        let mut pool = self.pool();
        if pool.is_empty() {
            pool = self
                .freed
                .wait_timeout(pool, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        pool.pop()
    }

    fn give_back(&self, b: ServerBuffer) {
        self.pool().push(b);
        self.freed.notify_all();
    }

    fn stop(&self) -> bool {
        self.cancel.is_cancelled() || self.failed().is_some()
    }

    /// The mutants' own serverTimeOut timers.
    fn own_timer_fires(&self, last_progress: Instant, outstanding: bool) -> bool {
        let Some(t) = self.server_timeout else { return false };
        if self.k.timeout_one_interval && outstanding && last_progress.elapsed() >= t {
            return true;
        }
        self.k.timeout_total && outstanding && self.started.elapsed() >= 2 * t
    }

    /// Waits for one completion. `Ok(None)` on timeout; `Err` when the job must stop.
    fn completion(
        &self,
        dev: &ServerVirtualDevice,
        last_progress: &mut Instant,
    ) -> Result<Option<vdisim::server::ServerCompletion>, String> {
        match dev.get_completion(50) {
            Ok(c) => {
                *last_progress = Instant::now();
                Ok(Some(c))
            }
            Err(VdError::Timeout) => {
                if self.own_timer_fires(*last_progress, dev.outstanding() > 0) {
                    let _ = self.set.signal_abort();
                    return Err("serverTimeOut expired".into());
                }
                Ok(None)
            }
            Err(VdError::Abort) if self.k.ignore_abort => {
                std::thread::sleep(Duration::from_millis(50));
                Ok(None)
            }
            Err(e) => Err(format!("waiting for completions returned {}", e.name())),
        }
    }

    /// Sends a buffer-less command and waits for its completion code.
    fn simple(&self, dev: &ServerVirtualDevice, code: CommandCode) -> Result<u32, String> {
        loop {
            match dev.send_command(ServerCommand {
                code: code.code(),
                size: 0,
                position: 0,
                buffer: None,
            }) {
                Ok(_) => break,
                Err(r) if self.k.ignore_abort && r.error == VdError::Abort => {
                    if stuck(self.cancel) {
                        return Err("killed".into());
                    }
                }
                Err(r) => return Err(format!("SendCommand({}) returned {}", code.name(), r.error.name())),
            }
        }
        let mut progress = Instant::now();
        loop {
            if self.cancel.is_cancelled() {
                return Err("killed".into());
            }
            if let Some(c) = self.completion(dev, &mut progress)? {
                let code = c.completion.completion_code;
                if self.k.ignore_abort && code == completion::ERROR_OPERATION_ABORTED {
                    continue;
                }
                return Ok(code);
            }
        }
    }

    fn device(&self, i: usize, dev: &ServerVirtualDevice) {
        let r = match self.job.mode {
            Mode::Backup => self.backup(i, dev),
            Mode::Restore => self.restore(i, dev),
        };
        if let Err(e) = r {
            self.fail(format!("device {i}: {e}"));
        }
    }

    fn backup(&self, i: usize, dev: &ServerVirtualDevice) -> Result<(), String> {
        let total = self.job.bytes_per_device;
        let data = pattern::stream(self.job.data_seed, i as u32, total as usize);
        let mut offset = 0u64;
        let mut flight: VecDeque<u32> = VecDeque::new();
        let mut progress = Instant::now();
        while offset < total || !flight.is_empty() {
            if self.stop() {
                return Err(self.failed().unwrap_or_else(|| "killed".into()));
            }
            if offset < total && flight.len() < 2 {
                if let Some(mut buf) = self.take_buffer() {
                    let n = (total - offset).min(u64::from(self.transfer)) as usize;
                    let send = if self.k.unaligned_tail {
                        n
                    } else {
                        padded(n as u64, self.job.block_size) as usize
                    };
                    let at = offset as usize;
                    let slice = buf.as_mut_slice();
                    slice[..n].copy_from_slice(&data[at..at + n]);
                    slice[n..send].fill(0);
                    let sent = dev.send_command(ServerCommand {
                        code: CommandCode::Write.code(),
                        size: send as u32,
                        position: offset,
                        buffer: Some(buf),
                    });
                    match sent {
                        Ok(_) => {
                            flight.push_back(send as u32);
                            offset += n as u64;
                        }
                        Err(r) => {
                            if let Some(b) = r.command.buffer {
                                self.give_back(b);
                            }
                            if self.k.ignore_abort && r.error == VdError::Abort {
                                std::thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                            return Err(format!("SendCommand(VDC_Write) returned {}", r.error.name()));
                        }
                    }
                    continue;
                }
            }
            if flight.is_empty() {
                continue;
            }
            if let Some(c) = self.completion(dev, &mut progress)? {
                let size = flight.pop_front().unwrap_or(0);
                if let Some(b) = c.buffer {
                    self.give_back(b);
                }
                let code = c.completion.completion_code;
                let ok = code == completion::ERROR_SUCCESS && c.completion.bytes_transferred == size;
                if self.k.ignore_abort && code == completion::ERROR_OPERATION_ABORTED {
                    continue;
                }
                if !ok {
                    return Err(format!(
                        "VDC_Write completed with {} ({} of {size} bytes)",
                        crate::harness::code_name(code),
                        c.completion.bytes_transferred
                    ));
                }
            }
        }
        if !self.k.no_flush {
            let code = self.simple(dev, CommandCode::Flush)?;
            if code != completion::ERROR_SUCCESS && !self.k.ignore_flush_errors {
                return Err(format!("VDC_Flush completed with {}", crate::harness::code_name(code)));
            }
        }
        if self.send_complete {
            let code = self.simple(dev, CommandCode::Complete)?;
            if code != completion::ERROR_SUCCESS && !self.k.ignore_flush_errors {
                return Err(format!(
                    "VDC_Complete completed with {}",
                    crate::harness::code_name(code)
                ));
            }
        }
        self.close_device(dev)
    }

    fn close_device(&self, dev: &ServerVirtualDevice) -> Result<(), String> {
        if self.k.close_without_close_device {
            return Ok(());
        }
        loop {
            match dev.close_device() {
                Err(VdError::Abort) if self.k.ignore_abort => {
                    if stuck(self.cancel) {
                        return Err("killed".into());
                    }
                }
                r => return r.map_err(|e| format!("CloseDevice returned {}", e.name())),
            }
        }
    }

    fn restore(&self, i: usize, dev: &ServerVirtualDevice) -> Result<(), String> {
        let total = self.job.bytes_per_device;
        let want = pattern::stream(self.job.data_seed, i as u32, total as usize);
        let mut next = 0u64;
        let mut eof = false;
        // (position, id) of Reads in flight, and what came back: (position, bytes).
        let mut flight: VecDeque<(u64, u32)> = VecDeque::new();
        let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut end_at: Option<u64> = None;
        let mut progress = Instant::now();
        while !eof || !flight.is_empty() {
            if self.stop() {
                return Err(self.failed().unwrap_or_else(|| "killed".into()));
            }
            if !eof && flight.len() < 2 {
                if let Some(buf) = self.take_buffer() {
                    let size = self.job.max_transfer;
                    let sent = dev.send_command(ServerCommand {
                        code: CommandCode::Read.code(),
                        size,
                        position: next,
                        buffer: Some(buf),
                    });
                    match sent {
                        Ok(_) => {
                            flight.push_back((next, size));
                            next += u64::from(size);
                        }
                        Err(r) => {
                            if let Some(b) = r.command.buffer {
                                self.give_back(b);
                            }
                            if self.k.ignore_abort && r.error == VdError::Abort {
                                std::thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                            return Err(format!("SendCommand(VDC_Read) returned {}", r.error.name()));
                        }
                    }
                    continue;
                }
            }
            if flight.is_empty() {
                continue;
            }
            let Some(c) = self.completion(dev, &mut progress)? else {
                continue;
            };
            let (position, size) = flight.pop_front().unwrap_or((0, 0));
            let code = c.completion.completion_code;
            let n = c.completion.bytes_transferred;
            if let Some(b) = c.buffer {
                if code == completion::ERROR_SUCCESS || completion::is_end_of_data(code) {
                    got.push((position, b.as_slice()[..(n as usize).min(b.len())].to_vec()));
                }
                self.give_back(b);
            }
            if self.k.ignore_abort && code == completion::ERROR_OPERATION_ABORTED {
                continue;
            }
            let end_of_data = if self.k.no_data_detected_is_error {
                code == completion::ERROR_HANDLE_EOF
            } else {
                completion::is_end_of_data(code)
            };
            if code == completion::ERROR_SUCCESS && n == size {
            } else if end_of_data {
                eof = true;
                end_at = Some(end_at.map_or(position, |e: u64| e.min(position)) + u64::from(n));
            } else if code == completion::ERROR_IO_DEVICE && eof {
                // Queued behind the end of data, failed by the IO-ERROR rule (§3.5).
            } else {
                return Err(format!(
                    "VDC_Read completed with {} ({n} of {size} bytes)",
                    crate::harness::code_name(code)
                ));
            }
        }
        got.sort_by_key(|(p, _)| *p);
        let mut stream = Vec::new();
        for (_, bytes) in got {
            stream.extend_from_slice(&bytes);
        }
        if let Some(end) = end_at {
            stream.truncate(end as usize);
        }
        let expected_len = padded(total, self.job.block_size) as usize;
        let prefix_ok =
            stream.len() >= want.len().min(stream.len()) && want.starts_with(&stream[..stream.len().min(want.len())]);
        let full = stream.len() >= want.len() && stream[..want.len()] == want[..];
        let padding_ok =
            stream.len() <= expected_len && stream.get(want.len()..).map_or(true, |t| t.iter().all(|b| *b == 0));
        if !(full && padding_ok) {
            let truncated_only = stream.len() < want.len() && prefix_ok;
            if !(truncated_only && self.k.accepts_truncated) {
                return Err(
                    match pattern::first_difference(&want, &stream[..stream.len().min(expected_len)]) {
                        Some(at) if at == stream.len() => {
                            format!("the restore ended after {at} of {} bytes", want.len())
                        }
                        Some(at) => format!("restored data differs at byte {at}"),
                        None => "restored data has trailing garbage".into(),
                    },
                );
            }
        }
        self.close_device(dev)
    }
}
