//! Reports of a run: terminal table, JSON, JUnit XML, one self-contained HTML page,
//! expected-failure files (`--expect`) and baselines (`--baseline`).
//!
//! Every string in a report may come from the implementation under test (an external program's
//! output, a transcript), so each format escapes everything: markup for XML and HTML, and control
//! characters and bidi overrides for all formats (shown as `\x1b`, `\u{202e}`).

mod expect;
mod glob;
mod html;
mod json;
mod junit;
mod terminal;
mod text;

use crate::model::RunReport;

pub use expect::{apply_expectations, exit_code, regressions, Expectations};
pub use glob::glob_match;
pub use json::{from_json, to_json};
pub use terminal::{summary_line, terminal_table_with, TerminalOptions};

/// A terminal table with one line per case and a summary line per implementation; plain ASCII
/// decoration, no color (see [`terminal_table_with`] for colors and a failures-only view).
pub fn terminal_table(report: &RunReport) -> String {
    terminal_table_with(report, &TerminalOptions::default())
}

/// JUnit XML: one `<testsuite>` per implementation, one `<testcase>` per case.
pub fn to_junit(report: &RunReport) -> String {
    junit::to_junit(report)
}

/// One self-contained HTML page: implementations x cases matrix, failures with transcripts.
pub fn to_html(report: &RunReport) -> String {
    html::to_html(report)
}
