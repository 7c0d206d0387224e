//! The harness plays SQL Server (through `vdisim::server`) against a client under test.
//!
//! A [`Session`] is one run of the client on one job: wait for the set, configure it, open
//! the devices, run a list of [`Op`]s, close the devices, and watch how the client ends.
//! Ops are issued in one global order by one thread per device (as SQL Server does), from a
//! buffer pool shared by all devices (BUFFERCOUNT, SPEC §2.6): a client that services its
//! devices one after another then stalls the whole stream, which the stall deadline turns
//! into a Hang verdict instead of a stuck run.

use super::{abort_seen, cmd_name, code_name, hostile, pattern, Cx};
use crate::case::{CmdObs, Observation};
use crate::model::Integrity;
use crate::plugin::{ClientJob, JobExit, Mode, RunningJob};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vdisim::protocol::server::ConfigParams;
use vdisim::reference_client::device_name;
use vdisim::server::{ServerBuffer, ServerCommand, ServerVirtualDevice, ServerVirtualDeviceSet};
use vdisim::vdi::{completion, features, CommandCode, VdError};

/// How the harness configures the set (the BACKUP/RESTORE statement's WITH options).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub devices: u32,
    pub block_size: u32,
    pub max_transfer: u32,
    pub buffer_count: u32,
    pub request_complete: bool,
}

impl Params {
    pub(crate) fn new(devices: u32) -> Params {
        Params {
            devices,
            block_size: 512,
            max_transfer: 65536,
            buffer_count: (2 * devices).max(2),
            request_complete: false,
        }
    }
}

/// The op code of an in-stream CloseDevice (not a VDI command code).
pub(crate) const CLOSE_DEVICE: u32 = 0xFFFF_0001;

/// A harness action right after an op is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    Nothing,
    /// SignalAbort as the server.
    Abort,
    /// The server process "dies": its liveness token names no process; it does nothing more.
    ServerDies,
    /// Garbage in device 0's command ring.
    Garbage(hostile::Garbage),
}

/// One command the harness issues.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub device: usize,
    pub code: u32,
    pub size: u32,
    /// Pause this long before issuing (the stall clock restarts afterwards).
    pub pause_ms: u64,
    /// Wait for this command's completion before issuing the next op.
    pub wait: bool,
    /// An error completion is expected (the stream goes on).
    pub expect_error: bool,
    /// What the harness does right after issuing this op (after its completion if `wait`);
    /// the stream then ends.
    pub after: After,
    /// Reads: the bytes it should return and whether it reaches the end of the data.
    pub expect_bytes: u32,
    pub last: bool,
}

impl Op {
    pub(crate) fn cmd(device: usize, code: CommandCode) -> Op {
        Op::raw(device, code.code(), 0)
    }

    pub(crate) fn raw(device: usize, code: u32, size: u32) -> Op {
        Op {
            device,
            code,
            size,
            pause_ms: 0,
            wait: false,
            expect_error: false,
            after: After::Nothing,
            expect_bytes: 0,
            last: false,
        }
    }

    pub(crate) fn write(device: usize, size: u32) -> Op {
        Op::raw(device, CommandCode::Write.code(), size)
    }

    pub(crate) fn waited(mut self) -> Op {
        self.wait = true;
        self
    }

    pub(crate) fn paused(mut self, ms: u64) -> Op {
        self.pause_ms = ms;
        self
    }

    pub(crate) fn then(mut self, after: After) -> Op {
        self.after = after;
        self
    }

    /// CloseDevice on `device`, in the stream's order.
    pub(crate) fn close(device: usize) -> Op {
        Op::raw(device, CLOSE_DEVICE, 0)
    }

    fn has_buffer(&self) -> bool {
        self.code == CommandCode::Write.code() || self.code == CommandCode::Read.code()
    }
}

/// Writes dealt round robin: round `k` gives every device a Write of `sizes[k]`.
pub(crate) fn round_robin_writes(devices: u32, sizes: &[u32]) -> Vec<Op> {
    let mut ops = Vec::new();
    for &size in sizes {
        for d in 0..devices as usize {
            ops.push(Op::write(d, size));
        }
    }
    ops
}

/// A Flush on every device, each waited for (the end of a backup, SPEC §3.4).
pub(crate) fn flush_all(devices: u32) -> Vec<Op> {
    (0..devices as usize)
        .map(|d| Op::cmd(d, CommandCode::Flush).waited())
        .collect()
}

