//! Built-in clients: [`BuiltinClient`] runs `vdisim::reference_client` in a thread;
//! [`KnobClient`] is a copy of the reference client's loop with switches that each turn on
//! one classic bug (the client mutants). With every switch off it behaves like the
//! reference client.

use crate::plugin::{spawn_thread_job, Cancel, ClientJob, ClientUnderTest, JobExit, Mode, RunningJob};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vdisim::client::{ClientVirtualDevice, ClientVirtualDeviceSet, Command};
use vdisim::reference_client::{self, device_name, stripe_path};
use vdisim::vdi::{completion, features, CommandCode, VDConfig, VdError};

/// The reference client, in a thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinClient;

impl ClientUnderTest for BuiltinClient {
    fn name(&self) -> String {
        "builtin-client".into()
    }

    fn start(&self, job: &ClientJob) -> Result<Box<dyn RunningJob>, String> {
        let mut opts = reference_client::Options::new(job.mode, &job.set, job.devices, &job.store);
        opts.command_timeout_ms = job.command_timeout_ms;
        opts.config_timeout = Duration::from_millis(u64::from(job.config_timeout_ms));
        if job.request_complete {
            opts.features |= features::VDF_REQUEST_COMPLETE;
        }
        Ok(spawn_thread_job(move |_cancel| {
            match reference_client::run(&opts, || {}) {
                Ok(_) => JobExit::Success,
                Err(e) => JobExit::Failure(e.to_string()),
            }
        }))
    }
}

/// Switches for the knob-driven client. Each one is a classic real-world bug.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientKnobs {
    /// Opens and services the devices one after another instead of one thread each.
    pub sequential_devices: bool,
    /// Treats VD_E_ABORT from GetCommand and CompleteCommand like VD_E_TIMEOUT and keeps asking.
    pub abort_as_timeout: bool,
    /// Considers a device finished once a Flush completes and Closes without VD_E_CLOSE.
    pub close_after_flush: bool,
    /// Closes the set as soon as the first device returns VD_E_CLOSE.
    pub close_on_first_device: bool,
    /// Treats VD_E_TIMEOUT from GetCommand as fatal (SignalAbort, fail).
    pub timeout_fatal: bool,
    /// Treats VD_E_TIMEOUT from GetConfiguration as fatal.
    pub config_timeout_fatal: bool,
    /// Treats VD_E_OPEN from OpenDevice as fatal.
    pub open_fatal: bool,
    /// Completes Writes with bytesTransferred = 0.
    pub write_count_zero: bool,
    /// Completes each Write lazily (when the next command arrives) but a Flush at once.
    pub flush_early: bool,
    /// Never calls SignalAbort on its own errors; serves what it has and fails at the end.
    pub no_signal_abort: bool,
    /// Answers unknown commands with ERROR_SUCCESS.
    pub unknown_success: bool,
    /// Answers ClearError with ERROR_NOT_SUPPORTED.
    pub clear_error_not_supported: bool,
    /// Answers VDC_Complete with ERROR_NOT_SUPPORTED although it asked for it.
    pub complete_not_supported: bool,
    /// At the end of data returns the short count with ERROR_SUCCESS.
    pub eof_success: bool,
    /// At the end of data returns 0 bytes with ERROR_HANDLE_EOF, dropping the partial tail.
    pub eof_drops_tail: bool,
    /// Returns at most 64 KiB per Read, with ERROR_SUCCESS.
    pub short_reads: bool,
    /// Calls GetCommand again after VD_E_CLOSE and aborts on the VD_E_PROTOCOL it gets.
    pub get_after_close: bool,
    /// Opens the store without truncating it: a new backup is appended to the old one.
    pub append_store: bool,
    /// Reports success even when the set was aborted.
    pub success_after_abort: bool,
}

/// The knob-driven client as an implementation under test.
#[derive(Debug, Clone)]
pub struct KnobClient {
    pub name: String,
    pub knobs: ClientKnobs,
}

impl ClientUnderTest for KnobClient {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start(&self, job: &ClientJob) -> Result<Box<dyn RunningJob>, String> {
        let job = job.clone();
        let knobs = self.knobs;
        Ok(spawn_thread_job(move |cancel| run(&job, knobs, &cancel)))
    }
}

/// How a device loop ended.
enum End {
    /// VD_E_CLOSE (or, with `close_after_flush`, a completed Flush).
    Closed,
    Failed(String),
}

struct Client<'a> {
    job: &'a ClientJob,
    k: ClientKnobs,
    cancel: &'a Cancel,
    set: Mutex<ClientVirtualDeviceSet>,
}

