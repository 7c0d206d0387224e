//! `vdisim-bench-report [criterion-home]`: prints the issue 7 ratios, one `name=value` line
//! each, from the medians of one benchmark run (criterion's `new/estimates.json` files and the
//! idle bench's result). Exit code 1 if a measure is missing.
//!
//! Ratios of times are turned so that each line reads like its target: `round_trip_vs_*` is
//! vdisim's time over the baseline's (lower is better); `stream_vs_*` and `devices64_vs_1`
//! are throughputs over the baseline's (higher is better).

use std::path::PathBuf;
use std::process::ExitCode;
use vdisim_benches::{criterion_home, criterion_median_ns, idle_result_path};

/// Bytes per stream iteration, from criterion's benchmark.json (its throughput).
fn stream_bytes_of(home: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(home.join("stream").join("vdi_1dev").join("new").join("benchmark.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["throughput"]["Bytes"].as_u64()
}

fn main() -> ExitCode {
    let home = std::env::args_os().nth(1).map_or_else(criterion_home, PathBuf::from);
    let t = |g: &str, f: &str| criterion_median_ns(&home, g, f);
    // The medians behind the ratios, for the record (same run).
    for f in ["vdi", "spin", "unix", "vdi_one_thread"] {
        if let Ok(ns) = t("round_trip", f) {
            println!("median round_trip/{f}: {:.3} us", ns / 1e3);
        }
    }
    let bytes = stream_bytes_of(&home);
    for f in ["vdi_1dev", "ring", "unix", "vdi_64dev", "ring_64slots"] {
        if let (Ok(ns), Some(b)) = (t("stream", f), bytes) {
            println!(
                "median stream/{f}: {:.1} ms per {} MiB = {:.3} GiB/s",
                ns / 1e6,
                b >> 20,
                b as f64 / ns / 1.073_741_824
            );
        }
    }
    let mut missing = false;
    let mut line = |name: &str, v: Result<f64, String>| match v {
        Ok(v) => println!("{name}={v:.3}"),
        Err(e) => {
            missing = true;
            println!("{name}=missing ({e})");
        }
    };
    let ratio = |a: Result<f64, String>, b: Result<f64, String>| Ok::<f64, String>(a? / b?);
    line(
        "round_trip_vs_spin",
        ratio(t("round_trip", "vdi"), t("round_trip", "spin")),
    );
    line(
        "round_trip_vs_unix",
        ratio(t("round_trip", "vdi"), t("round_trip", "unix")),
    );
    // Same bytes per iteration: throughput ratio = inverse time ratio.
    line("stream_vs_ring", ratio(t("stream", "ring"), t("stream", "vdi_1dev")));
    line("stream_vs_unix", ratio(t("stream", "unix"), t("stream", "vdi_1dev")));
    line(
        "devices64_vs_1",
        ratio(t("stream", "vdi_1dev"), t("stream", "vdi_64dev")),
    );
    // Context for devices64_vs_1 (diagnostics, no targets): what 64 MiB of buffers instead of
    // 4 MiB costs a bare ring with the same copies, and the 64-device stream against that ring.
    // A missing diagnostic does not fail the report.
    for (name, a, b) in [
        ("diag_ring64_vs_ring4", "ring", "ring_64slots"),
        ("diag_devices64_vs_ring64", "ring_64slots", "vdi_64dev"),
    ] {
        if let Ok(v) = ratio(t("stream", a), t("stream", b)) {
            println!("{name}={v:.3}");
        }
    }
    if let Ok(v) = ratio(t("round_trip", "vdi_one_thread"), t("round_trip", "vdi")) {
        println!("diag_round_trip_software_share={v:.3}");
    }
    let idle = std::fs::read_to_string(idle_result_path(&home))
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).map_err(|e| e.to_string()))
        .and_then(|v| {
            v["median_percent"]
                .as_f64()
                .ok_or_else(|| "no median_percent".to_string())
        });
    line("idle_cpu_percent", idle);
    // No target, no baseline: reported for the record when the suite bench ran.
    let suite = std::fs::read_to_string(home.join("suite").join("result.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["median_seconds"].as_f64());
    if let Some(s) = suite {
        println!("suite_seconds={s:.3}");
    }
    if missing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
