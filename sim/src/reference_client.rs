//! The reference client: a correct VDI client, written to be read by backup-tool vendors.
//!
//! It follows SPEC §3.1-§3.4: CreateEx, GetConfiguration polled in one-second steps, one
//! thread per device (§3.3: servicing stripes one after another deadlocks), Write/Read/Flush/
//! ClearError/Complete handled and anything else answered ERROR_NOT_SUPPORTED (§2.5), end of
//! data on restore reported as a short count with ERROR_HANDLE_EOF (§3.2), SignalAbort on its
//! own errors, and Close only after every device returned VD_E_CLOSE (§1.2).
//!
//! The store is a directory with one file per device: `stripe-<index>.vdi`.

use crate::client::{ClientVirtualDevice, ClientVirtualDeviceSet, Command};
use crate::vdi::{completion, features, CommandCode, VDConfig, VdError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Whether the client writes a backup to its store or reads one back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    Backup,
    Restore,
}

/// How to run the reference client.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub instance: Option<String>,
    /// The set name; also the first device's name (§3.3).
    pub set: String,
    pub devices: u32,
    pub store: PathBuf,
    /// Extra VDF_* bits to request (e.g. VDF_RequestComplete).
    pub features: u32,
    /// How long to wait for the server to configure the set (the SQL statement to start).
    pub config_timeout: Duration,
    /// GetCommand timeout; on VD_E_TIMEOUT the client simply asks again (§3.6).
    pub command_timeout_ms: u32,
    /// serverTimeOut to request (0 = none).
    pub server_timeout_ms: u32,
}

impl Options {
    pub fn new(mode: Mode, set: &str, devices: u32, store: impl Into<PathBuf>) -> Options {
        Options {
            mode,
            instance: None,
            set: set.to_string(),
            devices,
            store: store.into(),
            features: 0,
            config_timeout: Duration::from_secs(30),
            command_timeout_ms: 1000,
            server_timeout_ms: 0,
        }
    }
}

/// The names the reference client opens: the set name, then `<set>_1` ... `<set>_<n-1>`.
/// `vdisim sql` examples use the same names: `TO VIRTUAL_DEVICE='<set>', VIRTUAL_DEVICE='<set>_1'`.
pub fn device_name(set: &str, index: u32) -> String {
    if index == 0 {
        set.to_string()
    } else {
        format!("{set}_{index}")
    }
}

/// The file that holds device `index`'s stream.
pub fn stripe_path(store: &Path, index: u32) -> PathBuf {
    store.join(format!("stripe-{index}.vdi"))
}

/// What happened on one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceReport {
    pub name: String,
    pub commands: u64,
    pub bytes: u64,
    pub flushes: u64,
    /// VDC_Complete commands (sent only when VDF_RequestComplete was granted, §3.4).
    pub completes: u64,
    /// VDC_ClearError commands (sent after an error completion, §3.5).
    pub clear_errors: u64,
    pub not_supported: u64,
    /// How the device's loop ended: "VD_E_CLOSE" normally.
    pub ended_with: String,
}

/// What happened on the whole set.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub config: Option<VDConfig>,
    pub devices: Vec<DeviceReport>,
    pub close_result: String,
    pub elapsed_ms: u64,
}

/// Why the reference client failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("{call} returned {code}")]
    Vdi { call: &'static str, code: VdError },
    #[error("store: {0}")]
    Store(String),
    #[error("device {device} ended with {code} instead of VD_E_CLOSE")]
    Aborted { device: String, code: VdError },
}

