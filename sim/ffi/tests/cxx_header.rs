//! The C++ header (sim/include/vdi.h) against the drop-in library: a C++ program written only
//! against the SPEC §4 declarations is compiled with the system C++ compiler, its undefined
//! symbols are checked against SPEC §4's mangled names and against what libsqlvdi.so exports,
//! then it is linked to the cdylib and run: the state-table cells a lone client reaches, and
//! the timeout units (milliseconds by default, seconds with VDISIM_TIMEOUT_UNIT=s).

mod common;

use common::*;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use vdisim::pump::{self, StreamSpec};

/// SPEC §4's list, plus the base-object constructors/destructors and the device constructor.
const SPEC_SYMBOLS: [&str; 19] = [
    "_ZN22ClientVirtualDeviceSetC1Ev",
    "_ZN22ClientVirtualDeviceSetC2Ev",
    "_ZN22ClientVirtualDeviceSetD1Ev",
    "_ZN22ClientVirtualDeviceSetD2Ev",
    "_ZN22ClientVirtualDeviceSet6CreateEPcP8VDConfig",
    "_ZN22ClientVirtualDeviceSet16GetConfigurationElP8VDConfig",
    "_ZN22ClientVirtualDeviceSet10OpenDeviceEPcPP19ClientVirtualDevice",
    "_ZN22ClientVirtualDeviceSet5CloseEv",
    "_ZN22ClientVirtualDeviceSet11SignalAbortEv",
    "_ZN22ClientVirtualDeviceSet15OpenInSecondaryEPc",
    "_ZN22ClientVirtualDeviceSet15GetBufferHandleEPhPj",
    "_ZN22ClientVirtualDeviceSet15MapBufferHandleEiPPh",
    "_ZN22ClientVirtualDeviceSet20RegisterDeviceClosedEv",
    "_ZN19ClientVirtualDevice10GetCommandElPP11VDC_Command",
    "_ZN19ClientVirtualDevice15CompleteCommandEP11VDC_Commandiml",
    "_ZN19ClientVirtualDeviceC1Ev",
    "_ZN19ClientVirtualDeviceC2Ev",
    "_ZN19ClientVirtualDeviceD1Ev",
    "_ZN19ClientVirtualDeviceD2Ev",
];

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cpp/abi_check.cpp")
}

fn include_dir() -> PathBuf {
    repo_root().join("sim/include")
}

/// Compiles abi_check.cpp to an object and links it (once per test run); `None` without a
/// compiler.
fn build() -> Option<(PathBuf, PathBuf)> {
    static BUILT: std::sync::OnceLock<Option<(PathBuf, PathBuf)>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_once).clone()
}

