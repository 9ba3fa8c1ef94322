#!/usr/bin/env bash
# run.sh - build couchnpm and run `couchnpm serve` with all arguments passed through.
#
#   scripts/run.sh --listen 127.0.0.1:4880 --public-url http://127.0.0.1:4880
#
# When COUCHDB_URL is unset, a local PouchDB Server (the CouchDB stand-in) is started
# first via scripts/devdb.sh (data in .devdb/data or DEVDB_DIR, admin from
# COUCHDB_USER/COUCHDB_PASSWORD, default admin/admin) and stopped again when couchnpm
# exits (or this script gets SIGINT/SIGTERM, which it forwards to couchnpm). Several
# run.sh on one data folder share one server; the last to exit stops it, and a server
# started by hand (scripts/devdb.sh start) is never stopped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${COUCHNPM_BIN:-$ROOT/couchnpm}"
echo "run: building $BIN" >&2
go build -o "$BIN" ./cmd/couchnpm

if [[ -n "${COUCHDB_URL:-}" ]]; then
	exec "$BIN" serve "$@"
fi

# shellcheck source=scripts/devdb.sh
source "$ROOT/scripts/devdb.sh"
# At exit, stop PouchDB Server if no other run.sh uses it and not started by hand.
trap 'devdb_release $$' EXIT
devdb_acquire $$
echo "run: using PouchDB Server at $COUCHDB_URL (user $COUCHDB_USER)" >&2

# couchnpm runs in the background so that this shell can forward signals and then
# stop PouchDB Server (bash runs traps only once a foreground child has finished).
"$BIN" serve "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM
status=0
while :; do
	wait "$child" && status=0 || status=$?
	kill -0 "$child" 2>/dev/null || break # still running: wait was interrupted by a signal
done
exit "$status"
