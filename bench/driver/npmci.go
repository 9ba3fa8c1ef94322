package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ciApp is the bench app (a dependency on every ordinary package's latest
// version) set up for one server: its folder holds package.json, an .npmrc
// naming the server and a package-lock.json whose resolved URLs point at it.
type ciApp struct {
	t   *target
	dir string
	// cpuSelf: the server runs in the driver's process (the floor).
	cpuSelf bool
}

// npmCI times npm ci of the bench app against each target, rounds times,
// each round in another order (ciOrders: a slow minute of the shared
// machine does not fall on one server only, and no server always follows
// the same one). Every run starts with an empty npm cache and no
// node_modules, the previous run's files deleted and synced to disk (their
// writeback would otherwise slow the next run down). With floor set, it
// also times the same npm ci against a server answering from memory with
// the same bytes (startFloor): what npm alone costs. Every app has the same
// lockfile but for the host of its resolved URLs; a difference fails the
// run (an unfair comparison).
func npmCI(res *results, d *dataset, rounds int, floor bool, targets ...*target) error {
	var apps []*ciApp
	for _, t := range targets {
		a, err := prepareCI(d, t)
		if err != nil {
			return err
		}
		apps = append(apps, a)
	}
	if floor && len(apps) > 0 && apps[0].t.Label == "couchnpm" {
		fl, stop, err := startFloor(d, apps[0])
		if err != nil {
			return fmt.Errorf("floor server: %w", err)
		}
		defer stop()
		a, err := cloneCI(apps[0], fl)
		if err != nil {
			return err
		}
		a.cpuSelf = true
		apps = append(apps, a)
	}
	if err := sameLocks(apps); err != nil {
		return err
	}
	res.Resolved = *flagResolved
	res.CILoad = append(res.CILoad, loadAvg())
	orders := ciOrders(len(apps))
	for round := range rounds {
		for _, k := range orders[round%len(orders)] {
			a := apps[k]
			c, err := a.run()
			if err != nil {
				return err
			}
			c.Round = round + 1
			logf("npm ci against %s (round %d): %v (npm CPU %v, server CPU %v, peak RSS %d MB)", a.t.Label, c.Round, c.Took.Round(time.Millisecond),
				c.NPMCPU.Round(time.Millisecond), c.ServerCPU.Round(time.Millisecond), c.PeakRSS>>20)
			res.CI = append(res.CI, c)
		}
	}
	res.CILoad = append(res.CILoad, loadAvg())
	return nil
}

func prepareCI(d *dataset, t *target) (*ciApp, error) {
	deps := map[string]string{}
	for _, p := range d.Packages {
		deps[p.Name] = p.Latest()
	}
	a := &ciApp{t: t, dir: filepath.Join(*flagWork, "app-"+t.Label)}
	if err := a.setup(mustJSON(map[string]any{"name": "bench-app", "version": "1.0.0", "private": true, "dependencies": deps})); err != nil {
		return nil, err
	}
	lockCache := filepath.Join(*flagWork, "npm-cache-lock-"+t.Label)
	defer os.RemoveAll(lockCache)
	if out, err := npmRun(a.dir, lockCache, "install", "--package-lock-only", "--ignore-scripts"); err != nil {
		return nil, fmt.Errorf("%s: npm install --package-lock-only: %v\n%s", t.Label, err, out)
	}
	return a, nil
}

// cloneCI is a's app for t: a's package.json, and a's lockfile with a's
// base URL replaced by t's.
func cloneCI(a *ciApp, t *target) (*ciApp, error) {
	pj, err := os.ReadFile(filepath.Join(a.dir, "package.json"))
	if err != nil {
		return nil, err
	}
	lock, err := os.ReadFile(filepath.Join(a.dir, "package-lock.json"))
	if err != nil {
		return nil, err
	}
	b := &ciApp{t: t, dir: filepath.Join(*flagWork, "app-"+t.Label)}
	if err := b.setup(pj); err != nil {
		return nil, err
	}
	lock = bytes.ReplaceAll(lock, []byte(a.t.Base+"/"), []byte(t.Base+"/"))
	return b, os.WriteFile(filepath.Join(b.dir, "package-lock.json"), lock, 0o644)
}

func (a *ciApp) setup(packageJSON []byte) error {
	_ = os.RemoveAll(a.dir)
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.dir, "package.json"), packageJSON, 0o644); err != nil {
		return err
	}
	npmrc := "registry=" + a.t.Base + "/\naudit=false\nfund=false\nupdate-notifier=false\n"
	return os.WriteFile(filepath.Join(a.dir, ".npmrc"), []byte(npmrc), 0o644)
}

