//! `vdisim sql`: executes T-SQL as the simulated SQL Server and prints messages like sqlcmd.
//! Installed (or symlinked) under the name `sqlcmd`, the same binary behaves as `sqlcmd`.
//!
//! Input: `-Q "<statements>"` or `-q "<statements>"`, `-i FILE[,FILE...]`, else standard input.
//! Like sqlcmd, the text is cut into batches at lines holding only `GO` (optionally `GO n`, run
//! n times); a syntax error stops its batch only. sqlcmd's common flags are accepted: `-S`
//! selects the instance (`host\INSTANCE`; the VDI set names are per instance), `-U -P -E -d -h
//! -W -s -w -l -t -C -N -m -I -x` are accepted and have no effect, `-b` stops at the first
//! failing batch, `-o FILE` writes the output to FILE, `-r0`/`-r1` send errors/all messages to
//! standard error, `-V n` ignores errors below severity n for the exit code.
//!
//! Exit code: `vdisim sql` exits 1 if any statement failed, else 0. Under the name `sqlcmd` it
//! exits like sqlcmd: 1 only with `-b` and a failure, else 0. Both exit 1 for an unreadable `-i`
//! file and 2 for bad flags (`vdisim`) or 1 (`sqlcmd`).
//!
//! The data directory is `--data-dir`, else `$VDISIM_DATA`, else the per-user default
//! (`DataDir::default_location`).

use clap::{ArgAction, FromArgMatches};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vdisim::engine::database::DataDir;
use vdisim::engine::{Engine, EngineOptions};

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Execute these statements and exit.
    #[arg(short = 'Q', value_name = "QUERY")]
    query_exit: Option<String>,
    /// Execute these statements (sqlcmd would then stay interactive; vdisim exits).
    #[arg(short = 'q', value_name = "QUERY")]
    query: Option<String>,
    /// Input files, run in order (comma-separated or repeated).
    #[arg(short = 'i', value_name = "FILE", value_delimiter = ',')]
    input: Vec<PathBuf>,
    /// Write the output to this file.
    #[arg(short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Data directory holding the databases (default: $VDISIM_DATA, else the user data dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Server: `host`, `host\INSTANCE` or `host,port`; only the instance name matters.
    #[arg(short = 'S', value_name = "SERVER")]
    server: Option<String>,
    /// Stop at the first batch that fails and exit 1 (sqlcmd's -b).
    #[arg(short = 'b')]
    abort_on_error: bool,
    /// Errors below this severity do not count for the exit code (sqlcmd's -V).
    #[arg(short = 'V', value_name = "SEVERITY")]
    severity: Option<u8>,
    /// -r0: error messages to standard error; -r1: all messages to standard error.
    #[arg(short = 'r', value_name = "0|1", num_args = 0..=1, default_missing_value = "0")]
    redirect: Option<u8>,
    /// How long BACKUP/RESTORE waits for the client to create the virtual device set, ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    open_grace_ms: u64,
    /// sqlcmd flags accepted for compatibility, without effect.
    #[command(flatten)]
    ignored: Box<Ignored>,
    /// Print help.
    #[arg(long = "help", short = '?', action = ArgAction::Help)]
    help: Option<bool>,
}

