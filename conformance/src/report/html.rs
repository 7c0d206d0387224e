//! One self-contained HTML page: a header with per-implementation cards, the implementations x
//! cases matrix (rows grouped by chapter, cells colored by verdict and linked to their evidence),
//! then every failure, hang and missed SHOULD with its requirement, expected vs actual and the
//! transcript of calls and codes. Inline CSS, a few lines of inline JS (expand/collapse, filter),
//! no external resource. Every string is escaped.
//!
//! The markup is also well-formed XML (void elements closed, attributes quoted, no `<` or `&` in
//! the script), so tests can check its structure with an XML parser.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::terminal::result_label;
use super::text::{seconds, short_duration, xml_attr as attr, xml_text as text};
use crate::model::{CaseInfo, CaseResult, ImplementationRun, Integrity, Level, Role, RunReport, Termination, Verdict};

/// The CSS class of a matrix cell (and of a detail item).
fn class_of(result: &CaseResult) -> &'static str {
    match (&result.verdict, result.expected_failure.is_some()) {
        (Verdict::Fail { .. } | Verdict::Hang { .. }, true) => "xfail",
        (Verdict::Pass, _) => "pass",
        (Verdict::NonStrict { .. }, _) => "ns",
        (Verdict::Fail { .. }, _) => "fail",
        (Verdict::Hang { .. }, _) => "hang",
        (Verdict::Unsupported { .. }, _) => "unsup",
        (Verdict::Informational { .. }, _) => "info",
    }
}

fn symbol(class: &str) -> &'static str {
    match class {
        "pass" => "\u{2713}", // check mark
        "fail" => "\u{2717}", // ballot x
        "hang" => "\u{25f7}", // a clock face
        "xfail" => "x",
        "ns" => "~",
        "unsup" => "\u{2013}", // en dash
        "info" => "i",
        "none" => "\u{b7}", // middle dot
        _ => "",
    }
}

const LEGEND: &[(&str, &str)] = &[
    ("pass", "pass"),
    ("fail", "fail (MUST)"),
    ("hang", "hang (deadline passed)"),
    ("xfail", "expected failure (--expect)"),
    ("ns", "SHOULD missed"),
    ("unsup", "unsupported"),
    ("info", "informational"),
    ("na", "other role"),
    ("none", "not run"),
    ("fail regr", "regression"),
];

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Client => "client",
        Role::Server => "server",
    }
}

fn needs_detail(result: &CaseResult) -> bool {
    matches!(
        result.verdict,
        Verdict::Fail { .. } | Verdict::Hang { .. } | Verdict::NonStrict { .. }
    )
}

fn detail_id(run: usize, result: usize) -> String {
    format!("d{run}-{result}")
}

/// A chapter of the matrix: its name and its cases in catalogue order.
struct Chapter<'a> {
    name: &'a str,
    cases: Vec<Row<'a>>,
}

/// A matrix row: a catalogued case, or a result id the catalogue does not list.
struct Row<'a> {
    id: &'a str,
    info: Option<&'a CaseInfo>,
}

fn chapters(report: &RunReport) -> Vec<Chapter<'_>> {
    let mut chapters: Vec<Chapter<'_>> = Vec::new();
    for case in &report.cases {
        let row = Row {
            id: &case.id,
            info: Some(case),
        };
        match chapters.iter_mut().find(|c| c.name == case.chapter) {
            Some(ch) => ch.cases.push(row),
            None => chapters.push(Chapter {
                name: &case.chapter,
                cases: vec![row],
            }),
        }
    }
    let mut orphans: Vec<Row<'_>> = Vec::new();
    for run in &report.runs {
        for r in &run.results {
            let known = report.cases.iter().any(|c| c.id == r.case_id) || orphans.iter().any(|o| o.id == r.case_id);
            if !known {
                orphans.push(Row {
                    id: &r.case_id,
                    info: None,
                });
            }
        }
    }
    if !orphans.is_empty() {
        chapters.push(Chapter {
            name: "(not in the catalogue)",
            cases: orphans,
        });
    }
    chapters
}

