#!/usr/bin/env bash
# Interop run: a Python grpcio client against a real `vrs-node serve` over mutual TLS 1.3.
#
#   bash tests/interop/run.sh
#
# 1. a virtualenv in target/interop-venv with the pinned requirements (wheels only; re-made when
#    requirements.txt changes);
# 2. the debug binaries (`cargo build --locked --workspace --bins`, as README command 1);
# 3. `vrs-demo --dir WORK/fed` for certificates, node stores and node.toml files (the
#    demo stops its own nodes when it exits);
# 4. `vrs-node serve --config WORK/fed/node-tha/node.toml`: it listens on 127.0.0.1:0 and prints
#    `listening on ADDR` on stdout, which is how this script learns the port;
# 5. self-check: the client run with a trust root that did not issue the node's certificate
#    must fail (so a client that passes everything cannot go unnoticed);
# 6. the client proper, whose last line is `interop: N passed, M failed`.
#
# Everything it starts is stopped on exit; all traffic goes to 127.0.0.1; every wait is bounded.
# Environment: CARGO_TARGET_DIR (default ./target), VRS_INTEROP_KEEP=1 keeps the work folder.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
HERE="$ROOT/tests/interop"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/interop-venv"
COUNTRY=THA
started=$SECONDS

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vrs-interop.XXXXXX")"
NODE_PID=""

stop_node() {
  [[ -n "$NODE_PID" ]] || return 0
  if kill -0 "$NODE_PID" 2>/dev/null; then
    kill -INT "$NODE_PID" 2>/dev/null || true   # vrs-node serve shuts down on SIGINT
    for _ in $(seq 50); do
      kill -0 "$NODE_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$NODE_PID" 2>/dev/null; then
      echo "interop: node did not stop on SIGINT within 5 s; killing it" >&2
      kill -KILL "$NODE_PID" 2>/dev/null || true
    fi
  fi
  wait "$NODE_PID" 2>/dev/null || true
  NODE_PID=""
}

cleanup() {
  local rc=$?
  stop_node
  if [[ "${VRS_INTEROP_KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    echo "interop: work folder kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo "== interop: $*"; }

# 1. virtualenv
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else "python3 >= 3.9 needed")'
if [[ ! -x "$VENV/bin/python" ]] || ! cmp -s "$HERE/requirements.txt" "$VENV/requirements.installed"; then
  step "virtualenv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --only-binary=:all: -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$VENV/requirements.installed"
else
  step "virtualenv $VENV (up to date)"
fi

# 2. binaries
step "cargo build --locked --workspace --bins"
cargo build --locked --quiet --workspace --bins   # README command 1's build: nothing rebuilt
BIN="$TARGET/debug"

# 3. federation files
step "demo federation in $WORK/fed"
if ! timeout 300 "$BIN/vrs-demo" --dir "$WORK/fed" >"$WORK/demo.log" 2>&1; then
  tail -n 30 "$WORK/demo.log" >&2
  echo "interop: vrs-demo failed" >&2
  exit 1
fi
CONFIG="$WORK/fed/node-${COUNTRY,,}/node.toml"
CERTS="$WORK/fed/certs"
# The demo's node.toml names the port its run used; this node takes any free one.
sed -i 's/^listen = "127\.0\.0\.1:[0-9]*"$/listen = "127.0.0.1:0"/' "$CONFIG"
grep -q '^listen = "127\.0\.0\.1:0"$' "$CONFIG" || {
  echo "interop: $CONFIG does not listen on 127.0.0.1" >&2
  exit 1
}

# 4. one node
step "vrs-node serve --config $CONFIG"
"$BIN/vrs-node" serve --config "$CONFIG" >"$WORK/node.out" 2>"$WORK/node.err" &
NODE_PID=$!
ADDR=""
for _ in $(seq 300); do   # at most 30 s
  ADDR="$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$WORK/node.out")"
  [[ -n "$ADDR" ]] && break
  if ! kill -0 "$NODE_PID" 2>/dev/null; then
    tail -n 30 "$WORK/node.err" >&2
    echo "interop: vrs-node serve exited before listening" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$ADDR" ]]; then
  echo "interop: vrs-node serve printed no 'listening on 127.0.0.1:PORT' within 30 s" >&2
  exit 1
fi
echo "node $COUNTRY listening on $ADDR"

client() { timeout 120 "$VENV/bin/python" "$HERE/client.py" --target "$ADDR" --certs "$CERTS" --country "$COUNTRY" "$@"; }

# 5. self-check: the client must fail when the trust root is wrong (here: the coordinator's own
# leaf certificate, which issued nothing).
step "self-check: client under a wrong trust root must fail"
set +e
client --ca "$CERTS/coordinator.bali-rc.vrs.test.pem" >"$WORK/self-check.log" 2>&1
self_rc=$?
set -e
summary="$(grep -E '^interop: [0-9]+ passed, [0-9]+ failed$' "$WORK/self-check.log" | tail -n 1 || true)"
failed="$(sed -E 's/^interop: [0-9]+ passed, ([0-9]+) failed$/\1/' <<<"$summary")"
if [[ $self_rc -ne 1 || -z "$summary" || "$failed" == 0 ]] \
  || ! grep -q '^FAIL  health' "$WORK/self-check.log"; then
  cat "$WORK/self-check.log" >&2
  echo "interop: the client did not fail under a wrong trust root (exit $self_rc)" >&2
  exit 1
fi
echo "self-check ok: the client failed as it should (exit 1, $failed checks failed)"

# 6. the real run: its closing line is the last line this script prints on success.
step "client.py against $ADDR (set-up took $((SECONDS - started)) s)"
set +e
client
rc=$?
set -e
stop_node
if [[ $rc -ne 0 ]]; then
  echo "--- node log (last 40 lines)" >&2
  tail -n 40 "$WORK/node.err" >&2
fi
exit $rc
