//! The harness plays the backup application (through `vdisim::client`) against a server
//! under test: it creates the set, starts the server's job, configures, opens every device
//! and services each in its own thread, storing Writes and answering Reads, with the faults
//! a case asks for (holds, delays, error completions, aborts, a dying or hostile client).

use super::hostile::{self, Garbage};
use super::{abort_seen, cmd_name, code_name, Cx};
use crate::case::{CmdObs, Observation};
use crate::model::Integrity;
use crate::plugin::{JobExit, Mode, RunningJob, ServerJob};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vdisim::client::{ClientVirtualDevice, ClientVirtualDeviceSet};
use vdisim::reference_client::device_name;
use vdisim::vdi::{completion, features, CommandCode, VDConfig, VdError};

/// When a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Right after CreateEx, before the server is started.
    BeforeServer,
    /// Right after the server is started, while the client is still Configurable.
    WhileConfigurable,
    /// GetConfiguration succeeded; no device open yet (client Initializing).
    AfterConfiguration,
    /// Device 0 receives its `n`th data command (0-based) and holds it.
    OnData(usize),
    /// Device 0 receives a Flush and holds it.
    OnFlush,
    /// Device 1 holds its first data command until device 0 has ended (VD_E_CLOSE).
    AfterFirstDeviceClosed,
}

/// What the harness does when the trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// SignalAbort as the client.
    SignalAbort,
    /// Close with devices still open (VD_E_OPEN, which aborts the set).
    PrematureClose,
    /// The client process "dies" (its liveness token names no process) and completes nothing.
    Die,
    /// The client writes garbage into its completion ring.
    Garbage(Garbage),
    /// Hold the command this long (watching for the server's abort), then go on.
    Stall(u64),
}

/// How the harness (as client) behaves.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub mode: Mode,
    pub devices: u32,
    /// Extra VDF_* bits to request (RequestComplete, LikeDisk).
    pub features: u32,
    pub server_timeout_ms: u32,
    pub alignment: u32,
    pub bytes_per_device: u64,
    pub block_size: u32,
    pub max_transfer: u32,
    pub buffer_count: u32,
    pub data_seed: u64,
    /// Restore: the code for the Read that reaches the end of data.
    pub eof_code: u32,
    /// Hold every device's first command until all devices got one.
    pub hold_first_until_all: bool,
    /// Complete every command only after this delay.
    pub complete_delay_ms: u64,
    /// Complete device 0's `nth` (0-based) command with code `.0` with completion `.2`.
    pub fail: Option<(u32, usize, u32)>,
    pub event: Option<(Trigger, Action)>,
    /// Delay between GetConfiguration and OpenDevice.
    pub open_delay_ms: u64,
}

impl Plan {
    pub(crate) fn new(mode: Mode, devices: u32) -> Plan {
        Plan {
            mode,
            devices,
            features: 0,
            server_timeout_ms: 0,
            alignment: 0,
            bytes_per_device: 200 * 1024 + 512,
            block_size: 512,
            max_transfer: 65536,
            buffer_count: (2 * devices).max(4),
            data_seed: 7,
            eof_code: completion::ERROR_HANDLE_EOF,
            hold_first_until_all: false,
            complete_delay_ms: 0,
            fail: None,
            event: None,
            open_delay_ms: 0,
        }
    }

    pub(crate) fn with_event(mut self, trigger: Trigger, action: Action) -> Plan {
        self.event = Some((trigger, action));
        self
    }
}

/// How long a device holds its first command waiting for the others (parallel check).
const PARALLEL_WAIT: Duration = Duration::from_secs(3);

struct Shared {
    last_progress: Instant,
    seq: u64,
    cmds: Vec<CmdObs>,
    ends: Vec<Option<String>>,
    written: Vec<Vec<u8>>,
    problems: Vec<String>,
    hang: Option<String>,
    measured_ms: Option<u64>,
    parallel_problem: Option<String>,
    notes: Vec<String>,
}

struct Run<'r, 'a> {
    cx: &'r Cx<'a>,
    plan: &'r Plan,
    set_name: String,
    set: Mutex<ClientVirtualDeviceSet>,
    header: Option<vdisim::shm::HeaderMapping>,
    sh: Mutex<Shared>,
    firsts: AtomicUsize,
    server_ended: AtomicBool,
    /// The client died or wrote garbage: from then on it does nothing at all (its own ring
    /// writes would race with the garbage).
    dead: AtomicBool,
    source: &'r [Vec<u8>],
    random_access: bool,
}

