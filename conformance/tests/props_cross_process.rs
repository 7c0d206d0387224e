//! The reference model across two real processes: the client in this process, the server in
//! a `vdisim-peer script` process over a command pipe (a server death is a real SIGKILL).
//! Fewer cases than in process: each one starts a process.

use vdi_conformance::props::driver::{fresh_set_name, Driver, LocalClient, Pair};
use vdi_conformance::props::machine::{check, Campaign};
use vdi_conformance::props::remote::{peer_binary, RemoteServer};
use vdi_conformance::props::scenarios;
use vdi_conformance::props::transcript::regressions_dir;

fn remote_pair(peer: &std::path::Path) -> Box<dyn Driver> {
    let set = fresh_set_name();
    let command = vec![peer.display().to_string(), "script".to_string()];
    let server = RemoteServer::spawn(&command, &set).expect("peer starts");
    Box::new(Pair {
        client: LocalClient::new(&set),
        server,
        set,
    })
}

#[test]
fn model_matches_the_builtin_pair_across_processes() {
    let peer = peer_binary().expect("vdisim-peer is built");
    let cases = std::env::var("VDISIM_PROPS_CROSS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let campaign = Campaign {
        name: "cross-process".into(),
        cases,
        max_steps: 48,
        save_dir: Some(regressions_dir()),
        seed_file: Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/props_cross_process.txt"
        )),
        rng_seed: None,
    };
    let p = peer.clone();
    match check(&campaign, Box::new(move || remote_pair(&p))) {
        Ok(stats) => {
            eprintln!(
                "model vs built-in (two processes): {} cases, {} steps, {:.1?}",
                stats.cases, stats.steps, stats.elapsed
            );
            let deaths = stats.coverage.get("SDies -> NOERROR").copied().unwrap_or(0);
            eprintln!("  server processes killed: {deaths}");
        }
        Err(found) => panic!("the two-process pair disagrees with the model: {found}"),
    }
}

#[test]
fn canonical_scenarios_replay_across_processes() {
    let peer = peer_binary().expect("vdisim-peer is built");
    for t in scenarios::all() {
        let mut d = remote_pair(&peer);
        if let Err(m) = t.replay(d.as_mut()) {
            panic!("{}: {m}", t.name);
        }
    }
}
