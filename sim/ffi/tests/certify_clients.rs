//! `vdisim certify --exec <client>` on every native client of fixtures/clients/ (built here with
//! the system compiler against our headers and libsqlvdi.so):
//! - the correct clients (C++ §4 API, plain C API, COM-style interface) pass every client case;
//! - each seeded-bug client fails (or hangs in) the cases named for it below, and still passes
//!   a plain round trip (so the failure is its bug, not a broken build);
//! - nothing hangs the test: every certify run has a deadline, and the harness's own per-step
//!   deadlines turn a stuck client into a Hang verdict.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CORRECT: [&str; 3] = ["vdiclient", "vdiclient-c", "vdiclient-com"];

/// A case every bug client but `bug-close-after-flush` passes.
const CONTROL: &str = "lifecycle.client.restore-round-trip";

/// Each seeded-bug client and the cases that must catch it (Fail or Hang).
const BUGS: &[(&str, &[&str])] = &[
    (
        "bug-sequential-stripes",
        &[
            "stripes.client.two-devices",
            "stripes.client.four-devices",
            "stripes.client.64-devices",
            "lifecycle.client.opens-every-device",
        ],
    ),
    (
        "bug-ignores-abort",
        &[
            "abort.client.idle-device",
            "abort.client.mid-backup",
            "abort.client.mid-restore",
            "close.client.after-server-abort",
            "hostile.client.server-dies-mid-stream",
        ],
    ),
    (
        "bug-success-after-abort",
        &[
            "abort.client.idle-device",
            "abort.client.mid-backup",
            "abort.client.mid-restore",
            "close.client.after-server-abort",
            "hostile.client.server-dies-mid-stream",
        ],
    ),
    (
        "bug-close-after-flush",
        &[
            "lifecycle.client.backup-completes",
            "close.client.waits-for-vd-e-close",
            "commands.client.several-flushes",
        ],
    ),
    // Only the case that closes the devices one at a time: when all close together the
    // early Close may come after every VD_E_CLOSE anyway.
    ("bug-close-on-first-device", &["close.client.per-device-vd-e-close"]),
    (
        "bug-timeout-is-fatal",
        &["timeouts.client.get-command-retry", "timeouts.client.mid-stream-pause"],
    ),
    ("bug-wrong-byte-count", &["data.client.write-counts"]),
    ("bug-flush-before-writes", &["commands.client.flush-after-writes"]),
    (
        "bug-unknown-command-success",
        &["commands.client.unknown-not-supported"],
    ),
    (
        "bug-eof-with-success",
        &["data.client.restore-eof-short", "data.client.restore-eof-exact"],
    ),
    ("bug-no-signal-abort", &["abort.client.signals-own-error"]),
    (
        "bug-clear-error-not-supported",
        &[
            "commands.client.clear-error",
            "commands.client.continues-after-clear-error",
        ],
    ),
    (
        "bug-first-device-only",
        &["lifecycle.client.opens-every-device", "stripes.client.two-devices"],
    ),
];

/// One `vdisim certify --exec` run: the exit code and each case's verdict kind.
struct Certified {
    code: Option<i32>,
    verdicts: BTreeMap<String, String>,
    output: String,
}

fn certify(program: &Path, cases: &[&str]) -> Certified {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    let mut cmd = Command::new(vdisim_bin());
    cmd.arg("certify").arg("--exec").arg(program).arg("--json").arg(&json);
    for c in cases {
        cmd.args(["--case", c]);
    }
    let out = run_with_deadline(
        &mut cmd,
        Duration::from_secs(900),
        &format!("certify {}", program.display()),
    );
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no JSON report from certify {} ({e}):\n{output}", program.display()));
    let report: serde_json::Value = serde_json::from_str(&text).expect("the JSON report parses");
    let mut verdicts = BTreeMap::new();
    for run in report["runs"].as_array().into_iter().flatten() {
        for r in run["results"].as_array().into_iter().flatten() {
            let id = r["case_id"].as_str().unwrap_or_default().to_string();
            let kind = r["verdict"]["kind"].as_str().unwrap_or_default().to_string();
            verdicts.insert(id, kind);
        }
    }
    Certified {
        code: out.status.code(),
        verdicts,
        output,
    }
}

#[test]
fn correct_clients_pass_every_client_case() {
    let Some(clients) = clients() else { return };
    for name in CORRECT {
        let run = certify(&clients.join(name), &[]);
        let bad: Vec<_> = run
            .verdicts
            .iter()
            .filter(|(_, kind)| !matches!(kind.as_str(), "pass" | "informational"))
            .collect();
        assert!(bad.is_empty(), "{name}: not every case passed: {bad:?}\n{}", run.output);
        assert!(
            run.verdicts.len() >= 40,
            "{name}: only {} cases ran",
            run.verdicts.len()
        );
        assert_eq!(run.code, Some(0), "{name}: certify exit code\n{}", run.output);
    }
}

#[test]
fn each_seeded_bug_fails_its_named_cases() {
    let Some(clients) = clients() else { return };
    // Three certify runs at a time: most of their time is the harness waiting on deadlines.
    let failures: Vec<String> = std::thread::scope(|s| {
        let mut failures = Vec::new();
        for chunk in BUGS.chunks(3) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(name, caught_by)| {
                    let program = clients.join(name);
                    s.spawn(move || check_bug(name, &program, caught_by))
                })
                .collect();
            for h in handles {
                if let Err(e) = h.join().unwrap_or_else(|_| Err("the check panicked".into())) {
                    failures.push(e);
                }
            }
        }
        failures
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check_bug(name: &str, program: &Path, caught_by: &[&str]) -> Result<(), String> {
    let control = *name != *"bug-close-after-flush";
    let mut cases: Vec<&str> = caught_by.to_vec();
    if control {
        cases.push(CONTROL);
    }
    let run = certify(program, &cases);
    let mut problems = Vec::new();
    for case in caught_by {
        match run.verdicts.get(*case).map(String::as_str) {
            Some("fail") | Some("hang") => {}
            other => problems.push(format!("{case}: expected fail or hang, got {other:?}")),
        }
    }
    if control && run.verdicts.get(CONTROL).map(String::as_str) != Some("pass") {
        problems.push(format!(
            "{CONTROL}: the control case did not pass ({:?})",
            run.verdicts.get(CONTROL)
        ));
    }
    if run.code != Some(1) {
        problems.push(format!("certify exited {:?}, expected 1", run.code));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}:\n  {}\n{}", problems.join("\n  "), run.output))
    }
}
