//! The terminal table: one line per case, details under failures, a summary line per
//! implementation and a final line; ASCII decoration, no color unless asked, hostile text defused.

mod report_fixture;

use report_fixture::{pass, sample_report, with};
use vdi_conformance::model::{ImplementationRun, Role, Verdict};
use vdi_conformance::report::{summary_line, terminal_table, terminal_table_with, TerminalOptions};

#[test]
fn terminal_table_snapshot() {
    insta::assert_snapshot!("terminal_table", terminal_table(&sample_report()));
}

#[test]
fn terminal_table_without_color_has_no_escape_sequences_at_all() {
    let table = terminal_table(&sample_report());
    for raw in ['\u{1b}', '\u{9b}', '\u{202e}', '\u{202c}', '\u{0}', '\r'] {
        assert!(!table.contains(raw), "raw {raw:?} reached the terminal");
    }
    // The hostile text is still there, made visible.
    assert!(table.contains("\\x1b[31mred\\x1b[0m \\x9b2J \\u{202e}evil"));
    // Our own decoration is ASCII: every line that is not implementation text.
    for line in table
        .lines()
        .filter(|l| l.trim_start().starts_with("case") || l.contains("---"))
    {
        assert!(line.is_ascii(), "{line}");
    }
}

#[test]
fn summary_line_reads_like_the_issue_example() {
    let mut results: Vec<_> = (0..61).map(|i| pass(&format!("case.{i}"), 1)).collect();
    results.push(with(
        "case.unsupported",
        Verdict::Unsupported {
            reason: "exit 89".into(),
        },
        1,
    ));
    for id in ["case.x1", "case.x2"] {
        let mut r = with(
            id,
            Verdict::Hang {
                step: "GetCommand".into(),
            },
            1,
        );
        r.expected_failure = Some("known".into());
        results.push(r);
    }
    let run = ImplementationRun {
        implementation: "builtin-client".into(),
        role: Role::Client,
        results,
        duration_ms: 12_345,
    };
    assert_eq!(
        summary_line(&run),
        "builtin-client: 61 passed, 0 failed, 0 hung, 1 unsupported, 2 expected failures in 12.3 s"
    );
}

#[test]
fn every_implementation_gets_its_summary_line_and_the_last_line_judges_the_run() {
    let report = sample_report();
    let table = terminal_table(&report);
    for run in &report.runs {
        assert!(table.lines().any(|l| l == summary_line(run)), "{}", summary_line(run));
    }
    let last = table.lines().last().unwrap_or("");
    assert!(
        last.starts_with("total: 4 implementations, 18 passed, 2 failed, 1 hung,"),
        "{last}"
    );
    assert!(last.contains("1 regression"), "{last}");
    assert!(
        last.contains("-- NOT CONFORMANT: mutant:services-stripes-sequentially, exec:"),
        "{last}"
    );

    let mut good = sample_report();
    good.runs.retain(|r| r.implementation.starts_with("builtin"));
    good.regressions.clear();
    let table = terminal_table(&good);
    let last = table.lines().last().unwrap_or("");
    assert_eq!(
        last,
        "total: 2 implementations, 9 passed, 0 failed, 0 hung in 1.5 s -- CONFORMANT"
    );

    let mut regressed = good.clone();
    regressed.regressions.push("builtin-client/x".into());
    let table = terminal_table(&regressed);
    assert!(table.lines().last().unwrap_or("").ends_with("-- REGRESSED"));
}

#[test]
fn failures_show_requirement_expected_actual_and_the_transcript_tail() {
    let table = terminal_table(&sample_report());
    let at = table
        .find("termination.close-after-vd-e-close    FAIL")
        .expect("the failing line");
    let block: Vec<&str> = table[at..].lines().take(11).collect();
    assert!(
        block[0].ends_with("REGRESSION, data corrupt, unclean termination"),
        "{}",
        block[0]
    );
    assert_eq!(
        block[1].trim(),
        "requirement: The client MUST call Close only after GetCommand returned VD_E_CLOSE on every device."
    );
    assert_eq!(
        block[2].trim(),
        "expected:    GetCommand returns VD_E_CLOSE on devices 0 and 1, then Close"
    );
    assert_eq!(
        block[3].trim(),
        "actual:      Close on device 1 before VD_E_CLOSE (set aborted)"
    );
    assert_eq!(block[4].trim(), "transcript (last 5 of 10):");
    assert_eq!(
        block[9].trim(),
        "11 ms  server   GetCompletion(dev=1, timeout=1000) -> VD_E_ABORT"
    );

    let no_tail = terminal_table_with(
        &sample_report(),
        &TerminalOptions {
            transcript_tail: 0,
            ..TerminalOptions::default()
        },
    );
    assert!(!no_tail.contains("transcript"));
}

#[test]
fn colors_only_when_asked() {
    let opts = TerminalOptions {
        color: true,
        ..TerminalOptions::default()
    };
    let table = terminal_table_with(&sample_report(), &opts);
    assert!(table.contains("\u{1b}[32mPASS       \u{1b}[0m"));
    assert!(table.contains("\u{1b}[1;31mFAIL       \u{1b}[0m"));
    assert!(table.contains("\u{1b}[1;35mHANG       \u{1b}[0m"));
    assert!(table.contains("\u{1b}[33mXHANG      \u{1b}[0m"));
    assert!(
        !table.contains("\u{1b}[31mred"),
        "hostile escapes stay defused with colors on"
    );
    assert!(!terminal_table(&sample_report()).contains('\u{1b}'));
}

#[test]
fn failures_only_lists_what_needs_attention() {
    let opts = TerminalOptions {
        failures_only: true,
        ..TerminalOptions::default()
    };
    let report = sample_report();
    let table = terminal_table_with(&report, &opts);
    assert!(!table.lines().any(|l| l.contains(" PASS ")), "{table}");
    for run in &report.runs {
        assert!(table.contains(&summary_line(run)));
    }
    for shown in ["FAIL", "XHANG", "NON-STRICT", "UNSUPPORTED", "INFO", "HANG"] {
        assert!(table.lines().any(|l| l.contains(&format!(" {shown} "))), "{shown}");
    }
}
