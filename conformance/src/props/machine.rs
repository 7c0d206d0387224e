//! The proptest-state-machine glue and the campaign runner.
//!
//! [`VdiReference`] is the `ReferenceStateMachine` (the [`Model`] plus the step generator);
//! [`VdiTest`] is the `StateMachineTest` whose system under test is a [`Driver`] made by the
//! factory installed for the current thread. [`check`] runs a campaign, and when proptest has
//! shrunk a failure, turns the minimal sequence into a [`Transcript`], saves it, and returns it.

use super::driver::{Driver, LocalServer, Pair};
use super::gen;
use super::model::Model;
use super::step::Step;
use super::transcript::Transcript;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestError, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The reference state machine: the model and what to try next.
pub struct VdiReference;

impl ReferenceStateMachine for VdiReference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::new()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        gen::transitions(state)
    }

    fn apply(mut state: Model, transition: &Step) -> Model {
        state.apply(transition);
        state
    }

    fn preconditions(state: &Model, transition: &Step) -> bool {
        state.allows(transition)
    }
}

/// Makes the implementation each case runs against.
pub type Factory = Box<dyn Fn() -> Box<dyn Driver>>;

thread_local! {
    static FACTORY: RefCell<Option<Factory>> = const { RefCell::new(None) };
    /// The name of the last driver the factory made (recorded in saved transcripts).
    static DRIVER_NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

static CASES: AtomicUsize = AtomicUsize::new(0);
/// (call, outcome code) → how often the model predicted it: what a campaign covered.
static COVERAGE: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
static STEPS: AtomicUsize = AtomicUsize::new(0);

/// The system under test: a driver and the steps it ran.
pub struct Sut {
    driver: Box<dyn Driver>,
    index: usize,
}

/// The state-machine test: every step's outcome must equal the model's.
pub struct VdiTest;

impl StateMachineTest for VdiTest {
    type SystemUnderTest = Sut;
    type Reference = VdiReference;

    fn init_test(_ref_state: &Model) -> Sut {
        CASES.fetch_add(1, Ordering::Relaxed);
        let driver = FACTORY.with(|f| f.borrow().as_ref().map(|make| make()));
        let driver = driver.unwrap_or_else(|| Box::new(Pair::<LocalServer>::in_process()));
        DRIVER_NAME.with(|n| *n.borrow_mut() = driver.name());
        Sut { driver, index: 0 }
    }

    fn apply(mut sut: Sut, ref_state: &Model, transition: Step) -> Sut {
        STEPS.fetch_add(1, Ordering::Relaxed);
        sut.index += 1;
        let actual = sut.driver.exec(&transition);
        let expected = ref_state.last.clone().unwrap_or_default();
        if let Ok(mut c) = COVERAGE.lock() {
            let call = serde_json::to_value(&transition)
                .ok()
                .and_then(|v| v.get("call").and_then(|c| c.as_str()).map(str::to_string))
                .unwrap_or_default();
            let detail = match (expected.command, expected.completion) {
                (Some(cmd), Some(code)) if expected.result == "NOERROR" => {
                    format!(
                        " {} {}",
                        super::step::command_name(cmd),
                        super::step::completion_name(code)
                    )
                }
                _ => String::new(),
            };
            *c.entry(format!("{call} -> {}{detail}", expected.result)).or_default() += 1;
        }
        assert!(
            actual == expected,
            "step {} {}: expected {expected}, got {actual}",
            sut.index,
            transition.render()
        );
        sut
    }

    fn teardown(mut sut: Sut, _ref_state: Model) {
        let leaked = sut.driver.finish();
        assert!(leaked.is_empty(), "segments left in /dev/shm: {leaked:?}");
    }
}

/// A campaign's settings.
pub struct Campaign {
    /// A name for the transcript file (`<name>-<hash>.json`).
    pub name: String,
    pub cases: u32,
    /// Steps per case: 1..=max_steps.
    pub max_steps: usize,
    /// Where a failure's transcript goes (None: nowhere).
    pub save_dir: Option<PathBuf>,
    /// proptest's own seed file (None: not kept).
    pub seed_file: Option<&'static str>,
    /// A fixed RNG seed (reproducible campaigns, e.g. the mutant demonstrations); None: random.
    pub rng_seed: Option<u64>,
}

/// What a passing campaign did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Cases run (shrinking attempts included).
    pub cases: usize,
    pub steps: usize,
    pub elapsed: Duration,
    /// `"<call> -> <code>"` → how many times the model predicted it.
    pub coverage: BTreeMap<String, usize>,
}

