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
  server-premature-close <set>             sends one Write, then Close with the device open";

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
