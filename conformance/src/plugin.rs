//! Plug-ins: how the harness starts an implementation under test.
//!
//! - A **client** under test ([`ClientUnderTest`]) is started on a [`ClientJob`] while the
//!   harness plays SQL Server through `vdisim::server`.
//! - A **server** under test ([`ServerUnderTest`]) is started on a [`ServerJob`] over a set
//!   the harness (playing the backup application through `vdisim::client`) has created.
//!
//! Either way the implementation runs as a [`RunningJob`]: the harness waits on it with a
//! deadline and kills it when the deadline passes (the case then gets a Hang verdict and the
//! run goes on). [`spawn_thread_job`] turns a closure into a `RunningJob` for in-process
//! implementations; [`crate::exec::ExecClient`] runs an external program.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
pub use vdisim::reference_client::Mode;

/// What a client under test is asked to do (the arguments of the external-program contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientJob {
    /// Backup: store what the server writes. Restore: give it back.
    pub mode: Mode,
    /// The set name for CreateEx; also the first device's name (SPEC §3.3).
    pub set: String,
    /// Devices in the set: `set`, `set_1`, ... `set_<n-1>` (as `vdisim client` names them).
    pub devices: u32,
    /// The directory holding the backup: written by a backup job, read by a restore job
    /// (the layout inside is the client's business).
    pub store: PathBuf,
    /// Ask for VDF_RequestComplete (SPEC §2.2) and answer VDC_Complete.
    pub request_complete: bool,
    /// How long the client may wait for the server to configure the set, in milliseconds
    /// (GetConfiguration, retried after VD_E_TIMEOUT): `--timeout-ms` of the contract.
    pub config_timeout_ms: u32,
    /// A suggested GetCommand timeout for in-process clients (not part of the external
    /// contract: programs choose their own). Cases that pause the stream pause for several
    /// of these, and for longer than the reference client's 1 s.
    pub command_timeout_ms: u32,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobExit {
    /// The job succeeded (exit code 0).
    Success,
    /// The implementation does not support what the case needs (exit code 89, like BoGo).
    Unsupported(String),
    /// The job failed (any other exit code), with whatever the implementation said.
    Failure(String),
}

impl JobExit {
    pub fn describe(&self) -> String {
        match self {
            JobExit::Success => "success".to_string(),
            JobExit::Unsupported(why) => format!("unsupported ({why})"),
            JobExit::Failure(why) => format!("failure ({why})"),
        }
    }
}

/// A started implementation.
pub trait RunningJob: Send {
    /// Waits until the job ends or `deadline` passes; `None` if it is still running.
    fn wait(&mut self, deadline: Instant) -> Option<JobExit>;
    /// Stops the job (SIGKILL for a process; a cancel flag for a thread).
    fn kill(&mut self);
}

/// A VDI client (backup application) the harness can certify.
///
/// ```
/// use vdi_conformance::plugin::{spawn_thread_job, ClientJob, ClientUnderTest, JobExit, RunningJob};
/// use vdi_conformance::{certify_client, Options};
/// use vdisim::reference_client;
///
/// /// Your client: here the reference client, run in a thread.
/// struct MyClient;
///
/// impl ClientUnderTest for MyClient {
///     fn name(&self) -> String {
///         "my-client".into()
///     }
///     fn start(&self, job: &ClientJob) -> Result<Box<dyn RunningJob>, String> {
///         let mut opts = reference_client::Options::new(job.mode, &job.set, job.devices, &job.store);
///         opts.command_timeout_ms = job.command_timeout_ms;
///         opts.config_timeout = std::time::Duration::from_millis(job.config_timeout_ms.into());
///         if job.request_complete {
///             opts.features |= vdisim::vdi::features::VDF_REQUEST_COMPLETE;
///         }
///         Ok(spawn_thread_job(move |_cancel| match reference_client::run(&opts, || {}) {
///             Ok(_) => JobExit::Success,
///             Err(e) => JobExit::Failure(e.to_string()),
///         }))
///     }
/// }
///
/// let opts = Options { cases: vec!["lifecycle.client.backup-completes".into()], ..Options::default() };
/// let run = certify_client(&MyClient, &opts);
/// assert!(run.is_conformant(), "{:#?}", run.results);
/// ```
pub trait ClientUnderTest: Send + Sync {
    /// A short name for reports, e.g. `builtin-client` or `exec:./mytool`.
    fn name(&self) -> String;
    /// Starts the client on `job`. `Err` means the harness could not start it at all.
    fn start(&self, job: &ClientJob) -> Result<Box<dyn RunningJob>, String>;
}

/// What a server under test is asked to do: a BACKUP- or RESTORE-like job over a set the
/// harness already created (CreateEx done; the harness calls GetConfiguration next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerJob {
    pub mode: Mode,
    /// The set to Open; device `i` must be opened as `device_name(set, i)` (`set`, `set_1`...).
    pub set: String,
    pub devices: u32,
    /// Backup: how many bytes of data to send through each device. Restore: how many bytes
    /// each device must give back (the data of the backup with the same `data_seed`).
    pub bytes_per_device: u64,
    /// Identifies the data (a backup's content; the restore of that backup gets the same seed).
    pub data_seed: u64,
    /// BLOCKSIZE (SPEC §2.6).
    pub block_size: u32,
    /// MAXTRANSFERSIZE (SPEC §2.6).
    pub max_transfer: u32,
    /// BUFFERCOUNT, shared by all devices (SPEC §2.6).
    pub buffer_count: u32,
}

/// A VDI server implementation the harness can certify (it plays the client).
pub trait ServerUnderTest: Send + Sync {
    fn name(&self) -> String;
    fn start(&self, job: &ServerJob) -> Result<Box<dyn RunningJob>, String>;
}

/// Handed to a thread job: set when the harness kills the job. Long loops should check it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
}

struct ThreadJob {
    rx: mpsc::Receiver<JobExit>,
    cancel: Cancel,
    done: Option<JobExit>,
}

impl RunningJob for ThreadJob {
    fn wait(&mut self, deadline: Instant) -> Option<JobExit> {
        if self.done.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(exit) => self.done = Some(exit),
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.done = Some(JobExit::Failure("the job's thread ended without a result".into()))
                }
            }
        }
        self.done.clone()
    }

    fn kill(&mut self) {
        self.cancel.cancel();
    }
}

/// Runs `f` in its own thread as a [`RunningJob`]. A panic becomes a failure. Killing sets the
/// [`Cancel`] flag; the harness also aborts the set, so a correct client returns promptly.
pub fn spawn_thread_job(f: impl FnOnce(Cancel) -> JobExit + Send + 'static) -> Box<dyn RunningJob> {
    let (tx, rx) = mpsc::channel();
    let cancel = Cancel::default();
    let flag = cancel.clone();
    let spawned = std::thread::Builder::new()
        .name("job-under-test".into())
        .spawn(move || {
            let exit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(flag)))
                .unwrap_or_else(|_| JobExit::Failure("the implementation panicked".into()));
            let _ = tx.send(exit);
        });
    let done = spawned
        .err()
        .map(|e| JobExit::Failure(format!("could not start a thread: {e}")));
    Box::new(ThreadJob { rx, cancel, done })
}
