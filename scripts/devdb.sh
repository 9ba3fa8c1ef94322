#!/usr/bin/env bash
# devdb.sh - PouchDB Server, the local CouchDB stand-in for development and tests.
#
# Standalone:
#   scripts/devdb.sh start [PORT]   start (or reuse) the server, create the admin,
#                                   print `export COUCHDB_URL=...` lines (eval-able)
#   scripts/devdb.sh stop           stop the server recorded in the data folder
#   scripts/devdb.sh status         exit 0 and print the URL when it is running
#   scripts/devdb.sh install        only install PouchDB Server (npm ci --prefix devdb)
#
# Sourced (scripts/run.sh does this):
#   source scripts/devdb.sh
#   devdb_start [PORT]   # exports COUCHDB_URL, COUCHDB_USER, COUCHDB_PASSWORD; sets
#                        # DEVDB_STARTED=1 if it launched the server, 0 if one was running
#   devdb_stop
#   devdb_acquire PID    # devdb_start, and count process PID as a user of the server
#   devdb_release PID    # forget PID; stop the server once no live user is left, if
#                        # devdb_acquire started it (never one started by hand)
#
# One PouchDB Server per data folder: several scripts/run.sh on one folder share it,
# and the last one to exit stops it (users are pid files in $DEVDB_DIR/users/; a
# lock file serialises start and stop where flock(1) exists).
#
# Settings (environment):
#   DEVDB_DIR          data folder (default: <repo>/.devdb/data); the pid is kept
#                      in $DEVDB_DIR/pouchdb-server.pid, its output in $DEVDB_DIR/server.log
#   DEVDB_PORT         port when none is given (default: a free port)
#   COUCHDB_USER       admin name (default: admin)
#   COUCHDB_PASSWORD   admin password (default: admin)
#   DEVDB_WAIT         seconds to wait for readiness (default: 60)
#
# Only Node/npm are needed (no curl): HTTP calls go through small `node -e` snippets.

DEVDB_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

devdb__log() { echo "devdb: $*" >&2; }

devdb__dir() {
	local d="${DEVDB_DIR:-$DEVDB_REPO_ROOT/.devdb/data}"
	mkdir -p "$d"
	(cd "$d" && pwd)
}

devdb__bin() { echo "$DEVDB_REPO_ROOT/devdb/node_modules/.bin/pouchdb-server"; }

# devdb__http METHOD URL [BODY] [USER PASSWORD] -> prints "STATUS BODY", exit 0 unless the
# connection failed.
devdb__http() {
	node -e '
const [method, url, body, user, pass] = process.argv.slice(1);
const u = new URL(url);
const headers = { "content-type": "application/json", accept: "application/json" };
if (user) headers.authorization = "Basic " + Buffer.from(user + ":" + pass).toString("base64");
const req = require("http").request({ method, hostname: u.hostname, port: u.port, path: u.pathname + u.search, headers, timeout: 5000 }, (res) => {
  let data = "";
  res.on("data", (c) => (data += c));
  res.on("end", () => { process.stdout.write(res.statusCode + " " + data.trim() + "\n"); });
});
req.on("timeout", () => req.destroy(new Error("timeout")));
req.on("error", (e) => { process.stderr.write(e.message + "\n"); process.exit(1); });
if (body) req.write(body);
req.end();
' "$@"
}

devdb__free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# devdb_install installs PouchDB Server without running install scripts: the only
# two are sqlite3's (compiled from source with a C toolchain for current Node, and
# used only by pouchdb-server --sqlite, which this project does not use) and
# leveldown's (which only picks its bundled prebuilt binary). leveldown is rebuilt
# only where no prebuilt binary loads; that build needs python3, make and a C++
# compiler.
devdb_install() {
	local dir="$DEVDB_REPO_ROOT/devdb"
	if [[ -x "$(devdb__bin)" ]]; then
		return 0
	fi
	devdb__log "installing PouchDB Server (npm ci --prefix devdb --ignore-scripts)..."
	npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund >&2 || return 1
	if ! node -e 'require(process.argv[1])' "$dir/node_modules/leveldown" >/dev/null 2>&1; then
		devdb__log "no prebuilt leveldown for this platform; building it (needs python3, make, a C++ compiler)..."
		npm rebuild --prefix "$dir" --foreground-scripts leveldown >&2 || return 1
	fi
}

# devdb__lock DIR / devdb__unlock: serialise start and stop on one data folder.
devdb__lock() {
	command -v flock >/dev/null 2>&1 || return 0
	exec {DEVDB_LOCK_FD}>"$1/lock"
	flock "$DEVDB_LOCK_FD"
}

devdb__unlock() {
	if [[ -n "${DEVDB_LOCK_FD:-}" ]]; then
		exec {DEVDB_LOCK_FD}>&-
		DEVDB_LOCK_FD=
	fi
}

