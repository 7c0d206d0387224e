//! JUnit XML, as Jenkins, GitLab and GitHub test reporters read it: `<testsuites>`, one
//! `<testsuite>` per implementation, one `<testcase>` per case (classname
//! `implementation.chapter`). FAIL and HANG are `<failure>` (message = expected vs actual, body =
//! requirement and transcript); UNSUPPORTED and failures covered by `--expect` are `<skipped>`;
//! NON-STRICT and INFO pass, with the note in `<system-out>`.

use std::fmt::Write as _;

use super::terminal::result_label;
use super::text::{junit_seconds, xml_attr, xml_text};
use crate::model::{CaseResult, ImplementationRun, Integrity, Role, RunReport, Termination, Verdict};

/// The JUnit XML document.
pub fn to_junit(report: &RunReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let (mut tests, mut failures, mut skipped, mut ms) = (0usize, 0usize, 0usize, 0u64);
    for run in &report.runs {
        let s = run.summary();
        tests += run.results.len();
        failures += s.fail + s.hang;
        skipped += s.unsupported + s.expected_failures;
        ms += run.duration_ms;
    }
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" \
         time=\"{}\" timestamp=\"{}\">",
        xml_attr(&format!("{} certify", report.tool)),
        junit_seconds(ms),
        xml_attr(&report.started_at),
    );
    for (i, run) in report.runs.iter().enumerate() {
        write_suite(&mut out, report, i, run);
    }
    out.push_str("</testsuites>\n");
    out
}

fn write_suite(out: &mut String, report: &RunReport, index: usize, run: &ImplementationRun) {
    let s = run.summary();
    let role = match run.role {
        Role::Client => "client",
        Role::Server => "server",
    };
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" id=\"{index}\" package=\"{role}\" tests=\"{}\" failures=\"{}\" errors=\"0\" \
         skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        xml_attr(&run.implementation),
        run.results.len(),
        s.fail + s.hang,
        s.unsupported + s.expected_failures,
        junit_seconds(run.duration_ms),
        xml_attr(&report.started_at),
    );
    out.push_str("    <properties>\n");
    for (name, value) in [
        ("implementation", run.implementation.as_str()),
        ("role", role),
        ("tool", report.tool.as_str()),
        ("tool_version", report.tool_version.as_str()),
        ("conformant", if run.is_conformant() { "true" } else { "false" }),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            xml_attr(name),
            xml_attr(value)
        );
    }
    out.push_str("    </properties>\n");
    // Dots separate packages in JUnit class names: keep the implementation one segment.
    let package = run.implementation.replace('.', "_");
    for result in &run.results {
        let chapter = report
            .cases
            .iter()
            .find(|c| c.id == result.case_id)
            .map(|c| c.chapter.as_str())
            .unwrap_or("uncatalogued");
        write_case(out, report, run, &format!("{package}.{chapter}"), result);
    }
    out.push_str("  </testsuite>\n");
}

fn write_case(out: &mut String, report: &RunReport, run: &ImplementationRun, classname: &str, r: &CaseResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        xml_attr(&r.case_id),
        xml_attr(classname),
        junit_seconds(r.duration_ms)
    );
    let case = report.cases.iter().find(|c| c.id == r.case_id);
    let regression = report
        .regressions
        .contains(&format!("{}/{}", run.implementation, r.case_id));
    let prefix = if regression { "REGRESSION: " } else { "" };
    let (message, requirement) = match &r.verdict {
        Verdict::Fail {
            expected,
            actual,
            requirement,
        }
        | Verdict::NonStrict {
            expected,
            actual,
            requirement,
        } => (
            format!("{prefix}expected {expected}, actual {actual}"),
            requirement.clone(),
        ),
        Verdict::Hang { step } => (
            format!("{prefix}hung at step: {step}"),
            case.map(|c| c.requirement.clone()).unwrap_or_default(),
        ),
        Verdict::Unsupported { reason } => (format!("unsupported: {reason}"), String::new()),
        Verdict::Informational { note } => (note.clone(), String::new()),
        Verdict::Pass => {
            out.push_str("/>\n");
            return;
        }
    };
    out.push_str(">\n");
    let body = evidence(case.map(|c| c.spec_ref.as_str()), &requirement, r);
    match (&r.verdict, &r.expected_failure) {
        (Verdict::Fail { .. } | Verdict::Hang { .. }, Some(reason)) => {
            let _ = writeln!(
                out,
                "      <skipped message=\"{}\">{}</skipped>",
                xml_attr(&format!("expected failure ({reason}): {} {message}", result_label(r))),
                xml_text(&body)
            );
        }
        (Verdict::Fail { .. } | Verdict::Hang { .. }, None) => {
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                r.verdict.label(),
                xml_attr(&message),
                xml_text(&body)
            );
        }
        (Verdict::Unsupported { .. }, _) => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", xml_attr(&message));
        }
        _ => {
            let _ = writeln!(
                out,
                "      <system-out>{}: {}\n{}</system-out>",
                r.verdict.label(),
                xml_text(&message),
                xml_text(&body)
            );
        }
    }
    out.push_str("    </testcase>\n");
}

/// The failure body: requirement, separately judged integrity/termination, and the transcript.
fn evidence(spec_ref: Option<&str>, requirement: &str, r: &CaseResult) -> String {
    let mut s = String::new();
    if !requirement.is_empty() {
        let _ = writeln!(s, "requirement ({}): {requirement}", spec_ref.unwrap_or("?"));
    }
    if r.integrity != Integrity::NotChecked {
        let _ = writeln!(
            s,
            "integrity: {}",
            if r.integrity == Integrity::Intact {
                "intact"
            } else {
                "CORRUPT"
            }
        );
    }
    let termination = match r.termination {
        Termination::Clean => Some("clean"),
        Termination::Unclean => Some("UNCLEAN"),
        Termination::Killed => Some("KILLED after deadline"),
        Termination::NotChecked => None,
    };
    if let Some(t) = termination {
        let _ = writeln!(s, "termination: {t}");
    }
    if !r.transcript.is_empty() {
        let _ = writeln!(s, "transcript ({} entries):", r.transcript.len());
        for e in &r.transcript {
            let _ = writeln!(s, "{:>8} ms  {:<7}  {}  ->  {}", e.at_ms, e.actor, e.call, e.result);
        }
    }
    s
}
