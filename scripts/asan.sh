#!/usr/bin/env bash
# Sanitizers for the untrusted-input paths (issue 8):
# 1. AddressSanitizer (nightly) over the hostile-peer tests and the unit tests: the honest
#    side in the test process and the peers are instrumented, so any read or write outside a
#    mapping or allocation aborts the run.
# 2. Miri over the pure parts: the protocol state machines and the ring validation on a
#    heap-allocated ring (shm::ring), when the miri component is installed.
# usage: scripts/asan.sh [asan|miri|both (default)]
set -uo pipefail
what="${1:-both}"
cd "$(dirname "$0")/.." || exit 2
target=x86_64-unknown-linux-gnu
base="${CARGO_TARGET_DIR:-target}"
status=0

if [ "$what" = asan ] || [ "$what" = both ]; then
    echo "== AddressSanitizer: hostile peers and the unit tests (engine:: excluded)"
    CARGO_TARGET_DIR="$base/asan" RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" \
        cargo +nightly test --target "$target" -p vdisim --test hostile --lib -- --skip engine:: \
        || status=1
fi

if [ "$what" = miri ] || [ "$what" = both ]; then
    if cargo +nightly miri --version >/dev/null 2>&1; then
        echo "== Miri: protocol state machines and ring validation"
        CARGO_TARGET_DIR="$base/miri" MIRIFLAGS="-Zmiri-disable-isolation" \
            cargo +nightly miri test -p vdisim --lib -- protocol:: shm::ring:: || status=1
        CARGO_TARGET_DIR="$base/miri" MIRIFLAGS="-Zmiri-disable-isolation" \
            cargo +nightly miri test -p vdisim --test hostile -- heap_ring || status=1
    else
        echo "== Miri: not installed (rustup +nightly component add miri); skipped"
    fi
fi
exit "$status"
