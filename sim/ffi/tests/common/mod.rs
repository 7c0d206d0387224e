//! Shared helpers of the FFI tests: where the built library is, building the native clients
//! with the system compiler, running processes with deadlines, unique set names.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/<profile>`: where cargo put this test binary's libraries (the test runs from
/// `<target>/<profile>/deps/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test binary lives in <target>/<profile>/deps")
}

/// The directory holding `libsqlvdi.so`: `<profile>` after `cargo build`, `<profile>/deps`
/// when only `cargo test` built the cdylib (it is not copied up then).
pub fn lib_dir() -> PathBuf {
    let dir = profile_dir();
    let found = [dir.clone(), dir.join("deps")]
        .into_iter()
        .find(|d| d.join("libsqlvdi.so").exists());
    found.unwrap_or_else(|| {
        panic!(
            "libsqlvdi.so not found in {} or its deps/ (cargo builds the cdylib with the tests)",
            dir.display()
        )
    })
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The C and C++ compilers, or `None` (with the reason printed) when there are none.
pub fn compilers() -> Option<(String, String)> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    if on_path(&cc) && on_path(&cxx) {
        Some((cc, cxx))
    } else {
        eprintln!("SKIPPED: no C/C++ compiler ({cc}, {cxx}) on this machine");
        None
    }
}

/// Builds every native client with scripts/build-clients.sh (once per test binary) into a
/// directory of its own; `None` when there is no compiler (the test then skips).
pub fn clients() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            compilers()?;
            let test_name = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "ffi".into());
            let out = profile_dir().join(format!("ffi-clients-{test_name}"));
            let mut cmd = Command::new("bash");
            cmd.arg(repo_root().join("scripts/build-clients.sh"))
                .arg("--no-cargo")
                .arg("--lib-dir")
                .arg(lib_dir())
                .arg("--out")
                .arg(&out);
            if let Some(v) = vdisim_bin_if_present() {
                cmd.arg("--vdisim").arg(v);
            }
            let output = cmd.output().expect("run build-clients.sh");
            assert!(
                output.status.success(),
                "build-clients.sh failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            Some(out)
        })
        .clone()
}

fn vdisim_bin_if_present() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VDISIM_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = profile_dir().join("vdisim");
    p.exists().then_some(p)
}

fn newest_source(dir: &Path, newest: &mut std::time::SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            newest_source(&p, newest);
        } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
            if m > *newest {
                *newest = m;
            }
        }
    }
}

/// The `vdisim` binary, built if needed. `VDISIM_BIN` wins; then `<target>/<profile>/vdisim`
/// when it is newer than every source of the sim, cli and conformance crates; otherwise
/// `cargo build -p vdisim-cli` into a separate target directory (the outer cargo holds the
/// lock on ours while tests run).
pub fn vdisim_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("VDISIM_BIN") {
            return PathBuf::from(p);
        }
        let root = repo_root();
        let mut newest = std::time::UNIX_EPOCH;
        for d in ["sim/src", "sim/cli/src", "conformance/src", "Cargo.lock"] {
            let p = root.join(d);
            if p.is_file() {
                if let Ok(m) = p.metadata().and_then(|m| m.modified()) {
                    newest = newest.max(m);
                }
            } else {
                newest_source(&p, &mut newest);
            }
        }
        let sibling = profile_dir().join("vdisim");
        if let Ok(m) = sibling.metadata().and_then(|m| m.modified()) {
            if m >= newest {
                return sibling;
            }
        }
        let nested = profile_dir().join("ffi-nested-target");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!(
            "building vdisim into {} (the sibling binary is missing or stale)",
            nested.display()
        );
        let status = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "-p", "vdisim-cli", "--bin", "vdisim"])
            .env("CARGO_TARGET_DIR", &nested)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p vdisim-cli failed");
        nested.join("debug/vdisim")
    })
    .clone()
}

/// A set name unique to this process and call.
pub fn unique_set(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("ffi-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Waits for `child` until `deadline`; kills it and panics with `what` if it is still running.
pub fn wait_with_deadline(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {limit:?}");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// Runs a command to completion with a deadline, capturing its output.
pub fn run_with_deadline(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Drain the pipes in threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let status = wait_with_deadline(&mut child, limit, what);
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// vdisim segments in /dev/shm that belong to the set `set` (its header `vdisim-<instance>-<set>`
/// and buffer areas `...-<set>.buf<n>`).
pub fn leftover_segments(set: &str) -> Vec<String> {
    let header_suffix = format!("-{set}");
    let buffer_part = format!("-{set}.buf");
    std::fs::read_dir("/dev/shm")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("vdisim-") && (n.ends_with(&header_suffix) || n.contains(&buffer_part)))
                .collect()
        })
        .unwrap_or_default()
}