// run times one npm ci with an empty cache, as bench/RESULTS.md reports it.
func (a *ciApp) run() (ciRun, error) {
	cache := filepath.Join(*flagWork, "npm-cache-"+a.t.Label)
	clean := func() {
		_ = os.RemoveAll(cache)
		_ = os.RemoveAll(filepath.Join(a.dir, "node_modules"))
		syscall.Sync()
	}
	clean()
	defer clean()
	cpuPID := a.t.PID
	if a.cpuSelf {
		cpuPID = os.Getpid()
	}
	peak := sampleRSS(a.t.PID)
	cpu0 := cpuOf(cpuPID)
	begin := time.Now()
	out, npmCPU, err := npmRunCPU(a.dir, cache, "ci", "--ignore-scripts", "--prefer-online")
	took := time.Since(begin)
	serverCPU := cpuOf(cpuPID) - cpu0
	peak.stop()
	if err != nil {
		return ciRun{}, fmt.Errorf("%s: npm ci: %v\n%s", a.t.Label, err, out)
	}
	if cpuPID <= 0 {
		serverCPU = 0
	}
	return ciRun{Target: a.t.Label, Took: took, PeakRSS: peak.max(), NPMCPU: npmCPU, ServerCPU: serverCPU}, nil
}

// cpuOf is the CPU time (user and system) pid has used so far, 0 if
// unknown.
func cpuOf(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces): utime
	// and stime are the 14th and 15th of the line, in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux the bench runs on.
const clockTicks = 100

// lockPackage is what npm ci uses of a lockfile entry.
type lockPackage struct {
	Version   string `json:"version"`
	Resolved  string `json:"resolved"`
	Integrity string `json:"integrity"`
}

func readLock(a *ciApp) (map[string]lockPackage, error) {
	b, err := os.ReadFile(filepath.Join(a.dir, "package-lock.json"))
	if err != nil {
		return nil, err
	}
	var lock struct {
		Packages map[string]lockPackage `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("%s: package-lock.json: %w", a.t.Label, err)
	}
	return lock.Packages, nil
}

// sameLocks checks that every app installs the same packages (versions,
// integrity, resolved path) and that every resolved URL points at the app's
// own server.
func sameLocks(apps []*ciApp) error {
	var first map[string]lockPackage
	for i, a := range apps {
		pkgs, err := readLock(a)
		if err != nil {
			return err
		}
		norm := map[string]lockPackage{}
		for k, p := range pkgs {
			if k == "" {
				continue
			}
			rest, ok := strings.CutPrefix(p.Resolved, a.t.Base+"/")
			if !ok && p.Resolved != "" {
				return fmt.Errorf("%s: lockfile entry %s resolves to %s, not to the server under test", a.t.Label, k, p.Resolved)
			}
			p.Resolved = rest
			norm[k] = p
		}
		if i == 0 {
			first = norm
			continue
		}
		if len(norm) != len(first) {
			return fmt.Errorf("%s: lockfile has %d packages, %s's %d", a.t.Label, len(norm), apps[0].t.Label, len(first))
		}
		for k, p := range first {
			if norm[k] != p {
				return fmt.Errorf("%s: lockfile entry %s is %+v, %s's %+v", a.t.Label, k, norm[k], apps[0].t.Label, p)
			}
		}
	}
	return nil
}

// startFloor starts the floor server: a plain net/http server in this
// process answering from memory, with no registry work at all, the
// requests npm ci makes of a's server: the tarballs of a's lockfile (the
// data set's bytes, which npm checks against the lockfile's integrity, with
// Content-Length) and, for a
// lockfile without resolved URLs, their abbreviated packuments (a's, with
// its base URL replaced by the floor's, gzipped once at start as couchnpm
// sends them), on 127.0.0.1.
func startFloor(d *dataset, a *ciApp) (*target, func(), error) {
	specs := map[string]pkgSpec{}
	for _, p := range d.Packages {
		specs[p.Name] = p
	}
	pkgs, err := readLock(a)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	fl := &target{Label: "floor", Base: "http://" + ln.Addr().String()}
	type body struct {
		b       []byte
		ctype   string
		gzipped bool
	}
	files := map[string]body{}
	for k, p := range pkgs {
		name, ok := strings.CutPrefix(k, "node_modules/")
		if !ok || strings.Contains(name, "/node_modules/") {
			continue
		}
		st, h, pk, err := do("GET", a.t.Base+"/"+url.PathEscape(name), "", nil, "Accept", corgi, "Accept-Encoding", "identity")
		if err != nil {
			return nil, nil, err
		}
		if st != 200 {
			return nil, nil, fmt.Errorf("%s answered GET /%s with %d", a.t.Label, name, st)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(bytes.ReplaceAll(pk, []byte(a.t.Base+"/"), []byte(fl.Base+"/")))
		_ = zw.Close()
		files["/"+url.PathEscape(name)] = body{gz.Bytes(), h.Get("Content-Type"), true}
		var doc struct {
			Versions map[string]struct {
				Dist struct{ Tarball string } `json:"dist"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(pk, &doc); err != nil {
			return nil, nil, fmt.Errorf("%s: packument of %s: %w", a.t.Label, name, err)
		}
		tb := doc.Versions[p.Version].Dist.Tarball
		spec, ok := specs[name]
		if !ok || tb == "" {
			return nil, nil, fmt.Errorf("%s@%s is not in the data set or has no tarball URL", name, p.Version)
		}
		// The data set's bytes, not a GET from a's server: that would
		// warm its tarball cache before its first timed run.
		files[strings.TrimPrefix(tb, a.t.Base)] = body{tarball(name, p.Version, spec.Sizes[p.Version]), "application/octet-stream", false}
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.EscapedPath()]
		if !ok || r.Method != http.MethodGet || (f.gzipped && !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")) {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{f.ctype}
		if f.gzipped {
			h["Content-Encoding"] = []string{"gzip"}
		}
		h["Content-Length"] = []string{strconv.Itoa(len(f.b))}
		_, _ = w.Write(f.b)
	})}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	logf("floor server at %s (%d packuments and tarballs from memory)", fl.Base, len(files))
	// It runs in the driver's process: no RSS of its own to report.
	return fl, stop, nil
}

