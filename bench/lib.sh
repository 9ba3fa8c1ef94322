# bench/lib.sh - shell helpers of bench/run.sh and bench/npmci.sh (sourced;
# the caller defines log).

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

# start_verdaccio DIR: Verdaccio 5 (bench/verdaccio, pinned) on a free port,
# its config, storage and htpasswd in DIR/verdaccio, its output in
# DIR/verdaccio.log; sets VD_PORT and VD_PID and adds the pid to PIDS.
start_verdaccio() {
	local dir="$1"
	mkdir -p "$dir/verdaccio/storage"
	VD_PORT="$(free_port)"
	cat >"$dir/verdaccio/config.yaml" <<YAML
storage: $dir/verdaccio/storage
auth:
  htpasswd:
    file: $dir/verdaccio/htpasswd
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
	node bench/verdaccio/node_modules/verdaccio/bin/verdaccio --config "$dir/verdaccio/config.yaml" \
		--listen "127.0.0.1:$VD_PORT" >"$dir/verdaccio.log" 2>&1 &
	VD_PID=$!
	PIDS+=("$VD_PID")
	wait_http "http://127.0.0.1:$VD_PORT/-/ping" 60
}
