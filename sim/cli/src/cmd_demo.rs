//! `vdisim demo`: the main job. Creates a database, backs it up through N virtual devices with
//! the reference client running as a separate process (`vdisim client backup`), restores it
//! under a new name the same way (`vdisim client restore`), and checks that the restored
//! database is byte-identical. Exit 0 only if all of that held.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vdisim::engine::database::DataDir;
use vdisim::engine::{Engine, StatementOutcome};
use vdisim::reference_client::device_name;

const SOURCE_DB: &str = "vdisim_demo";
const RESTORED_DB: &str = "vdisim_demo_restored";
/// Shared-memory budget for the transfer buffers (BUFFERCOUNT x MAXTRANSFERSIZE), small enough
/// for a container's default 64 MiB /dev/shm.
const BUFFER_BUDGET: u32 = 32 << 20;
/// How long the client process may take after the statement ended.
const CLIENT_EXIT_WAIT: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct Args {
    /// Number of virtual devices (stripes), 1-64.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    devices: u32,
    /// Database size in bytes; K, M, G suffixes (powers of 1024) accepted.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    size: u64,
    /// Data directory to use (default: a fresh temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the databases and the backup files (stripe-<i>.vdi) afterwards.
    #[arg(long)]
    keep: bool,
    /// Skip the conformance suite (the backup and restore still run).
    #[arg(long)]
    skip_conformance: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let unit = t[i..].trim().to_ascii_uppercase();
            let mult = match unit.as_str() {
                "B" => 1,
                "K" | "KB" | "KIB" => 1 << 10,
                "M" | "MB" | "MIB" => 1 << 20,
                "G" | "GB" | "GIB" => 1 << 30,
                _ => return Err(format!("unknown size unit '{unit}' (use K, M or G)")),
            };
            (&t[..i], mult)
        }
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size"))?;
    let bytes = n.checked_mul(mult).ok_or_else(|| format!("'{s}' is too large"))?;
    if bytes == 0 {
        return Err("the size must be at least 1 byte".into());
    }
    Ok(bytes)
}

/// The conformance suite against the built-in client and server (`vdisim certify --builtin
/// client` and `--builtin server` in one go). `None` when skipped; `Some(conformant)` otherwise.
fn run_conformance_step(skip: bool) -> Option<bool> {
    if skip {
        return None;
    }
    println!();
    println!("Conformance suite against the built-in implementations (vdisim certify --builtin client|server)");
    let started = Instant::now();
    let report = vdi_conformance::runner::run_builtin_suite();
    for run in &report.runs {
        println!("  {}", vdi_conformance::report::summary_line(run));
    }
    println!(
        "  {} case(s) in the catalogue, {:.1} s",
        report.cases.len(),
        started.elapsed().as_secs_f64()
    );
    Some(vdi_conformance::report::exit_code(&report) == 0 && !report.runs.is_empty())
}

