#!/usr/bin/env bash
# Browser test of the node's web console (docs/CONSOLE.md) in a real headless Chromium.
#
# Builds vrs-node (debug), makes a node directory with synthetic records (`vrs-node synth` +
# `vrs-node import`) and accounts (`vrs-node user add`, passwords on standard input), starts
# `vrs-node console` on 127.0.0.1 port 0 and reads the port from its `console listening on`
# line, then drives Chromium through Selenium WebDriver (every tests/console/test_*.py, with
# tests/console/common.py): sign in,
# status, audit log verify, budget, users, change log, labels, Bahasa Indonesia, lockout of a
# second account, a clerk refused user admin, keyboard-only sign-in with a visible focus.
# Screenshots of the main pages go to docs/console/*.png (--no-screenshots: a temporary dir).
#
#   tests/console/run.sh [--no-screenshots]
#
# Chromium and its driver come from Debian's packages (installed with apt-get when missing);
# Selenium, pinned, from PyPI into a venv under the cargo target directory. Prints one line per
# check and `console: N passed, M failed`; exits non-zero on any failure. Every process it starts
# is stopped on exit. Nothing is loaded from anywhere but 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

SELENIUM_VERSION=4.27.1
shots=docs/console
if [ "${1:-}" = "--no-screenshots" ]; then shots=""; fi

started=$(date +%s)
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
finish() {
  echo "console: $passed passed, $failed failed ($(( $(date +%s) - started )) s)"
  [ "$failed" -eq 0 ]
}

work=$(mktemp -d)
console_pid=""
serve_pid=""
stop() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$console_pid"
  stop "$serve_pid"
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v chromium >/dev/null 2>&1 || ! [ -x /usr/bin/chromedriver ]; then
  echo "== installing chromium and chromium-driver (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

target="${CARGO_TARGET_DIR:-target}"
venv="$target/console-venv"
if ! "$venv/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null; then
  echo "== selenium $SELENIUM_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "selenium==$SELENIUM_VERSION"
fi

echo "== building vrs-node, vrs-coordinator and vrs-certs-dev (debug)"
cargo build --locked --quiet -p vrs-node -p vrs-coordinator -p vrs-certs-dev \
  --bin vrs-node --bin vrs-coordinator --bin vrs-certs-dev
bin="$target/debug/vrs-node"
coordinator_bin="$target/debug/vrs-coordinator"

echo "== a node with synthetic records and four accounts"
node="$work/node"
"$bin" init --dir "$node" --country IDN >/dev/null
"$bin" synth --country IDN --incidents 500 --seed 13 --out "$work/records.csv" 2>/dev/null
"$bin" import --dir "$node" "$work/records.csv" | tail -n 1
password="correct horse battery staple"
add() { echo "$password" | "$bin" user add --config "$node" "$@" >/dev/null; }
add ana --role admin --display-name "Ana Admin" && pass "user add admin" || fail "user add admin"
add rina --role reviewer --display-name "<b>Rina</b> Reviewer"
add budi --role clerk --display-name "Budi Clerk"
add locky --role clerk --display-name "Lock Test"
if echo "short" | "$bin" user add --config "$node" --role clerk weak >/dev/null 2>&1; then
  fail "a short password is refused"
else
  pass "a short password is refused"
fi
if "$bin" user list --config "$node" | grep -q "^ana .*admin .*active"; then pass "user list"; else fail "user list"; fi
mode=$(stat -c %a "$node/console.sqlite")
if [ "$mode" = 600 ]; then pass "console.sqlite is 0600"; else fail "console.sqlite is $mode, not 0600"; fi

