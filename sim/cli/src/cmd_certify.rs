//! `vdisim certify`, `vdisim cases`, `vdisim mutants`: the conformance harness
//! ([`vdi_conformance`]) on the command line.
//!
//! Exit codes of `certify`: 0 when every strict case passed (or was expected to fail), 1 on
//! any unexpected failure, hang or regression, 2 when the harness itself could not run (bad
//! arguments, unreadable `--expect`/`--baseline`, a program that cannot be started, an
//! unwritable report file).

use clap::ValueEnum;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vdi_conformance::builtin::{BuiltinClient, BuiltinServer};
use vdi_conformance::cases::{catalogue, CHAPTERS};
use vdi_conformance::exec::ExecClient;
use vdi_conformance::model::{Level, Role, RunReport, Verdict};
use vdi_conformance::mutants::{find, mutants};
use vdi_conformance::report::{self, Expectations, TerminalOptions};
use vdi_conformance::runner::select;
use vdi_conformance::{build_report, certify, Options, Target};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BuiltinArg {
    /// The reference client (vdisim::reference_client), run in threads.
    Client,
    /// The built-in server (a BACKUP/RESTORE-like job over vdisim::server).
    Server,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    Client,
    Server,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Client => Role::Client,
            RoleArg::Server => Role::Server,
        }
    }
}

#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("target").required(true).args(["builtin", "mutant", "exec"])),
    after_help = "External programs (--exec) are run once per job as\n  \
<cmd> backup|restore --set NAME --devices N --store DIR --timeout-ms T [--request-complete]\n\
(the arguments of `vdisim client`): exit 0 = success, 89 = unsupported, anything else = failure; \
killed at the case deadline (HANG).\nExit codes: 0 every strict case passed (or was expected to fail), \
1 unexpected failure, hang or regression, 2 the harness could not run."
)]
pub struct CertifyArgs {
    /// Certify a built-in implementation.
    #[arg(long, value_enum)]
    builtin: Option<BuiltinArg>,
    /// Certify a seeded defect (see `vdisim mutants`); exits 1 naming the cases that caught it.
    #[arg(long)]
    mutant: Option<String>,
    /// Certify an external client program, e.g. --exec "vdisim client".
    #[arg(long)]
    exec: Option<String>,
    /// Run only the cases whose id matches this glob (repeatable; `*` and `?`).
    #[arg(long = "case", value_name = "GLOB")]
    cases: Vec<String>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Expected failures: globs of case ids with reasons (known gaps do not fail the run).
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// A previous JSON report: cases that passed there and fail now are regressions.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Cases run at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// List only the cases that did not pass.
    #[arg(long)]
    failures_only: bool,
}

#[derive(clap::Args)]
pub struct CasesArgs {
    /// Print the catalogue as JSON.
    #[arg(long)]
    json: bool,
    /// Only the cases of this role under test.
    #[arg(long, value_enum)]
    role: Option<RoleArg>,
    /// Only the cases whose id matches this glob (repeatable).
    #[arg(long = "case", value_name = "GLOB")]
    cases: Vec<String>,
}

#[derive(clap::Args)]
pub struct MutantsArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

/// What `--builtin`, `--mutant` or `--exec` resolved to.
enum Resolved {
    Client(Box<dyn vdi_conformance::plugin::ClientUnderTest>),
    Server(Box<dyn vdi_conformance::plugin::ServerUnderTest>),
}

