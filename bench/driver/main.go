// Command driver loads the benchmark's synthetic data set into couchnpm and
// Verdaccio by HTTP PUT, measures them (and the raw CouchDB document and
// attachment GETs) with wrk, times npm ci against both, and writes the
// results table. bench/run.sh starts the servers and runs it.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

type target struct {
	Label   string // couchnpm, verdaccio, couchdb
	Base    string // base URL (couchdb: the database URL)
	PID     int
	Auth    string // Authorization header value for reads ("" none)
	token   string // publish token
	isCouch bool
}

var (
	flagCouchnpm  = flag.String("couchnpm", "", "couchnpm base URL")
	flagVerdaccio = flag.String("verdaccio", "", "Verdaccio base URL")
	flagCouchDB   = flag.String("couchdb-db", "", "CouchDB URL of couchnpm's private database (raw document GETs)")
	flagCouchAuth = flag.String("couchdb-auth", "", "user:password for CouchDB")
	flagPIDs      = flag.String("pids", "", "couchnpm,verdaccio,couchdb process ids (RSS)")
	flagPprof     = flag.String("pprof", "", "couchnpm's pprof base URL (profiles of the measured runs)")
	flagSmall     = flag.Bool("small", false, "tiny data set and short runs (smoke mode)")
	flagOut       = flag.String("out", "bench/RESULTS.md", "where to write the results")
	flagWork      = flag.String("work", "bench/.work", "scratch folder")
	flagDuration  = flag.Duration("duration", 10*time.Second, "length of each measured wrk run")
	flagConns     = flag.Int("connections", 32, "wrk connections")
	flagSkipLoad  = flag.Bool("skip-load", false, "the data set is loaded already")
	flagBigCheck  = flag.Bool("big-check", false, "only load one over-5 MB packument into couchnpm and measure its abbreviated GET, appended to -out")
	flagStream    = flag.Bool("stream-check", false, "only the streaming check (f) against couchnpm, written to -json: run it on a freshly started couchnpm")
	flagStore     = flag.String("store", "pouchdb", "the store couchnpm runs on in this pass (pouchdb, couchdb): names the results")
	flagStoreDesc = flag.String("store-desc", "", "one line describing the store of this pass")
	flagJSON      = flag.String("json", "", "write this pass's results as JSON here (bench/run.sh; -report turns them into -out)")
	flagLoad      = flag.String("load", "couchnpm,verdaccio", "the servers to load the data set into (comma separated)")
	flagBareBin   = flag.String("bare-bin", "", "the built bench/bare server: started on the bytes couchnpm serves, measured as the limit column")
	flagReport    = flag.Bool("report", false, "only write -out from the passes' JSON and the scenario scripts' output under -work")
	flagStores    = flag.String("stores", "pouchdb,couchdb", "the passes in the report, in order (-report)")
	flagTotal     = flag.Duration("total", 0, "the whole run's duration, for the report (-report)")
	flagPackages  = flag.Int("packages", 200, "ordinary packages in the data set (not in -small)")
	flagVersions  = flag.Int("versions", 30, "versions of each ordinary package (not in -small)")
	flagMeasure   = flag.String("measure-path", "", "only measure GET of this path on -couchnpm (a 2 s warm-up, then -duration) and print one markdown row (for bench/scenarios scripts)")
	flagScenario  = flag.String("scenario", "", "the scenario's name in the row (-measure-path)")
	flagAccept    = flag.String("accept", "", "Accept header of -measure-path (with it, Accept-Encoding: gzip)")
	flagHeader    = flag.Bool("header", false, "print the table's header before the row (-measure-path)")
	flagCIRounds  = flag.Int("ci-rounds", 3, "npm ci runs against each server (in turns)")
	flagResolved  = flag.Bool("ci-lock-resolved", true, "the bench app's lockfile has resolved URLs (npm's default; false: npm ci fetches every packument first, as with omit-lockfile-registry-resolved)")
	flagCIOnly    = flag.Bool("ci-only", false, "only npm ci of the bench app against couchnpm, Verdaccio and the floor server: loads the ordinary packages (not with -skip-load) into the servers of -load, prints the npm ci table (and writes -json if set)")
	flagOnly      = flag.String("only", "", "measure only the scenarios whose name starts with this, e.g. \"(g)\" (with -skip-load on a loaded registry)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run() error {
	if *flagReport {
		passes, err := readPasses(*flagWork, strings.Split(*flagStores, ","))
		if err != nil {
			return err
		}
		md := report(passes, *flagTotal)
		fmt.Println(md)
		return os.WriteFile(*flagOut, []byte(md), 0o644)
	}
	var pids [3]int
	fmt.Sscanf(*flagPIDs, "%d,%d,%d", &pids[0], &pids[1], &pids[2])
	couchAuth := ""
	if *flagCouchAuth != "" {
		couchAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(*flagCouchAuth))
	}
	cn := &target{Label: "couchnpm", Base: strings.TrimRight(*flagCouchnpm, "/"), PID: pids[0]}
	vd := &target{Label: "verdaccio", Base: strings.TrimRight(*flagVerdaccio, "/"), PID: pids[1]}
	cd := &target{Label: "couchdb", Base: strings.TrimRight(*flagCouchDB, "/"), PID: pids[2], Auth: couchAuth, isCouch: true}

	var d *dataset
	dur := *flagDuration
	if *flagSmall {
		d = newDataset(10, 3, 1, 200, 5<<20)
	} else {
		d = newDataset(*flagPackages, *flagVersions, 2, 2000, 50<<20)
	}
	if err := os.MkdirAll(*flagWork, 0o755); err != nil {
		return err
	}
	if *flagStream {
		return streamCheck(d, cn, cd, dur)
	}
	if *flagMeasure != "" {
		return measurePath(cn, *flagMeasure, *flagScenario, *flagAccept, dur)
	}
	if *flagBigCheck {
		return bigCheck(d, cn, cd, dur)
	}
	if *flagCIOnly {
		return ciOnly(d, cn, vd)
	}
	started := time.Now()
	var toLoad []*target
	for _, t := range []*target{cn, vd} {
		if strings.Contains(","+*flagLoad+",", ","+t.Label+",") {
			toLoad = append(toLoad, t)
		}
	}
	loadBegin := time.Now()
	if !*flagSkipLoad {
		// The registries load at once (couchnpm's load is mostly CouchDB's
		// work, Verdaccio's its own single thread).
		errs := make(chan error, len(toLoad))
		for _, t := range toLoad {
			go func() {
				if t.Base == "" { // not measured (-verdaccio "" with -only)
					errs <- nil
					return
				}
				if err := login(t); err != nil {
					errs <- err
					return
				}
				begin := time.Now()
				if err := load(t, d); err != nil {
					errs <- fmt.Errorf("loading %s: %w", t.Label, err)
					return
				}
				logf("%s loaded in %v", t.Label, time.Since(begin).Round(time.Second))
				errs <- nil
			}()
		}
		for range toLoad {
			if err := <-errs; err != nil {
				return err
			}
		}
	}
	loadTook := time.Since(loadBegin)
	res := &results{LoadTook: loadTook, Loaded: *flagLoad, Store: *flagStore, StoreDesc: *flagStoreDesc, Dataset: d.describe(), HugeMB: d.HugeSize >> 20,
		Duration: dur, Conns: *flagConns, Small: *flagSmall, Machine: describeMachine()}
	var bare *target
	if *flagBareBin != "" {
		b, stop, err := startBare(d, cn)
		if err != nil {
			logf("bare server: %v", err)
			res.Notes = append(res.Notes, "the bare server did not start: "+err.Error())
		} else {
			defer stop()
			bare = b
		}
	}
	for _, accept := range []string{"application/json", corgi} {
		if st, _, body, err := do("GET", cn.Base+"/"+d.Big[0].Name, "", nil, "Accept", accept); err == nil && st == 200 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s (%d versions) as %s from couchnpm: %.1f MB uncompressed", d.Big[0].Name, len(d.Big[0].Versions), accept, float64(len(body))/(1<<20)))
		}
	}
	if st, _, body, err := do("GET", cd.Base+"/"+d.Big[0].Name, cd.Auth, nil); err == nil && st == 200 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s as stored in CouchDB: %.1f MB", d.Big[0].Name, float64(len(body))/(1<<20)))
	}
	res.Load = loadAvg()
	if err := measureAll(res, d, cn, vd, cd, bare, dur); err != nil {
		return err
	}
	if *flagOnly == "" { // a partial run measures the scenarios asked for only
		if err := npmCI(res, d, *flagCIRounds, true, cn, vd); err != nil {
			logf("npm ci: %v", err)
			res.Notes = append(res.Notes, "npm ci failed: "+err.Error())
		}
	}
	res.Notes = append(res.Notes, globalNotes...)
	res.Total = time.Since(started)
	return writeJSON(res)
}

