#!/usr/bin/env bash
# Process-death campaign (issue 8): SIGKILLs the client or the server at random points of
# randomized backups and restores (pump streams and the simulated SQL Server's BACKUP/RESTORE),
# and checks the survivor, the leftovers, the next run under the same name and the data.
# It runs the `sigkill_campaign` test of sim/tests/chaos.rs at scale and prints its summary:
# kills, hangs, stale segments, undetected corruption (all but kills must be 0).
#
# usage: scripts/chaos.sh [kills (default 1000)] [seed]
#   VDISIM_PROFILE=debug   use the debug build instead of --release
#   VDISIM_CHAOS_ENGINE_SHARE=N   one cycle in N runs the engine (default 5)
set -uo pipefail

kills="${1:-1000}"
seed="${2:-}"
profile="${VDISIM_PROFILE:-release}"
cd "$(dirname "$0")/.." || exit 2

args=(-p vdisim --test chaos)
if [ "$profile" = release ]; then
    args=(--release "${args[@]}")
fi
export VDISIM_CHAOS_KILLS="$kills"
if [ -n "$seed" ]; then
    export VDISIM_CHAOS_SEED="$seed"
fi

count_shm() { find /dev/shm -maxdepth 1 -name 'vdisim-*rel-chaos*' 2>/dev/null | wc -l; }
before=$(count_shm)
start=$(date +%s)
cargo test "${args[@]}" sigkill_campaign -- --exact --nocapture
status=$?
after=$(count_shm)
echo "chaos.sh: ${kills} kills requested, $(( $(date +%s) - start )) s, profile ${profile};" \
     "chaos segments in /dev/shm before ${before}, after ${after}; exit ${status}"
if [ "$after" -gt "$before" ]; then
    exit 1
fi
exit "$status"
