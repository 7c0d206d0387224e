#!/usr/bin/env bash
# The Windows check (issue 9): cross-builds vdisim for x86_64-pc-windows-gnu and runs it under
# Wine: the vdisim crate's test suite (lib tests, the two-process tests over named mappings, the
# peer and engine tests), a striped backup/restore demo with 4 devices, the conformance harness
# against the built-in client, and against a C client written to the Windows COM-style
# interface (fixtures/clients/vdiclient_com.c, vdi_com.h) compiled with mingw-w64 and linked
# with sqlvdi.dll.
#
#   scripts/windows.sh [--no-install] [--quick]
#
#   --no-install   never install anything (rustup target, mingw-w64, Wine); missing → skipped
#   --quick        the lib tests and sim/tests/two_process.rs only (no demo, no harness runs)
#
# Installs what it needs when missing: `rustup target add x86_64-pc-windows-gnu`, and the Debian
# packages gcc-mingw-w64-x86-64-posix (linker, and the stub DLL below) and wine64 (apt-get; as
# root or through `sudo -n`).
#
# Wine 8.0 (Debian 12) cannot start programs built by Rust >= 1.78: they import
# bcryptprimitives.dll!ProcessPrng, which Wine only has from 9.0 on. The script builds a stub
# bcryptprimitives.dll (scripts/wine/processprng.c, forwarding to BCryptGenRandom) with mingw-w64
# and copies it into the Wine prefix's system32 when Wine has no bcryptprimitives.dll of its own.
#
# Environment:
#   CARGO_TARGET_DIR     where to build (default: target/ at the repository root)
#   VDISIM_WINEPREFIX    the Wine prefix to use (default: <target dir>/wineprefix), created here
#   VDISIM_WINE          the Wine loader (default: wine64 on PATH, /usr/lib/wine/wine64, or wine)
#
# Exit codes: 0 everything passed; 1 a step failed (the summary names it); 2 bad arguments;
# 3 SKIPPED: the Windows target, mingw-w64 or Wine could not be installed (the reason is
# printed on a line starting with "windows: SKIPPED:"), so CI can report it, never silently.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
TARGET=x86_64-pc-windows-gnu
install=1
quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-install) install=0 ;;
        --quick) quick=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "windows: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "windows: $*"; }
skip() {
    say "SKIPPED: $*"
    say "the Windows check did not run (exit 3)"
    exit 3
}

target_dir="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TARGET_DIR="$target_dir"
log_dir="$target_dir/windows-check"
mkdir -p "$log_dir"

# --- 1. Tools -------------------------------------------------------------------------------
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi
}

find_wine() {
    if [ -n "${VDISIM_WINE:-}" ]; then
        [ -x "$VDISIM_WINE" ] && echo "$VDISIM_WINE"
        return
    fi
    local w
    for w in "$(command -v wine64 2>/dev/null)" /usr/lib/wine/wine64 /usr/lib64/wine/wine64 "$(command -v wine 2>/dev/null)"; do
        if [ -n "$w" ] && [ -x "$w" ]; then echo "$w"; return 0; fi
    done
    return 1
}

command -v cargo >/dev/null 2>&1 || skip "cargo is not installed"

if ! rustc --print target-libdir --target "$TARGET" >/dev/null 2>&1 \
    || [ ! -d "$(rustc --print target-libdir --target "$TARGET" 2>/dev/null)" ]; then
    [ "$install" = 1 ] || skip "the Rust target $TARGET is not installed (--no-install)"
    command -v rustup >/dev/null 2>&1 || skip "the Rust target $TARGET is missing and there is no rustup to add it"
    say "installing the Rust target $TARGET"
    rustup target add "$TARGET" || skip "rustup target add $TARGET failed"
fi

missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing+=(gcc-mingw-w64-x86-64-posix)
find_wine >/dev/null || missing+=(wine64)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$install" = 1 ] || skip "missing ${missing[*]} (--no-install)"
    command -v apt-get >/dev/null 2>&1 || skip "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]} (apt-get)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >"$log_dir/apt.log" 2>&1; then
        as_root apt-get update -qq >>"$log_dir/apt.log" 2>&1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            >>"$log_dir/apt.log" 2>&1 \
            || skip "could not install ${missing[*]} (not root, or no package source; see $log_dir/apt.log)"
    fi
