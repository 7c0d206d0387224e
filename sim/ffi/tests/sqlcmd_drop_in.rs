//! The drop-in story end to end: a C++ client written only against the SPEC §4 declarations
//! (fixtures/clients/vdiclient.cpp), compiled *without* an rpath and run with LD_LIBRARY_PATH
//! pointing at the built libsqlvdi.so (as a real client runs with /opt/mssql/lib), starts its
//! BACKUP and RESTORE with `popen("sqlcmd ...")`; `sqlcmd` on PATH is the vdisim binary. The
//! restored database must be byte-identical to the original.
// Unix only: LD_LIBRARY_PATH, symlinks and libsqlvdi.so are the Unix drop-in story.
#![cfg(unix)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vdisim::engine::database::DataDir;

/// Compiles vdiclient.cpp with no rpath: it only finds libsqlvdi.so through LD_LIBRARY_PATH.
fn build_plain_client() -> Option<PathBuf> {
    let (_, cxx) = compilers()?;
    let out = profile_dir().join("ffi-drop-in");
    std::fs::create_dir_all(&out).expect("output dir");
    let exe = out.join("vdiclient-no-rpath");
    let built = Command::new(cxx)
        .args(["-std=c++11", "-O1", "-pthread", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(repo_root().join("sim/include"))
        .arg(repo_root().join("fixtures/clients/vdiclient.cpp"))
        .arg("-L")
        .arg(lib_dir())
        .arg("-lsqlvdi")
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the C++ compiler");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    Some(exe)
}

fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut paths = vec![bin.to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).expect("PATH")
}

#[test]
fn cxx_client_backs_up_and_restores_through_sqlcmd_and_the_drop_in_library() {
    let Some(client) = build_plain_client() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::os::unix::fs::symlink(vdisim_bin(), bin.join("sqlcmd")).expect("sqlcmd symlink");
    let data = dir.path().join("data");
    let store = dir.path().join("store");
    let path = path_with(&bin);

    let sqlcmd = |query: &str| {
        let out = run_with_deadline(
            Command::new("sqlcmd")
                .args(["-b", "-Q", query])
                .env("PATH", &path)
                .env("VDISIM_DATA", &data),
            Duration::from_secs(120),
            "sqlcmd",
        );
        assert!(
            out.status.success(),
            "sqlcmd -Q {query:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sqlcmd("CREATE DATABASE shop (SIZE = 3MB)");

    let run_client = |mode: &str, db: &str| {
        let out = run_with_deadline(
            Command::new(&client)
                .args([
                    mode,
                    "--database",
                    db,
                    "--devices",
                    "2",
                    "--server",
                    "localhost",
                    "--user",
                    "sa",
                ])
                .args(["--password", "Secret1!"])
                .arg("--store")
                .arg(&store)
                .env("PATH", &path)
                .env("VDISIM_DATA", &data)
                .env("LD_LIBRARY_PATH", lib_dir())
                .env_remove("VDISIM_TIMEOUT_UNIT"),
            Duration::from_secs(180),
            "vdiclient",
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "vdiclient {mode} {db} failed:\n{text}");
        text
    };

    let backup = run_client("backup", "shop");
    assert!(backup.contains("BACKUP DATABASE successfully processed"), "{backup}");
    assert!(backup.contains("Features returned by SQL Server: 0x10000"), "{backup}");
    for i in 0..2 {
        let len = std::fs::metadata(store.join(format!("stripe-{i}.vdi"))).map_or(0, |m| m.len());
        assert!(len > 0, "stripe {i} is empty");
    }

    let restore = run_client("restore", "shop_copy");
    assert!(restore.contains("RESTORE DATABASE successfully processed"), "{restore}");
    assert!(
        restore.contains("Features returned by SQL Server: 0x20000"),
        "{restore}"
    );

    let dd = DataDir::new(&data).expect("data dir");
    assert!(
        dd.identical("shop", "shop_copy").expect("compare databases"),
        "the restored database differs from the original"
    );

    // A statement that fails (no such database) fails the client, promptly, with SQL
    // Server's messages passed through.
    let out = run_with_deadline(
        Command::new(&client)
            .args(["backup", "--database", "no_such_db", "--devices", "1"])
            .arg("--store")
            .arg(dir.path().join("store-missing"))
            .env("PATH", &path)
            .env("VDISIM_DATA", &data)
            .env("LD_LIBRARY_PATH", lib_dir()),
        Duration::from_secs(120),
        "vdiclient backup of a missing database",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Msg 3013"), "{text}");

    // Without the library on the loader path the client cannot even start: the test really
    // went through LD_LIBRARY_PATH.
    let out = run_with_deadline(
        Command::new(&client).arg("--help").env_remove("LD_LIBRARY_PATH"),
        Duration::from_secs(30),
        "vdiclient without LD_LIBRARY_PATH",
    );
    assert!(!out.status.success(), "vdiclient ran without LD_LIBRARY_PATH");

    // The sets (named by the client with a UUID) are gone from /dev/shm.
    for text in [&backup, &restore] {
        let set = text
            .split("VIRTUAL_DEVICE='")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("the client printed its statement");
        assert_eq!(leftover_segments(set), Vec::<String>::new());
    }
}
