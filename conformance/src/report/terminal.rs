//! The terminal table: one line per case, details under the ones that need attention, a summary
//! line per implementation and a final line. Plain ASCII decoration; ANSI colors only on request.

use std::fmt::Write as _;

use super::text::{seconds, short_duration, terminal};
use crate::model::{CaseResult, ImplementationRun, Integrity, RunReport, Summary, Termination, Verdict};

/// How to render the terminal table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalOptions {
    /// ANSI colors on verdicts (for a TTY only).
    pub color: bool,
    /// List only the cases that did not pass (the summary lines still count everything).
    pub failures_only: bool,
    /// How many of the last transcript entries to print under an unexpected failure or hang.
    pub transcript_tail: usize,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        TerminalOptions {
            color: false,
            failures_only: false,
            transcript_tail: 5,
        }
    }
}

const VERDICT_WIDTH: usize = 11; // "UNSUPPORTED"
const TIME_WIDTH: usize = 7; // "1234 ms" / "99.9 s"
const DETAIL_INDENT: &str = "      ";

/// The label shown for a result: `XFAIL`/`XHANG` when `--expect` covered the failure.
pub(crate) fn result_label(result: &CaseResult) -> &'static str {
    match (&result.verdict, result.expected_failure.is_some()) {
        (Verdict::Fail { .. }, true) => "XFAIL",
        (Verdict::Hang { .. }, true) => "XHANG",
        (v, _) => v.label(),
    }
}

