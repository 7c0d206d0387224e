//! Process death and leftovers (issue 8, items 1, 2 and 6).
//!
//! The kill campaign SIGKILLs the client or the server (both `vdisim-peer` processes) at a
//! random moment of a randomized backup or restore (1-8 devices, random sizes, transfer sizes,
//! queue depths and timeouts), then checks:
//! - the survivor returns VD_E_ABORT or VD_E_TIMEOUT (or had already succeeded) within twice
//!   its configured timeout, counted from the kill; the engine as survivor reports 3013;
//! - every backup that reported success restores byte-exact (pattern streams checked on the
//!   client's store and read back by a restore; engine databases compared with the original);
//! - a killed RESTORE never leaves a database that looks valid but is not: the target is either
//!   untouched or complete;
//! - the next run under the same set name works, and afterwards nothing of the set is left in
//!   /dev/shm (whatever the survivor left must be reclaimed by that next CreateEx).
//!
//! `cargo test` runs 50 kills; `scripts/chaos.sh <count>` runs the same campaign longer
//! (VDISIM_CHAOS_KILLS, VDISIM_CHAOS_SEED) and prints the same summary.
// Unix only: these tests inspect and plant /dev/shm entries (Windows mappings have no file names).
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use vdisim::engine::database::DataDir;
use vdisim::engine::Engine;
use vdisim::pump;
use vdisim::reference_client::{device_name, stripe_path};
use vdisim::shm;
use vdisim::vdi::{VDConfig, VdError};
use vdisim::ClientVirtualDeviceSet;

mod common;
use common::{segments_of, PEER};

fn unique(tag: &str) -> String {
    common::unique("rel", tag)
}

/// splitmix64: enough randomness for choosing scenarios, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }
}

/// A `vdisim-peer` process whose `EVENT` lines are collected by a reader thread.
struct Peer {
    child: Child,
    events: Receiver<String>,
    seen: Vec<String>,
    exited_at: Option<Instant>,
}

