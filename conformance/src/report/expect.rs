//! `--expect` files (known gaps, BoGo's `DisabledTests`) and `--baseline` regressions.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::glob::glob_match;
use crate::model::{RunReport, Verdict};

/// An `--expect` file: a JSON object mapping a glob to the reason the matching cases are expected
/// to fail, e.g.
///
/// ```json
/// {
///   "timeouts.server-two-intervals": "our CI runner is too slow for 2 x 50 ms",
///   "mutant:*/stripes.*": "seeded defect: services stripes one after another"
/// }
/// ```
///
/// A glob without `/` matches the case id; a glob with `/` matches `implementation/case-id`.
/// `*` matches any run of characters (`/` and `.` included), `?` one character. When several globs
/// match, the first in the file gives the reason.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// `(glob, reason)` in file order.
    pub entries: Vec<(String, String)>,
}

impl Expectations {
    /// Reads and parses an `--expect` file.
    pub fn load(path: &std::path::Path) -> Result<Expectations, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Expectations::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of an `--expect` file.
    pub fn parse(text: &str) -> Result<Expectations, String> {
        let map: OrderedStringMap = serde_json::from_str(text)
            .map_err(|e| format!("not an expectations file (a JSON object mapping glob to reason): {e}"))?;
        for (glob, _) in &map.0 {
            if glob.is_empty() {
                return Err("an empty glob matches nothing; remove it".to_string());
            }
        }
        Ok(Expectations { entries: map.0 })
    }

    /// The reason a case is expected to fail for an implementation, if any entry matches.
    pub fn reason_for(&self, case_id: &str, implementation: &str) -> Option<&str> {
        let qualified = format!("{implementation}/{case_id}");
        self.entries
            .iter()
            .find(|(glob, _)| {
                if glob.contains('/') {
                    glob_match(glob, &qualified)
                } else {
                    glob_match(glob, case_id)
                }
            })
            .map(|(_, reason)| reason.as_str())
    }

    /// Globs that cover no failing or hung result in `report`: stale entries worth removing
    /// (the gap they describe was fixed, or the glob has a typo).
    pub fn unmatched_globs(&self, report: &RunReport) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(glob, _)| {
                let single = Expectations {
                    entries: vec![(glob.clone(), String::new())],
                };
                !report.runs.iter().any(|run| {
                    run.results
                        .iter()
                        .any(|r| r.verdict.is_failure() && single.reason_for(&r.case_id, &run.implementation).is_some())
                })
            })
            .map(|(glob, _)| glob.as_str())
            .collect()
    }
}

/// A JSON object of strings, in document order, refusing duplicate keys (serde_json's own map
/// would sort the keys and silently keep the last duplicate).
struct OrderedStringMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedStringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedStringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object mapping glob to reason")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, String)> = Vec::new();
                while let Some(glob) = map.next_key::<String>()? {
                    let reason = match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(s) => s,
                        other => {
                            return Err(de::Error::custom(format!(
                                "the reason for {glob:?} must be a string, not {other}"
                            )))
                        }
                    };
                    if entries.iter().any(|(g, _)| *g == glob) {
                        return Err(de::Error::custom(format!("glob {glob:?} appears twice")));
                    }
                    entries.push((glob, reason));
                }
                Ok(OrderedStringMap(entries))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Sets `expected_failure` on every failing or hung result that an entry covers, and clears it
/// everywhere else (so applying is idempotent and a stale mark from a loaded report goes away).
pub fn apply_expectations(report: &mut RunReport, expectations: &Expectations) {
    for run in &mut report.runs {
        for result in &mut run.results {
            result.expected_failure = if result.verdict.is_failure() {
                expectations
                    .reason_for(&result.case_id, &run.implementation)
                    .map(str::to_string)
            } else {
                None
            };
        }
    }
}

/// Cases (as `implementation/case_id`) that failed or hung in `current` but passed in `baseline`
/// (a NON-STRICT result counts as passed: it did not fail the baseline run). A case absent from the
/// baseline, unsupported or informational there, is not a regression; neither is a failure covered
/// by `--expect`, so call this after [`apply_expectations`]. In `current`'s order, without duplicates.
pub fn regressions(current: &RunReport, baseline: &RunReport) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for run in &current.runs {
        let Some(base) = baseline.runs.iter().find(|b| b.implementation == run.implementation) else {
            continue;
        };
        for result in &run.results {
            if !result.verdict.is_failure() || result.expected_failure.is_some() {
                continue;
            }
            let passed_before = base
                .results
                .iter()
                .any(|b| b.case_id == result.case_id && matches!(b.verdict, Verdict::Pass | Verdict::NonStrict { .. }));
            let id = format!("{}/{}", run.implementation, result.case_id);
            if passed_before && !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// 0 when every strict case passed (or was expected to fail), 1 on any unexpected failure, hang
/// or regression. (2, the harness's own failure, is the caller's.)
pub fn exit_code(report: &RunReport) -> u8 {
    let ok = report.runs.iter().all(|r| r.is_conformant()) && report.regressions.is_empty();
    if ok {
        0
    } else {
        1
    }
}