/// Flags sqlcmd has that make no difference here (no logins, no result sets, no network).
#[derive(clap::Args, Debug)]
#[allow(dead_code)]
struct Ignored {
    /// Login name (accepted; vdisim has no logins).
    #[arg(short = 'U', value_name = "LOGIN")]
    user: Option<String>,
    /// Password (accepted and ignored).
    #[arg(short = 'P', value_name = "PASSWORD")]
    password: Option<String>,
    /// Trusted connection (accepted and ignored).
    #[arg(short = 'E')]
    trusted: bool,
    /// Database context (accepted and ignored: statements name their database).
    #[arg(short = 'd', value_name = "DB")]
    database: Option<String>,
    /// Headers (accepted and ignored: vdisim returns no result sets).
    #[arg(short = 'h', value_name = "N", allow_negative_numbers = true)]
    headers: Option<i64>,
    /// Trim trailing spaces (accepted and ignored).
    #[arg(short = 'W')]
    trim: bool,
    /// Column separator (accepted and ignored).
    #[arg(short = 's', value_name = "SEP")]
    col_sep: Option<String>,
    /// Screen width (accepted and ignored).
    #[arg(short = 'w', value_name = "WIDTH")]
    width: Option<u32>,
    /// Login timeout (accepted and ignored).
    #[arg(short = 'l', value_name = "SECONDS")]
    login_timeout: Option<u32>,
    /// Query timeout (accepted and ignored).
    #[arg(short = 't', value_name = "SECONDS")]
    query_timeout: Option<u32>,
    /// Trust the server certificate (accepted and ignored).
    #[arg(short = 'C')]
    trust_cert: bool,
    /// Encrypt the connection (accepted and ignored).
    #[arg(short = 'N', num_args = 0..=1, default_missing_value = "true", value_name = "MODE")]
    encrypt: Option<String>,
    /// Error level for printing (accepted and ignored).
    #[arg(short = 'm', value_name = "LEVEL", allow_negative_numbers = true)]
    error_level: Option<i64>,
    /// Quoted identifiers (accepted; always on).
    #[arg(short = 'I')]
    quoted_identifier: bool,
    /// Disable variable substitution (accepted; vdisim does none).
    #[arg(short = 'x')]
    no_variables: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Vdisim,
    Sqlcmd,
}

/// True when the binary runs under the name `sqlcmd` (a symlink or copy).
pub fn invoked_as_sqlcmd() -> bool {
    std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_stem().map(|s| s.eq_ignore_ascii_case("sqlcmd")))
        .unwrap_or(false)
}

/// Runs as `sqlcmd`: parses the whole command line with sqlcmd's flags.
pub fn run_as_sqlcmd() -> u8 {
    let cmd = <Args as clap::Args>::augment_args(
        clap::Command::new("sqlcmd").about("vdisim's sqlcmd: T-SQL against the simulated SQL Server"),
    );
    let parsed = cmd.try_get_matches().and_then(|m| Args::from_arg_matches(&m));
    match parsed {
        Ok(args) => run_flavor(args, Flavor::Sqlcmd),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                1
            } else {
                0
            }
        }
    }
}

pub fn run(args: Args) -> u8 {
    run_flavor(args, Flavor::Vdisim)
}

/// `host\INSTANCE` → the instance; the default instance otherwise.
fn instance_of(server: Option<&str>) -> Option<String> {
    let s = server?;
    let s = s.split(',').next().unwrap_or(s);
    let (_, inst) = s.split_once('\\')?;
    if inst.is_empty() || inst.eq_ignore_ascii_case("MSSQLSERVER") {
        None
    } else {
        Some(inst.to_string())
    }
}

/// `Some(n)` if `line` holds only `GO` or `GO n` (and maybe a `--` comment).
fn go_line(line: &str) -> Option<u32> {
    let code = line.split("--").next().unwrap_or_default();
    let mut words = code.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("GO") {
        return None;
    }
    let n = match words.next() {
        None => 1,
        Some(c) => c.parse::<u32>().ok().filter(|n| *n >= 1)?,
    };
    if words.next().is_some() {
        return None;
    }
    Some(n)
}

/// Cuts a script into batches at `GO [n]` lines (sqlcmd does this on its side, line by line).
/// Returns (text, repeat count) per batch.
fn split_batches(script: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        if let Some(n) = go_line(line) {
            out.push((std::mem::take(&mut current), n));
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        out.push((current, 1));
    }
    out
}

