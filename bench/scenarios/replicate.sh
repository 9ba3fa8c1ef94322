#!/usr/bin/env bash
# Replicate mode: docs/s of CouchDB's _replicator copying the follower's
# 10,000 packuments (many small, ten over 5 MB) from an upstream Apache
# CouchDB 3.5 node into couchnpm's mirror database, with the replication
# parameters couchnpm sets (bench/replicate). The upstream is a second
# private node of the pass's release (scripts/couchdb.sh, COUCHDB_HOME or
# COUCHDB_RELEASE), started and stopped here. Gives the replicate line of the
# Targets table (a measure: issue 14 sets no number for it).
#
# CouchDB pass only: on PouchDB Server it prints nothing. The issue asks for
# CouchDB 3.5's figure, and PouchDB Server's _replicator has no scheduler and
# takes no selector (couchnpm runs replicate mode there only through
# couch/workarounds.go). Tried by hand (PouchDB Server 4.2 pulling 500 of
# these packuments from a CouchDB 3.5 node): none arrived in 5 minutes, and
# deleting the _replicator document afterwards crashed PouchDB Server (the
# crash replication/peers.go avoids).
set -euo pipefail
[[ "$BENCH_STORE" == couchdb ]] || exit 0
n=10000
[[ "${BENCH_SMALL:-}" == 1 ]] && n=500

# shellcheck source=../../scripts/couchdb.sh
source "$BENCH_ROOT/scripts/couchdb.sh"
node_dir="$BENCH_WORK/upstream-node"
store_url="$COUCHDB_URL" store_user="$COUCHDB_USER" store_pass="$COUCHDB_PASSWORD"
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
trap 'couchdb_stop "$node_dir" || true' EXIT
couchdb_start "$port" "$node_dir" >&2
up_url="$COUCHDB_URL"
up_version=$(curl -fsS "$up_url/" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).version))')
export COUCHDB_URL="$store_url" COUCHDB_USER="$store_user" COUCHDB_PASSWORD="$store_pass"

out="$BENCH_WORK/replicate.md"
label="${BENCH_STORE_DESC#Store: }" # a phrase, not the report's sentence
label="${label%.}"
go run ./bench/replicate -bin "$BENCH_COUCHNPM_BIN" -couchdb "$COUCHDB_URL" \
	-user "$COUCHDB_USER" -password "$COUCHDB_PASSWORD" -label "$label" \
	-upstream-couchdb "$up_url" -upstream-label "Apache CouchDB $up_version" -n "$n" >"$out"
cat "$out"
rate=$(grep -F "the mirror database holds all" "$out" | head -1 | sed -E 's/.*\*\*([0-9.]+) docs\/s\*\*.*/\1/')
if [[ -n "$rate" ]]; then
	printf "replicate\tinfo\t%s docs/s (%d packuments, from couchnpm's start)\treplicate mode: docs/s of CouchDB's _replicator from an upstream CouchDB 3.5, couchnpm's parameters (no target: a measure)\n" \
		"$rate" "$n" >>"$BENCH_TARGETS"
fi
