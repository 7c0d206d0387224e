#!/usr/bin/env bash
# Runs a cargo-fuzz campaign and turns every crash into a regression fixture.
#
#   scripts/fuzz.sh <target> [seconds]     targets: tsql, shm_peer (fuzz/fuzz_targets/)
#
# Needs `cargo install cargo-fuzz`. Uses the nightly toolchain with AddressSanitizer when it
# is installed, else stable with `-O --sanitizer none`. The growing corpus goes to a scratch
# directory (the committed seeds in fuzz/corpus/<target> stay small); each crash, timeout or
# OOM input is copied to fixtures/fuzz-crashes/<target>/, which `cargo test` replays
# (conformance/tests/props_fuzz_crashes.rs), so it fails until fixed. Exit 1 if anything
# was found.
set -euo pipefail
target=${1:?usage: scripts/fuzz.sh <tsql|shm_peer> [seconds]}
seconds=${2:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly); flags=()
else
  toolchain=(); flags=(-O --sanitizer none)
fi
work=${VDISIM_FUZZ_WORK:-$(mktemp -d -t "vdisim-fuzz-$target-XXXX")}
artifacts=$(mktemp -d -t "vdisim-fuzz-artifacts-XXXX")
log="$work.log"
mkdir -p "$work" "$root/fixtures/fuzz-crashes/$target"
echo "fuzz.sh: $target for ${seconds}s, corpus $work, log $log"
status=0
cargo "${toolchain[@]}" fuzz run "${flags[@]}" "$target" "$work" "corpus/$target" -- \
  -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
found=0
for f in "$artifacts"/*; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  cp "$f" "$root/fixtures/fuzz-crashes/$target/$name"
  echo "fuzz.sh: NEW FIXTURE fixtures/fuzz-crashes/$target/$name"
  found=$((found + 1))
done
rm -rf "$artifacts"
echo "fuzz.sh: $target: ${execs:-?} executions in ${seconds}s, $found crash input(s), cargo-fuzz exit $status"
if [ "$found" -gt 0 ] || [ "$status" -ne 0 ]; then
  tail -40 "$log"
  exit 1
fi
