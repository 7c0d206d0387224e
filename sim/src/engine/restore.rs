//! RESTORE DATABASE|LOG from virtual devices (SPEC §3.2, §3.3, §3.5).
//!
//! After [`Session::start`] with VDF_ReadMedia: one thread per device issues VDC_Read of
//! MAXTRANSFERSIZE into buffers from the shared pool and feeds what comes back, in the order the
//! Reads were sent, to its stripe's [`StripeDecoder`]. A Read completed with ERROR_HANDLE_EOF or
//! ERROR_NO_DATA_DETECTED (or zero bytes) ends the stripe. The [`RestoreVerifier`] shared by all
//! devices checks that the stripes belong together and that none is missing.
//!
//! BLOCKSIZE (§3.3): the media header sits in the first 512 bytes whatever the BLOCKSIZE, so a
//! RESTORE without BLOCKSIZE configures the set with 512 (every transfer is then a multiple of
//! it) and adopts the backup's BLOCKSIZE from the header; a RESTORE naming another BLOCKSIZE
//! than the backup's fails, naming both.
//!
//! Data goes to a [`RestoreTarget`] (a temp file) created when the first header arrives and put
//! in place only when every stripe verified, so a failed RESTORE never leaves a database that
//! looks valid. Without REPLACE an existing database is never overwritten (3154 / 3159).

use super::backup::{stall_message, vdi_failure};
use super::database::{RestoreTarget, PAGE_SIZE};
use super::executor::{Engine, ExecResult, TransferStats};
use super::messages::{self, Message, OsError};
use super::session::{drain, lock, run_simple, Failure, Progress, Session, SessionSpec, SLICE_MS};
use super::stream::{
    self, DecoderExpectations, MediaHeader, RestoreVerifier, StreamError, StreamKind, StripeDecoder, MEDIA_HEADER_LEN,
};
use super::tsql::{BackupKind, Restore, MIN_BLOCKSIZE};
use crate::server::{ServerCommand, ServerCompletion, ServerVirtualDevice};
use crate::vdi::{completion, features, CommandCode, VdError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

const READ_CONTEXT: &str = "BackupMedium::ReportIoError";

/// Where verified payloads go.
enum Target {
    /// RESTORE DATABASE: the database being restored.
    Db(RestoreTarget),
    /// RESTORE LOG: the log is verified and replayed by nobody (vdisim keeps no log).
    Discard,
}

struct Job<'a> {
    engine: &'a Engine,
    stmt: &'a Restore,
    session: &'a Session,
    failure: Failure,
    progress: Progress,
    verifier: Mutex<RestoreVerifier>,
    /// The accepted reference header, once the first stripe's arrived.
    header: Mutex<Option<MediaHeader>>,
    target: RwLock<Option<Target>>,
    stall: Duration,
    maxtransfersize: u32,
}

