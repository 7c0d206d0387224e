//! `vdisim certify`, `vdisim cases`, `vdisim mutants` end to end: exit codes, reports, and
//! the reference client certified as a separate process through `--exec "vdisim client"`.

use std::process::{Command, Output};

fn vdisim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vdisim"))
        .args(args)
        .output()
        .expect("run vdisim")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn cases_lists_the_catalogue_as_json() {
    let o = vdisim(&["cases", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cases: Vec<vdi_conformance::model::CaseInfo> = serde_json::from_slice(&o.stdout).expect("JSON catalogue");
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cases.len(), "duplicate ids");
    let o = vdisim(&["cases", "--role", "server", "--case", "abort.*"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("abort.server.mid-backup"), "{out}");
    assert!(!out.contains("abort.client."), "{out}");
}

#[test]
fn mutants_lists_every_mutant_with_the_cases_that_catch_it() {
    let o = vdisim(&["mutants", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).expect("JSON list");
    let role = |r: &str| list.iter().filter(|m| m["role"] == r).count();
    assert!(role("client") >= 12 && role("server") >= 6, "{list:?}");
    for m in &list {
        let caught = m["caught_by"].as_array().expect("caught_by");
        assert!(!caught.is_empty(), "{m}");
    }
}

#[test]
fn builtin_client_passes_and_writes_the_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let html = dir.path().join("r.html");
    let o = vdisim(&[
        "certify",
        "--builtin",
        "client",
        "--case",
        "lifecycle.*",
        "--case",
        "stripes.client.two-devices",
        "--json",
        json.to_str().unwrap_or_default(),
        "--junit",
        junit.to_str().unwrap_or_default(),
        "--html",
        html.to_str().unwrap_or_default(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("timing: 5 case(s)"), "{}", text(&o));
    let report = vdi_conformance::report::from_json(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].results.len(), 5);
    assert!(std::fs::metadata(&junit).expect("junit").len() > 0);
    assert!(std::fs::metadata(&html).expect("html").len() > 0);
}

#[test]
fn the_reference_client_as_a_process_passes() {
    let cmd = format!("{} client", env!("CARGO_BIN_EXE_vdisim"));
    let o = vdisim(&[
        "certify",
        "--exec",
        &cmd,
        "--case",
        "lifecycle.client.*",
        "--case",
        "stripes.client.four-devices",
        "--case",
        "abort.client.mid-backup",
        "--case",
        "hostile.client.server-dies-mid-stream",
        "--case",
        "commands.client.complete-handshake",
        "--case",
        "timeouts.client.get-configuration-retry",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("CONFORMANT"), "{}", text(&o));
}

#[test]
fn a_mutant_exits_1_and_names_the_cases_that_caught_it() {
    let o = vdisim(&[
        "certify",
        "--mutant",
        "close-after-flush",
        "--case",
        "lifecycle.client.backup-completes",
        "--case",
        "data.client.write-counts",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("mutant caught by 1 case(s): lifecycle.client.backup-completes"),
        "{out}"
    );
}

#[test]
fn harness_errors_exit_2() {
    assert_eq!(
        vdisim(&["certify", "--mutant", "no-such-mutant"]).status.code(),
        Some(2)
    );
    assert_eq!(
        vdisim(&["certify", "--exec", "/nonexistent/client"]).status.code(),
        Some(2)
    );
    assert_eq!(
        vdisim(&["certify", "--builtin", "server", "--case", "nothing.matches"])
            .status
            .code(),
        Some(2)
    );
    let o = vdisim(&["certify", "--builtin", "client", "--baseline", "/nonexistent/base.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
