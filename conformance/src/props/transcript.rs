//! Transcripts: a scenario as data (the steps and the outcome each must have), saved as JSON
//! under `fixtures/regressions/` when the model finds a failure and replayed forever after.

use super::driver::Driver;
use super::model::Model;
use super::step::{Outcome, Side, Step};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bumped when the JSON shape changes incompatibly.
pub const TRANSCRIPT_FORMAT: u32 = 1;

/// One step and what it must return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `client` or `server` (informational; the step says it too).
    pub actor: Side,
    /// The call, rendered for people (informational).
    pub call: String,
    pub step: Step,
    pub expect: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    pub format: u32,
    pub name: String,
    /// What the scenario shows, or the failure that produced it.
    pub description: String,
    /// The implementation the failure was found against (empty for hand-written scenarios).
    #[serde(default)]
    pub found_against: String,
    pub steps: Vec<Entry>,
}

/// The first difference between a transcript and an implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub index: usize,
    pub call: String,
    pub expected: Outcome,
    pub actual: Outcome,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {} {}: expected {}, got {}",
            self.index + 1,
            self.call,
            self.expected,
            self.actual
        )
    }
}

impl Transcript {
    /// The transcript the model predicts for `steps`. Steps the model does not allow in
    /// their state (a hand-edited file) are an error.
    pub fn from_steps(name: &str, description: &str, steps: &[Step]) -> Result<Transcript, String> {
        let mut model = Model::new();
        let mut entries = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            if !model.allows(s) {
                return Err(format!("step {} ({}) is not possible in that state", i + 1, s.render()));
            }
            let expect = model.apply(s);
            entries.push(Entry {
                actor: s.side(),
                call: s.render(),
                step: s.clone(),
                expect,
            });
        }
        Ok(Transcript {
            format: TRANSCRIPT_FORMAT,
            name: name.to_string(),
            description: description.to_string(),
            found_against: String::new(),
            steps: entries,
        })
    }

    pub fn steps(&self) -> Vec<Step> {
        self.steps.iter().map(|e| e.step.clone()).collect()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn from_json(text: &str) -> Result<Transcript, String> {
        let t: Transcript = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if t.format != TRANSCRIPT_FORMAT {
            return Err(format!(
                "transcript format {} (this build reads {TRANSCRIPT_FORMAT})",
                t.format
            ));
        }
        Ok(t)
    }

    pub fn load(path: &Path) -> Result<Transcript, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Transcript::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the transcript as `<dir>/<name>.json` and returns the path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.json", self.name));
        std::fs::write(&path, self.to_json()).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Whether the current model still predicts the recorded outcomes (a model change that
    /// alters an old transcript shows up here, not as a mysterious replay failure).
    pub fn check_model(&self) -> Result<(), Box<Mismatch>> {
        let mut model = Model::new();
        for (index, e) in self.steps.iter().enumerate() {
            let predicted = if model.allows(&e.step) {
                model.apply(&e.step)
            } else {
                Outcome::code("NOT-ALLOWED")
            };
            if predicted != e.expect {
                return Err(Box::new(Mismatch {
                    index,
                    call: e.call.clone(),
                    expected: e.expect.clone(),
                    actual: predicted,
                }));
            }
        }
        Ok(())
    }

    /// Replays the steps against `driver`, stopping at the first difference. Leaked
    /// shared-memory segments count as a difference after the last step.
    pub fn replay(&self, driver: &mut dyn Driver) -> Result<(), Box<Mismatch>> {
        for (index, e) in self.steps.iter().enumerate() {
            let actual = driver.exec(&e.step);
            if actual != e.expect {
                driver.finish();
                return Err(Box::new(Mismatch {
                    index,
                    call: e.call.clone(),
                    expected: e.expect.clone(),
                    actual,
                }));
            }
        }
        let leaked = driver.finish();
        if !leaked.is_empty() {
            return Err(Box::new(Mismatch {
                index: self.steps.len(),
                call: "<after the last step: every handle released>".into(),
                expected: Outcome::code("no segment left in /dev/shm"),
                actual: Outcome::code(&leaked.join(",")),
            }));
        }
        Ok(())
    }

    /// As the conformance report's transcript entries.
    pub fn report_entries(&self) -> Vec<crate::model::TranscriptEntry> {
        self.steps
            .iter()
            .map(|e| crate::model::TranscriptEntry {
                at_ms: 0,
                actor: match e.actor {
                    Side::Client => "client".into(),
                    Side::Server => "server".into(),
                },
                call: e.call.clone(),
                result: e.expect.to_string(),
            })
            .collect()
    }
}

/// `fixtures/regressions/` of this workspace.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/regressions")
}

/// Every `*.json` under `dir`, sorted.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