/// Runs a RESTORE statement; `op` is "RESTORE DATABASE" or "RESTORE LOG".
pub(crate) fn run(engine: &Engine, r: &Restore, op: &str) -> ExecResult {
    let maxtransfersize = r.effective_maxtransfersize();
    let buffercount = r.effective_buffercount();
    let session = Session::start(&SessionSpec {
        instance: engine.instance(),
        devices: &r.devices,
        media: features::VDF_READ_MEDIA,
        // VDC_Complete ends a backup's media (§3.4); a restore never sends it.
        offers_complete: false,
        blocksize: r.options.blocksize.unwrap_or(MIN_BLOCKSIZE),
        maxtransfersize,
        buffercount,
        open_grace: engine.options().open_grace,
        context: "RestoreVirtualDeviceSet",
    })?;
    let start = Instant::now();
    let job = Job {
        engine,
        stmt: r,
        session: &session,
        failure: Failure::default(),
        progress: Progress::new(engine.progress(), r.options.stats),
        verifier: Mutex::new(RestoreVerifier::new()),
        header: Mutex::new(None),
        target: RwLock::new(None),
        stall: engine.options().stall_timeout,
        maxtransfersize,
    };
    let stream_bytes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = session
            .devices
            .iter()
            .zip(&session.names)
            .enumerate()
            .map(|(i, (dev, name))| {
                let job = &job;
                s.spawn(move || device_restore(job, dev, i as u32, name))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let verified = if job.failure.is_set() {
        None
    } else {
        let verifier = std::mem::take(&mut *lock(&job.verifier));
        match verifier.finish() {
            Ok(h) => Some(h),
            Err(e) => {
                job.failure.set(stream_error_messages(&e, &session.names));
                None
            }
        }
    };
    if let Some(header) = &verified {
        for (dev, name) in session.devices.iter().zip(&session.names) {
            if let Err(e) = dev.close_device() {
                job.failure
                    .set(vec![vdi_failure("RestoreVirtualDeviceFile::Close", "Close", name, e)]);
                break;
            }
        }
        if !job.failure.is_set() {
            let closed = session.set.close();
            if let Err(e) = closed.result {
                job.failure.set(vec![vdi_failure(
                    "RestoreVirtualDeviceSet::Close",
                    "Close",
                    &session.names[0],
                    e,
                )]);
            }
        }
        if !job.failure.is_set() {
            let target = job.target.write().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(Target::Db(t)) = target {
                if let Err(e) = t.commit() {
                    job.failure.set(vec![match e {
                        super::database::DbError::Exists(_) => needs_replace_message(&r.database, header),
                        other => super::executor::db_error(&r.database, &other),
                    }]);
                }
            }
        }
        if !job.failure.is_set() {
            let elapsed = start.elapsed();
            let pages = header.database_size.div_ceil(PAGE_SIZE as u64);
            let file = match header.kind {
                StreamKind::Database => header.database.clone(),
                StreamKind::Log => format!("{}_log", header.database),
            };
            let mut out = job.progress.percent_messages();
            out.push(messages::processed_pages(pages, &r.database, &file));
            out.push(messages::success(op, pages, elapsed));
            return Ok((
                out,
                Some(TransferStats {
                    bytes: header.database_size,
                    pages,
                    stream_bytes,
                    devices: r.devices.len(),
                    blocksize: header.blocksize,
                    maxtransfersize,
                    buffercount,
                    complete_enabled: false,
                    elapsed,
                }),
            ));
        }
    }
    // Failure: the half-written target (if any) is dropped, which deletes its temp file.
    drop(job.target.write().unwrap_or_else(|p| p.into_inner()).take());
    let m = job.failure.take();
    session.abort();
    Err(m)
}

/// A server API error on a device: an abort is a consequence, anything else the cause.
fn record_vdi_error(job: &Job<'_>, name: &str, e: VdError) {
    let m = vec![vdi_failure(READ_CONTEXT, "read", name, e)];
    if e == VdError::Abort {
        job.failure.set_consequence(m);
    } else {
        job.failure.set(m);
    }
}

fn needs_replace_message(target: &str, h: &MediaHeader) -> Message {
    if h.database == target {
        messages::tail_log(target)
    } else {
        messages::needs_replace(target, &h.database)
    }
}

/// A stream error as SQL Server-style messages naming the device (stripe i = i-th device).
pub(crate) fn stream_error_messages(e: &StreamError, names: &[String]) -> Vec<Message> {
    let dev = |stripe: u32| {
        names
            .get(stripe as usize)
            .or(names.first())
            .map_or("", String::as_str)
            .to_string()
    };
    let why = e.to_string();
    vec![match e {
        StreamError::StripeCountMismatch { backup, restore } => messages::families_mismatch(*backup, *restore),
        StreamError::NotABackup { stripe }
        | StreamError::UnsupportedVersion { stripe, .. }
        | StreamError::HeaderCorrupt { stripe, .. }
        | StreamError::DifferentBackupSet { stripe, .. }
        | StreamError::HeadersDisagree { stripe, .. }
        | StreamError::WrongStripe { expected: stripe, .. } => messages::bad_media_family(&dev(*stripe), &why),
        StreamError::BlocksizeMismatch { .. } => messages::bad_media_family(&dev(0), &why),
        StreamError::RecordCorrupt { stripe, .. }
        | StreamError::OutOfOrder { stripe, .. }
        | StreamError::Duplicate { stripe, .. }
        | StreamError::Missing { stripe, .. }
        | StreamError::Truncated { stripe, .. }
        | StreamError::TrailingGarbage { stripe }
        | StreamError::TrailerCorrupt { stripe, .. }
        | StreamError::StripeMissing { stripe } => messages::damage(&dev(*stripe), &why),
        StreamError::BadParams(_) | StreamError::Io(_) => Message::error(
            3634,
            format!(
                "The operating system returned an error while attempting 'WriteFile' on the restored database: {why}."
            ),
        ),
    }]
}

impl Job<'_> {
    fn stream_failed(&self, e: &StreamError) {
        self.failure.set(stream_error_messages(e, &self.session.names));
    }

    /// A stripe's header arrived and its decoder accepted it: check it against the others and,
    /// for the first one, the statement (kind, REPLACE, MOVE) and create the target.
    fn accept_header(&self, h: &MediaHeader, device: &str) -> Result<(), Vec<Message>> {
        lock(&self.verifier)
            .check_header(h)
            .map_err(|e| stream_error_messages(&e, &self.session.names))?;
        let mut reference = lock(&self.header);
        if reference.is_some() {
            return Ok(());
        }
        let r = self.stmt;
        let wanted = match r.kind {
            BackupKind::Database => StreamKind::Database,
            BackupKind::Log => StreamKind::Log,
        };
        if h.kind != wanted {
            let created_by = match h.kind {
                StreamKind::Database => "BACKUP DATABASE",
                StreamKind::Log => "BACKUP LOG",
            };
            return Err(vec![messages::wrong_kind(device, created_by)]);
        }
        // MOVE 'logical' TO 'path': the logical files of a vdisim database are its name and
        // <name>_log; the path is accepted and ignored (databases live in the data directory).
        for (logical, _) in &r.options.moves {
            if *logical != h.database && *logical != format!("{}_log", h.database) {
                return Err(vec![messages::no_logical_file(logical, &h.database)]);
            }
        }
        let data = self.engine.data_dir();
        let target = match r.kind {
            BackupKind::Database => {
                if data.exists(&r.database) && !r.options.replace {
                    return Err(vec![needs_replace_message(&r.database, h)]);
                }
                match data.begin_restore(&r.database, h.database_size, r.options.replace) {
                    Ok(t) => Target::Db(t),
                    Err(super::database::DbError::Exists(_)) => {
                        return Err(vec![needs_replace_message(&r.database, h)])
                    }
                    Err(e) => return Err(vec![super::executor::db_error(&r.database, &e)]),
                }
            }
            BackupKind::Log => {
                if !data.exists(&r.database) {
                    return Err(vec![messages::no_rollforward(&r.database)]);
                }
                Target::Discard
            }
        };
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = Some(target);
        self.progress.set_total(h.database_size);
        *reference = Some(h.clone());
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let guard = self.target.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(Target::Db(t)) => t.write_at(offset, data)?,
            Some(Target::Discard) => {}
            None => return Err(std::io::Error::other("no restore target")),
        }
        self.progress.add(data.len() as u64);
        Ok(())
    }
}

