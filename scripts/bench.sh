#!/usr/bin/env bash
# Runs the performance benchmarks of issue 7 briefly and prints, at the end, one `name=value`
# line per ratio (each measure against its baseline, both medians from this same run):
#   round_trip_vs_spin= round_trip_vs_unix= stream_vs_ring= stream_vs_unix= devices64_vs_1=
#   idle_cpu_percent= suite_seconds=
# Targets (2-core machine, medians): round trip <= 3x spin and <= 0.2x unix; stream >= 0.8x
# ring; 64 devices >= 0.8x one device; idle < 1 % of a core. The benches live in benches/.
#
# Environment:
#   VDISIM_BENCH_WARMUP / VDISIM_BENCH_MEASURE  criterion seconds per measure (default 1 / 3)
#   VDISIM_BENCH_STREAM_MIB   bytes per stream iteration in MiB (default 1024 = 1 GiB)
#   VDISIM_BENCH_IDLE_TRIALS / VDISIM_BENCH_IDLE_MS   idle waits (default 3 x 2000 ms)
#   VDISIM_BENCH_SUITE_RUNS   conformance suite runs (default 3)
#   VDISIM_BENCH_RT=1         run the measurements under `chrt -f 1` (root only): shields them
#                             from other load on a shared machine; say so when quoting figures
#   VDISIM_BENCH_SHM_HUGE=1   remount /dev/shm with huge=advise for the run (root only; put back
#                             as it was at the end): vdisim asks for transparent huge pages on
#                             its buffer areas, which a default tmpfs mount refuses; say so too
#   VDISIM_BENCH_OUT          where criterion writes (default: a fresh temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."

warmup=${VDISIM_BENCH_WARMUP:-1}
measure=${VDISIM_BENCH_MEASURE:-3}
out=${VDISIM_BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/vdisim-bench.XXXXXX")}
mkdir -p "$out"
export CRITERION_HOME="$out"
run=()
if [ "${VDISIM_BENCH_RT:-0}" = 1 ]; then
    run=(chrt -f 1)
fi

if [ "${VDISIM_BENCH_SHM_HUGE:-0}" = 1 ]; then
    shm_opts=$(findmnt -n -o OPTIONS --mountpoint /dev/shm | tail -1)  # the top one of stacked mounts
    case ",$shm_opts," in
        *,huge=*) shm_huge=$(echo ",$shm_opts," | sed 's/.*,huge=\([a-z_]*\),.*/\1/') ;;
        *) shm_huge=never ;;
    esac
    mount -o remount,huge=advise /dev/shm
    trap 'mount -o remount,huge=$shm_huge /dev/shm' EXIT
fi

# Build first, at normal priority, so only measurements run under `run`.
cargo bench -p vdisim-benches --no-run
cargo build --release -q -p vdisim-benches --bin vdisim-bench-report

echo "== vdisim benchmarks: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
    "scheduling: ${run[*]:-default}, /dev/shm: $(findmnt -n -o OPTIONS --mountpoint /dev/shm | tail -1), results in $out"
"${run[@]}" cargo bench -p vdisim-benches --bench ipc -- \
    --warm-up-time "$warmup" --measurement-time "$measure" --noplot
"${run[@]}" cargo bench -p vdisim-benches --bench idle
"${run[@]}" cargo bench -p vdisim-benches --bench suite
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo run --release -q -p vdisim-benches --bin vdisim-bench-report -- "$out"
