package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

type ciRun struct {
	Target  string
	Round   int // 1, 2, … (0: a pass written before rounds existed)
	Took    time.Duration
	PeakRSS int64
	// CPU time (user and system) of npm and of the server during the run
	// (0: not measured).
	NPMCPU, ServerCPU time.Duration
}

// results is one store's pass: what `-json` writes and `-report` reads.
type results struct {
	Store     string // pouchdb, couchdb
	StoreDesc string
	Dataset   string
	HugeMB    int
	Small     bool
	Duration  time.Duration
	Conns     int
	Machine   string
	Load      string // load average when this pass started measuring
	Runs      []wrkRun
	CI        []ciRun
	CILoad    []string // load average before and after the npm ci runs
	Resolved  bool     // the npm ci app's lockfile had resolved URLs
	Notes     []string
	Total     time.Duration // the driver's pass: load, measurements, npm ci
	LoadTook  time.Duration
	Loaded    string // the servers loaded in this pass
	// Stream is the streaming check on a fresh couchnpm (-stream-check).
	Stream *wrkRun `json:",omitempty"`
}

func describeMachine() string {
	var b strings.Builder
	model := ""
	if cpu, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(cpu), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if m, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.TrimPrefix(strings.Split(string(m), "\n")[0], "MemTotal:"))
	}
	fmt.Fprintf(&b, "- CPU: %s, %d cores (runtime.NumCPU)\n", model, runtime.NumCPU())
	fmt.Fprintf(&b, "- memory: %s; kernel %s\n", mem, cmdOut("uname", "-r"))
	fmt.Fprintf(&b, "- %s; node %s; npm %s; %s\n", runtime.Version(), cmdOut("node", "--version"), cmdOut("npm", "--version"), cmdOut("wrk", "-v"))
	b.WriteString("- every server, wrk and npm share the same cores: the numbers compare the servers with each other on this machine, not absolute capacity\n")
	return b.String()
}

func cmdOut(name string, args ...string) string {
	// wrk -v prints its version and exits 1: take any output.
	out, _ := exec.Command(name, args...).CombinedOutput()
	line := strings.TrimSpace(strings.Split(string(out), "\n")[0])
	if line == "" {
		return name + " ?"
	}
	return line
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func (r *results) find(scenario, target string) *wrkRun {
	for i := range r.Runs {
		if r.Runs[i].Scenario == scenario && r.Runs[i].Target == target {
			return &r.Runs[i]
		}
	}
	return nil
}

// get is the run of the scenario whose name starts with prefix ("(a)") on
// target; a zero run when it was not measured or failed.
func (r *results) get(prefix, target string) *wrkRun {
	for i := range r.Runs {
		if strings.HasPrefix(r.Runs[i].Scenario, prefix) && r.Runs[i].Target == target && r.Runs[i].Errors >= 0 {
			return &r.Runs[i]
		}
	}
	return &wrkRun{}
}

// ciTook is the median time of target's npm ci runs.
func (r *results) ciTook(target string) time.Duration { return medianCI(r.CI, target) }

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "n/a"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	default:
		return d.Round(time.Millisecond).String()
	}
}

// storeNames are the passes of bench/run.sh, in the report's order.
var storeNames = map[string]string{
	"pouchdb": "PouchDB Server",
	"couchdb": "Apache CouchDB 3.5",
}

func storeTitle(s string) string {
	if t, ok := storeNames[s]; ok {
		return t
	}
	return s
}

// pass is one store in the report: its results, or why it did not run,
// plus what the optional scenario scripts printed.
type pass struct {
	Store   string
	Res     *results
	NotRun  string
	Extra   []scenarioOutput
	Targets map[string]targetLine
	Order   []string // extra target ids in the order reported
}

type scenarioOutput struct{ Name, Markdown string }

type targetLine struct{ Status, Figure, Desc string }