fi
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || skip "x86_64-w64-mingw32-gcc is still missing after installing"
WINE="$(find_wine)" || skip "no Wine loader (wine64) found after installing"
wine_dir="$(dirname "$(readlink -f "$WINE")")"
wineserver="$wine_dir/wineserver"
[ -x "$wineserver" ] || wineserver="$(command -v wineserver 2>/dev/null || true)"
wine_version="$("$WINE" --version 2>/dev/null || echo unknown)"
say "rust: $(rustc --version)"
say "wine: $WINE ($wine_version)"

# --- 2. Wine prefix and the ProcessPrng stub ------------------------------------------------
export WINEPREFIX="${VDISIM_WINEPREFIX:-$target_dir/wineprefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
# No Mono/Gecko download prompts: vdisim needs neither.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    say "creating the Wine prefix $WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    "$WINE" wineboot -i >"$log_dir/wineboot.log" 2>&1
    [ -n "$wineserver" ] && "$wineserver" -w
    [ -f "$WINEPREFIX/system.reg" ] || skip "Wine could not create its prefix (see $log_dir/wineboot.log)"
fi
# One wineserver for the whole run (each Wine process would otherwise start and stop one).
# Its output goes nowhere: it would otherwise hold the script's stdout open (a pipe into tee).
[ -n "$wineserver" ] && "$wineserver" -p30 </dev/null >/dev/null 2>&1

stub="$target_dir/wine/bcryptprimitives.dll"
system32="$WINEPREFIX/drive_c/windows/system32"
builtin=""
for d in "$wine_dir/../lib/wine/x86_64-windows" "$wine_dir/../lib64/wine/x86_64-windows" \
    /usr/lib/x86_64-linux-gnu/wine/x86_64-windows /usr/lib/wine/x86_64-windows; do
    [ -f "$d/bcryptprimitives.dll" ] && builtin="$d/bcryptprimitives.dll"
done
if [ -n "$builtin" ]; then
    say "Wine has its own bcryptprimitives.dll ($builtin): no ProcessPrng stub needed"
else
    mkdir -p "$(dirname "$stub")"
    if ! x86_64-w64-mingw32-gcc -shared -O2 -s -o "$stub" scripts/wine/processprng.c scripts/wine/bcryptprimitives.def \
        -lbcrypt >"$log_dir/stub.log" 2>&1; then
        cat "$log_dir/stub.log"
        say "FAIL: could not build the ProcessPrng stub DLL"
        exit 1
    fi
    cp "$stub" "$system32/bcryptprimitives.dll"
    say "installed the ProcessPrng stub: $system32/bcryptprimitives.dll (Wine $wine_version lacks it)"
fi

# --- 3. Build -------------------------------------------------------------------------------
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE"
# insta finds the workspace with `cargo metadata`, which a Windows test program cannot run.
export INSTA_WORKSPACE_ROOT="$root"
declare -a names=() results=() details=()
record() { names+=("$1"); results+=("$2"); details+=("$3"); }
failed=0

build_log="$log_dir/build.log"
say "cross-building the workspace tests and the vdisim binary for $TARGET (log: $build_log)"
if cargo test --workspace --no-run --target "$TARGET" >"$build_log" 2>&1 \
    && cargo build -p vdisim-cli -p vdisim-ffi --target "$TARGET" >>"$build_log" 2>&1; then
    record "build" PASS "cargo test --workspace --no-run --target $TARGET; vdisim.exe, sqlvdi.dll"
else
    grep -E '^(error|warning: unused)' -A6 "$build_log" | head -60
    record "build" FAIL "see $build_log"
    failed=1
fi
vdisim_exe="$target_dir/$TARGET/debug/vdisim.exe"

# Counts "test result:" lines of a cargo test log: passed, failed, ignored.
count_tests() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
         END { printf "%d passed, %d failed, %d ignored", p, f, g }' "$1"
}

run_tests() {  # name, log, cargo test arguments...
    local name="$1" log="$2"
    shift 2
    say "running $name under Wine (log: $log)"
    local start=$SECONDS
    if cargo test --target "$TARGET" -p vdisim --no-fail-fast "$@" >"$log" 2>&1; then
        record "$name" PASS "$(count_tests "$log") in $((SECONDS - start)) s"
    else
        grep -E '^(test .* FAILED|---- |thread .* panicked|error)' "$log" | head -40
        record "$name" FAIL "$(count_tests "$log") in $((SECONDS - start)) s; see $log"
        failed=1
    fi
}