/// Reads dealt round robin over the expected streams, cycling through `sizes`, until each
/// device's data is covered; the Read that reaches the end expects the remainder (0 bytes if
/// the data ends exactly on a Read boundary) with an end-of-data code.
pub(crate) fn round_robin_reads(streams: &[Vec<u8>], sizes: &[u32]) -> Vec<Op> {
    let n = streams.len();
    let mut offset = vec![0u64; n];
    let mut done = vec![false; n];
    let mut ops = Vec::new();
    let mut k = 0usize;
    while done.iter().any(|d| !d) {
        for d in 0..n {
            if done[d] {
                continue;
            }
            let size = sizes[k % sizes.len()];
            let left = streams[d].len() as u64 - offset[d];
            let mut op = Op::raw(d, CommandCode::Read.code(), size);
            if left < u64::from(size) {
                op.expect_bytes = left as u32;
                op.last = true;
                done[d] = true;
            } else {
                op.expect_bytes = size;
                offset[d] += u64::from(size);
            }
            ops.push(op);
        }
        k += 1;
    }
    ops
}

/// The streams a list of Write ops sends, per device (deterministic data under `seed`).
pub(crate) fn streams_for(ops: &[Op], devices: u32, seed: u64) -> Vec<Vec<u8>> {
    (0..devices)
        .map(|d| {
            let len: u64 = ops
                .iter()
                .filter(|o| o.device == d as usize && o.code == CommandCode::Write.code())
                .map(|o| u64::from(o.size))
                .sum();
            pattern::stream(seed, d, len as usize)
        })
        .collect()
}

/// One run of the client under test, with the harness as SQL Server.
pub(crate) struct Session<'c, 'a> {
    cx: &'c Cx<'a>,
    pub job: ClientJob,
    handle: Option<Box<dyn RunningJob>>,
    pub server: Option<ServerVirtualDeviceSet>,
    pub devices: Vec<ServerVirtualDevice>,
    pub obs: Observation,
    /// What the client is doing when the harness waits for it to end (for Hang steps).
    pub phase: String,
    /// Whether the scenario can go on (false after a hang, an early exit, a failure).
    pub ok: bool,
    /// Per device: the bytes the restore gave back (in issue order).
    pub read_back: Vec<Vec<u8>>,
    /// Per device: whether the harness closed it.
    closed: Vec<bool>,
}

impl<'c, 'a> Session<'c, 'a> {
    /// Starts the client on a fresh set name.
    pub(crate) fn start(cx: &'c Cx<'a>, mode: Mode, p: &Params, store_tag: &str, obs: Observation) -> Self {
        let job = ClientJob {
            mode,
            set: cx.new_set_name(),
            devices: p.devices,
            store: cx.store(store_tag),
            request_complete: p.request_complete,
            config_timeout_ms: cx.timing.create_wait.as_millis().min(u128::from(u32::MAX)) as u32,
            command_timeout_ms: cx.timing.client_timeout_ms,
        };
        let mut s = Session {
            cx,
            job,
            handle: None,
            server: None,
            devices: Vec::new(),
            obs,
            phase: "starting".into(),
            ok: true,
            read_back: Vec::new(),
            closed: Vec::new(),
        };
        s.obs.job_devices = p.devices;
        s.obs.job_request_complete = p.request_complete;
        let Some(client) = cx.client else {
            s.obs.harness_error = Some("no client under test".into());
            s.ok = false;
            return s;
        };
        let args = format!(
            "{} --set {} --devices {}{}",
            match mode {
                Mode::Backup => "backup",
                Mode::Restore => "restore",
            },
            s.job.set,
            s.job.devices,
            if s.job.request_complete {
                " --request-complete"
            } else {
                ""
            }
        );
        match client.start(&s.job) {
            Ok(h) => {
                cx.log("harness", format!("start client: {args}"), "started");
                s.handle = Some(h);
            }
            Err(e) => {
                cx.log("harness", format!("start client: {args}"), e.clone());
                s.obs.harness_error = Some(format!("could not start the client: {e}"));
                s.ok = false;
            }
        }
        s
    }

    /// Checks, without waiting, whether the client ended; records it and stops the scenario.
    fn poll_exit(&mut self) -> bool {
        let Some(h) = self.handle.as_mut() else { return true };
        match h.wait(Instant::now()) {
            Some(exit) => {
                self.cx.log("client", "exit", exit.describe());
                if let JobExit::Unsupported(why) = &exit {
                    self.obs.unsupported = Some(why.clone());
                }
                self.record_exit(Some(exit));
                true
            }
            None => false,
        }
    }