// readPasses reads <in>/results/<store>.json (or <store>.notrun) and
// <in>/scenarios/<store>/ for every store.
func readPasses(in string, stores []string) ([]*pass, error) {
	var out []*pass
	for _, s := range stores {
		p := &pass{Store: s, Targets: map[string]targetLine{}}
		if b, err := os.ReadFile(filepath.Join(in, "results", s+".json")); err == nil {
			p.Res = &results{}
			if err := json.Unmarshal(b, p.Res); err != nil {
				return nil, fmt.Errorf("%s results: %w", s, err)
			}
			if b, err := os.ReadFile(filepath.Join(in, "results", s+"-stream.json")); err == nil {
				var st wrkRun
				if json.Unmarshal(b, &st) == nil {
					p.Res.Stream = &st
				}
			}
		} else if b, err := os.ReadFile(filepath.Join(in, "results", s+".notrun")); err == nil {
			p.NotRun = strings.TrimSpace(string(b))
		} else {
			p.NotRun = "no results (see the log of bench/run.sh)"
		}
		dir := filepath.Join(in, "scenarios", s)
		mds, _ := filepath.Glob(filepath.Join(dir, "*.md"))
		sort.Strings(mds)
		for _, f := range mds {
			b, _ := os.ReadFile(f)
			p.Extra = append(p.Extra, scenarioOutput{Name: strings.TrimSuffix(filepath.Base(f), ".md"), Markdown: strings.TrimSpace(string(b))})
		}
		if b, err := os.ReadFile(filepath.Join(dir, "targets.tsv")); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				f := strings.Split(strings.TrimSpace(l), "\t")
				if len(f) < 3 || f[0] == "" {
					continue
				}
				t := targetLine{Status: f[1], Figure: f[2]}
				if len(f) > 3 {
					t.Desc = f[3]
				}
				if _, seen := p.Targets[f[0]]; !seen {
					p.Order = append(p.Order, f[0])
				}
				p.Targets[f[0]] = t
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// report writes the whole RESULTS.md from every store's pass.
func report(passes []*pass, total time.Duration) string {
	var b strings.Builder
	b.WriteString("# couchnpm benchmark results\n\n")
	var first *results
	for _, p := range passes {
		if p.Res != nil && first == nil {
			first = p.Res
		}
	}
	if first != nil && first.Small {
		b.WriteString("**Smoke mode (BENCH_SMALL=1): tiny data set, short runs; not comparable.**\n\n")
	}
	fmt.Fprintf(&b, "Written by `bench/run.sh` on %s (total %v for every store).\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), total.Round(time.Second))
	if first != nil {
		b.WriteString("## Machine\n\n" + first.Machine)
		for _, p := range passes {
			if p.Res != nil {
				fmt.Fprintf(&b, "- load average when the %s pass started measuring: %s\n", storeTitle(p.Store), p.Res.Load)
			}
		}
		b.WriteString("\n## Data set and method\n\n" + first.Dataset + "\n\n")
		long := longDur(first.Duration)
		if first.Small {
			long = first.Duration
		}
		fmt.Fprintf(&b, "Each wrk run lasts %v after a 2 s warm-up (runs are kept short so that a run on both stores fits in about 20 minutes; the %d MB tarball runs of (f) and the streaming check last %v), %d connections (8 for (e), 20 for (f)), 2 threads; packument and tarball runs rotate over all packages. ", first.Duration, first.HugeMB, long, first.Conns)
		b.WriteString("The stores run one after the other: each gets its own couchnpm, loaded by HTTP PUT; Verdaccio (loaded once, its own disk storage) and the bare server are measured again in each store's pass, so every ratio compares runs made minutes apart on the same machine.\n\n")
		b.WriteString("Servers: `couchnpm`; `verdaccio` (Verdaccio 5, the comparison); `raw couchdb`, the request to the store that couchnpm's answer is built from (the packument document GET for (a), (b), (d), (e), the attachment GET for (c), (f)); `bare`, a plain Go net/http server (bench/bare) answering from memory with the very bytes couchnpm sent (gzipped abbreviated packuments, tarballs): the limit of a warm hit.\n\n")
	}
	for _, p := range passes {
		fmt.Fprintf(&b, "## Results on %s\n\n", storeTitle(p.Store))
		if p.Res == nil {
			fmt.Fprintf(&b, "Not run: %s.\n\n", p.NotRun)
			continue
		}
		fmt.Fprintf(&b, "%s Loading %s took %v; this pass's measurements %v.\n\n", p.Res.StoreDesc, p.Res.Loaded, p.Res.LoadTook.Round(time.Second), (p.Res.Total - p.Res.LoadTook).Round(time.Second))
		b.WriteString(p.Res.table())
	}
	b.WriteString("## Targets (issue 14)\n\n")
	b.WriteString(targetsTable(passes))
	for _, p := range passes {
		if len(p.Extra) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## Further scenarios on %s (bench/scenarios)\n\n", storeTitle(p.Store))
		for _, e := range p.Extra {
			fmt.Fprintf(&b, "### %s\n\n%s\n\n", e.Name, e.Markdown)
		}
	}
	for _, p := range passes {
		if p.Res == nil {
			continue
		}
		if prof := p.Res.profiles(); prof != "" {
			fmt.Fprintf(&b, "\n## Where couchnpm's time goes on %s (CPU profiles of the measured runs)\n\n%s", storeTitle(p.Store), prof)
		}
	}
	var notes []string
	for _, p := range passes {
		if p.Res == nil {
			continue
		}
		for _, n := range p.Res.Notes {
			notes = append(notes, storeTitle(p.Store)+": "+n)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

// table is one store's results: every scenario on every server, with
// couchnpm's ratios on its own row.
func (r *results) table() string {
	var b strings.Builder
	b.WriteString("| scenario | server | req/s | MB/s | p50 | p99 | peak RSS | errors / non-2xx·3xx | couchnpm ÷ Verdaccio | couchnpm ÷ raw CouchDB | couchnpm ÷ bare |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var scenarios []string
	for _, run := range r.Runs {
		if len(scenarios) == 0 || scenarios[len(scenarios)-1] != run.Scenario {
			scenarios = append(scenarios, run.Scenario)
		}
	}
	for _, sc := range scenarios {
		cn := r.find(sc, "couchnpm")
		for _, label := range []string{"couchnpm", "verdaccio", "couchdb", "bare"} {
			run := r.find(sc, label)
			if run == nil {
				continue
			}
			name := label
			if label == "couchdb" {
				name = "raw couchdb"
			}
			if run.Errors < 0 {
				fmt.Fprintf(&b, "| %s | %s | n/a | | | | | failed (see the log) | | | |\n", sc, name)
				continue
			}
			var rv, rc, rb string
			if run == cn {
				for _, x := range []struct {
					label string
					out   *string
				}{{"verdaccio", &rv}, {"couchdb", &rc}, {"bare", &rb}} {
					if o := r.find(sc, x.label); o != nil && o.Errors >= 0 {
						*x.out = ratio(cn.ReqPerS, o.ReqPerS)
					}
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.1f | %s | %s | %d MB | %d / %d | %s | %s | %s |\n", sc, name, run.ReqPerS, run.MBPerS, dur(run.P50), dur(run.P99), run.PeakRSS>>20, run.Errors, run.Non2xx, rv, rc, rb)
		}
	}
	if len(r.CI) > 0 {
		b.WriteString(ciTable(r))
	}
	if s := r.Stream; s != nil {
		fmt.Fprintf(&b, "\nStreaming check: a freshly started couchnpm (no publish bodies or warm cache in its heap) streams the %d MB tarball to 20 clients:\n\n| peak RSS while streaming | req/s | MB/s | p50 | p99 | errors / non-2xx |\n|---:|---:|---:|---:|---:|---:|\n| %d MB | %.1f | %.0f | %s | %s | %d / %d |\n",
			r.HugeMB, s.PeakRSS>>20, s.ReqPerS, s.MBPerS, dur(s.P50), dur(s.P99), s.Errors, s.Non2xx)
	}
	b.WriteString("\n")
	return b.String()
}

// goal is one target of issue 14: its check on one store's results, or
// only an id that a scenario script reports (Check nil).
type goal struct {
	ID    string
	Desc  string
	Check func(r *results) (ok, measured bool, figure string)
	// Info: a figure without a target (no met/missed).
	Info bool
}

func reqCheck(prefix, other string, factor float64) func(r *results) (bool, bool, string) {
	return func(r *results) (bool, bool, string) {
		a, o := r.get(prefix, "couchnpm"), r.get(prefix, other)
		if a.ReqPerS <= 0 || o.ReqPerS <= 0 {
			return false, false, ""
		}
		return a.ReqPerS >= factor*o.ReqPerS, true, fmt.Sprintf("%s (%.0f vs %.0f req/s)", ratio(a.ReqPerS, o.ReqPerS), a.ReqPerS, o.ReqPerS)
	}
}

var issueTargets = []goal{
	{ID: "tarball-verdaccio", Desc: "(c) tarball GET ≥ 3× Verdaccio", Check: reqCheck("(c)", "verdaccio", 3)},
	{ID: "tarball-couchdb", Desc: "(c) tarball GET ≥ 1× the raw CouchDB attachment GET", Check: reqCheck("(c)", "couchdb", 1)},
	{ID: "abbrev-verdaccio", Desc: "(a) warm abbreviated packument GET ≥ 20× Verdaccio", Check: reqCheck("(a)", "verdaccio", 20)},
	{ID: "abbrev-couchdb", Desc: "(a) warm abbreviated packument GET ≥ 1× the raw CouchDB document GET", Check: reqCheck("(a)", "couchdb", 1)},
	{ID: "abbrev-bare", Desc: "(a) warm abbreviated packument GET ≥ 0.6× the bare server", Check: reqCheck("(a)", "bare", 0.6)},
	{ID: "tarball-bare", Desc: "(c) tarball GET ÷ the bare server (no target: the distance to the limit)", Check: reqCheck("(c)", "bare", 0), Info: true},
	{ID: "npm-ci", Desc: "`npm ci` of the bench app ≤ 0.5× Verdaccio's time", Check: func(r *results) (bool, bool, string) {
		cn, vd := r.ciTook("couchnpm"), r.ciTook("verdaccio")
		if cn <= 0 || vd <= 0 {
			return false, false, ""
		}
		return cn.Seconds() <= 0.5*vd.Seconds(), true, fmt.Sprintf("%.2f× (%s vs %s)", cn.Seconds()/vd.Seconds(), dur(cn), dur(vd))
	}},
	{ID: "npm-ci-floor", Desc: "`npm ci` of the bench app: the floor server ÷ Verdaccio (no target: the least any server could reach)", Info: true, Check: func(r *results) (bool, bool, string) {
		fl, vd := r.ciTook("floor"), r.ciTook("verdaccio")
		if fl <= 0 || vd <= 0 {
			return false, false, ""
		}
		return true, true, fmt.Sprintf("%.2f× (%s vs %s); couchnpm ÷ the floor: %s", fl.Seconds()/vd.Seconds(), dur(fl), dur(vd), ratio(r.ciTook("couchnpm").Seconds(), fl.Seconds()))
	}},
	{ID: "pullthrough-cold", Desc: "cold pull-through install ≤ 1.1× the direct install"},
	{ID: "pullthrough-warm", Desc: "warm pull-through install ≤ 0.6× the direct install"},
	{ID: "follower", Desc: "follower ≥ 500 packuments/s"},
	{ID: "rss-stream", Desc: "couchnpm RSS < 100 MB while 20 clients stream 50 MB tarballs", Check: func(r *results) (bool, bool, string) {
		s := r.Stream
		if s == nil || s.PeakRSS <= 0 {
			return false, false, ""
		}
		fig := fmt.Sprintf("peak %d MB on a fresh process, %.0f MB/s of a %d MB tarball", s.PeakRSS>>20, s.MBPerS, r.HugeMB)
		if f := r.get("(f)", "couchnpm"); f.PeakRSS > 0 {
			fig += fmt.Sprintf("; %d MB on the loaded process of row (f)", f.PeakRSS>>20)
		}
		return s.PeakRSS < 100<<20, true, fig
	}},
	{ID: "big-packument", Desc: "(e) abbreviated GET of a 2,000-version packument (over 5 MB stored): p99 < 50 ms warm (earlier issue, kept)", Check: func(r *results) (bool, bool, string) {
		e := r.get("(e)", "couchnpm")
		if e.P99 <= 0 {
			return false, false, ""
		}
		return e.P99 < 50*time.Millisecond, true, fmt.Sprintf("p99 %s, %.0f req/s", dur(e.P99), e.ReqPerS)
	}},
	{ID: "page-warm", Desc: "(g) warm package page ≥ 5,000 req/s with p99 < 20 ms (issue 11)", Check: func(r *results) (bool, bool, string) {
		g := r.get("(g)", "couchnpm")
		if g.ReqPerS <= 0 || g.P99 <= 0 {
			return false, false, ""
		}
		fig := fmt.Sprintf("%.0f req/s, p99 %s", g.ReqPerS, dur(g.P99))
		// Fast failures are no pages: errors or other statuses miss it.
		if g.Errors > 0 || g.Non2xx > 0 {
			fig += fmt.Sprintf(", %d errors, %d non-2xx", g.Errors, g.Non2xx)
		}
		return g.ReqPerS >= 5000 && g.P99 < 20*time.Millisecond && g.Errors == 0 && g.Non2xx == 0, true, fig
	}},
}

// targetsTable has one row per target and one column per store; targets
// measured by a scenario script come from its targets.tsv lines.
func targetsTable(passes []*pass) string {
	var b strings.Builder
	b.WriteString("| target |")
	for _, p := range passes {
		b.WriteString(" " + storeTitle(p.Store) + " |")
	}
	b.WriteString("\n|---|")
	for range passes {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	cell := func(p *pass, t goal) string {
		if p.Res == nil {
			return "not run"
		}
		if l, ok := p.Targets[t.ID]; ok {
			if l.Status == "info" { // a figure without a verdict on this store
				return l.Figure
			}
			return mark(l.Status == "met") + ": " + l.Figure
		}
		if t.Check == nil {
			return "not measured (no scenario script reported it)"
		}
		ok, measured, fig := t.Check(p.Res)
		if !measured {
			return "not measured"
		}
		if t.Info {
			return fig
		}
		return mark(ok) + ": " + fig
	}
	all := append([]goal{}, issueTargets...)
	known := map[string]bool{}
	for _, t := range all {
		known[t.ID] = true
	}
	for _, p := range passes {
		for _, id := range p.Order {
			if !known[id] {
				known[id] = true
				desc := p.Targets[id].Desc
				if desc == "" {
					desc = id
				}
				all = append(all, goal{ID: id, Desc: desc})
			}
		}
	}
	for _, t := range all {
		b.WriteString("| " + t.Desc + " |")
		for _, p := range passes {
			b.WriteString(" " + strings.ReplaceAll(cell(p, t), "|", "\\|") + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *results) profiles() string {
	var b strings.Builder
	for _, run := range r.Runs {
		if run.Profile == "" {
			continue
		}
		if _, err := os.Stat(run.Profile); err != nil {
			continue
		}
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", run.Profile).CombinedOutput()
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var keep []string
		for _, l := range lines {
			if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
				continue
			}
			keep = append(keep, l)
		}
		fmt.Fprintf(&b, "%s, couchnpm (flat = own time):\n\n```\n%s\n```\n\n", run.Scenario, strings.Join(keep, "\n"))
	}
	return b.String()
}
