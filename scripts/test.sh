#!/usr/bin/env bash
# test.sh - the whole check: go vet, unit tests (with -race), then the integration suite.
#
# Works on a clean clone with only Go and Node/npm installed: the integration suite
# installs PouchDB Server (npm ci --prefix devdb) when needed and starts its own
# instance, unless COUCHDB_URL (+ COUCHDB_USER/COUCHDB_PASSWORD) points at a CouchDB.
# Every step runs even when an earlier one failed; the exit status is non-zero if any failed.
#
# Environment:
#   SKIP_INTEGRATION=1   run only vet + unit tests
#   GOTESTFLAGS          extra flags for both go test runs (e.g. -v, -run X)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

failed=()

echo "== go vet ./..."
go vet ./... || failed+=("go vet")

# Unit tests: every package except ./integration/... (that one runs exactly once, below).
mapfile -t unit_pkgs < <(go list ./... | grep -v '/integration\(/\|$\)')
if ((${#unit_pkgs[@]} > 0)); then
	echo "== go test -race (unit tests, ${#unit_pkgs[@]} packages)"
	# shellcheck disable=SC2086
	go test -race ${GOTESTFLAGS:-} "${unit_pkgs[@]}" || failed+=("unit tests")
else
	echo "== no unit test packages"
fi

if [[ "${SKIP_INTEGRATION:-}" == 1 ]]; then
	echo "== integration suite skipped (SKIP_INTEGRATION=1)"
else
	# Install PouchDB Server up front so npm's output is not mixed into go test's.
	if [[ -z "${COUCHDB_URL:-}" ]]; then
		# shellcheck source=scripts/devdb.sh
		source "$ROOT/scripts/devdb.sh"
		devdb_install || failed+=("PouchDB Server install")
	fi
	echo "== go test ./integration/..."
	# shellcheck disable=SC2086
	go test -count=1 -timeout 30m ${GOTESTFLAGS:-} ./integration/... || failed+=("integration tests")
fi

if ((${#failed[@]} > 0)); then
	echo "== FAILED: ${failed[*]}"
	exit 1
fi
echo "== all checks passed"
