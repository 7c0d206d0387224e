//! `--expect` files (globs with reasons), the glob matcher, `--baseline` regressions and the exit
//! code, as tables.

mod report_fixture;

use report_fixture::{pass, sample_report, with, MUTANT};
use rstest::rstest;
use vdi_conformance::model::{CaseResult, ImplementationRun, Role, RunReport, Verdict};
use vdi_conformance::report::{apply_expectations, exit_code, glob_match, regressions, Expectations};

#[rstest]
#[case("stripes.*", "stripes.parallel-4", true)]
#[case("stripes.*", "stripes.", true)]
#[case("stripes.*", "stripes", false)]
#[case("*.parallel-?", "stripes.parallel-4", true)]
#[case("*.parallel-?", "stripes.parallel-64", false)]
#[case("*.parallel-??", "stripes.parallel-64", true)]
#[case("*", "", true)]
#[case("", "", true)]
#[case("", "x", false)]
#[case("?", "", false)]
#[case("a*b*c", "a-b-b-c", true)]
#[case("a*b*c", "a-b-b-", false)]
#[case("*close*", "termination.close-after-vd-e-close", true)]
#[case("mutant:*/stripes.*", "mutant:sequential/stripes.parallel-4", true)]
#[case("mutant:*/stripes.*", "builtin-client/stripes.parallel-4", false)]
#[case("*/*", "exec:./bin/client/data.eof", true)]
#[case("Stripes.*", "stripes.parallel-4", false)]
#[case("日本?", "日本語", true)]
#[case("exact.id", "exact.id", true)]
#[case("exact.id", "exact.idx", false)]
fn glob_matches(#[case] pattern: &str, #[case] text: &str, #[case] matches: bool) {
    assert_eq!(glob_match(pattern, text), matches, "{pattern:?} vs {text:?}");
}

fn expectations(json: &str) -> Expectations {
    Expectations::parse(json).unwrap_or_else(|e| panic!("{e}"))
}

#[rstest]
#[case::plain_glob("stripes.*", "stripes.parallel-4", "builtin-client", true)]
#[case::plain_glob_ignores_implementation("stripes.*", "stripes.parallel-4", "mutant:x", true)]
#[case::qualified(
    "mutant:*/stripes.*",
    "stripes.parallel-4",
    "mutant:services-stripes-sequentially",
    true
)]
#[case::qualified_other_impl("mutant:*/stripes.*", "stripes.parallel-4", "builtin-client", false)]
#[case::qualified_exact("builtin-client/data.short-read-eof", "data.short-read-eof", "builtin-client", true)]
#[case::impl_with_slashes("exec:./bin/*/data.*", "data.short-read-eof", "exec:./bin/client", true)]
#[case::no_match("timeouts.*", "stripes.parallel-4", "builtin-client", false)]
fn reason_for_matches_case_ids_or_qualified_ids(
    #[case] glob: &str,
    #[case] case_id: &str,
    #[case] implementation: &str,
    #[case] matches: bool,
) {
    let e = Expectations {
        entries: vec![(glob.to_string(), "because".to_string())],
    };
    assert_eq!(e.reason_for(case_id, implementation), matches.then_some("because"));
}