fn resolve(args: &CertifyArgs) -> Result<(Resolved, Option<&'static [&'static str]>), String> {
    if let Some(b) = args.builtin {
        return Ok(match b {
            BuiltinArg::Client => (Resolved::Client(Box::new(BuiltinClient)), None),
            BuiltinArg::Server => (Resolved::Server(Box::new(BuiltinServer)), None),
        });
    }
    if let Some(name) = &args.mutant {
        let m = find(name).ok_or_else(|| format!("no mutant named {name:?} (see `vdisim mutants`)"))?;
        let caught_by = m.caught_by;
        return Ok(match m.implementation() {
            vdi_conformance::mutants::MutantImpl::Client(c) => (Resolved::Client(Box::new(c)), Some(caught_by)),
            vdi_conformance::mutants::MutantImpl::Server(s) => (Resolved::Server(Box::new(s)), Some(caught_by)),
        });
    }
    if let Some(cmd) = &args.exec {
        let client = ExecClient::parse(cmd)?;
        check_program(cmd)?;
        return Ok((Resolved::Client(Box::new(client)), None));
    }
    Err("one of --builtin, --mutant or --exec is required".into())
}

/// Fails early (exit 2) when the program of `--exec` cannot be found.
fn check_program(cmd: &str) -> Result<(), String> {
    let program = cmd
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches(['"', '\'']);
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false)
    };
    if found {
        Ok(())
    } else {
        Err(format!("cannot find the program {program:?} of --exec"))
    }
}

pub fn run_certify(args: CertifyArgs) -> u8 {
    match certify_cmd(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vdisim certify: {e}");
            2
        }
    }
}

