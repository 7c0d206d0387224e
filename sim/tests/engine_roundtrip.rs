//! The simulated SQL Server over two processes: the engine runs BACKUP/RESTORE in this test
//! process (the server role), `vdisim-peer` plays the client in another process over real shared
//! memory. Databases are small (a few MB) so the whole file runs in seconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vdisim::engine::database::DataDir;
use vdisim::engine::{Engine, EngineOptions, StatementOutcome};
use vdisim::reference_client::{device_name, stripe_path};
use vdisim::vdi::features;

mod common;
use common::{assert_no_leftovers, Peer};

fn unique(tag: &str) -> String {
    common::unique("eng", tag)
}

impl Peer {
    /// Every event until the peer exits (at most 60 s), and whether it exited with 0.
    fn finish(mut self) -> (Vec<String>, bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("peer did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut events = Vec::new();
        while let Ok(e) = self.events.recv_timeout(Duration::from_millis(500)) {
            events.push(e);
        }
        (events, status.success())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_grace(Duration::from_secs(10))
    }

    fn with_grace(grace: Duration) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let engine = Engine::new(DataDir::new(root.join("data")).unwrap(), None).with_options(EngineOptions {
            open_grace: grace,
            stall_timeout: Duration::from_secs(30),
            ..EngineOptions::default()
        });
        Fixture {
            _dir: dir,
            root,
            engine,
        }
    }

    fn data(&self) -> &DataDir {
        self.engine.data_dir()
    }

