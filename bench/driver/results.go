package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type ciRun struct {
	Target  string
	Took    time.Duration
	PeakRSS int64
}

type results struct {
	dataset  *dataset
	duration time.Duration
	conns    int
	small    bool
	machine  string
	runs     []wrkRun
	ci       []ciRun
	notes    []string
	total    time.Duration
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
	load, _ := os.ReadFile("/proc/loadavg")
	cmdOut := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(strings.Split(string(out), "\n")[0])
	}
	fmt.Fprintf(&b, "- CPU: %s, %d cores (runtime.NumCPU)\n", model, runtime.NumCPU())
	fmt.Fprintf(&b, "- memory: %s; kernel %s\n", mem, cmdOut("uname", "-r"))
	fmt.Fprintf(&b, "- load average when measuring started: %s\n", strings.TrimSpace(string(load)))
	fmt.Fprintf(&b, "- %s; node %s; npm %s; %s\n", runtime.Version(), cmdOut("node", "--version"), cmdOut("npm", "--version"), cmdOut("wrk", "--version"))
	b.WriteString("- CouchDB: PouchDB Server (scripts/devdb.sh, the development stand-in; LevelDB on local disk), not Apache CouchDB 3\n")
	b.WriteString("- every server, wrk and npm share the same cores: the numbers compare the servers with each other on this machine, not absolute capacity\n")
	return b.String()
}

func (r *results) find(scenario, target string) *wrkRun {
	for i := range r.runs {
		if r.runs[i].Scenario == scenario && r.runs[i].Target == target {
			return &r.runs[i]
		}
	}
	return nil
}

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