if [ $failed = 0 ]; then
    # --- 4. Tests under Wine ----------------------------------------------------------------
    if [ $quick = 1 ]; then
        run_tests "tests: lib + two_process" "$log_dir/tests.log" --lib --test two_process
    else
        # Every test target of the vdisim crate: lib, vdisim-peer, two_process, hostile,
        # engine_*; chaos.rs and permissions.rs are Unix only (/dev/shm, uids) and hold no
        # tests on Windows.
        run_tests "tests: vdisim crate" "$log_dir/tests.log" --lib --bins --tests
    fi

    if [ $quick = 0 ]; then
        # --- 5. Striped backup/restore demo, 4 devices ---------------------------------------
        demo_log="$log_dir/demo.log"
        say "running vdisim demo --devices 4 under Wine (log: $demo_log)"
        start=$SECONDS
        if "$WINE" "$vdisim_exe" demo --devices 4 >"$demo_log" 2>&1; then
            record "demo --devices 4" PASS "$(grep -o '\[.*\] is byte-identical.*' "$demo_log" | head -1) ($((SECONDS - start)) s)"
        else
            code=$?
            tail -20 "$demo_log"
            record "demo --devices 4" FAIL "exit $code after $((SECONDS - start)) s; see $demo_log"
            failed=1
        fi

        # --- 6. The harness against the built-in client --------------------------------------
        cert_log="$log_dir/certify.log"
        say "running vdisim certify --builtin client under Wine (log: $cert_log)"
        start=$SECONDS
        if "$WINE" "$vdisim_exe" certify --builtin client >"$cert_log" 2>&1; then
            record "certify --builtin client" PASS "$(grep -E '^total:' "$cert_log" | tail -1 | tr -s ' ' | cut -c1-100) ($((SECONDS - start)) s)"
        else
            code=$?
            tail -25 "$cert_log"
            record "certify --builtin client" FAIL "exit $code after $((SECONDS - start)) s; see $cert_log"
            failed=1
        fi

        # --- 7. A C client of the COM-style interface, linked with sqlvdi.dll --------------------
        com_dir="$log_dir/com"
        com_log="$log_dir/certify-com.log"
        mkdir -p "$com_dir"
        cp "$target_dir/$TARGET/debug/sqlvdi.dll" "$com_dir/"
        say "building fixtures/clients/vdiclient_com.c with mingw-w64 and certifying it under Wine (log: $com_log)"
        if ! x86_64-w64-mingw32-gcc -std=c11 -O1 -Wall -Wextra -Werror -Isim/include \
            -include scripts/wine/posix_compat.h fixtures/clients/vdiclient_com.c \
            -L"$target_dir/$TARGET/debug" -lsqlvdi -lole32 -pthread -static-libgcc \
            -Wl,-Bstatic -lwinpthread -Wl,-Bdynamic -o "$com_dir/vdiclient-com.exe" >"$com_log" 2>&1; then
            cat "$com_log"
            record "certify --exec vdiclient-com" FAIL "mingw-w64 could not build it; see $com_log"
            failed=1
        else
            start=$SECONDS
            if "$WINE" "$vdisim_exe" certify --exec "$com_dir/vdiclient-com.exe" >>"$com_log" 2>&1; then
                record "certify --exec vdiclient-com" PASS "$(grep -E '^total:' "$com_log" | tail -1 | tr -s ' ' | cut -c1-100) ($((SECONDS - start)) s)"
            else
                code=$?
                tail -25 "$com_log"
                record "certify --exec vdiclient-com" FAIL "exit $code after $((SECONDS - start)) s; see $com_log"
                failed=1
            fi
        fi
    fi
fi

# --- Summary --------------------------------------------------------------------------------
echo
say "summary ($TARGET under $wine_version)"
for i in "${!names[@]}"; do
    printf 'windows:   %-4s  %-28s  %s\n' "${results[$i]}" "${names[$i]}" "${details[$i]}"
done
if [ $failed = 0 ]; then
    say "PASS"
    exit 0
fi
say "FAIL"
exit 1
