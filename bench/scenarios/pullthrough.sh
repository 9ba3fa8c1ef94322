#!/usr/bin/env bash
# Cold and warm pull-through install against a local fake upstream that
# waits 30 ms before every answer, beside the same install straight from it
# (bench/pullthrough). Gives the pullthrough-cold and pullthrough-warm targets.
set -euo pipefail
runs=2
[[ "${BENCH_SMALL:-}" == 1 ]] && runs=1
out="$BENCH_WORK/pullthrough.md"
go run ./bench/pullthrough -bin "$BENCH_COUCHNPM_BIN" -couchdb "$COUCHDB_URL" \
	-user "$COUCHDB_USER" -password "$COUCHDB_PASSWORD" -label "$BENCH_STORE_DESC" \
	-runs "$runs" -work "$BENCH_WORK/pt" >"$out"
sed -n '/^| install/,/^| (all runs/p' "$out"
ratio() { # the ÷ direct figure of a row
	grep -F "| through couchnpm, $1 mirror" "$out" | head -1 | sed -E 's/.*\*\*([0-9.]+)×\*\*.*/\1/'
}
cold=$(ratio cold)
warm=$(ratio warm)
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "met" : "missed" }'; }
[[ -n "$cold" ]] && printf 'pullthrough-cold\t%s\t%s× the direct install\n' "$(verdict "$cold" 1.1)" "$cold" >>"$BENCH_TARGETS"
[[ -n "$warm" ]] && printf 'pullthrough-warm\t%s\t%s× the direct install\n' "$(verdict "$warm" 0.6)" "$warm" >>"$BENCH_TARGETS"
exit 0