/// The HTML report.
pub fn to_html(report: &RunReport) -> String {
    let mut index: HashMap<(usize, &str), usize> = HashMap::new();
    for (ri, run) in report.runs.iter().enumerate() {
        for (ci, r) in run.results.iter().enumerate() {
            index.entry((ri, r.case_id.as_str())).or_insert(ci);
        }
    }
    let chapters = chapters(report);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(
        out,
        "<title>VDI conformance report \u{2014} {}</title>",
        text(&report.started_at)
    );
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>");
    out.push_str("<body>\n");
    write_header(&mut out, report);
    out.push_str("<main>\n");
    write_cards(&mut out, report);
    write_regressions(&mut out, report, &index);
    write_matrix(&mut out, report, &chapters, &index);
    write_details(&mut out, report);
    out.push_str("</main>\n");
    let _ = writeln!(
        out,
        "<footer>{} {} \u{b7} report schema {} \u{b7} the JSON report holds every transcript, passes included</footer>",
        text(&report.tool),
        text(&report.tool_version),
        report.schema_version
    );
    let _ = writeln!(out, "<script>{JS}</script>\n</body>\n</html>");
    out
}

fn write_header(out: &mut String, report: &RunReport) {
    let bad: Vec<&ImplementationRun> = report.runs.iter().filter(|r| !r.is_conformant()).collect();
    let (class, banner) = if report.runs.is_empty() {
        ("bad", "no implementation was run".to_string())
    } else if bad.is_empty() && report.regressions.is_empty() {
        ("ok", format!("all {} implementation(s) conformant", report.runs.len()))
    } else if bad.is_empty() {
        (
            "bad",
            format!("{} regression(s) since the baseline", report.regressions.len()),
        )
    } else {
        (
            "bad",
            format!(
                "{} of {} implementation(s) not conformant",
                bad.len(),
                report.runs.len()
            ),
        )
    };
    out.push_str("<header>\n<div class=\"head\">\n<h1>VDI conformance report</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} {} \u{b7} started {} \u{b7} {} cases in the catalogue \u{b7} {} implementation(s)</p>",
        text(&report.tool),
        text(&report.tool_version),
        text(&report.started_at),
        report.cases.len(),
        report.runs.len()
    );
    out.push_str("</div>\n");
    let _ = writeln!(out, "<div class=\"banner {class}\">{}</div>", text(&banner));
    out.push_str("</header>\n");
}

fn write_cards(out: &mut String, report: &RunReport) {
    out.push_str("<section class=\"cards\">\n");
    for (ri, run) in report.runs.iter().enumerate() {
        let s = run.summary();
        let ok = run.is_conformant();
        let total = run.results.len().max(1);
        let _ = writeln!(
            out,
            "<a class=\"card {}\" href=\"#impl-{ri}\">",
            if ok { "ok" } else { "bad" }
        );
        let _ = writeln!(
            out,
            "<div class=\"card-top\"><span class=\"impl\">{}</span><span class=\"role\">{}</span></div>",
            text(&run.implementation),
            role_name(run.role)
        );
        let _ = writeln!(
            out,
            "<div class=\"status\">{}</div>",
            if ok { "conformant" } else { "not conformant" }
        );
        out.push_str("<div class=\"bar\">");
        for (class, n) in [
            ("pass", s.pass),
            ("ns", s.non_strict),
            ("info", s.informational),
            ("unsup", s.unsupported),
            ("xfail", s.expected_failures),
            ("hang", s.hang),
            ("fail", s.fail),
        ] {
            if n > 0 {
                let _ = write!(
                    out,
                    "<span class=\"{class}\" style=\"width:{:.2}%\"></span>",
                    n as f64 * 100.0 / total as f64
                );
            }
        }
        out.push_str("</div>\n<div class=\"counts\">");
        let mut parts = vec![
            format!("<b>{}</b> passed", s.pass),
            format!(
                "<b class=\"{}\">{}</b> failed",
                if s.fail > 0 { "neg" } else { "" },
                s.fail
            ),
            format!(
                "<b class=\"{}\">{}</b> hung",
                if s.hang > 0 { "neg" } else { "" },
                s.hang
            ),
        ];
        for (n, what) in [
            (s.non_strict, "non-strict"),
            (s.unsupported, "unsupported"),
            (s.informational, "info"),
            (s.expected_failures, "expected"),
        ] {
            if n > 0 {
                parts.push(format!("<b>{n}</b> {what}"));
            }
        }
        let _ = write!(out, "{} \u{b7} {}", parts.join(" \u{b7} "), seconds(run.duration_ms));
        out.push_str("</div>\n</a>\n");
    }
    out.push_str("</section>\n");
}

