package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const corgi = "application/vnd.npm.install-v1+json"

// pageAccept is a browser's Accept for a page.
const pageAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// globalNotes are remarks found while measuring, printed under the table.
var globalNotes []string

// run is one wrk measurement.
type wrkRun struct {
	Scenario string
	Target   string
	ReqPerS  float64
	P50, P99 time.Duration
	Errors   int64
	Non2xx   int64
	Requests int64
	MBPerS   float64
	PeakRSS  int64 // bytes, of the target's process during the run
	Profile  string
}

type wrkOut struct {
	Requests      int64 `json:"requests"`
	DurationUS    int64 `json:"duration_us"`
	Bytes         int64 `json:"bytes"`
	P50US         int64 `json:"p50_us"`
	P99US         int64 `json:"p99_us"`
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	StatusErrors  int64 `json:"status_errors"`
	Timeouts      int64 `json:"timeouts"`
}

// request is one path of a scenario with its headers.
type request struct {
	Path    string
	Headers map[string]string
}

// scenario builds the requests of one measurement for one target.
type scenario struct {
	Name  string
	Conns int
	Build func(t *target) ([]request, error)
	// Profile: take a CPU profile of couchnpm during its run.
	Profile bool
	// OwnTime: note couchnpm's own request time during its run (from its
	// /metrics), apart from wrk's, which includes the machine's scheduling.
	OwnTime bool
	// Bare: measure the bare server too (it holds the bytes of (a) and (c)).
	Bare bool
	// Long: the run lasts at least hugeRunMin (50 MB downloads).
	Long bool
	// SeeEach: every request is made once before the warm-up run. A warm
	// page is one that was seen: its per-package readings (dependents,
	// download chart, tarball cache state) are made on its first view,
	// which on a slow store can outlast the 2 s warm-up and land in the
	// measured run.
	SeeEach bool
}

// hugeRunMin is the shortest measured run of the 50 MB tarball: 20 clients
// on a store that streams 50–100 MB/s (CouchDB 3.5 here) finish one round
// of downloads in 10–20 s, so a shorter run would count almost none.
const hugeRunMin = 20 * time.Second

func longDur(dur time.Duration) time.Duration {
	if *flagSmall {
		return dur
	}
	return max(dur, hugeRunMin)
}

func pkgPath(t *target, name string) string {
	if t.isCouch {
		u, _ := url.Parse(t.Base)
		return u.Path + "/" + url.PathEscape(name)
	}
	return "/" + url.PathEscape(name)
}

func tarballPath(t *target, name, version string) string {
	file := name + "-" + version + ".tgz"
	if t.isCouch {
		u, _ := url.Parse(t.Base)
		return u.Path + "/" + url.PathEscape(name) + "/" + file
	}
	return "/" + url.PathEscape(name) + "/-/" + file
}

func hostOf(t *target) string {
	u, _ := url.Parse(t.Base)
	return u.Scheme + "://" + u.Host
}

// headersFor: packument requests accept gzip as npm's do; tarball
// requests (accept "") do not (a .tgz does not compress; asking makes
// PouchDB Server gzip it anyway).
func headersFor(t *target, accept string) map[string]string {
	h := map[string]string{}
	if accept != "" {
		h["Accept"] = accept
		h["Accept-Encoding"] = "gzip"
	}
	if t.Auth != "" {
		h["Authorization"] = t.Auth
	}
	return h
}

