#!/usr/bin/env bash
# Cold and warm pull-through install against a local fake upstream that
# waits 30 ms before every answer, beside the same install straight from it
# (bench/pullthrough). Gives the pullthrough-cold and pullthrough-warm targets.
# With BENCH_REAL_UPSTREAM=<registry URL> the same three installs of a small
# real app (express, semver, debug, commander, @babel/code-frame) are also
# timed against that registry (network variance applies); the URL comes
# from the environment only and is never printed.
set -euo pipefail
runs=2
[[ "${BENCH_SMALL:-}" == 1 ]] && runs=1
out="$BENCH_WORK/pullthrough.md"
real=()
[[ -n "${BENCH_REAL_UPSTREAM:-}" ]] && real=(-real-upstream "${BENCH_REAL_UPSTREAM%/}")
go run ./bench/pullthrough -bin "$BENCH_COUCHNPM_BIN" -couchdb "$COUCHDB_URL" \
	-user "$COUCHDB_USER" -password "$COUCHDB_PASSWORD" -label "$BENCH_STORE_DESC" \
	-runs "$runs" -work "$BENCH_WORK/pt" "${real[@]}" >"$out"
# The fake upstream's table, then (with BENCH_REAL_UPSTREAM) the real one's
# sentence and table.
sed -n '/^| install/,/^| (all runs/p' "$out" | awk '/^\| install/ && n++ { exit } { print }'
if ((${#real[@]})); then
	echo
	sed -n '/^The real upstream/,$p' "$out"
fi
ratio() { # ROW [NTH]: the ÷ direct figure of the NTH table's row (1: the fake upstream's)
	grep -F "| $1 |" "$out" | sed -n "${2:-1}p" | sed -E 's/.*\*\*([0-9.]+)×\*\*.*/\1/'
}
secs() { # ROW NTH: the time of the NTH table's row, in seconds
	grep -F "| $1 |" "$out" | sed -n "${2}p" | sed -E 's/^\|[^|]*\|[^|]*\| ([0-9.]+) s \|.*/\1/'
}
cold=$(ratio "through couchnpm, cold mirror")
warm=$(ratio "through couchnpm, warm mirror")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "met" : "missed" }'; }
[[ -n "$cold" ]] && printf 'pullthrough-cold\t%s\t%s× the direct install\n' "$(verdict "$cold" 1.1)" "$cold" >>"$BENCH_TARGETS"
[[ -n "$warm" ]] && printf 'pullthrough-warm\t%s\t%s× the direct install\n' "$(verdict "$warm" 0.6)" "$warm" >>"$BENCH_TARGETS"
if ((${#real[@]})); then
	rcold=$(ratio "through couchnpm, cold mirror" 2)
	rwarm=$(ratio "through couchnpm, warm mirror" 2)
	rdirect=$(secs "direct from the upstream" 2)
	if [[ -n "$rcold" && -n "$rwarm" ]]; then
		printf 'pullthrough-real\tinfo\tcold %s×, warm %s× the direct install (%s s)\tpull-through against the real upstream (BENCH_REAL_UPSTREAM; no target of its own, network variance applies): cold and warm ÷ direct\n' \
			"$rcold" "$rwarm" "$rdirect" >>"$BENCH_TARGETS"
	fi
fi
exit 0
