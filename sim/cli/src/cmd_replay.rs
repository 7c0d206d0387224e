//! `vdisim replay FILE [--exec CMD | --mutant X]`: replays a saved transcript (a JSON file
//! under fixtures/regressions/, or one the property-based model wrote) step by step and
//! compares every outcome with the recorded one.
//!
//! Against: the built-in client and server in this process (default); `--exec CMD`: the
//! built-in client here and the server side in `CMD <set>`, a program speaking the script
//! contract (one JSON step per stdin line, one `RESULT <json>` line per step, see
//! `vdi_conformance::props::remote`; `vdisim-peer script` is the reference); `--mutant X`:
//! the built-in pair with one seeded defect (model level).
//!
//! Exit codes: 0 every step matched, 1 a step differed, 2 usage or harness error.

use std::path::PathBuf;
use vdi_conformance::props::driver::{fresh_set_name, Driver, LocalClient, Pair};
use vdi_conformance::props::mutants::{Mutant, MutantDriver};
use vdi_conformance::props::remote::RemoteServer;
use vdi_conformance::props::transcript::Transcript;

#[derive(clap::Args)]
pub struct Args {
    /// The transcript (JSON).
    pub file: PathBuf,
    /// Run the server side in this program (started as `CMD <set-name>`).
    #[arg(long, value_name = "CMD", conflicts_with = "mutant")]
    pub exec: Option<String>,
    /// Replay against the built-in pair with this seeded defect (see `--list-mutants`).
    #[arg(long, value_name = "X")]
    pub mutant: Option<String>,
    /// List the seeded defects `--mutant` accepts, then exit.
    #[arg(long)]
    pub list_mutants: bool,
    /// Print every step, not only the first difference.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(args: Args) -> u8 {
    if args.list_mutants {
        for m in Mutant::ALL {
            println!("{}", m.id());
        }
        return 0;
    }
    let transcript = match Transcript::load(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("vdisim replay: {e}");
            return 2;
        }
    };
    let mut driver: Box<dyn Driver> = if let Some(cmd) = &args.exec {
        let command: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
        let set = fresh_set_name();
        match RemoteServer::spawn(&command, &set) {
            Ok(server) => Box::new(Pair {
                client: LocalClient::new(&set),
                server,
                set,
            }),
            Err(e) => {
                eprintln!("vdisim replay: cannot start {cmd}: {e}");
                return 2;
            }
        }
    } else if let Some(id) = &args.mutant {
        match Mutant::from_id(id) {
            Some(m) => Box::new(MutantDriver::new(m)),
            None => {
                let known: Vec<&str> = Mutant::ALL.iter().map(|m| m.id()).collect();
                eprintln!("vdisim replay: unknown mutant {id:?} (known: {})", known.join(", "));
                return 2;
            }
        }
    } else {
        Box::new(Pair::in_process())
    };
    println!(
        "{}: {} steps against {}",
        transcript.name,
        transcript.steps.len(),
        driver.name()
    );
    if !transcript.description.is_empty() {
        println!("  {}", transcript.description);
    }
    if let Err(m) = transcript.check_model() {
        println!("  note: the current model no longer predicts this transcript: {m}");
    }
    if args.verbose {
        for (i, e) in transcript.steps.iter().enumerate() {
            println!(
                "  {:3} {:6} {} => {}",
                i + 1,
                format!("{:?}", e.actor).to_lowercase(),
                e.call,
                e.expect
            );
        }
    }
    match transcript.replay(driver.as_mut()) {
        Ok(()) => {
            println!("PASS: every step returned what the transcript expects");
            0
        }
        Err(m) => {
            println!("FAIL: {m}");
            1
        }
    }
}
