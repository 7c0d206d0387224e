#!/usr/bin/env bash
# Takes a screenshot of an HTML report in headless Chromium, to check that it opens and renders.
#
#   scripts/html-screenshot.sh FILE.html OUT.png [WIDTHxHEIGHT]
#
# Installs chromium with apt-get when it is missing (needs root, as on CI). Exits non-zero when
# Chromium fails or the PNG is missing or suspiciously small (a blank or error page).
# A sample report to look at: VDISIM_REPORT_SAMPLE=/tmp/sample.html cargo test -p vdi-conformance
# --test report_html, then this script on /tmp/sample.html (and /tmp/sample.large.html).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 FILE.html OUT.png [WIDTHxHEIGHT]" >&2
    exit 2
fi
html=$1
out=$2
size=${3:-1400x1000}
if ! [[ $size =~ ^([0-9]+)x([0-9]+)$ ]]; then
    echo "bad size '$size': expected WIDTHxHEIGHT, e.g. 1400x1000" >&2
    exit 2
fi
width=${BASH_REMATCH[1]}
height=${BASH_REMATCH[2]}
if [ ! -f "$html" ]; then
    echo "no such file: $html" >&2
    exit 2
fi

browser=""
for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        browser=$(command -v "$name")
        break
    fi
done
if [ -z "$browser" ]; then
    echo "installing chromium (apt-get)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq chromium >&2
    browser=$(command -v chromium)
fi

abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out_dir=$(dirname "$out")
mkdir -p "$out_dir"
abs_out=$(cd "$out_dir" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$abs_out"

# Bounded: a page that never finishes loading must not hang the caller.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size="$width,$height" --hide-scrollbars \
    --screenshot="$abs_out" "file://$abs_html" >"$profile/chromium.log" 2>&1 || {
    status=$?
    echo "chromium failed (exit $status):" >&2
    tail -20 "$profile/chromium.log" >&2
    exit 1
}

if [ ! -f "$abs_out" ]; then
    echo "no screenshot written to $abs_out" >&2
    tail -20 "$profile/chromium.log" >&2
    exit 1
fi
bytes=$(stat -c %s "$abs_out")
# A blank 1400x1000 page compresses to a few kB; a rendered report is far larger.
if [ "$bytes" -lt 20000 ]; then
    echo "screenshot $abs_out is only $bytes bytes: the page is probably blank" >&2
    exit 1
fi
echo "$abs_out ($bytes bytes, ${width}x${height})"
