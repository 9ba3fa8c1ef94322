#!/usr/bin/env bash
# devdb_test.sh - one PouchDB Server per data folder: two users (two scripts/run.sh)
# share it, the last one out stops it, a user that died does not keep it alive, and
# a server started by hand is never stopped. Runs in a temp data folder; needs
# PouchDB Server installed (scripts/devdb.sh install). Exit 0 when all hold.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVDB_DIR="$(mktemp -d)"
export DEVDB_DIR
export COUCHDB_USER=admin COUCHDB_PASSWORD="pw$RANDOM$RANDOM"
# shellcheck source=scripts/devdb.sh
source "$ROOT/scripts/devdb.sh"

failed=0
fail() {
	echo "devdb_test: FAIL: $*" >&2
	failed=1
}
up() { devdb__http GET "$1/" >/dev/null 2>&1; }

sleep 600 &
a=$!
sleep 600 &
b=$!
cleanup() {
	kill "$a" "$b" 2>/dev/null
	devdb_stop 2>/dev/null
	rm -rf "$DEVDB_DIR"
}
trap cleanup EXIT

# Two users share one server; the first to leave does not stop it.
devdb_acquire "$a" || fail "first acquire"
url="$COUCHDB_URL"
[[ "$DEVDB_STARTED" == 1 ]] || fail "first acquire did not start the server"
devdb_acquire "$b" || fail "second acquire"
[[ "$DEVDB_STARTED" == 0 && "$COUCHDB_URL" == "$url" ]] || fail "second acquire started another server ($COUCHDB_URL, was $url)"
devdb_release "$a"
up "$url" || fail "the first user's exit stopped the server the second still uses"
devdb_release "$b"
up "$url" && fail "the last user's exit left the server running"

# A user that died without releasing does not keep the server alive.
devdb_acquire "$a" || fail "acquire after restart"
url="$COUCHDB_URL"
devdb_acquire "$b" || fail "second acquire after restart"
kill "$b" 2>/dev/null
wait "$b" 2>/dev/null
devdb_release "$a"
up "$url" && fail "a dead user kept the server running"

# A server started by hand stays up when its run.sh users leave.
devdb_start >/dev/null || fail "start by hand"
url="$COUCHDB_URL"
devdb_acquire "$a" || fail "acquire of a server started by hand"
devdb_release "$a"
up "$url" || fail "a user's exit stopped a server started by hand"
devdb_stop

if ((failed)); then
	exit 1
fi
echo "devdb_test: ok"
