//! Idle cost (issue 7): CPU time used by a client thread blocked in GetCommand with nothing to
//! do, measured with getrusage(RUSAGE_THREAD) in the client process around each wait.
//!
//! Not a criterion measure (it is CPU time, not wall time): it runs `VDISIM_BENCH_IDLE_TRIALS`
//! (default 3) waits of `VDISIM_BENCH_IDLE_MS` (default 2000) ms, prints each, and writes the
//! median percentage of one core to `<criterion home>/idle/result.json`. Under `cargo test`
//! (no `--bench` argument) it runs one short trial as a smoke test.

use std::time::Duration;
use vdisim::protocol::server::ConfigParams;
use vdisim::pump;
use vdisim_benches::{criterion_home, idle_result_path, median, unique_name, Peer};

const PEER: &str = env!("CARGO_BIN_EXE_vdisim-bench-peer");

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run(trials: u32, idle_ms: u32) -> Result<Vec<f64>, String> {
    let set = unique_name("idle");
    let mut peer = Peer::spawn(
        PEER,
        &[
            "vdi-client",
            &set,
            "1",
            "complete",
            &trials.to_string(),
            &idle_ms.to_string(),
        ],
    )?;
    let startup = Duration::from_secs(30);
    peer.expect("CREATED", startup)?;
    let server = pump::open_when_created(&set, startup).map_err(|e| format!("Open: {e}"))?;
    let vd = |e: vdisim::VdError| e.to_string();
    server.get_configuration().map_err(vd)?;
    server
        .begin_configuration(ConfigParams {
            features: vdisim::vdi::features::VDF_WRITE_MEDIA,
            alignment: 0,
            block_size: 65536,
            max_transfer_size: 65536,
            timeout_ms: 10_000,
        })
        .map_err(vd)?;
    server.request_buffers(65536, 0, 1).map_err(vd)?;
    server.end_configuration().map_err(vd)?;
    let dev = server.open_device(&set).map_err(vd)?;
    peer.expect("READY", startup)?;
    let mut percents = Vec::new();
    for _ in 0..trials {
        let line = peer.expect("IDLE", Duration::from_millis(u64::from(idle_ms)) + startup)?;
        let mut it = line.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
        let (cpu, wall) = (it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN));
        let pct = 100.0 * cpu / wall;
        println!(
            "idle/client_get_command: cpu {:.3} ms over {:.1} ms = {pct:.4} % of a core",
            cpu / 1e6,
            wall / 1e6
        );
        percents.push(pct);
    }
    dev.close_device().map_err(vd)?;
    peer.expect("DONE", startup)?;
    server.close().result.map_err(vd)?;
    peer.finish(startup)?;
    Ok(percents)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (trials, idle_ms) = if benching {
        (
            env_u32("VDISIM_BENCH_IDLE_TRIALS", 3).max(1),
            env_u32("VDISIM_BENCH_IDLE_MS", 2000),
        )
    } else {
        (1, 200)
    };
    let mut percents = match run(trials, idle_ms) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("idle bench failed: {e}");
            std::process::exit(1);
        }
    };
    let med = median(&mut percents).unwrap_or(f64::NAN);
    println!("idle/client_get_command: median {med:.4} % of a core ({trials} x {idle_ms} ms)");
    if benching {
        let path = idle_result_path(&criterion_home());
        let json = serde_json::json!({ "trials": percents, "idle_ms": idle_ms, "median_percent": med });
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, json.to_string()));
        if let Err(e) = written {
            eprintln!("idle bench: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
