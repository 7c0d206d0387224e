//! A deliberately reintroduced bug is found by the model, shrunk to a short transcript, and
//! the transcript replays: it fails against the defect and passes against the built-in pair.

use vdi_conformance::props::driver::{Driver, Pair};
use vdi_conformance::props::machine::{check, Campaign};
use vdi_conformance::props::mutants::{Mutant, MutantDriver};

/// Finds `mutant` with a fixed RNG seed (reproducible), requires the shrunk transcript to
/// have at most `max_steps` steps, and replays it both ways.
fn hunt(mutant: Mutant, max_steps: usize) {
    let dir = std::env::temp_dir().join(format!("vdisim-props-mutants-{}", std::process::id()));
    let campaign = Campaign {
        name: format!("mutant-{}", mutant.id()),
        cases: 512,
        max_steps: 64,
        save_dir: Some(dir.clone()),
        seed_file: None,
        rng_seed: Some(0x5eed_0005),
    };
    let found = match check(
        &campaign,
        Box::new(move || Box::new(MutantDriver::new(mutant)) as Box<dyn Driver>),
    ) {
        Ok(stats) => panic!("{}: not found in {} cases", mutant.id(), stats.cases),
        Err(found) => found,
    };
    let t = &found.transcript;
    eprintln!("{}: {} -> {} steps", mutant.id(), found.message, t.steps.len());
    assert!(
        t.steps.len() <= max_steps,
        "{}: shrunk only to {} steps:\n{}",
        mutant.id(),
        t.steps.len(),
        t.to_json()
    );
    let saved = found.saved.as_ref().expect("transcript saved");
    let loaded = vdi_conformance::props::transcript::Transcript::load(saved).expect("saved transcript loads");
    assert!(
        loaded.replay(&mut MutantDriver::new(mutant)).is_err(),
        "{}: replay passes against the defect",
        mutant.id()
    );
    if let Err(m) = loaded.replay(&mut Pair::in_process()) {
        panic!("{}: replay fails against the built-in: {m}", mutant.id());
    }
    let _ = std::fs::remove_file(saved);
}

#[test]
fn close_ignoring_open_devices_is_found_shrunk_and_replayed() {
    hunt(Mutant::CloseIgnoresOpenDevices, 12);
}

#[test]
fn every_model_level_mutant_is_found() {
    for m in Mutant::ALL {
        if m != Mutant::CloseIgnoresOpenDevices {
            // IO-ERROR needs 12 steps at least (configure, open, send, fail, consume, send).
            hunt(m, 16);
        }
    }
}
