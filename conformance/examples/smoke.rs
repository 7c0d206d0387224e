use vdi_conformance::builtin::{BuiltinClient, BuiltinServer};
use vdi_conformance::model::Verdict;
use vdi_conformance::{certify, Options, Target};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = Options {
        cases: args,
        ..Options::default()
    };
    let t = std::time::Instant::now();
    let runs = certify(&[Target::Client(&BuiltinClient), Target::Server(&BuiltinServer)], &opts);
    for run in &runs {
        for r in &run.results {
            let extra = match &r.verdict {
                Verdict::Fail { expected, actual, .. } | Verdict::NonStrict { expected, actual, .. } => {
                    format!("expected {expected}; actual {actual}")
                }
                Verdict::Hang { step } => step.clone(),
                Verdict::Informational { note } => note.clone(),
                Verdict::Unsupported { reason } => reason.clone(),
                Verdict::Pass => String::new(),
            };
            println!(
                "{:<12} {:>6}ms {:<55} {}",
                r.verdict.label(),
                r.duration_ms,
                r.case_id,
                extra
            );
        }
        println!("{}: {:?} in {} ms", run.implementation, run.summary(), run.duration_ms);
    }
    println!("total {:?}", t.elapsed());
}