fn run(job: &ClientJob, k: ClientKnobs, cancel: &Cancel) -> JobExit {
    let files = match open_store(job, k) {
        Ok(f) => f,
        Err(e) => return JobExit::Failure(e),
    };
    let mut set = ClientVirtualDeviceSet::new();
    let mut feats = features::VDF_LIKE_PIPE;
    if job.request_complete {
        feats |= features::VDF_REQUEST_COMPLETE;
    }
    if let Err(e) = set.create_ex(None, &job.set, &VDConfig::request(job.devices, feats)) {
        return JobExit::Failure(format!("CreateEx returned {}", e.name()));
    }
    let c = Client {
        job,
        k,
        cancel,
        set: Mutex::new(set),
    };
    let start = Instant::now();
    loop {
        let r = c.set().get_configuration(1000);
        match r {
            Ok(_) => break,
            Err(VdError::Timeout)
                if !k.config_timeout_fatal
                    && start.elapsed() < Duration::from_millis(u64::from(job.config_timeout_ms)) =>
            {
                if cancel.is_cancelled() {
                    return JobExit::Failure("killed".into());
                }
            }
            Err(e) => return c.give_up(format!("GetConfiguration returned {}", e.name())),
        }
    }
    let result = if k.sequential_devices {
        c.sequential(files)
    } else {
        c.parallel(files)
    };
    let closed = c.set().close();
    match result {
        Ok(()) => JobExit::Success,
        Err(_) if k.success_after_abort => JobExit::Success,
        Err(e) => JobExit::Failure(format!("{e} (Close: {})", vdisim::vdi::result_name(&closed))),
    }
}

