#!/usr/bin/env bash
# Soak (issue 8): two long-lived vdisim-peer processes (soak-server and soak-client) stream
# through one set after another (`rel-soak-<pid>-<n>`), backups and restores over many devices,
# every byte verified, with client and server aborts mixed in. Every interval it prints the
# RSS, open file descriptors and threads of both processes and the /dev/shm entries of the
# soak; at the end it checks they stayed flat and that no round failed unexpectedly.
#
# usage: scripts/soak.sh [seconds (default 600)] [devices (default 16)] [interval-s (default 30)]
#   VDISIM_PROFILE=debug    use the debug build instead of --release
#   VDISIM_SOAK_SEED=N      the plan's seed (default: random)
set -uo pipefail

seconds="${1:-600}"
devices="${2:-16}"
interval="${3:-30}"
profile="${VDISIM_PROFILE:-release}"
seed="${VDISIM_SOAK_SEED:-$RANDOM$RANDOM}"
cd "$(dirname "$0")/.." || exit 2

if [ "$profile" = release ]; then
    cargo build --release -p vdisim --bin vdisim-peer || exit 2
    peer="${CARGO_TARGET_DIR:-target}/release/vdisim-peer"
else
    cargo build -p vdisim --bin vdisim-peer || exit 2
    peer="${CARGO_TARGET_DIR:-target}/debug/vdisim-peer"
fi

prefix="rel-soak-$$"
logs=$(mktemp -d)
"$peer" soak-server "$prefix" "$devices" "$seconds" "$seed" >"$logs/server.log" 2>&1 &
spid=$!
"$peer" soak-client "$prefix" "$devices" "$seconds" "$seed" >"$logs/client.log" 2>&1 &
cpid=$!
trap 'kill $spid $cpid 2>/dev/null' INT TERM

field() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$2/status" 2>/dev/null; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
shm() { find /dev/shm -maxdepth 1 -name "vdisim-*-$prefix-*" 2>/dev/null | wc -l; }
rounds() { grep -c '^EVENT soak-progress' "$1" 2>/dev/null; }

echo "soak: ${seconds} s, ${devices} devices, seed ${seed}, profile ${profile}, logs in ${logs}"
printf '%6s  %-34s  %-34s  %4s  %s\n' "t(s)" "server rss/anon(kB) fds threads" "client rss/anon(kB) fds threads" "shm" "client progress (rounds)"
samples="$logs/samples"
: >"$samples"
t0=$(date +%s)
while kill -0 "$spid" 2>/dev/null && kill -0 "$cpid" 2>/dev/null; do
    t=$(( $(date +%s) - t0 ))
    s="$(field VmRSS $spid)/$(field RssAnon $spid) $(fds $spid) $(field Threads $spid)"
    c="$(field VmRSS $cpid)/$(field RssAnon $cpid) $(fds $cpid) $(field Threads $cpid)"
    last=$(grep '^EVENT soak-progress client' "$logs/client.log" | tail -1 | cut -d' ' -f4-)
    printf '%6s  %-34s  %-34s  %4s  %s\n' "$t" "$s" "$c" "$(shm)" "$last"
    echo "$t $(field RssAnon $spid) $(fds $spid) $(field RssAnon $cpid) $(fds $cpid) $(shm)" >>"$samples"
    sleep "$interval"
done
wait "$cpid"; cstatus=$?
wait "$spid"; sstatus=$?
echo "--- server: $(grep -E '^EVENT soak-(progress|done)' "$logs/server.log" | tail -2 | tr '\n' ' ')"
echo "--- client: $(grep -E '^EVENT soak-(progress|done)' "$logs/client.log" | tail -2 | tr '\n' ' ')"
errors=$(cat "$logs/server.log" "$logs/client.log" | grep -c '^EVENT soak-error')
grep '^EVENT soak-error' "$logs/server.log" "$logs/client.log" | head -20
left=$(shm)

# Flat: RSS includes whatever part of the current set's buffer area is mapped, so the heap
# (RssAnon) is judged: its peak over the last third of the samples may exceed its peak over
# the first third (after the first, warm-up, sample) by at most 8 MB or 25%. Descriptors may
# not grow beyond 2 of jitter; at most one set (header + buffer area) may be in flight.
verdict=$(awk '
    { t[NR] = $1; sa[NR] = $2; sf[NR] = $3; ca[NR] = $4; cf[NR] = $5; if ($6 > shmmax) shmmax = $6 }
    END {
        if (NR < 4) { print "too few samples"; exit }
        third = int((NR - 1) / 3); if (third < 1) third = 1
        for (i = 2; i <= 1 + third; i++) { if (sa[i] > s0) s0 = sa[i]; if (ca[i] > c0) c0 = ca[i]; if (sf[i] > sf0) sf0 = sf[i]; if (cf[i] > cf0) cf0 = cf[i] }
        for (i = NR - third + 1; i <= NR; i++) { if (sa[i] > s1) s1 = sa[i]; if (ca[i] > c1) c1 = ca[i]; if (sf[i] > sf1) sf1 = sf[i]; if (cf[i] > cf1) cf1 = cf[i] }
        bad = ""
        if (s1 > s0 + 8192 && s1 > s0 * 1.25) bad = bad " server-heap " s0 "->" s1
        if (c1 > c0 + 8192 && c1 > c0 * 1.25) bad = bad " client-heap " c0 "->" c1
        if (sf1 > sf0 + 2) bad = bad " server-fds " sf0 "->" sf1
        if (cf1 > cf0 + 2) bad = bad " client-fds " cf0 "->" cf1
        if (shmmax > 2) bad = bad " shm-entries " shmmax
        printf "%s (heap peak kB server %d->%d, client %d->%d; fds server %d->%d, client %d->%d; shm max %d)\n", (bad == "" ? "flat" : "NOT FLAT:" bad), s0, s1, c0, c1, sf0, sf1, cf0, cf1, shmmax
    }' "$samples")
echo "soak: exit codes server ${sstatus} client ${cstatus}; unexpected round errors ${errors};" \
     "/dev/shm entries left ${left}; resources ${verdict}"
if [ "$sstatus" -ne 0 ] || [ "$cstatus" -ne 0 ] || [ "$errors" -ne 0 ] || [ "$left" -ne 0 ] || [ "${verdict%% *}" != flat ]; then
    exit 1
fi
