//! Runs cases against implementations: each case isolated (its own set names, scratch
//! directory and transcript), a small pool of threads running cases in parallel, every wait
//! bounded, each case judged by its expectation.

use crate::builtin::{BuiltinClient, BuiltinServer};
use crate::case::{Case, Observation};
use crate::cases::catalogue;
use crate::harness::{Cx, Timing};
use crate::model::{CaseInfo, CaseResult, ImplementationRun, Role, RunReport, REPORT_SCHEMA_VERSION};
use crate::plugin::{ClientUnderTest, ServerUnderTest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// Globs of case ids to run (`*` and `?`); empty runs every case of the role.
    pub cases: Vec<String>,
    /// Cases run at the same time.
    pub jobs: usize,
    pub timing: Timing,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cases: Vec::new(),
            jobs: 4,
            timing: Timing::default(),
        }
    }
}

/// An implementation to certify.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    Client(&'a dyn ClientUnderTest),
    Server(&'a dyn ServerUnderTest),
}

impl Target<'_> {
    pub fn role(&self) -> Role {
        match self {
            Target::Client(_) => Role::Client,
            Target::Server(_) => Role::Server,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Target::Client(c) => c.name(),
            Target::Server(s) => s.name(),
        }
    }
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The cases of a role selected by the globs (all of them without globs), in catalogue order.
pub fn select(role: Role, globs: &[String]) -> Vec<&'static Case> {
    catalogue()
        .iter()
        .filter(|c| c.role == role)
        .filter(|c| globs.is_empty() || globs.iter().any(|g| glob_match(g, c.id)))
        .collect()
}

/// Runs the selected client cases against a client.
pub fn certify_client<C: ClientUnderTest>(client: &C, opts: &Options) -> ImplementationRun {
    certify(&[Target::Client(client)], opts).remove(0)
}

/// Runs the selected server cases against a server.
pub fn certify_server<S: ServerUnderTest>(server: &S, opts: &Options) -> ImplementationRun {
    certify(&[Target::Server(server)], opts).remove(0)
}

/// Runs the selected cases against every target, all in one pool; one run per target.
pub fn certify(targets: &[Target], opts: &Options) -> Vec<ImplementationRun> {
    let work: Vec<(usize, &'static Case)> = targets
        .iter()
        .enumerate()
        .flat_map(|(t, target)| select(target.role(), &opts.cases).into_iter().map(move |c| (t, c)))
        .collect();
    let results: Mutex<Vec<Option<(CaseResult, Instant, Instant)>>> = Mutex::new(vec![None; work.len()]);
    let next = AtomicUsize::new(0);
    let workers = opts.jobs.clamp(1, work.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(t, case)) = work.get(i) else { break };
                let start = Instant::now();
                let r = run_case(case, targets[t], opts.timing);
                let end = Instant::now();
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some((r, start, end));
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    targets
        .iter()
        .enumerate()
        .map(|(t, target)| {
            let mine: Vec<&(CaseResult, Instant, Instant)> = work
                .iter()
                .zip(&results)
                .filter(|((wt, _), _)| *wt == t)
                .filter_map(|(_, r)| r.as_ref())
                .collect();
            let first = mine.iter().map(|r| r.1).min();
            let last = mine.iter().map(|r| r.2).max();
            let duration_ms = match (first, last) {
                (Some(a), Some(b)) => b.duration_since(a).as_millis() as u64,
                _ => 0,
            };
            ImplementationRun {
                implementation: target.name(),
                role: target.role(),
                results: mine.into_iter().map(|r| r.0.clone()).collect(),
                duration_ms,
            }
        })
        .collect()
}

/// Runs one case against one implementation.
pub fn run_case(case: &'static Case, target: Target, timing: Timing) -> CaseResult {
    let (client, server) = match target {
        Target::Client(c) => (Some(c), None),
        Target::Server(s) => (None, Some(s)),
    };
    let cx = Cx::new(case.id, case.role, client, server, timing);
    let started = Instant::now();
    let obs = match cx.prepare() {
        Err(e) => Observation {
            harness_error: Some(format!("cannot create the scratch directory: {e}")),
            ..Observation::default()
        },
        Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&cx))).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Observation {
                harness_error: Some(format!("the harness panicked: {msg}")),
                ..Observation::default()
            }
        }),
    };
    let judged = case.expectation.judge(case, &obs);
    cx.log("harness", "verdict", judged.verdict.label());
    let transcript = cx.transcript();
    cx.cleanup();
    CaseResult {
        case_id: case.id.to_string(),
        verdict: judged.verdict,
        integrity: judged.integrity,
        termination: judged.termination,
        duration_ms: started.elapsed().as_millis() as u64,
        transcript,
        expected_failure: None,
    }
}

/// A report over runs: the cases that were run (catalogue order) and the runs.
pub fn report(runs: Vec<ImplementationRun>) -> RunReport {
    let ran: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.results.iter().map(|c| c.case_id.as_str()))
        .collect();
    let cases: Vec<CaseInfo> = catalogue()
        .iter()
        .filter(|c| ran.contains(&c.id))
        .map(|c| c.info())
        .collect();
    RunReport {
        schema_version: REPORT_SCHEMA_VERSION,
        tool: "vdisim".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at: rfc3339_now(),
        cases,
        runs,
        regressions: Vec::new(),
    }
}

/// Both built-in implementations against the whole catalogue (for `vdisim demo`).
pub fn run_builtin_suite() -> RunReport {
    let opts = Options::default();
    report(certify(
        &[Target::Client(&BuiltinClient), Target::Server(&BuiltinServer)],
        &opts,
    ))
}

/// The current UTC time as RFC 3339 (`2024-05-01T12:00:00Z`).
pub fn rfc3339_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "abort.client.x"));
        assert!(glob_match("abort.*", "abort.client.x"));
        assert!(glob_match("*.client.*", "abort.client.x"));
        assert!(!glob_match("abort.*", "stripes.client.x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn time_format() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20"), "{t}");
        assert!(t.ends_with('Z'));
    }
}