/// A failure, shrunk.
#[derive(Debug, Clone)]
pub struct Found {
    pub message: String,
    pub transcript: Transcript,
    pub saved: Option<PathBuf>,
    pub stats: Stats,
}

/// The message, the shrunk transcript's length, where it was saved, and the transcript.
impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let saved = self
            .saved
            .as_ref()
            .map_or("<not saved>".into(), |p| p.display().to_string());
        write!(
            f,
            "{}\nshrunk to {} steps, saved as {saved}\n{}",
            self.message,
            self.transcript.steps.len(),
            self.transcript.to_json()
        )
    }
}

/// Runs a campaign against the implementations `factory` makes. `Err` carries the shrunk
/// failure as a transcript (saved under `save_dir` if set).
pub fn check(campaign: &Campaign, factory: Factory) -> Result<Stats, Box<Found>> {
    FACTORY.with(|f| *f.borrow_mut() = Some(factory));
    CASES.store(0, Ordering::Relaxed);
    STEPS.store(0, Ordering::Relaxed);
    if let Ok(mut c) = COVERAGE.lock() {
        c.clear();
    }
    let start = Instant::now();
    let config = Config {
        cases: campaign.cases,
        max_shrink_iters: 4096,
        failure_persistence: campaign
            .seed_file
            .map(|p| Box::new(FileFailurePersistence::Direct(p)) as Box<_>),
        source_file: None,
        max_local_rejects: 1 << 20,
        rng_seed: campaign.rng_seed.map_or(RngSeed::Random, RngSeed::Fixed),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let strategy = VdiReference::sequential_strategy(1..=campaign.max_steps);
    let result = runner.run(&strategy, |(initial, steps, seen)| {
        VdiTest::test_sequential(config.clone(), initial, steps, seen);
        Ok(())
    });
    FACTORY.with(|f| *f.borrow_mut() = None);
    let stats = Stats {
        cases: CASES.load(Ordering::Relaxed),
        steps: STEPS.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        coverage: COVERAGE.lock().map(|c| c.clone()).unwrap_or_default(),
    };
    match result {
        Ok(()) => Ok(stats),
        Err(TestError::Abort(why)) => Err(Box::new(Found {
            message: format!("campaign aborted: {why}"),
            transcript: Transcript::from_steps(&campaign.name, "aborted", &[])
                .unwrap_or_else(|_| empty(&campaign.name)),
            saved: None,
            stats,
        })),
        Err(TestError::Fail(why, (_, steps, _))) => {
            let message = why.message().to_string();
            let name = format!("{}-{:08x}", campaign.name, fingerprint(&steps));
            let mut transcript = Transcript::from_steps(&name, &message, &steps).unwrap_or_else(|_| empty(&name));
            transcript.found_against = DRIVER_NAME.with(|n| n.borrow().clone());
            let saved = campaign.save_dir.as_ref().and_then(|d| transcript.save(d).ok());
            Err(Box::new(Found {
                message,
                transcript,
                saved,
                stats,
            }))
        }
    }
}

fn empty(name: &str) -> Transcript {
    Transcript {
        format: super::transcript::TRANSCRIPT_FORMAT,
        name: name.into(),
        description: String::new(),
        found_against: String::new(),
        steps: Vec::new(),
    }
}

/// A stable short hash of a step sequence (names transcript files).
pub fn fingerprint(steps: &[Step]) -> u32 {
    let text = serde_json::to_string(steps).unwrap_or_default();
    // FNV-1a, 32 bits: stable across runs and platforms, unlike std's hasher.
    text.bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}
