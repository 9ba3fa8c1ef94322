#!/usr/bin/env bash
# The mirror follower's catch-up over a local fake upstream of 10,000
# packuments (many small, ten over 5 MB), beside the store's own _bulk_docs
# ceiling for the same documents (bench/follower). Gives the follower target.
set -euo pipefail
n=10000
[[ "${BENCH_SMALL:-}" == 1 ]] && n=500
out="$BENCH_WORK/follower.md"
go run ./bench/follower -bin "$BENCH_COUCHNPM_BIN" -couchdb "$COUCHDB_URL" \
	-user "$COUCHDB_USER" -password "$COUCHDB_PASSWORD" -label "$BENCH_STORE_DESC" \
	-n "$n" -catch-up-only >"$out"
sed -n '/^| measure/,/^$/p' "$out"
rate=$(grep -F "catch-up rate (from couchnpm's start)" "$out" | head -1 | sed -E 's/.*\*\*([0-9.]+) packuments\/s\*\*.*/\1/')
if [[ -n "$rate" && "$BENCH_STORE" == couchdb ]]; then
	v=$(awk -v r="$rate" 'BEGIN { print (r >= 500) ? "met" : "missed" }')
	printf 'follower\t%s\t%s packuments/s (%d packuments)\n' "$v" "$rate" "$n" >>"$BENCH_TARGETS"
elif [[ -n "$rate" ]]; then
	# The target names CouchDB 3.5: other stores get the figure, no verdict.
	printf 'follower\tinfo\t%s packuments/s (%d packuments; the target names CouchDB 3.5)\n' "$rate" "$n" >>"$BENCH_TARGETS"
fi
exit 0
