#!/usr/bin/env bash
# bench/run.sh - couchnpm against Verdaccio 5, the raw store and a bare Go server,
# on PouchDB Server and on Apache CouchDB 3.5, in one run.
#
#   bench/run.sh                 the real benchmark (loads ~0.5 GB into each registry;
#                                about 20 minutes for both stores); writes bench/RESULTS.md
#   BENCH_SMALL=1 bench/run.sh   smoke mode: a tiny data set and 2 s runs; writes
#                                bench/.work/RESULTS.md (never bench/RESULTS.md)
#
# Settings (environment):
#   COUCHDB_HOME / COUCHDB_RELEASE  the Apache CouchDB release for the CouchDB pass
#                                (scripts/couchdb.sh: a private node on a free port, data
#                                in bench/.work, stopped at the end). Neither set: that
#                                pass is reported as not run.
#   BENCH_STORES                 the passes, in order (default "pouchdb couchdb")
#   BENCH_DURATION               length of each measured wrk run (default 8s; 2s in smoke
#                                mode); every run has a 2 s warm-up before it
#   BENCH_PACKAGES, BENCH_VERSIONS  the data set: ordinary packages (200) × versions (30);
#                                smaller loads faster (loading is most of a run)
#   BENCH_CI_ROUNDS              npm ci runs against each of couchnpm, Verdaccio and the
#                                floor server, in turns (default 3; 1 in smoke mode);
#                                bench/npmci.sh runs only this part
#   BENCH_OUT                    where the report goes (default bench/RESULTS.md, smoke
#                                mode bench/.work/RESULTS.md)
#   BENCH_SCENARIOS              only the scenario scripts whose name contains this
#                                ("none": no script); BENCH_SCENARIO_DIR their folder
#                                (default bench/scenarios); BENCH_SCENARIO_TIMEOUT seconds
#                                per script (default 900)
#   BENCH_REAL_UPSTREAM          a registry URL: the pullthrough scenario also times the
#                                direct, cold and warm installs of a small real app against
#                                it (network variance applies). Unset: no traffic leaves
#                                127.0.0.1. The URL is never written into the project.
#
# Each pass starts its store, a couchnpm on it (--db-prefix bench), loads the data set
# by HTTP PUT, measures couchnpm, Verdaccio, the raw store and the bare server
# (bench/bare, answering from memory with the bytes couchnpm sent) with wrk, times
# npm ci against couchnpm, Verdaccio and a floor server answering from memory, restarts couchnpm for the streaming check,
# runs every executable bench/scenarios/*.sh (see bench/scenarios/README.md), and
# stops its store. Verdaccio is started and loaded once and measured in every pass.
# `bench/driver -report` then writes the report from every pass. It installs what
# it needs (wrk from Debian, Verdaccio 5 pinned by bench/verdaccio/package-lock.json,
# PouchDB Server by devdb/package-lock.json) and everything stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/bench/.work"
SMALL="${BENCH_SMALL:-0}"
STORES="${BENCH_STORES:-pouchdb couchdb}"
DURATION="${BENCH_DURATION:-8s}"
OUT="${BENCH_OUT:-$ROOT/bench/RESULTS.md}"
if [[ "$SMALL" == 1 ]]; then
	DURATION="${BENCH_DURATION:-2s}"
	OUT="${BENCH_OUT:-$WORK/RESULTS.md}"
fi
SCENARIO_DIR="${BENCH_SCENARIO_DIR:-$ROOT/bench/scenarios}"
BEGIN="$(date +%s)"

log() { echo "bench: $*" >&2; }

# shellcheck source=lib.sh
source bench/lib.sh

# --- tools ---------------------------------------------------------------
if ! command -v wrk >/dev/null; then
	log "installing wrk (Debian package)"
	apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
if [[ ! -x bench/verdaccio/node_modules/.bin/verdaccio ]]; then
	log "installing Verdaccio (npm ci --prefix bench/verdaccio)"
	npm ci --prefix bench/verdaccio --no-audit --no-fund --loglevel error
fi
if [[ " $STORES " == *" pouchdb "* && ! -x devdb/node_modules/.bin/pouchdb-server ]]; then
	npm ci --prefix devdb --no-audit --no-fund --loglevel error
fi

# --- what every pass shares ---------------------------------------------------
PIDS=()
COUCHDB_NODE_DIR=""
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	devdb_stop >/dev/null 2>&1 || true
	if [[ -n "$COUCHDB_NODE_DIR" ]]; then
		couchdb_stop "$COUCHDB_NODE_DIR" || true
	fi
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$WORK/verdaccio/storage" "$WORK/results" "$WORK/scenarios"

