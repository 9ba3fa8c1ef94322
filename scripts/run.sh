#!/usr/bin/env bash
# run.sh - build couchnpm and run `couchnpm serve` with all arguments passed through.
#
#   scripts/run.sh --listen 127.0.0.1:4880 --public-url http://127.0.0.1:4880
#
# When COUCHDB_URL is unset and COUCHDB_HOME or COUCHDB_RELEASE names an Apache CouchDB
# release, a CouchDB node is started from it (scripts/couchdb.sh; data in .couchdb/run-data
# or COUCHDB_DATA, port 5984 or COUCHDB_PORT) and stopped when couchnpm exits. Otherwise
# a local PouchDB Server (the CouchDB stand-in) is started
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

if [[ -n "${COUCHDB_HOME:-}" || -n "${COUCHDB_RELEASE:-}" ]]; then
	# Apache CouchDB from the named release (scripts/couchdb.sh), data in
	# COUCHDB_DATA (default .couchdb/run-data), port COUCHDB_PORT (default
	# 5984). A node already running on that data is used and left running;
	# one started here is stopped when couchnpm exits.
	# shellcheck source=scripts/couchdb.sh
	source "$ROOT/scripts/couchdb.sh"
	data="${COUCHDB_DATA:-$ROOT/.couchdb/run-data}"
	port="${COUCHDB_PORT:-5984}"
	if [[ -f "$data/couchdb.pid" ]] && kill -0 "$(cat "$data/couchdb.pid")" 2>/dev/null; then
		export COUCHDB_URL="http://127.0.0.1:$port" COUCHDB_USER="${COUCHDB_USER:-admin}" COUCHDB_PASSWORD="${COUCHDB_PASSWORD:-admin}"
	else
		couchdb_start "$port" "$data"
		trap 'couchdb_stop "$data"' EXIT
	fi
	echo "run: using Apache CouchDB at $COUCHDB_URL (user $COUCHDB_USER)" >&2
else
	# shellcheck source=scripts/devdb.sh
	source "$ROOT/scripts/devdb.sh"
	# At exit, stop PouchDB Server if no other run.sh uses it and not started by hand.
	trap 'devdb_release $$' EXIT
	devdb_acquire $$
	echo "run: using PouchDB Server at $COUCHDB_URL (user $COUCHDB_USER)" >&2
fi

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
