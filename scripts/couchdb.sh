#!/usr/bin/env bash
# couchdb.sh - Apache CouchDB 3 nodes from a release, for tests, benchmarks and run.sh.
#
# The release is named by the environment, never looked for elsewhere:
#   COUCHDB_HOME      an unpacked release (a folder holding bin/couchdb), or
#   COUCHDB_RELEASE   a release tarball (`make release` output, .tar.gz), unpacked once
#                     into <repo>/.couchdb/ (gitignored)
# Without either, `couchdb.sh home` fails with one line and the callers skip CouchDB.
#
# Standalone:
#   scripts/couchdb.sh home                 print the unpacked release folder
#   scripts/couchdb.sh start PORT DATADIR   start one node; prints export lines for
#                                           COUCHDB_URL/COUCHDB_USER/COUCHDB_PASSWORD
#   scripts/couchdb.sh stop DATADIR         stop the node started with DATADIR
#   CLUSTER=1 scripts/couchdb.sh start ...  a node that can join a cluster (single_node off,
#                                           n=3); every node of one cluster must share
#                                           COUCHDB_UUID, COUCHDB_SECRET and COUCHDB_COOKIE
# Sourced: couchdb_home, couchdb_start PORT DATADIR, couchdb_stop DATADIR.
#
# Admin: COUCHDB_USER / COUCHDB_PASSWORD (default admin / admin). Limits are raised to
# what npm packuments need (max_document_size, max_http_request_size: 256 MB).
# Needs curl (to wait for /_up) and the libraries the release was built against.

COUCHDB_SH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

couchdb__log() { echo "couchdb: $*" >&2; }

# couchdb_home prints the folder of an unpacked release, unpacking COUCHDB_RELEASE once.
couchdb_home() {
	if [[ -n "${COUCHDB_HOME:-}" ]]; then
		[[ -x "$COUCHDB_HOME/bin/couchdb" ]] || {
			couchdb__log "COUCHDB_HOME=$COUCHDB_HOME holds no bin/couchdb"
			return 1
		}
		(cd "$COUCHDB_HOME" && pwd)
		return 0
	fi
	if [[ -z "${COUCHDB_RELEASE:-}" ]]; then
		couchdb__log "no Apache CouchDB release named (set COUCHDB_HOME or COUCHDB_RELEASE)"
		return 1
	fi
	[[ -f "$COUCHDB_RELEASE" ]] || {
		couchdb__log "COUCHDB_RELEASE=$COUCHDB_RELEASE is not a file"
		return 1
	}
	local name dest
	name="$(basename "$COUCHDB_RELEASE")"
	name="${name%.tar.gz}"
	name="${name%.tgz}"
	dest="$COUCHDB_SH_ROOT/.couchdb/$name"
	if [[ ! -x "$dest/bin/couchdb" ]]; then
		couchdb__log "unpacking $COUCHDB_RELEASE into $dest"
		rm -rf "$dest.tmp" && mkdir -p "$dest.tmp" &&
			tar -xzf "$COUCHDB_RELEASE" -C "$dest.tmp" --strip-components=1 &&
			rm -rf "$dest" && mv "$dest.tmp" "$dest" || {
			couchdb__log "could not unpack $COUCHDB_RELEASE"
			return 1
		}
	fi
	echo "$dest"
}

couchdb__uuid() { tr -d '-' </proc/sys/kernel/random/uuid; }

# couchdb_start PORT DATADIR: starts a node and waits until /_up answers. Exports
# COUCHDB_URL, COUCHDB_USER and COUCHDB_PASSWORD.
couchdb_start() {
	local port="${1:?port}" dir="${2:?data folder}" home
	home="$(couchdb_home)" || return 1
	mkdir -p "$dir/data" "$dir/etc" || return 1
	dir="$(cd "$dir" && pwd)"
	local user="${COUCHDB_USER:-admin}" pass="${COUCHDB_PASSWORD:-admin}"
	local node="couchdb_$port@127.0.0.1"
	if [[ ! -f "$dir/etc/local.ini" ]]; then
		# Writable, and read last: CouchDB hashes the admin password in place.
		printf '[couchdb]\nuuid = %s\n\n[chttpd_auth]\nsecret = %s\n\n[admins]\n%s = %s\n' \
			"${COUCHDB_UUID:-$(couchdb__uuid)}" "${COUCHDB_SECRET:-$(couchdb__uuid)}" "$user" "$pass" >"$dir/etc/local.ini"
	fi
	local single="true" cluster=$'[cluster]\nn = 1'
	if [[ "${CLUSTER:-0}" == 1 ]]; then
		single="false" cluster=""
	fi
	cat >"$dir/etc/instance.ini" <<INI
[couchdb]
database_dir = $dir/data
view_index_dir = $dir/data
single_node = $single
max_document_size = 268435456

[chttpd]
port = $port
bind_address = 127.0.0.1
max_http_request_size = 268435456

[httpd]
port = 0
bind_address = 127.0.0.1

[smoosh]
state_dir = $dir/data

$cluster
INI
	# The release's vm.args with this node's name and the cluster's cookie.
	sed -e "s/^-name .*/-name $node/" -e '/^-setcookie/d' "$home/etc/vm.args" >"$dir/etc/vm.args"
	echo "-setcookie ${COUCHDB_COOKIE:-couchnpm}" >>"$dir/etc/vm.args"
	(
		export COUCHDB_ARGS_FILE="$dir/etc/vm.args" ERL_EPMD_ADDRESS=127.0.0.1
		export COUCHDB_INI_FILES="$home/etc/default.ini $home/etc/default.d $home/etc/local.ini $dir/etc/instance.ini $dir/etc/local.ini"
		setsid nohup "$home/bin/couchdb" >>"$dir/couchdb.log" 2>&1 </dev/null &
		echo $! >"$dir/couchdb.pid"
	)
	local i=0 pid
	pid="$(cat "$dir/couchdb.pid")"
	until curl -fsS "http://127.0.0.1:$port/_up" >/dev/null 2>&1; do
		i=$((i + 1))
		if ((i > 240)) || ! kill -0 "$pid" 2>/dev/null; then
			couchdb__log "CouchDB did not come up on port $port; the last lines of $dir/couchdb.log:"
			tail -n 20 "$dir/couchdb.log" >&2
			return 1
		fi
		sleep 0.25
	done
	export COUCHDB_URL="http://127.0.0.1:$port" COUCHDB_USER="$user" COUCHDB_PASSWORD="$pass"
}

# couchdb_stop DATADIR: stops the node and waits for it to exit.
couchdb_stop() {
	local dir="${1:?data folder}" pid i=0
	[[ -f "$dir/couchdb.pid" ]] || return 0
	pid="$(cat "$dir/couchdb.pid")"
	kill "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && ((i < 100)); do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null
	rm -f "$dir/couchdb.pid"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -uo pipefail
	case "${1:-}" in
	home) couchdb_home ;;
	start)
		couchdb_start "${2:?usage: couchdb.sh start PORT DATADIR}" "${3:?usage: couchdb.sh start PORT DATADIR}" || exit 1
		printf 'export COUCHDB_URL=%q COUCHDB_USER=%q COUCHDB_PASSWORD=%q\n' "$COUCHDB_URL" "$COUCHDB_USER" "$COUCHDB_PASSWORD"
		;;
	stop) couchdb_stop "${2:?usage: couchdb.sh stop DATADIR}" ;;
	*)
		echo "usage: couchdb.sh home | start PORT DATADIR | stop DATADIR" >&2
		exit 2
		;;
	esac
fi