fn build_once() -> Option<(PathBuf, PathBuf)> {
    let (_, cxx) = compilers()?;
    let out = profile_dir().join("ffi-abi-check");
    std::fs::create_dir_all(&out).expect("output dir");
    let obj = out.join("abi_check.o");
    let exe = out.join("abi_check");
    let compiled = Command::new(&cxx)
        .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-c"])
        .arg("-I")
        .arg(include_dir())
        .arg(source())
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("run the C++ compiler");
    assert!(
        compiled.status.success(),
        "abi_check.cpp does not compile against vdi.h:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let linked = Command::new(&cxx)
        .arg(&obj)
        .arg("-L")
        .arg(lib_dir())
        .arg("-lsqlvdi")
        .arg(format!("-Wl,-rpath,{}", lib_dir().display()))
        .arg("-pthread")
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the linker");
    assert!(
        linked.status.success(),
        "abi_check does not link against libsqlvdi.so:\n{}",
        String::from_utf8_lossy(&linked.stderr)
    );
    Some((obj, exe))
}

fn nm(args: &[&str], file: &Path) -> Option<String> {
    let out = Command::new("nm").args(args).arg(file).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn header_mangles_to_the_spec_names_and_the_library_exports_them() {
    let Some((obj, _)) = build() else { return };
    let Some(undefined) = nm(&["-u"], &obj) else {
        eprintln!("SKIPPED symbol check: nm is not available");
        return;
    };
    // The program calls every member (plus the set's constructor and destructor).
    for sym in SPEC_SYMBOLS
        .iter()
        .filter(|s| !s.contains("C2Ev") && !s.contains("D2Ev"))
    {
        assert!(
            undefined.contains(sym),
            "the header does not mangle to {sym}; nm -u:\n{undefined}"
        );
    }
    let exported = nm(&["-D", "--defined-only"], &lib_dir().join("libsqlvdi.so")).expect("nm -D on the library");
    for sym in SPEC_SYMBOLS {
        assert!(
            exported.lines().any(|l| l.ends_with(&format!(" T {sym}"))),
            "libsqlvdi.so does not export {sym}"
        );
    }
    // Every C++ symbol the program needs from us is there (no missing member).
    for line in undefined.lines() {
        let sym = line.trim().trim_start_matches("U ").trim();
        if sym.contains("ClientVirtualDevice") {
            assert!(exported.contains(sym), "missing export {sym}");
        }
    }
}

#[test]
fn lone_client_state_table() {
    let Some((_, exe)) = build() else { return };
    let set = unique_set("states");
    let out = run_with_deadline(
        Command::new(&exe).args(["states", &set]),
        Duration::from_secs(60),
        "abi_check states",
    );
    assert!(
        out.status.success(),
        "abi_check states failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(leftover_segments(&set), Vec::<String>::new());
}

/// Runs `abi_check timeouts` with the given environment, playing the server, and returns the
/// measured (GetConfiguration(1), GetCommand(1)) durations in milliseconds.
fn measure(exe: &Path, env: &[(&str, &str)]) -> (u64, u64) {
    let set = unique_set("timeouts");
    let mut cmd = Command::new(exe);
    cmd.args(["timeouts", &set])
        .env_remove("VDISIM_TIMEOUT_UNIT")
        .env_remove("VDISIM_CONFIG_TIMEOUT_UNIT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start abi_check timeouts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let value = |key: &str| -> u64 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("abi_check never printed {key}"));
        line.strip_prefix(&format!("{key}="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}, wanted {key}=N"))
    };
    let server = pump::open_when_created(&set, Duration::from_secs(30)).expect("the program creates the set");
    // Configure only after the program measured its GetConfiguration timeout.
    let config_ms = value("config_ms");
    let spec = StreamSpec::new(1, 0);
    let devs = pump::configure(&server, &spec, true).expect("configure");
    let command_ms = value("command_ms");
    devs[0].close_device().expect("close the device");
    drop(devs);
    let status = wait_with_deadline(&mut child, Duration::from_secs(60), "abi_check timeouts");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "abi_check timeouts failed ({status}):\n{err}");
    let _ = server.close();
    drop(server);
    assert_eq!(leftover_segments(&set), Vec::<String>::new());
    (config_ms, command_ms)
}

#[test]
fn timeouts_are_milliseconds_by_default_and_seconds_on_request() {
    let Some((_, exe)) = build() else { return };
    // Default: a timeout of 1 is one millisecond (bounds are ~500x generous).
    let (config_ms, command_ms) = measure(&exe, &[]);
    assert!(
        config_ms < 500,
        "GetConfiguration(1) took {config_ms} ms in milliseconds mode"
    );
    assert!(
        command_ms < 500,
        "GetCommand(1) took {command_ms} ms in milliseconds mode"
    );
    // Seconds: a wait never ends before its deadline, so the lower bound is exact.
    let (config_ms, command_ms) = measure(
        &exe,
        &[("VDISIM_TIMEOUT_UNIT", "s"), ("VDISIM_CONFIG_TIMEOUT_UNIT", "s")],
    );
    assert!(
        config_ms >= 990,
        "GetConfiguration(1) took {config_ms} ms in seconds mode"
    );
    assert!(command_ms >= 990, "GetCommand(1) took {command_ms} ms in seconds mode");
    // The GetCommand unit alone.
    let (config_ms, command_ms) = measure(&exe, &[("VDISIM_TIMEOUT_UNIT", "s")]);
    assert!(
        config_ms < 500,
        "GetConfiguration(1) took {config_ms} ms with only the command unit in seconds"
    );
    assert!(command_ms >= 990, "GetCommand(1) took {command_ms} ms in seconds mode");
}

/// Compiles and runs one of the COM/C API check programs; `None` without a compiler.
fn run_check(source: &str, compiler: &str, std: &str, set: &str) -> Option<std::process::Output> {
    let out_dir = profile_dir().join("ffi-abi-check");
    std::fs::create_dir_all(&out_dir).expect("output dir");
    let exe = out_dir.join(source.replace('.', "_"));
    let built = Command::new(compiler)
        .arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(include_dir())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cpp").join(source))
        .arg("-L")
        .arg(lib_dir())
        .arg("-lsqlvdi")
        .arg(format!("-Wl,-rpath,{}", lib_dir().display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the compiler");
    assert!(
        built.status.success(),
        "{source} does not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(run_with_deadline(
        Command::new(&exe).arg(set),
        Duration::from_secs(60),
        source,
    ))
}

#[test]
fn com_interface_and_c_api_from_c_and_cxx() {
    let Some((cc, cxx)) = compilers() else { return };
    for (source, compiler, std) in [("com_check.c", &cc, "c99"), ("com_check.cpp", &cxx, "c++11")] {
        let set = unique_set("com");
        let Some(out) = run_check(source, compiler, std, &set) else {
            return;
        };
        assert!(
            out.status.success(),
            "{source} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(leftover_segments(&set), Vec::<String>::new());
    }
}
