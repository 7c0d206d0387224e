//! Suite time (issue 7): wall time of the full conformance catalogue (every client case)
//! against the built-in client, `vdi_conformance::certify_client(&BuiltinClient, default
//! options)`, i.e. what `vdisim certify` does for our own client.
//!
//! Not a criterion measure (one run takes seconds): it runs `VDISIM_BENCH_SUITE_RUNS`
//! (default 3) times, prints each, and writes the median to `<criterion home>/suite/result.json`.
//! Under `cargo test` (no `--bench` argument) it does nothing.

use std::time::Instant;
use vdi_conformance::builtin::BuiltinClient;
use vdi_conformance::model::Verdict;
use vdi_conformance::{certify_client, Options};
use vdisim_benches::{criterion_home, env_or, median};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs = env_or("VDISIM_BENCH_SUITE_RUNS", 3).max(1);
    let opts = Options::default();
    let mut seconds = Vec::new();
    let mut cases = 0;
    let mut passed = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let run = certify_client(&BuiltinClient, &opts);
        let s = t.elapsed().as_secs_f64();
        cases = run.results.len();
        passed = run.results.iter().filter(|r| r.verdict == Verdict::Pass).count();
        println!(
            "suite/builtin_client: {cases} cases ({passed} Pass) in {s:.3} s with {} jobs",
            opts.jobs
        );
        seconds.push(s);
    }
    let med = median(&mut seconds).unwrap_or(f64::NAN);
    println!("suite/builtin_client: median {med:.3} s over {runs} runs");
    let path = criterion_home().join("suite").join("result.json");
    let json = serde_json::json!({ "runs": seconds, "median_seconds": med, "cases": cases, "passed": passed, "jobs": opts.jobs });
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, json.to_string()));
    if let Err(e) = written {
        eprintln!("suite bench: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}