fn write_regressions(out: &mut String, report: &RunReport, index: &HashMap<(usize, &str), usize>) {
    if report.regressions.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<section class=\"regressions\">\n<h2>Regressions \
         <span class=\"count\">{} failing now, passed in the baseline</span></h2>\n<ul>",
        report.regressions.len()
    );
    for reg in &report.regressions {
        // Find the result this `implementation/case` names, to link to its evidence.
        let target = report.runs.iter().enumerate().find_map(|(ri, run)| {
            let case = reg.strip_prefix(&run.implementation)?.strip_prefix('/')?;
            let ci = *index.get(&(ri, case))?;
            needs_detail(&run.results[ci]).then(|| detail_id(ri, ci))
        });
        match target {
            Some(id) => {
                let _ = writeln!(out, "<li><a href=\"#{id}\"><code>{}</code></a></li>", text(reg));
            }
            None => {
                let _ = writeln!(out, "<li><code>{}</code></li>", text(reg));
            }
        }
    }
    out.push_str("</ul>\n</section>\n");
}

fn write_matrix(out: &mut String, report: &RunReport, chapters: &[Chapter<'_>], index: &HashMap<(usize, &str), usize>) {
    out.push_str(
        "<section class=\"matrix-section\">\n<div class=\"section-head\">\n<h2>Implementations \u{d7} cases</h2>\n",
    );
    out.push_str(
        "<div class=\"controls\"><label><input type=\"checkbox\" id=\"onlybad\"/> only cases with problems</label>",
    );
    out.push_str(
        "<button type=\"button\" id=\"expand\">expand all</button>\
         <button type=\"button\" id=\"collapse\">collapse all</button></div>\n</div>\n",
    );
    out.push_str("<ul class=\"legend\">");
    for (class, label) in LEGEND {
        let _ = write!(
            out,
            "<li><span class=\"v {class}\">{}</span>{}</li>",
            symbol(class.split(' ').next().unwrap_or("")),
            text(label)
        );
    }
    out.push_str("</ul>\n<div class=\"scroll\">\n<table class=\"matrix\">\n<thead><tr>");
    out.push_str("<th class=\"case-h\">case</th><th class=\"title-h\">title</th><th>\u{a7}</th><th>level</th>");
    for (ri, run) in report.runs.iter().enumerate() {
        let _ = write!(
            out,
            "<th class=\"impl {}\" title=\"{} ({})\"><a href=\"#impl-{ri}\"><span>{}</span></a></th>",
            if run.is_conformant() { "ok" } else { "bad" },
            attr(&run.implementation),
            role_name(run.role),
            text(&run.implementation)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let columns = 4 + report.runs.len();
    for chapter in chapters {
        // A row has problems if any implementation failed, hung, missed a SHOULD or was expected to fail.
        let row_bad = |row: &Row<'_>| {
            report.runs.iter().enumerate().any(|(ri, run)| {
                index
                    .get(&(ri, row.id))
                    .is_some_and(|ci| needs_detail(&run.results[*ci]))
            })
        };
        let chapter_bad = chapter.cases.iter().any(row_bad);
        let _ = writeln!(
            out,
            "<tr class=\"chapter {}\"><th colspan=\"{columns}\">{} <span class=\"count\">{} case(s)</span></th></tr>",
            if chapter_bad { "bad" } else { "ok" },
            text(chapter.name),
            chapter.cases.len()
        );
        for row in &chapter.cases {
            let _ = write!(out, "<tr class=\"case {}\">", if row_bad(row) { "bad" } else { "ok" });
            match row.info {
                Some(info) => {
                    let level = match info.level {
                        Level::Must => "MUST",
                        Level::Should => "SHOULD",
                    };
                    let _ = write!(
                        out,
                        "<td class=\"id\"><code>{}</code></td><td class=\"title\" title=\"{}\">{}</td>\
                         <td class=\"spec\">{}</td><td class=\"lvl {}\">{level}</td>",
                        text(row.id),
                        attr(&format!(
                            "{} ({}, {} role): {}",
                            info.title,
                            level,
                            role_name(info.role),
                            info.requirement
                        )),
                        text(&info.title),
                        text(&info.spec_ref),
                        level.to_ascii_lowercase()
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<td class=\"id\"><code>{}</code></td>\
                         <td class=\"title\"></td><td class=\"spec\"></td><td class=\"lvl\"></td>",
                        text(row.id)
                    );
                }
            }
            for (ri, run) in report.runs.iter().enumerate() {
                write_cell(out, &report.regressions, ri, run, row, index);
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn write_cell(
    out: &mut String,
    report_regressions: &[String],
    ri: usize,
    run: &ImplementationRun,
    row: &Row<'_>,
    index: &HashMap<(usize, &str), usize>,
) {
    let Some(&ci) = index.get(&(ri, row.id)) else {
        let other_role = row.info.is_some_and(|i| i.role != run.role);
        let (class, tip) = if other_role {
            (
                "na",
                format!(
                    "{}: a {} case",
                    run.implementation,
                    row.info.map(|i| role_name(i.role)).unwrap_or("")
                ),
            )
        } else {
            ("none", format!("{}: not run", run.implementation))
        };
        let _ = write!(
            out,
            "<td class=\"v {class}\" title=\"{}\">{}</td>",
            attr(&tip),
            symbol(class)
        );
        return;
    };
    let r = &run.results[ci];
    let class = class_of(r);
    let mut tip = format!("{} \u{b7} {}: {}", run.implementation, r.case_id, result_label(r));
    match &r.verdict {
        Verdict::Fail { expected, actual, .. } | Verdict::NonStrict { expected, actual, .. } => {
            let _ = write!(tip, "\nexpected {expected}\nactual {actual}");
        }
        Verdict::Hang { step } => {
            let _ = write!(tip, "\nhung at {step}");
        }
        Verdict::Unsupported { reason } => {
            let _ = write!(tip, "\n{reason}");
        }
        Verdict::Informational { note } => {
            let _ = write!(tip, "\n{note}");
        }
        Verdict::Pass => {}
    }
    if let Some(reason) = &r.expected_failure {
        let _ = write!(tip, "\nknown gap: {reason}");
    }
    let _ = write!(tip, "\n{}", short_duration(r.duration_ms));
    let regression = report_regressions.iter().any(|q| {
        q.strip_prefix(run.implementation.as_str())
            .and_then(|c| c.strip_prefix('/'))
            == Some(r.case_id.as_str())
    });
    let class = if regression {
        tip.push_str("\nREGRESSION: passed in the baseline");
        format!("{class} regr")
    } else {
        class.to_string()
    };
    if needs_detail(r) {
        let _ = write!(
            out,
            "<td class=\"v {class}\" title=\"{}\"><a href=\"#{}\">{}</a></td>",
            attr(&tip),
            detail_id(ri, ci),
            symbol(class_of(r))
        );
    } else {
        let _ = write!(
            out,
            "<td class=\"v {class}\" title=\"{}\">{}</td>",
            attr(&tip),
            symbol(class_of(r))
        );
    }
}

fn write_details(out: &mut String, report: &RunReport) {
    let unexpected: usize = report
        .runs
        .iter()
        .map(|run| {
            run.results
                .iter()
                .filter(|r| r.verdict.is_failure() && r.expected_failure.is_none())
                .count()
        })
        .sum();
    // Open the unexpected failures when there are few enough to read them all.
    let open_unexpected = unexpected <= 12;
    out.push_str("<section class=\"details\">\n<h2>Evidence</h2>\n");
    for (ri, run) in report.runs.iter().enumerate() {
        let items: Vec<(usize, &CaseResult)> = run
            .results
            .iter()
            .enumerate()
            .filter(|(_, r)| needs_detail(r))
            .collect();
        let _ = writeln!(
            out,
            "<h3 id=\"impl-{ri}\">{} <span class=\"role\">{}</span> <span class=\"count\">{}</span></h3>",
            text(&run.implementation),
            role_name(run.role),
            text(&super::terminal::summary_line(run))
        );
        if items.is_empty() {
            out.push_str("<p class=\"clean\">No failure, hang or missed SHOULD.</p>\n");
            continue;
        }
        for (ci, r) in items {
            write_item(out, report, run, ri, ci, r, open_unexpected);
        }
    }
    out.push_str("</section>\n");
}

fn write_item(
    out: &mut String,
    report: &RunReport,
    run: &ImplementationRun,
    ri: usize,
    ci: usize,
    r: &CaseResult,
    open_unexpected: bool,
) {
    let class = class_of(r);
    let case = report.cases.iter().find(|c| c.id == r.case_id);
    let regression = report
        .regressions
        .contains(&format!("{}/{}", run.implementation, r.case_id));
    let open = open_unexpected && r.verdict.is_failure() && r.expected_failure.is_none();
    let _ = writeln!(
        out,
        "<details class=\"item {class}\" id=\"{}\"{}>",
        detail_id(ri, ci),
        if open { " open=\"open\"" } else { "" }
    );
    let _ = writeln!(
        out,
        "<summary><span class=\"badge {class}\">{}</span>{}<code>{}</code> \
         <span class=\"title\">{}</span><span class=\"dur\">{}</span></summary>",
        result_label(r),
        if regression {
            "<span class=\"badge regr\">REGRESSION</span>"
        } else {
            ""
        },
        text(&r.case_id),
        text(case.map(|c| c.title.as_str()).unwrap_or("")),
        short_duration(r.duration_ms)
    );
    out.push_str("<div class=\"body\">\n");
    let requirement = match &r.verdict {
        Verdict::Fail { requirement, .. } | Verdict::NonStrict { requirement, .. } => Some(requirement.as_str()),
        _ => case.map(|c| c.requirement.as_str()),
    };
    if let Some(req) = requirement {
        let _ = writeln!(
            out,
            "<p class=\"req\"><span class=\"spec\">{}</span> {}</p>",
            text(case.map(|c| c.spec_ref.as_str()).unwrap_or("")),
            text(req)
        );
    }
    match &r.verdict {
        Verdict::Fail { expected, actual, .. } | Verdict::NonStrict { expected, actual, .. } => {
            let _ = writeln!(
                out,
                "<div class=\"diff\"><div class=\"exp\"><h4>expected</h4><pre>{}</pre></div>\
                 <div class=\"act\"><h4>actual</h4><pre>{}</pre></div></div>",
                text(expected),
                text(actual)
            );
        }
        Verdict::Hang { step } => {
            let _ = writeln!(
                out,
                "<div class=\"diff\"><div class=\"act\"><h4>did not finish before its deadline</h4>\
                 <pre>{}</pre></div></div>",
                text(step)
            );
        }
        _ => {}
    }
    let mut facts: Vec<String> = Vec::new();
    match r.integrity {
        Integrity::Intact => facts.push("<span class=\"fact good\">data intact</span>".into()),
        Integrity::Corrupt => facts.push("<span class=\"fact badf\">data corrupt</span>".into()),
        Integrity::NotChecked => {}
    }
    match r.termination {
        Termination::Clean => facts.push("<span class=\"fact good\">clean termination</span>".into()),
        Termination::Unclean => facts.push("<span class=\"fact badf\">unclean termination</span>".into()),
        Termination::Killed => facts.push("<span class=\"fact badf\">killed after deadline</span>".into()),
        Termination::NotChecked => {}
    }
    if let Some(reason) = &r.expected_failure {
        facts.push(format!("<span class=\"fact known\">known gap: {}</span>", text(reason)));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "<p class=\"facts\">{}</p>", facts.join(" "));
    }
    if r.transcript.is_empty() {
        out.push_str("<p class=\"none\">No transcript recorded.</p>\n");
    } else {
        out.push_str(
            "<table class=\"transcript\"><thead><tr><th>ms</th><th>actor</th><th>call</th><th>result</th></tr>\
             </thead><tbody>\n",
        );
        for e in &r.transcript {
            let actor_class = match e.actor.as_str() {
                "client" | "server" | "harness" => e.actor.as_str(),
                _ => "other",
            };
            let result_class = if is_error_code(&e.result) { "err" } else { "ok" };
            let _ = writeln!(
                out,
                "<tr><td class=\"t\">{}</td><td><span class=\"actor {actor_class}\">{}</span></td>\
                 <td class=\"call\">{}</td><td class=\"res {result_class}\">{}</td></tr>",
                e.at_ms,
                text(&e.actor),
                text(&e.call),
                text(&e.result)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</div>\n</details>\n");
}

/// Whether a transcript result reads as an error code (highlighted in red).
fn is_error_code(result: &str) -> bool {
    result.contains("VD_E_")
        || (result.contains("ERROR_") && !result.contains("ERROR_SUCCESS"))
        || result.contains("PANIC")
        || result.contains("TIMEOUT")
}

const CSS: &str = r#"
:root{--pass:#2f9e44;--fail:#e03131;--hang:#9c36b5;--xfail:#f08c00;--ns:#fcc419;--unsup:#adb5bd;--info:#4dabf7;
--ink:#1c2330;--muted:#667085;--line:#e4e7ec;--bg:#f5f6f8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
code,pre,.call,.res,.t{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;
font-size:12.5px}
header{display:flex;align-items:center;justify-content:space-between;gap:24px;flex-wrap:wrap;background:#1d2640;
color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:650;letter-spacing:.2px}
header .meta{margin:4px 0 0;color:#b8c0d6;font-size:13px}
.banner{padding:8px 16px;border-radius:999px;font-weight:650;font-size:14px}
.banner.ok{background:var(--pass)}.banner.bad{background:var(--fail)}
main{padding:18px 28px 32px}
h2{font-size:17px;margin:0}
h2 .count,h3 .count{font-weight:400;color:var(--muted);font-size:13px;margin-left:6px}
section{margin-bottom:22px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:12px}
.card{display:block;color:inherit;text-decoration:none;background:#fff;border-radius:10px;padding:12px 14px;
box-shadow:0 1px 2px rgba(16,24,40,.08),0 0 0 1px var(--line);border-left:6px solid var(--pass)}
.card.bad{border-left-color:var(--fail)}
.card:hover{box-shadow:0 2px 8px rgba(16,24,40,.15),0 0 0 1px var(--line)}
.card-top{display:flex;justify-content:space-between;gap:8px;align-items:baseline}
.card .impl{font-weight:650;overflow-wrap:anywhere}
.role{font-size:11px;text-transform:uppercase;letter-spacing:.6px;color:var(--muted);background:#eef1f5;
border-radius:4px;padding:1px 6px;white-space:nowrap}
.card .status{font-size:12px;font-weight:600;color:var(--pass);margin:2px 0 8px}
.card.bad .status{color:var(--fail)}
.bar{display:flex;height:8px;border-radius:4px;overflow:hidden;background:#eef1f5;margin-bottom:8px}
.bar span{display:block;height:100%}
.bar .pass{background:var(--pass)}.bar .fail{background:var(--fail)}.bar .hang{background:var(--hang)}
.bar .xfail{background:var(--xfail)}.bar .ns{background:var(--ns)}.bar .unsup{background:var(--unsup)}
.bar .info{background:var(--info)}
.counts{font-size:12.5px;color:var(--muted)}.counts b{color:var(--ink)}.counts b.neg{color:var(--fail)}
.regressions{background:#fff5f5;border:1px solid #ffc9c9;border-radius:10px;padding:12px 16px}
.regressions h2{color:#c92a2a}.regressions ul{margin:8px 0 0;padding-left:20px}
.regressions a{color:#c92a2a}
.section-head{display:flex;align-items:center;justify-content:space-between;gap:12px;flex-wrap:wrap;margin-bottom:8px}
.controls{display:flex;gap:8px;align-items:center;font-size:13px;color:var(--muted)}
.controls label{margin-right:6px;cursor:pointer}
button{font:inherit;font-size:12.5px;border:1px solid var(--line);background:#fff;border-radius:6px;padding:3px 10px;
cursor:pointer;color:var(--ink)}
button:hover{background:#eef1f5}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:6px 16px;padding:0;margin:0 0 10px;font-size:12.5px;
color:var(--muted)}
.legend li{display:flex;align-items:center;gap:6px}
.legend .v{display:inline-block;width:22px;height:18px;line-height:18px;border-radius:4px;text-align:center}
.scroll{overflow-x:auto;background:#fff;border-radius:10px;box-shadow:0 0 0 1px var(--line)}
table.matrix{border-collapse:separate;border-spacing:0;width:100%}
.matrix th,.matrix td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
.matrix thead th{position:sticky;top:0;background:#fff;z-index:1;vertical-align:bottom;font-size:12px;
color:var(--muted);font-weight:600;border-bottom:2px solid var(--line)}
.matrix th.impl{padding:6px 2px;width:34px;text-align:center}
.matrix th.impl a{color:var(--ink);text-decoration:none}
.matrix th.impl span{display:inline-block;writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;
max-height:260px;overflow:hidden;text-overflow:ellipsis;
font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-weight:500}
.matrix th.impl.bad span{color:var(--fail)}
.matrix tr.chapter th{background:#f0f3f8;color:#344054;font-size:12px;text-transform:uppercase;letter-spacing:.7px;
padding:6px 8px}
.matrix tr.chapter .count{text-transform:none;letter-spacing:0;font-weight:400;color:var(--muted);margin-left:8px}
.matrix tr.case:hover td{background:#f8fafc}
.matrix td.id code{font-size:12px;white-space:nowrap}
.matrix td.title{max-width:340px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;color:#475467}
.matrix td.spec{color:var(--muted);white-space:nowrap;font-size:12px}
.matrix td.lvl{font-size:10.5px;font-weight:700;letter-spacing:.4px}
.lvl.must{color:#344054}.lvl.should{color:#b08800}
.v{text-align:center!important;font-weight:700;color:#fff;font-size:13px;padding:0!important;min-width:34px}
.matrix td.v{border-left:2px solid #fff;height:24px}
.v a{color:inherit;text-decoration:none;display:block;line-height:24px}
.v.pass{background:var(--pass)}.v.fail{background:var(--fail)}.v.hang{background:var(--hang)}
.v.xfail{background:var(--xfail)}.v.ns{background:var(--ns);color:#5c4400}.v.unsup{background:var(--unsup)}
.v.info{background:var(--info)}.v.none{background:#f2f4f7;color:#98a2b3}
.v.na{background:repeating-linear-gradient(135deg,#f2f4f7 0 4px,#e4e7ec 4px 6px)}
.v.fail,.v.hang{box-shadow:inset 0 0 0 1px rgba(0,0,0,.15)}
.v.regr{box-shadow:inset 0 0 0 3px #1d2640}
body.onlybad tr.ok{display:none}
.details h3{font-size:15px;margin:18px 0 8px;display:flex;align-items:center;gap:8px;flex-wrap:wrap;
overflow-wrap:anywhere}
.clean{color:var(--pass);margin:0 0 8px}
details.item{background:#fff;border-radius:8px;box-shadow:0 0 0 1px var(--line);margin:0 0 8px;
border-left:5px solid var(--fail)}
details.item.hang{border-left-color:var(--hang)}details.item.xfail{border-left-color:var(--xfail)}
details.item.ns{border-left-color:var(--ns)}
details.item summary{cursor:pointer;padding:8px 12px;display:flex;align-items:center;gap:10px}
details.item summary .title{color:#475467;flex:1}
details.item summary .dur{color:var(--muted);font-size:12px}
.badge{display:inline-block;font-size:11px;font-weight:700;letter-spacing:.5px;color:#fff;border-radius:4px;
padding:1px 7px}
.badge.fail{background:var(--fail)}.badge.hang{background:var(--hang)}.badge.xfail{background:var(--xfail)}
.badge.ns{background:var(--ns);color:#5c4400}
.badge.regr{background:#c92a2a}
details .body{padding:0 14px 12px 14px}
.req{margin:4px 0 10px;padding:8px 12px;background:#f8f9fb;border-left:3px solid #98a2b3;border-radius:4px}
.req .spec{font-weight:700;color:#344054;margin-right:4px}
.diff{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:10px;margin-bottom:10px}
.diff h4{margin:0 0 4px;font-size:11px;text-transform:uppercase;letter-spacing:.6px}
.diff pre{margin:0;white-space:pre-wrap;word-break:break-word;padding:8px 10px;border-radius:6px}
.exp h4{color:var(--pass)}.exp pre{background:#ebfbee;border:1px solid #b2f2bb}
.act h4{color:var(--fail)}.act pre{background:#fff5f5;border:1px solid #ffc9c9}
.facts{margin:0 0 10px;display:flex;gap:6px;flex-wrap:wrap}
.fact{font-size:12px;border-radius:999px;padding:1px 10px;border:1px solid var(--line)}
.fact.good{color:var(--pass);border-color:#b2f2bb;background:#ebfbee}.fact.badf{color:var(--fail);
border-color:#ffc9c9;background:#fff5f5}
.fact.known{color:#995c00;border-color:#ffd8a8;background:#fff4e6}
p.none{color:var(--muted);margin:0}
table.transcript{border-collapse:collapse;width:100%;font-size:12.5px}
.transcript th{text-align:left;font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.5px;
border-bottom:1px solid var(--line);padding:4px 8px}
.transcript td{padding:3px 8px;border-bottom:1px solid #f2f4f7;vertical-align:top;white-space:pre-wrap;
word-break:break-word}
.transcript td.t{text-align:right;color:var(--muted);width:60px}
.transcript tr:nth-child(even) td{background:#fafbfc}
.actor{font-size:11px;border-radius:4px;padding:0 6px;font-weight:600}
.actor.client{background:#e7f5ff;color:#1864ab}.actor.server{background:#f3f0ff;color:#5f3dc4}
.actor.harness{background:#f1f3f5;color:#495057}.actor.other{background:#fff4e6;color:#995c00}
.res.err{color:var(--fail);font-weight:600}.res.ok{color:#2b8a3e}
footer{padding:12px 28px 24px;color:var(--muted);font-size:12px}
"#;

// No `<` or `&` here: the page must stay well-formed XML.
const JS: &str = r#"
(function(){
function setAll(open){document.querySelectorAll('details.item').forEach(function(d){d.open=open;});}
document.getElementById('expand').onclick=function(){setAll(true);};
document.getElementById('collapse').onclick=function(){setAll(false);};
document.getElementById('onlybad').onchange=function(e){document.body.classList.toggle('onlybad',e.target.checked);};
function reveal(){var id=location.hash.slice(1);var el=id?document.getElementById(id):null;if(el){el.open=true;}}
window.addEventListener('hashchange',reveal);reveal();
})();
"#;
