#!/usr/bin/env bash
# `make demo`: initialise .fleetops/, seed the demo fleet, start the local Zuora-compatible
# server (own process group, stopped with the demo), start Dagster (webserver + daemon,
# sensors on) on the embedded SQLite instance and print the URL. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."

export FLEETOPS_HOME="${FLEETOPS_HOME:-$PWD/.fleetops}"
export DAGSTER_HOME="${DAGSTER_HOME:-$FLEETOPS_HOME/dagster}"
PORT="${PORT:-3000}"
BIN="$PWD/.venv/bin"
ZUORA_DIR="$FLEETOPS_HOME/zuora"

mkdir -p "$DAGSTER_HOME" "$ZUORA_DIR"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# The demo keeps its own secret key so literal secrets can be stored encrypted.
if [ -z "${FLEETOPS_SECRET_KEY:-}" ]; then
  [ -s "$FLEETOPS_HOME/secret.key" ] || (umask 077 && "$BIN/fleetops" secret-key > "$FLEETOPS_HOME/secret.key")
  FLEETOPS_SECRET_KEY="$(cat "$FLEETOPS_HOME/secret.key")"
  export FLEETOPS_SECRET_KEY
fi

ZUORA_PORT="${ZUORA_PORT:-$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
ZUORA_URL="http://127.0.0.1:$ZUORA_PORT"

"$BIN/fleetops" init
"$BIN/python" -m sandbox.demo seed --zuora-url "$ZUORA_URL"

# The local Zuora-compatible server, in its own process group; the trap stops it with the demo,
# and --exit-with-parent stops it should this script be killed before its trap could run.
rm -f "$ZUORA_DIR/url"
setsid "$BIN/python" -m sandbox.zuora_server --port "$ZUORA_PORT" --tenants "$ZUORA_DIR/tenants.json" \
  --url-file "$ZUORA_DIR/url" --exit-with-parent > "$ZUORA_DIR/server.log" 2>&1 &
ZUORA_PID=$!
echo "$ZUORA_PID" > "$ZUORA_DIR/server.pid"
stop_zuora() { kill -TERM -- "-$ZUORA_PID" 2>/dev/null || true; }
trap stop_zuora EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 100); do [ -s "$ZUORA_DIR/url" ] && break; sleep 0.1; done
[ -s "$ZUORA_DIR/url" ] || { echo "the local Zuora server did not start:" >&2; cat "$ZUORA_DIR/server.log" >&2; exit 1; }

"$BIN/python" -m sandbox.demo materialize

echo
echo "fleetops demo: Dagster UI at http://127.0.0.1:${PORT}  (Ctrl-C stops it)"
echo "local Zuora-compatible server at $ZUORA_URL (customers acme, globex, initech)"
echo
# Run from DAGSTER_HOME so Dagster does not mistake the repo's template dagster.yaml for config.
# The daemon logs a line per sensor tick at INFO (some 20 a minute here): the terminal shows
# warnings and errors only, unless DAGSTER_LOG_LEVEL=info asks for them. Runs' own logs are in the UI.
REPO="$PWD"
cd "$DAGSTER_HOME"
"$BIN/dagster" dev -w "$REPO/workspace.yaml" -h 127.0.0.1 -p "$PORT" --log-level "${DAGSTER_LOG_LEVEL:-warning}"