/// Where the demo works, and what to clean up.
struct Workspace {
    data: DataDir,
    store: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

fn workspace(args: &Args) -> Result<Workspace, String> {
    let (root, temp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("vdisim-demo-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let data = DataDir::new(&root).map_err(|e| format!("data directory {}: {e}", root.display()))?;
    let store = root.join(format!("{SOURCE_DB}.backup"));
    let temp = match (temp, args.keep) {
        (Some(t), true) => {
            let _ = t.keep();
            None
        }
        (t, _) => t,
    };
    Ok(Workspace {
        data,
        store,
        _temp: temp,
    })
}

pub fn run(args: Args) -> u8 {
    match demo(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("vdisim demo: {e}");
            1
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn demo(args: &Args) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the vdisim executable: {e}"))?;
    let ws = workspace(args)?;
    let n = args.devices;
    // Big transfers for few devices; smaller ones keep 64 devices within the buffer budget.
    let maxtransfer: u32 = if n <= 8 { 1 << 20 } else { 256 << 10 };
    let buffercount = (2 * n + 2).min(BUFFER_BUDGET / maxtransfer);
    let set = format!("vdisim_demo_{}", std::process::id());
    let devices: Vec<String> = (0..n).map(|i| device_name(&set, i)).collect();
    let to = devices
        .iter()
        .map(|d| format!("VIRTUAL_DEVICE = '{d}'"))
        .collect::<Vec<_>>()
        .join(", ");

    println!(
        "vdisim demo: {} MiB database, {n} virtual device(s), data directory {}",
        fmt_mib(args.size),
        ws.data.root().display()
    );
    let mut engine = Engine::new(ws.data.clone(), None);

    // 1. The database.
    for db in [SOURCE_DB, RESTORED_DB] {
        if ws.data.exists(db) {
            step(&engine, &format!("DROP DATABASE [{db}]"))?;
        }
    }
    let kb = args.size.div_ceil(1024);
    let created = step(&engine, &format!("CREATE DATABASE [{SOURCE_DB}] (SIZE = {kb} KB)"))?;
    if created.failed() {
        return Ok(false);
    }
    let size = ws.data.size_of(SOURCE_DB).map_err(|e| e.to_string())?;

    // 2. BACKUP: the client process creates the set; the engine (this process) plays SQL Server.
    let backup_sql = format!(
        "BACKUP DATABASE [{SOURCE_DB}] TO {to} WITH BLOCKSIZE = 65536, MAXTRANSFERSIZE = {maxtransfer}, \
         BUFFERCOUNT = {buffercount}, FORMAT"
    );
    let backup = transfer(&mut engine, &exe, "backup", &set, n, &ws.store, &backup_sql, size)?;
    // 3. RESTORE into a new database; no BLOCKSIZE, so the engine adopts the backup's (§3.3).
    let restore_sql = format!(
        "RESTORE DATABASE [{RESTORED_DB}] FROM {to} WITH MAXTRANSFERSIZE = {maxtransfer}, BUFFERCOUNT = {buffercount}"
    );
    let restore = if backup.is_some() {
        println!(
            "\n(The RESTORE names no BLOCKSIZE: the set is configured with 512, which divides every \
             transfer, and the engine adopts the backup's BLOCKSIZE from the media header, §3.3.)"
        );
        transfer(&mut engine, &exe, "restore", &set, n, &ws.store, &restore_sql, size)?
    } else {
        None
    };

    // 4. Byte for byte.
    let identical = match restore {
        Some(_) => ws.data.identical(SOURCE_DB, RESTORED_DB).map_err(|e| e.to_string())?,
        None => false,
    };
    let conformance = run_conformance_step(args.skip_conformance);

    println!();
    println!("Summary");
    let rate = |o: &Option<f64>| o.map_or("failed".to_string(), |r| format!("{r:.1} MiB/s"));
    println!("  BACKUP  through {n} device(s): {}", rate(&backup));
    println!("  RESTORE through {n} device(s): {}", rate(&restore));
    if restore.is_some() {
        println!(
            "  [{RESTORED_DB}] is {}byte-identical to [{SOURCE_DB}] ({} bytes)",
            if identical { "" } else { "NOT " },
            size
        );
    }
    match conformance {
        None => println!("  conformance suite: skipped (--skip-conformance)"),
        Some(true) => println!("  conformance suite: passed"),
        Some(false) => println!("  conformance suite: FAILED"),
    }
    let ok = backup.is_some() && restore.is_some() && identical && conformance != Some(false);
    if args.keep {
        println!(
            "  kept: databases in {}, backup files in {}",
            ws.data.root().display(),
            ws.store.display()
        );
    } else {
        if args.data_dir.is_some() {
            for db in [SOURCE_DB, RESTORED_DB] {
                let _ = ws.data.drop_database(db);
            }
        }
        let _ = std::fs::remove_dir_all(&ws.store);
    }
    println!("{}", if ok { "OK" } else { "FAILED" });
    Ok(ok)
}

fn fmt_mib(bytes: u64) -> String {
    let m = mib(bytes);
    if m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.2}")
    }
}

/// Runs a statement without a client, printing it and its messages.
fn step(engine: &Engine, sql: &str) -> Result<StatementOutcome, String> {
    println!("\n> {sql}");
    let outcome = engine
        .execute_batch(sql)
        .pop()
        .ok_or_else(|| format!("no outcome for {sql}"))?;
    for m in &outcome.messages {
        println!("{m}");
    }
    Ok(outcome)
}

/// One BACKUP or RESTORE: spawns `vdisim client <mode>`, runs the statement, waits for the
/// client. Returns the throughput in MiB/s if both sides succeeded.
#[allow(clippy::too_many_arguments)]
fn transfer(
    engine: &mut Engine,
    exe: &Path,
    mode: &str,
    set: &str,
    devices: u32,
    store: &Path,
    sql: &str,
    size: u64,
) -> Result<Option<f64>, String> {
    let client_args = [
        "client".to_string(),
        mode.to_string(),
        "--set".into(),
        set.into(),
        "--devices".into(),
        devices.to_string(),
        "--store".into(),
        store.display().to_string(),
    ];
    println!("\n$ vdisim {}", client_args.join(" "));
    let mut child = Command::new(exe)
        .args(&client_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the client process {}: {e}", exe.display()))?;
    let pid = child.id();
    let output = collect_output(&mut child);

    println!("> {sql}");
    let bar = progress_bar(size);
    engine.set_progress(bar.clone().map(|b| {
        let f: vdisim::engine::ProgressFn = Arc::new(move |done, total| {
            if total > 0 {
                b.set_length(total);
            }
            b.set_position(done);
        });
        f
    }));
    let outcome = engine.execute_batch(sql).pop();
    engine.set_progress(None);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let outcome = outcome.ok_or_else(|| format!("no outcome for {sql}"))?;
    for m in &outcome.messages {
        println!("{m}");
    }
    let status = wait_bounded(&mut child, CLIENT_EXIT_WAIT);
    let lines = output.join().unwrap_or_default();
    for l in &lines {
        println!("  client {pid} | {l}");
    }
    let client_ok = match status {
        Some(s) if s.success() => true,
        Some(s) => {
            println!("  client {pid} exited with {s}");
            false
        }
        None => {
            println!(
                "  client {pid} did not exit within {} s; killed",
                CLIENT_EXIT_WAIT.as_secs()
            );
            false
        }
    };
    Ok(match (&outcome.transfer, outcome.failed(), client_ok) {
        (Some(t), false, true) => Some(t.mb_per_sec()),
        _ => None,
    })
}

/// The client's stdout and stderr lines, collected on threads so its pipes never fill up.
struct Output {
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Output {
    fn join(self) -> Option<Vec<String>> {
        let mut all = Vec::new();
        for t in self.threads {
            all.extend(t.join().ok()?);
        }
        Some(all)
    }
}

fn collect_output(child: &mut Child) -> Output {
    let mut threads = Vec::new();
    if let Some(out) = child.stdout.take() {
        threads.push(std::thread::spawn(move || {
            BufReader::new(out).lines().map_while(Result::ok).collect()
        }));
    }
    if let Some(err) = child.stderr.take() {
        threads.push(std::thread::spawn(move || {
            BufReader::new(err).lines().map_while(Result::ok).collect()
        }));
    }
    Output { threads }
}

/// Waits for the child at most `limit`, then kills it.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A byte progress bar on a terminal, nothing otherwise.
fn progress_bar(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("  {bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2 KiB"), Ok(2048));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