fn ansi(label: &str) -> &'static str {
    match label {
        "PASS" => "\x1b[32m",
        "FAIL" => "\x1b[1;31m",
        "HANG" => "\x1b[1;35m",
        "XFAIL" | "XHANG" | "NON-STRICT" => "\x1b[33m",
        "UNSUPPORTED" => "\x1b[36m",
        "INFO" => "\x1b[34m",
        _ => "",
    }
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color && !code.is_empty() {
        format!("{code}{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `builtin-client: 61 passed, 0 failed, 0 hung, 1 unsupported, 2 expected failures in 12.3 s`.
/// Passed, failed and hung are always shown; the other counts when not zero.
pub fn summary_line(run: &ImplementationRun) -> String {
    format!(
        "{}: {} in {}",
        terminal(&run.implementation),
        counts(&run.summary()),
        seconds(run.duration_ms)
    )
}

fn counts(s: &Summary) -> String {
    let mut parts = vec![
        format!("{} passed", s.pass),
        format!("{} failed", s.fail),
        format!("{} hung", s.hang),
    ];
    let optional = [
        (s.non_strict, "non-strict", "non-strict"),
        (s.unsupported, "unsupported", "unsupported"),
        (s.informational, "informational", "informational"),
        (s.expected_failures, "expected failure", "expected failures"),
    ];
    for (n, one, many) in optional {
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    parts.join(", ")
}

/// Writes `label: text`, indenting continuation lines of a multi-line text under the first.
fn detail(out: &mut String, label: &str, text: &str) {
    let head = format!("{DETAIL_INDENT}{label:<13}");
    let pad = " ".repeat(head.len());
    let text = terminal(text);
    let mut lines = text.split('\n');
    let _ = writeln!(out, "{}", format!("{head}{}", lines.next().unwrap_or("")).trim_end());
    for line in lines {
        let _ = writeln!(out, "{}", format!("{pad}{line}").trim_end());
    }
}

fn one_line(s: &str) -> String {
    terminal(s).replace('\n', "\\n")
}

/// The terminal table; see [`TerminalOptions`] for the knobs.
pub fn terminal_table_with(report: &RunReport, opts: &TerminalOptions) -> String {
    let mut out = String::new();
    let id_width = report
        .runs
        .iter()
        .flat_map(|r| r.results.iter())
        .map(|r| terminal(&r.case_id).chars().count())
        .max()
        .unwrap_or(0)
        .max(4);

    for (i, run) in report.runs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let role = match run.role {
            crate::model::Role::Client => "client",
            crate::model::Role::Server => "server",
        };
        let _ = writeln!(
            out,
            "{} ({role} under test, {} case{})",
            terminal(&run.implementation),
            run.results.len(),
            if run.results.len() == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            out,
            "  {:<id_width$}  {:<VERDICT_WIDTH$}  {:>TIME_WIDTH$}  notes",
            "case", "verdict", "time"
        );
        let _ = writeln!(
            out,
            "  {}  {}  {}  -----",
            "-".repeat(id_width),
            "-".repeat(VERDICT_WIDTH),
            "-".repeat(TIME_WIDTH),
        );
        for result in &run.results {
            if opts.failures_only && result.verdict == Verdict::Pass {
                continue;
            }
            write_result(&mut out, report, run, result, id_width, opts);
        }
        let _ = writeln!(out, "{}", summary_line(run));
    }

    if !report.regressions.is_empty() {
        let _ = writeln!(
            out,
            "\nregressions (failing now, passed in the baseline): {}",
            report.regressions.len()
        );
        for r in &report.regressions {
            let _ = writeln!(out, "  {}", paint(&one_line(r), "\x1b[1;31m", opts.color));
        }
    }

    let mut total = Summary::default();
    let mut total_ms = 0u64;
    for run in &report.runs {
        let s = run.summary();
        total.pass += s.pass;
        total.non_strict += s.non_strict;
        total.fail += s.fail;
        total.hang += s.hang;
        total.unsupported += s.unsupported;
        total.informational += s.informational;
        total.expected_failures += s.expected_failures;
        total_ms += run.duration_ms;
    }
    let not_conformant: Vec<String> = report
        .runs
        .iter()
        .filter(|r| !r.is_conformant())
        .map(|r| terminal(&r.implementation))
        .collect();
    let verdict = if not_conformant.is_empty() && report.regressions.is_empty() {
        paint("CONFORMANT", "\x1b[1;32m", opts.color)
    } else if not_conformant.is_empty() {
        paint("REGRESSED", "\x1b[1;31m", opts.color)
    } else {
        format!(
            "{}: {}",
            paint("NOT CONFORMANT", "\x1b[1;31m", opts.color),
            not_conformant.join(", ")
        )
    };
    let regressions = match report.regressions.len() {
        0 => String::new(),
        1 => ", 1 regression".to_string(),
        n => format!(", {n} regressions"),
    };
    let _ = writeln!(
        out,
        "\ntotal: {} implementation{}, {}{regressions} in {} -- {verdict}",
        report.runs.len(),
        if report.runs.len() == 1 { "" } else { "s" },
        counts(&total),
        seconds(total_ms),
    );
    out
}

fn write_result(
    out: &mut String,
    report: &RunReport,
    run: &ImplementationRun,
    result: &CaseResult,
    id_width: usize,
    opts: &TerminalOptions,
) {
    let label = result_label(result);
    let qualified = format!("{}/{}", run.implementation, result.case_id);
    let mut notes: Vec<&str> = Vec::new();
    if report.regressions.contains(&qualified) {
        notes.push("REGRESSION");
    }
    if result.integrity == Integrity::Corrupt {
        notes.push("data corrupt");
    }
    match result.termination {
        Termination::Unclean => notes.push("unclean termination"),
        Termination::Killed => notes.push("killed after deadline"),
        Termination::Clean | Termination::NotChecked => {}
    }
    let id = terminal(&result.case_id);
    let id_pad = id_width.saturating_sub(id.chars().count());
    let line = format!(
        "  {id}{}  {}  {:>TIME_WIDTH$}  {}",
        " ".repeat(id_pad),
        paint(&format!("{label:<VERDICT_WIDTH$}"), ansi(label), opts.color),
        short_duration(result.duration_ms),
        notes.join(", ")
    );
    let _ = writeln!(out, "{}", line.trim_end());

    let case = report.cases.iter().find(|c| c.id == result.case_id);
    match &result.verdict {
        Verdict::Pass => {}
        Verdict::Fail {
            expected,
            actual,
            requirement,
        }
        | Verdict::NonStrict {
            expected,
            actual,
            requirement,
        } => {
            detail(out, "requirement:", requirement);
            detail(out, "expected:", expected);
            detail(out, "actual:", actual);
        }
        Verdict::Hang { step } => {
            detail(out, "hung at:", step);
            if let Some(case) = case {
                detail(out, "requirement:", &case.requirement);
            }
        }
        Verdict::Unsupported { reason } => detail(out, "reason:", reason),
        Verdict::Informational { note } => detail(out, "note:", note),
    }
    if let Some(reason) = &result.expected_failure {
        detail(out, "known gap:", reason);
    }
    let unexpected = result.verdict.is_failure() && result.expected_failure.is_none();
    if unexpected && opts.transcript_tail > 0 && !result.transcript.is_empty() {
        let n = result.transcript.len();
        let skip = n.saturating_sub(opts.transcript_tail);
        let title = if skip > 0 {
            format!("transcript (last {} of {n}):", n - skip)
        } else {
            "transcript:".to_string()
        };
        let _ = writeln!(out, "{DETAIL_INDENT}{title}");
        for e in &result.transcript[skip..] {
            let _ = writeln!(
                out,
                "{DETAIL_INDENT}  {:>6} ms  {:<7}  {} -> {}",
                e.at_ms,
                one_line(&e.actor),
                one_line(&e.call),
                one_line(&e.result)
            );
        }
    }
}
