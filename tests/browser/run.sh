#!/usr/bin/env bash
# Browser check of the HTML report (docs/REPORT.md).
#
# Builds the debug vrs-demo, runs `vrs-demo --dir <tmp>` (which writes
# <tmp>/report.html), opens the report in headless Chromium over file:// and checks, after
# layout, that every chart rendered with data marks and finite geometry, that every chart has an
# accessible table, that partial and suppressed figures are marked, that nothing was fetched and
# that the console stayed silent, and that noisy (zCDP) figures carry drawn 95% error bars; that
# no line joins a lower bound, every axis is titled, fee bands are told apart (ΔE), each table
# downloads as CSV with its numbers, the newest quarters and the Total are in view at 1280 px and
# that at 390 px each chart is re-laid out (labels of 10 px or more) and nothing is wider than the
# window. A second report comes from the same nodes with MYS and AUS restarted in rules_v1 mode,
# so that lower bounds (partial figures) are on the charts. It then proves the check can fail:
# deliberately broken copies of the reports (an empty chart, NaN geometry, no error bars, a line
# through lower bounds, shrunk phone charts, no CSV links, close fee colours, no axis titles, a
# table that hides its newest quarters) must each be rejected by the check they break.
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
node_pids=""
trap 'for p in $node_pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

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
# errors, blocked loads). Mode #narrow loads the copy in a 390 px wide frame (srcdoc, so the check
# can write into the outer page): headless Chromium keeps its window at least 500 px wide.
check() {
  local page=$1 name=$2 size=${3:-1280,2400} mode=${4:-}
  local harness="$work/$name.harness.html"
  awk -v js="tests/browser/check.js" '
    /<\/body>/ && !done { print "<script>"; while ((getline line < js) > 0) print line; print "</script>"; done = 1 }
    { print }
  ' "$page" >"$harness"
  local url="file://$harness$mode"
  if [ "$mode" = "#narrow" ]; then
    local width=${size%,*} height=${size#*,}
    {
      printf '<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">'
      printf '<iframe data-mode="#narrow" style="border:0;display:block;width:%spx;height:%spx" srcdoc="' "$width" "$height"
      perl -0pe 's/&/&amp;/g; s/"/&quot;/g' "$harness"
      printf '"></iframe></body></html>'
    } >"$work/$name.frame.html"
    url="file://$work/$name.frame.html"
    size="1280,$height"
  fi
  chrome --window-size="$size" --dump-dom "$url" >"$work/$name.dom" 2>"$work/$name.log" || true
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

echo "== a mixed federation: THA and IDN in zCDP mode, MYS and AUS in rules_v1 (lower bounds)"
mixed="$work/demo/mixed.html"
for c in mys aus; do
  perl -0pi -e 's/\[privacy\]\n/[privacy]\nmode = "rules_v1"\n/' "$work/demo/node-$c/node.toml"
done
for c in tha idn mys aus; do
  "${CARGO_TARGET_DIR:-target}/debug/vrs-node" serve --config "$work/demo/node-$c" >"$work/node-$c.log" 2>&1 &
  node_pids="$node_pids $!"
done
for port in $(grep -o '127.0.0.1:[0-9]*' "$work/demo/registry.toml" | cut -d: -f2); do
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
if "${CARGO_TARGET_DIR:-target}/debug/vrs-coordinator" report --registry "$work/demo/registry.toml" --out "$mixed" >"$work/mixed.log" 2>&1 &&
  grep -q 'class="mark partial"' "$mixed"; then
  pass "mixed report written with lower bounds ($(grep -o 'class="mark partial"' "$mixed" | wc -l) marks)"
else
  cat "$work/mixed.log"; fail "mixed report written with lower bounds"
fi
for p in $node_pids; do kill "$p" 2>/dev/null || true; done
node_pids=""
check "$mixed" mixed 1280,2400
report_results "mixed: " mixed
check "$mixed" mixed-narrow 390,844 "#narrow"
report_results "mixed narrow: " mixed-narrow

echo "== the check rejects broken reports"
# An empty chart: the methods chart loses its contents.
perl -0pe 's{(<svg id="svg-methods"[^>]*>).*?</svg>}{$1</svg>}s' "$report" >"$work/broken-empty.html"
# NaN geometry: every point of the trend chart gets cy="NaN".
perl -0pe 's{(<svg id="svg-trend".*?</svg>)}{(my $s = $1) =~ s/cy="[^"]*"/cy="NaN"/g; $s}se' "$report" >"$work/broken-nan.html"
# No error bars: every 95% interval is taken off the charts.
perl -0pe 's{<g class="errorbar">.*?</g>}{}gs' "$report" >"$work/broken-noerrorbars.html"
# A trend through lower bounds: each series gets a line joining its partial points.
perl -0pe 's{(<g class="series"[^>]*>)(.*?)(?=<g class="series"|<g class="labels")}{
  my ($h, $b) = ($1, $2); my @p = ($b =~ /class="mark partial"[^>]*>.*?<circle cx="([^"]+)" cy="([^"]+)"/g);
  my $d = ""; for (my $i = 0; $i + 1 < @p; $i += 2) { $d .= ($i ? "L" : "M") . "$p[$i] $p[$i+1]"; }
  ($d =~ /L/ ? "$h<path class=\"line\" d=\"$d\" fill=\"none\" stroke=\"#000\"/>" : $h) . $b }gse' "$mixed" >"$work/broken-joined.html"
# Phone charts shrunk: the narrow layouts are gone, the wide charts are scaled to the window.
perl -0pe 's{<figure class="narrow-only">.*?</figure>}{}gs; s{\.wide-only \{ display: none; \}}{}' "$report" >"$work/broken-shrunk.html"
# No CSV downloads.
perl -0pe 's{<p class="download">.*?</p>}{}gs' "$report" >"$work/broken-nocsv.html"
# Fee bands in the old single-hue blues, two of them nearly alike.
perl -0pe 's/#fde725/#c6dbef/gi; s/#7ad151/#b9d3ea/gi' "$report" >"$work/broken-blues.html"
# Axes without titles.
perl -0pe 's{<text[^>]*class="axis-title"[^>]*>.*?</text>}{}g' "$report" >"$work/broken-noaxis.html"
# Tables that open at their left end and are too wide: the newest quarters and Total hide.
perl -0pe 's#\.table-scroll\.newest-first \{ direction: rtl; \}##; s#th, td \{ padding: 3px 8px;#th, td { padding: 3px 30px;#' "$report" >"$work/broken-scroll.html"
# fixture|size|mode|the check that must fail (a pattern of its line)
while IFS='|' read -r fixture size mode expect; do
  if cmp -s "$report" "$work/$fixture.html" || cmp -s "$mixed" "$work/$fixture.html"; then
    fail "$fixture fixture differs from the report"
    continue
  fi
  check "$work/$fixture.html" "$fixture" "$size" "$mode"
  caught=$(grep -E "^@@FAIL .*$expect" "$work/$fixture.results" | head -1 || true)
  if [ -n "$caught" ]; then
    pass "$fixture report rejected ($(echo "$caught" | cut -c8-110))"
  else
    fail "$fixture report rejected by '$expect': $(grep -m1 '^@@FAIL' "$work/$fixture.results" | cut -c8-100 || echo 'the check passed it')"
  fi
done <<'FIXTURES'
broken-empty|1280,2400||chart methods
broken-nan|1280,2400||chart trend
broken-noerrorbars|1280,2400||error bars
broken-joined|1280,2400||no line joins a lower bound
broken-shrunk|390,844|#narrow|chart labels readable
broken-nocsv|1280,2400||downloads as CSV
broken-blues|1280,2400||fee bands
broken-noaxis|1280,2400||axes count
broken-scroll|1280,2400||newest column and Total
FIXTURES

if [ -n "$screenshot" ]; then
  mkdir -p "$(dirname "$screenshot")"
  chrome --window-size=1280,2400 --screenshot="$screenshot" "file://$report" >/dev/null 2>&1 || true
  if [ -s "$screenshot" ]; then pass "screenshot $screenshot"; else fail "screenshot $screenshot"; fi
fi

finish
