//! The `vdisim` command line as a user runs it: `demo`, `sql` (also as `sqlcmd`) and `client`,
//! each a separate process talking over real shared memory.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vdisim::engine::database::DataDir;

const VDISIM: &str = env!("CARGO_BIN_EXE_vdisim");

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("cli-{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn run(args: &[&str]) -> Output {
    Command::new(VDISIM)
        .args(args)
        .env_remove("VDISIM_DATA")
        .stdin(Stdio::null())
        .output()
        .expect("run vdisim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn no_shm_leftovers(tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = std::fs::read_dir("/dev/shm")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.contains(tag))
                    .collect()
            })
            .unwrap_or_default();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "segments left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn demo_works_with_1_4_and_64_devices() {
    for devices in ["1", "4", "64"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut args = vec![
            "demo",
            "--devices",
            devices,
            "--size",
            "2M",
            "--data-dir",
            data.to_str().unwrap(),
        ];
        // The conformance step runs once (with 4 devices); it does not depend on the device count.
        let with_suite = devices == "4";
        if !with_suite {
            args.push("--skip-conformance");
        }
        let o = run(&args);
        let out = stdout(&o);
        assert!(
            o.status.success(),
            "demo --devices {devices} failed:\n{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.contains("is byte-identical to [vdisim_demo] (2097152 bytes)"),
            "{out}"
        );
        assert!(
            out.contains("BACKUP DATABASE successfully processed 256 pages"),
            "{out}"
        );
        assert!(
            out.contains("RESTORE DATABASE successfully processed 256 pages"),
            "{out}"
        );
        assert!(out.trim_end().ends_with("OK"), "{out}");
        if with_suite {
            assert!(out.contains("conformance suite: passed"), "{out}");
            assert!(
                out.contains("builtin-client:") && out.contains("builtin-server:"),
                "{out}"
            );
        }
        // The databases and the backup files are cleaned up without --keep.
        let dd = DataDir::new(&data).unwrap();
        assert!(dd.list().unwrap().is_empty(), "{:?}", dd.list());
        assert!(!data.join("vdisim_demo.backup").exists());
    }
    no_shm_leftovers("vdisim_demo_");
}

