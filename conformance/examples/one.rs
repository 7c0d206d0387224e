use vdi_conformance::mutants::find;
use vdi_conformance::{certify, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = find(&args[0]).expect("mutant");
    let imp = m.implementation();
    let runs = certify(
        &[imp.target()],
        &Options {
            cases: vec![args[1].clone()],
            jobs: 1,
            ..Options::default()
        },
    );
    for r in &runs[0].results {
        println!("{} {:?}", r.case_id, r.verdict);
        for t in &r.transcript {
            println!("  {:>6} {:<8} {} -> {}", t.at_ms, t.actor, t.call, t.result);
        }
    }
}
