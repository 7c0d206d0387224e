use vdi_conformance::model::Verdict;
use vdi_conformance::mutants::mutants;
use vdi_conformance::{certify, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let jobs: usize = std::env::var("JOBS").ok().and_then(|j| j.parse().ok()).unwrap_or(16);
    let all = mutants();
    let sel: Vec<_> = all
        .iter()
        .filter(|m| args.is_empty() || args.iter().any(|a| a == m.name))
        .collect();
    let impls: Vec<_> = sel.iter().map(|m| m.implementation()).collect();
    let targets: Vec<_> = impls.iter().map(|i| i.target()).collect();
    let t = std::time::Instant::now();
    let runs = certify(
        &targets,
        &Options {
            jobs,
            ..Options::default()
        },
    );
    for (m, run) in sel.iter().zip(&runs) {
        let caught: Vec<String> = run
            .results
            .iter()
            .filter(|r| r.verdict.is_failure())
            .map(|r| r.case_id.clone())
            .collect();
        println!("{} ({} ms): {:?}", m.name, run.duration_ms, caught);
        for r in &run.results {
            match &r.verdict {
                Verdict::Fail { actual, .. } => println!("    FAIL {} : {}", r.case_id, actual),
                Verdict::Hang { step } => println!("    HANG {} : {}", r.case_id, step),
                Verdict::NonStrict { actual, .. } => println!("    NONSTRICT {} : {}", r.case_id, actual),
                _ => {}
            }
        }
    }
    println!("total {:?}", t.elapsed());
}
