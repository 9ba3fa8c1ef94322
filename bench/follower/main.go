// Command follower measures the mirror follower: how fast couchnpm in
// follow mode catches up with a fake upstream (bench/upstream) of 10,000
// packuments with a realistic size distribution, the steady-state lag of
// changes published while it follows, how fast it re-reads a feed whose
// packuments it has already (unchanged revisions skipped).
// bench/scenarios/follower.sh runs it in bench/run.sh; replicate mode is
// measured by bench/replicate.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/couchnpm/couchnpm/bench/benchkit"
	"github.com/couchnpm/couchnpm/bench/upstream"
)

var (
	common      = benchkit.RegisterFlags()
	flagN       = flag.Int("n", 10000, "packuments")
	flagBig     = flag.Int("big", 10, "packuments over 5 MB")
	flagPage    = flag.Int("page-size", 1000, "--follow-page-size")
	flagLagFor  = flag.Duration("lag-for", 15*time.Second, "how long to publish changes for the steady-state lag")
	flagOut     = flag.String("out", "", "append the report to this file too")
	flagKeep    = flag.Bool("keep", false, "keep the databases")
	flagExtra   = flag.String("args", "", "extra couchnpm arguments, space separated")
	flagProfile = flag.String("profile", "", "write a 10 s CPU profile of couchnpm's catch-up here (needs -args \"--pprof 127.0.0.1:6071\")")
	flagOnly    = flag.Bool("catch-up-only", false, "measure the ceiling and the catch-up only")
)

// store is the mirror's store.
var store benchkit.Store

