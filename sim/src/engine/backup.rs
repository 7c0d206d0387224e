//! BACKUP DATABASE|LOG through virtual devices, as SQL Server runs it (SPEC §3.1, §3.3-§3.5).
//!
//! After [`Session::start`]: one thread per device, each encoding its stripe ([`StripeEncoder`],
//! round robin over the devices) into buffers taken from the shared pool and sending them as
//! VDC_Write of at most MAXTRANSFERSIZE; at the end of its stripe each device gets VDC_Flush.
//! When every device has flushed, VDC_Complete goes to each device if the client asked for it
//! (§3.4), then CloseDevice on each and Close.
//!
//! An error completion (e.g. ERROR_DISK_FULL) fails the BACKUP: the device's outstanding
//! commands are drained, ClearError is sent on it (§3.5), the set is aborted (§3.6) and the
//! statement reports 18210 naming the device and the OS error, then 3013.

use super::database::{page_content, DbReader, PAGE_SIZE};
use super::executor::{db_error, Engine, ExecResult, TransferStats};
use super::messages::{self, Message, OsError};
use super::session::{self, drain, run_simple, Failure, Progress, Session, SessionSpec, SLICE_MS};
use super::stream::{self, StreamKind, StreamParams, StripeEncoder};
use super::tsql::{Backup, BackupKind};
use crate::server::{ServerCommand, ServerVirtualDevice};
use crate::vdi::{completion, features, CommandCode, VdError};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// Pages of the simulated transaction log that BACKUP LOG copies.
pub const LOG_PAGES: u64 = 8;

/// The simulated transaction log of `db`: [`LOG_PAGES`] deterministic pages.
pub fn log_image(db: &str) -> Vec<u8> {
    let name = format!("{db}_log");
    let mut out = Vec::with_capacity(LOG_PAGES as usize * PAGE_SIZE);
    for page in 0..LOG_PAGES {
        out.extend_from_slice(&page_content(&name, page)[..]);
    }
    out
}

/// Where BACKUP reads from.
enum Source {
    Db(DbReader),
    Log(Vec<u8>),
}