export DEVDB_DIR="$WORK/devdb"
# shellcheck source=../scripts/devdb.sh
source scripts/devdb.sh
# shellcheck source=../scripts/couchdb.sh
source scripts/couchdb.sh
# Never the CouchDB of the shell: every pass starts its own store.
unset COUCHDB_URL COUCHDB_USER COUCHDB_PASSWORD

go build -o "$WORK/couchnpm" ./cmd/couchnpm
go build -o "$WORK/bare" ./bench/bare
go build -o "$WORK/driver" ./bench/driver

start_verdaccio "$WORK"
log "Verdaccio $(node -p 'require("./bench/verdaccio/node_modules/verdaccio/package.json").version') at http://127.0.0.1:$VD_PORT (pid $VD_PID)"
VERDACCIO_LOADED=0

DRIVER_ARGS=(-duration "$DURATION" -work "$WORK" -packages "${BENCH_PACKAGES:-200}" -versions "${BENCH_VERSIONS:-30}")
if [[ "$SMALL" == 1 ]]; then
	DRIVER_ARGS+=(-small -ci-rounds "${BENCH_CI_ROUNDS:-1}")
else
	DRIVER_ARGS+=(-ci-rounds "${BENCH_CI_ROUNDS:-3}")
fi

# --- one store -----------------------------------------------------------------
CN_PID=0
start_couchnpm() { # STORE
	COUCHNPM_LOG_LEVEL=warn "$WORK/couchnpm" serve --listen "127.0.0.1:$CN_PORT" --db-prefix bench \
		--pprof "127.0.0.1:$PPROF_PORT" --max-publish-bytes 200MB --cache-bytes 256MB --allow-signup \
		>>"$WORK/couchnpm-$1.log" 2>&1 &
	CN_PID=$!
	PIDS+=("$CN_PID")
	wait_http "http://127.0.0.1:$CN_PORT/-/ping" 60
	log "couchnpm at http://127.0.0.1:$CN_PORT on $1 (pid $CN_PID)"
}

stop_couchnpm() {
	kill "$CN_PID" 2>/dev/null || true
	wait "$CN_PID" 2>/dev/null || true
}

# start_store STORE: starts the store, exports COUCHDB_URL/USER/PASSWORD, sets
# STORE_PID and STORE_DESC; on failure writes results/STORE.notrun and returns 1.
start_store() {
	case "$1" in
	pouchdb)
		devdb_start >/dev/null || {
			echo "PouchDB Server did not start (see $WORK/devdb/server.log)" >"$WORK/results/pouchdb.notrun"
			return 1
		}
		STORE_PID="$(cat "$DEVDB_DIR/pouchdb-server.pid")"
		STORE_DESC="Store: PouchDB Server $(node -p 'require("./devdb/node_modules/pouchdb-server/package.json").version' 2>/dev/null || echo '?') (scripts/devdb.sh, the development stand-in; LevelDB on local disk)."
		;;
	couchdb)
		local home
		if ! home="$(couchdb_home 2>/dev/null)"; then
			echo "no Apache CouchDB release named (set COUCHDB_HOME to an unpacked release or COUCHDB_RELEASE to a release tarball)" >"$WORK/results/couchdb.notrun"
			return 1
		fi
		COUCHDB_NODE_DIR="$WORK/couchdb"
		couchdb_start "$(free_port)" "$COUCHDB_NODE_DIR" || {
			echo "Apache CouchDB did not start from $home (see $COUCHDB_NODE_DIR/couchdb.log)" >"$WORK/results/couchdb.notrun"
			return 1
		}
		STORE_PID="$(cat "$COUCHDB_NODE_DIR/couchdb.pid")"
		STORE_DESC="Store: Apache CouchDB $(curl -fsS "$COUCHDB_URL/" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).version))' 2>/dev/null || echo '?') from $(basename "$home"), a private single node (scripts/couchdb.sh, n=1, data on local disk)."
		;;
	*)
		echo "unknown store $1 (pouchdb, couchdb)" >"$WORK/results/$1.notrun"
		return 1
		;;
	esac
	log "$1 at $COUCHDB_URL (pid $STORE_PID)"
}

stop_store() {
	case "$1" in
	pouchdb) devdb_stop >/dev/null 2>&1 || true ;;
	couchdb)
		couchdb_stop "$COUCHDB_NODE_DIR" || true
		COUCHDB_NODE_DIR=""
		;;
	esac
	unset COUCHDB_URL COUCHDB_USER COUCHDB_PASSWORD
}

