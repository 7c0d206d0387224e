#!/usr/bin/env bash
# Writes the report test fixture in every format (HTML, a catalogue-sized HTML, JSON, JUnit, text)
# and screenshots both HTML pages in headless Chromium, to look at after changing the reports.
#
#   scripts/report-sample.sh [OUT_DIR]     (default: target/report-sample)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/report-sample}
mkdir -p "$out"
out=$(cd "$out" && pwd)
VDISIM_REPORT_SAMPLE="$out/sample.html" cargo test -q -p vdi-conformance --test report_html write_sample_reports_when_asked
scripts/html-screenshot.sh "$out/sample.html" "$out/sample.png" 1400x2600
scripts/html-screenshot.sh "$out/sample.large.html" "$out/sample.large.png" 1400x1400
ls -l "$out"
