//! `vdisim client backup|restore --set NAME --devices N --store DIR [--timeout-ms T]
//! [--request-complete]`: the reference VDI client ([`vdisim::reference_client`]) as a process.
//!
//! This argument shape is also the conformance harness's external-program contract, so it stays
//! stable: `<program> backup|restore --set NAME --devices N --store DIR [--timeout-ms T]
//! [--request-complete]`; exit 0 when the client's side of the operation succeeded, 1 when it
//! failed, 89 when the program does not support what it was asked (the reference client
//! supports every form above and never exits 89), 2 for unusable arguments.
//!
//! Device names (§3.3): the first device is named like the set, the others `<set>_1` ...
//! `<set>_<N-1>`, so the matching statement is
//! `BACKUP DATABASE [db] TO VIRTUAL_DEVICE='<set>', VIRTUAL_DEVICE='<set>_1', ...`.
//! The store holds one file per device, `<store>/stripe-<i>.vdi`.

use std::path::PathBuf;
use std::time::Duration;
use vdisim::reference_client::{self, device_name, stripe_path, Mode, Options, Report};
use vdisim::vdi::features;

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    /// Write the backup stream of every device to the store.
    Backup,
    /// Serve the stripes in the store back as the restore stream.
    Restore,
}

#[derive(clap::Args)]
#[command(
    after_help = "Device names: the first is the set name, then <set>_1 ... <set>_<N-1>; \
store files: <store>/stripe-<i>.vdi. Exit codes: 0 ok, 1 failure, 2 bad arguments, \
89 unsupported (never, for this client)."
)]
pub struct Args {
    /// Whether to take a backup or serve a restore.
    #[arg(value_enum)]
    mode: ModeArg,
    /// Virtual device set name; also the first device's name (§3.3).
    #[arg(long)]
    set: String,
    /// Number of virtual devices (stripes), 1-64.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    devices: u32,
    /// Directory with one file per device (stripe-<i>.vdi).
    #[arg(long)]
    store: PathBuf,
    /// How long to wait for the server (the BACKUP/RESTORE statement) to configure the set, ms.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Ask for VDF_RequestComplete: the server then sends VDC_Complete at the end (§3.4).
    #[arg(long)]
    request_complete: bool,
    /// SQL Server instance (default instance when omitted).
    #[arg(long)]
    instance: Option<String>,
    /// serverTimeOut to request, ms (0 = none; §2.4).
    #[arg(long, default_value_t = 0)]
    server_timeout_ms: u32,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> u8 {
    let mode = match args.mode {
        ModeArg::Backup => Mode::Backup,
        ModeArg::Restore => Mode::Restore,
    };
    let mut opts = Options::new(mode, &args.set, args.devices, &args.store);
    opts.instance = args.instance.clone();
    opts.config_timeout = Duration::from_millis(args.timeout_ms);
    opts.server_timeout_ms = args.server_timeout_ms;
    if args.request_complete {
        opts.features |= features::VDF_REQUEST_COMPLETE;
    }
    if !args.json {
        let what = match mode {
            Mode::Backup => "backup into",
            Mode::Restore => "restore from",
        };
        let names: Vec<String> = (0..args.devices).map(|i| device_name(&args.set, i)).collect();
        println!(
            "vdisim client: {what} {} through set '{}' ({} device(s): {})",
            args.store.display(),
            args.set,
            args.devices,
            names.join(", ")
        );
    }
    match reference_client::run(&opts, || {}) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::json!({ "ok": true, "report": report }));
            } else {
                print_report(&args, &report);
            }
            0
        }
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({ "ok": false, "error": e.to_string() }));
            }
            eprintln!("vdisim client: {e}");
            1
        }
    }
}

fn print_report(args: &Args, r: &Report) {
    if let Some(c) = &r.config {
        println!(
            "  server answered: features 0x{:x}{}, BLOCKSIZE {}, MAXTRANSFERSIZE {}",
            c.features,
            if c.features & features::VDF_COMPLETE_ENABLED != 0 {
                " (VDF_CompleteEnabled)"
            } else {
                ""
            },
            c.blockSize,
            c.maxTransferSize
        );
    }
    for (i, d) in r.devices.iter().enumerate() {
        println!(
            "  device '{}' ({}): {} commands, {} bytes, {} flush, {} complete, {} clear-error, {} not supported; ended with {}",
            d.name,
            stripe_path(&args.store, i as u32).display(),
            d.commands,
            d.bytes,
            d.flushes,
            d.completes,
            d.clear_errors,
            d.not_supported,
            d.ended_with
        );
    }
    println!("  Close: {} after {} ms", r.close_result, r.elapsed_ms);
}
