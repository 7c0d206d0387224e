//! The external-program adapter: the contract's arguments, exit 89 = Unsupported, an early
//! exit = Fail, a program that never creates its set = Hang (and is killed). The reference
//! client as a process (`--exec "vdisim client"`) is certified in the CLI's tests.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vdi_conformance::exec::ExecClient;
use vdi_conformance::model::Verdict;
use vdi_conformance::{certify_client, Options, Timing};

/// A fake client program in its own scratch directory, removed when dropped.
struct Script {
    path: PathBuf,
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn script(name: &str, body: &str) -> Script {
    let dir = std::env::temp_dir().join(format!("vdi-conformance-exec-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Script { path }
}

fn opts(cases: &[&str]) -> Options {
    Options {
        cases: cases.iter().map(|s| s.to_string()).collect(),
        jobs: 2,
        timing: Timing {
            create_wait: Duration::from_secs(2),
            ..Timing::default()
        },
    }
}

#[test]
fn exit_89_is_unsupported_and_arguments_follow_the_contract() {
    let args_file = std::env::temp_dir().join(format!("vdi-conformance-exec-args-{}", std::process::id()));
    let s = script(
        "unsupported.sh",
        &format!(
            "echo \"$@\" >> '{}'\necho 'no restore here' >&2\nexit 89",
            args_file.display()
        ),
    );
    let client = ExecClient::parse(&format!("{} --flag", s.path.display())).expect("parse");
    let run = certify_client(
        &client,
        &opts(&["lifecycle.client.backup-completes", "config.client.request-complete"]),
    );
    for r in &run.results {
        match &r.verdict {
            Verdict::Unsupported { reason } => assert!(reason.contains("no restore here"), "{reason}"),
            other => panic!("{}: {other:?}", r.case_id),
        }
    }
    assert!(run.is_conformant());
    let args = std::fs::read_to_string(&args_file).expect("the script ran");
    let _ = std::fs::remove_file(&args_file);
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(lines.len(), 2, "{args}");
    for line in lines {
        let w: Vec<&str> = line.split(' ').collect();
        assert_eq!(w[0], "--flag", "{line}");
        assert_eq!(w[1], "backup", "{line}");
        assert_eq!(w[2], "--set", "{line}");
        assert!(w[3].starts_with("vdic"), "{line}");
        assert_eq!(&w[4..6], ["--devices", "1"], "{line}");
        assert_eq!(w[6], "--store", "{line}");
        assert_eq!(&w[8..10], ["--timeout-ms", "2000"], "{line}");
    }
    assert!(args.contains("--request-complete"), "{args}");
}

#[test]
fn a_program_that_quits_at_once_fails() {
    let s = script("quits.sh", "exit 0");
    let client = ExecClient::parse(&s.path.display().to_string()).expect("parse");
    let run = certify_client(&client, &opts(&["lifecycle.client.backup-completes"]));
    match &run.results[0].verdict {
        Verdict::Fail { actual, .. } => assert!(actual.contains("before creating the set"), "{actual}"),
        other => panic!("{other:?}"),
    }
    assert!(!run.is_conformant());
}

#[test]
fn a_program_that_never_creates_its_set_hangs_and_is_killed() {
    let s = script("sleeps.sh", "exec sleep 60");
    let client = ExecClient::parse(&s.path.display().to_string()).expect("parse");
    let t = Instant::now();
    let run = certify_client(&client, &opts(&["lifecycle.client.backup-completes"]));
    match &run.results[0].verdict {
        Verdict::Hang { step } => assert!(step.contains("create the set"), "{step}"),
        other => panic!("{other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the run waited {:?}",
        t.elapsed()
    );
}

#[test]
fn a_missing_program_is_a_harness_error() {
    let client = ExecClient::parse("/nonexistent/vdi-client").expect("parse");
    let run = certify_client(&client, &opts(&["lifecycle.client.backup-completes"]));
    match &run.results[0].verdict {
        Verdict::Fail { actual, .. } => assert!(actual.starts_with("harness error:"), "{actual}"),
        other => panic!("{other:?}"),
    }
}