    fn record_exit(&mut self, exit: Option<JobExit>) {
        self.handle = None;
        self.obs.exit = exit.clone();
        self.obs.exits.push(exit);
    }

    fn problem(&mut self, p: String) {
        self.cx.log("harness", "problem", p.clone());
        self.obs.problems.push(p);
        self.ok = false;
    }

    /// Waits for the client to create the set and opens it (server Open + GetConfiguration).
    pub(crate) fn open(&mut self) -> bool {
        if !self.ok {
            return false;
        }
        self.phase = "while the harness waited for the set".into();
        let deadline = Instant::now() + self.cx.timing.create_wait;
        loop {
            match ServerVirtualDeviceSet::open(None, &self.job.set) {
                Ok(set) => {
                    self.cx.log("server", format!("Open({})", self.job.set), "NOERROR");
                    let request = set.get_configuration();
                    self.cx
                        .log("server", "GetConfiguration", vdisim::vdi::result_name(&request));
                    match request {
                        Ok(r) => {
                            self.cx.log(
                                "server",
                                "client request",
                                format!(
                                    "deviceCount={} features=0x{:x} serverTimeOut={}",
                                    r.deviceCount, r.features, r.serverTimeOut
                                ),
                            );
                            self.obs.request = Some(r);
                        }
                        Err(e) => self.problem(format!("GetConfiguration on the new set returned {}", e.name())),
                    }
                    self.server = Some(set);
                    return self.ok;
                }
                Err(VdError::Invalid) => {}
                Err(e) => {
                    self.cx.log("server", format!("Open({})", self.job.set), e.name());
                    if e == VdError::Abort {
                        self.problem("the client aborted the set before the server opened it".into());
                    } else {
                        self.problem(format!("Open of the client's set returned {}", e.name()));
                    }
                    return false;
                }
            }
            if self.poll_exit() {
                self.ok = false;
                if self.obs.unsupported.is_none() {
                    let exit = self.obs.exit.as_ref().map_or("?".into(), |e| e.describe());
                    self.obs
                        .problems
                        .push(format!("the client ended ({exit}) before creating the set"));
                }
                return false;
            }
            if Instant::now() >= deadline {
                self.obs.hang = Some("waiting for the client to create the set (CreateEx)".into());
                self.ok = false;
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// BeginConfiguration, RequestBuffers, EndConfiguration: the media flag follows the job's
    /// mode (SPEC §2.2) and CompleteEnabled answers RequestComplete on a backup.
    pub(crate) fn configure(&mut self, p: &Params) -> bool {
        if !self.ok {
            return false;
        }
        let Some(set) = self.server.clone() else { return false };
        let request = self.obs.request.unwrap_or_default();
        let mut feats = match self.job.mode {
            Mode::Backup => features::VDF_WRITE_MEDIA,
            Mode::Restore => features::VDF_READ_MEDIA,
        };
        if self.job.mode == Mode::Backup && request.features & features::VDF_REQUEST_COMPLETE != 0 {
            feats |= features::VDF_COMPLETE_ENABLED;
        }
        let params = ConfigParams {
            features: feats,
            alignment: 0,
            block_size: p.block_size,
            max_transfer_size: p.max_transfer,
            timeout_ms: 10_000,
        };
        let r = set.begin_configuration(params);
        self.cx.log(
            "server",
            format!(
                "BeginConfiguration(features=0x{feats:x}, blockSize={}, maxTransferSize={})",
                p.block_size, p.max_transfer
            ),
            vdisim::vdi::result_name(&r),
        );
        if let Err(e) = r {
            self.problem(format!("BeginConfiguration returned {}", e.name()));
            return false;
        }
        let r = set.request_buffers(p.max_transfer, 0, p.buffer_count);
        self.cx.log(
            "server",
            format!("RequestBuffers({}, 0, {})", p.max_transfer, p.buffer_count),
            vdisim::vdi::result_name(&r),
        );
        if let Err(e) = r {
            self.problem(format!("RequestBuffers returned {}", e.name()));
            return false;
        }
        let r = set.end_configuration();
        self.cx.log("server", "EndConfiguration", vdisim::vdi::result_name(&r));
        match r {
            Ok(answer) => {
                self.obs.answer = Some(answer);
                true
            }
            Err(e) => {
                self.problem(format!("EndConfiguration returned {}", e.name()));
                false
            }
        }
    }

    /// Opens the devices under the given names (the first must be the set's name, §3.3).
    pub(crate) fn open_devices_named(&mut self, names: &[String]) -> bool {
        if !self.ok {
            return false;
        }
        let Some(set) = self.server.clone() else { return false };
        for name in names {
            let r = set.open_device(name);
            self.cx
                .log("server", format!("OpenDevice({name})"), vdisim::vdi::result_name(&r));
            match r {
                Ok(d) => {
                    self.devices.push(d);
                    self.closed.push(false);
                }
                Err(e) => {
                    self.problem(format!("OpenDevice({name}) returned {}", e.name()));
                    return false;
                }
            }
        }
        self.read_back = vec![Vec::new(); names.len()];
        true
    }

    /// Opens the devices under the contract's names.
    pub(crate) fn open_devices(&mut self) -> bool {
        let names: Vec<String> = (0..self.job.devices).map(|i| device_name(&self.job.set, i)).collect();
        self.open_devices_named(&names)
    }

    /// Open + configure + open devices.
    pub(crate) fn setup(&mut self, p: &Params) -> bool {
        self.open() && self.configure(p) && self.open_devices()
    }

    /// Waits (up to the stall deadline) for the client to open every device; records the count.
    pub(crate) fn watch_device_opens(&mut self) {
        let Some(h) = hostile::header(&self.job.set) else {
            return;
        };
        let n = self.devices.len();
        let deadline = Instant::now() + self.cx.timing.stall.min(Duration::from_secs(3));
        loop {
            let opened = (0..n).filter(|&i| hostile::client_opened(h.header(), i)).count();
            if opened == n || Instant::now() >= deadline {
                self.cx
                    .log("harness", "devices opened by the client", format!("{opened} of {n}"));
                self.obs.devices_opened = Some((opened as u32, n as u32));
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sleeps, unless the client ends meanwhile.
    pub(crate) fn pause(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until {
            if self.handle.is_some() && self.poll_exit() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SignalAbort as the server.
    pub(crate) fn abort(&mut self) {
        if let Some(set) = &self.server {
            let r = set.signal_abort();
            self.cx.log("server", "SignalAbort", vdisim::vdi::result_name(&r));
        }
        self.phase = "after the server's SignalAbort".into();
    }

    /// Runs the ops. `streams` are the Write data (backup) or the expected data (restore).
    pub(crate) fn run_ops(&mut self, ops: &[Op], streams: &[Vec<u8>], p: &Params) -> bool {
        if !self.ok {
            return false;
        }
        let Some(set) = self.server.clone() else { return false };
        let mut pool = Vec::new();
        for _ in 0..p.buffer_count {
            match set.allocate_buffer(p.max_transfer, 0) {
                Ok(b) => pool.push(b),
                Err(e) => {
                    self.obs.harness_error = Some(format!("AllocateBuffer failed: {}", e.name()));
                    self.ok = false;
                    return false;
                }
            }
        }
        let engine = Engine {
            cx: self.cx,
            set: &set,
            set_name: &self.job.set,
            ops,
            offsets: op_offsets(ops, self.devices.len()),
            streams,
            stall: self.cx.timing.stall,
            st: Mutex::new(EngineState {
                next: 0,
                pool,
                last_progress: Instant::now(),
                stop: false,
                hang: None,
                problems: Vec::new(),
                cmds: Vec::new(),
                data: Vec::new(),
                seq: 0,
                device_done: vec![false; self.devices.len()],
                closed: vec![false; self.devices.len()],
                hooked: None,
            }),
            cv: Condvar::new(),
        };
        self.phase = "while the stream ran".into();
        std::thread::scope(|s| {
            for (d, dev) in self.devices.iter().enumerate() {
                let engine = &engine;
                s.spawn(move || engine.device_worker(d, dev));
            }
        });
        let st = engine.st.into_inner().unwrap_or_else(|p| p.into_inner());
        for (d, c) in st.closed.iter().enumerate() {
            if *c {
                self.closed[d] = true;
            }
        }
        // Reassemble what Reads returned, per device in issue order.
        let mut data: Vec<(u64, usize, Vec<u8>)> = st.data;
        data.sort_by_key(|(seq, _, _)| *seq);
        for (_, d, bytes) in data {
            if let Some(v) = self.read_back.get_mut(d) {
                v.extend_from_slice(&bytes);
            }
        }
        let base = self.obs.commands.len() as u64;
        self.obs.commands.extend(st.cmds.into_iter().map(|mut c| {
            c.seq += base;
            c.done_seq = c.done_seq.map(|x| x + base);
            c
        }));
        if let Some(h) = st.hang {
            self.obs.hang = Some(h);
            self.ok = false;
        }
        for p in st.problems {
            self.obs.problems.push(p);
            self.ok = false;
        }
        if let Some(h) = st.hooked {
            // The case's own event ended the stream: the harness stops playing the server.
            self.phase = match h {
                After::Abort => "after the server's SignalAbort",
                After::ServerDies => "after the server died",
                _ => "after the server wrote garbage into the command ring",
            }
            .into();
            self.ok = false;
            return false;
        }
        if !self.ok {
            // What SQL Server does when a device fails: abort the whole operation.
            self.abort();
        }
        self.ok
    }

    /// CloseDevice on every device: after `delay_ms`, then `stagger_ms` apart, with
    /// `first_gap_ms` more after the first device (the others are then still open).
    pub(crate) fn close_devices(&mut self, delay_ms: u64, stagger_ms: u64, first_gap_ms: u64) -> bool {
        if !self.ok {
            return false;
        }
        if delay_ms > 0 {
            self.pause(delay_ms);
        }
        for d in 0..self.devices.len() {
            if self.closed[d] {
                continue;
            }
            if d > 0 && stagger_ms > 0 {
                self.pause(stagger_ms);
            }
            if d == 1 && first_gap_ms > 0 {
                self.pause(first_gap_ms);
            }
            if !self.close_device(d) {
                return false;
            }
        }
        self.phase = "after VD_E_CLOSE on every device".into();
        true
    }

    /// CloseDevice on one device.
    pub(crate) fn close_device(&mut self, d: usize) -> bool {
        let Some(dev) = self.devices.get(d) else { return false };
        let r = dev.close_device();
        self.cx
            .log("server", format!("CloseDevice(dev={d})"), vdisim::vdi::result_name(&r));
        match r {
            Ok(()) => {
                self.closed[d] = true;
                true
            }
            Err(e) => {
                let why = self
                    .server
                    .as_ref()
                    .and_then(|s| s.abort_info())
                    .map(|(by, reason)| format!(": the set was {}", abort_seen(self.cx.role, by, reason)))
                    .unwrap_or_default();
                self.problem(format!("CloseDevice(dev={d}) returned {}{why}", e.name()));
                false
            }
        }
    }

    /// Compares what the restore gave back with the expected streams.
    pub(crate) fn check_integrity(&mut self, expected: &[Vec<u8>]) {
        for (d, want) in expected.iter().enumerate() {
            let got = self.read_back.get(d).map_or(&[][..], |v| &v[..]);
            if let Some(at) = pattern::first_difference(want, got) {
                let detail = if got.len() != want.len() && at == got.len().min(want.len()) {
                    format!(
                        "device {d}: restored {} bytes, the backup had {}",
                        got.len(),
                        want.len()
                    )
                } else {
                    format!("device {d}: restored data differs from the backup at byte {at}")
                };
                self.cx.log("harness", "data check", detail.clone());
                self.obs.integrity = Integrity::Corrupt;
                self.obs.integrity_detail = Some(detail);
                return;
            }
        }
        self.cx
            .log("harness", "data check", "restored data identical to the backup");
        self.obs.integrity = Integrity::Intact;
    }

    /// Waits for the client to end, kills it at the deadline, records how the set ended,
    /// and closes the server side. Always call this last.
    pub(crate) fn finish(mut self) -> Observation {
        if self.handle.is_some() {
            // Once a step has hung, the verdict is known: a short grace, then the kill.
            let wait = if self.obs.hang.is_some() {
                self.cx.timing.exit_wait.min(Duration::from_secs(1))
            } else {
                self.cx.timing.exit_wait
            };
            let deadline = Instant::now() + wait;
            let exit = self.handle.as_mut().and_then(|h| h.wait(deadline));
            match exit {
                Some(e) => {
                    self.cx.log("client", "exit", e.describe());
                    if let JobExit::Unsupported(why) = &e {
                        self.obs.unsupported = Some(why.clone());
                    }
                    self.record_exit(Some(e));
                }
                None => {
                    let step = format!("waiting for the client to end {}", self.phase);
                    self.cx.log("harness", "deadline", step.clone());
                    if self.obs.hang.is_none() {
                        self.obs.hang = Some(step);
                    }
                    self.kill_client();
                }
            }
        }
        // How the set ended, before the server's Close changes anything.
        let abort = match &self.server {
            Some(s) => s.abort_info(),
            None => hostile::header(&self.job.set).and_then(|h| hostile::abort_state(h.header())),
        };
        if let Some((by, reason)) = abort {
            let seen = abort_seen(self.cx.role, by, reason);
            self.cx.log("harness", "set state", format!("{seen}"));
            if self.obs.abort.is_none() {
                self.obs.abort = Some(seen);
            }
        }
        if !self.obs.killed {
            let exists = hostile::segment_exists(&self.job.set);
            if let Some(e) = exists {
                self.cx.log(
                    "harness",
                    "set segment after the client ended",
                    if e { "still there" } else { "removed (Close)" },
                );
                if self.obs.exit.is_some() {
                    let closed = !e;
                    self.obs.set_closed = Some(self.obs.set_closed.unwrap_or(true) && closed);
                }
            }
        }
        if let Some(set) = self.server.take() {
            let outcome = set.close();
            self.cx.log(
                "server",
                "Close",
                format!(
                    "{} ({} outstanding command(s) completed with ERROR_OPERATION_ABORTED)",
                    vdisim::vdi::result_name(&outcome.result),
                    outcome.aborted.len()
                ),
            );
        }
        self.obs
    }

    fn kill_client(&mut self) {
        // Unblock an in-process client first: abort the set, then kill.
        match &self.server {
            Some(s) => {
                let _ = s.signal_abort();
            }
            None => {
                if let Some(h) = hostile::header(&self.job.set) {
                    hostile::force_abort(h.header(), vdisim::shm::layout::abort_by::SERVER);
                }
            }
        }
        if let Some(mut h) = self.handle.take() {
            h.kill();
            let grace = Instant::now() + Duration::from_secs(3);
            let exit = h.wait(grace);
            self.cx.log(
                "harness",
                "kill client",
                exit.as_ref()
                    .map_or("still running (left behind)".to_string(), |e| e.describe()),
            );
        }
        self.obs.killed = true;
        self.obs.exit = None;
        self.obs.exits.push(None);
    }
}

/// Each op's byte offset in its device's stream (Writes only).
fn op_offsets(ops: &[Op], devices: usize) -> Vec<u64> {
    let mut next = vec![0u64; devices.max(1)];
    ops.iter()
        .map(|o| {
            let at = next.get(o.device).copied().unwrap_or(0);
            if o.code == CommandCode::Write.code() {
                if let Some(n) = next.get_mut(o.device) {
                    *n += u64::from(o.size);
                }
            }
            at
        })
        .collect()
}

struct EngineState {
    /// The next op to issue (global order).
    next: usize,
    pool: Vec<ServerBuffer>,
    last_progress: Instant,
    stop: bool,
    hang: Option<String>,
    problems: Vec<String>,
    cmds: Vec<CmdObs>,
    /// (seq, device, bytes) returned by Reads.
    data: Vec<(u64, usize, Vec<u8>)>,
    seq: u64,
    /// A device whose data ended early: its remaining ops are skipped.
    device_done: Vec<bool>,
    /// Devices closed by an in-stream CloseDevice op.
    closed: Vec<bool>,
    /// The hook that ended the stream, if one did.
    hooked: Option<After>,
}

struct Engine<'e, 'a> {
    cx: &'e Cx<'a>,
    set: &'e ServerVirtualDeviceSet,
    set_name: &'e str,
    ops: &'e [Op],
    offsets: Vec<u64>,
    streams: &'e [Vec<u8>],
    stall: Duration,
    st: Mutex<EngineState>,
    cv: Condvar,
}

/// A command in flight on one device: its id, its index in `cmds`, its op.
struct InFlight {
    id: u64,
    cmd: usize,
    op: usize,
}

impl Engine<'_, '_> {
    fn lock(&self) -> MutexGuard<'_, EngineState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stalled(&self, st: &mut EngineState, what: impl FnOnce() -> String) -> bool {
        if st.stop {
            return true;
        }
        if st.last_progress.elapsed() > self.stall {
            let step = what();
            self.cx.log("harness", "deadline", step.clone());
            st.hang = Some(step);
            st.stop = true;
            self.cv.notify_all();
            return true;
        }
        false
    }

    fn device_worker(&self, d: usize, dev: &ServerVirtualDevice) {
        let mine: Vec<usize> = (0..self.ops.len()).filter(|&k| self.ops[k].device == d).collect();
        let mut flight: Vec<InFlight> = Vec::new();
        for k in mine {
            let op = &self.ops[k];
            // Wait for this op's turn and, for data, a free buffer.
            loop {
                {
                    let mut st = self.lock();
                    if st.stop {
                        return;
                    }
                    if st.next == k {
                        if st.device_done[d] {
                            st.next += 1;
                            self.cv.notify_all();
                            break;
                        }
                        if !op.has_buffer() || !st.pool.is_empty() {
                            break;
                        }
                    }
                    let waiting_turn = st.next != k;
                    let buffers = st.pool.len();
                    if self.stalled(&mut st, || {
                        if waiting_turn {
                            format!("device {d}: waiting for the stream to reach it (the client completes nothing)")
                        } else {
                            format!(
                                "device {d}: waiting for a free buffer ({buffers} free): the client completes nothing"
                            )
                        }
                    }) {
                        return;
                    }
                    if flight.is_empty() {
                        let _ = self.cv.wait_timeout(st, Duration::from_millis(20));
                        continue;
                    }
                }
                if !self.collect(d, dev, &mut flight, 20) {
                    return;
                }
            }
            if self.lock().device_done[d] {
                continue;
            }
            if op.pause_ms > 0 {
                let until = Instant::now() + Duration::from_millis(op.pause_ms);
                self.cx
                    .log("harness", format!("pause {} ms (dev={d})", op.pause_ms), "");
                while Instant::now() < until {
                    if self.lock().stop {
                        return;
                    }
                    if flight.is_empty() {
                        std::thread::sleep(Duration::from_millis(10));
                    } else if !self.collect(d, dev, &mut flight, 10) {
                        return;
                    }
                }
                self.lock().last_progress = Instant::now();
            }
            if !self.issue(d, dev, k, &mut flight) {
                return;
            }
            if op.wait {
                while flight.iter().any(|f| f.op == k) {
                    if !self.collect(d, dev, &mut flight, 20) {
                        return;
                    }
                }
            }
            if op.after != After::Nothing {
                self.after(op.after);
                let mut st = self.lock();
                st.hooked = Some(op.after);
                st.stop = true;
                self.cv.notify_all();
                return;
            }
        }
        while !flight.is_empty() {
            if !self.collect(d, dev, &mut flight, 20) {
                return;
            }
        }
    }

    fn after(&self, what: After) {
        match what {
            After::Nothing => {}
            After::Abort => {
                let r = self.set.signal_abort();
                self.cx.log("server", "SignalAbort", vdisim::vdi::result_name(&r));
            }
            After::ServerDies => {
                if let Some(h) = hostile::header(self.set_name) {
                    hostile::kill_server_token(h.header());
                    self.cx
                        .log("harness", "the server dies (liveness token names no process)", "");
                }
            }
            After::Garbage(g) => {
                if let Some(h) = hostile::header(self.set_name) {
                    hostile::garbage_command(h.header(), 0, g);
                    self.cx.log("harness", format!("garbage in command ring 0: {g:?}"), "");
                }
            }
        }
    }

    /// Sends op `k` on device `d`.
    fn issue(&self, d: usize, dev: &ServerVirtualDevice, k: usize, flight: &mut Vec<InFlight>) -> bool {
        let op = &self.ops[k];
        if op.code == CLOSE_DEVICE {
            let r = dev.close_device();
            self.cx
                .log("server", format!("CloseDevice(dev={d})"), vdisim::vdi::result_name(&r));
            let mut st = self.lock();
            st.next += 1;
            st.last_progress = Instant::now();
            self.cv.notify_all();
            return match r {
                Ok(()) => {
                    st.closed[d] = true;
                    true
                }
                Err(VdError::Abort) => {
                    st.stop = true;
                    false
                }
                Err(e) => {
                    st.problems.push(format!("CloseDevice(dev={d}) returned {}", e.name()));
                    st.stop = true;
                    false
                }
            };
        }
        let mut buffer = if op.has_buffer() { self.lock().pool.pop() } else { None };
        if op.code == CommandCode::Write.code() {
            if let Some(b) = buffer.as_mut() {
                let at = self.offsets[k] as usize;
                let n = op.size as usize;
                if let Some(src) = self.streams.get(d).and_then(|s| s.get(at..at + n)) {
                    b.as_mut_slice()[..n].copy_from_slice(src);
                }
            }
        }
        let position = if op.code == CommandCode::Write.code() {
            self.offsets[k]
        } else {
            0
        };
        let sent = dev.send_command(ServerCommand {
            code: op.code,
            size: op.size,
            position,
            buffer,
        });
        let mut st = self.lock();
        match sent {
            Ok(id) => {
                self.cx.log(
                    "server",
                    format!("SendCommand(dev={d}, {}, {})", cmd_name(op.code), op.size),
                    format!("NOERROR id={id}"),
                );
                st.seq += 1;
                let seq = st.seq;
                st.cmds.push(CmdObs {
                    device: d,
                    id,
                    code: op.code,
                    size: op.size,
                    position,
                    seq,
                    expect_bytes: (op.code == CommandCode::Read.code()).then_some(op.expect_bytes),
                    last: op.last,
                    ..CmdObs::default()
                });
                flight.push(InFlight {
                    id,
                    cmd: st.cmds.len() - 1,
                    op: k,
                });
                st.next += 1;
                st.last_progress = Instant::now();
                self.cv.notify_all();
                true
            }
            Err(rejected) => {
                self.cx.log(
                    "server",
                    format!("SendCommand(dev={d}, {}, {})", cmd_name(op.code), op.size),
                    rejected.error.name(),
                );
                if let Some(b) = rejected.command.buffer {
                    st.pool.push(b);
                }
                if rejected.error != VdError::Abort {
                    st.problems.push(format!(
                        "device {d}: SendCommand({}) was refused with {}",
                        cmd_name(op.code),
                        rejected.error.name()
                    ));
                }
                st.stop = true;
                self.cv.notify_all();
                false
            }
        }
    }

    /// Waits up to `ms` for one completion on device `d`. False when the stream must stop.
    fn collect(&self, d: usize, dev: &ServerVirtualDevice, flight: &mut Vec<InFlight>, ms: u32) -> bool {
        match dev.get_completion(ms) {
            Ok(c) => {
                let done = c.completion;
                let mut st = self.lock();
                let Some(pos) = flight.iter().position(|f| f.id == done.id) else {
                    st.problems
                        .push(format!("device {d}: a completion for unknown command {}", done.id));
                    st.stop = true;
                    return false;
                };
                let f = flight.remove(pos);
                let op = &self.ops[f.op];
                self.cx.log(
                    "client",
                    format!("completion(dev={d}, {} id={})", cmd_name(op.code), done.id),
                    format!("{} bytes={}", code_name(done.completion_code), done.bytes_transferred),
                );
                st.seq += 1;
                let seq = st.seq;
                if let Some(cmd) = st.cmds.get_mut(f.cmd) {
                    cmd.completion = Some(done.completion_code);
                    cmd.bytes = done.bytes_transferred;
                    cmd.done_seq = Some(seq);
                }
                let code = done.completion_code;
                if op.code == CommandCode::Read.code() {
                    if let Some(b) = &c.buffer {
                        let n = (done.bytes_transferred as usize).min(b.len());
                        let cmd_seq = st.cmds.get(f.cmd).map_or(0, |c| c.seq);
                        st.data.push((cmd_seq, d, b.as_slice()[..n].to_vec()));
                    }
                }
                if let Some(b) = c.buffer {
                    st.pool.push(b);
                }
                st.last_progress = Instant::now();
                self.cv.notify_all();
                let aborted = code == completion::ERROR_OPERATION_ABORTED;
                if code != completion::ERROR_SUCCESS && !aborted {
                    let is_read = op.code == CommandCode::Read.code();
                    if is_read && completion::is_end_of_data(code) {
                        // The end of this device's data: the rest of its Reads are skipped.
                        st.device_done[d] = true;
                    } else if is_read && code == completion::ERROR_IO_DEVICE && st.device_done[d] {
                        // A Read queued behind the end of data, failed by the IO-ERROR rule (§3.5).
                    } else if !op.expect_error {
                        st.problems.push(format!(
                            "device {d}: {} completed with {}",
                            cmd_name(op.code),
                            code_name(code)
                        ));
                        st.stop = true;
                        return false;
                    }
                }
                true
            }
            Err(VdError::Timeout) => {
                let mut st = self.lock();
                let pending = flight
                    .first()
                    .map(|f| cmd_name(self.ops[f.op].code))
                    .unwrap_or_default();
                !self.stalled(&mut st, || {
                    format!("device {d}: waiting for the client to complete {pending} (it completes nothing)")
                })
            }
            Err(VdError::Abort) => {
                let mut st = self.lock();
                self.cx.log("server", format!("get_completion(dev={d})"), "VD_E_ABORT");
                st.stop = true;
                self.cv.notify_all();
                false
            }
            Err(e) => {
                let mut st = self.lock();
                st.problems
                    .push(format!("device {d}: waiting for completions returned {}", e.name()));
                st.stop = true;
                self.cv.notify_all();
                false
            }
        }
    }
}
