//! The reference model against the built-in client and server in one process, over real
//! shared memory (issue 5): every return code of random call sequences must match the model.
//! A failure is shrunk, saved as a JSON transcript under fixtures/regressions/, and fails the
//! test; proptest's seed goes to conformance/proptest-regressions/.

use vdi_conformance::props::driver::{Driver, LocalServer, Pair};
use vdi_conformance::props::machine::{check, Campaign};
use vdi_conformance::props::transcript::regressions_dir;

/// Cases per `cargo test` run; `VDISIM_PROPS_CASES` raises it for a longer campaign.
fn cases(default: u32) -> u32 {
    std::env::var("VDISIM_PROPS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn model_matches_the_builtin_pair_in_process() {
    let campaign = Campaign {
        name: "in-process".into(),
        cases: cases(256),
        max_steps: 64,
        save_dir: Some(regressions_dir()),
        seed_file: Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/props_model.txt"
        )),
        rng_seed: None,
    };
    let factory = Box::new(|| Box::new(Pair::<LocalServer>::in_process()) as Box<dyn Driver>);
    match check(&campaign, factory) {
        Ok(stats) => {
            eprintln!(
                "model vs built-in (in process): {} cases, {} steps, {:.1?}",
                stats.cases, stats.steps, stats.elapsed
            );
            for (what, n) in &stats.coverage {
                eprintln!("  {n:6}  {what}");
            }
            assert!(stats.cases >= 256.min(campaign.cases as usize));
        }
        Err(found) => panic!("the built-in pair disagrees with the model: {found}"),
    }
}