#[test]
fn first_matching_entry_in_file_order_gives_the_reason() {
    let e = expectations(r#"{"zzz.*": "first", "*": "catch-all", "aaa.*": "never"}"#);
    let globs: Vec<&str> = e.entries.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(globs, vec!["zzz.*", "*", "aaa.*"], "file order, not sorted");
    assert_eq!(e.reason_for("zzz.1", "i"), Some("first"));
    assert_eq!(e.reason_for("aaa.1", "i"), Some("catch-all"));
    assert_eq!(expectations("{}").reason_for("a", "b"), None);
}

#[rstest]
#[case::not_json("stripes.*: reason", "not an expectations file")]
#[case::array(r#"["stripes.*"]"#, "a JSON object mapping glob to reason")]
#[case::reason_not_string(r#"{"stripes.*": true}"#, "the reason for \"stripes.*\" must be a string, not true")]
#[case::duplicate(r#"{"a.*": "one", "b": "x", "a.*": "two"}"#, "glob \"a.*\" appears twice")]
#[case::empty_glob(r#"{"": "nothing"}"#, "an empty glob matches nothing")]
fn bad_expectation_files_are_refused_with_a_reason(#[case] text: &str, #[case] message: &str) {
    match Expectations::parse(text) {
        Ok(e) => panic!("accepted {text}: {e:?}"),
        Err(e) => assert!(e.contains(message), "{e:?} should contain {message:?}"),
    }
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("vdisim-report-expect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let good = dir.join("expect.json");
    let bad = dir.join("bad.json");
    std::fs::write(&good, r#"{"mutant:*/stripes.*": "seeded defect"}"#).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&bad, "{").unwrap_or_else(|e| panic!("{e}"));
    let loaded = Expectations::load(&good);
    let refused = Expectations::load(&bad);
    let missing = Expectations::load(&dir.join("missing.json"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        loaded.map(|e| e.entries),
        Ok(vec![("mutant:*/stripes.*".to_string(), "seeded defect".to_string())])
    );
    assert!(refused.is_err_and(|e| e.contains("bad.json") && e.contains("not an expectations file")));
    assert!(missing.is_err_and(|e| e.starts_with("cannot read") && e.contains("missing.json")));
}

fn marks(report: &RunReport) -> Vec<(String, Option<String>)> {
    report
        .runs
        .iter()
        .flat_map(|run| {
            run.results.iter().filter(|r| r.expected_failure.is_some()).map(|r| {
                (
                    format!("{}/{}", run.implementation, r.case_id),
                    r.expected_failure.clone(),
                )
            })
        })
        .collect()
}

#[test]
fn apply_expectations_marks_only_failures_and_hangs_and_is_idempotent() {
    let mut report = sample_report();
    let e = expectations(
        r#"{
            "mutant:*/termination.*": "seeded defect: Close before VD_E_CLOSE",
            "timeouts.*": "a SHOULD: never marked",
            "*.parallel-4": "stripes",
            "builtin-client/*": "passes are never marked"
        }"#,
    );
    apply_expectations(&mut report, &e);
    let expected = vec![
        (
            format!("{MUTANT}/termination.close-after-vd-e-close"),
            Some("seeded defect: Close before VD_E_CLOSE".to_string()),
        ),
        // Re-marked with this file's reason (the fixture's own mark is replaced).
        (format!("{MUTANT}/stripes.parallel-4"), Some("stripes".to_string())),
    ];
    assert_eq!(marks(&report), expected);
    assert_eq!(report.runs[1].summary().fail, 0);
    assert_eq!(report.runs[1].summary().expected_failures, 2);
    assert!(report.runs[1].is_conformant());
    assert!(
        !report.runs[2].is_conformant(),
        "the hostile implementation's failures are not covered"
    );

    apply_expectations(&mut report, &e);
    assert_eq!(marks(&report), expected, "idempotent");

    // A stale mark on a result that no longer fails is cleared; an empty file clears everything.
    report.runs[0].results[0].expected_failure = Some("stale".into());
    apply_expectations(&mut report, &Expectations::default());
    assert!(marks(&report).is_empty());
}

#[test]
fn unmatched_globs_are_reported_as_stale() {
    let report = sample_report();
    let e = expectations(r#"{"stripes.*": "hangs", "config.*": "only passes and unsupported", "nope.*": "typo"}"#);
    assert_eq!(e.unmatched_globs(&report), vec!["config.*", "nope.*"]);
}

fn run_of(implementation: &str, results: Vec<CaseResult>) -> ImplementationRun {
    ImplementationRun {
        implementation: implementation.into(),
        role: Role::Client,
        results,
        duration_ms: 1,
    }
}

fn report_of(runs: Vec<ImplementationRun>) -> RunReport {
    RunReport {
        runs,
        regressions: Vec::new(),
        ..sample_report()
    }
}

fn fail() -> Verdict {
    Verdict::Fail {
        expected: "a".into(),
        actual: "b".into(),
        requirement: "MUST".into(),
    }
}
fn hang() -> Verdict {
    Verdict::Hang { step: "s".into() }
}
fn non_strict() -> Verdict {
    Verdict::NonStrict {
        expected: "a".into(),
        actual: "b".into(),
        requirement: "SHOULD".into(),
    }
}
fn unsupported() -> Verdict {
    Verdict::Unsupported { reason: "89".into() }
}
fn info() -> Verdict {
    Verdict::Informational { note: "n".into() }
}

#[rstest]
#[case::pass_to_fail(Some(Verdict::Pass), fail(), false, true)]
#[case::pass_to_hang(Some(Verdict::Pass), hang(), false, true)]
#[case::non_strict_to_fail(Some(non_strict()), fail(), false, true)]
#[case::pass_to_expected_fail(Some(Verdict::Pass), fail(), true, false)]
#[case::fail_to_fail(Some(fail()), fail(), false, false)]
#[case::hang_to_fail(Some(hang()), fail(), false, false)]
#[case::unsupported_to_fail(Some(unsupported()), fail(), false, false)]
#[case::info_to_fail(Some(info()), fail(), false, false)]
#[case::new_case_failing(None, fail(), false, false)]
#[case::pass_to_pass(Some(Verdict::Pass), Verdict::Pass, false, false)]
#[case::pass_to_non_strict(Some(Verdict::Pass), non_strict(), false, false)]
#[case::pass_to_unsupported(Some(Verdict::Pass), unsupported(), false, false)]
#[case::fail_to_pass(Some(fail()), Verdict::Pass, false, false)]
fn regressions_are_newly_failing_cases(
    #[case] before: Option<Verdict>,
    #[case] now: Verdict,
    #[case] expected_now: bool,
    #[case] regression: bool,
) {
    let other = pass("other.case", 1);
    let baseline = report_of(vec![run_of(
        "impl",
        before
            .into_iter()
            .map(|v| with("the.case", v, 1))
            .chain([other.clone()])
            .collect(),
    )]);
    let mut now = with("the.case", now, 1);
    if expected_now {
        now.expected_failure = Some("known".into());
    }
    let current = report_of(vec![run_of("impl", vec![other, now])]);
    let want: Vec<String> = if regression {
        vec!["impl/the.case".into()]
    } else {
        vec![]
    };
    assert_eq!(regressions(&current, &baseline), want);
}

#[test]
fn regressions_compare_the_same_implementation_only_in_current_order() {
    let baseline = report_of(vec![
        run_of("a", vec![pass("x", 1), pass("y", 1)]),
        run_of("b", vec![pass("x", 1)]),
    ]);
    let current = report_of(vec![
        run_of("b", vec![with("x", hang(), 1)]),
        run_of("a", vec![with("y", fail(), 1), with("x", fail(), 1)]),
        run_of("new-impl", vec![with("x", fail(), 1)]),
    ]);
    assert_eq!(regressions(&current, &baseline), vec!["b/x", "a/y", "a/x"]);
    assert!(regressions(&baseline, &baseline).is_empty());
}

#[rstest]
#[case::all_pass(vec![Verdict::Pass, Verdict::Pass], None, false, 0)]
#[case::unexpected_fail(vec![Verdict::Pass, fail()], None, false, 1)]
#[case::unexpected_hang(vec![hang()], None, false, 1)]
#[case::expected_fail(vec![Verdict::Pass, fail()], Some(1), false, 0)]
#[case::expected_hang(vec![hang()], Some(0), false, 0)]
#[case::expected_and_unexpected(vec![fail(), hang()], Some(0), false, 1)]
#[case::non_strict_only(vec![non_strict()], None, false, 0)]
#[case::unsupported_only(vec![unsupported()], None, false, 0)]
#[case::informational_only(vec![info()], None, false, 0)]
#[case::regression(vec![Verdict::Pass], None, true, 1)]
#[case::nothing_run(vec![], None, false, 0)]
fn exit_code_table(
    #[case] verdicts: Vec<Verdict>,
    #[case] expected_index: Option<usize>,
    #[case] regression: bool,
    #[case] code: u8,
) {
    let results = verdicts
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = with(&format!("c.{i}"), v, 1);
            if expected_index == Some(i) {
                r.expected_failure = Some("known".into());
            }
            r
        })
        .collect();
    let mut report = report_of(vec![run_of("impl", results)]);
    if regression {
        report.regressions.push("impl/c.0".into());
    }
    assert_eq!(exit_code(&report), code);
}

#[test]
fn exit_code_of_the_fixture_is_one_and_zero_once_every_gap_is_expected() {
    let mut report = sample_report();
    assert_eq!(exit_code(&report), 1);
    apply_expectations(&mut report, &expectations(r#"{"*": "everything is known"}"#));
    assert_eq!(exit_code(&report), 1, "the regression still fails the run");
    report.regressions = regressions(&report, &sample_report());
    assert!(report.regressions.is_empty(), "expected failures are not regressions");
    assert_eq!(exit_code(&report), 0);
}