impl Peer {
    fn spawn(args: &[String]) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args);
        let (child, events) = common::spawn_with_events(cmd, Stdio::null());
        Peer {
            child,
            events,
            seen: Vec::new(),
            exited_at: None,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (noting when it was first seen gone).
    fn poll(&mut self) -> bool {
        if self.exited_at.is_none() && matches!(self.child.try_wait(), Ok(Some(_))) {
            self.exited_at = Some(Instant::now());
        }
        self.exited_at.is_some()
    }

    /// SIGKILL; true if the process was still running.
    fn kill(&mut self) -> bool {
        let running = !self.poll();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited_at.get_or_insert_with(Instant::now);
        running
    }

    fn wait_until(&mut self, deadline: Instant) -> bool {
        loop {
            if self.poll() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Every event, once the process is gone (the reader ends at EOF).
    fn collect(&mut self) {
        while let Ok(e) = self.events.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(e);
        }
    }

    fn wait_event(&mut self, prefix: &str, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(e) = self.seen.iter().find(|e| e.starts_with(prefix)) {
                return Some(e.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(e) => self.seen.push(e),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => return None,
            }
        }
    }

    fn saw(&self, prefix: &str) -> bool {
        self.seen.iter().any(|e| e.starts_with(prefix))
    }

    /// The fields of the `result` event, if the peer printed one.
    fn result(&self) -> Option<Vec<String>> {
        self.seen
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("result "))
            .map(|r| r.split(' ').map(str::to_string).collect())
    }

    fn result_code(&self) -> String {
        self.result()
            .and_then(|r| r.first().cloned())
            .unwrap_or_else(|| "NONE".into())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

fn remove_segments(set: &str) {
    for n in segments_of(set) {
        shm::unlink(&format!("/{n}"));
    }
}

fn write_pattern_store(store: &Path, devices: u32, bytes: u64) {
    std::fs::create_dir_all(store).unwrap();
    for i in 0..devices {
        let mut data = vec![0u8; bytes as usize];
        pump::fill_pattern(i, 0, &mut data);
        std::fs::write(stripe_path(store, i), data).unwrap();
    }
}

/// The first stripe that does not hold exactly the pattern stream of `bytes` bytes.
fn check_pattern_store(store: &Path, devices: u32, bytes: u64) -> Option<String> {
    (0..devices).find_map(|i| match std::fs::read(stripe_path(store, i)) {
        Ok(d) if d.len() as u64 != bytes => Some(format!("stripe {i}: {} bytes, expected {bytes}", d.len())),
        Ok(d) => pump::check_pattern(i, 0, &d).map(|o| format!("stripe {i}: byte {o} differs")),
        Err(e) => Some(format!("stripe {i}: {e}")),
    })
}

fn devices_clause(set: &str, n: u32) -> String {
    (0..n)
        .map(|i| format!("VIRTUAL_DEVICE = '{}'", device_name(set, i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One randomized run with one kill.
#[derive(Debug, Clone)]
struct Cycle {
    n: u64,
    set: String,
    engine: bool,
    backup: bool,
    devices: u32,
    /// Pattern bytes per device, or the database size for engine cycles.
    bytes: u64,
    timeout_ms: u64,
    kill_client: bool,
    delay_ms: u64,
    max_transfer: u32,
    depth: u32,
    server_first: bool,
}

impl Cycle {
    fn random(n: u64, rng: &mut Rng, engine_share: u64) -> Cycle {
        let engine = rng.chance(1, engine_share.max(1));
        let devices = rng.range(1, 8) as u32;
        Cycle {
            n,
            set: unique(&format!("chaos{n}")),
            engine,
            backup: rng.chance(1, 2),
            devices,
            bytes: if engine {
                rng.range(1, 6) << 20
            } else {
                match rng.range(0, 9) {
                    0 => 0,
                    1 => rng.range(1, 65536),
                    _ => rng.range(1, 3072) << 10,
                }
            },
            timeout_ms: rng.range(1000, 3000),
            kill_client: rng.chance(1, 2),
            // Start-up, configuration and streaming each get their share of kills.
            delay_ms: match rng.range(0, 19) {
                0..=4 => rng.range(0, 15),
                5..=12 => rng.range(15, 80),
                _ => rng.range(80, 250),
            },
            max_transfer: [65536, 262_144, 1 << 20][rng.range(0, 2) as usize],
            depth: rng.range(1, 4) as u32,
            server_first: rng.chance(1, 2),
        }
    }
}

/// What the campaign found.
#[derive(Default, Debug)]
struct Summary {
    cycles: u64,
    kills: u64,
    engine_kills: u64,
    victim_already_done: u64,
    hangs: u64,
    stale_segments: u64,
    corruption: u64,
    next_run_failures: u64,
    leftovers_reclaimed_by_next_create: u64,
    verified_backups: u64,
    survivor_results: BTreeMap<String, u64>,
    max_return_ms: u128,
    problems: Vec<String>,
}

impl Summary {
    fn problem(&mut self, c: &Cycle, what: String) {
        if self.problems.len() < 40 {
            self.problems.push(format!("cycle {} {c:?}: {what}", c.n));
        }
    }

    fn print(&self, seed: u64, elapsed: Duration) {
        println!("chaos summary (seed {seed:#x}, {:.1} s)", elapsed.as_secs_f64());
        println!(
            "  kills:                      {} ({} during engine BACKUP/RESTORE)",
            self.kills, self.engine_kills
        );
        println!(
            "  cycles run:                 {} ({} victims had already exited)",
            self.cycles, self.victim_already_done
        );
        println!("  hangs:                      {}", self.hangs);
        println!("  stale segments:             {}", self.stale_segments);
        println!("  undetected corruption:      {}", self.corruption);
        println!("  next-run failures:          {}", self.next_run_failures);
        println!(
            "  leftovers reclaimed by the next CreateEx: {}",
            self.leftovers_reclaimed_by_next_create
        );
        println!("  successful backups verified byte-exact:   {}", self.verified_backups);
        println!("  slowest survivor return after the kill:   {} ms", self.max_return_ms);
        println!("  survivor results: {:?}", self.survivor_results);
        for p in &self.problems {
            println!("  PROBLEM {p}");
        }
    }
}

fn pump_server_args(
    set: &str,
    backup: bool,
    devices: u32,
    bytes: u64,
    timeout: u64,
    mt: u32,
    depth: u32,
) -> Vec<String> {
    let op = if backup { "backup" } else { "restore" };
    vec![
        s("chaos-server"),
        s(set),
        s(op),
        s(devices),
        s(bytes),
        s(timeout),
        s(mt),
        s(depth),
    ]
}

fn client_args(set: &str, backup: bool, devices: u32, store: &Path, timeout: u64) -> Vec<String> {
    let op = if backup { "backup" } else { "restore" };
    vec![
        s("chaos-client"),
        s(set),
        s(op),
        s(devices),
        store.display().to_string(),
        s(timeout),
    ]
}

fn engine_args(label: &str, data: &Path, timeout: u64, sql: &str) -> Vec<String> {
    vec![
        s("engine-sql"),
        s(label),
        data.display().to_string(),
        s(timeout),
        s(sql),
    ]
}

/// Runs a server and a client to the end without killing anything: (server, client) results.
fn run_pair(server: Vec<String>, client: Vec<String>) -> (Peer, Peer) {
    let mut srv = Peer::spawn(&server);
    let mut cli = Peer::spawn(&client);
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = srv.wait_until(deadline) && cli.wait_until(deadline);
    if !done {
        srv.kill();
        cli.kill();
    }
    srv.collect();
    cli.collect();
    (srv, cli)
}

/// Kills one side of a running pair and judges the survivor. Returns (server, client, killed).
fn kill_one(c: &Cycle, server: Vec<String>, client: Vec<String>, sum: &mut Summary) -> (Peer, Peer, bool) {
    let (mut srv, mut cli) = if c.server_first {
        let srv = Peer::spawn(&server);
        (srv, Peer::spawn(&client))
    } else {
        let cli = Peer::spawn(&client);
        (Peer::spawn(&server), cli)
    };
    std::thread::sleep(Duration::from_millis(c.delay_ms));
    let (victim, survivor) = if c.kill_client {
        (&mut cli, &mut srv)
    } else {
        (&mut srv, &mut cli)
    };
    let killed_at = Instant::now();
    let killed = victim.kill();
    let limit = killed_at + Duration::from_millis(2 * c.timeout_ms);
    if !survivor.wait_until(limit) {
        sum.hangs += 1;
        sum.problem(
            c,
            format!(
                "survivor pid {} still running 2 x {} ms after the kill",
                survivor.pid(),
                c.timeout_ms
            ),
        );
        if !survivor.wait_until(Instant::now() + Duration::from_secs(30)) {
            survivor.kill();
        }
    }
    if killed {
        let back = survivor
            .exited_at
            .map_or(0, |t| t.saturating_duration_since(killed_at).as_millis());
        sum.max_return_ms = sum.max_return_ms.max(back);
    }
    srv.collect();
    cli.collect();
    (srv, cli, killed)
}

fn judge_survivor(c: &Cycle, srv: &Peer, cli: &Peer, sum: &mut Summary) {
    let (survivor, role) = if c.kill_client {
        (srv, "server")
    } else {
        (cli, "client")
    };
    let result = survivor.result().unwrap_or_default();
    let code = result.first().cloned().unwrap_or_else(|| "NONE".into());
    let key = format!(
        "{role}:{}",
        if c.engine && role == "server" {
            engine_code(&result)
        } else {
            code.clone()
        }
    );
    *sum.survivor_results.entry(key).or_default() += 1;
    let allowed = if c.engine && role == "server" {
        // The simulated SQL Server: success (3014) or "terminating abnormally" (3013).
        let numbers = result.get(1).cloned().unwrap_or_default();
        let numbers: Vec<&str> = numbers.split(',').collect();
        (code == "NOERROR" && numbers.contains(&"3014")) || (code == "FAILED" && numbers.contains(&"3013"))
    } else {
        match code.as_str() {
            "NOERROR" | "VD_E_ABORT" | "VD_E_TIMEOUT" => true,
            // The client died before the server's Open: no set to serve (a dead creator's set
            // is not served, fix F9).
            "VD_E_INVALID" => role == "server" && !srv.saw("opened"),
            _ => false,
        }
    };
    if !allowed {
        sum.problem(c, format!("{role} survivor ended with {result:?}"));
    }
}

fn engine_code(result: &[String]) -> String {
    match result.first().map(String::as_str) {
        Some("NOERROR") => "3014".into(),
        Some("FAILED") if result.get(1).is_some_and(|n| n.split(',').any(|x| x == "3013")) => "3013".into(),
        other => format!("{other:?}"),
    }
}

/// After the killed run: the next run under the same name, then no segment may be left.
fn check_leftovers(c: &Cycle, before_next: usize, sum: &mut Summary) {
    let after = segments_of(&c.set);
    if !after.is_empty() {
        sum.stale_segments += after.len() as u64;
        sum.problem(c, format!("left in /dev/shm after the next run: {after:?}"));
        remove_segments(&c.set);
    } else if before_next > 0 {
        sum.leftovers_reclaimed_by_next_create += 1;
    }
}

fn pump_cycle(c: &Cycle, work: &Path, sum: &mut Summary) -> bool {
    let store = work.join(format!("store-{}", c.n));
    if !c.backup {
        write_pattern_store(&store, c.devices, c.bytes);
    }
    let t = c.timeout_ms;
    let server = pump_server_args(&c.set, c.backup, c.devices, c.bytes, t, c.max_transfer, c.depth);
    let (srv, cli, killed) = kill_one(c, server, client_args(&c.set, c.backup, c.devices, &store, t), sum);
    judge_survivor(c, &srv, &cli, sum);
    let leftovers = segments_of(&c.set).len();
    let backup_ok = c.backup && srv.result_code() == "NOERROR";
    if backup_ok {
        if let Some(bad) = check_pattern_store(&store, c.devices, c.bytes) {
            sum.corruption += 1;
            sum.problem(c, format!("backup reported success but the store is wrong: {bad}"));
        }
    }
    // The next run under the same name: restoring the backup that succeeded, else a small one.
    let (server, client) = if backup_ok {
        (
            pump_server_args(&c.set, false, c.devices, c.bytes, 10_000, c.max_transfer, c.depth),
            client_args(&c.set, false, c.devices, &store, 10_000),
        )
    } else {
        let next = work.join(format!("next-{}", c.n));
        (
            pump_server_args(&c.set, true, c.devices, 65536, 10_000, 65536, 2),
            client_args(&c.set, true, c.devices, &next, 10_000),
        )
    };
    let (srv2, cli2) = run_pair(server, client);
    if srv2.result_code() != "NOERROR" || cli2.result_code() != "NOERROR" {
        let why = format!("next run: server {:?}, client {:?}", srv2.result(), cli2.result());
        if backup_ok && srv2.result().is_some_and(|r| r.iter().any(|f| f.contains("differs"))) {
            sum.corruption += 1;
        } else {
            sum.next_run_failures += 1;
        }
        sum.problem(c, why);
    } else if backup_ok {
        sum.verified_backups += 1;
    }
    check_leftovers(c, leftovers, sum);
    let _ = std::fs::remove_dir_all(&store);
    let _ = std::fs::remove_dir_all(work.join(format!("next-{}", c.n)));
    killed
}

fn engine_ok(p: &Peer) -> bool {
    p.result_code() == "NOERROR"
}

fn engine_cycle(c: &Cycle, work: &Path, sum: &mut Summary) -> bool {
    let data_path = work.join(format!("data-{}", c.n));
    let data = DataDir::new(&data_path).unwrap();
    let kb = c.bytes >> 10;
    let setup = Engine::new(DataDir::new(&data_path).unwrap(), None);
    let created = setup.execute_batch(&format!("CREATE DATABASE src (SIZE = {kb} KB)"));
    assert!(created.iter().all(|o| !o.failed()), "CREATE DATABASE failed");
    let store = work.join(format!("store-{}", c.n));
    let t = c.timeout_ms;
    let with = format!(
        "WITH MAXTRANSFERSIZE = {}, BUFFERCOUNT = {}",
        c.max_transfer,
        c.depth * c.devices + 1
    );
    let backup_sql = format!("BACKUP DATABASE [src] TO {} {with}", devices_clause(&c.set, c.devices));
    let restore_sql = format!(
        "RESTORE DATABASE [dst] FROM {} WITH REPLACE, MAXTRANSFERSIZE = {}",
        devices_clause(&c.set, c.devices),
        c.max_transfer
    );
    let killed;
    let mut verify_restore = false;
    if c.backup {
        let (srv, cli, k) = kill_one(
            c,
            engine_args("backup", &data_path, t, &backup_sql),
            client_args(&c.set, true, c.devices, &store, t),
            sum,
        );
        killed = k;
        judge_survivor(c, &srv, &cli, sum);
        verify_restore = engine_ok(&srv);
    } else {
        // A good backup to restore from, then an older, different `dst` to overwrite.
        let (srv, cli) = run_pair(
            engine_args("prep", &data_path, 10_000, &backup_sql),
            client_args(&c.set, true, c.devices, &store, 10_000),
        );
        assert!(
            engine_ok(&srv) && cli.result_code() == "NOERROR",
            "preparing a backup failed: {:?}",
            srv.result()
        );
        setup.execute_batch(&format!("CREATE DATABASE dst (SIZE = {} KB)", kb / 2 + 64));
        let old = data.digest("dst").unwrap();
        let (srv, cli, k) = kill_one(
            c,
            engine_args("restore", &data_path, t, &restore_sql),
            client_args(&c.set, false, c.devices, &store, t),
            sum,
        );
        killed = k;
        judge_survivor(c, &srv, &cli, sum);
        let complete = data.identical("src", "dst").unwrap_or(false);
        let untouched = data.digest("dst").is_ok_and(|d| d == old);
        if engine_ok(&srv) && !complete {
            sum.corruption += 1;
            sum.problem(c, "RESTORE reported success but dst differs from src".into());
        } else if !complete && !untouched {
            sum.corruption += 1;
            sum.problem(c, "a killed RESTORE left dst neither untouched nor complete".into());
        }
        let listed = data.list().unwrap_or_default();
        if listed.iter().any(|d| d != "src" && d != "dst") {
            sum.corruption += 1;
            sum.problem(c, format!("the data directory lists {listed:?}"));
        }
    }
    let leftovers = segments_of(&c.set).len();
    // The next run under the same name: a restore of what the killed BACKUP reported as
    // done, or else a complete restore (which must also replace any half-done one).
    let next_store = if c.backup && !verify_restore {
        let (srv, cli) = run_pair(
            engine_args("backup-again", &data_path, 10_000, &backup_sql),
            client_args(&c.set, true, c.devices, &store, 10_000),
        );
        if !engine_ok(&srv) || cli.result_code() != "NOERROR" {
            sum.next_run_failures += 1;
            sum.problem(
                c,
                format!("next BACKUP: engine {:?}, client {:?}", srv.result(), cli.result()),
            );
        }
        None
    } else {
        Some(&store)
    };
    if let Some(store) = next_store {
        let (srv, cli) = run_pair(
            engine_args("restore-next", &data_path, 10_000, &restore_sql),
            client_args(&c.set, false, c.devices, store, 10_000),
        );
        let identical = data.identical("src", "dst").unwrap_or(false);
        if !engine_ok(&srv) || cli.result_code() != "NOERROR" {
            sum.next_run_failures += 1;
            sum.problem(
                c,
                format!("next RESTORE: engine {:?}, client {:?}", srv.result(), cli.result()),
            );
        } else if !identical {
            sum.corruption += 1;
            sum.problem(c, "RESTORE of a successful BACKUP is not identical".into());
        } else if verify_restore {
            sum.verified_backups += 1;
        }
    }
    check_leftovers(c, leftovers, sum);
    let _ = std::fs::remove_dir_all(&store);
    let _ = std::fs::remove_dir_all(&data_path);
    killed
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The kill campaign: `VDISIM_CHAOS_KILLS` kills (default 50), one engine cycle in
/// `VDISIM_CHAOS_ENGINE_SHARE` (default 5), seed `VDISIM_CHAOS_SEED` (default: the clock).
#[test]
fn sigkill_campaign() {
    let kills = env_u64("VDISIM_CHAOS_KILLS").unwrap_or(50);
    let engine_share = env_u64("VDISIM_CHAOS_ENGINE_SHARE").unwrap_or(5);
    let seed = env_u64("VDISIM_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = Rng(seed);
    let work = tempfile::tempdir().unwrap();
    let mut sum = Summary::default();
    let start = Instant::now();
    let mut n = 0;
    // On a fast, idle machine many victims finish before their kill lands; allow enough
    // cycles that the requested number of kills still happens (it stops as soon as it does).
    while sum.kills < kills && n < kills * 8 {
        let c = Cycle::random(n, &mut rng, engine_share);
        let killed = if c.engine {
            engine_cycle(&c, work.path(), &mut sum)
        } else {
            pump_cycle(&c, work.path(), &mut sum)
        };
        sum.cycles += 1;
        if killed {
            sum.kills += 1;
            sum.engine_kills += u64::from(c.engine);
        } else {
            sum.victim_already_done += 1;
        }
        n += 1;
        if n % 50 == 0 {
            println!(
                "  ... {n} cycles, {} kills, {:.0} s",
                sum.kills,
                start.elapsed().as_secs_f64()
            );
        }
    }
    sum.print(seed, start.elapsed());
    assert!(sum.kills >= kills, "only {} of {kills} kills landed", sum.kills);
    assert!(
        sum.hangs == 0
            && sum.stale_segments == 0
            && sum.corruption == 0
            && sum.next_run_failures == 0
            && sum.problems.is_empty(),
        "chaos found problems (seed {seed:#x}); see the summary above"
    );
}

// ---------------------------------------------------------------------------------------------
// Leftovers (issue 8 item 2): stale segments of dead processes are reclaimed by the next
// CreateEx of the name, and listed and removed by the cleanup functions behind `vdisim cleanup`.
// ---------------------------------------------------------------------------------------------

/// Starts a client that creates `set` and holds it (and a server that configures it, if
/// asked), then SIGKILLs them: the remains of a crashed backup.
fn crash_set(set: &str, with_server: bool) {
    let mut cli = Peer::spawn(&[s("create-hold"), s(set), s(60_000)]);
    assert_eq!(
        cli.wait_event("create ", Duration::from_secs(20))
            .as_deref()
            .map(|e| e.starts_with("create NOERROR")),
        Some(true)
    );
    if with_server {
        let mut srv = Peer::spawn(&[s("configure-hold"), s(set), s(60_000)]);
        assert!(
            srv.wait_event("configured", Duration::from_secs(20)).is_some(),
            "server did not configure"
        );
        srv.kill();
    }
    cli.kill();
}

fn create(set: &str) -> Result<ClientVirtualDeviceSet, VdError> {
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, set, &VDConfig::request(1, 0)).map(|_| vds)
}

#[test]
fn killed_creator_header_is_reclaimed_by_next_create() {
    let set = unique("reclaim");
    crash_set(&set, false);
    assert_eq!(segments_of(&set).len(), 1, "the crashed creator leaves its header");
    let mut vds = create(&set).expect("the next CreateEx reclaims the dead creator's set");
    vds.close().unwrap();
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

#[test]
fn killed_set_with_buffer_area_is_reclaimed_by_next_create() {
    let set = unique("reclaim-buf");
    crash_set(&set, true);
    let left = segments_of(&set);
    assert_eq!(left.len(), 2, "header and buffer area are left: {left:?}");
    let mut vds = create(&set).expect("the next CreateEx reclaims both segments");
    assert_eq!(segments_of(&set).len(), 1, "only the new header remains");
    vds.close().unwrap();
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

#[test]
fn a_live_creator_is_not_reclaimed() {
    let set = unique("live");
    let mut holder = Peer::spawn(&[s("create-hold"), s(&set), s(3_000)]);
    assert!(holder.wait_event("create NOERROR", Duration::from_secs(20)).is_some());
    assert_eq!(
        create(&set).err(),
        Some(VdError::Protocol),
        "a live set of that name exists"
    );
    assert!(holder.wait_until(Instant::now() + Duration::from_secs(20)));
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

/// A creator killed between shm_open and ftruncate leaves an empty segment (fix F4, F3).
#[test]
fn empty_header_of_a_creator_killed_mid_create_is_reclaimed() {
    use std::os::unix::fs::OpenOptionsExt;
    let set = unique("empty");
    let path = Path::new("/dev/shm").join(format!("vdisim-{}-{set}", shm::DEFAULT_INSTANCE));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    // A server looking for the set meanwhile is told it does not exist (yet), not VD_E_MEMORY.
    assert_eq!(
        vdisim::ServerVirtualDeviceSet::open(None, &set).err(),
        Some(VdError::Invalid)
    );
    let mut vds = create(&set).expect("CreateEx takes over the empty segment");
    vds.close().unwrap();
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

fn listed(set: &str) -> Vec<shm::SegmentInfo> {
    shm::list_segments()
        .into_iter()
        .filter(|i| segments_of(set).contains(&i.name))
        .collect()
}

#[test]
fn cleanup_lists_and_removes_stale_segments_only() {
    let dead = unique("cleanup-dead");
    crash_set(&dead, true);
    let live = unique("cleanup-live");
    let mut live_set = create(&live).unwrap();
    let stale = listed(&dead);
    assert_eq!(stale.len(), 2, "{stale:?}");
    assert!(stale.iter().all(|i| i.stale), "{stale:?}");
    assert!(
        stale.iter().any(|i| i.reason.contains("gone")),
        "the reason names the dead creator: {stale:?}"
    );
    let alive = listed(&live);
    assert_eq!(alive.len(), 1);
    assert!(!alive[0].stale, "{alive:?}");

    let dead_names = segments_of(&dead);
    let removed = shm::remove_stale_segments();
    let ours: Vec<_> = removed.iter().filter(|i| dead_names.contains(&i.name)).collect();
    assert_eq!(ours.len(), 2, "both segments of the dead set removed: {removed:?}");
    assert!(
        !removed.iter().any(|i| i.name.contains(&live)),
        "a live set is never removed"
    );
    assert_eq!(segments_of(&dead), Vec::<String>::new());
    assert_eq!(segments_of(&live).len(), 1);
    live_set.close().unwrap();
    assert_eq!(segments_of(&live), Vec::<String>::new());
}

/// A set whose name ends like a buffer area (`x.buf123`) is a header, never "a buffer area
/// whose set is gone" (fix F6).
#[test]
fn cleanup_never_mistakes_a_set_named_like_a_buffer_area() {
    let set = format!("{}.buf123", unique("tricky"));
    let mut vds = create(&set).unwrap();
    let info = listed(&set);
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(!info[0].stale, "a live set is not stale: {info:?}");
    assert!(!shm::remove_stale_segments().iter().any(|i| i.name.contains(&set)));
    assert_eq!(segments_of(&set).len(), 1);
    vds.close().unwrap();
}

/// `vdisim cleanup [--remove] [--json]`, when the CLI binary was built next to the peer (as
/// `cargo test --workspace` does).
#[test]
fn cleanup_command_lists_and_removes() {
    let cli = Path::new(PEER).with_file_name("vdisim");
    if !cli.exists() {
        println!("skipped: {} not built (run `cargo test --workspace`)", cli.display());
        return;
    }
    let dead = unique("cli-dead");
    crash_set(&dead, false);
    let out = Command::new(&cli).args(["cleanup", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let segs = v["segments"].as_array().expect("segments");
    let entry = segs
        .iter()
        .find(|e| e["name"].as_str().is_some_and(|n| n.ends_with(&dead)))
        .expect("the stale header is listed");
    assert_eq!(entry["stale"], serde_json::Value::Bool(true));
    assert_eq!(segments_of(&dead).len(), 1, "listing removes nothing");

    let out = Command::new(&cli).args(["cleanup", "--remove"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&dead), "the table names the removed segment:\n{text}");
    assert_eq!(segments_of(&dead), Vec::<String>::new());
}

/// A server that opens a name while the remains of a dead creator still hold it waits for the
/// next CreateEx to replace them and serves the new set (fix F9, found by the kill campaign:
/// it used to latch onto the dead set and fail with VD_E_BUSY); with no new CreateEx it still
/// opens the dead set, and its first liveness check aborts it.
#[test]
fn a_server_racing_the_next_create_serves_the_new_set() {
    let set = unique("dead-creator");
    crash_set(&set, true);
    let name = set.clone();
    let opener = std::thread::spawn(move || vdisim::ServerVirtualDeviceSet::open(None, &name));
    std::thread::sleep(Duration::from_millis(100));
    let mut vds = create(&set).expect("the next CreateEx reclaims the dead set");
    let server = opener.join().unwrap().expect("Open serves the new set");
    assert!(server.get_configuration().is_ok());
    let _ = server.signal_abort();
    let _ = server.close();
    let _ = vds.close();
    assert_eq!(segments_of(&set), Vec::<String>::new());

    let set = unique("dead-creator-alone");
    crash_set(&set, false);
    let server = vdisim::ServerVirtualDeviceSet::open(None, &set).expect("opened after the grace");
    let devices = pump::configure(&server, &pump::StreamSpec::new(1, 0), true).unwrap();
    let t = Instant::now();
    assert_eq!(devices[0].get_completion(5_000).err(), Some(VdError::Abort));
    assert!(t.elapsed() < Duration::from_secs(5));
    let why = server.last_error().unwrap_or_default();
    assert!(why.contains("died"), "{why}");
    let _ = server.close();
    assert_eq!(segments_of(&set), Vec::<String>::new());
}