# run_scenarios STORE: every executable $SCENARIO_DIR/*.sh, with the servers of
# this pass in its environment; its stdout is markdown for the report.
run_scenarios() {
	local store="$1" script name dir rc
	[[ "${BENCH_SCENARIOS:-}" == none ]] && return 0
	dir="$WORK/scenarios/$store"
	mkdir -p "$dir"
	for script in "$SCENARIO_DIR"/*.sh; do
		[[ -x "$script" ]] || continue
		name="$(basename "$script" .sh)"
		if [[ -n "${BENCH_SCENARIOS:-}" && "$name" != *"$BENCH_SCENARIOS"* ]]; then
			continue
		fi
		log "scenario $name on $store"
		mkdir -p "$dir/$name.work"
		rc=0
		BENCH_STORE="$store" BENCH_STORE_DESC="$STORE_DESC" BENCH_STORE_PID="$STORE_PID" \
			BENCH_COUCHDB_DB="$COUCHDB_URL/bench" BENCH_DB_PREFIX=bench \
			BENCH_COUCHNPM_URL="http://127.0.0.1:$CN_PORT" BENCH_COUCHNPM_PID="$CN_PID" \
			BENCH_COUCHNPM_BIN="$WORK/couchnpm" BENCH_DRIVER="$WORK/driver" \
			BENCH_VERDACCIO_URL="http://127.0.0.1:$VD_PORT" BENCH_VERDACCIO_PID="$VD_PID" \
			BENCH_DURATION="$DURATION" BENCH_SMALL="$SMALL" \
			BENCH_SAMPLE_PACKAGE=bench-pkg-000 BENCH_BIG_PACKAGE=bench-big-0 \
			BENCH_WORK="$dir/$name.work" BENCH_TARGETS="$dir/targets.tsv" BENCH_ROOT="$ROOT" \
			timeout "${BENCH_SCENARIO_TIMEOUT:-900}" "$script" >"$dir/$name.md" 2>"$dir/$name.log" </dev/null || rc=$?
		if ((rc != 0)); then
			log "scenario $name on $store failed (exit $rc): see $dir/$name.log"
			printf '\n*%s failed (exit %d); its log: bench/.work/scenarios/%s/%s.log*\n' "$name" "$rc" "$store" "$name" >>"$dir/$name.md"
		fi
	done
}

run_pass() { # STORE
	local store="$1" load="couchnpm"
	start_store "$store" || {
		log "$store: $(cat "$WORK/results/$store.notrun")"
		return 0
	}
	CN_PORT="$(free_port)"
	PPROF_PORT="$(free_port)"
	start_couchnpm "$store"
	if [[ "$VERDACCIO_LOADED" == 0 ]]; then
		load="couchnpm,verdaccio"
	fi
	"$WORK/driver" "${DRIVER_ARGS[@]}" -store "$store" -store-desc "$STORE_DESC" -load "$load" \
		-couchnpm "http://127.0.0.1:$CN_PORT" \
		-verdaccio "http://127.0.0.1:$VD_PORT" \
		-couchdb-db "$COUCHDB_URL/bench" \
		-couchdb-auth "$COUCHDB_USER:$COUCHDB_PASSWORD" \
		-pids "$CN_PID,$VD_PID,$STORE_PID" \
		-pprof "http://127.0.0.1:$PPROF_PORT" \
		-bare-bin "$WORK/bare" \
		-json "$WORK/results/$store.json" || {
		log "$store: the driver failed (exit $?)"
		echo "the driver failed on this store (see the output of bench/run.sh and bench/.work/couchnpm-$store.log)" >"$WORK/results/$store.notrun"
		rm -f "$WORK/results/$store.json"
		stop_couchnpm
		stop_store "$store"
		return 0
	}
	VERDACCIO_LOADED=1

	# The streaming check on a fresh couchnpm (no load heap, no warm cache).
	stop_couchnpm
	start_couchnpm "$store"
	"$WORK/driver" "${DRIVER_ARGS[@]}" -store "$store" -stream-check \
		-couchnpm "http://127.0.0.1:$CN_PORT" \
		-couchdb-db "$COUCHDB_URL/bench" \
		-pids "$CN_PID,0,$STORE_PID" \
		-json "$WORK/results/$store-stream.json" || log "$store: the streaming check failed"

	run_scenarios "$store"
	stop_couchnpm
	stop_store "$store"
}

for store in $STORES; do
	run_pass "$store"
done
for store in pouchdb couchdb; do # a store left out by BENCH_STORES still gets its line
	if [[ " $STORES " != *" $store "* ]]; then
		echo "left out by BENCH_STORES=\"$STORES\"" >"$WORK/results/$store.notrun"
	fi
done

"$WORK/driver" -report -work "$WORK" -stores pouchdb,couchdb \
	-total "$(($(date +%s) - BEGIN))s" -out "$OUT" >/dev/null
log "results in $OUT"
