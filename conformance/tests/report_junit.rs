//! JUnit XML: parsed with an XML parser, structure and counts checked, escaping verified.

mod report_fixture;

use report_fixture::{sample_report, HOSTILE, HOSTILE_IMPL, MUTANT};
use roxmltree::{Document, Node};
use vdi_conformance::report::to_junit;

fn parse(xml: &str) -> Document<'_> {
    Document::parse(xml).unwrap_or_else(|e| panic!("the JUnit file is not well-formed XML: {e}\n{xml}"))
}

fn count_attr(n: Node, name: &str) -> usize {
    n.attribute(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("<{}> has no numeric {name}", n.tag_name().name()))
}

fn children<'a, 'i>(n: Node<'a, 'i>, tag: &str) -> Vec<Node<'a, 'i>> {
    n.children().filter(|c| c.has_tag_name(tag)).collect()
}

#[test]
fn junit_structure_and_counts() {
    let report = sample_report();
    let xml = to_junit(&report);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let doc = parse(&xml);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites = children(root, "testsuite");
    assert_eq!(suites.len(), report.runs.len());

    // (name, tests, failures, skipped) per implementation.
    let expected = [
        ("builtin-client", 8, 0, 0),
        (MUTANT, 8, 1, 1),
        (HOSTILE_IMPL, 9, 2, 1),
        ("builtin-server", 1, 0, 0),
    ];
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for (suite, (name, n, f, s)) in suites.iter().zip(expected) {
        assert_eq!(suite.attribute("name"), Some(name));
        let cases = children(*suite, "testcase");
        assert_eq!(cases.len(), n, "{name}");
        assert_eq!(count_attr(*suite, "tests"), n);
        assert_eq!(count_attr(*suite, "failures"), f, "{name}");
        assert_eq!(count_attr(*suite, "skipped"), s, "{name}");
        assert_eq!(count_attr(*suite, "errors"), 0);
        // The attributes agree with the elements.
        let failure_elements = cases.iter().filter(|c| !children(**c, "failure").is_empty()).count();
        let skipped_elements = cases.iter().filter(|c| !children(**c, "skipped").is_empty()).count();
        assert_eq!((failure_elements, skipped_elements), (f, s), "{name}");
        for c in &cases {
            let time: f64 = c.attribute("time").and_then(|t| t.parse().ok()).unwrap_or(-1.0);
            assert!(time >= 0.0);
        }
        let props = children(children(*suite, "properties")[0], "property");
        assert!(props.iter().any(|p| p.attribute("name") == Some("role")));
        tests += n;
        failures += f;
        skipped += s;
    }
    assert_eq!(count_attr(root, "tests"), tests);
    assert_eq!(count_attr(root, "failures"), failures);
    assert_eq!(count_attr(root, "skipped"), skipped);
}

fn testcase<'a, 'i>(doc: &'a Document<'i>, suite: usize, case_id: &str) -> Node<'a, 'i> {
    let suite = children(doc.root_element(), "testsuite")[suite];
    children(suite, "testcase")
        .into_iter()
        .find(|c| c.attribute("name") == Some(case_id))
        .unwrap_or_else(|| panic!("no testcase {case_id}"))
}

