//! Model-level fault injection: seeded defects as wrappers that make the built-in pair return
//! one wrong code. They prove that the model notices such a defect, shrinks it and records a
//! transcript that replays (it fails against the defect and passes against the built-in).
//!
//! Each one is a lie about one rule of the SPEC, the kind of mistake a real implementation
//! makes. The harness's own seeded defects (code-level variants of the implementations) are
//! run through [`Driver`] the same way where they exist.

use super::driver::{Driver, LocalServer, Pair};
use super::step::{Outcome, Step};
use vdisim::vdi::{completion, VdError};

/// A seeded defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutant {
    /// Client Close with devices still open answers NOERROR instead of VD_E_OPEN (§1.2).
    CloseIgnoresOpenDevices,
    /// After an abort the server never returns the outstanding commands with
    /// ERROR_OPERATION_ABORTED (§3.6): GetCompletion says VD_E_ABORT at once.
    AbortLosesOutstanding,
    /// SendCommand on a device in IO-ERROR is accepted (§3.5) (it says NOERROR).
    IoErrorNotSticky,
    /// CompleteCommand on a command already completed answers NOERROR (§1.3 VD_E_INVALID).
    DoubleCompleteAccepted,
    /// GetCommand with nothing queued answers VD_E_CLOSE instead of VD_E_TIMEOUT (§1.3).
    TimeoutAsClose,
}

impl Mutant {
    pub const ALL: [Mutant; 5] = [
        Mutant::CloseIgnoresOpenDevices,
        Mutant::AbortLosesOutstanding,
        Mutant::IoErrorNotSticky,
        Mutant::DoubleCompleteAccepted,
        Mutant::TimeoutAsClose,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Mutant::CloseIgnoresOpenDevices => "close-ignores-open-devices",
            Mutant::AbortLosesOutstanding => "abort-loses-outstanding",
            Mutant::IoErrorNotSticky => "io-error-not-sticky",
            Mutant::DoubleCompleteAccepted => "double-complete-accepted",
            Mutant::TimeoutAsClose => "timeout-as-close",
        }
    }

    pub fn from_id(id: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.id() == id)
    }

    /// What the defect does to one outcome.
    fn corrupt(self, step: &Step, real: Outcome) -> Outcome {
        let is = |e: VdError| real.result == e.name();
        match (self, step) {
            (Mutant::CloseIgnoresOpenDevices, Step::CClose) if is(VdError::Open) => Outcome::ok(),
            (Mutant::AbortLosesOutstanding, Step::SGetCompletion { .. })
                if real.completion == Some(completion::ERROR_OPERATION_ABORTED) =>
            {
                Outcome::err(VdError::Abort)
            }
            (Mutant::IoErrorNotSticky, Step::SSend { .. }) if is(VdError::IoError) => Outcome::ok(),
            (Mutant::DoubleCompleteAccepted, Step::CCompleteStale { .. }) if is(VdError::Invalid) => Outcome::ok(),
            (Mutant::TimeoutAsClose, Step::CGetCommand { .. }) if is(VdError::Timeout) => Outcome::err(VdError::Close),
            _ => real,
        }
    }
}

/// The built-in pair with one seeded defect.
pub struct MutantDriver {
    mutant: Mutant,
    inner: Pair<LocalServer>,
}

impl MutantDriver {
    pub fn new(mutant: Mutant) -> MutantDriver {
        MutantDriver {
            mutant,
            inner: Pair::in_process(),
        }
    }
}

impl Driver for MutantDriver {
    fn name(&self) -> String {
        format!("mutant:{}", self.mutant.id())
    }

    fn exec(&mut self, step: &Step) -> Outcome {
        let real = self.inner.exec(step);
        self.mutant.corrupt(step, real)
    }

    fn finish(&mut self) -> Vec<String> {
        self.inner.finish()
    }
}