/// Runs one server job with the harness as the client. `source` is the data to give back
/// to Reads (restore). Returns what the Writes stored (backup), per device.
pub(crate) fn run_job(cx: &Cx, plan: &Plan, source: &[Vec<u8>], obs: &mut Observation) -> Vec<Vec<u8>> {
    let devices = plan.devices as usize;
    let Some(server) = cx.server else {
        obs.harness_error = Some("no server under test".into());
        return Vec::new();
    };
    let set_name = cx.new_set_name();
    let mut set = ClientVirtualDeviceSet::new();
    let request = VDConfig {
        deviceCount: plan.devices,
        features: features::VDF_LIKE_PIPE | plan.features,
        alignment: plan.alignment,
        serverTimeOut: plan.server_timeout_ms,
        ..VDConfig::default()
    };
    let r = set.create_ex(None, &set_name, &request);
    cx.log(
        "client",
        format!(
            "CreateEx({set_name}, deviceCount={}, features=0x{:x}, serverTimeOut={})",
            request.deviceCount, request.features, request.serverTimeOut
        ),
        vdisim::vdi::result_name(&r),
    );
    if let Err(e) = r {
        obs.harness_error = Some(format!("CreateEx failed: {}", e.name()));
        return Vec::new();
    }
    obs.request = Some(request);
    let run = Run {
        cx,
        plan,
        set_name: set_name.clone(),
        set: Mutex::new(set),
        header: hostile::header(&set_name),
        sh: Mutex::new(Shared {
            last_progress: Instant::now(),
            seq: 0,
            cmds: Vec::new(),
            ends: vec![None; devices],
            written: vec![Vec::new(); devices],
            problems: Vec::new(),
            hang: None,
            measured_ms: None,
            parallel_problem: None,
            notes: Vec::new(),
        }),
        firsts: AtomicUsize::new(0),
        server_ended: AtomicBool::new(false),
        dead: AtomicBool::new(false),
        source,
        random_access: plan.features & features::VDF_RANDOM_ACCESS != 0,
    };
    let job = ServerJob {
        mode: plan.mode,
        set: set_name.clone(),
        devices: plan.devices,
        bytes_per_device: plan.bytes_per_device,
        data_seed: plan.data_seed,
        block_size: plan.block_size,
        max_transfer: plan.max_transfer,
        buffer_count: plan.buffer_count,
    };
    if plan.event.map(|e| e.0) == Some(Trigger::BeforeServer) {
        run.act(None);
    }
    let mut handle = match server.start(&job) {
        Ok(h) => {
            cx.log(
                "harness",
                format!(
                    "start server: {:?} set={} devices={} bytes/device={}",
                    job.mode, job.set, job.devices, job.bytes_per_device
                ),
                "started",
            );
            h
        }
        Err(e) => {
            obs.harness_error = Some(format!("could not start the server: {e}"));
            let _ = run.lock_set().close();
            return Vec::new();
        }
    };
    if plan.event.map(|e| e.0) == Some(Trigger::WhileConfigurable) {
        // Once the server has opened the set, before the client's GetConfiguration returns.
        let deadline = Instant::now() + cx.timing.create_wait;
        while let Some(h) = &run.header {
            if hostile::server_connected(h.header()) || Instant::now() >= deadline {
                break;
            }
            if handle.wait(Instant::now() + Duration::from_millis(1)).is_some() {
                break;
            }
        }
        run.act(None);
    }
    let mut exit: Option<JobExit> = None;
    let devs = run.configure_and_open(&mut handle, &mut exit, obs);
    if let Some(devs) = devs {
        std::thread::scope(|s| {
            let run = &run;
            for (d, dev) in devs.iter().enumerate() {
                s.spawn(move || run.serve(d, dev));
            }
            // Watch the server job while the devices are serviced.
            if exit.is_none() {
                loop {
                    let all_done = run.sh().ends.iter().all(|e| e.is_some());
                    if all_done {
                        break;
                    }
                    if let Some(e) = handle.wait(Instant::now() + Duration::from_millis(20)) {
                        cx.log("server", "job ended", e.describe());
                        exit = Some(e);
                        run.server_ended.store(true, Ordering::Release);
                        break;
                    }
                }
            } else {
                run.server_ended.store(true, Ordering::Release);
            }
        });
    }
    // The job must end on its own once its devices are done.
    let mut killed = false;
    if exit.is_none() {
        // Once a step has hung, the verdict is known: a short grace, then the kill.
        let wait = if run.sh().hang.is_some() {
            cx.timing.exit_wait.min(Duration::from_secs(1))
        } else {
            cx.timing.exit_wait
        };
        match handle.wait(Instant::now() + wait) {
            Some(e) => {
                cx.log("server", "job ended", e.describe());
                exit = Some(e);
            }
            None => {
                let step = "waiting for the server's job to end".to_string();
                cx.log("harness", "deadline", step.clone());
                let mut sh = run.sh();
                if sh.hang.is_none() {
                    sh.hang = Some(step);
                }
                drop(sh);
                // Unblock an in-process server: abort the set, then kill.
                let _ = run.lock_set().signal_abort();
                handle.kill();
                let late = handle.wait(Instant::now() + Duration::from_secs(3));
                cx.log(
                    "harness",
                    "kill server",
                    late.map_or("still running (left behind)".to_string(), |e| e.describe()),
                );
                killed = true;
            }
        }
    }
    if let Some(JobExit::Unsupported(why)) = &exit {
        obs.unsupported = Some(why.clone());
    }
    obs.killed |= killed;
    obs.exit = if killed { None } else { exit.clone() };
    obs.exits.push(obs.exit.clone());
    // How the set ended.
    if let Some(h) = &run.header {
        if let Some((by, reason)) = hostile::abort_state(h.header()) {
            let seen = abort_seen(cx.role, by, reason);
            cx.log("harness", "set state", format!("{seen}"));
            if obs.abort.is_none() {
                obs.abort = Some(seen);
            }
        }
        if !killed && hostile::server_connected(h.header()) {
            let closed = hostile::server_closed(h.header());
            cx.log(
                "harness",
                "server Close",
                if closed { "called" } else { "never called" },
            );
            obs.set_closed = Some(obs.set_closed.unwrap_or(true) && closed);
        }
    }
    let r = run.lock_set().close();
    cx.log("client", "Close", vdisim::vdi::result_name(&r));
    let sh = run.sh.into_inner().unwrap_or_else(|p| p.into_inner());
    let base = obs.commands.len() as u64;
    obs.commands.extend(sh.cmds.into_iter().map(|mut c| {
        c.seq += base;
        c.done_seq = c.done_seq.map(|x| x + base);
        c
    }));
    obs.device_ends = sh
        .ends
        .into_iter()
        .map(|e| e.unwrap_or_else(|| "nothing (never opened)".into()))
        .collect();
    obs.problems.extend(sh.problems);
    if obs.hang.is_none() {
        obs.hang = sh.hang;
    }
    if sh.measured_ms.is_some() {
        obs.measured_ms = sh.measured_ms;
    }
    if sh.parallel_problem.is_some() {
        obs.parallel_problem = sh.parallel_problem;
    }
    obs.notes.extend(sh.notes);
    sh.written
}

