//! `vdisim`: the command line of the VDI emulator and conformance harness.
//!
//! Each subcommand lives in its own module with its own clap `Args`; this file only
//! dispatches. Exit codes: 0 success, 1 failure of what was run, 2 usage or harness error.
#![forbid(unsafe_code)]

mod cmd_certify;
mod cmd_cleanup;
mod cmd_client;
mod cmd_demo;
mod cmd_replay;
mod cmd_sql;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "vdisim",
    version,
    about = "SQL Server VDI emulator (both roles) and conformance harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: a striped BACKUP and RESTORE through shared memory, verified byte for
    /// byte, then the conformance suite against the built-in implementations.
    Demo(cmd_demo::Args),
    /// Execute T-SQL (CREATE DATABASE, BACKUP, RESTORE) as the simulated SQL Server.
    Sql(cmd_sql::Args),
    /// Run the reference VDI client as a process.
    Client(cmd_client::Args),
    /// Run the conformance suite against an implementation.
    Certify(cmd_certify::CertifyArgs),
    /// List the conformance case catalogue.
    Cases(cmd_certify::CasesArgs),
    /// List the seeded defects (mutants) the harness must catch.
    Mutants(cmd_certify::MutantsArgs),
    /// Replay a saved transcript against an implementation.
    Replay(cmd_replay::Args),
    /// List (and remove) stale vdisim shared-memory segments.
    Cleanup(cmd_cleanup::Args),
}

fn main() -> ExitCode {
    // Installed or symlinked as `sqlcmd`, the binary is the sqlcmd front end.
    if cmd_sql::invoked_as_sqlcmd() {
        return ExitCode::from(cmd_sql::run_as_sqlcmd());
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Demo(a) => cmd_demo::run(a),
        Command::Sql(a) => cmd_sql::run(a),
        Command::Client(a) => cmd_client::run(a),
        Command::Certify(a) => cmd_certify::run_certify(a),
        Command::Cases(a) => cmd_certify::run_cases(a),
        Command::Mutants(a) => cmd_certify::run_mutants(a),
        Command::Replay(a) => cmd_replay::run(a),
        Command::Cleanup(a) => cmd_cleanup::run(a),
    };
    ExitCode::from(code)
}