#[test]
fn junit_failures_carry_expected_actual_requirement_and_transcript() {
    let xml = to_junit(&sample_report());
    let doc = parse(&xml);
    let case = testcase(&doc, 1, "termination.close-after-vd-e-close");
    assert_eq!(
        case.attribute("classname"),
        Some("mutant:services-stripes-sequentially.termination")
    );
    let failure = children(case, "failure")[0];
    assert_eq!(failure.attribute("type"), Some("FAIL"));
    assert_eq!(
        failure.attribute("message"),
        Some(
            "REGRESSION: expected GetCommand returns VD_E_CLOSE on devices 0 and 1, then Close, \
             actual Close on device 1 before VD_E_CLOSE (set aborted)"
        )
    );
    let body = failure.text().unwrap_or("");
    assert!(body.contains("requirement (§1.2): The client MUST call Close only after"));
    assert!(body.contains("integrity: CORRUPT"));
    assert!(body.contains("termination: UNCLEAN"));
    assert!(body.contains("transcript (10 entries):"));
    assert!(body.contains("Close()  ->  NOERROR"));
    assert!(body.contains("GetCompletion(dev=1, timeout=1000)  ->  VD_E_ABORT"));

    let hang = children(testcase(&doc, 2, "commands.flush-acknowledged"), "failure")[0];
    assert_eq!(hang.attribute("type"), Some("HANG"));
    assert_eq!(
        hang.attribute("message"),
        Some("hung at step: waiting for the program to exit after VD_E_CLOSE")
    );
    assert!(hang.text().unwrap_or("").contains("termination: KILLED after deadline"));
}

#[test]
fn junit_skips_unsupported_and_expected_failures_and_passes_the_rest() {
    let xml = to_junit(&sample_report());
    let doc = parse(&xml);
    let xfail = children(testcase(&doc, 1, "stripes.parallel-4"), "skipped")[0];
    let message = xfail.attribute("message").unwrap_or("");
    assert!(
        message
            .starts_with("expected failure (seeded defect: services stripes one after another): XHANG hung at step:"),
        "{message}"
    );
    let unsupported = children(testcase(&doc, 2, "config.max-transfer-size"), "skipped")[0];
    assert_eq!(
        unsupported.attribute("message"),
        Some("unsupported: the program exited with 89 (unsupported): \"no large buffers\"")
    );
    let non_strict = testcase(&doc, 1, "timeouts.retry-after-timeout");
    assert!(children(non_strict, "failure").is_empty() && children(non_strict, "skipped").is_empty());
    let out = children(non_strict, "system-out")[0].text().unwrap_or("");
    assert!(
        out.starts_with("NON-STRICT: expected GetCommand retried after VD_E_TIMEOUT"),
        "{out}"
    );
    let passed = testcase(&doc, 0, "lifecycle.create-then-config");
    assert_eq!(passed.children().filter(|c| c.is_element()).count(), 0);
    assert_eq!(passed.attribute("classname"), Some("builtin-client.lifecycle"));
    assert_eq!(
        testcase(&doc, 2, "legacy.removed-case").attribute("classname"),
        Some("exec:_/my client --name \"<b>&amp;</b>\".uncatalogued"),
        "dots of the implementation do not split the JUnit package"
    );
}

#[test]
fn junit_escapes_hostile_strings() {
    let xml = to_junit(&sample_report());
    assert!(!xml.contains("<script>"));
    for raw in ['\u{1b}', '\u{9b}', '\u{202e}', '\u{0}', '\r'] {
        assert!(!xml.contains(raw), "raw {raw:?}: not allowed in XML 1.0 or a terminal");
    }
    let doc = parse(&xml);
    assert_eq!(
        children(doc.root_element(), "testsuite")[2].attribute("name"),
        Some(HOSTILE_IMPL)
    );
    let failure = children(testcase(&doc, 2, "lifecycle.open-before-config"), "failure")[0];
    let visible = HOSTILE
        .replace('\r', "\\x0d")
        .replace('\u{1b}', "\\x1b")
        .replace('\u{9b}', "\\x9b")
        .replace('\u{202e}', "\\u{202e}")
        .replace('\u{202c}', "\\u{202c}")
        .replace('\u{0}', "\\x00");
    assert_eq!(
        failure.attribute("message"),
        Some(format!("expected VD_E_PROTOCOL <0x80770005> & abort, actual {visible}").as_str()),
        "newlines and tabs survive attribute normalization, markup round-trips"
    );
    let data = testcase(&doc, 2, "data.short-read-eof");
    let out = children(data, "system-out")[0].text().unwrap_or("");
    assert!(out.contains("line <2> & \"3\""), "{out}");
}