func measureAll(res *results, d *dataset, cn, vd, cd, bare *target, dur time.Duration) error {
	names := make([]string, 0, len(d.Packages))
	for _, p := range d.Packages {
		names = append(names, p.Name)
	}
	packuments := func(accept string, revalidate bool) func(t *target) ([]request, error) {
		return func(t *target) ([]request, error) {
			var reqs []request
			for _, n := range names {
				h := headersFor(t, accept)
				if t.isCouch {
					h["Accept"] = "application/json"
				}
				r := request{Path: pkgPath(t, n), Headers: h}
				if revalidate {
					st, hdr, _, err := do("GET", hostOf(t)+r.Path, t.Auth, nil, "Accept", h["Accept"], "Accept-Encoding", "gzip")
					if err != nil || st != 200 {
						return nil, fmt.Errorf("%s GET %s: %d %v", t.Label, r.Path, st, err)
					}
					etag := hdr.Get("ETag")
					if etag == "" {
						return nil, fmt.Errorf("%s sends no ETag: no revalidation", t.Label)
					}
					r.Headers["If-None-Match"] = etag
					if st, _, _, err := do("GET", hostOf(t)+r.Path, t.Auth, nil, "Accept", h["Accept"], "Accept-Encoding", "gzip", "If-None-Match", etag); err == nil && st != 304 && len(reqs) == 0 {
						globalNotes = append(globalNotes, fmt.Sprintf("%s answers a conditional GET of %s with %d, not 304: its (d) row measures full answers", t.Label, r.Path, st))
					}
				}
				reqs = append(reqs, r)
			}
			return reqs, nil
		}
	}
	tarballs := func(t *target) ([]request, error) {
		var reqs []request
		for _, p := range d.Packages {
			// an old version: the 20 KB tarballs
			reqs = append(reqs, request{Path: tarballPath(t, p.Name, p.Versions[0]), Headers: headersFor(t, "")})
		}
		return reqs, nil
	}
	big := func(t *target) ([]request, error) {
		h := headersFor(t, corgi)
		if t.isCouch {
			h["Accept"] = "application/json"
		}
		return []request{{Path: pkgPath(t, d.Big[0].Name), Headers: h}}, nil
	}
	// The web UI's package page as a browser asks for it; couchnpm only
	// (the bench's Verdaccio runs without its web UI, CouchDB has none).
	// Anonymous is issue 11's figure; signed-in (a session token, as the
	// web login's cookie resolves to) is measured beside it.
	pages := func(signedIn bool) func(t *target) ([]request, error) {
		return func(t *target) ([]request, error) {
			if t.Label != "couchnpm" {
				return nil, nil
			}
			auth := ""
			if signedIn {
				if t.token == "" { // -skip-load: no login yet
					if err := login(t); err != nil {
						return nil, err
					}
				}
				auth = "Bearer " + t.token
			}
			var reqs []request
			for _, n := range names {
				h := map[string]string{"Accept": pageAccept, "Accept-Encoding": "gzip"}
				if auth != "" {
					h["Authorization"] = auth
				}
				reqs = append(reqs, request{Path: pkgPath(t, n), Headers: h})
			}
			// A page, not the packument: a broken negotiation would
			// measure the JSON route under this row's name.
			st, hdr, _, err := do("GET", hostOf(t)+reqs[0].Path, auth, nil, "Accept", pageAccept)
			if err != nil || st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
				return nil, fmt.Errorf("%s GET %s as a browser: %d %q %v, want a 200 text/html page", t.Label, reqs[0].Path, st, hdr.Get("Content-Type"), err)
			}
			return reqs, nil
		}
	}
	huge := func(t *target) ([]request, error) {
		return []request{{Path: tarballPath(t, d.Huge.Name, "1.0.0"), Headers: headersFor(t, "")}}, nil
	}
	scenarios := []scenario{
		{Name: "(a) abbreviated packument GET (warm)", Conns: *flagConns, Build: packuments(corgi, false), Profile: true, Bare: true},
		{Name: "(b) full packument GET (warm)", Conns: *flagConns, Build: packuments("application/json", false)},
		{Name: "(c) tarball GET (20 KB)", Conns: *flagConns, Build: tarballs, Profile: true, Bare: true},
		{Name: "(d) 304 revalidation (abbreviated)", Conns: *flagConns, Build: packuments(corgi, true)},
		{Name: fmt.Sprintf("(e) abbreviated GET of a %d-version packument", len(d.Big[0].Versions)), Conns: 8, Build: big, Profile: true},
		{Name: fmt.Sprintf("(f) %d MB tarball, 20 clients", d.HugeSize>>20), Conns: 20, Build: huge, Long: true},
		{Name: "(g) package page (warm, text/html)", Conns: *flagConns, Build: pages(false), Profile: true, OwnTime: true, SeeEach: true},
		{Name: "(h) package page (warm, text/html, signed in)", Conns: *flagConns, Build: pages(true), OwnTime: true, SeeEach: true},
	}
	for _, sc := range scenarios {
		if *flagOnly != "" && !strings.HasPrefix(sc.Name, *flagOnly) {
			continue
		}
		targets := []*target{cn, vd, cd}
		if sc.Bare && bare != nil {
			targets = append(targets, bare)
		}
		for _, t := range targets {
			if t.Base == "" {
				continue // not measured in this run
			}
			reqs, err := sc.Build(t)
			if err != nil {
				logf("%s on %s: %v", sc.Name, t.Label, err)
				res.Runs = append(res.Runs, wrkRun{Scenario: sc.Name, Target: t.Label, Errors: -1})
				continue
			}
			if len(reqs) == 0 {
				continue
			}
			if sc.SeeEach {
				if err := seeEach(t, reqs); err != nil {
					logf("%s on %s: first views: %v", sc.Name, t.Label, err)
					res.Runs = append(res.Runs, wrkRun{Scenario: sc.Name, Target: t.Label, Errors: -1})
					continue
				}
			}
			// Warm up (fills caches), then measure.
			if _, err := wrk(t, reqs, sc.Conns, minDur(2*time.Second, dur), ""); err != nil {
				logf("%s on %s: warm-up: %v", sc.Name, t.Label, err)
				res.Runs = append(res.Runs, wrkRun{Scenario: sc.Name, Target: t.Label, Errors: -1})
				continue
			}
			prof := ""
			if sc.Profile && t.Label == "couchnpm" && *flagPprof != "" {
				prof = filepath.Join(*flagWork, "profile-"+*flagStore+"-"+strings.Fields(sc.Name)[0][1:2]+".pb.gz")
			}
			runDur := dur
			if sc.Long {
				runDur = longDur(dur)
			}
			var before histogram
			own := sc.OwnTime && t.Label == "couchnpm" && *flagPprof != ""
			if own {
				before, _ = requestHistogram(*flagPprof)
			}
			r, err := wrk(t, reqs, sc.Conns, runDur, prof)
			if err == nil && own {
				if after, herr := requestHistogram(*flagPprof); herr == nil {
					if note := ownTimeNote(sc.Name, *flagStore, before, after, r.P99); note != "" {
						globalNotes = append(globalNotes, note)
					}
				}
			}
			if err != nil {
				logf("%s on %s: %v", sc.Name, t.Label, err)
				res.Runs = append(res.Runs, wrkRun{Scenario: sc.Name, Target: t.Label, Errors: -1})
				continue
			}
			r.Scenario, r.Target = sc.Name, t.Label
			logf("%-45s %-10s %9.0f req/s  p50 %-9v p99 %-9v rss %d MB  errors %d non2xx %d", sc.Name, t.Label, r.ReqPerS, r.P50, r.P99, r.PeakRSS>>20, r.Errors, r.Non2xx)
			res.Runs = append(res.Runs, *r)
		}
	}
	return nil
}

