//! The HTML report: one self-contained page with the implementations x cases matrix and the
//! evidence of every failure; everything escaped. The page is well-formed XML by design, so
//! these tests check its structure with an XML parser.
//!
//! `VDISIM_REPORT_SAMPLE=/path/sample.html cargo test -p vdi-conformance --test report_html`
//! also writes the fixture's reports (HTML, a large synthetic HTML, JSON, JUnit, text) there, for
//! `scripts/html-screenshot.sh`.

mod report_fixture;

use report_fixture::{sample_report, HOSTILE, HOSTILE_IMPL, MUTANT};
use roxmltree::{Document, Node};
use vdi_conformance::model::{CaseResult, ImplementationRun, Level, Role, RunReport, Verdict};
use vdi_conformance::report::{terminal_table, to_html, to_json, to_junit};

fn has_class(n: &Node, class: &str) -> bool {
    n.attribute("class").is_some_and(|c| c.split(' ').any(|x| x == class))
}

fn find<'a, 'i>(doc: &'a Document<'i>, tag: &str, class: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag) && has_class(n, class))
        .collect()
}

fn parse(html: &str) -> Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    match Document::parse_with_options(html, opts) {
        Ok(doc) => doc,
        Err(e) => panic!("the HTML report is not well-formed: {e}"),
    }
}

fn all_text(n: Node) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect()
}

#[test]
fn html_has_the_implementations_by_cases_matrix() {
    let report = sample_report();
    let html = to_html(&report);
    let doc = parse(&html);
    let matrix = find(&doc, "table", "matrix");
    assert_eq!(matrix.len(), 1, "exactly one matrix");
    let matrix = matrix[0];

    let columns: Vec<String> = matrix
        .descendants()
        .filter(|n| n.has_tag_name("th") && has_class(n, "impl"))
        .map(all_text)
        .collect();
    assert_eq!(columns, vec!["builtin-client", MUTANT, HOSTILE_IMPL, "builtin-server"]);

    let chapters: Vec<String> = matrix
        .descendants()
        .filter(|n| n.has_tag_name("tr") && has_class(n, "chapter"))
        .map(|n| all_text(n).split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        chapters,
        vec![
            "lifecycle",
            "configuration",
            "data",
            "termination",
            "stripes",
            "timeouts",
            "commands",
            "(not"
        ],
        "chapters in catalogue order, uncatalogued results last"
    );

    // One row per catalogued case plus the uncatalogued result, one verdict cell per implementation.
    let rows: Vec<Node> = matrix
        .descendants()
        .filter(|n| n.has_tag_name("tr") && has_class(n, "case"))
        .collect();
    assert_eq!(rows.len(), report.cases.len() + 1);
    let cell = |case_id: &str, column: usize| -> String {
        let row = rows
            .iter()
            .find(|r| r.descendants().any(|d| d.is_text() && d.text() == Some(case_id)))
            .unwrap_or_else(|| panic!("no row for {case_id}"));
        let cells: Vec<Node> = row
            .children()
            .filter(|c| c.has_tag_name("td") && has_class(c, "v"))
            .collect();
        assert_eq!(cells.len(), 4, "one cell per implementation in {case_id}");
        cells[column].attribute("class").unwrap_or("").to_string()
    };
    assert_eq!(cell("stripes.parallel-4", 0), "v pass");
    assert_eq!(cell("stripes.parallel-4", 1), "v xfail");
    assert_eq!(
        cell("termination.close-after-vd-e-close", 1),
        "v fail regr",
        "a regression is marked"
    );
    assert_eq!(cell("timeouts.retry-after-timeout", 1), "v ns");
    assert_eq!(cell("commands.flush-acknowledged", 2), "v hang");
    assert_eq!(cell("config.max-transfer-size", 2), "v unsup");
    assert_eq!(cell("data.short-read-eof", 2), "v info");
    assert_eq!(
        cell("lifecycle.open-before-config", 3),
        "v na",
        "a client case in the server column"
    );
    assert_eq!(cell("termination.premature-close-protocol", 0), "v na");
    assert_eq!(cell("termination.premature-close-protocol", 3), "v pass");
    assert_eq!(cell("legacy.removed-case", 0), "v none");

    // Rows with a problem are marked for the "only cases with problems" filter.
    let bad_rows = rows.iter().filter(|r| has_class(r, "bad")).count();
    assert_eq!(bad_rows, 5, "open-before-config, close-after, stripes, timeouts, flush");

    // Every failing cell links to an evidence item that exists.
    for a in matrix.descendants().filter(|n| n.has_tag_name("a")) {
        let href = a.attribute("href").unwrap_or("");
        let id = href.trim_start_matches('#');
        assert!(
            doc.descendants().any(|n| n.attribute("id") == Some(id)),
            "dangling link {href}"
        );
    }
}