    fn store(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn sql(&self, sql: &str) -> StatementOutcome {
        let mut v = self.engine.execute_batch(sql);
        assert_eq!(v.len(), 1, "one statement expected in {sql}");
        v.remove(0)
    }

    fn ok(&self, sql: &str) -> StatementOutcome {
        let o = self.sql(sql);
        assert!(!o.failed(), "{sql} failed:\n{}", text(&o));
        o
    }

    /// Nothing but databases in the data directory: no temp files of a failed restore.
    fn assert_no_temp_files(&self) {
        let stray: Vec<String> = std::fs::read_dir(self.data().root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(stray.is_empty(), "temp files left: {stray:?}");
    }
}

fn text(o: &StatementOutcome) -> String {
    vdisim::engine::messages::render(&o.messages)
}

fn devices_clause(set: &str, n: u32) -> String {
    (0..n)
        .map(|i| format!("VIRTUAL_DEVICE = '{}'", device_name(set, i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `sql` in this process while the reference client (peer process) serves the set.
fn with_client(
    fx: &Fixture,
    mode: &str,
    set: &str,
    n: u32,
    store: &Path,
    request_complete: bool,
    sql: &str,
) -> (StatementOutcome, Option<serde_json::Value>) {
    let mut args = vec![
        "client-report".to_string(),
        set.to_string(),
        n.to_string(),
        store.display().to_string(),
        mode.to_string(),
    ];
    if request_complete {
        args.push("request-complete".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let peer = Peer::spawn(&refs);
    let outcome = fx.sql(sql);
    let (events, ok) = peer.finish();
    let report = events
        .iter()
        .find_map(|e| e.strip_prefix("report "))
        .and_then(|j| serde_json::from_str(j).ok());
    assert_eq!(ok, report.is_some(), "peer exit status and report disagree: {events:?}");
    assert_no_leftovers(set);
    (outcome, report)
}

/// BACKUP then RESTORE to a new name, both striped over `n` devices, compared byte for byte.
fn round_trip(n: u32, size_kb: u64, options: &str) {
    let fx = Fixture::new();
    fx.ok(&format!("CREATE DATABASE src (SIZE = {size_kb} KB)"));
    let store = fx.store("store");
    let set = unique("rt");
    let (b, report) = with_client(
        &fx,
        "backup",
        &set,
        n,
        &store,
        false,
        &format!("BACKUP DATABASE src TO {} {options}", devices_clause(&set, n)),
    );
    assert!(!b.failed(), "{}", text(&b));
    let report = report.expect("client report");
    let t = b.transfer.clone().expect("stats");
    assert_eq!(t.devices, n as usize);
    assert_eq!(t.bytes, fx.data().size_of("src").unwrap());
    // Every device wrote its stripe and ended normally.
    let devs = report["devices"].as_array().unwrap();
    assert_eq!(devs.len(), n as usize);
    let stored: u64 = (0..n)
        .map(|i| std::fs::metadata(stripe_path(&store, i)).unwrap().len())
        .sum();
    assert_eq!(stored, t.stream_bytes);
    for d in devs {
        assert_eq!(d["ended_with"], "VD_E_CLOSE");
        assert_eq!(d["flushes"], 1, "one VDC_Flush at the end of each stripe");
        assert_eq!(d["completes"], 0, "no VDC_Complete without VDF_RequestComplete");
    }

    let set = unique("rs");
    let (r, report) = with_client(
        &fx,
        "restore",
        &set,
        n,
        &store,
        false,
        &format!("RESTORE DATABASE dst FROM {}", devices_clause(&set, n)),
    );
    assert!(!r.failed(), "{}", text(&r));
    assert!(report.is_some());
    assert!(fx.data().identical("src", "dst").unwrap(), "restored bytes differ");
    fx.assert_no_temp_files();
}

#[test]
fn round_trip_one_device() {
    round_trip(1, 1024, "");
}

#[test]
fn round_trip_three_devices_with_large_transfers() {
    round_trip(
        3,
        3 * 1024 + 24,
        "WITH BLOCKSIZE = 4096, MAXTRANSFERSIZE = 262144, BUFFERCOUNT = 4",
    );
}

#[test]
fn round_trip_sixty_four_devices_with_fewer_buffers_than_devices() {
    // BUFFERCOUNT below the device count: the pool is shared, devices take turns.
    round_trip(64, 2048, "WITH MAXTRANSFERSIZE = 65536, BUFFERCOUNT = 16");
}

#[test]
fn complete_is_negotiated_only_when_requested() {
    let fx = Fixture::new();
    fx.ok("CREATE DATABASE src (SIZE = 256 KB)");
    for request in [false, true] {
        let set = unique("cp");
        let store = fx.store(&format!("store-{request}"));
        let (b, report) = with_client(
            &fx,
            "backup",
            &set,
            2,
            &store,
            request,
            &format!("BACKUP DATABASE src TO {}", devices_clause(&set, 2)),
        );
        assert!(!b.failed(), "{}", text(&b));
        assert_eq!(b.transfer.as_ref().unwrap().complete_enabled, request);
        let report = report.unwrap();
        let answered = report["config"]["features"].as_u64().unwrap() as u32;
        assert_ne!(answered & features::VDF_WRITE_MEDIA, 0);
        assert_eq!(
            answered & features::VDF_COMPLETE_ENABLED != 0,
            request,
            "features {answered:#x}"
        );
        for d in report["devices"].as_array().unwrap() {
            assert_eq!(
                d["completes"],
                u64::from(request),
                "VDC_Complete count on {}",
                d["name"]
            );
            assert_eq!(d["ended_with"], "VD_E_CLOSE");
        }
    }
}

/// A backup to restore from, with its store.
fn backed_up(fx: &Fixture, n: u32, options: &str) -> PathBuf {
    fx.ok("CREATE DATABASE src (SIZE = 512 KB)");
    let store = fx.store("store");
    let set = unique("bk");
    let (b, _) = with_client(
        fx,
        "backup",
        &set,
        n,
        &store,
        false,
        &format!("BACKUP DATABASE src TO {} {options}", devices_clause(&set, n)),
    );
    assert!(!b.failed(), "{}", text(&b));
    store
}

fn restore_fails(fx: &Fixture, store: &Path, n: u32, options: &str) -> String {
    let set = unique("bad");
    let (r, _) = with_client(
        fx,
        "restore",
        &set,
        n,
        store,
        false,
        &format!("RESTORE DATABASE dst FROM {} {options}", devices_clause(&set, n)),
    );
    assert!(r.failed(), "restore should fail:\n{}", text(&r));
    assert!(r.transfer.is_none());
    let out = text(&r);
    assert!(
        out.ends_with(
            "Msg 3013, Level 16, State 1, Server vdisim, Line 1\nRESTORE DATABASE is terminating abnormally.\n"
        ),
        "{out}"
    );
    assert!(!fx.data().exists("dst"), "a failed restore left a database");
    fx.assert_no_temp_files();
    out
}

#[test]
fn restore_adopts_the_backups_blocksize_and_rejects_another() {
    let fx = Fixture::new();
    let store = backed_up(&fx, 2, "WITH BLOCKSIZE = 4096");
    let out = restore_fails(&fx, &store, 2, "WITH BLOCKSIZE = 512");
    assert!(out.contains("Msg 3241"), "{out}");
    assert!(
        out.contains("BLOCKSIZE = 4096") && out.contains("BLOCKSIZE = 512"),
        "names both values: {out}"
    );
    // Without BLOCKSIZE the backup's is adopted.
    let set = unique("ok");
    let (r, _) = with_client(
        &fx,
        "restore",
        &set,
        2,
        &store,
        false,
        &format!("RESTORE DATABASE dst FROM {}", devices_clause(&set, 2)),
    );
    assert!(!r.failed(), "{}", text(&r));
    assert_eq!(r.transfer.unwrap().blocksize, 4096);
    assert!(fx.data().identical("src", "dst").unwrap());
}

#[test]
fn restore_with_a_flipped_byte_fails_and_names_the_block() {
    let fx = Fixture::new();
    let store = backed_up(&fx, 3, "WITH BLOCKSIZE = 4096");
    let path = stripe_path(&store, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    // Inside the payload of the stripe's first data record (after its 4096-byte header block).
    bytes[4096 + 64 + 1000] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let out = restore_fails(&fx, &store, 3, "");
    assert!(out.contains("Msg 3189"), "{out}");
    assert!(
        out.contains("stripe 1: block 1 is corrupt (checksum mismatch)"),
        "{out}"
    );
    assert!(out.contains("_1': stripe 1"), "names the device ('<set>_1'): {out}");
}

#[test]
fn restore_with_a_missing_device_fails_and_says_so() {
    let fx = Fixture::new();
    let store = backed_up(&fx, 3, "");
    let out = restore_fails(&fx, &store, 2, "");
    assert!(out.contains("Msg 3132"), "{out}");
    assert!(out.contains("has 3 media families but only 2 are provided"), "{out}");
}

#[test]
fn restore_with_devices_swapped_fails_and_says_so() {
    let fx = Fixture::new();
    let store = backed_up(&fx, 2, "");
    let a = std::fs::read(stripe_path(&store, 0)).unwrap();
    let b = std::fs::read(stripe_path(&store, 1)).unwrap();
    std::fs::write(stripe_path(&store, 0), b).unwrap();
    std::fs::write(stripe_path(&store, 1), a).unwrap();
    let out = restore_fails(&fx, &store, 2, "");
    assert!(
        out.contains("Msg 3241") && out.contains("devices swapped or repeated"),
        "{out}"
    );
}

#[test]
fn restore_of_a_truncated_stripe_fails() {
    let fx = Fixture::new();
    let store = backed_up(&fx, 1, "");
    let path = stripe_path(&store, 0);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 512)
        .unwrap();
    let out = restore_fails(&fx, &store, 1, "");
    assert!(out.contains("Msg 3189") && out.contains("truncated"), "{out}");
}

#[test]
fn disk_full_fails_the_backup_clears_the_error_and_aborts_the_set() {
    let fx = Fixture::new();
    fx.ok("CREATE DATABASE src (SIZE = 1024 KB)");
    let store = fx.store("store");
    let set = unique("df");
    let peer = Peer::spawn(&["client-disk-full", &set, "2", store.to_str().unwrap(), "3"]);
    let b = fx.sql(&format!("BACKUP DATABASE src TO {}", devices_clause(&set, 2)));
    let (events, ok) = peer.finish();
    assert!(ok, "{events:?}");
    let out = text(&b);
    assert!(b.failed());
    assert!(
        out.contains(&format!(
            "Msg 18210, Level 16, State 1, Server vdisim, Line 1\nBackupMedium::ReportIoError: write failure on backup \
             device '{set}'. Operating system error 112(There is not enough space on the disk.)."
        )),
        "{out}"
    );
    assert!(out
        .ends_with("Msg 3013, Level 16, State 1, Server vdisim, Line 1\nBACKUP DATABASE is terminating abnormally.\n"));
    // §3.5: ClearError on the failed device, then the set is aborted (§3.6).
    assert!(events.contains(&"write-failed 0".to_string()), "{events:?}");
    assert!(events.contains(&"clear-error 0".to_string()), "{events:?}");
    assert!(events.contains(&"device-end 0 VD_E_ABORT".to_string()), "{events:?}");
    assert!(events.contains(&"device-end 1 VD_E_ABORT".to_string()), "{events:?}");
    assert_no_leftovers(&set);

    // Nothing can be restored from what the client stored: a truncated stripe (3189), or,
    // when the abort came before device 1 stored its first block, a stripe with no media
    // header at all (3241). Which one is a race between the two devices.
    let out = restore_fails(&fx, &store, 2, "");
    assert!(out.contains("Msg 3189") || out.contains("Msg 3241"), "{out}");
    assert!(
        out.ends_with(
            "RESTORE DATABASE is terminating abnormally.
"
        ),
        "{out}"
    );
}

#[test]
fn replace_rules() {
    let fx = Fixture::new();
    let store = backed_up(&fx, 1, "");
    fx.ok("CREATE DATABASE other (SIZE = 64 KB)");
    let before = fx.data().digest("other").unwrap();
    let restore = |target: &str, options: &str| {
        let set = unique("rp");
        with_client(
            &fx,
            "restore",
            &set,
            1,
            &store,
            false,
            &format!("RESTORE DATABASE {target} FROM {} {options}", devices_clause(&set, 1)),
        )
        .0
    };
    // Another existing database: never overwritten without REPLACE.
    let r = restore("other", "");
    assert!(r.failed());
    assert!(text(&r).contains("Msg 3154"), "{}", text(&r));
    assert!(text(&r).contains("holds a backup of a database other than the existing 'other' database"));
    assert_eq!(fx.data().digest("other").unwrap(), before, "untouched");
    // The same database: the tail-of-log rule.
    let r = restore("src", "");
    assert!(text(&r).contains("Msg 3159"), "{}", text(&r));
    // With REPLACE it is overwritten with the backup's content.
    let r = restore("other", "WITH REPLACE");
    assert!(!r.failed(), "{}", text(&r));
    assert!(fx.data().identical("src", "other").unwrap());
    fx.assert_no_temp_files();
}

#[test]
fn backup_to_a_set_nobody_created_fails_after_the_grace() {
    let fx = Fixture::with_grace(Duration::from_millis(300));
    fx.ok("CREATE DATABASE src (SIZE = 64 KB)");
    let set = unique("none");
    let b = fx.sql(&format!("BACKUP DATABASE src TO VIRTUAL_DEVICE = '{set}'"));
    assert_eq!(
        text(&b),
        format!(
            "Msg 3201, Level 16, State 1, Server vdisim, Line 1\nCannot open backup device '{set}'. Operating system \
             error 0x80070002(The system cannot find the file specified.).\nMsg 3013, Level 16, State 1, Server vdisim, \
             Line 1\nBACKUP DATABASE is terminating abnormally.\n"
        )
    );
}

#[test]
fn device_count_must_match_the_clients() {
    let fx = Fixture::new();
    fx.ok("CREATE DATABASE src (SIZE = 64 KB)");
    let set = unique("cnt");
    // The client creates 2 devices, the statement names 1.
    let store = fx.store("store");
    let (b, report) = with_client(
        &fx,
        "backup",
        &set,
        2,
        &store,
        false,
        &format!("BACKUP DATABASE src TO VIRTUAL_DEVICE = '{set}'"),
    );
    assert!(b.failed());
    assert!(report.is_none(), "the client sees the abort");
    let out = text(&b);
    assert!(
        out.contains("Msg 3201") && out.contains("for 2 device(s), but the statement names 1"),
        "{out}"
    );
}

#[test]
fn backup_of_a_missing_database_aborts_the_clients_set() {
    let fx = Fixture::new();
    let set = unique("nodb");
    let store = fx.store("store");
    let peer = Peer::spawn(&["client-report", &set, "1", store.to_str().unwrap(), "backup"]);
    // The statement fails before any transfer; vdisim aborts a set that already exists.
    peer.expect("created");
    let start = Instant::now();
    let b = fx.sql(&format!("BACKUP DATABASE nosuch TO VIRTUAL_DEVICE = '{set}'"));
    let (events, ok) = peer.finish();
    assert!(!ok, "{events:?}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the client learned of the failure at once"
    );
    assert!(
        text(&b).starts_with("Msg 911, Level 16, State 1, Server vdisim, Line 1\nDatabase 'nosuch' does not exist.")
    );
    assert_no_leftovers(&set);
}

#[test]
fn log_backup_round_trip_and_kind_mismatch() {
    let fx = Fixture::new();
    fx.ok("CREATE DATABASE src (SIZE = 64 KB)");
    let store = fx.store("log");
    let set = unique("lg");
    let (b, _) = with_client(
        &fx,
        "backup",
        &set,
        1,
        &store,
        false,
        &format!("BACKUP LOG src TO VIRTUAL_DEVICE = '{set}'"),
    );
    assert!(!b.failed(), "{}", text(&b));
    assert!(text(&b).contains("file 'src_log'"));
    assert!(text(&b).contains("BACKUP LOG successfully processed 8 pages"));
    // RESTORE DATABASE from a log backup: refused.
    let set = unique("lg");
    let (r, _) = with_client(
        &fx,
        "restore",
        &set,
        1,
        &store,
        false,
        &format!("RESTORE DATABASE dst FROM VIRTUAL_DEVICE = '{set}'"),
    );
    assert!(
        text(&r).contains("Msg 3135") && text(&r).contains("created by BACKUP LOG"),
        "{}",
        text(&r)
    );
    assert!(!fx.data().exists("dst"));
    // RESTORE LOG onto the database: verified, the database is untouched.
    let digest = fx.data().digest("src").unwrap();
    let set = unique("lg");
    let (r, _) = with_client(
        &fx,
        "restore",
        &set,
        1,
        &store,
        false,
        &format!("RESTORE LOG src FROM VIRTUAL_DEVICE = '{set}'"),
    );
    assert!(!r.failed(), "{}", text(&r));
    assert_eq!(fx.data().digest("src").unwrap(), digest);
}

#[test]
fn restore_with_move_checks_logical_names() {
    let fx = Fixture::new();
    let store = backed_up(&fx, 1, "");
    let set = unique("mv");
    let (r, _) = with_client(
        &fx,
        "restore",
        &set,
        1,
        &store,
        false,
        &format!("RESTORE DATABASE dst FROM VIRTUAL_DEVICE = '{set}' WITH MOVE 'nosuch' TO '/x/y.mdf'"),
    );
    assert!(text(&r).contains("Msg 3234") && text(&r).contains("Logical file 'nosuch' is not part of database 'src'"));
    let set = unique("mv");
    let (r, _) = with_client(
        &fx,
        "restore",
        &set,
        1,
        &store,
        false,
        &format!(
            "RESTORE DATABASE dst FROM VIRTUAL_DEVICE = '{set}' WITH MOVE 'src' TO '/x/dst.mdf', MOVE 'src_log' TO \
             '/x/dst.ldf', STATS = 50"
        ),
    );
    assert!(!r.failed(), "{}", text(&r));
    assert!(
        text(&r).contains("50 percent processed.\n100 percent processed.\n"),
        "{}",
        text(&r)
    );
    assert!(fx.data().identical("src", "dst").unwrap());
}

#[test]
fn a_client_abort_fails_the_backup_with_995() {
    let fx = Fixture::new();
    fx.ok("CREATE DATABASE src (SIZE = 1024 KB)");
    let set = unique("ab");
    // The client completes 3 commands, then SignalAbort (§3.6).
    let peer = Peer::spawn(&["client-abort", &set, "3"]);
    let b = fx.sql(&format!("BACKUP DATABASE src TO VIRTUAL_DEVICE = '{set}'"));
    let (events, ok) = peer.finish();
    assert!(ok, "{events:?}");
    let out = text(&b);
    assert!(
        out.starts_with(&format!(
            "Msg 18210, Level 16, State 1, Server vdisim, Line 1\nBackupMedium::ReportIoError: write failure on \
             backup device '{set}'. Operating system error 995(The I/O operation has been aborted because of either \
             a thread exit or an application request.)."
        )),
        "{out}"
    );
    assert!(out.ends_with("BACKUP DATABASE is terminating abnormally.\n"));
    assert_no_leftovers(&set);
}

#[test]
fn a_killed_client_fails_the_backup_promptly() {
    let fx = Fixture::new();
    fx.ok("CREATE DATABASE src (SIZE = 32 MB)");
    let set = unique("kill");
    let mut peer = Peer::spawn(&["client-hold", &set, "20000"]);
    std::thread::scope(|s| {
        let backup = s.spawn(|| {
            let start = Instant::now();
            (
                fx.sql(&format!("BACKUP DATABASE src TO VIRTUAL_DEVICE = '{set}'")),
                start.elapsed(),
            )
        });
        peer.expect("get-command NOERROR");
        peer.kill();
        let (b, elapsed) = backup.join().unwrap();
        assert!(b.failed(), "{}", text(&b));
        assert!(text(&b).contains("Msg 18210"), "{}", text(&b));
        assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    });
    // The dead client never unlinks its header; the engine's Close does (core behaviour).
    assert_no_leftovers(&set);
}