// seeEach makes every request once, four at a time, and wants 200s.
func seeEach(t *target, reqs []request) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan request)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rq := range next {
				var hv []string
				for k, v := range rq.Headers {
					hv = append(hv, k, v)
				}
				st, _, _, err := do("GET", hostOf(t)+rq.Path, "", nil, hv...)
				if err == nil && st != 200 {
					err = fmt.Errorf("GET %s: status %d", rq.Path, st)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, rq := range reqs {
		next <- rq
	}
	close(next)
	wg.Wait()
	return firstErr
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// wrk runs wrk against t over reqs and samples the target's RSS meanwhile;
// with prof set, it also saves a CPU profile of couchnpm.
func wrk(t *target, reqs []request, conns int, dur time.Duration, prof string) (*wrkRun, error) {
	script, err := writeScript(reqs)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	threads := 2
	if conns < threads {
		threads = conns
	}
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(dur.Seconds())), "--timeout", "30s", "-s", script, hostOf(t))
	peak := sampleRSS(t.PID)
	profDone := make(chan struct{})
	if prof != "" {
		go func() {
			defer close(profDone)
			secs := max(1, int(dur.Seconds())-2)
			st, _, body, err := do("GET", strings.TrimRight(*flagPprof, "/")+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), "", nil)
			if err == nil && st == 200 {
				_ = os.WriteFile(prof, body, 0o644)
			}
		}()
	} else {
		close(profDone)
	}
	out, err := cmd.Output()
	peak.stop()
	<-profDone
	if err != nil {
		return nil, fmt.Errorf("wrk on %s: %v\n%s", t.Label, err, out)
	}
	var w wrkOut
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "WRKJSON "); ok {
			if err := json.Unmarshal([]byte(line), &w); err != nil {
				return nil, err
			}
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("wrk printed no summary:\n%s", out)
	}
	r := &wrkRun{Requests: w.Requests, P50: time.Duration(w.P50US) * time.Microsecond, P99: time.Duration(w.P99US) * time.Microsecond,
		Errors: w.ConnectErrors + w.ReadErrors + w.Timeouts, Non2xx: w.StatusErrors, PeakRSS: peak.max()}
	if w.DurationUS > 0 {
		r.ReqPerS = float64(w.Requests) / (float64(w.DurationUS) / 1e6)
		r.MBPerS = float64(w.Bytes) / (float64(w.DurationUS) / 1e6) / (1 << 20)
	}
	if prof != "" {
		r.Profile = prof
	}
	return r, nil
}

