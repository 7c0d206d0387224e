//! Every transcript under fixtures/regressions/ replays against the built-in pair (in one
//! process, over real shared memory), and the current model still predicts what it records.
//! Also: the canonical scenarios are pinned by insta snapshots and replay too.

use vdi_conformance::props::driver::Pair;
use vdi_conformance::props::scenarios;
use vdi_conformance::props::transcript::{list, regressions_dir, Transcript};

#[test]
fn every_regression_transcript_replays_against_the_builtin_pair() {
    let files = list(&regressions_dir());
    let mut failures = Vec::new();
    for path in &files {
        let t = match Transcript::load(path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{}: unreadable: {e}", path.display()));
                continue;
            }
        };
        if let Err(m) = t.check_model() {
            failures.push(format!("{}: the model no longer predicts it: {m}", path.display()));
        }
        if let Err(m) = t.replay(&mut Pair::in_process()) {
            failures.push(format!("{}: {m}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcripts fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn canonical_scenarios_are_pinned_and_replay() {
    for t in scenarios::all() {
        assert!(!t.steps.is_empty(), "{}: {}", t.name, t.description);
        insta::assert_snapshot!(t.name.clone(), t.to_json());
        if let Err(m) = t.replay(&mut Pair::in_process()) {
            panic!("{}: {m}", t.name);
        }
    }
}

#[test]
fn transcripts_round_trip_through_json() {
    for t in scenarios::all() {
        let back = Transcript::from_json(&t.to_json()).expect("parses");
        assert_eq!(back, t);
    }
    assert!(Transcript::from_json("{\"format\": 99, \"name\": \"x\", \"description\": \"\", \"steps\": []}").is_err());
}
