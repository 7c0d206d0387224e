#!/usr/bin/env bash
# Builds the native test clients of fixtures/clients/ with the system compiler against
# sim/include and vdisim's libsqlvdi.so, and a bin/ directory whose `sqlcmd` is the vdisim
# binary (vdisim run under the name sqlcmd behaves as `vdisim sql`).
#
#   scripts/build-clients.sh [--release] [--no-cargo] [--lib-dir DIR] [--vdisim PATH] [--out DIR]
#
#   --release     use (and build) target/release instead of target/debug
#   --no-cargo    do not run cargo; the library (and vdisim) must already be built
#   --lib-dir     where libsqlvdi.so is (default: <target>/<profile>)
#   --vdisim      the vdisim binary for bin/sqlcmd (default: <target>/<profile>/vdisim)
#   --out         output directory (default: <target>/<profile>/clients)
#
# The target directory is $CARGO_TARGET_DIR, or target/ at the repository root. Binaries get an
# rpath to the library directory, so they run without LD_LIBRARY_PATH (set it to run them
# against another libsqlvdi.so, e.g. Microsoft's /opt/mssql/lib).
#
# Output (in --out):
#   vdiclient        the correct C++ client (§4 C++ API; sqlcmd mode and harness mode)
#   vdiclient-c      the correct C client (plain C API, vdisim.h)
#   vdiclient-com    the correct C client (Windows COM-style interface, vdi_com.h)
#   bug-<name>       clients with one seeded bug each (see fixtures/clients/vdiclient_c.c)
#   bin/sqlcmd       symlink to vdisim: put this directory first on PATH
# Prints the output directory on the last line of stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile=debug
cargo_build=1
lib_dir=""
vdisim_bin=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=release ;;
        --no-cargo) cargo_build=0 ;;
        --lib-dir) lib_dir="$2"; shift ;;
        --vdisim) vdisim_bin="$2"; shift ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "build-clients.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

target="${CARGO_TARGET_DIR:-$root/target}"
lib_dir="${lib_dir:-$target/$profile}"
vdisim_bin="${vdisim_bin:-$target/$profile/vdisim}"
out="${out:-$target/$profile/clients}"

if [ "$cargo_build" = 1 ]; then
    flags=()
    [ "$profile" = release ] && flags+=(--release)
    (cd "$root" && cargo build ${flags[@]+"${flags[@]}"} -p vdisim-ffi -p vdisim-cli >&2)
fi

if [ ! -f "$lib_dir/libsqlvdi.so" ]; then
    echo "build-clients.sh: $lib_dir/libsqlvdi.so not found (build vdisim-ffi first)" >&2
    exit 1
fi

cc="${CC:-cc}"
cxx="${CXX:-c++}"
command -v "$cc" >/dev/null || { echo "build-clients.sh: no C compiler ($cc)" >&2; exit 3; }
command -v "$cxx" >/dev/null || { echo "build-clients.sh: no C++ compiler ($cxx)" >&2; exit 3; }

src="$root/fixtures/clients"
inc="$root/sim/include"
mkdir -p "$out/bin"
common=(-O1 -g -Wall -Wextra -Werror -I"$inc" -pthread)
link=(-L"$lib_dir" -lsqlvdi -Wl,-rpath,"$lib_dir")

"$cxx" -std=c++11 "${common[@]}" "$src/vdiclient.cpp" "${link[@]}" -o "$out/vdiclient"
"$cc" -std=c11 "${common[@]}" "$src/vdiclient_c.c" "${link[@]}" -o "$out/vdiclient-c"
"$cc" -std=c11 "${common[@]}" "$src/vdiclient_com.c" "${link[@]}" -o "$out/vdiclient-com"

# One binary per seeded bug: bug-<name> from BUG_<NAME>.
bugs=$(sed -n 's/^ \*   BUG_\([A-Z_]*\).*/\1/p' "$src/vdiclient_c.c")
for bug in $bugs; do
    name="bug-$(echo "$bug" | tr 'A-Z_' 'a-z-')"
    "$cc" -std=c11 "${common[@]}" -DBUG_"$bug" "$src/vdiclient_c.c" "${link[@]}" -o "$out/$name"
done

# `sqlcmd` on PATH is vdisim (it behaves as `vdisim sql` under that name).
if [ -x "$vdisim_bin" ]; then
    ln -sfn "$vdisim_bin" "$out/bin/sqlcmd"
else
    echo "build-clients.sh: warning: $vdisim_bin not found; bin/sqlcmd not created" >&2
fi

echo "built: vdiclient vdiclient-c vdiclient-com $(for b in $bugs; do printf 'bug-%s ' "$(echo "$b" | tr 'A-Z_' 'a-z-')"; done)" >&2
echo "$out"