# devdb__running DIR -> prints the pid when the recorded server is alive.
devdb__running() {
	local pidfile="$1/pouchdb-server.pid" pid
	[[ -f "$pidfile" ]] || return 1
	pid="$(cat "$pidfile")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

devdb_start() {
	local port="${1:-${DEVDB_PORT:-}}" dir pid url waited=0 wait_max="${DEVDB_WAIT:-60}" resp
	export COUCHDB_USER="${COUCHDB_USER:-admin}"
	export COUCHDB_PASSWORD="${COUCHDB_PASSWORD:-admin}"
	dir="$(devdb__dir)"
	devdb_install || return 1

	DEVDB_STARTED=0
	if pid="$(devdb__running "$dir")"; then
		url="$(cat "$dir/url" 2>/dev/null)"
		devdb__log "already running (pid $pid) at $url"
	else
		[[ -n "$port" ]] || port="$(devdb__free_port)" || return 1
		url="http://127.0.0.1:$port"
		# pouchdb-server writes config.json, log.txt and its LevelDB folders to its CWD.
		# It must not inherit the lock (it would hold it for its whole life).
		(
			devdb__unlock
			cd "$dir" && exec "$(devdb__bin)" --host 127.0.0.1 --port "$port" </dev/null >>"$dir/server.log" 2>&1
		) &
		pid=$!
		echo "$pid" >"$dir/pouchdb-server.pid"
		echo "$url" >"$dir/url"
		rm -f "$dir/managed" # a marker of an earlier server that is gone
		devdb__log "started pid $pid on $url (data in $dir)"
		DEVDB_STARTED=1
	fi

	# Wait (bounded) until GET / answers.
	until devdb__http GET "$url/" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			devdb__log "PouchDB Server exited; last output:"
			tail -n 30 "$dir/server.log" >&2
			rm -f "$dir/pouchdb-server.pid"
			return 1
		fi
		if ((waited >= wait_max * 4)); then
			devdb__log "not ready after ${wait_max}s; last output:"
			tail -n 30 "$dir/server.log" >&2
			[[ "$DEVDB_STARTED" == 1 ]] && devdb_stop
			return 1
		fi
		sleep 0.25
		waited=$((waited + 1))
	done

	# Create the admin unless the credentials already work (a reused data folder).
	resp="$(devdb__http GET "$url/_session" "" "$COUCHDB_USER" "$COUCHDB_PASSWORD")" || return 1
	if [[ "$resp" != 200*'"_admin"'* ]]; then
		resp="$(devdb__http PUT "$url/_config/admins/$COUCHDB_USER" "\"$COUCHDB_PASSWORD\"")" || return 1
		if [[ "$resp" != 200* ]]; then
			devdb__log "could not create admin $COUCHDB_USER: $resp"
			devdb__log "(a reused data folder with another admin? remove $dir or set COUCHDB_USER/COUCHDB_PASSWORD)"
			return 1
		fi
		devdb__log "created admin $COUCHDB_USER"
	fi
	export COUCHDB_URL="$url"
	return 0
}

devdb_stop() {
	local dir pid
	dir="$(devdb__dir)"
	if pid="$(devdb__running "$dir")"; then
		kill "$pid" 2>/dev/null
		for _ in $(seq 1 40); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
		devdb__log "stopped pid $pid"
	fi
	rm -f "$dir/pouchdb-server.pid"
}

# devdb_acquire PID: start (or reuse) the data folder's server and count PID as one
# of its users.
devdb_acquire() {
	local owner="$1" dir rc=0
	dir="$(devdb__dir)"
	devdb__lock "$dir"
	if devdb_start; then
		mkdir -p "$dir/users"
		: >"$dir/users/$owner"
		if [[ "$DEVDB_STARTED" == 1 ]]; then
			: >"$dir/managed" # started for its users: the last one out stops it
		fi
	else
		rc=1
	fi
	devdb__unlock
	return "$rc"
}

# devdb_release PID: forget PID (and users that are gone); stop the server when no
# live user is left and devdb_acquire had started it.
devdb_release() {
	local owner="$1" dir u left=0
	dir="$(devdb__dir)"
	devdb__lock "$dir"
	rm -f "$dir/users/$owner"
	for u in "$dir"/users/*; do
		[[ -e "$u" ]] || continue
		if kill -0 "${u##*/}" 2>/dev/null; then
			left=$((left + 1))
		else
			rm -f "$u"
		fi
	done
	if ((left > 0)); then
		devdb__log "PouchDB Server left running for $left other user(s) of $dir"
	elif [[ -f "$dir/managed" ]]; then
		devdb_stop
		rm -f "$dir/managed"
	fi
	devdb__unlock
}

devdb_main() {
	local cmd="${1:-}"
	shift || true
	case "$cmd" in
	start)
		devdb_start "$@" || return 1
		printf 'export COUCHDB_URL=%q\nexport COUCHDB_USER=%q\nexport COUCHDB_PASSWORD=%q\n' \
			"$COUCHDB_URL" "$COUCHDB_USER" "$COUCHDB_PASSWORD"
		;;
	stop) devdb_stop ;;
	status)
		local dir
		dir="$(devdb__dir)"
		if devdb__running "$dir" >/dev/null; then
			cat "$dir/url"
		else
			echo "not running" >&2
			return 1
		fi
		;;
	install) devdb_install ;;
	*)
		echo "usage: $0 start [PORT] | stop | status | install" >&2
		return 2
		;;
	esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -uo pipefail
	devdb_main "$@"
	exit $?
fi
