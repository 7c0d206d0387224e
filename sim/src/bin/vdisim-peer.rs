//! `vdisim-peer`: a scriptable VDI peer process for two-process tests and experiments.
//!
//! Each mode plays one role over real shared memory and prints one line per observable event
//! (`EVENT <name> <code> ...`) on stdout, flushed at once, so a test in another process can
//! follow it. Exit code 0 when the mode's own expectations held, 1 otherwise, 2 on bad usage.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vdisim::pump::{self, StreamSpec};
use vdisim::reference_client::{self, Mode, Options};
use vdisim::server::ServerCommand;
use vdisim::vdi::{completion, result_name, CommandCode, VDConfig, VdError, INFINITE};
use vdisim::ClientVirtualDeviceSet;

const USAGE: &str = "usage: vdisim-peer <mode> <set> [args]
modes:
  client-backup  <set> <devices> <dir>     reference client storing each device to <dir>
  client-restore <set> <devices> <dir>     reference client serving Reads from <dir>
  client-premature-close <set>             takes one command, then Close without completing it
  client-hold <set> <timeout-ms>           prints every GetCommand result; completes Writes;
                                           stops at VD_E_CLOSE or VD_E_ABORT
  client-abort <set> <after>               completes <after> commands, then SignalAbort
  client-report <set> <devices> <dir> <backup|restore> [request-complete]
                                           reference client; prints `EVENT report <json>`
  client-disk-full <set> <devices> <dir> <nth>
                                           stores Writes to <dir> like client-backup, but answers
                                           device 0's <nth> Write with ERROR_DISK_FULL; answers
                                           ClearError; never aborts on its own
  server-backup  <set> <devices> <bytes>   streams the pattern out of every device
  server-restore <set> <devices> <bytes>   reads every device back and verifies the pattern
  server-hold <set>                        sends one Write, waits for its completion
  server-premature-close <set>             sends one Write, then Close with the device open
  script <set>                             plays the server side step by step: one JSON step per
                                           stdin line, e.g. {\"call\":\"SOpen\"}, one line
                                           `RESULT <json outcome>` per step (the contract of
                                           vdi_conformance::props::remote)";

fn event(parts: &[&str]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "EVENT {}", parts.join(" "));
    let _ = out.flush();
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Option<T> {
    args.get(i)?.parse().ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(set)) = (args.first(), args.get(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match mode.as_str() {
        "client-backup" | "client-restore" => {
            let (Some(devices), Some(dir)) = (arg::<u32>(&args, 2), arg::<PathBuf>(&args, 3)) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            let m = if mode == "client-backup" {
                Mode::Backup
            } else {
                Mode::Restore
            };
            let opts = Options::new(m, set, devices, dir);
            match reference_client::run(&opts, || event(&["created"])) {
                Ok(r) => {
                    event(&["done", &r.close_result]);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        "client-report" => {
            let (Some(devices), Some(dir), Some(m)) = (
                arg::<u32>(&args, 2),
                arg::<PathBuf>(&args, 3),
                args.get(4).map(String::as_str),
            ) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            let m = match m {
                "backup" => Mode::Backup,
                "restore" => Mode::Restore,
                _ => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            };
            let mut opts = Options::new(m, set, devices, dir);
            if args.get(5).map(String::as_str) == Some("request-complete") {
                opts.features |= vdisim::vdi::features::VDF_REQUEST_COMPLETE;
            }
            match reference_client::run(&opts, || event(&["created"])) {
                Ok(r) => {
                    event(&["report", &serde_json::to_string(&r).unwrap_or_default()]);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        "client-disk-full" => {
            let (Some(devices), Some(dir), Some(nth)) =
                (arg::<u32>(&args, 2), arg::<PathBuf>(&args, 3), arg::<u64>(&args, 4))
            else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            disk_full(set, devices, &dir, nth)
        }
        "client-premature-close" => premature_close(set),
        "client-hold" => hold(set, arg(&args, 2).unwrap_or(INFINITE), None),
        "client-abort" => hold(set, INFINITE, Some(arg(&args, 2).unwrap_or(1))),
        "server-backup" | "server-restore" => {
            let (Some(devices), Some(bytes)) = (arg::<u32>(&args, 2), arg::<u64>(&args, 3)) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            server_stream(set, StreamSpec::new(devices, bytes), mode == "server-backup")
        }
        "server-hold" => server_hold(set, false),
        "server-premature-close" => server_hold(set, true),
        "script" => script::run(set),
        m if RELIABILITY_MODES.contains(&m) => reliability_mode(m, set, &args),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            event(&["failed", &e.replace(' ', "_")]);
            eprintln!("vdisim-peer {mode}: {e}");
            ExitCode::from(1)
        }
    }
}

fn client_open(set: &str) -> Result<(ClientVirtualDeviceSet, vdisim::ClientVirtualDevice), String> {
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, set, &VDConfig::request(1, 0))
        .map_err(|e| e.to_string())?;
    event(&["created"]);
    let cfg = vds.get_configuration(20_000);
    event(&["get-configuration", result_name(&cfg)]);
    cfg.map_err(|e| e.to_string())?;
    let dev = vds.open_device(set);
    event(&["open-device", result_name(&dev)]);
    Ok((vds, dev.map_err(|e| e.to_string())?))
}

fn premature_close(set: &str) -> Result<(), String> {
    let (mut vds, dev) = client_open(set)?;
    let cmd = dev.get_command(20_000);
    event(&["get-command", result_name(&cmd)]);
    let _held = cmd.map_err(|e| e.to_string())?;
    let closed = vds.close();
    event(&["close", result_name(&closed)]);
    Ok(())
}

fn hold(set: &str, timeout_ms: u32, abort_after: Option<u32>) -> Result<(), String> {
    let (mut vds, dev) = client_open(set)?;
    let mut completed = 0;
    loop {
        if abort_after == Some(completed) {
            let r = vds.signal_abort();
            event(&["signal-abort", result_name(&r)]);
            let next = dev.get_command(INFINITE);
            event(&["get-command", result_name(&next)]);
            break;
        }
        match dev.get_command(timeout_ms) {
            Ok(cmd) => {
                event(&[
                    "get-command",
                    "NOERROR",
                    &cmd.code().to_string(),
                    &cmd.size().to_string(),
                ]);
                let code = match cmd.command() {
                    Some(CommandCode::Write) | Some(CommandCode::Flush) => completion::ERROR_SUCCESS,
                    _ => completion::ERROR_NOT_SUPPORTED,
                };
                let r = dev.complete_command(&cmd, code, cmd.size(), 0);
                event(&["complete-command", result_name(&r)]);
                completed += 1;
            }
            Err(VdError::Timeout) => event(&["get-command", VdError::Timeout.name()]),
            Err(e) => {
                event(&["get-command", e.name()]);
                if e == VdError::Abort {
                    // §3.6: every later call returns VD_E_ABORT too.
                    let again = dev.get_command(0);
                    event(&["get-command-again", result_name(&again)]);
                }
                break;
            }
        }
    }
    let closed = vds.close();
    event(&["close", result_name(&closed)]);
    Ok(())
}

fn server_stream(set: &str, spec: StreamSpec, write: bool) -> Result<(), String> {
    let server = pump::open_when_created(set, Duration::from_secs(20)).map_err(|e| e.to_string())?;
    event(&["opened"]);
    let devices = pump::configure(&server, &spec, write).map_err(|e| e.to_string())?;
    if write {
        pump::send_stream(&server, &devices, &spec).map_err(|e| e.to_string())?;
    } else {
        pump::receive_stream(&server, &devices, &spec)?;
    }
    let closed = server.close();
    event(&["close", result_name(&closed.result)]);
    closed.result.map_err(|e| e.to_string())
}

fn server_hold(set: &str, premature: bool) -> Result<(), String> {
    let server = pump::open_when_created(set, Duration::from_secs(20)).map_err(|e| e.to_string())?;
    let spec = StreamSpec::new(1, 0);
    let devices = pump::configure(&server, &spec, true).map_err(|e| e.to_string())?;
    let buf = server.allocate_buffer(65536, 0).map_err(|e| e.to_string())?;
    let sent = devices[0].send_command(ServerCommand {
        code: CommandCode::Write.code(),
        size: 65536,
        position: 0,
        buffer: Some(buf),
    });
    event(&["send-command", if sent.is_ok() { "NOERROR" } else { "failed" }]);
    if premature {
        // Let the client pick the command up, then close with the device still open.
        std::thread::sleep(Duration::from_millis(300));
        let closed = server.close();
        let aborted: Vec<String> = closed.aborted.iter().map(|c| c.completion_code.to_string()).collect();
        event(&["close", result_name(&closed.result), &aborted.join(",")]);
        return Ok(());
    }
    let c = devices[0].get_completion(INFINITE);
    match &c {
        Ok(c) => event(&["completion", &c.completion.completion_code.to_string()]),
        Err(e) => event(&["completion", e.name()]),
    }
    let _ = server.close();
    Ok(())
}

/// A client whose device 0 runs out of space at its `nth` Write: it answers that Write with
/// ERROR_DISK_FULL and leaves the decision to the server (ClearError, CloseDevice or SignalAbort,
/// §3.5), reporting what it sees. Writes before the failure are stored like the reference
/// client's, so a later restore from `dir` sees a truncated stripe.
fn disk_full(set: &str, devices: u32, dir: &std::path::Path, nth: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, set, &VDConfig::request(devices, 0))
        .map_err(|e| e.to_string())?;
    event(&["created"]);
    let cfg = vds.get_configuration(20_000);
    event(&["get-configuration", result_name(&cfg)]);
    cfg.map_err(|e| e.to_string())?;
    let mut devs = Vec::new();
    for i in 0..devices {
        let name = reference_client::device_name(set, i);
        let dev = loop {
            match vds.open_device(&name) {
                Err(VdError::Open) => continue,
                other => break other,
            }
        };
        devs.push(dev.map_err(|e| format!("OpenDevice {name}: {e}"))?);
    }
    std::thread::scope(|s| {
        for (i, dev) in devs.iter().enumerate() {
            let path = reference_client::stripe_path(dir, i as u32);
            s.spawn(move || {
                let mut file = std::fs::File::create(&path).ok();
                let mut writes = 0u64;
                loop {
                    let cmd = match dev.get_command(20_000) {
                        Ok(c) => c,
                        Err(e) => {
                            event(&["device-end", &i.to_string(), e.name()]);
                            return;
                        }
                    };
                    let (code, bytes) = match cmd.command() {
                        Some(CommandCode::Write) => {
                            writes += 1;
                            if i == 0 && writes == nth {
                                event(&["write-failed", &i.to_string()]);
                                (completion::ERROR_DISK_FULL, 0)
                            } else {
                                if let Some(f) = file.as_mut() {
                                    let _ = f.write_all(cmd.buffer());
                                }
                                (completion::ERROR_SUCCESS, cmd.size())
                            }
                        }
                        Some(CommandCode::ClearError) => {
                            event(&["clear-error", &i.to_string()]);
                            (completion::ERROR_SUCCESS, 0)
                        }
                        Some(CommandCode::Flush) => (completion::ERROR_SUCCESS, 0),
                        _ => (completion::ERROR_NOT_SUPPORTED, 0),
                    };
                    if let Err(e) = dev.complete_command(&cmd, code, bytes, 0) {
                        event(&["device-end", &i.to_string(), e.name()]);
                        return;
                    }
                }
            });
        }
    });
    let closed = vds.close();
    event(&["close", result_name(&closed)]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reliability modes (issue 8): process death, hostile peers, permissions, racing creators,
// soak. Each prints `EVENT ...` lines; the judging is done by sim/tests/{chaos,hostile,
// permissions}.rs and scripts/{chaos,soak}.sh.
// ---------------------------------------------------------------------------------------------

const RELIABILITY_MODES: [&str; 11] = [
    "engine-sql",
    "chaos-client",
    "chaos-server",
    "hostile-server",
    "hostile-client",
    "open-server",
    "open-secondary",
    "create-hold",
    "configure-hold",
    "soak-client",
    "soak-server",
];

const RELIABILITY_USAGE: &str = "reliability modes (issue 8):
  chaos-client <set> <backup|restore> <devices> <dir> <timeout-ms>
                          reference client with GetConfiguration/GetCommand timeouts of
                          <timeout-ms>; prints `EVENT result <code> ...`
  chaos-server <set> <backup|restore> <devices> <bytes> <timeout-ms> [max-transfer] [depth]
                          pump server (pattern streams); prints `EVENT result <code> ...`
  hostile-server <set> <class>   honest-looking server that then corrupts <class>
  hostile-client <set> <class>   honest-looking client that then corrupts <class>
  open-server <set> [instance]   server Open; prints `EVENT open <code>`
  open-secondary <set> [instance] OpenInSecondary; prints `EVENT open <code>`
  create-hold <set> <hold-ms> [start-at-unix-ms] [instance]
                          CreateEx (at the given instant), holds the set, then Close
  configure-hold <set> <hold-ms>
                          server: configure and open every requested device, hold, then Close
  engine-sql <label> <data-dir> <timeout-ms> <sql>
                          runs a T-SQL batch in the simulated SQL Server (open grace and stall
                          timeout <timeout-ms>); prints `EVENT msg <number>` per message and
                          `EVENT result NOERROR|FAILED <numbers>`
  soak-client <prefix> <devices> <seconds> <seed>
  soak-server <prefix> <devices> <seconds> <seed>
                          one set after another (`<prefix>-<n>`), backups and restores
                          verified byte for byte, with aborts from either side mixed in";

fn reliability_usage() -> Result<(), String> {
    eprintln!("{RELIABILITY_USAGE}");
    Err("bad usage".to_string())
}

fn reliability_mode(mode: &str, set: &str, args: &[String]) -> Result<(), String> {
    match mode {
        "chaos-client" => chaos_client(set, args),
        "engine-sql" => {
            let (Some(dir), Some(timeout), Some(sql)) = (arg::<PathBuf>(args, 2), arg::<u64>(args, 3), args.get(4))
            else {
                return reliability_usage();
            };
            let data = vdisim::engine::database::DataDir::new(dir).map_err(|e| e.to_string())?;
            let engine = vdisim::engine::Engine::new(data, None).with_options(vdisim::engine::EngineOptions {
                open_grace: Duration::from_millis(timeout),
                stall_timeout: Duration::from_millis(timeout),
                ..vdisim::engine::EngineOptions::default()
            });
            event(&["started"]);
            let outcomes = engine.execute_batch(sql);
            let mut numbers = Vec::new();
            for m in outcomes.iter().flat_map(|o| o.messages.iter()) {
                event(&["msg", &m.number.to_string()]);
                numbers.push(m.number.to_string());
            }
            let failed = outcomes.iter().any(|o| o.failed());
            event(&["result", if failed { "FAILED" } else { "NOERROR" }, &numbers.join(",")]);
            Ok(())
        }
        "chaos-server" => chaos_server(set, args),
        "hostile-server" => args.get(2).map_or_else(reliability_usage, |c| hostile::server(set, c)),
        "hostile-client" => args.get(2).map_or_else(reliability_usage, |c| hostile::client(set, c)),
        "open-server" => {
            let r = vdisim::ServerVirtualDeviceSet::open(args.get(2).map(String::as_str), set);
            event(&["open", result_name(&r)]);
            if let Ok(s) = r {
                let _ = s.signal_abort();
                let _ = s.close();
            }
            Ok(())
        }
        "open-secondary" => {
            let mut vds = ClientVirtualDeviceSet::new();
            let r = vds.open_in_secondary(args.get(2).map(String::as_str), set);
            event(&["open", result_name(&r)]);
            Ok(())
        }
        "create-hold" => {
            let Some(hold_ms) = arg::<u64>(args, 2) else {
                return reliability_usage();
            };
            if let Some(at) = arg::<u64>(args, 3).filter(|at| *at > 0) {
                let at = std::time::UNIX_EPOCH + Duration::from_millis(at);
                if let Ok(wait) = at.duration_since(std::time::SystemTime::now()) {
                    std::thread::sleep(wait.min(Duration::from_secs(30)));
                }
            }
            let mut vds = ClientVirtualDeviceSet::new();
            let r = vds.create_ex(args.get(4).map(String::as_str), set, &VDConfig::request(1, 0));
            event(&["create", result_name(&r), &std::process::id().to_string()]);
            if r.is_ok() {
                std::thread::sleep(Duration::from_millis(hold_ms));
                let closed = vds.close();
                event(&["close", result_name(&closed)]);
            }
            Ok(())
        }
        "configure-hold" => {
            let Some(hold_ms) = arg::<u64>(args, 2) else {
                return reliability_usage();
            };
            let server = pump::open_when_created(set, Duration::from_secs(20)).map_err(|e| e.to_string())?;
            let devices = server.get_configuration().map_err(|e| e.to_string())?.deviceCount;
            let devs = pump::configure(&server, &StreamSpec::new(devices, 0), true).map_err(|e| e.to_string())?;
            event(&["configured", &devs.len().to_string()]);
            std::thread::sleep(Duration::from_millis(hold_ms));
            for d in &devs {
                let _ = d.close_device();
            }
            let closed = server.close();
            event(&["close", result_name(&closed.result)]);
            Ok(())
        }
        "soak-client" | "soak-server" => {
            let (Some(devices), Some(seconds), Some(seed)) =
                (arg::<u32>(args, 2), arg::<u64>(args, 3), arg::<u64>(args, 4))
            else {
                return reliability_usage();
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
            if mode == "soak-client" {
                soak::client(set, devices, deadline, seed)
            } else {
                soak::server(set, devices, deadline, seed)
            }
        }
        _ => reliability_usage(),
    }
}

fn chaos_op(args: &[String]) -> Option<bool> {
    match args.get(2).map(String::as_str) {
        Some("backup") => Some(true),
        Some("restore") => Some(false),
        _ => None,
    }
}

/// The reference client with bounded waits. `EVENT result NOERROR` only when the whole
/// backup or restore succeeded; otherwise `EVENT result <VD_E_*|STORE> <detail>`.
fn chaos_client(set: &str, args: &[String]) -> Result<(), String> {
    let (Some(backup), Some(devices), Some(dir), Some(timeout)) = (
        chaos_op(args),
        arg::<u32>(args, 3),
        arg::<PathBuf>(args, 4),
        arg::<u32>(args, 5),
    ) else {
        return reliability_usage();
    };
    let mode = if backup { Mode::Backup } else { Mode::Restore };
    let mut opts = Options::new(mode, set, devices, dir);
    opts.config_timeout = Duration::from_millis(u64::from(timeout));
    opts.command_timeout_ms = timeout;
    match reference_client::run(&opts, || event(&["created"])) {
        Ok(r) => event(&["result", "NOERROR", &r.close_result]),
        Err(e) => {
            let code = match &e {
                reference_client::ClientError::Vdi { code, .. }
                | reference_client::ClientError::Aborted { code, .. } => code.name(),
                _ => "STORE",
            };
            event(&["result", code, &e.to_string().replace(' ', "_")]);
        }
    }
    Ok(())
}

/// The pump server with bounded waits. `EVENT result NOERROR` only when every byte went
/// through (a restore also verified it) and Close succeeded; otherwise `EVENT result <code>
/// <detail>` where code is VD_E_ABORT when the set ended aborted, else the first VD_E_* of
/// the failure.
fn chaos_server(set: &str, args: &[String]) -> Result<(), String> {
    let (Some(backup), Some(devices), Some(bytes), Some(timeout)) = (
        chaos_op(args),
        arg::<u32>(args, 3),
        arg::<u64>(args, 4),
        arg::<u32>(args, 5),
    ) else {
        return reliability_usage();
    };
    let mut spec = StreamSpec::new(devices, bytes);
    spec.timeout_ms = timeout;
    if let Some(max_transfer) = arg::<u32>(args, 6) {
        spec.max_transfer = max_transfer;
    }
    if let Some(depth) = arg::<u32>(args, 7) {
        spec.depth = depth.max(1);
    }
    let server = match pump::open_when_created(set, Duration::from_millis(u64::from(timeout))) {
        Ok(s) => s,
        Err(e) => {
            event(&["result", e.name(), "open"]);
            return Ok(());
        }
    };
    event(&["opened"]);
    let outcome = pump::configure(&server, &spec, backup)
        .map_err(|e| format!("configure: {e}"))
        .and_then(|devs| {
            if backup {
                pump::send_stream(&server, &devs, &spec).map_err(|e| format!("stream: {e}"))
            } else {
                pump::receive_stream(&server, &devs, &spec).map(|_| ())
            }
        });
    let aborted = server.abort_info();
    let last_error = server.last_error().unwrap_or_default();
    let closed = server.close();
    match (&outcome, &closed.result) {
        (Ok(()), Ok(())) => event(&["result", "NOERROR"]),
        _ => {
            let detail = match &outcome {
                Err(e) => e.clone(),
                Ok(()) => format!("close: {}", result_name(&closed.result)),
            };
            let code = if aborted.is_some() {
                "VD_E_ABORT"
            } else {
                VdError::ALL
                    .iter()
                    .find(|e| detail.contains(e.name()))
                    .map_or("OTHER", |e| e.name())
            };
            let why = format!("{detail} / {last_error}").replace(' ', "_");
            event(&["result", code, &why]);
        }
    }
    Ok(())
}

/// Peers that behave until the honest side is set up, then write crafted values into the
/// shared header, rings or buffer area. After the damage they stay alive (so the honest side
/// must detect the bad field, not a dead peer) until the set is aborted, for at most 30 s.
mod hostile {
    use super::event;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use vdisim::pump::{self, StreamSpec};
    use vdisim::server::ServerCommand;
    use vdisim::shm::layout::{abort_by, phase, CommandSlot, CompletionSlot, Ring, SetHeader, NO_BUFFER, RING_SLOTS};
    use vdisim::shm::{self, ring, HeaderMapping};
    use vdisim::vdi::{completion, CommandCode, VDConfig};
    use vdisim::ClientVirtualDeviceSet;

    fn header(set: &str) -> Result<HeaderMapping, String> {
        shm::open_header(shm::DEFAULT_INSTANCE, set, Duration::from_secs(5)).map_err(|e| e.to_string())
    }

    fn wake(h: &SetHeader) {
        ring::notify_all(&h.set_wake);
        for d in h.devices.iter() {
            ring::notify_all(&d.commands.wake.0);
            ring::notify_all(&d.completions.wake.0);
        }
    }

    /// Stays alive until the honest side aborts the set (at most 30 s).
    fn linger(h: &SetHeader) {
        let end = Instant::now() + Duration::from_secs(30);
        while h.abort.load(Ordering::Acquire) == abort_by::NONE && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        event(&["linger-end", &h.abort.load(Ordering::Acquire).to_string()]);
    }

    fn push_command(r: &Ring<CommandSlot>, id: u64, code: u32, size: u32, offset: u64) {
        let tail = r.tail.0.load(Ordering::Acquire);
        let s = &r.slots[(tail % RING_SLOTS as u64) as usize];
        s.id.store(id, Ordering::Relaxed);
        s.code.store(code, Ordering::Relaxed);
        s.size.store(size, Ordering::Relaxed);
        s.position.store(0, Ordering::Relaxed);
        s.buffer_offset.store(offset, Ordering::Relaxed);
        r.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        s.seq.store(tail.wrapping_add(1), Ordering::Release);
        ring::notify_all(&r.wake.0);
    }

    fn push_completion(r: &Ring<CompletionSlot>, id: u64, code: u32, bytes: u32) {
        let tail = r.tail.0.load(Ordering::Acquire);
        let s = &r.slots[(tail % RING_SLOTS as u64) as usize];
        s.id.store(id, Ordering::Relaxed);
        s.code.store(code, Ordering::Relaxed);
        s.bytes.store(bytes, Ordering::Relaxed);
        s.position.store(0, Ordering::Relaxed);
        r.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        s.seq.store(tail.wrapping_add(1), Ordering::Release);
        ring::notify_all(&r.wake.0);
    }

    fn bump(index: &AtomicU64, by: u64) {
        index.fetch_add(by, Ordering::AcqRel);
    }

    /// Writes at a file offset (the segment files of /dev/shm: Unix only in practice; on
    /// Windows the open fails first and the hostile class reports that).
    fn write_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<usize> {
        #[cfg(unix)]
        use std::os::unix::fs::FileExt;
        #[cfg(windows)]
        use std::os::windows::fs::FileExt;
        #[cfg(unix)]
        return file.write_at(bytes, offset);
        #[cfg(windows)]
        return file.seek_write(bytes, offset);
    }

    /// Writes random bytes at random places of the set's header (its fixed fields and the
    /// first device's slot and rings) through the file system, for `duration`.
    fn scribble(set: &str, seed: u64, duration: Duration) -> Result<u64, String> {
        let name = shm::header_segment_name(shm::DEFAULT_INSTANCE, set);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(std::path::Path::new("/dev/shm").join(name.trim_start_matches('/')))
            .map_err(|e| e.to_string())?;
        let span =
            (std::mem::offset_of!(SetHeader, devices) + std::mem::size_of::<vdisim::shm::layout::DeviceSlot>()) as u64;
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let end = Instant::now() + duration;
        let mut writes = 0u64;
        while Instant::now() < end {
            let offset = next() % span;
            let len = (next() % 8 + 1) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = write_at(&file, &bytes, offset);
            writes += 1;
            if writes % 16 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(writes)
    }

    fn wait_client_opened(h: &SetHeader) -> Result<(), String> {
        let end = Instant::now() + Duration::from_secs(20);
        while h.devices[0].client_opened.load(Ordering::Acquire) == 0 {
            if Instant::now() > end || h.abort.load(Ordering::Acquire) != abort_by::NONE {
                return Err("the client never opened device 0".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// A server that configures one device honestly, then damages `class`. Classes that
    /// break configuration act before the client's GetConfiguration (`EVENT ready` tells the
    /// test when to call it); the others act once the client opened device 0.
    pub fn server(set: &str, class: &str) -> Result<(), String> {
        let server = pump::open_when_created(set, Duration::from_secs(20)).map_err(|e| e.to_string())?;
        let mapping = header(set)?;
        let h = mapping.header();
        if class == "phase-garbage" {
            h.phase.store(77, Ordering::Release);
            wake(h);
            event(&["ready"]);
            linger(h);
            let _ = server.close();
            return Ok(());
        }
        let devices = pump::configure(&server, &StreamSpec::new(1, 0), true).map_err(|e| e.to_string())?;
        let area = h.buffer_area_size.load(Ordering::Acquire);
        match class {
            "answer-devices" => h.answer[0].store(9, Ordering::Release),
            "answer-blocksize" => h.answer[7].store(1000, Ordering::Release),
            "buffer-size" => h.buffer_area_size.store(area + (1 << 30), Ordering::Release),
            "buffer-magic" => {
                let generation = h.buffer_generation.load(Ordering::Acquire);
                let name = shm::buffer_segment_name(shm::DEFAULT_INSTANCE, set, generation);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(std::path::Path::new("/dev/shm").join(name.trim_start_matches('/')))
                    .map_err(|e| e.to_string())?;
                write_at(&f, b"GARBAGE!", 0).map_err(|e| e.to_string())?;
            }
            _ => {
                wait_client_opened(h)?;
                let d = &h.devices[0];
                let (write, flush) = (CommandCode::Write.code(), CommandCode::Flush.code());
                match class {
                    "magic" => h.magic.store(0xBAD0_BAD0, Ordering::Release),
                    "version" => h.version.store(99, Ordering::Release),
                    "header-size" => h.header_size.store(12, Ordering::Release),
                    "phase-regress" => h.phase.store(phase::WAITING, Ordering::Release),
                    "cmd-ring-jump" => bump(&d.commands.tail.0, 1000),
                    "cmd-code" => push_command(&d.commands, 1_000_000, 0xDEAD_BEEF, 0, NO_BUFFER),
                    "cmd-code-zero" => push_command(&d.commands, 1_000_000, 0, 0, NO_BUFFER),
                    "cmd-sequence" => {
                        push_command(&d.commands, 1_000_000, flush, 0, NO_BUFFER);
                        push_command(&d.commands, 999_999, flush, 0, NO_BUFFER);
                    }
                    "cmd-offset" => push_command(&d.commands, 1_000_000, write, 65536, area + 4096),
                    "cmd-size" => push_command(&d.commands, 1_000_000, write, u32::MAX, 0),
                    "cmd-overflow" => push_command(&d.commands, 1_000_000, write, 65536, u64::MAX - 100),
                    "cmd-nobuffer" => push_command(&d.commands, 1_000_000, write, 65536, NO_BUFFER),
                    "cmd-buffer-on-flush" => push_command(&d.commands, 1_000_000, flush, 0, 0),
                    "cmpl-ring-head" => {
                        let buf = server.allocate_buffer(65536, 0).map_err(|e| e.to_string())?;
                        devices[0]
                            .send_command(ServerCommand {
                                code: write,
                                size: 65536,
                                position: 0,
                                buffer: Some(buf),
                            })
                            .map_err(|r| r.error.to_string())?;
                        bump(&d.completions.head.0, 1000);
                    }
                    "random" => {
                        event(&["ready"]);
                        let writes = scribble(set, 0x5EED ^ u64::from(std::process::id()), Duration::from_secs(3))?;
                        event(&["scribbled", &writes.to_string()]);
                        linger(h);
                        let _ = server.close();
                        return Ok(());
                    }
                    other => return Err(format!("unknown hostile class {other}")),
                }
            }
        }
        wake(h);
        event(&["ready"]);
        linger(h);
        drop(devices);
        let _ = server.close();
        Ok(())
    }

    /// A client that creates the set and serves honestly, then damages `class`. `request`
    /// and `magic-early` act before any server opens the set; the others once the server's
    /// first command (a Write) has arrived.
    pub fn client(set: &str, class: &str) -> Result<(), String> {
        let mut vds = ClientVirtualDeviceSet::new();
        vds.create_ex(None, set, &VDConfig::request(1, 0))
            .map_err(|e| e.to_string())?;
        let mapping = header(set)?;
        let h = mapping.header();
        event(&["created"]);
        match class {
            "request" => h.request[0].store(0, Ordering::Release),
            "magic-early" => h.magic.store(0xBAD0_BAD0, Ordering::Release),
            "version-early" => h.version.store(7, Ordering::Release),
            _ => {
                vds.get_configuration(20_000).map_err(|e| e.to_string())?;
                let dev = vds.open_device(set).map_err(|e| e.to_string())?;
                let cmd = dev.get_command(20_000).map_err(|e| e.to_string())?;
                let d = &h.devices[0];
                let (id, size) = (cmd.id(), cmd.size());
                match class {
                    "magic" => h.magic.store(0xBAD0_BAD0, Ordering::Release),
                    "version" => h.version.store(99, Ordering::Release),
                    "phase-regress" => h.phase.store(phase::WAITING, Ordering::Release),
                    "phase-garbage" => h.phase.store(1234, Ordering::Release),
                    "cmpl-ring-jump" => bump(&d.completions.tail.0, 1000),
                    "cmpl-unknown" => push_completion(&d.completions, id + 1000, completion::ERROR_SUCCESS, 0),
                    "cmpl-duplicate" => {
                        push_completion(&d.completions, id, completion::ERROR_SUCCESS, size);
                        push_completion(&d.completions, id, completion::ERROR_SUCCESS, size);
                    }
                    "cmpl-bytes" => push_completion(&d.completions, id, completion::ERROR_SUCCESS, size + 1),
                    "cmd-head-jump" => {
                        dev.complete_command(&cmd, completion::ERROR_SUCCESS, size, 0)
                            .map_err(|e| e.to_string())?;
                        bump(&d.commands.head.0, 1000);
                    }
                    "random" => {
                        event(&["ready"]);
                        let writes = scribble(set, 0xC11E ^ u64::from(std::process::id()), Duration::from_secs(3))?;
                        event(&["scribbled", &writes.to_string()]);
                        linger(h);
                        let _ = vds.close();
                        return Ok(());
                    }
                    other => return Err(format!("unknown hostile class {other}")),
                }
                wake(h);
                event(&["ready"]);
                linger(h);
                drop(cmd);
                let _ = vds.close();
                return Ok(());
            }
        }
        wake(h);
        event(&["ready"]);
        // Pre-open damage: the server's Open refuses the set, so nobody will abort it; give the
        // test a bounded time to probe, then remove the set.
        std::thread::sleep(Duration::from_secs(3));
        let _ = vds.close();
        Ok(())
    }
}

/// Long-running streaming for scripts/soak.sh: the client and server processes walk through
/// sets `<prefix>-0`, `<prefix>-1`, ... in step. Both derive each round's plan from the seed
/// and the round number, so they agree on direction, size and who aborts.
mod soak {
    use super::event;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use vdisim::pump::{self, StreamSpec};
    use vdisim::vdi::{completion, CommandCode, VDConfig, VdError};
    use vdisim::ClientVirtualDeviceSet;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Abort {
        None,
        /// The client aborts after this many commands on device 0.
        Client(u64),
        /// The server aborts after this many milliseconds.
        Server(u64),
    }

    struct Plan {
        backup: bool,
        bytes: u64,
        abort: Abort,
    }

    fn plan(seed: u64, round: u64) -> Plan {
        let mut x = (seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let backup = next() % 2 == 0;
        let bytes = (next() % 4 + 1) << 20;
        let abort = match next() % 6 {
            0 => Abort::Client(next() % 4),
            1 => Abort::Server(next() % 40),
            _ => Abort::None,
        };
        Plan { backup, bytes, abort }
    }

    #[derive(Default)]
    struct Tally {
        ok: AtomicU64,
        aborted: AtomicU64,
        errors: AtomicU64,
    }

    impl Tally {
        fn report(&self, who: &str, round: u64) {
            event(&[
                "soak-progress",
                who,
                &round.to_string(),
                &format!("ok={}", self.ok.load(Ordering::Relaxed)),
                &format!("aborted={}", self.aborted.load(Ordering::Relaxed)),
                &format!("errors={}", self.errors.load(Ordering::Relaxed)),
            ]);
        }
    }

    pub fn client(prefix: &str, devices: u32, deadline: Instant, seed: u64) -> Result<(), String> {
        let tally = Tally::default();
        let mut round = 0u64;
        while Instant::now() < deadline {
            let p = plan(seed, round);
            let set = format!("{prefix}-{round}");
            match client_round(&set, devices, &p) {
                Ok(()) => tally.ok.fetch_add(1, Ordering::Relaxed),
                Err(e) if e == VdError::Abort.name() && p.abort != Abort::None => {
                    tally.aborted.fetch_add(1, Ordering::Relaxed)
                }
                Err(e) => {
                    event(&["soak-error", "client", &round.to_string(), &e.replace(' ', "_")]);
                    tally.errors.fetch_add(1, Ordering::Relaxed)
                }
            };
            round += 1;
            if round % 10 == 0 {
                tally.report("client", round);
            }
        }
        tally.report("client", round);
        event(&["soak-done", "client"]);
        Ok(())
    }

    fn client_round(set: &str, devices: u32, p: &Plan) -> Result<(), String> {
        let mut vds = ClientVirtualDeviceSet::new();
        vds.create_ex(None, set, &VDConfig::request(devices, 0))
            .map_err(|e| e.name().to_string())?;
        let result = (|| -> Result<(), String> {
            vds.get_configuration(30_000).map_err(|e| e.name().to_string())?;
            let mut devs = Vec::new();
            for i in 0..devices {
                let name = vdisim::reference_client::device_name(set, i);
                let end = Instant::now() + Duration::from_secs(30);
                let dev = loop {
                    match vds.open_device(&name) {
                        Err(VdError::Open) if Instant::now() < end => continue,
                        other => break other.map_err(|e| e.name().to_string())?,
                    }
                };
                devs.push(dev);
            }
            let vds = &vds;
            std::thread::scope(|s| {
                let handles: Vec<_> = devs.iter().map(|dev| s.spawn(move || serve(vds, dev, p))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err("device thread panicked".into())))
                    .collect::<Result<Vec<()>, String>>()
            })?;
            Ok(())
        })();
        let closed = vds.close();
        result?;
        closed.map_err(|e| format!("close {}", e.name()))
    }

    fn serve(vds: &ClientVirtualDeviceSet, dev: &vdisim::ClientVirtualDevice, p: &Plan) -> Result<(), String> {
        let device = dev.index() as u32;
        let mut commands = 0u64;
        loop {
            if let Abort::Client(after) = p.abort {
                if device == 0 && commands == after {
                    let _ = vds.signal_abort();
                }
            }
            let mut cmd = match dev.get_command(5_000) {
                Ok(c) => c,
                Err(VdError::Timeout) => continue,
                Err(VdError::Close) => return Ok(()),
                Err(e) => return Err(e.name().to_string()),
            };
            commands += 1;
            let (code, bytes) = match cmd.command() {
                Some(CommandCode::Write) => {
                    if let Some(bad) = pump::check_pattern(device, cmd.position(), cmd.buffer()) {
                        return Err(format!("device {device}: written byte {bad} differs"));
                    }
                    (completion::ERROR_SUCCESS, cmd.size())
                }
                Some(CommandCode::Read) => {
                    let start = cmd.position();
                    let n = p.bytes.saturating_sub(start).min(u64::from(cmd.size())) as usize;
                    pump::fill_pattern(device, start, &mut cmd.buffer_mut()[..n]);
                    let code = if n < cmd.size() as usize {
                        completion::ERROR_HANDLE_EOF
                    } else {
                        completion::ERROR_SUCCESS
                    };
                    (code, n as u32)
                }
                Some(CommandCode::Flush) | Some(CommandCode::ClearError) => (completion::ERROR_SUCCESS, 0),
                _ => (completion::ERROR_NOT_SUPPORTED, 0),
            };
            dev.complete_command(&cmd, code, bytes, 0)
                .map_err(|e| e.name().to_string())?;
        }
    }

    pub fn server(prefix: &str, devices: u32, deadline: Instant, seed: u64) -> Result<(), String> {
        let tally = Tally::default();
        let mut round = 0u64;
        loop {
            // Past the deadline the client stops creating sets: a short wait ends the soak.
            let wait = if Instant::now() < deadline {
                Duration::from_secs(60)
            } else {
                Duration::from_secs(10)
            };
            let set = format!("{prefix}-{round}");
            let server = match pump::open_when_created(&set, wait) {
                Ok(s) => s,
                Err(_) if Instant::now() >= deadline => break,
                Err(e) => return Err(format!("round {round}: open {}", e.name())),
            };
            let p = plan(seed, round);
            let mut spec = StreamSpec::new(devices, p.bytes);
            spec.timeout_ms = 30_000;
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let outcome = std::thread::scope(|s| {
                if let Abort::Server(ms) = p.abort {
                    let server = &server;
                    s.spawn(move || {
                        if rx.recv_timeout(Duration::from_millis(ms)).is_err() {
                            let _ = server.signal_abort();
                        }
                    });
                }
                let r = pump::configure(&server, &spec, p.backup)
                    .map_err(|e| e.name().to_string())
                    .and_then(|devs| {
                        if p.backup {
                            pump::send_stream(&server, &devs, &spec).map_err(|e| e.name().to_string())
                        } else {
                            pump::receive_stream(&server, &devs, &spec).map(|_| ())
                        }
                    });
                let _ = tx.send(());
                r
            });
            let aborted = server.abort_info().is_some();
            let closed = server.close();
            match (outcome, closed.result) {
                (Ok(()), Ok(())) => tally.ok.fetch_add(1, Ordering::Relaxed),
                _ if aborted && p.abort != Abort::None => tally.aborted.fetch_add(1, Ordering::Relaxed),
                (r, c) => {
                    let why = format!("{r:?}/{c:?}").replace(' ', "_");
                    event(&["soak-error", "server", &round.to_string(), &why]);
                    tally.errors.fetch_add(1, Ordering::Relaxed)
                }
            };
            round += 1;
            if round % 10 == 0 {
                tally.report("server", round);
            }
        }
        tally.report("server", round);
        event(&["soak-done", "server"]);
        Ok(())
    }
}

/// `script` mode: the server side of the property-based scenarios (issue 5), driven over a
/// pipe. Mirrors `vdi_conformance::props::driver::exec_server` (which this binary cannot
/// depend on: the conformance crate depends on vdisim).
mod script {
    use serde_json::{json, Value};
    use std::io::{BufRead, Write};
    use vdisim::protocol::server::ConfigParams;
    use vdisim::reference_client::device_name;
    use vdisim::server::{ServerCommand, ServerVirtualDevice, ServerVirtualDeviceSet};
    use vdisim::vdi::{CommandCode, VdError};

    fn code(r: Result<(), VdError>) -> Value {
        json!({ "result": r.err().map_or("NOERROR", |e| e.name()) })
    }

    fn field(v: &Value, name: &str) -> u64 {
        v.get(name).and_then(Value::as_u64).unwrap_or(0)
    }

    fn send(d: &ServerVirtualDevice, cmd: ServerCommand) -> Value {
        match d.send_command(cmd) {
            Ok(_) => json!({ "result": "NOERROR" }),
            Err(r) => json!({ "result": r.error.name(), "completion": r.completion_code }),
        }
    }

    fn step(
        set: &str,
        server: &mut Option<ServerVirtualDeviceSet>,
        devices: &mut Vec<ServerVirtualDevice>,
        v: &Value,
    ) -> Value {
        let call = v.get("call").and_then(Value::as_str).unwrap_or("");
        if call == "SOpen" {
            return match ServerVirtualDeviceSet::open(None, set) {
                Ok(s) => {
                    *server = Some(s);
                    json!({ "result": "NOERROR" })
                }
                Err(e) => json!({ "result": e.name() }),
            };
        }
        let Some(s) = server.as_ref() else {
            return json!({ "result": "NO-HANDLE" });
        };
        let dev = devices.get(field(v, "dev") as usize);
        match (call, dev) {
            ("SGetConfiguration", _) => code(s.get_configuration().map(|_| ())),
            ("SBeginConfiguration", _) => {
                let c = v.get("config").cloned().unwrap_or(Value::Null);
                code(s.begin_configuration(ConfigParams {
                    features: field(&c, "features") as u32,
                    alignment: 0,
                    block_size: field(&c, "block_size") as u32,
                    max_transfer_size: field(&c, "max_transfer_size") as u32,
                    timeout_ms: 1000,
                }))
            }
            ("SRequestBuffers", _) => code(s.request_buffers(field(v, "size") as u32, 0, field(v, "count") as u32)),
            ("SEndConfiguration", _) => code(s.end_configuration().map(|_| ())),
            ("SOpenDevice", _) => {
                let name = match v.get("name").and_then(Value::as_str) {
                    Some("duplicate") => device_name(set, 0),
                    Some("bad") => "bad/name".to_string(),
                    _ => device_name(set, devices.len() as u32),
                };
                match s.open_device(&name) {
                    Ok(d) => {
                        devices.push(d);
                        json!({ "result": "NOERROR" })
                    }
                    Err(e) => json!({ "result": e.name() }),
                }
            }
            ("SSend", Some(d)) => {
                let (c, size) = (field(v, "code") as u32, field(v, "size") as u32);
                let buffer = if CommandCode::from_code(c).is_some_and(|x| x.has_buffer()) {
                    match s.allocate_buffer(size, 0) {
                        Ok(b) => Some(b),
                        Err(e) => return json!({ "result": format!("AllocateBuffer:{}", e.name()) }),
                    }
                } else {
                    None
                };
                send(
                    d,
                    ServerCommand {
                        code: c,
                        size,
                        position: field(v, "position"),
                        buffer,
                    },
                )
            }
            ("SFlood", Some(d)) => {
                let mut sent = 0u32;
                loop {
                    let cmd = ServerCommand {
                        code: CommandCode::Flush.code(),
                        size: 0,
                        position: 0,
                        buffer: None,
                    };
                    let mut o = send(d, cmd);
                    if o["result"] != "NOERROR" || sent > 1000 {
                        o["sent"] = json!(sent);
                        return o;
                    }
                    sent += 1;
                }
            }
            ("SGetCompletion", Some(d)) => match d.get_completion(0) {
                Ok(c) => json!({
                    "result": "NOERROR",
                    "command": c.completion.command,
                    "completion": c.completion.completion_code,
                    "bytes": c.completion.bytes_transferred,
                    "position": c.completion.position,
                }),
                Err(e) => json!({ "result": e.name() }),
            },
            ("SCloseDevice", Some(d)) => code(d.close_device()),
            ("SSignalAbort", _) => code(s.signal_abort()),
            ("SClose", _) => {
                let c = s.close();
                json!({ "result": c.result.err().map_or("NOERROR", |e| e.name()), "aborted": c.aborted.len() })
            }
            (_, None) => json!({ "result": "NO-HANDLE" }),
            _ => json!({ "result": "NOT-A-SERVER-STEP" }),
        }
    }

    pub fn run(set: &str) -> Result<(), String> {
        let mut server = None;
        let mut devices = Vec::new();
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let line = line.map_err(|e| e.to_string())?;
            let out = match serde_json::from_str::<Value>(&line) {
                Ok(v) => step(set, &mut server, &mut devices, &v),
                Err(e) => json!({ "result": format!("BAD-STEP {e}") }),
            };
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "RESULT {out}");
            let _ = o.flush();
        }
        Ok(())
    }
}
