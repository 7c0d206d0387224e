//! The data model shared by the runner and the reports: what was run, what happened, and
//! the evidence (a transcript of calls and codes). Serialized as the JSON report.

use serde::{Deserialize, Serialize};

/// Bumped whenever the JSON shape changes incompatibly.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Which side of VDI a case exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The implementation under test is a client (backup application); the harness plays SQL Server.
    Client,
    /// The implementation under test is a server; the harness plays the client.
    Server,
}

/// MUST (strict) or SHOULD (non-strict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
}

/// A case as listed (`vdisim cases --json`): the catalogue entry without its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseInfo {
    /// Stable id, never renumbered or reused, e.g. `close.premature-protocol`.
    pub id: String,
    pub title: String,
    /// SPEC section, e.g. `§1.5`.
    pub spec_ref: String,
    /// The requirement sentence the case checks.
    pub requirement: String,
    pub level: Level,
    pub role: Role,
    /// Chapter, e.g. `lifecycle`, `termination`, `stripes`.
    pub chapter: String,
    /// The typed expectation, rendered (e.g. `ClientCode(VD_E_ABORT)`).
    pub expectation: String,
}

/// The outcome of one case against one implementation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// A SHOULD was missed.
    NonStrict {
        expected: String,
        actual: String,
        requirement: String,
    },
    Fail {
        expected: String,
        actual: String,
        requirement: String,
    },
    /// A step did not finish before its deadline; the run went on.
    Hang {
        step: String,
    },
    /// The implementation said it does not support the case (exit 89, or the trait said so).
    Unsupported {
        reason: String,
    },
    /// Recorded, not judged.
    Informational {
        note: String,
    },
}

impl Verdict {
    /// Whether this verdict fails a strict run.
    pub fn is_failure(&self) -> bool {
        matches!(self, Verdict::Fail { .. } | Verdict::Hang { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::NonStrict { .. } => "NON-STRICT",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Hang { .. } => "HANG",
            Verdict::Unsupported { .. } => "UNSUPPORTED",
            Verdict::Informational { .. } => "INFO",
        }
    }
}

/// Judged separately from the protocol verdict (DESIGN "The harness").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    /// Data was checked and matched byte for byte.
    Intact,
    /// Data was checked and differed (or was lost).
    Corrupt,
    /// The case moves no data, or never got that far.
    #[default]
    NotChecked,
}

/// How the implementation ended: did every device see its normal end, did it Close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// VD_E_CLOSE on every device, then Close (or the expected abort path).
    Clean,
    /// Ended, but not the way the protocol asks (e.g. Close before VD_E_CLOSE).
    Unclean,
    /// Killed by the harness after a deadline.
    Killed,
    NotChecked,
}

/// One observable step: who called what, and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// `client`, `server` or `harness`.
    pub actor: String,
    /// The call, e.g. `GetCommand(dev=0, timeout=1000)` or `SendCommand(dev=1, VDC_Write, 65536)`.
    pub call: String,
    /// What it returned, e.g. `NOERROR`, `VD_E_ABORT`, `ERROR_OPERATION_ABORTED`.
    pub result: String,
}

/// The result of one case against one implementation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    pub case_id: String,
    pub verdict: Verdict,
    pub integrity: Integrity,
    pub termination: Termination,
    pub duration_ms: u64,
    pub transcript: Vec<TranscriptEntry>,
    /// Set when an `--expect` entry matched this case, with its reason.
    pub expected_failure: Option<String>,
}

/// One implementation's run over the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImplementationRun {
    /// e.g. `builtin-client`, `mutant:close-before-vd-e-close`, `exec:./myclient`.
    pub implementation: String,
    pub role: Role,
    pub results: Vec<CaseResult>,
    pub duration_ms: u64,
}

/// Everything one `vdisim certify` invocation produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub tool: String,
    pub tool_version: String,
    /// RFC 3339 start time.
    pub started_at: String,
    pub cases: Vec<CaseInfo>,
    pub runs: Vec<ImplementationRun>,
    /// Case ids that failed here but passed in the `--baseline` report.
    pub regressions: Vec<String>,
}

/// Summary counts for one implementation run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub non_strict: usize,
    pub fail: usize,
    pub hang: usize,
    pub unsupported: usize,
    pub informational: usize,
    /// Failures or hangs covered by `--expect`.
    pub expected_failures: usize,
}

impl ImplementationRun {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.results {
            if r.verdict.is_failure() && r.expected_failure.is_some() {
                s.expected_failures += 1;
                continue;
            }
            match r.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::NonStrict { .. } => s.non_strict += 1,
                Verdict::Fail { .. } => s.fail += 1,
                Verdict::Hang { .. } => s.hang += 1,
                Verdict::Unsupported { .. } => s.unsupported += 1,
                Verdict::Informational { .. } => s.informational += 1,
            }
        }
        s
    }

    /// Whether every strict case passed or was expected to fail (exit code 0).
    pub fn is_conformant(&self) -> bool {
        let s = self.summary();
        s.fail == 0 && s.hang == 0
    }
}