// medianCI is the median time of target's runs (0 without runs).
func medianCI(runs []ciRun, target string) time.Duration {
	return medianOf(runs, target, func(c ciRun) time.Duration { return c.Took })
}

// medianOf is the median of f over target's runs (0 without runs).
func medianOf(runs []ciRun, target string, f func(ciRun) time.Duration) time.Duration {
	var ts []time.Duration
	for _, c := range runs {
		if c.Target == target {
			ts = append(ts, f(c))
		}
	}
	if len(ts) == 0 {
		return 0
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	if len(ts)%2 == 1 {
		return ts[len(ts)/2]
	}
	return (ts[len(ts)/2-1] + ts[len(ts)/2]) / 2
}

// npmRun runs npm in dir with the given cache and the bench's own user
// config (npmUserConfig) instead of the user's ~/.npmrc, so that settings
// of the machine (e.g. omit-lockfile-registry-resolved) do not change what
// is measured.
func npmRun(dir, cache string, args ...string) (string, error) {
	out, _, err := npmRunCPU(dir, cache, args...)
	return out, err
}

// npmRunCPU is npmRun that also returns the CPU time (user and system) npm
// used.
func npmRunCPU(dir, cache string, args ...string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	userconfig, err := npmUserConfig()
	if err != nil {
		return "", 0, err
	}
	cmd := exec.CommandContext(ctx, "npm", append(args, "--cache", cache, "--no-audit", "--no-fund", "--loglevel", "error")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NPM_CONFIG_USERCONFIG="+userconfig)
	out, err := cmd.CombinedOutput()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return string(out), cpu, err
}

// npmUserConfig writes the npm user config of every npm the driver runs:
// npm's defaults but for the noise (update notifier, funding, audit) and,
// with -ci-lock-resolved=false, lockfiles without resolved URLs (then npm
// ci fetches every packument before its tarball).
func npmUserConfig() (string, error) {
	p, err := filepath.Abs(filepath.Join(*flagWork, "npmrc-user"))
	if err != nil {
		return "", err
	}
	c := "update-notifier=false\nfund=false\naudit=false\n"
	c += fmt.Sprintf("omit-lockfile-registry-resolved=%t\n", !*flagResolved)
	return p, os.WriteFile(p, []byte(c), 0o644)
}

// ciTable is the npm ci section of a pass's report: every run, the median
// of each server, and the ratios to Verdaccio and to the floor.
func ciTable(r *results) string {
	var b strings.Builder
	var order []string
	rounds := 0
	for _, c := range r.CI {
		if !contains(order, c.Target) {
			order = append(order, c.Target)
		}
		rounds = max(rounds, c.Round)
	}
	lock := "with resolved URLs, as npm writes it by default"
	if !r.Resolved {
		lock = "without resolved URLs (omit-lockfile-registry-resolved): npm fetches every packument before its tarball"
	}
	fmt.Fprintf(&b, "\n`npm ci --ignore-scripts --prefer-online` of the bench app, %d run(s) against each server, each round in another order; every run with an empty npm cache and no node_modules; the same lockfile but for the host, %s", rounds, lock)
	if len(r.CILoad) == 2 {
		fmt.Fprintf(&b, "; load average %s before, %s after", r.CILoad[0], r.CILoad[1])
	}
	b.WriteString(". couchnpm's first run starts with a cold tarball cache (the tarballs were published, never fetched). `floor` is a plain Go server answering from memory with the same bytes: what npm itself takes on this machine. CPU: user and system time of npm and of the server process during a run (couchnpm's store not counted; the floor runs inside bench/driver).\n\n")
	b.WriteString("| server | runs | median | ÷ Verdaccio | ÷ floor | npm CPU (median) | server CPU (median) | peak RSS of the server |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	vd, fl := r.ciTook("verdaccio"), r.ciTook("floor")
	for _, t := range order {
		var runs []string
		var peak int64
		for _, c := range r.CI {
			if c.Target == t {
				runs = append(runs, dur(c.Took))
				peak = max(peak, c.PeakRSS)
			}
		}
		m := r.ciTook(t)
		rss := "n/a"
		if peak > 0 {
			rss = fmt.Sprintf("%d MB", peak>>20)
		}
		cpu := func(f func(ciRun) time.Duration) string {
			if d := medianOf(r.CI, t, f); d > 0 {
				return dur(d)
			}
			return "n/a"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", t, strings.Join(runs, ", "), dur(m), ratio(m.Seconds(), vd.Seconds()), ratio(m.Seconds(), fl.Seconds()),
			cpu(func(c ciRun) time.Duration { return c.NPMCPU }), cpu(func(c ciRun) time.Duration { return c.ServerCPU }), rss)
	}
	if cn := r.ciTook("couchnpm"); cn > 0 && vd > 0 {
		fmt.Fprintf(&b, "\ncouchnpm ÷ Verdaccio time (medians): **%.2f×**", cn.Seconds()/vd.Seconds())
		if fl > 0 {
			fmt.Fprintf(&b, "; the floor ÷ Verdaccio: %.2f× (npm's own time with a server that costs nothing: what no registry can go below, but for noise)", fl.Seconds()/vd.Seconds())
		}
		b.WriteString("\n")
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ciOnly is -ci-only: the npm ci comparison alone, on small or large data
// sets, without the wrk runs (bench/run.sh runs it as part of each pass).
func ciOnly(d *dataset, targets ...*target) error {
	var ts []*target
	for _, t := range targets {
		if t.Base == "" {
			continue
		}
		ts = append(ts, t)
		if *flagSkipLoad || !strings.Contains(","+*flagLoad+",", ","+t.Label+",") {
			continue
		}
		if err := login(t); err != nil {
			return err
		}
		begin := time.Now()
		if err := load(t, d); err != nil {
			return fmt.Errorf("loading %s: %w", t.Label, err)
		}
		logf("%s loaded in %v", t.Label, time.Since(begin).Round(time.Second))
	}
	res := &results{Store: *flagStore, Dataset: d.describe(), Small: *flagSmall, Machine: describeMachine()}
	if err := npmCI(res, d, *flagCIRounds, true, ts...); err != nil {
		return err
	}
	fmt.Print(ciTable(res))
	if *flagJSON != "" {
		return writeJSON(res)
	}
	return nil
}

// ciOrders are the orders of the rounds: the rotations of 0..n-1, then
// those of n-1..0. Each run of n rounds puts every server once in every
// place; for n = 3, the 6 orders are all the permutations, so each server
// also follows each other one equally often.
func ciOrders(n int) [][]int {
	var out [][]int
	for _, rev := range []bool{false, true} {
		for r := range n {
			o := make([]int, n)
			for k := range n {
				o[k] = (k + r) % n
				if rev {
					o[k] = n - 1 - o[k]
				}
			}
			out = append(out, o)
		}
	}
	return out
}
