#!/usr/bin/env bash
# `make demo`: initialise .fleetops/, seed the demo fleet, start Dagster (webserver +
# daemon, sensors on) on the embedded SQLite instance and print the URL. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

export FLEETOPS_HOME="${FLEETOPS_HOME:-$PWD/.fleetops}"
export DAGSTER_HOME="${DAGSTER_HOME:-$FLEETOPS_HOME/dagster}"
PORT="${PORT:-3000}"
BIN="$PWD/.venv/bin"

mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# The demo keeps its own secret key so literal secrets can be stored encrypted.
if [ -z "${FLEETOPS_SECRET_KEY:-}" ]; then
  [ -s "$FLEETOPS_HOME/secret.key" ] || (umask 077 && "$BIN/fleetops" secret-key > "$FLEETOPS_HOME/secret.key")
  FLEETOPS_SECRET_KEY="$(cat "$FLEETOPS_HOME/secret.key")"
  export FLEETOPS_SECRET_KEY
fi

"$BIN/fleetops" init
"$BIN/fleetops" demo seed
"$BIN/fleetops" demo materialize

echo
echo "fleetops demo: Dagster UI at http://127.0.0.1:${PORT}  (Ctrl-C stops it)"
echo
# Run from DAGSTER_HOME so Dagster does not mistake the repo's template dagster.yaml for config.
REPO="$PWD"
cd "$DAGSTER_HOME"
exec "$BIN/dagster" dev -w "$REPO/workspace.yaml" -h 127.0.0.1 -p "$PORT"