fn certify_cmd(args: &CertifyArgs) -> Result<u8, String> {
    let (resolved, caught_by) = resolve(args)?;
    let expectations = match &args.expect {
        Some(p) => Some(Expectations::load(p)?),
        None => None,
    };
    let baseline = match &args.baseline {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(report::from_json(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let target = match &resolved {
        Resolved::Client(c) => Target::Client(c.as_ref()),
        Resolved::Server(s) => Target::Server(s.as_ref()),
    };
    let selected = select(target.role(), &args.cases);
    if selected.is_empty() {
        return Err(format!(
            "no {} case matches {}",
            role_name(target.role()),
            args.cases.join(", ")
        ));
    }
    let opts = Options {
        cases: args.cases.clone(),
        jobs: args.jobs as usize,
        ..Options::default()
    };
    println!(
        "vdisim certify: {} ({} role), {} case(s), {} at a time",
        target.name(),
        role_name(target.role()),
        selected.len(),
        opts.jobs
    );
    let started = Instant::now();
    let runs = certify(&[target], &opts);
    let elapsed = started.elapsed();
    let mut rep = build_report(runs);
    if let Some(e) = &expectations {
        report::apply_expectations(&mut rep, e);
    }
    if let Some(b) = &baseline {
        rep.regressions = report::regressions(&rep, b);
    }
    let table = report::terminal_table_with(
        &rep,
        &TerminalOptions {
            color: std::io::stdout().is_terminal(),
            failures_only: args.failures_only,
            ..TerminalOptions::default()
        },
    );
    print!("{table}");
    println!(
        "timing: {} case(s) against {} in {:.1} s ({} at a time)",
        selected.len(),
        target.name(),
        elapsed.as_secs_f64(),
        opts.jobs
    );
    if let Some(expected) = caught_by {
        print_mutant_verdict(&rep, expected);
    }
    write_reports(args, &rep)?;
    let harness_errors = harness_errors(&rep);
    if !harness_errors.is_empty() {
        for e in &harness_errors {
            eprintln!("vdisim certify: {e}");
        }
        return Ok(2);
    }
    Ok(report::exit_code(&rep))
}

/// For `--mutant`: which cases caught it, against the catalogue's expectation.
fn print_mutant_verdict(rep: &RunReport, expected: &[&str]) {
    let caught: Vec<&str> = rep
        .runs
        .iter()
        .flat_map(|r| r.results.iter())
        .filter(|r| r.verdict.is_failure())
        .map(|r| r.case_id.as_str())
        .collect();
    if caught.is_empty() {
        println!("mutant NOT caught: no case failed");
    } else {
        println!("mutant caught by {} case(s): {}", caught.len(), caught.join(", "));
    }
    let ran: Vec<&str> = rep
        .runs
        .iter()
        .flat_map(|r| r.results.iter().map(|c| c.case_id.as_str()))
        .collect();
    let missed: Vec<&&str> = expected
        .iter()
        .filter(|id| ran.contains(id) && !caught.contains(id))
        .collect();
    if !missed.is_empty() {
        let list: Vec<&str> = missed.into_iter().copied().collect();
        println!("expected to be caught also by: {}", list.join(", "));
    }
}

/// Cases the harness could not run (as opposed to failures of the implementation).
fn harness_errors(rep: &RunReport) -> Vec<String> {
    rep.runs
        .iter()
        .flat_map(|r| r.results.iter())
        .filter_map(|r| match &r.verdict {
            Verdict::Fail { actual, .. } if actual.starts_with("harness error:") => {
                Some(format!("{}: {actual}", r.case_id))
            }
            _ => None,
        })
        .collect()
}

fn write_reports(args: &CertifyArgs, rep: &RunReport) -> Result<(), String> {
    let write = |path: &Option<PathBuf>, what: &str, text: String| -> Result<(), String> {
        if let Some(p) = path {
            std::fs::write(p, text).map_err(|e| format!("cannot write the {what} report {}: {e}", p.display()))?;
            println!("{what} report: {}", p.display());
        }
        Ok(())
    };
    write(&args.json, "JSON", report::to_json(rep))?;
    write(&args.junit, "JUnit", report::to_junit(rep))?;
    write(&args.html, "HTML", report::to_html(rep))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Client => "client",
        Role::Server => "server",
    }
}

/// Prints a line, ignoring a closed pipe (`vdisim cases | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub fn run_cases(args: CasesArgs) -> u8 {
    let cases: Vec<_> = catalogue()
        .iter()
        .filter(|c| args.role.map_or(true, |r| r.role() == c.role))
        .filter(|c| args.cases.is_empty() || args.cases.iter().any(|g| report::glob_match(g, c.id)))
        .collect();
    if args.json {
        let infos: Vec<_> = cases.iter().map(|c| c.info()).collect();
        return match serde_json::to_string_pretty(&infos) {
            Ok(s) => {
                out!("{s}");
                0
            }
            Err(e) => {
                eprintln!("vdisim cases: {e}");
                2
            }
        };
    }
    for chapter in CHAPTERS {
        let mine: Vec<_> = cases.iter().filter(|c| c.chapter == chapter).collect();
        if mine.is_empty() {
            continue;
        }
        out!("{chapter} ({} case(s))", mine.len());
        for c in mine {
            let level = match c.level {
                Level::Must => "MUST",
                Level::Should => "SHOULD",
            };
            out!(
                "  {:<52} {:<6} {:<6} {:<10} {}",
                c.id,
                level,
                role_name(c.role),
                c.spec_ref,
                c.title
            );
            out!("  {:<52} expects {}", "", c.expectation);
        }
    }
    let clients = cases.iter().filter(|c| c.role == Role::Client).count();
    out!(
        "{} case(s): {clients} for clients, {} for servers",
        cases.len(),
        cases.len() - clients
    );
    0
}

pub fn run_mutants(args: MutantsArgs) -> u8 {
    let all = mutants();
    if args.json {
        let list: Vec<_> = all
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "role": role_name(m.role()),
                    "description": m.description,
                    "caught_by": m.caught_by,
                })
            })
            .collect();
        return match serde_json::to_string_pretty(&list) {
            Ok(s) => {
                out!("{s}");
                0
            }
            Err(e) => {
                eprintln!("vdisim mutants: {e}");
                2
            }
        };
    }
    for m in &all {
        out!("{} ({})", m.name, role_name(m.role()));
        out!("    {}", m.description);
        out!("    caught by: {}", m.caught_by.join(", "));
    }
    let clients = all.iter().filter(|m| m.role() == Role::Client).count();
    out!(
        "{} mutant(s): {clients} clients, {} servers; run one with `vdisim certify --mutant NAME`",
        all.len(),
        all.len() - clients
    );
    0
}