/// Runs the reference client. `created` is called once the set exists, so the caller can
/// start the BACKUP or RESTORE statement (§3.1 step 2 runs on another thread or process).
pub fn run(opts: &Options, created: impl FnOnce()) -> Result<Report, ClientError> {
    let start = Instant::now();
    let files = open_store(opts)?;
    let mut set = ClientVirtualDeviceSet::new();
    let mut request = VDConfig::request(opts.devices, features::VDF_LIKE_PIPE | opts.features);
    request.serverTimeOut = opts.server_timeout_ms;
    set.create_ex(opts.instance.as_deref(), &opts.set, &request)
        .map_err(|code| ClientError::Vdi { call: "CreateEx", code })?;
    created();

    // §3.1 step 3: if the T-SQL fails early we only ever see VD_E_TIMEOUT, so poll in steps.
    let config = loop {
        match set.get_configuration(1000) {
            Ok(c) => break c,
            Err(VdError::Timeout) if start.elapsed() < opts.config_timeout => continue,
            Err(code) => {
                let _ = set.signal_abort();
                let _ = set.close();
                return Err(ClientError::Vdi {
                    call: "GetConfiguration",
                    code,
                });
            }
        }
    };

    let mut devices = Vec::new();
    for i in 0..opts.devices {
        match open_device(&set, &device_name(&opts.set, i)) {
            Ok(d) => devices.push(d),
            Err(code) => {
                let _ = set.signal_abort();
                let _ = set.close();
                return Err(ClientError::Vdi {
                    call: "OpenDevice",
                    code,
                });
            }
        }
    }

    // One thread per device: a client that services stripes in order deadlocks (§3.3).
    let results: Vec<Result<DeviceReport, ClientError>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .zip(files)
            .enumerate()
            .map(|(i, (dev, file))| {
                let set = &set;
                let name = device_name(&opts.set, i as u32);
                s.spawn(move || serve_device(set, dev, file, name, opts.command_timeout_ms))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ClientError::Store("device thread panicked".into())))
            })
            .collect()
    });

    let mut report = Report {
        config: Some(config),
        ..Report::default()
    };
    let mut failure = None;
    for r in results {
        match r {
            Ok(d) => report.devices.push(d),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    // Close only after every device saw VD_E_CLOSE, or after an abort (§1.2).
    let closed = set.close();
    report.close_result = crate::vdi::result_name(&closed).to_string();
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    if let Some(e) = failure {
        return Err(e);
    }
    closed.map_err(|code| ClientError::Vdi { call: "Close", code })?;
    Ok(report)
}

fn open_store(opts: &Options) -> Result<Vec<File>, ClientError> {
    let err = |e: std::io::Error| ClientError::Store(format!("{}: {e}", opts.store.display()));
    if opts.mode == Mode::Backup {
        std::fs::create_dir_all(&opts.store).map_err(err)?;
    }
    (0..opts.devices)
        .map(|i| {
            let path = stripe_path(&opts.store, i);
            let file = match opts.mode {
                Mode::Backup => OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .read(true)
                    .write(true)
                    .open(&path),
                Mode::Restore => File::open(&path),
            };
            file.map_err(|e| ClientError::Store(format!("{}: {e}", path.display())))
        })
        .collect()
}

/// OpenDevice, looping while the server has not published the device yet (VD_E_OPEN).
fn open_device(set: &ClientVirtualDeviceSet, name: &str) -> Result<ClientVirtualDevice, VdError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match set.open_device(name) {
            Err(VdError::Open) if Instant::now() < deadline => continue,
            other => return other,
        }
    }
}