/// A backup by the server under test, then (if it succeeded) a restore of what it wrote,
/// with `tweak` applied to the data the harness gives back. Integrity: Intact when the
/// restore of the faithful copy succeeded.
pub(crate) fn round_trip(cx: &Cx, backup: &Plan, restore: &Plan, tweak: impl FnOnce(&mut Vec<Vec<u8>>)) -> Observation {
    let mut obs = Observation::default();
    let mut stored = run_job(cx, backup, &[], &mut obs);
    let backup_ok = obs.exit == Some(JobExit::Success) && obs.problems.is_empty() && obs.hang.is_none();
    if !backup_ok {
        return obs;
    }
    // The restore starts from a fresh view of how things end.
    obs.abort = None;
    obs.device_ends.clear();
    let faithful = {
        let before = stored.clone();
        tweak(&mut stored);
        before == stored
    };
    let _ = run_job(cx, restore, &stored, &mut obs);
    if faithful {
        obs.integrity = if obs.exit == Some(JobExit::Success) {
            Integrity::Intact
        } else {
            Integrity::Corrupt
        };
    }
    obs
}

impl Run<'_, '_> {
    fn sh(&self) -> MutexGuard<'_, Shared> {
        self.sh.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_set(&self) -> MutexGuard<'_, ClientVirtualDeviceSet> {
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// GetConfiguration (polling while the server configures), then OpenDevice on every device.
    fn configure_and_open(
        &self,
        handle: &mut Box<dyn RunningJob>,
        exit: &mut Option<JobExit>,
        obs: &mut Observation,
    ) -> Option<Vec<ClientVirtualDevice>> {
        if self.dead.load(Ordering::Acquire) {
            self.end_all("nothing (the client died)");
            return None;
        }
        let deadline = Instant::now() + self.cx.timing.create_wait;
        let answer = loop {
            let r = self.lock_set().get_configuration(50);
            match r {
                Ok(a) => {
                    self.cx.log(
                        "client",
                        "GetConfiguration",
                        format!(
                            "NOERROR features=0x{:x} blockSize={} maxTransferSize={} alignment={}",
                            a.features, a.blockSize, a.maxTransferSize, a.alignment
                        ),
                    );
                    break a;
                }
                Err(VdError::Timeout) => {}
                Err(e) => {
                    self.cx.log("client", "GetConfiguration", e.name());
                    self.end_all(e.name());
                    return None;
                }
            }
            if let Some(e) = handle.wait(Instant::now()) {
                self.cx.log("server", "job ended", e.describe());
                *exit = Some(e);
                self.end_all("nothing (the server ended before configuring)");
                return None;
            }
            if Instant::now() >= deadline {
                self.sh().hang = Some("waiting for the server to configure the set (GetConfiguration)".into());
                self.end_all("nothing (no configuration)");
                return None;
            }
        };
        obs.answer = Some(answer);
        if self.plan.event.map(|e| e.0) == Some(Trigger::AfterConfiguration) {
            self.act(None);
        }
        if self.plan.open_delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.plan.open_delay_ms));
        }
        let mut devs = Vec::new();
        for i in 0..self.plan.devices {
            let name = device_name(&self.set_name, i);
            let deadline = Instant::now() + self.cx.timing.create_wait;
            loop {
                let r = self.lock_set().open_device(&name);
                match r {
                    Ok(d) => {
                        self.cx.log("client", format!("OpenDevice({name})"), "NOERROR");
                        devs.push(d);
                        break;
                    }
                    Err(VdError::Open) if Instant::now() < deadline => {
                        if let Some(e) = handle.wait(Instant::now()) {
                            *exit = Some(e);
                            break;
                        }
                    }
                    Err(e) => {
                        self.cx.log("client", format!("OpenDevice({name})"), e.name());
                        if e != VdError::Abort {
                            self.sh()
                                .problems
                                .push(format!("OpenDevice({name}) returned {}", e.name()));
                        }
                        break;
                    }
                }
            }
            if devs.len() as u32 != i + 1 {
                break;
            }
        }
        if devs.len() as u32 != self.plan.devices {
            // Services the devices it has so their ends are recorded; the rest never opened.
            let mut sh = self.sh();
            for i in devs.len()..self.plan.devices as usize {
                sh.ends[i] = Some("nothing (OpenDevice failed)".into());
            }
        }
        Some(devs)
    }

    fn end_all(&self, how: &str) {
        let mut sh = self.sh();
        for e in sh.ends.iter_mut() {
            if e.is_none() {
                *e = Some(how.to_string());
            }
        }
    }

    /// Performs the plan's action. `held` is the command being held, for garbage that needs it.
    fn act(&self, held: Option<(u64, u32)>) {
        let Some((_, action)) = self.plan.event else { return };
        match action {
            Action::SignalAbort => {
                let r = self.lock_set().signal_abort();
                self.cx.log("client", "SignalAbort", vdisim::vdi::result_name(&r));
            }
            Action::PrematureClose => {
                let r = self.lock_set().close();
                self.cx
                    .log("client", "Close (devices still open)", vdisim::vdi::result_name(&r));
            }
            Action::Die => {
                self.dead.store(true, Ordering::Release);
                if let Some(h) = &self.header {
                    hostile::kill_client_token(h.header());
                    self.cx
                        .log("harness", "the client dies (liveness token names no process)", "");
                }
            }
            Action::Garbage(g) => {
                self.dead.store(true, Ordering::Release);
                if let Some(h) = &self.header {
                    let g = match (g, held) {
                        (Garbage::BytesExceedSize { .. }, Some((id, size))) => Garbage::BytesExceedSize { id, size },
                        (g, _) => g,
                    };
                    hostile::garbage_completion(h.header(), 0, g);
                    self.cx
                        .log("harness", format!("garbage in completion ring 0: {g:?}"), "");
                }
            }
            Action::Stall(_) => {}
        }
    }

    fn aborted(&self) -> bool {
        self.header
            .as_ref()
            .is_some_and(|h| hostile::abort_state(h.header()).is_some())
    }

    /// Services one device until VD_E_CLOSE, VD_E_ABORT or a deadline.
    fn serve(&self, d: usize, dev: &ClientVirtualDevice) {
        let mut data_seen = 0usize;
        let mut counts: std::collections::HashMap<u32, usize> = Default::default();
        let mut first = true;
        let mut read_offset = 0u64;
        let mut quiet_since = Instant::now();
        let end = loop {
            if self.dead.load(Ordering::Acquire) {
                break "nothing (the client went silent: died or wrote garbage)".to_string();
            }
            let got = dev.get_command(50);
            let mut cmd = match got {
                Ok(c) => c,
                Err(VdError::Timeout) => {
                    let mut sh = self.sh();
                    if self.server_ended.load(Ordering::Acquire) && quiet_since.elapsed() > Duration::from_millis(500) {
                        break "nothing (the server's job ended without closing the device)".to_string();
                    }
                    if sh.last_progress.elapsed() > self.cx.timing.stall {
                        let step = format!("device {d}: waiting for the server's next command");
                        self.cx.log("harness", "deadline", step.clone());
                        if sh.hang.is_none() {
                            sh.hang = Some(step);
                        }
                        break "nothing (deadline)".to_string();
                    }
                    continue;
                }
                Err(e) => {
                    self.cx.log("client", format!("GetCommand(dev={d})"), e.name());
                    break e.name().to_string();
                }
            };
            quiet_since = Instant::now();
            let code = cmd.code();
            let is_data = code == CommandCode::Write.code() || code == CommandCode::Read.code();
            let nth = {
                let c = counts.entry(code).or_insert(0);
                *c += 1;
                *c - 1
            };
            let index = {
                let mut sh = self.sh();
                sh.seq += 1;
                sh.last_progress = Instant::now();
                let seq = sh.seq;
                sh.cmds.push(CmdObs {
                    device: d,
                    id: cmd.id(),
                    code,
                    size: cmd.size(),
                    position: cmd.position(),
                    address: cmd.buffer_ptr() as usize,
                    seq,
                    ..CmdObs::default()
                });
                sh.cmds.len() - 1
            };
            self.cx.log(
                "client",
                format!("GetCommand(dev={d})"),
                format!("{} size={} position={}", cmd_name(code), cmd.size(), cmd.position()),
            );
            if first {
                first = false;
                if self.plan.hold_first_until_all {
                    self.hold_for_others(d);
                }
            }
            // Faults that hold this command.
            let mut hold = None;
            if let Some((trigger, action)) = self.plan.event {
                let fire = match trigger {
                    Trigger::OnData(n) => d == 0 && is_data && data_seen == n,
                    Trigger::OnFlush => d == 0 && code == CommandCode::Flush.code(),
                    Trigger::AfterFirstDeviceClosed => d == 1 && is_data && data_seen == 0,
                    _ => false,
                };
                if fire {
                    hold = Some(action);
                    if trigger == Trigger::AfterFirstDeviceClosed {
                        self.wait_device_end(0);
                    }
                }
            }
            if is_data {
                data_seen += 1;
            }
            if let Some(action) = hold {
                self.act(Some((cmd.id(), cmd.size())));
                match action {
                    Action::Stall(ms) => {
                        let t = Instant::now();
                        let until = t + Duration::from_millis(ms);
                        while Instant::now() < until && !self.aborted() {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        if self.aborted() {
                            let ms = t.elapsed().as_millis() as u64;
                            self.cx.log(
                                "harness",
                                "abort seen while holding the command",
                                format!("after {ms} ms"),
                            );
                            self.sh().measured_ms = Some(ms);
                        }
                        self.sh().last_progress = Instant::now();
                    }
                    // Everything else ends the set: hold the command, never complete it.
                    _ => continue,
                }
            }
            if self.plan.complete_delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(self.plan.complete_delay_ms));
            }
            // Carry the command out.
            let (mut result, mut bytes, position) = (completion::ERROR_SUCCESS, 0u32, 0u64);
            if code == CommandCode::Write.code() {
                let data = cmd.buffer().to_vec();
                bytes = data.len() as u32;
                let mut sh = self.sh();
                let w = &mut sh.written[d];
                if self.random_access {
                    let at = cmd.position() as usize;
                    if w.len() < at + data.len() {
                        w.resize(at + data.len(), 0);
                    }
                    w[at..at + data.len()].copy_from_slice(&data);
                } else {
                    w.extend_from_slice(&data);
                }
            } else if code == CommandCode::Read.code() {
                let src = self.source.get(d).map_or(&[][..], |v| &v[..]);
                let at = if self.random_access {
                    cmd.position()
                } else {
                    read_offset
                };
                let buf = cmd.buffer_mut();
                let start = (at as usize).min(src.len());
                let n = buf.len().min(src.len() - start);
                buf[..n].copy_from_slice(&src[start..start + n]);
                read_offset = at + n as u64;
                bytes = n as u32;
                if n < buf.len() {
                    result = self.plan.eof_code;
                }
            } else if code == CommandCode::Flush.code()
                || code == CommandCode::ClearError.code()
                || code == CommandCode::Complete.code()
            {
            } else {
                result = completion::ERROR_NOT_SUPPORTED;
            }
            if let Some((fcode, fnth, fcompletion)) = self.plan.fail {
                if d == 0 && code == fcode && nth == fnth {
                    result = fcompletion;
                    bytes = 0;
                }
            }
            let r = dev.complete_command(&cmd, result, bytes, position);
            self.cx.log(
                "client",
                format!("CompleteCommand(dev={d}, {})", cmd_name(code)),
                format!(
                    "{} bytes={bytes} -> {}",
                    code_name(result),
                    vdisim::vdi::result_name(&r)
                ),
            );
            {
                let mut sh = self.sh();
                sh.seq += 1;
                let seq = sh.seq;
                sh.last_progress = Instant::now();
                if let Some(c) = sh.cmds.get_mut(index) {
                    c.completion = Some(result);
                    c.bytes = bytes;
                    c.done_seq = Some(seq);
                }
            }
            if result != completion::ERROR_SUCCESS && !completion::is_end_of_data(result) {
                let note = format!(
                    "device {d}: the harness completed {} with {}",
                    cmd_name(code),
                    code_name(result)
                );
                self.sh().notes.push(note);
            }
            if let Err(e) = r {
                if e != VdError::Abort {
                    self.sh().problems.push(format!(
                        "device {d}: CompleteCommand({}) returned {}",
                        cmd_name(code),
                        e.name()
                    ));
                }
            }
        };
        self.sh().ends[d] = Some(end);
    }

    /// Holds device `d`'s first command until every device got one, or the deadline.
    fn hold_for_others(&self, d: usize) {
        self.firsts.fetch_add(1, Ordering::AcqRel);
        let deadline = Instant::now() + PARALLEL_WAIT;
        let n = self.plan.devices as usize;
        while self.firsts.load(Ordering::Acquire) < n {
            if Instant::now() >= deadline || self.aborted() {
                let got = self.firsts.load(Ordering::Acquire);
                let mut sh = self.sh();
                if sh.parallel_problem.is_none() && !self.aborted() {
                    sh.parallel_problem = Some(format!(
                        "only {got} of {n} devices received a command within {} s while device {d} held its first",
                        PARALLEL_WAIT.as_secs()
                    ));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.sh().last_progress = Instant::now();
    }

    fn wait_device_end(&self, dev: usize) {
        // Shorter than the stall deadline, so the device's own stall never fires first.
        let deadline = Instant::now() + self.cx.timing.stall / 2;
        while Instant::now() < deadline {
            if self.sh().ends.get(dev).is_some_and(|e| e.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.sh().last_progress = Instant::now();
    }
}