fn open_store(job: &ClientJob, k: ClientKnobs) -> Result<Vec<File>, String> {
    if job.mode == Mode::Backup {
        std::fs::create_dir_all(&job.store).map_err(|e| format!("{}: {e}", job.store.display()))?;
    }
    (0..job.devices)
        .map(|i| {
            let path = stripe_path(&job.store, i);
            let file = match job.mode {
                Mode::Backup if k.append_store => OpenOptions::new().create(true).append(true).open(&path),
                Mode::Backup => OpenOptions::new().create(true).truncate(true).write(true).open(&path),
                Mode::Restore => File::open(&path),
            };
            file.map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

impl Client<'_> {
    fn set(&self) -> MutexGuard<'_, ClientVirtualDeviceSet> {
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn give_up(&self, why: String) -> JobExit {
        let _ = self.set().signal_abort();
        let _ = self.set().close();
        JobExit::Failure(why)
    }

    fn open(&self, i: u32) -> Result<ClientVirtualDevice, String> {
        let name = device_name(&self.job.set, i);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.set().open_device(&name);
            match r {
                Ok(d) => return Ok(d),
                Err(VdError::Open) if !self.k.open_fatal && Instant::now() < deadline => {
                    if self.cancel.is_cancelled() {
                        return Err("killed".into());
                    }
                }
                Err(e) => return Err(format!("OpenDevice({name}) returned {}", e.name())),
            }
        }
    }

    /// The bug: one device after another.
    fn sequential(&self, files: Vec<File>) -> Result<(), String> {
        for (i, file) in files.into_iter().enumerate() {
            let dev = self.open(i as u32)?;
            if let End::Failed(e) = self.serve(&dev, file) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// One thread per device (SPEC §3.3).
    fn parallel(&self, files: Vec<File>) -> Result<(), String> {
        let mut devices = Vec::new();
        let mut open_error = None;
        for i in 0..self.job.devices {
            match self.open(i) {
                Ok(d) => devices.push(d),
                Err(e) => {
                    if !self.k.no_signal_abort {
                        let _ = self.set().signal_abort();
                        return Err(e);
                    }
                    // The bug: carry on with the devices it has, tell nobody.
                    open_error = Some(e);
                    break;
                }
            }
        }
        let (tx, rx) = mpsc::channel::<End>();
        let mut failure = None;
        std::thread::scope(|s| {
            for (dev, file) in devices.iter().zip(files) {
                let tx = tx.clone();
                s.spawn(move || {
                    let _ = tx.send(self.serve(dev, file));
                });
            }
            drop(tx);
            let mut first = true;
            for end in rx.iter() {
                match end {
                    End::Closed if first && self.k.close_on_first_device => {
                        // The bug: the backup looks finished once one device is.
                        let _ = self.set().close();
                    }
                    End::Closed => {}
                    End::Failed(e) => {
                        failure.get_or_insert(e);
                    }
                }
                first = false;
            }
        });
        if let Some(e) = open_error {
            return Err(e);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn serve(&self, dev: &ClientVirtualDevice, mut file: File) -> End {
        let timeout = self.job.command_timeout_ms;
        // flush_early: a Write whose completion is held back until the next command.
        let mut pending: Option<(Command, u32)> = None;
        loop {
            if self.cancel.is_cancelled() {
                return End::Failed("killed".into());
            }
            let got = dev.get_command(timeout);
            let mut cmd = match got {
                Ok(c) => c,
                Err(VdError::Timeout) => {
                    if let Some((p, bytes)) = pending.take() {
                        if let Err(e) = dev.complete_command(&p, completion::ERROR_SUCCESS, bytes, 0) {
                            return End::Failed(format!("CompleteCommand returned {}", e.name()));
                        }
                    }
                    if self.k.timeout_fatal {
                        let _ = self.set().signal_abort();
                        return End::Failed("GetCommand timed out".into());
                    }
                    continue;
                }
                Err(VdError::Close) => {
                    if self.k.get_after_close {
                        // The bug: ask again, and treat the VD_E_PROTOCOL as a failure.
                        if let Err(e) = dev.get_command(0) {
                            let _ = self.set().signal_abort();
                            return End::Failed(format!("GetCommand after VD_E_CLOSE returned {}", e.name()));
                        }
                    }
                    return End::Closed;
                }
                Err(VdError::Abort) if self.k.abort_as_timeout => {
                    // The bug: VD_E_ABORT taken for a timeout.
                    std::thread::sleep(Duration::from_millis(u64::from(timeout.min(1000))));
                    continue;
                }
                Err(e) => return End::Failed(format!("GetCommand returned {}", e.name())),
            };
            let is_flush = cmd.command() == Some(CommandCode::Flush);
            let (code, bytes) = self.execute(&mut file, &mut cmd);
            if self.k.flush_early {
                if is_flush {
                    if let Err(e) = dev.complete_command(&cmd, code, bytes, 0) {
                        return End::Failed(format!("CompleteCommand returned {}", e.name()));
                    }
                    if let Some((p, b)) = pending.take() {
                        let _ = dev.complete_command(&p, completion::ERROR_SUCCESS, b, 0);
                    }
                    continue;
                }
                if let Some((p, b)) = pending.take() {
                    let _ = dev.complete_command(&p, completion::ERROR_SUCCESS, b, 0);
                }
                if cmd.command() == Some(CommandCode::Write) && code == completion::ERROR_SUCCESS {
                    pending = Some((cmd, bytes));
                    continue;
                }
            }
            match dev.complete_command(&cmd, code, bytes, cmd.position()) {
                Ok(()) => {}
                // The bug: VD_E_ABORT is retried like a timeout.
                Err(VdError::Abort) if self.k.abort_as_timeout => continue,
                Err(e) => return End::Failed(format!("CompleteCommand returned {}", e.name())),
            }
            let own_error = code != completion::ERROR_SUCCESS
                && !completion::is_end_of_data(code)
                && code != completion::ERROR_NOT_SUPPORTED;
            if own_error {
                if !self.k.no_signal_abort {
                    let _ = self.set().signal_abort();
                }
                return End::Failed(format!("command {} failed with Win32 error {code}", cmd.code()));
            }
            if is_flush && self.k.close_after_flush {
                // The bug: "Flush is the last command, so we are done".
                return End::Closed;
            }
        }
    }

    fn execute(&self, file: &mut File, cmd: &mut Command) -> (u32, u32) {
        let k = self.k;
        match cmd.command() {
            Some(CommandCode::Write) => match file.write_all(cmd.buffer()) {
                Ok(()) => (
                    completion::ERROR_SUCCESS,
                    if k.write_count_zero { 0 } else { cmd.size() },
                ),
                Err(_) => (completion::ERROR_IO_DEVICE, 0),
            },
            Some(CommandCode::Read) => {
                let size = cmd.size() as usize;
                let want = if k.short_reads { size.min(65536) } else { size };
                let buf = &mut cmd.buffer_mut()[..want];
                let mut filled = 0;
                while filled < buf.len() {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => return (completion::ERROR_IO_DEVICE, 0),
                    }
                }
                // The bugs: a short Read with SUCCESS (short_reads mid-stream, eof_success
                // at the end of data).
                if filled == size || (k.short_reads && filled == want) || k.eof_success {
                    (completion::ERROR_SUCCESS, filled as u32)
                } else if k.eof_drops_tail {
                    (completion::ERROR_HANDLE_EOF, 0)
                } else {
                    (completion::ERROR_HANDLE_EOF, filled as u32)
                }
            }
            Some(CommandCode::Flush) => match file.sync_data() {
                Ok(()) => (completion::ERROR_SUCCESS, 0),
                Err(_) => (completion::ERROR_IO_DEVICE, 0),
            },
            Some(CommandCode::Complete) if k.complete_not_supported => (completion::ERROR_NOT_SUPPORTED, 0),
            Some(CommandCode::Complete) => match file.sync_data() {
                Ok(()) => (completion::ERROR_SUCCESS, 0),
                Err(_) => (completion::ERROR_IO_DEVICE, 0),
            },
            Some(CommandCode::ClearError) if k.clear_error_not_supported => (completion::ERROR_NOT_SUPPORTED, 0),
            Some(CommandCode::ClearError) => (completion::ERROR_SUCCESS, 0),
            _ if k.unknown_success => (completion::ERROR_SUCCESS, 0),
            _ => (completion::ERROR_NOT_SUPPORTED, 0),
        }
    }
}