fn serve_device(
    set: &ClientVirtualDeviceSet,
    dev: &ClientVirtualDevice,
    mut file: File,
    name: String,
    timeout_ms: u32,
) -> Result<DeviceReport, ClientError> {
    let mut report = DeviceReport {
        name,
        ..DeviceReport::default()
    };
    loop {
        let mut cmd = match dev.get_command(timeout_ms) {
            Ok(c) => c,
            // No state change on timeout: asking again is the right thing (§3.6).
            Err(VdError::Timeout) => continue,
            Err(VdError::Close) => {
                report.ended_with = VdError::Close.name().to_string();
                return Ok(report);
            }
            Err(code) => {
                report.ended_with = code.name().to_string();
                return Err(ClientError::Aborted {
                    device: report.name,
                    code,
                });
            }
        };
        report.commands += 1;
        let (code, bytes, position) = execute(&mut file, &mut cmd, &mut report);
        let own_error = code != completion::ERROR_SUCCESS
            && !completion::is_end_of_data(code)
            && code != completion::ERROR_NOT_SUPPORTED;
        if let Err(e) = dev.complete_command(&cmd, code, bytes, position) {
            report.ended_with = e.name().to_string();
            return Err(ClientError::Aborted {
                device: report.name,
                code: e,
            });
        }
        if own_error {
            // Our own failure (disk full, I/O error): the backup cannot succeed; say so.
            let _ = set.signal_abort();
            return Err(ClientError::Store(format!(
                "{}: {} failed with Win32 error {code}",
                report.name,
                cmd.command().map_or("command", |c| c.name())
            )));
        }
    }
}

/// Carries out one command on the device's file: (completion code, bytes, position).
fn execute(file: &mut File, cmd: &mut Command, report: &mut DeviceReport) -> (u32, u32, u64) {
    let position = cmd.position();
    match cmd.command() {
        Some(CommandCode::Write) => match file.write_all(cmd.buffer()) {
            Ok(()) => {
                report.bytes += u64::from(cmd.size());
                (completion::ERROR_SUCCESS, cmd.size(), 0)
            }
            Err(e) => (io_error_code(&e), 0, 0),
        },
        Some(CommandCode::Read) => {
            let buf = cmd.buffer_mut();
            let mut filled = 0;
            while filled < buf.len() {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return (io_error_code(&e), 0, 0),
                }
            }
            report.bytes += filled as u64;
            if filled < buf.len() {
                // End of data: a short count with ERROR_HANDLE_EOF (§3.2).
                (completion::ERROR_HANDLE_EOF, filled as u32, 0)
            } else {
                (completion::ERROR_SUCCESS, filled as u32, 0)
            }
        }
        // Flush: make earlier writes durable. Complete: all data was sent; finalise the media
        // (§3.4). For a plain file both mean fsync.
        Some(code @ (CommandCode::Flush | CommandCode::Complete)) => {
            if code == CommandCode::Flush {
                report.flushes += 1;
            } else {
                report.completes += 1;
            }
            match file.sync_data() {
                Ok(()) => (completion::ERROR_SUCCESS, 0, 0),
                Err(e) => (io_error_code(&e), 0, 0),
            }
        }
        Some(CommandCode::ClearError) => {
            report.clear_errors += 1;
            (completion::ERROR_SUCCESS, 0, 0)
        }
        Some(CommandCode::GetPosition) => match file.stream_position() {
            Ok(p) => (completion::ERROR_SUCCESS, 0, p),
            Err(e) => (io_error_code(&e), 0, 0),
        },
        Some(CommandCode::SetPosition) => {
            // With RandomAccess the VDWhence value travels in `size` (§3.4).
            let target = match cmd.size() {
                crate::vdi::whence::VDC_CURRENT => SeekFrom::Current(position as i64),
                crate::vdi::whence::VDC_END => SeekFrom::End(position as i64),
                _ => SeekFrom::Start(position),
            };
            match file.seek(target) {
                Ok(p) => (completion::ERROR_SUCCESS, 0, p),
                Err(e) => (io_error_code(&e), 0, 0),
            }
        }
        _ => {
            report.not_supported += 1;
            (completion::ERROR_NOT_SUPPORTED, 0, 0)
        }
    }
}

fn io_error_code(e: &std::io::Error) -> u32 {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ENOSPC) {
        return completion::ERROR_DISK_FULL;
    }
    // Windows reports ERROR_HANDLE_DISK_FULL (39) or ERROR_DISK_FULL (112) itself.
    #[cfg(windows)]
    if matches!(e.raw_os_error(), Some(39) | Some(112)) {
        return completion::ERROR_DISK_FULL;
    }
    completion::ERROR_IO_DEVICE
}
