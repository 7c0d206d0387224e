#!/usr/bin/env bash
# Runs `vdisim certify --builtin client` and `--builtin server` N times (default 20) and
# prints how many runs were conformant (exit 0) and how long each took. Any other exit code
# is a flake or a regression: its output is kept under $OUT.
#
#   scripts/certify-repeat.sh [N]        (VDISIM=path/to/vdisim to use a prebuilt binary)
set -u
N="${1:-20}"
cd "$(dirname "$0")/.."
if [ -z "${VDISIM:-}" ]; then
    cargo build -q -p vdisim-cli || exit 2
    VDISIM="${CARGO_TARGET_DIR:-target}/debug/vdisim"
fi
OUT="$(mktemp -d "${TMPDIR:-/tmp}/certify-repeat.XXXXXX")"
status=0
for role in client server; do
    ok=0
    times=""
    for i in $(seq 1 "$N"); do
        log="$OUT/$role-$i.txt"
        start=$(date +%s.%N)
        "$VDISIM" certify --builtin "$role" --failures-only >"$log" 2>&1
        code=$?
        end=$(date +%s.%N)
        t=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
        times="$times $t"
        if [ "$code" -eq 0 ]; then
            ok=$((ok + 1))
            rm -f "$log"
        else
            echo "run $i of --builtin $role: exit $code (output kept in $log)"
            grep -E "FAIL|HANG" "$log" | head -5
            status=1
        fi
    done
    echo "builtin $role: $ok/$N runs conformant; seconds per run:$times"
done
leftover=$(ls /dev/shm 2>/dev/null | grep -c '^vdisim-' || true)
echo "vdisim segments in /dev/shm afterwards: $leftover"
rmdir "$OUT" 2>/dev/null || echo "failed runs' output: $OUT"
exit $status