func main() {
	flag.Parse()
	common.Check("follower bench")
	store = common.Store
	var report bytes.Buffer
	out := io.MultiWriter(os.Stdout, &report)
	up := upstream.New(upstream.Config{Packages: *flagN, Big: *flagBig, Seed: 7})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	upURL := "http://" + ln.Addr().String()
	up.Bind(upURL)
	go func() { _ = http.Serve(ln, up) }()
	total, largest := up.TotalBytes()
	fmt.Fprintf(out, "\n### Follower on %s (%s)\n\n", common.Label, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(out, "Fake upstream: %d packuments, %.0f MB in all, mean %.1f KB, largest %.1f MB (%d over 5 MB); page size %d.\n\n",
		*flagN, float64(total)/1e6, float64(total)/float64(*flagN)/1e3, float64(largest)/1e6, *flagBig, *flagPage)

	prefix := fmt.Sprintf("bench-follow-%d", rand.IntN(1e6))
	c := &benchkit.Couchnpm{Bin: common.Bin, Store: store, Prefix: prefix, Extra: strings.Fields(*flagExtra)}
	defer c.Stop()
	if !*flagKeep {
		defer store.DropDBs(prefix)
	}
	// The ceiling: the same documents written straight into CouchDB by
	// _bulk_docs, 100 a request, four requests at once.
	raw := rawBulk(up, prefix+"-raw")
	fmt.Fprintf(out, "| measure | value |\n|---|---:|\n")
	fmt.Fprintf(out, "| ceiling: the same %d documents written straight into this CouchDB by _bulk_docs (100 per request, 4 at once) | %.1f s, %.0f docs/s |\n",
		*flagN, raw.Seconds(), float64(*flagN)/raw.Seconds())

	args := []string{"--mirror", "follow", "--upstream", upURL, "--upstream-changes", upURL + "/_changes",
		"--follow-page-size", fmt.Sprint(*flagPage)}
	if err := c.Start(args); err != nil {
		fail(err)
	}
	if *flagProfile != "" {
		go profile(*flagProfile)
	}
	// Catch-up.
	st, elapsed, err := waitStatus(c, 20*time.Minute, func(st status) bool {
		return st.State == "following" && st.FollowerWritten+st.Failures >= int64(*flagN)
	})
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(out, "| catch-up: %d packuments written, %d failures | %.1f s |\n", st.FollowerWritten, st.Failures, elapsed.Seconds())
	fmt.Fprintf(out, "| catch-up rate (from couchnpm's start) | **%.0f packuments/s** |\n", float64(st.FollowerWritten)/elapsed.Seconds())
	fmt.Fprintf(out, "| catch-up rate (the follower's own, /-/mirror/status) | %.0f packuments/s |\n", st.WrittenPerSecond)
	fmt.Fprintf(out, "| catch-up throughput | %.1f MB/s |\n", float64(total)/1e6/elapsed.Seconds())
	for _, f := range st.LastFailures {
		fmt.Fprintf(out, "| failure: %s | %s |\n", f.Package, strings.ReplaceAll(f.Error, "|", "/"))
	}

	if *flagOnly {
		c.Stop()
		writeOut(report.Bytes())
		return
	}
	// Steady state: changes published while following.
	lags := measureLag(up, prefix, *flagLagFor)
	slices.Sort(lags)
	if len(lags) > 0 {
		fmt.Fprintf(out, "| steady-state lag, %d changes published 5/s: median | %.2f s |\n", len(lags), lags[len(lags)/2].Seconds())
		fmt.Fprintf(out, "| steady-state lag: max | %.2f s |\n", lags[len(lags)-1].Seconds())
	}

	// Re-read of the whole feed with everything stored already.
	c.Stop()
	if err := deleteDoc(prefix+"-system", "follower:checkpoint"); err != nil {
		fail(err)
	}
	before := up.Requests()["packument"]
	if err := c.Start(args); err != nil {
		fail(err)
	}
	st, elapsed, err = waitStatus(c, 10*time.Minute, func(st status) bool {
		return st.State == "following" && st.Unchanged > 0
	})
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(out, "| re-read of the whole feed, all stored (unchanged skipped): %d changes | %.1f s (%.0f changes/s), %d upstream packument requests |\n",
		*flagN+len(lags), elapsed.Seconds(), float64(*flagN)/elapsed.Seconds(), up.Requests()["packument"]-before)
	c.Stop()

	writeOut(report.Bytes())
}

// writeOut appends the report to -out.
func writeOut(b []byte) {
	if *flagOut == "" {
		return
	}
	f, err := os.OpenFile(*flagOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fail(err)
	}
	_, _ = f.Write(b)
	_ = f.Close()
}

// profile saves a CPU profile of couchnpm 3 s into its catch-up.
func profile(file string) {
	time.Sleep(3 * time.Second)
	_, addr, _ := strings.Cut(*flagExtra, "--pprof ")
	addr, _, _ = strings.Cut(addr, " ")
	resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=10")
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// rawBulk writes every packument into a scratch database of the store with
// _bulk_docs, 100 a request, four requests at once, and returns how long it
// took.
func rawBulk(up *upstream.Server, db string) time.Duration {
	must(store.Do(http.MethodPut, "/"+db, nil, nil))
	defer func() { _ = store.Do(http.MethodDelete, "/"+db, nil, nil) }()
	took, err := benchkit.BulkLoad(store, db, up, 100, 4)
	must(err)
	return took
}

// measureLag publishes a change every 200 ms and waits for each to show in
// the mirror database.
func measureLag(up *upstream.Server, prefix string, d time.Duration) []time.Duration {
	type item struct {
		name, rev string
		at        time.Time
	}
	var mu sync.Mutex
	var pending []item
	var lags []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(d + 30*time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			items := slices.Clone(pending)
			mu.Unlock()
			for _, it := range items {
				var doc struct {
					Rev string `json:"couchnpm_upstream_rev"`
				}
				if store.Get("/"+prefix+"-mirror/"+url.PathEscape(it.name), &doc) == nil && doc.Rev == it.rev {
					mu.Lock()
					lags = append(lags, time.Since(it.at))
					pending = slices.DeleteFunc(pending, func(p item) bool { return p == it })
					mu.Unlock()
				}
			}
			mu.Lock()
			left := len(pending)
			mu.Unlock()
			if left == 0 && time.Now().After(deadline.Add(-30*time.Second)) {
				return
			}
		}
	}()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		name, rev := up.Publish(i * 37)
		mu.Lock()
		pending = append(pending, item{name, rev, time.Now()})
		mu.Unlock()
		time.Sleep(200 * time.Millisecond)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(pending) > 0 {
		fmt.Fprintf(os.Stderr, "follower bench: %d published changes never reached the mirror\n", len(pending))
	}
	return lags
}

type status struct {
	State            string  `json:"state"`
	FollowerWritten  int64   `json:"follower_written"`
	Failures         int64   `json:"failures"`
	WrittenPerSecond float64 `json:"written_per_second"`
	LastFailures     []struct {
		Package string `json:"package"`
		Error   string `json:"error"`
	} `json:"last_failures"`
	Unchanged int64
}

// waitStatus polls /-/mirror/status until done says so.
func waitStatus(c *benchkit.Couchnpm, limit time.Duration, done func(status) bool) (status, time.Duration, error) {
	deadline := time.Now().Add(limit)
	var st status
	for time.Now().Before(deadline) {
		if c.Exited() {
			return st, 0, errors.New("couchnpm exited")
		}
		var raw map[string]json.RawMessage
		if getAny(c.URL()+"/-/mirror/status", &raw) == nil {
			b, _ := json.Marshal(raw)
			_ = json.Unmarshal(b, &st)
			// The unchanged count lives in the checkpoint document.
			var cp struct {
				Unchanged int64 `json:"packuments_unchanged"`
			}
			if store.Get("/"+c.Prefix+"-system/follower:checkpoint", &cp) == nil {
				st.Unchanged = cp.Unchanged
			}
			if done(st) {
				return st, time.Since(c.Started), nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return st, 0, fmt.Errorf("gave up after %s: %+v", limit, st)
}

// getAny decodes the JSON answer of a GET without credentials.
func getAny(target string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("GET %s: %d", target, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func deleteDoc(db, id string) error {
	var d struct {
		Rev string `json:"_rev"`
	}
	path := "/" + db + "/" + url.PathEscape(id)
	if err := store.Get(path, &d); err != nil {
		return err
	}
	return store.Do(http.MethodDelete, path+"?rev="+d.Rev, nil, nil)
}

func must(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) { benchkit.Fail("follower bench", err) }
