#!/usr/bin/env bash
# Browser check of the HTML report (docs/REPORT.md).
#
# Builds the debug vrs-demo, runs `vrs-demo --dir <tmp>` (which writes
# <tmp>/report.html), opens the report in headless Chromium over file:// and checks, after
# layout, that every chart rendered with data marks and finite geometry, that every chart has an
# accessible table, that partial and suppressed figures are marked, that nothing was fetched and
# that the console stayed silent, and that noisy (zCDP) figures carry drawn 95% error bars. It then
# proves the check can fail: three deliberately broken copies of the report (an empty chart, NaN
# geometry, no error bars) must be rejected.
#
#   tests/browser/run.sh [--screenshot docs/report.png]
#
# Prints one line per check and `browser: N passed, M failed`; exits non-zero on any failure.
# Chromium (Debian package `chromium`) is installed with apt-get when missing. No traffic leaves
# the machine: the demo nodes listen on 127.0.0.1 and the page is opened from a file.
set -euo pipefail
cd "$(dirname "$0")/../.."

screenshot=""
while [ $# -gt 0 ]; do
  case "$1" in
    --screenshot) screenshot="$2"; shift 2 ;;
    *) echo "usage: $0 [--screenshot FILE.png]" >&2; exit 2 ;;
  esac
done

started=$(date +%s)
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
finish() {
  echo "browser: $passed passed, $failed failed ($(( $(date +%s) - started )) s)"
  [ "$failed" -eq 0 ]
}

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== building the binaries (debug, as README command 1)"
cargo build --locked --quiet --workspace --bins   # README command 1's build: nothing rebuilt
bin="${CARGO_TARGET_DIR:-target}/debug/vrs-demo"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== demo federation on 127.0.0.1"
if ! "$bin" --dir "$work/demo" >"$work/demo.log" 2>&1; then
  cat "$work/demo.log"
  fail "demo ran"
  finish
  exit 1
fi
report="$work/demo/report.html"
if [ -s "$report" ]; then pass "demo wrote report.html ($(wc -c <"$report") bytes)"; else fail "demo wrote report.html"; fi

chrome() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic \
    --disable-background-networking --disable-component-update --disable-sync \
    --no-first-run --no-default-browser-check --hide-scrollbars \
    --user-data-dir="$(mktemp -d -p "$work")" --enable-logging=stderr --v=0 "$@"
}

# check PAGE NAME [WIDTH,HEIGHT] [#MODE]: injects check.js into a copy of PAGE, loads it and
# collects the results as "@@PASS ..." / "@@FAIL ..." lines in $work/NAME.results, adding a line
# for console messages (the report has no scripts, so any message is an error: SVG attribute
# errors, blocked loads).
check() {
  local page=$1 name=$2 size=${3:-1280,2400} mode=${4:-}
  local harness="$work/$name.harness.html"
  awk -v js="tests/browser/check.js" '
    /<\/body>/ && !done { print "<script>"; while ((getline line < js) > 0) print line; print "</script>"; done = 1 }
    { print }
  ' "$page" >"$harness"
  chrome --window-size="$size" --dump-dom "file://$harness$mode" >"$work/$name.dom" 2>"$work/$name.log" || true
  sed -n '/<pre id="browser-check">/,/<\/pre>/p' "$work/$name.dom" |
    sed -e 's#^.*<pre id="browser-check">##' -e 's#</pre>.*##' \
      -e 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g' |
    grep -E '^@@(PASS|FAIL) ' >"$work/$name.results" || true
  if [ ! -s "$work/$name.results" ]; then
    echo "@@FAIL checker ran: no results in the DOM" >>"$work/$name.results"
  fi
  local console
  console=$(grep -c 'CONSOLE' "$work/$name.log" || true)
  if [ "$console" -eq 0 ]; then
    echo "@@PASS no console messages" >>"$work/$name.results"
  else
    echo "@@FAIL no console messages: $console, first: $(grep -m1 'CONSOLE' "$work/$name.log" | sed 's/^.*CONSOLE[^"]*//' | cut -c1-160)" >>"$work/$name.results"
  fi
}

report_results() {
  while IFS= read -r line; do
    case "$line" in
      "@@PASS "*) pass "$1${line#@@PASS }" ;;
      "@@FAIL "*) fail "$1${line#@@FAIL }" ;;
    esac
  done <"$work/$2.results"
}

echo "== the demo report in Chromium ($(chromium --version 2>/dev/null | head -1))"
check "$report" report 1280,2400
report_results "" report
check "$report" narrow 390,844 "#narrow"
report_results "narrow: " narrow

echo "== the check rejects broken reports"
# An empty chart: the methods chart loses its contents.
perl -0pe 's{(<svg id="svg-methods"[^>]*>).*?</svg>}{$1</svg>}s' "$report" >"$work/broken-empty.html"
# NaN geometry: every point of the trend chart gets cy="NaN".
perl -0pe 's{(<svg id="svg-trend".*?</svg>)}{(my $s = $1) =~ s/cy="[^"]*"/cy="NaN"/g; $s}se' "$report" >"$work/broken-nan.html"
# No error bars: every 95% interval is taken off the charts.
perl -0pe 's{<g class="errorbar">.*?</g>}{}gs' "$report" >"$work/broken-noerrorbars.html"
for fixture in broken-empty broken-nan broken-noerrorbars; do
  if cmp -s "$report" "$work/$fixture.html"; then
    fail "$fixture fixture differs from the report"
    continue
  fi
  check "$work/$fixture.html" "$fixture" 1280,2400
  caught=$(grep -c '^@@FAIL' "$work/$fixture.results" || true)
  if [ "$caught" -gt 0 ]; then
    pass "$fixture report rejected ($(grep -m1 '^@@FAIL' "$work/$fixture.results" | cut -c8-100))"
  else
    fail "$fixture report rejected: the check passed a broken chart"
  fi
done

if [ -n "$screenshot" ]; then
  mkdir -p "$(dirname "$screenshot")"
  chrome --window-size=1280,2400 --screenshot="$screenshot" "file://$report" >/dev/null 2>&1 || true
  if [ -s "$screenshot" ]; then pass "screenshot $screenshot"; else fail "screenshot $screenshot"; fi
fi

finish
