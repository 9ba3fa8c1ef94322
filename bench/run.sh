#!/usr/bin/env bash
# bench/run.sh - couchnpm against Verdaccio 5 and the raw CouchDB document GET.
#
#   bench/run.sh                 the real benchmark (a long run: loads ~0.5 GB into
#                                each registry); writes bench/RESULTS.md
#   BENCH_SMALL=1 bench/run.sh   smoke mode: a tiny data set and 2 s runs; writes
#                                bench/.work/RESULTS.md
#
# It installs what it needs (wrk from Debian if missing, Verdaccio 5 pinned by
# bench/verdaccio/package-lock.json, PouchDB Server by devdb/package-lock.json),
# starts PouchDB Server (scripts/devdb.sh), couchnpm and Verdaccio on loopback with
# data in bench/.work, runs bench/driver (load by HTTP PUT, wrk, npm ci, the
# table) and stops everything it started. Everything stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/bench/.work"
SMALL="${BENCH_SMALL:-0}"

log() { echo "bench: $*" >&2; }

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_http() { # URL SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if node -e 'require("http").get(process.argv[1],r=>process.exit(r.statusCode<500?0:1)).on("error",()=>process.exit(1))' "$1"; then
			return 0
		fi
		sleep 0.1
	done
	log "$1 did not answer within $2 s"
	return 1
}

# --- tools ---------------------------------------------------------------
if ! command -v wrk >/dev/null; then
	log "installing wrk (Debian package)"
	apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
if [[ ! -x bench/verdaccio/node_modules/.bin/verdaccio ]]; then
	log "installing Verdaccio (npm ci --prefix bench/verdaccio)"
	npm ci --prefix bench/verdaccio --no-audit --no-fund --loglevel error
fi
if [[ ! -x devdb/node_modules/.bin/pouchdb-server ]]; then
	npm ci --prefix devdb --no-audit --no-fund --loglevel error
fi

# --- servers ---------------------------------------------------------------
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	devdb_stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$WORK/verdaccio/storage"

export DEVDB_DIR="$WORK/devdb"
# shellcheck source=../scripts/devdb.sh
source scripts/devdb.sh
unset COUCHDB_URL COUCHDB_USER COUCHDB_PASSWORD
devdb_start >/dev/null
COUCH_PID="$(cat "$DEVDB_DIR/pouchdb-server.pid")"
log "PouchDB Server at $COUCHDB_URL (pid $COUCH_PID)"

go build -o "$WORK/couchnpm" ./cmd/couchnpm
CN_PORT="$(free_port)"
PPROF_PORT="$(free_port)"
start_couchnpm() {
	COUCHNPM_LOG_LEVEL=warn "$WORK/couchnpm" serve --listen "127.0.0.1:$CN_PORT" --db-prefix bench \
		--pprof "127.0.0.1:$PPROF_PORT" --max-publish-bytes 200MB --cache-bytes 256MB --allow-signup \
		>>"$WORK/couchnpm.log" 2>&1 &
	CN_PID=$!
	PIDS+=("$CN_PID")
	wait_http "http://127.0.0.1:$CN_PORT/-/ping" 60
	log "couchnpm at http://127.0.0.1:$CN_PORT (pid $CN_PID)"
}
start_couchnpm

VD_PORT="$(free_port)"
cat >"$WORK/verdaccio/config.yaml" <<YAML
storage: $WORK/verdaccio/storage
auth:
  htpasswd:
    file: $WORK/verdaccio/htpasswd
    max_users: 1000
uplinks: {}
packages:
  '**':
    access: \$all
    publish: \$authenticated
    unpublish: \$authenticated
server:
  keepAliveTimeout: 60
max_body_size: 200mb
web:
  enable: false
log: { type: stdout, format: pretty, level: error }
YAML
node bench/verdaccio/node_modules/verdaccio/bin/verdaccio --config "$WORK/verdaccio/config.yaml" \
	--listen "127.0.0.1:$VD_PORT" >"$WORK/verdaccio.log" 2>&1 &
VD_PID=$!
PIDS+=("$VD_PID")
wait_http "http://127.0.0.1:$VD_PORT/-/ping" 60
log "Verdaccio $(node -p 'require("./bench/verdaccio/node_modules/verdaccio/package.json").version') at http://127.0.0.1:$VD_PORT (pid $VD_PID)"

# --- the benchmark ----------------------------------------------------------
OUT="$ROOT/bench/RESULTS.md"
ARGS=()
if [[ "$SMALL" == 1 ]]; then
	OUT="$WORK/RESULTS.md"
	ARGS+=(-small)
fi
go run ./bench/driver \
	-couchnpm "http://127.0.0.1:$CN_PORT" \
	-verdaccio "http://127.0.0.1:$VD_PORT" \
	-couchdb-db "$COUCHDB_URL/bench" \
	-couchdb-auth "$COUCHDB_USER:$COUCHDB_PASSWORD" \
	-pids "$CN_PID,$VD_PID,$COUCH_PID" \
	-pprof "http://127.0.0.1:$PPROF_PORT" \
	-work "$WORK" -out "$OUT" "${ARGS[@]}"

# The streaming check on a fresh couchnpm (no load heap, no warm cache).
kill "$CN_PID"
wait "$CN_PID" 2>/dev/null || true
start_couchnpm
go run ./bench/driver -stream-check \
	-couchnpm "http://127.0.0.1:$CN_PORT" \
	-couchdb-db "$COUCHDB_URL/bench" \
	-pids "$CN_PID,0,$COUCH_PID" \
	-work "$WORK" -out "$OUT" "${ARGS[@]}"
log "results in $OUT"