// writeJSON writes v to -json (bench/run.sh's -report reads it).
func writeJSON(v any) error {
	if *flagJSON == "" {
		return fmt.Errorf("-json is needed: the report is written by -report")
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*flagJSON, b, 0o644)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Minute}

func do(method, u, auth string, body []byte, headers ...string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// login creates the benchmark user and keeps its token.
func login(t *target) error {
	name := "benchuser"
	body := mustJSON(map[string]any{"_id": "org.couchdb.user:" + name, "name": name, "password": "Bench-pw-12345", "email": "bench@example.com", "type": "user", "roles": []string{}})
	st, _, b, err := do("PUT", t.Base+"/-/user/org.couchdb.user:"+name, "", body)
	if err != nil {
		return err
	}
	if st == 409 || st == 401 || st == 403 { // exists: log in with the password
		st, _, b, err = do("PUT", t.Base+"/-/user/org.couchdb.user:"+name, "Basic "+base64.StdEncoding.EncodeToString([]byte(name+":Bench-pw-12345")), body)
		if err != nil {
			return err
		}
	}
	var out struct{ Token string }
	if st/100 != 2 || json.Unmarshal(b, &out) != nil || out.Token == "" {
		return fmt.Errorf("%s: adduser answered %d: %.300s", t.Label, st, b)
	}
	t.token = out.Token
	return nil
}

// load publishes the data set: every version by its own PUT, as npm
// publish does, four packages at a time. The 2,000-version packuments go
// in batches of versions per PUT where the registry takes that (couchnpm),
// one by one where it does not.
func load(t *target, d *dataset) error {
	jobs := make(chan pkgSpec)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				for _, v := range p.Versions {
					if err := publish(t, p, []string{v}); err != nil {
						select {
						case errc <- err:
						default:
						}
					}
				}
			}
		}()
	}
	all := append(append([]pkgSpec{}, d.Packages...), d.Huge)
	if *flagCIOnly { // npm ci installs the ordinary packages only
		all = d.Packages
	}
	for i, p := range all {
		jobs <- p
		if (i+1)%50 == 0 {
			logf("%s: %d/%d packages", t.Label, i+1, len(all))
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	if *flagCIOnly {
		return nil
	}
	// The big packuments load side by side (each one's versions in order).
	bigErr := make(chan error, len(d.Big))
	for _, p := range d.Big {
		go func() { bigErr <- loadBig(t, p) }()
	}
	for range d.Big {
		if err := <-bigErr; err != nil {
			return err
		}
	}
	return nil
}

func loadBig(t *target, p pkgSpec) error {
	const batch = 100
	oneByOne := false
	for i := 0; i < len(p.Versions); {
		n := min(batch, len(p.Versions)-i)
		if oneByOne {
			n = 1
		}
		err := publish(t, p, p.Versions[i:i+n])
		if err != nil && n > 1 {
			// One version per publish only (Verdaccio): do that.
			logf("%s: a publish of %d versions was refused; publishing %s one version at a time", t.Label, n, p.Name)
			oneByOne = true
			continue
		}
		if err != nil {
			return err
		}
		i += n
		if i%500 == 0 {
			logf("%s: %s: %d/%d versions", t.Label, p.Name, i, len(p.Versions))
		}
	}
	logf("%s: %s (%d versions) loaded", t.Label, p.Name, len(p.Versions))
	return nil
}

func publish(t *target, p pkgSpec, versions []string) error {
	body := publishBody(t.Base, p.Name, versions, p.Sizes, p.Pad)
	for attempt := 0; ; attempt++ {
		st, _, b, err := do("PUT", t.Base+"/"+url.PathEscape(p.Name), "Bearer "+t.token, body)
		if err == nil && st/100 == 2 {
			return nil
		}
		if err == nil && st == 403 && bytes.Contains(b, []byte("cannot publish over")) {
			return nil // loaded by an earlier run
		}
		if err == nil && (st == 409 && bytes.Contains(b, []byte("already")) || bytes.Contains(b, []byte("previously published"))) {
			return nil
		}
		if attempt >= 3 || (err == nil && st/100 == 4 && st != 409) {
			if err != nil {
				return err
			}
			return fmt.Errorf("%s: PUT %s@%v: %d %.300s", t.Label, p.Name, versions[0], st, b)
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// streamCheck measures (f) alone on a couchnpm process that has done
// nothing else (no publish bodies, no packument cache in its heap) and
// writes the result to -json.
func streamCheck(d *dataset, cn, cd *target, dur time.Duration) error {
	before := rssOf(cn.PID)
	reqs := []request{{Path: tarballPath(cn, d.Huge.Name, "1.0.0"), Headers: headersFor(cn, "")}}
	r, err := wrk(cn, reqs, 20, longDur(dur), "")
	if err != nil {
		return err
	}
	logf("fresh couchnpm, 20 clients on the %d MB tarball: %.0f req/s, %.0f MB/s, RSS %d MB before, peak %d MB", d.HugeSize>>20, r.ReqPerS, r.MBPerS, before>>20, r.PeakRSS>>20)
	return writeJSON(r)
}

func dur2(d time.Duration) string { return dur(d) }

// bigCheck loads one 2,000-version packument of over 5 MB into couchnpm
// and measures the warm abbreviated GET of it (target p99 < 50 ms).
func bigCheck(d *dataset, cn, cd *target, dur time.Duration) error {
	if err := login(cn); err != nil {
		return err
	}
	p := d.Big[0]
	p.Name = "bench-big5-0"
	if err := loadBig(cn, p); err != nil {
		return err
	}
	size := 0
	if st, _, body, err := do("GET", cd.Base+"/"+p.Name, cd.Auth, nil); err == nil && st == 200 {
		size = len(body)
	}
	corgiSize := 0
	if st, _, body, err := do("GET", cn.Base+"/"+p.Name, "", nil, "Accept", corgi); err == nil && st == 200 {
		corgiSize = len(body)
	}
	reqs := []request{{Path: pkgPath(cn, p.Name), Headers: headersFor(cn, corgi)}}
	if _, err := wrk(cn, reqs, 8, minDur(2*time.Second, dur), ""); err != nil {
		return err
	}
	r, err := wrk(cn, reqs, 8, dur, "")
	if err != nil {
		return err
	}
	logf("%s (%.1f MB stored): %.0f req/s p50 %v p99 %v", p.Name, float64(size)/(1<<20), r.ReqPerS, r.P50, r.P99)
	ok := "met"
	if r.P99 >= 50*time.Millisecond || size < 5<<20 {
		ok = "**missed**"
	}
	md := fmt.Sprintf("\n## Abbreviated GET of a packument over 5 MB\n\n%s: %d versions, %.1f MB as stored in CouchDB, %.1f MB abbreviated (uncompressed); warm, 8 connections, %v, gzip accepted:\n\n| req/s | MB/s | p50 | p99 | errors / non-2xx |\n|---:|---:|---:|---:|---:|\n| %.0f | %.0f | %s | %s | %d / %d |\n\nTarget p99 < 50 ms: %s.\n",
		p.Name, len(p.Versions), float64(size)/(1<<20), float64(corgiSize)/(1<<20), dur, r.ReqPerS, r.MBPerS, dur2(r.P50), dur2(r.P99), r.Errors, r.Non2xx, ok)
	f, err := os.OpenFile(*flagOut, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(md)
	return err
}

// measurePath measures one GET path on t and prints its markdown row, in
// the columns of the report's tables (a scenario script's building block).
func measurePath(t *target, path, name, accept string, dur time.Duration) error {
	reqs := []request{{Path: path, Headers: headersFor(t, accept)}}
	if _, err := wrk(t, reqs, *flagConns, minDur(2*time.Second, dur), ""); err != nil {
		return err
	}
	r, err := wrk(t, reqs, *flagConns, dur, "")
	if err != nil {
		return err
	}
	if name == "" {
		name = "GET " + path
	}
	if *flagHeader {
		fmt.Println("| scenario | server | req/s | MB/s | p50 | p99 | peak RSS | errors / non-2xx·3xx |\n|---|---|---:|---:|---:|---:|---:|---:|")
	}
	fmt.Printf("| %s | %s | %.0f | %.1f | %s | %s | %d MB | %d / %d |\n", name, t.Label, r.ReqPerS, r.MBPerS, dur2(r.P50), dur2(r.P99), r.PeakRSS>>20, r.Errors, r.Non2xx)
	return nil
}
