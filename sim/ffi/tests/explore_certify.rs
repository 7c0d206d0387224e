//! Exploration (ignored): certify each native client through the library and print verdicts.
mod common;
use common::*;
use vdi_conformance::exec::ExecClient;
use vdi_conformance::{certify_client, Options};

#[test]
#[ignore]
fn explore() {
    let Some(clients) = clients() else { return };
    let which = std::env::var("EXPLORE").unwrap_or_else(|_| "vdiclient".into());
    for name in which.split(',') {
        let exec = ExecClient::parse(&clients.join(name).display().to_string()).unwrap();
        let t = std::time::Instant::now();
        let run = certify_client(&exec, &Options::default());
        println!("== {name} ({:?}) {:?}", t.elapsed(), run.summary());
        for r in &run.results {
            if !matches!(r.verdict, vdi_conformance::model::Verdict::Pass) {
                println!("  {} {:?}", r.case_id, r.verdict);
            }
        }
    }
}