#[test]
fn html_shows_each_failure_with_requirement_expected_actual_and_transcript() {
    let report = sample_report();
    let html = to_html(&report);
    let doc = parse(&html);
    let items = find(&doc, "details", "item");
    // mutant: fail, xfail hang, non-strict; hostile: fail, hang.
    assert_eq!(items.len(), 5);
    let fail = items
        .iter()
        .find(|d| has_class(d, "fail") && all_text(**d).contains("termination.close-after-vd-e-close"))
        .expect("the mutant's failure");
    let text = all_text(*fail);
    assert!(text.contains("REGRESSION"), "{text}");
    assert!(text.contains("The client MUST call Close only after GetCommand returned VD_E_CLOSE"));
    assert!(text.contains("GetCommand returns VD_E_CLOSE on devices 0 and 1, then Close"));
    assert!(text.contains("Close on device 1 before VD_E_CLOSE (set aborted)"));
    assert!(text.contains("data corrupt") && text.contains("unclean termination"));
    assert_eq!(fail.attribute("open"), Some("open"), "unexpected failures start open");
    let transcript_rows = fail
        .descendants()
        .filter(|n| n.has_tag_name("tbody"))
        .flat_map(|b| b.children().filter(|c| c.has_tag_name("tr")))
        .count();
    assert_eq!(transcript_rows, 10);
    let err_results: Vec<String> = fail
        .descendants()
        .filter(|n| n.has_tag_name("td") && has_class(n, "err"))
        .map(all_text)
        .collect();
    assert_eq!(err_results, vec!["VD_E_ABORT"]);

    let xfail = items.iter().find(|d| has_class(d, "xfail")).expect("the expected hang");
    assert!(all_text(*xfail).contains("known gap: seeded defect"));
    assert_eq!(xfail.attribute("open"), None, "expected failures start closed");
}

#[test]
fn html_escapes_hostile_strings() {
    let report = sample_report();
    let html = to_html(&report);
    assert!(
        !html.contains("<script>alert"),
        "markup from the implementation must be escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;"));
    assert_eq!(html.matches("<script").count(), 1, "only our own script element");
    assert!(!html.contains("<b>&amp;"), "the implementation name is escaped");
    for raw in ['\u{1b}', '\u{9b}', '\u{202e}', '\u{0}', '\r'] {
        assert!(!html.contains(raw), "raw {raw:?} in the page");
    }
    let doc = parse(&html);
    let text = all_text(doc.root());
    // What a reader sees: the hostile text, with its control characters made visible.
    assert!(text.contains("<script>alert(\"x&y\")</script> 'q' ]]>"));
    assert!(text.contains("\\x1b[31mred\\x1b[0m \\x9b2J \\u{202e}evil\\u{202c} \\x00 Zürich ✓ 日本語 🚀"));
    assert!(text.contains(HOSTILE_IMPL));
    // Tooltips keep newlines as character references.
    assert!(doc
        .descendants()
        .filter_map(|n| n.attribute("title"))
        .any(|t| t.contains("actual <script>alert(\"x&y\")</script> 'q' ]]> \n second line\ttab")));
}

#[test]
fn html_is_self_contained() {
    let html = to_html(&sample_report());
    let doc = parse(&html);
    for n in doc.descendants().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        assert!(
            !matches!(tag, "link" | "img" | "iframe" | "object" | "embed"),
            "external element <{tag}>"
        );
        assert!(n.attribute("src").is_none(), "<{tag} src=...>");
        if let Some(href) = n.attribute("href") {
            assert!(href.starts_with('#'), "link out of the page: {href}");
        }
    }
    let style = find_tag_text(&doc, "style");
    assert!(
        !style.contains("url(") && !style.contains("@import"),
        "CSS must not load anything"
    );
    let script = find_tag_text(&doc, "script");
    assert!(!script.contains("fetch") && !script.contains("XMLHttpRequest") && !script.contains("src"));
    assert!(html.starts_with("<!DOCTYPE html>"));
}

fn find_tag_text(doc: &Document, tag: &str) -> String {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .map(all_text)
        .collect()
}

#[test]
fn html_of_an_empty_report_is_still_a_page() {
    let mut report = sample_report();
    report.runs.clear();
    report.regressions.clear();
    let html = to_html(&report);
    let doc = parse(&html);
    assert_eq!(find(&doc, "table", "matrix").len(), 1);
    assert!(all_text(doc.root()).contains("no implementation was run"));
}

