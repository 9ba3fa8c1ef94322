#!/usr/bin/env bash
# bench/npmci.sh - only the npm ci comparison of bench/run.sh: npm ci of the bench app
# against couchnpm, Verdaccio 5 and the floor server (a plain Go server in bench/driver
# answering from memory), in rounds, each round in another order. Takes a few minutes
# instead of bench/run.sh's 25; prints the markdown table.
#
#   bench/npmci.sh                  200 packages, 6 rounds, couchnpm on PouchDB Server
#   COUCHDB_URL=... COUCHDB_USER=... COUCHDB_PASSWORD=... bench/npmci.sh
#                                   couchnpm on that CouchDB (databases npmci-<random>*,
#                                   deleted at the end)
#   BENCH_SMALL=1 bench/npmci.sh    10 packages, 1 round (smoke mode)
#
# Settings (environment): BENCH_PACKAGES (200), BENCH_CI_ROUNDS (6), BENCH_CI_FLAGS
# (more driver flags, e.g. -ci-lock-resolved=false for a lockfile without resolved URLs).
# Only the ordinary packages are loaded (one version each: npm ci installs the latest;
# the tarball sizes do not depend on the number of versions).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/bench/.work/npmci"
SMALL="${BENCH_SMALL:-0}"
ROUNDS="${BENCH_CI_ROUNDS:-6}"
ARGS=(-packages "${BENCH_PACKAGES:-200}" -versions 1)
if [[ "$SMALL" == 1 ]]; then
	ROUNDS="${BENCH_CI_ROUNDS:-1}"
	ARGS=(-small)
fi
log() { echo "npmci: $*" >&2; }
# shellcheck source=lib.sh
source bench/lib.sh

if [[ ! -x bench/verdaccio/node_modules/.bin/verdaccio ]]; then
	npm ci --prefix bench/verdaccio --no-audit --no-fund --loglevel error
fi
rm -rf "$WORK"
mkdir -p "$WORK/verdaccio/storage"
PIDS=()
STARTED_DEVDB=0
PREFIX="npmci-$(tr -dc a-z0-9 </dev/urandom | head -c 8 || true)"
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ -n "${COUCHDB_URL:-}" ]]; then # couchnpm's databases on a shared CouchDB
		for db in $(curl -fsS -u "$COUCHDB_USER:$COUCHDB_PASSWORD" "$COUCHDB_URL/_all_dbs" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).filter(n=>n.startsWith(process.argv[1])).join(" ")))' "$PREFIX"); do
			curl -fsS -u "$COUCHDB_USER:$COUCHDB_PASSWORD" -X DELETE "$COUCHDB_URL/$db" >/dev/null || true
		done
	fi
	if [[ "$STARTED_DEVDB" == 1 ]]; then devdb_stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [[ -z "${COUCHDB_URL:-}" ]]; then
	export DEVDB_DIR="$WORK/devdb"
	# shellcheck source=../scripts/devdb.sh
	source scripts/devdb.sh
	devdb_start >/dev/null
	STARTED_DEVDB=1
fi

go build -o "$WORK/couchnpm" ./cmd/couchnpm
go build -o "$WORK/driver" ./bench/driver

CN_PORT="$(free_port)"
COUCHNPM_LOG_LEVEL="${COUCHNPM_LOG_LEVEL:-warn}" "$WORK/couchnpm" serve --listen "127.0.0.1:$CN_PORT" --db-prefix "$PREFIX" \
	--max-publish-bytes 200MB --cache-bytes 256MB --allow-signup >"$WORK/couchnpm.log" 2>&1 &
CN_PID=$!
PIDS+=("$CN_PID")
wait_http "http://127.0.0.1:$CN_PORT/-/ping" 60

start_verdaccio "$WORK"
log "couchnpm at http://127.0.0.1:$CN_PORT ($COUCHDB_URL, prefix $PREFIX), Verdaccio at http://127.0.0.1:$VD_PORT; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# shellcheck disable=SC2086 # BENCH_CI_FLAGS is a list of flags
"$WORK/driver" -ci-only "${ARGS[@]}" -work "$WORK" -ci-rounds "$ROUNDS" \
	-couchnpm "http://127.0.0.1:$CN_PORT" -verdaccio "http://127.0.0.1:$VD_PORT" \
	-pids "$CN_PID,$VD_PID,0" -json "$WORK/npmci.json" ${BENCH_CI_FLAGS:-}
