#!/usr/bin/env bash
# Render a run's report.html in headless Chromium with all network access blocked, and save a
# screenshot — the check that the report is self-contained and draws its charts.
#   scripts/screenshot-report.sh [RUN_DIR | REPORT.html] [OUT.png] [WIDTHxHEIGHT]
# Defaults: the synthetic run fixture, docs/report-screenshot.png, 1400x1800. An .html file (e.g. a
# bench's comparison report) is shot as it is.
# Needs Debian's `chromium` (apt-get install -y chromium); exits 3 when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=${1:-test/report/fixtures/synthetic-run}
out=${2:-docs/report-screenshot.png}
size=${3:-1400x1800}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then echo "screenshot-report: chromium not found (apt-get install -y chromium)" >&2; exit 3; fi
if [[ "$run_dir" == *.html ]]; then
  html=$(realpath "$run_dir")
else
  html=$(mktemp -d)/report.html
  node --import tsx src/cli/bin.ts report "$run_dir" --out "$html" --quiet >/dev/null
fi
# --host-resolver-rules makes every host unresolvable and --proxy-server points at a dead port:
# the page must render from the file alone (its CSP also forbids fetches).
"$browser" --headless --disable-gpu --no-sandbox --no-first-run --hide-scrollbars \
  --host-resolver-rules="MAP * ~NOTFOUND" --proxy-server="http://127.0.0.1:9" \
  --virtual-time-budget=1000 --window-size="${size/x/,}" --screenshot="$out" "file://$html" 2>/dev/null >/dev/null
echo "wrote $out from $html"
