//! The native clients of fixtures/clients/, built with the system compiler against our headers
//! and linked to libsqlvdi.so, back up and restore through a server played here by
//! `vdisim::pump` (each client through a different ABI: the §4 C++ classes, the plain C API,
//! the COM-style interface). Data must come back byte for byte; nothing may stay in /dev/shm.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vdisim::pump::{self, StreamSpec};
use vdisim::reference_client::stripe_path;

fn spawn_client(program: &Path, mode: &str, set: &str, devices: u32, store: &Path, extra: &[&str]) -> Child {
    Command::new(program)
        .arg(mode)
        .args(["--set", set, "--devices", &devices.to_string(), "--timeout-ms", "30000"])
        .arg("--store")
        .arg(store)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

fn finish(mut child: Child, what: &str) {
    let status = wait_with_deadline(&mut child, Duration::from_secs(120), what);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "{what} failed ({status}):\n{err}");
}

/// Backs up `bytes` per device through `program` and restores them, checking every byte.
fn round_trip(program: &str, devices: u32, bytes: u64) {
    let Some(clients) = clients() else { return };
    let program = clients.join(program);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let mut spec = StreamSpec::new(devices, bytes);
    spec.max_transfer = 256 * 1024;
    spec.block_size = 4096;

    // BACKUP: the client stores what the server writes.
    let set = unique_set("bk");
    let backup_set = set.clone();
    let child = spawn_client(&program, "backup", &set, devices, &store, &[]);
    let server = pump::open_when_created(&set, Duration::from_secs(30)).expect("client creates the set");
    let devs = pump::configure(&server, &spec, true).expect("configure for backup");
    pump::send_stream(&server, &devs, &spec).expect("stream the backup");
    drop(devs);
    assert_eq!(server.close().result, Ok(()));
    drop(server);
    finish(child, &format!("{} backup", program.display()));

    for i in 0..devices {
        let data = std::fs::read(stripe_path(&store, i)).expect("stripe file");
        assert_eq!(data.len() as u64, bytes, "device {i}: stored length");
        assert_eq!(pump::check_pattern(i, 0, &data), None, "device {i}: stored bytes");
    }

    // RESTORE: the client gives the stream back; the server checks every byte and the EOF.
    let set = unique_set("rs");
    let child = spawn_client(&program, "restore", &set, devices, &store, &[]);
    let server = pump::open_when_created(&set, Duration::from_secs(30)).expect("client creates the set");
    let devs = pump::configure(&server, &spec, false).expect("configure for restore");
    let got = pump::receive_stream(&server, &devs, &spec).expect("restore verifies");
    assert_eq!(got, vec![bytes; devices as usize]);
    drop(devs);
    assert_eq!(server.close().result, Ok(()));
    drop(server);
    finish(child, &format!("{} restore", program.display()));

    // Both sets are gone from /dev/shm (other tests of this process may still hold theirs).
    for set in [backup_set, set] {
        assert_eq!(leftover_segments(&set), Vec::<String>::new());
    }
}

#[test]
fn cxx_client_round_trip_one_device() {
    round_trip("vdiclient", 1, 1_000_000 + 4096);
}

#[test]
fn cxx_client_round_trip_striped() {
    round_trip("vdiclient", 3, 700_000);
}

#[test]
fn c_api_client_round_trip_striped() {
    round_trip("vdiclient-c", 2, 600_000);
}

#[test]
fn com_client_round_trip_striped() {
    round_trip("vdiclient-com", 2, 500_000);
}

/// The certification contract: an unknown option is "unsupported" (exit 89), and a bad
/// usage is not a success.
#[test]
fn clients_answer_unsupported_options_with_89() {
    let Some(clients) = clients() else { return };
    for program in ["vdiclient", "vdiclient-c", "vdiclient-com"] {
        let out = run_with_deadline(
            Command::new(clients.join(program)).args([
                "backup",
                "--set",
                "x",
                "--devices",
                "1",
                "--store",
                "/nonexistent",
                "--tape",
            ]),
            Duration::from_secs(30),
            program,
        );
        assert_eq!(out.status.code(), Some(89), "{program}");
    }
}