#[test]
fn demo_keep_leaves_the_databases() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = run(&[
        "demo",
        "--devices",
        "2",
        "--size",
        "300K",
        "--data-dir",
        data.to_str().unwrap(),
        "--keep",
        "--skip-conformance",
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    let dd = DataDir::new(&data).unwrap();
    assert_eq!(dd.list().unwrap(), vec!["vdisim_demo", "vdisim_demo_restored"]);
    assert!(dd.identical("vdisim_demo", "vdisim_demo_restored").unwrap());
    assert!(data.join("vdisim_demo.backup").join("stripe-1.vdi").exists());
}

/// `vdisim client` and `vdisim sql` as two separate processes, as a backup tool would run them.
fn client_and_sql(data: &Path, store: &Path, mode: &str, set: &str, sql: &str, extra: &[&str]) -> (Output, Output) {
    let mut args = vec![
        "client",
        mode,
        "--set",
        set,
        "--devices",
        "2",
        "--store",
        store.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let client = Command::new(VDISIM)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sql_out = run(&["sql", "--data-dir", data.to_str().unwrap(), "-Q", sql]);
    let client_out = client.wait_with_output().unwrap();
    no_shm_leftovers(set);
    (client_out, sql_out)
}

#[test]
fn client_and_sql_processes_back_up_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = dir.path().join("store");
    let o = run(&[
        "sql",
        "--data-dir",
        data.to_str().unwrap(),
        "-Q",
        "CREATE DATABASE Sales (SIZE = 2 MB)",
    ]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "", "CREATE DATABASE prints nothing");

    let set = unique("bk");
    let (client, sql) = client_and_sql(
        &data,
        &store,
        "backup",
        &set,
        &format!("BACKUP DATABASE Sales TO VIRTUAL_DEVICE = '{set}', VIRTUAL_DEVICE = '{set}_1' WITH BLOCKSIZE = 4096"),
        &["--request-complete", "--json"],
    );
    assert!(sql.status.success(), "{}", stdout(&sql));
    assert!(stdout(&sql).contains("BACKUP DATABASE successfully processed 256 pages in "));
    assert!(client.status.success(), "{}", String::from_utf8_lossy(&client.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout(&client).trim()).unwrap();
    assert_eq!(report["ok"], true);
    for d in report["report"]["devices"].as_array().unwrap() {
        assert_eq!(d["completes"], 1, "--request-complete gets one VDC_Complete per device");
        assert_eq!(d["ended_with"], "VD_E_CLOSE");
    }

    let set = unique("rs");
    let (client, sql) = client_and_sql(
        &data,
        &store,
        "restore",
        &set,
        &format!("RESTORE DATABASE Sales_copy FROM VIRTUAL_DEVICE = '{set}', VIRTUAL_DEVICE = '{set}_1'"),
        &[],
    );
    assert!(sql.status.success(), "{}", stdout(&sql));
    assert!(client.status.success());
    assert!(stdout(&client).contains("ended with VD_E_CLOSE"), "{}", stdout(&client));
    let dd = DataDir::new(&data).unwrap();
    assert!(dd.identical("Sales", "Sales_copy").unwrap());

    // Restoring over it again without REPLACE: refused, and the SQL side exits 1.
    let set = unique("rs");
    let (client, sql) = client_and_sql(
        &data,
        &store,
        "restore",
        &set,
        &format!("RESTORE DATABASE Sales_copy FROM VIRTUAL_DEVICE = '{set}', VIRTUAL_DEVICE = '{set}_1'"),
        &[],
    );
    assert_eq!(sql.status.code(), Some(1));
    assert!(stdout(&sql).contains("Msg 3154"), "{}", stdout(&sql));
    assert_eq!(client.status.code(), Some(1), "the client sees the abort");
}

#[test]
fn client_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing to restore from: exit 1 with the reason.
    let o = run(&[
        "client",
        "restore",
        "--set",
        &unique("x"),
        "--store",
        dir.path().join("nothing").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("stripe-0.vdi"));
    // Unusable arguments: 2.
    let o = run(&["client", "backup", "--set", "s", "--devices", "65", "--store", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["client", "copy", "--set", "s", "--store", "x"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sql_exit_codes_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    // A syntax error stops its batch only; the next batch runs.
    let script = dir.path().join("s.sql");
    std::fs::write(
        &script,
        "CREATE DATABASE a (SIZE = 64 KB)\nSELEC 1\nGO\nCREATE DATABASE b (SIZE = 64 KB)\nGO\n",
    )
    .unwrap();
    let o = run(&["sql", "--data-dir", d, "-i", script.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "vdisim sql exits 1 on any error");
    assert!(
        stdout(&o).starts_with("Msg 102, Level 15, State 1, Server vdisim, Line 2\n"),
        "{}",
        stdout(&o)
    );
    let dd = DataDir::new(&data).unwrap();
    assert_eq!(dd.list().unwrap(), vec!["b"]);
    // With -b it stops at the first failing batch.
    std::fs::write(&script, "SELEC 1\nGO\nCREATE DATABASE c (SIZE = 64 KB)\n").unwrap();
    let o = run(&["sql", "--data-dir", d, "-b", "-i", script.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dd.exists("c"));
    // Missing input file.
    let o = run(&["sql", "--data-dir", d, "-i", "/nonexistent/x.sql"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Invalid filename"));
    // Standard input.
    let mut child = Command::new(VDISIM)
        .args(["sql", "--data-dir", d])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"DROP DATABASE b\nGO\n").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(!dd.exists("b"));
}

#[cfg(unix)]
#[test]
fn invoked_as_sqlcmd_it_exits_like_sqlcmd() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sqlcmd");
    std::os::unix::fs::symlink(VDISIM, &link).unwrap();
    let sqlcmd = |args: &[&str]| {
        Command::new(&link)
            .args(args)
            .env("VDISIM_DATA", dir.path().join("data"))
            .output()
            .unwrap()
    };
    let bad = "BACKUP DATABASE nosuch TO VIRTUAL_DEVICE = 'v'";
    let o = sqlcmd(&["-S", "localhost", "-E", "-Q", bad]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "sqlcmd without -b exits 0 even after an error"
    );
    assert!(stdout(&o).contains("Msg 911, Level 16"));
    let o = sqlcmd(&[
        "-S",
        "localhost",
        "-U",
        "sa",
        "-P",
        "pw",
        "-b",
        "-h",
        "-1",
        "-W",
        "-Q",
        bad,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = sqlcmd(&["-b", "-Q", "CREATE DATABASE ok (SIZE = 64 KB)"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        dir.path().join("data").join("ok.mdf").exists(),
        "VDISIM_DATA is the data directory"
    );
    let o = sqlcmd(&["-r1", "-Q", bad]);
    assert_eq!(stdout(&o), "", "-r1 sends messages to standard error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Msg 3013"));
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["demo", "sql", "client"] {
        let o = run(&[sub, "--help"]);
        assert!(o.status.success(), "{sub} --help");
        assert!(stdout(&o).contains("Usage"), "{sub}: {}", stdout(&o));
    }
}

/// A full /dev/shm: the server's EndConfiguration allocates the buffer area up front, so the
/// BACKUP fails with VD_E_MEMORY (Msg 3013) instead of the first write into an unbacked page
/// killing the process with SIGBUS (what happened before). Runs the demo in a private mount
/// namespace whose /dev/shm is a 3 MiB tmpfs (the demo's area is about 6 MiB); needs root
/// and unshare(1), and says so when it cannot run.
#[cfg(target_os = "linux")]
#[test]
fn a_full_dev_shm_is_vd_e_memory_not_a_bus_error() {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        eprintln!("skipped: needs root for a private /dev/shm");
        return;
    }
    let script =
        format!("mount -t tmpfs -o size=3m tmpfs /dev/shm && exec {VDISIM} demo --devices 2 --skip-conformance");
    let out = match Command::new("unshare").args(["-m", "sh", "-c", &script]).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipped: unshare: {e}");
            return;
        }
    };
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    if text.contains("unshare failed") || text.contains("mount: ") {
        eprintln!("skipped: no private mount namespace here: {text}");
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "a clean failure, not a signal: {:?}\n{text}",
        out.status
    );
    assert!(
        text.contains("EndConfiguration failure") && text.contains("VD_E_MEMORY"),
        "{text}"
    );
    assert!(text.contains("BACKUP DATABASE is terminating abnormally."), "{text}");
}