/// A catalogue-sized synthetic report: 64 cases in 9 chapters, 14 implementations.
fn large_report() -> RunReport {
    let chapters = [
        "lifecycle",
        "configuration",
        "data",
        "termination",
        "abort",
        "timeouts",
        "stripes",
        "commands",
        "hostile",
    ];
    let mut report = sample_report();
    report.cases.clear();
    for i in 0..64 {
        let chapter = chapters[i % chapters.len()];
        report.cases.push(report_fixture::case(
            &format!("{chapter}.case-{i:02}"),
            &format!("Synthetic case {i} of the {chapter} chapter, with a longish title to truncate"),
            &format!("§{}.{}", 1 + i % 4, i % 7),
            if i % 11 == 0 { Level::Should } else { Level::Must },
            if i % 13 == 0 { Role::Server } else { Role::Client },
            chapter,
            "The implementation MUST do the thing this synthetic case checks.",
        ));
    }
    report
        .cases
        .sort_by_key(|c| chapters.iter().position(|ch| *ch == c.chapter));
    let names = [
        "builtin-client",
        "mutant:services-stripes-sequentially",
        "mutant:ignores-vd-e-abort",
        "mutant:close-before-vd-e-close",
        "mutant:timeout-is-fatal",
        "mutant:wrong-write-byte-count",
        "mutant:early-flush-ack",
        "mutant:no-signal-abort-on-error",
        "mutant:success-for-unknown-command",
        "mutant:mishandles-eof",
        "mutant:commands-after-close-device",
        "mutant:forgets-operation-aborted",
        "exec:./examples/c/vdiclient",
        "builtin-server",
    ];
    report.runs = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let role = if name.ends_with("server") {
                Role::Server
            } else {
                Role::Client
            };
            let results: Vec<CaseResult> = report
                .cases
                .iter()
                .filter(|c| c.role == role)
                .enumerate()
                .map(|(i, c)| {
                    let verdict = match (k, (i * 7 + k * 3) % 29) {
                        (0, _) | (13, _) => Verdict::Pass,
                        (_, 0) => Verdict::Fail {
                            expected: "VD_E_CLOSE".into(),
                            actual: "NOERROR".into(),
                            requirement: c.requirement.clone(),
                        },
                        (_, 1) => Verdict::Hang {
                            step: "GetCommand(dev=2, timeout=INFINITE)".into(),
                        },
                        (12, 2) => Verdict::Unsupported {
                            reason: "exit 89".into(),
                        },
                        _ if c.level == Level::Should && k % 2 == 0 => Verdict::NonStrict {
                            expected: "retry".into(),
                            actual: "abort".into(),
                            requirement: c.requirement.clone(),
                        },
                        _ => Verdict::Pass,
                    };
                    let mut r = report_fixture::with(&c.id, verdict, 10 + (i as u64 * 37) % 400);
                    if k == 1 && c.chapter == "stripes" && r.verdict.is_failure() {
                        r.expected_failure = Some("seeded defect".into());
                    }
                    r
                })
                .collect();
            let duration_ms = results.iter().map(|r| r.duration_ms).sum();
            ImplementationRun {
                implementation: name.to_string(),
                role,
                results,
                duration_ms,
            }
        })
        .collect();
    let regressed = report.runs[2]
        .results
        .iter()
        .find(|r| r.verdict.is_failure())
        .map(|r| r.case_id.clone());
    report.regressions = regressed.map(|id| format!("{}/{id}", names[2])).into_iter().collect();
    report
}

#[test]
fn html_of_a_catalogue_sized_report_is_well_formed() {
    let report = large_report();
    let html = to_html(&report);
    let doc = parse(&html);
    let columns = doc
        .descendants()
        .filter(|n| n.has_tag_name("th") && has_class(n, "impl"))
        .count();
    assert_eq!(columns, 14);
    let cells = doc
        .descendants()
        .filter(|n| n.has_tag_name("td") && has_class(n, "v"))
        .count();
    assert_eq!(cells, 64 * 14);
}

/// Writes the sample reports when `VDISIM_REPORT_SAMPLE` names an `.html` file; otherwise only
/// checks that generating them works.
#[test]
fn write_sample_reports_when_asked() {
    let report = sample_report();
    let large = large_report();
    let outputs = [
        ("html", to_html(&report)),
        ("large.html", to_html(&large)),
        ("json", to_json(&report)),
        ("xml", to_junit(&report)),
        ("txt", terminal_table(&report)),
    ];
    assert!(outputs.iter().all(|(_, text)| !text.is_empty()));
    let Some(path) = std::env::var_os("VDISIM_REPORT_SAMPLE") else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    for (ext, text) in outputs {
        let file = path.with_extension(ext);
        if let Err(e) = std::fs::write(&file, text) {
            panic!("cannot write {}: {e}", file.display());
        }
        eprintln!("wrote {}", file.display());
    }
    let _ = HOSTILE;
}