/// One stripe's decoding state: the first 512 bytes are collected before the decoder exists,
/// because the BLOCKSIZE to expect may come from the header itself.
struct StripeReader {
    stripe: u32,
    head: Vec<u8>,
    decoder: Option<StripeDecoder>,
    bytes: u64,
}

impl StripeReader {
    fn feed(&mut self, job: &Job<'_>, device: &str, mut data: &[u8]) -> Result<(), Vec<Message>> {
        self.bytes += data.len() as u64;
        let stream_err = |e: StreamError| stream_error_messages(&e, &job.session.names);
        if self.decoder.is_none() {
            let take = (MEDIA_HEADER_LEN - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.head.len() < MEDIA_HEADER_LEN {
                return Ok(());
            }
            let h = stream::read_media_header(&self.head, self.stripe).map_err(stream_err)?;
            let blocksize = job.stmt.options.blocksize.unwrap_or(h.blocksize);
            let mut dec = StripeDecoder::new(DecoderExpectations {
                stripe_index: self.stripe,
                stripes: job.session.names.len() as u32,
                blocksize,
                backup_id: lock(&job.verifier).backup_id(),
            });
            // The header unit holds no payload, so nothing reaches the sink yet.
            dec.feed(&self.head, &mut |_, _| Ok(())).map_err(stream_err)?;
            let accepted = dec
                .header()
                .cloned()
                .ok_or_else(|| stream_err(StreamError::NotABackup { stripe: self.stripe }))?;
            job.accept_header(&accepted, device)?;
            self.decoder = Some(dec);
        }
        if let Some(dec) = &mut self.decoder {
            dec.feed(data, &mut |off, bytes| job.write(off, bytes))
                .map_err(stream_err)?;
        }
        Ok(())
    }
}

/// One device's thread: Reads until end of data, verified and written as they arrive.
/// Returns the stream bytes read.
fn device_restore(job: &Job<'_>, dev: &ServerVirtualDevice, stripe: u32, name: &str) -> u64 {
    let pool = &job.session.pool;
    let size = job.maxtransfersize;
    let mut reader = StripeReader {
        stripe,
        head: Vec::with_capacity(MEDIA_HEADER_LEN),
        decoder: None,
        bytes: 0,
    };
    // Reads in the order sent; completions are applied in that order whatever order they
    // arrive in.
    let mut pending: VecDeque<u64> = VecDeque::new();
    let mut arrived: HashMap<u64, ServerCompletion> = HashMap::new();
    let mut eof = false;
    let mut error_completion = false;
    let mut last_progress = Instant::now();
    let mut position = 0u64;
    'pump: loop {
        if job.failure.is_set() {
            break;
        }
        let complete = reader.decoder.as_ref().is_some_and(StripeDecoder::is_complete);
        if !eof && !complete && pending.len() < job.session.per_device {
            let wait = if pending.is_empty() {
                Duration::from_millis(u64::from(SLICE_MS))
            } else {
                Duration::ZERO
            };
            if let Some(buf) = pool.take(wait) {
                let sent = dev.send_command(ServerCommand {
                    code: CommandCode::Read.code(),
                    size,
                    position,
                    buffer: Some(buf),
                });
                match sent {
                    Ok(id) => {
                        pending.push_back(id);
                        position += u64::from(size);
                    }
                    Err(r) => {
                        if let Some(b) = r.command.buffer {
                            pool.put(b);
                        }
                        record_vdi_error(job, name, r.error);
                        break 'pump;
                    }
                }
                continue;
            }
            if pending.is_empty() {
                if last_progress.elapsed() > job.stall {
                    job.failure.set(vec![stall_message(name, job.stall)]);
                    break;
                }
                continue;
            }
        }
        if pending.is_empty() {
            break; // end of data reached and every Read came back
        }
        match dev.get_completion(SLICE_MS) {
            Ok(c) => {
                last_progress = Instant::now();
                arrived.insert(c.completion.id, c);
            }
            Err(VdError::Timeout) => {
                if last_progress.elapsed() > job.stall {
                    job.failure.set(vec![stall_message(name, job.stall)]);
                    break;
                }
                continue;
            }
            Err(e) => {
                record_vdi_error(job, name, e);
                break;
            }
        }
        while let Some(c) = pending.front().and_then(|id| arrived.remove(id)) {
            pending.pop_front();
            let code = c.completion.completion_code;
            let n = c.completion.bytes_transferred as usize;
            let result = match (&c.buffer, eof) {
                // Reads queued behind the end of data: failed by the IO-ERROR rule (§3.5) or
                // answered with EOF again; any data there is data after the end.
                (_, true) if code == completion::ERROR_IO_DEVICE || n == 0 => Ok(()),
                (Some(_), true) => Err(stream_error_messages(
                    &StreamError::TrailingGarbage { stripe },
                    &job.session.names,
                )),
                (Some(buf), false) if code == completion::ERROR_SUCCESS || completion::is_end_of_data(code) => {
                    let data = buf.as_slice().get(..n).unwrap_or_default();
                    let fed = reader.feed(job, name, data);
                    // §3.2: a short count with ERROR_HANDLE_EOF (or ERROR_NO_DATA_DETECTED)
                    // ends the data; vdisim also takes a successful Read of zero bytes as the end.
                    if completion::is_end_of_data(code) || n == 0 {
                        eof = true;
                    }
                    fed
                }
                _ if code == completion::ERROR_OPERATION_ABORTED => {
                    job.failure.set_consequence(vec![messages::device_failure(
                        READ_CONTEXT,
                        "read",
                        name,
                        OsError::Win32(code),
                    )]);
                    Ok(())
                }
                _ => {
                    error_completion = code != completion::ERROR_SUCCESS;
                    Err(vec![messages::device_failure(
                        READ_CONTEXT,
                        "read",
                        name,
                        OsError::Win32(code),
                    )])
                }
            };
            if let Some(b) = c.buffer {
                pool.put(b);
            }
            if let Err(m) = result {
                job.failure.set(m);
            }
            if job.failure.is_set() {
                break 'pump;
            }
        }
    }
    // Completions that arrived out of order and were never applied are no longer in flight.
    let mut in_flight = pending.len().saturating_sub(arrived.len());
    for (_, c) in arrived.drain() {
        if let Some(b) = c.buffer {
            pool.put(b);
        }
    }
    drain(dev, pool, &mut in_flight, job.stall);
    if error_completion {
        let _ = run_simple(dev, CommandCode::ClearError, job.stall);
    }
    if job.failure.is_set() {
        return reader.bytes;
    }
    let result = match reader.decoder.take() {
        Some(dec) => dec.finish().and_then(|s| lock(&job.verifier).add_stripe(&s)),
        None if reader.bytes == 0 => Err(StreamError::NotABackup { stripe }),
        None => Err(StreamError::Truncated {
            stripe,
            bytes: reader.bytes,
        }),
    };
    if let Err(e) = result {
        job.stream_failed(&e);
    }
    reader.bytes
}