func luaString(s string) string {
	// Go's quoting is valid Lua for the ASCII we send.
	return strconv.Quote(s)
}

func writeScript(reqs []request) (string, error) {
	var b strings.Builder
	b.WriteString("local specs = {\n")
	for _, r := range reqs {
		b.WriteString("  {" + luaString(r.Path) + ", {")
		for k, v := range r.Headers {
			b.WriteString("[" + luaString(k) + "]=" + luaString(v) + ",")
		}
		b.WriteString("}},\n")
	}
	// Requests are formatted on first use: wrk sets the Host header only
	// after the script's main chunk ran.
	b.WriteString(`}
local reqs = nil
local i = 0
request = function()
  if reqs == nil then
    reqs = {}
    for k, s in ipairs(specs) do reqs[k] = wrk.format("GET", s[1], s[2]) end
  end
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
done = function(summary, latency, requests)
  io.write(string.format("WRKJSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"p50_us\":%d,\"p99_us\":%d,\"connect_errors\":%d,\"read_errors\":%d,\"status_errors\":%d,\"timeouts\":%d}\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.status, summary.errors.timeout))
end
`)
	f, err := os.CreateTemp(*flagWork, "wrk-*.lua")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return f.Name(), err
}

// rssOf is a process's resident set size in bytes (0 when unknown).
// rssSampler records the peak RSS of a process, sampled every 50 ms until
// stop.
type rssSampler struct {
	peak    atomic.Int64
	done    chan struct{}
	sampled chan struct{}
}

// sampleRSS starts sampling pid's RSS.
func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), sampled: make(chan struct{})}
	go func() {
		defer close(s.sampled)
		for {
			if rss := rssOf(pid); rss > s.peak.Load() {
				s.peak.Store(rss)
			}
			select {
			case <-s.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return s
}

// stop ends the sampling and waits for the last sample.
func (s *rssSampler) stop() {
	close(s.done)
	<-s.sampled
}

// max is the peak RSS seen, in bytes.
func (s *rssSampler) max() int64 { return s.peak.Load() }

func rssOf(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