fn read_script(args: &Args) -> Result<String, String> {
    if let Some(q) = args.query_exit.as_ref().or(args.query.as_ref()) {
        return Ok(q.clone());
    }
    if !args.input.is_empty() {
        let mut all = String::new();
        for f in &args.input {
            let text =
                std::fs::read_to_string(f).map_err(|_| format!("Sqlcmd: '{}': Invalid filename.", f.display()))?;
            all.push_str(&text);
            if !text.ends_with('\n') {
                all.push('\n');
            }
            // Each file ends its last batch, as sqlcmd does.
            all.push_str("GO\n");
        }
        return Ok(all);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("Sqlcmd: standard input: {e}"))?;
    Ok(s)
}

fn run_flavor(args: Args, flavor: Flavor) -> u8 {
    let script = match read_script(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let root = args.data_dir.clone().unwrap_or_else(DataDir::default_location);
    let data = match DataDir::new(&root) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vdisim sql: data directory {}: {e}", root.display());
            return 1;
        }
    };
    let engine = Engine::new(data, instance_of(args.server.as_deref())).with_options(EngineOptions {
        open_grace: Duration::from_millis(args.open_grace_ms),
        ..EngineOptions::default()
    });
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("Sqlcmd: '{}': {e}", p.display());
                return 1;
            }
        },
        None => Box::new(std::io::stdout()),
    };
    let min_severity = args.severity.unwrap_or(0);
    let mut failed = false;
    'batches: for (batch, times) in split_batches(&script) {
        for _ in 0..times {
            let mut batch_failed = false;
            for outcome in engine.execute_batch(&batch) {
                for m in &outcome.messages {
                    let to_stderr = match args.redirect {
                        Some(1) => true,
                        Some(_) => m.is_error(),
                        None => false,
                    };
                    if to_stderr {
                        eprintln!("{m}");
                    } else {
                        let _ = writeln!(out, "{m}");
                    }
                    if m.is_error() && m.severity >= min_severity {
                        batch_failed = true;
                    }
                }
            }
            let _ = out.flush();
            failed |= batch_failed;
            if batch_failed && args.abort_on_error {
                break 'batches;
            }
        }
    }
    let _ = out.flush();
    match flavor {
        Flavor::Vdisim => u8::from(failed),
        Flavor::Sqlcmd => u8::from(failed && args.abort_on_error),
    }
}

/// The clap command, for tests of the flag set.
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Args as clap::Args>::augment_args(clap::Command::new("sqlcmd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_on_go_lines() {
        let b =
            split_batches("CREATE DATABASE a\ngo\nBACKUP DATABASE a TO VIRTUAL_DEVICE='x'\n  GO 2  \nDROP DATABASE a");
        assert_eq!(b.len(), 3);
        assert_eq!(b[0], ("CREATE DATABASE a\n".to_string(), 1));
        assert_eq!(b[1].1, 2);
        assert!(b[2].0.starts_with("DROP"));
        // "GO" inside a statement line is not a separator.
        assert_eq!(split_batches("SELECT go\n").len(), 1);
    }

    #[test]
    fn instance_comes_from_the_server_name() {
        assert_eq!(instance_of(Some("localhost\\INST1")), Some("INST1".to_string()));
        assert_eq!(instance_of(Some(".\\MSSQLSERVER")), None);
        assert_eq!(instance_of(Some("localhost,1433")), None);
        assert_eq!(instance_of(None), None);
    }

    #[test]
    fn sqlcmd_flags_parse() {
        let m = command()
            .try_get_matches_from([
                "sqlcmd",
                "-S",
                "localhost",
                "-U",
                "sa",
                "-P",
                "pw",
                "-E",
                "-d",
                "master",
                "-b",
                "-h",
                "-1",
                "-W",
                "-Q",
                "BACKUP DATABASE x TO VIRTUAL_DEVICE='v'",
            ])
            .expect("parses");
        let a = Args::from_arg_matches(&m).expect("args");
        assert!(a.abort_on_error);
        assert_eq!(a.ignored.headers, Some(-1));
        assert!(a.query_exit.is_some());
    }
}
