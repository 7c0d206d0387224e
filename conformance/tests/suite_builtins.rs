//! The built-in client and server pass every case of the catalogue, and the catalogue is
//! well formed. One run of the whole catalogue is shared by the per-chapter tests.

use rstest::rstest;
use std::collections::HashSet;
use std::sync::OnceLock;
use vdi_conformance::builtin::{BuiltinClient, BuiltinServer};
use vdi_conformance::cases::{catalogue, find, CHAPTERS};
use vdi_conformance::model::{ImplementationRun, Level, Role, Verdict};
use vdi_conformance::{certify, Options, Target};

fn runs() -> &'static [ImplementationRun] {
    static RUNS: OnceLock<Vec<ImplementationRun>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let opts = Options {
            jobs: 6,
            ..Options::default()
        };
        certify(&[Target::Client(&BuiltinClient), Target::Server(&BuiltinServer)], &opts)
    })
}

#[rstest]
#[case("lifecycle")]
#[case("config")]
#[case("data")]
#[case("termination")]
#[case("abort")]
#[case("timeouts")]
#[case("stripes")]
#[case("commands")]
#[case("hostile")]
fn builtins_pass_every_case_of(#[case] chapter: &str) {
    let mut seen = 0;
    for run in runs() {
        for r in &run.results {
            let Some(case) = find(&r.case_id) else {
                panic!("result for unknown case {}", r.case_id)
            };
            if case.chapter != chapter {
                continue;
            }
            seen += 1;
            let ok = matches!(r.verdict, Verdict::Pass | Verdict::Informational { .. });
            assert!(
                ok,
                "{} / {}: {:?}\ntranscript tail: {:#?}",
                run.implementation,
                r.case_id,
                r.verdict,
                &r.transcript[r.transcript.len().saturating_sub(12)..]
            );
        }
    }
    assert!(seen >= 2, "chapter {chapter} ran {seen} cases");
}

#[test]
fn both_builtins_are_conformant_and_ran_everything() {
    let runs = runs();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert!(run.is_conformant(), "{}: {:?}", run.implementation, run.summary());
        let expected = catalogue().iter().filter(|c| c.role == run.role).count();
        assert_eq!(run.results.len(), expected, "{}", run.implementation);
        for r in &run.results {
            assert!(!r.transcript.is_empty(), "{}: empty transcript", r.case_id);
        }
    }
}

#[test]
fn catalogue_is_large_and_well_formed() {
    let all = catalogue();
    assert!(all.len() >= 60, "only {} cases", all.len());
    let mut ids = HashSet::new();
    for c in all {
        assert!(ids.insert(c.id), "duplicate id {}", c.id);
        assert!(CHAPTERS.contains(&c.chapter), "{}: unknown chapter {}", c.id, c.chapter);
        let role = match c.role {
            Role::Client => "client",
            Role::Server => "server",
        };
        let chapter_prefix = if c.chapter == "termination" { "close" } else { c.chapter };
        assert!(
            c.id.starts_with(&format!("{chapter_prefix}.{role}.")),
            "{}: id must be <chapter>.<role>.<what>",
            c.id
        );
        assert!(c.spec_ref.starts_with('§'), "{}: spec_ref {}", c.id, c.spec_ref);
        assert!(c.requirement.len() > 20, "{}: requirement too short", c.id);
        assert!(!c.title.is_empty());
    }
    for chapter in CHAPTERS {
        for role in [Role::Client, Role::Server] {
            assert!(
                all.iter().any(|c| c.chapter == chapter && c.role == role),
                "chapter {chapter} has no {role:?} case"
            );
        }
    }
    assert!(all.iter().filter(|c| c.level == Level::Must).count() >= 60);
}

#[test]
fn no_segment_is_left_behind() {
    let _ = runs();
    let mine = format!("vdic{}n", std::process::id());
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.contains(&mine))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "segments left: {left:?}");
}