echo "== the node served over mutual TLS on 127.0.0.1:0, holding queries for approval"
# Development certificates (never production) where node.toml's commented [tls] lines point,
# the demo coordinator as the one caller, and [approval] mode = "manual": the workflow test
# asks through a real vrs-coordinator, approves in the browser, and collects the answer.
"$target/debug/vrs-certs-dev" --out "$node/certs" --coordinator bali-rc --nodes IDN >/dev/null
signing_pub=$(tr -d '[:space:]' <"$node/certs/coordinator.bali-rc.signing.pub")
sed -i \
  -e 's/^listen = "127\.0\.0\.1:7443"$/listen = "127.0.0.1:0"/' \
  -e 's/^# \[tls\]$/[tls]/' \
  -e 's|^# ca = "certs/ca\.pem"$|ca = "certs/ca.pem"|' \
  -e 's|^# cert = "certs/node\.idn\.vrs\.test\.pem"$|cert = "certs/node.idn.vrs.test.pem"|' \
  -e 's|^# key = "certs/node\.idn\.vrs\.test\.key"$|key = "certs/node.idn.vrs.test.key"|' \
  -e 's/^# \[\[callers\]\]$/[[callers]]/' \
  -e 's/^# identity = "coordinator\.bali-rc\.vrs\.test"$/identity = "coordinator.bali-rc.vrs.test"/' \
  -e "s/^# signing_keys = \[\"<hex public key>\"\]\$/signing_keys = [\"$signing_pub\"]/" \
  -e 's/^mode = "auto"$/mode = "manual"/' \
  "$node/node.toml"
# The output files exist before the loops below read them: the background process opens its
# redirections only once it is scheduled, and sed on a missing file would end the script.
: >"$work/serve.out"
"$bin" serve --config "$node" >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
node_addr=""
for _ in $(seq 1 100); do
  node_addr=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$work/serve.out")
  [ -n "$node_addr" ] && break
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$node_addr" ]; then
  cat "$work/serve.log" >&2
  fail "vrs-node serve started"
  finish
  exit 1
fi
pass "vrs-node serve listening on $node_addr (approval: manual)"
cat >"$work/registry.toml" <<EOF
[coordinator]
name = "bali-rc"
signing_key = "$node/certs/coordinator.bali-rc.signing.pk8"
deadline_ms = 5000
connect_timeout_ms = 2000

[tls]
ca = "$node/certs/ca.pem"
cert = "$node/certs/coordinator.bali-rc.vrs.test.pem"
key = "$node/certs/coordinator.bali-rc.vrs.test.key"

[[nodes]]
country = "IDN"
endpoint = "$node_addr"
EOF

echo "== vrs-node console on 127.0.0.1:0"
: >"$work/console.out"
"$bin" console --config "$node" --listen 127.0.0.1:0 >"$work/console.out" 2>"$work/console.log" &
console_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^console listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$work/console.out")
  [ -n "$url" ] && break
  kill -0 "$console_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  cat "$work/console.log" >&2
  fail "console started"
  finish
  exit 1
fi
pass "console listening on $url"

shot_dir=${shots:-$work/shots}
mkdir -p "$shot_dir"
echo "== headless Chromium via Selenium"
# Every tests/console/test_*.py script, in name order, each in its own browser (common.py).
export VRS_NODE_BIN="$bin" VRS_NODE_DIR="$node" VRS_WORK="$work"
export VRS_COORDINATOR_BIN="$coordinator_bin" VRS_REGISTRY="$work/registry.toml"
for script in tests/console/test_*.py; do
  name=$(basename "$script" .py)
  set +e
  timeout 300 "$venv/bin/python" "$script" "$url" "$shot_dir" >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
  set -e
  grep -E '^(ok|FAIL) ' "$work/$name.out" || true
  counts=$(sed -n 's/^passed=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$work/$name.out")
  if [ -z "$counts" ]; then
    tail -n 30 "$work/$name.err" >&2
    fail "$name ran to the end (exit $rc)"
  else
    read -r p f <<<"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then tail -n 40 "$work/$name.err" >&2; fi
  fi
done

if "$bin" user list --config "$node" | grep -q "^locky .*locked"; then pass "the CLI sees locky locked"; else fail "the CLI sees locky locked"; fi
if echo | "$bin" user unlock --config "$node" locky >/dev/null; then pass "user unlock"; else fail "user unlock"; fi
if [ -n "$shots" ]; then
  n=$(ls "$shots"/*.png 2>/dev/null | wc -l)
  if [ "$n" -ge 6 ]; then pass "$n screenshots in $shots"; else fail "screenshots in $shots ($n)"; fi
fi
finish