func (r *results) markdown() string {
	var b strings.Builder
	b.WriteString("# couchnpm benchmark results\n\n")
	if r.small {
		b.WriteString("**Smoke mode (BENCH_SMALL=1): tiny data set, short runs; not comparable.**\n\n")
	}
	fmt.Fprintf(&b, "Written by `bench/run.sh` on %s (total %v).\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), r.total.Round(time.Second))
	b.WriteString("## Machine\n\n" + r.machine + "\n")
	d := r.dataset
	fmt.Fprintf(&b, "## Data set\n\n%d packages × %d versions (tarballs: 20 KB for old versions, 20 KB–5 MB skewed towards small for the latest), %d packuments of %d versions, one %d MB tarball; loaded into couchnpm and Verdaccio by HTTP PUT (npm's publish body). Each wrk run: %v after a warm-up, %d connections (8 for (e), 20 for (f)), 2 threads; packument and tarball runs rotate over all %d packages.\n\n",
		len(d.Packages), len(d.Packages[0].Versions), len(d.Big), len(d.Big[0].Versions), d.HugeSize>>20, r.duration, r.conns, len(d.Packages))
	b.WriteString("`couchdb` is the raw CouchDB request the registry's answer is built from: the packument document GET (`/registry/<name>`) for (a), (b), (d), (e) and the attachment GET for (c), (f).\n\n")
	b.WriteString("## Results\n\n")
	b.WriteString("| scenario | server | req/s | MB/s | p50 | p99 | peak RSS | errors / non-2xx·3xx | couchnpm ÷ Verdaccio | couchnpm ÷ CouchDB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var scenarios []string
	for _, run := range r.runs {
		if len(scenarios) == 0 || scenarios[len(scenarios)-1] != run.Scenario {
			scenarios = append(scenarios, run.Scenario)
		}
	}
	for _, sc := range scenarios {
		cn, vd, cd := r.find(sc, "couchnpm"), r.find(sc, "verdaccio"), r.find(sc, "couchdb")
		for _, run := range []*wrkRun{cn, vd, cd} {
			if run == nil {
				continue
			}
			rv, rc := "", ""
			if run == cn {
				if vd != nil {
					rv = ratio(cn.ReqPerS, vd.ReqPerS)
				}
				if cd != nil {
					rc = ratio(cn.ReqPerS, cd.ReqPerS)
				}
			}
			if run.Errors < 0 {
				fmt.Fprintf(&b, "| %s | %s | n/a | | | | | failed (see the log) | | |\n", sc, run.Target)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.1f | %s | %s | %d MB | %d / %d | %s | %s |\n", sc, run.Target, run.ReqPerS, run.MBPerS, dur(run.P50), dur(run.P99), run.PeakRSS>>20, run.Errors, run.Non2xx, rv, rc)
		}
	}
	if len(r.ci) > 0 {
		b.WriteString("\n### npm ci (lockfile present, empty npm cache)\n\n| server | time | peak RSS of the server |\n|---|---:|---:|\n")
		var cn, vd time.Duration
		for _, c := range r.ci {
			fmt.Fprintf(&b, "| %s | %s | %d MB |\n", c.Target, dur(c.Took), c.PeakRSS>>20)
			if c.Target == "couchnpm" {
				cn = c.Took
			}
			if c.Target == "verdaccio" {
				vd = c.Took
			}
		}
		if cn > 0 && vd > 0 {
			fmt.Fprintf(&b, "\ncouchnpm ÷ Verdaccio time: **%.2f×**\n", cn.Seconds()/vd.Seconds())
		}
	}
	b.WriteString("\n## Targets\n\n")
	b.WriteString(r.targets())
	if profiles := r.profiles(); profiles != "" {
		b.WriteString("\n## Where couchnpm's time goes (CPU profiles of the measured runs)\n\n" + profiles)
	}
	if len(r.notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

func (r *results) scenario(prefix string) string {
	for _, run := range r.runs {
		if strings.HasPrefix(run.Scenario, prefix) {
			return run.Scenario
		}
	}
	return ""
}

func (r *results) targets() string {
	var b strings.Builder
	check := func(what string, ok bool, detail string) {
		mark := "met"
		if !ok {
			mark = "**missed**"
		}
		fmt.Fprintf(&b, "- %s: %s (%s)\n", what, mark, detail)
	}
	get := func(prefix, target string) *wrkRun {
		if run := r.find(r.scenario(prefix), target); run != nil && run.Errors >= 0 {
			return run
		}
		return &wrkRun{}
	}
	a, av, ac := get("(a)", "couchnpm"), get("(a)", "verdaccio"), get("(a)", "couchdb")
	check("(a) abbreviated GET ≥ 20× Verdaccio", av.ReqPerS > 0 && a.ReqPerS >= 20*av.ReqPerS, fmt.Sprintf("%.0f vs %.0f req/s: %s", a.ReqPerS, av.ReqPerS, ratio(a.ReqPerS, av.ReqPerS)))
	check("(a) abbreviated GET ≥ 1× raw CouchDB document GET", ac.ReqPerS > 0 && a.ReqPerS >= ac.ReqPerS, fmt.Sprintf("%.0f vs %.0f req/s: %s", a.ReqPerS, ac.ReqPerS, ratio(a.ReqPerS, ac.ReqPerS)))
	c, cv := get("(c)", "couchnpm"), get("(c)", "verdaccio")
	check("(c) tarball GET ≥ 3× Verdaccio", cv.ReqPerS > 0 && c.ReqPerS >= 3*cv.ReqPerS, fmt.Sprintf("%.0f vs %.0f req/s: %s", c.ReqPerS, cv.ReqPerS, ratio(c.ReqPerS, cv.ReqPerS)))
	f := get("(f)", "couchnpm")
	check(fmt.Sprintf("couchnpm RSS < 100 MB while 20 clients stream %d MB tarballs", r.dataset.HugeSize>>20), f.PeakRSS > 0 && f.PeakRSS < 100<<20, fmt.Sprintf("peak %d MB, %.0f MB/s served", f.PeakRSS>>20, f.MBPerS))
	var cn, vd time.Duration
	for _, c := range r.ci {
		if c.Target == "couchnpm" {
			cn = c.Took
		} else if c.Target == "verdaccio" {
			vd = c.Took
		}
	}
	if cn > 0 && vd > 0 {
		check("npm ci ≤ 0.7× Verdaccio's time", cn.Seconds() <= 0.7*vd.Seconds(), fmt.Sprintf("%s vs %s: %.2f×", dur(cn), dur(vd), cn.Seconds()/vd.Seconds()))
	} else {
		check("npm ci ≤ 0.7× Verdaccio's time", false, "not measured")
	}
	e := get("(e)", "couchnpm")
	check("abbreviated GET of a 5 MB packument: p99 < 50 ms warm", e.P99 > 0 && e.P99 < 50*time.Millisecond, fmt.Sprintf("p99 %s, p50 %s, %.0f req/s with 8 connections", dur(e.P99), dur(e.P50), e.ReqPerS))
	return b.String()
}

func (r *results) profiles() string {
	var b strings.Builder
	for _, run := range r.runs {
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