impl Source {
    fn size(&self) -> u64 {
        match self {
            Source::Db(r) => r.size(),
            Source::Log(v) => v.len() as u64,
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match self {
            Source::Db(r) => r.read_at(offset, buf),
            Source::Log(v) => {
                let start = usize::try_from(offset).map_err(std::io::Error::other)?;
                let src = v
                    .get(start..start.saturating_add(buf.len()))
                    .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

/// A backup set id nobody else will pick: random keys of the standard library's hasher mixed
/// with the time.
fn new_backup_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Job<'a> {
    session: &'a Session,
    params: StreamParams,
    source: &'a Source,
    failure: Failure,
    progress: Progress,
    stall: Duration,
}

const WRITE_CONTEXT: &str = "BackupMedium::ReportIoError";

/// Runs a BACKUP statement; `op` is "BACKUP DATABASE" or "BACKUP LOG".
pub(crate) fn run(engine: &Engine, b: &Backup, op: &str) -> ExecResult {
    let instance = engine.instance();
    let set_name = b.devices.first().map(String::as_str).unwrap_or_default();
    let fail_early = |m: Vec<Message>| {
        session::abort_if_created(instance, set_name);
        Err(m)
    };
    if b.options.snapshot {
        // §3.7 (VDC_PrepareToFreeze, VDC_Snapshot) is not simulated.
        return fail_early(vec![messages::not_supported("BACKUP ... WITH SNAPSHOT")]);
    }
    let data = engine.data_dir();
    let source = match b.kind {
        BackupKind::Database => match data.open_reader(&b.database) {
            Ok(r) => Source::Db(r),
            Err(e) => return fail_early(vec![db_error(&b.database, &e)]),
        },
        BackupKind::Log => {
            if !data.exists(&b.database) {
                return fail_early(vec![messages::db_not_exist(&b.database)]);
            }
            Source::Log(log_image(&b.database))
        }
    };
    let params = StreamParams {
        backup_id: new_backup_id(),
        kind: match b.kind {
            BackupKind::Database => StreamKind::Database,
            BackupKind::Log => StreamKind::Log,
        },
        database: b.database.clone(),
        database_size: source.size(),
        stripes: b.devices.len() as u32,
        blocksize: b.effective_blocksize(),
        maxtransfersize: b.effective_maxtransfersize(),
        created_unix: unix_now(),
    };
    let plan = match stream::plan(&params) {
        Ok(p) => p,
        Err(e) => return fail_early(vec![messages::not_supported(&format!("this backup ({e})"))]),
    };
    let buffercount = b.effective_buffercount();
    let session = Session::start(&SessionSpec {
        instance,
        devices: &b.devices,
        media: features::VDF_WRITE_MEDIA,
        offers_complete: true,
        blocksize: params.blocksize,
        maxtransfersize: params.maxtransfersize,
        buffercount,
        open_grace: engine.options().open_grace,
        context: "BackupVirtualDeviceSet",
    })?;
    let start = Instant::now();
    let job = Job {
        session: &session,
        params,
        source: &source,
        failure: Failure::default(),
        progress: Progress::new(engine.progress(), b.options.stats),
        stall: engine.options().stall_timeout,
    };
    job.progress.set_total(plan.total_bytes());
    let stream_bytes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = session
            .devices
            .iter()
            .zip(&session.names)
            .enumerate()
            .map(|(i, (dev, name))| {
                let job = &job;
                s.spawn(move || device_backup(job, dev, i as u32, name))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    if !job.failure.is_set() {
        finish(&job);
    }
    let percent = job.progress.percent_messages();
    if job.failure.is_set() {
        let m = job.failure.take();
        session.abort();
        return Err(m);
    }
    let closed = session.set.close();
    if let Err(e) = closed.result {
        return Err(vec![messages::device_failure(
            "BackupVirtualDeviceSet::Close",
            "Close",
            set_name,
            OsError::Vdi(e),
        )]);
    }
    let elapsed = start.elapsed();
    let pages = plan.database_size().div_ceil(PAGE_SIZE as u64);
    let file = match b.kind {
        BackupKind::Database => b.database.clone(),
        BackupKind::Log => format!("{}_log", b.database),
    };
    let mut out = percent;
    out.push(messages::processed_pages(pages, &b.database, &file));
    out.push(messages::success(op, pages, elapsed));
    Ok((
        out,
        Some(TransferStats {
            bytes: plan.database_size(),
            pages,
            stream_bytes,
            devices: b.devices.len(),
            blocksize: plan.blocksize(),
            maxtransfersize: plan.maxtransfersize(),
            buffercount,
            complete_enabled: session.complete_enabled,
            elapsed,
        }),
    ))
}

/// After every device flushed: VDC_Complete on each if negotiated (§3.4), then CloseDevice.
fn finish(job: &Job<'_>) {
    let s = job.session;
    if s.complete_enabled {
        for (dev, name) in s.devices.iter().zip(&s.names) {
            match run_simple(dev, CommandCode::Complete, job.stall) {
                Ok(completion::ERROR_SUCCESS) => {}
                // "a failure fails the backup and prevents log truncation" (§3.4).
                Ok(code) => {
                    job.failure.set(vec![messages::device_failure(
                        "BackupVirtualDeviceFile::Complete",
                        "VDC_Complete",
                        name,
                        OsError::Win32(code),
                    )]);
                    return;
                }
                Err(e) => {
                    job.failure.set(vec![vdi_failure(
                        "BackupVirtualDeviceFile::Complete",
                        "VDC_Complete",
                        name,
                        e,
                    )]);
                    return;
                }
            }
        }
    }
    for (dev, name) in s.devices.iter().zip(&s.names) {
        if let Err(e) = dev.close_device() {
            job.failure
                .set(vec![vdi_failure("BackupVirtualDeviceFile::Close", "Close", name, e)]);
            return;
        }
    }
}

/// A failed VDI call as 18210; an abort shows as Windows error 995, as SQL Server reports it.
pub(crate) fn vdi_failure(context: &str, what: &str, device: &str, e: VdError) -> Message {
    let os = if e == VdError::Abort {
        OsError::Win32(completion::ERROR_OPERATION_ABORTED)
    } else {
        OsError::Vdi(e)
    };
    messages::device_failure(context, what, device, os)
}

/// One device's thread: its stripe as Writes, then Flush. Returns the stream bytes written.
fn device_backup(job: &Job<'_>, dev: &ServerVirtualDevice, stripe: u32, name: &str) -> u64 {
    let pool = &job.session.pool;
    let mut enc = match StripeEncoder::new(&job.params, stripe) {
        Ok(e) => e,
        Err(e) => {
            job.failure
                .set(vec![messages::not_supported(&format!("this backup ({e})"))]);
            return 0;
        }
    };
    let mut sizes: HashMap<u64, u32> = HashMap::new();
    let mut position = 0u64;
    let mut written = 0u64;
    let mut error_completion = false;
    let mut last_progress = Instant::now();
    let stalled = |since: Instant| since.elapsed() > job.stall;
    'pump: loop {
        if job.failure.is_set() {
            break;
        }
        if !enc.is_done() && sizes.len() < job.session.per_device {
            let wait = if sizes.is_empty() {
                Duration::from_millis(u64::from(SLICE_MS))
            } else {
                Duration::ZERO
            };
            if let Some(mut buf) = pool.take(wait) {
                let mut read = |off: u64, b: &mut [u8]| job.source.read_at(off, b);
                match enc.next_transfer(&mut read, buf.as_mut_slice()) {
                    Ok(Some(n)) => {
                        let sent = dev.send_command(ServerCommand {
                            code: CommandCode::Write.code(),
                            size: n as u32,
                            position,
                            buffer: Some(buf),
                        });
                        match sent {
                            Ok(id) => {
                                sizes.insert(id, n as u32);
                                position += n as u64;
                            }
                            Err(r) => {
                                if let Some(b) = r.command.buffer {
                                    pool.put(b);
                                }
                                record_vdi_error(job, name, r.error, r.completion_code);
                                break 'pump;
                            }
                        }
                    }
                    Ok(None) => pool.put(buf),
                    Err(e) => {
                        pool.put(buf);
                        job.failure.set(vec![Message::error(
                            messages::MSG_READ_FAILED,
                            format!("Read on database '{}' failed: {e}", job.params.database),
                        )]);
                        break 'pump;
                    }
                }
                continue;
            }
            if sizes.is_empty() {
                if stalled(last_progress) {
                    job.failure.set(vec![stall_message(name, job.stall)]);
                    break;
                }
                continue;
            }
        }
        if sizes.is_empty() {
            break; // the stripe is complete and every Write came back
        }
        match dev.get_completion(SLICE_MS) {
            Ok(c) => {
                last_progress = Instant::now();
                let size = sizes.remove(&c.completion.id).unwrap_or(0);
                if let Some(b) = c.buffer {
                    pool.put(b);
                }
                let code = c.completion.completion_code;
                if code == completion::ERROR_OPERATION_ABORTED {
                    job.failure.set_consequence(vec![messages::device_failure(
                        WRITE_CONTEXT,
                        "write",
                        name,
                        OsError::Win32(code),
                    )]);
                    break;
                }
                if code != completion::ERROR_SUCCESS {
                    // §3.5: the device is now in IO-ERROR.
                    error_completion = true;
                    job.failure.set(vec![messages::device_failure(
                        WRITE_CONTEXT,
                        "write",
                        name,
                        OsError::Win32(code),
                    )]);
                    break;
                }
                if c.completion.bytes_transferred != size {
                    job.failure.set(vec![messages::device_failure_because(
                        WRITE_CONTEXT,
                        "write",
                        name,
                        &format!(
                            "The client completed a {size}-byte VDC_Write with ERROR_SUCCESS but reported {} bytes \
                             transferred.",
                            c.completion.bytes_transferred
                        ),
                    )]);
                    break;
                }
                written += u64::from(size);
                job.progress.add(u64::from(size));
            }
            Err(VdError::Timeout) => {
                if stalled(last_progress) {
                    job.failure.set(vec![stall_message(name, job.stall)]);
                    break;
                }
            }
            Err(e) => {
                record_vdi_error(job, name, e, completion::ERROR_OPERATION_ABORTED);
                break;
            }
        }
    }
    let mut in_flight = sizes.len();
    drain(dev, pool, &mut in_flight, job.stall);
    if error_completion {
        // §3.5: ClearError is delivered once every command outstanding at the error completed;
        // its answer does not save the backup, which fails either way.
        let _ = run_simple(dev, CommandCode::ClearError, job.stall);
    }
    if job.failure.is_set() {
        return written;
    }
    // End of the stripe: make it durable (§3.4).
    match run_simple(dev, CommandCode::Flush, job.stall) {
        Ok(completion::ERROR_SUCCESS) => {}
        Ok(code) => job.failure.set(vec![messages::device_failure(
            "BackupVirtualDeviceFile::RequestDurableMedia",
            "flush",
            name,
            OsError::Win32(code),
        )]),
        Err(e) => record_vdi_error(job, name, e, completion::ERROR_OPERATION_ABORTED),
    }
    written
}

/// A server API error on a device: an abort is a consequence of a failure elsewhere (or of
/// the client's SignalAbort), anything else is the cause.
fn record_vdi_error(job: &Job<'_>, name: &str, e: VdError, completion_code: u32) {
    if e == VdError::Abort {
        job.failure.set_consequence(vec![messages::device_failure(
            WRITE_CONTEXT,
            "write",
            name,
            OsError::Win32(completion_code),
        )]);
    } else {
        job.failure.set(vec![vdi_failure(WRITE_CONTEXT, "write", name, e)]);
    }
}

pub(crate) fn stall_message(name: &str, stall: Duration) -> Message {
    messages::device_failure_because(
        "BackupVirtualDeviceFile",
        "timeout",
        name,
        &format!(
            "Operating system error 0x80770003(VD_E_TIMEOUT): the client completed no command for {} seconds.",
            stall.as_secs()
        ),
    )
}
