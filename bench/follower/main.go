// Command follower measures the mirror follower: how fast couchnpm in
// follow mode catches up with a fake upstream (bench/upstream) of 10,000
// packuments with a realistic size distribution, the steady-state lag of
// changes published while it follows, how fast it re-reads a feed whose
// packuments it has already (unchanged revisions skipped), and, with
// -replicate-couchdb, how fast CouchDB's _replicator copies the same
// packuments from an upstream CouchDB in replicate mode. bench/follower.sh
// runs it against a private CouchDB node or PouchDB Server.
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
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/couchnpm/couchnpm/bench/upstream"
)

var (
	flagBin       = flag.String("bin", "", "couchnpm binary")
	flagCouch     = flag.String("couchdb", "http://127.0.0.1:5984", "CouchDB base URL (the mirror's store)")
	flagUser      = flag.String("user", "admin", "CouchDB admin user")
	flagPassword  = flag.String("password", "admin", "CouchDB admin password")
	flagLabel     = flag.String("label", "CouchDB 3.5", "store label in the report")
	flagN         = flag.Int("n", 10000, "packuments")
	flagBig       = flag.Int("big", 10, "packuments over 5 MB")
	flagPage      = flag.Int("page-size", 1000, "--follow-page-size")
	flagLagFor    = flag.Duration("lag-for", 15*time.Second, "how long to publish changes for the steady-state lag")
	flagReplicate = flag.String("replicate-couchdb", "", "base URL of a second CouchDB (admin/admin) to measure replicate mode from (empty: skip)")
	flagOut       = flag.String("out", "", "append the report to this file too")
	flagKeep      = flag.Bool("keep", false, "keep the databases")
	flagExtra     = flag.String("args", "", "extra couchnpm arguments, space separated")
	flagProfile   = flag.String("profile", "", "write a 10 s CPU profile of couchnpm's catch-up here (needs -args \"--pprof 127.0.0.1:6071\")")
	flagOnly      = flag.Bool("catch-up-only", false, "measure the ceiling and the catch-up only")
)

func main() {
	flag.Parse()
	if *flagBin == "" {
		fail(errors.New("-bin is required"))
	}
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
	fmt.Fprintf(out, "\n### Follower on %s (%s)\n\n", *flagLabel, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(out, "Fake upstream: %d packuments, %.0f MB in all, mean %.1f KB, largest %.1f MB (%d over 5 MB); page size %d.\n\n",
		*flagN, float64(total)/1e6, float64(total)/float64(*flagN)/1e3, float64(largest)/1e6, *flagBig, *flagPage)

	prefix := fmt.Sprintf("bench-follow-%d", rand.IntN(1e6))
	c := &couchnpm{prefix: prefix}
	defer c.stop()
	if !*flagKeep {
		defer dropDBs(prefix)
	}
	// The ceiling: the same documents written straight into CouchDB by
	// _bulk_docs, 100 a request, four requests at once.
	raw := rawBulk(up, prefix+"-raw")
	fmt.Fprintf(out, "| measure | value |\n|---|---:|\n")
	fmt.Fprintf(out, "| ceiling: the same %d documents written straight into this CouchDB by _bulk_docs (100 per request, 4 at once) | %.1f s, %.0f docs/s |\n",
		*flagN, raw.Seconds(), float64(*flagN)/raw.Seconds())

	args := []string{"--mirror", "follow", "--upstream", upURL, "--upstream-changes", upURL + "/_changes",
		"--follow-page-size", fmt.Sprint(*flagPage)}
	if err := c.start(args); err != nil {
		fail(err)
	}
	if *flagProfile != "" {
		go profile(*flagProfile)
	}
	// Catch-up.
	st, elapsed, err := c.waitStatus(20*time.Minute, func(st status) bool {
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
		c.stop()
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
	c.stop()
	if err := deleteDoc(prefix+"-system", "follower:checkpoint"); err != nil {
		fail(err)
	}
	before := up.Requests()["packument"]
	if err := c.start(args); err != nil {
		fail(err)
	}
	st, elapsed, err = c.waitStatus(10*time.Minute, func(st status) bool {
		return st.State == "following" && st.Unchanged > 0
	})
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(out, "| re-read of the whole feed, all stored (unchanged skipped): %d changes | %.1f s (%.0f changes/s), %d upstream packument requests |\n",
		*flagN+len(lags), elapsed.Seconds(), float64(*flagN)/elapsed.Seconds(), up.Requests()["packument"]-before)
	c.stop()

	if *flagReplicate != "" {
		replicate(out, up, prefix, upURL)
	}
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
// _bulk_docs and returns how long it took.
func rawBulk(up *upstream.Server, db string) time.Duration {
	target := *flagCouch + "/" + db
	must(do(http.MethodPut, target, nil, nil))
	defer func() { _ = do(http.MethodDelete, target, nil, nil) }()
	names := up.Names()
	batches := make(chan []string)
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range batches {
				var buf bytes.Buffer
				buf.WriteString(`{"docs":[`)
				for i, n := range batch {
					if i > 0 {
						buf.WriteByte(',')
					}
					var m map[string]json.RawMessage
					_ = json.Unmarshal(up.Doc(n), &m)
					delete(m, "_rev")
					b, _ := json.Marshal(m)
					buf.Write(b)
				}
				buf.WriteString(`]}`)
				must(do(http.MethodPost, target+"/_bulk_docs", json.RawMessage(buf.Bytes()), nil))
			}
		}()
	}
	for i := 0; i < len(names); i += 100 {
		batches <- names[i:min(i+100, len(names))]
	}
	close(batches)
	wg.Wait()
	return time.Since(start)
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
				if getJSON(*flagCouch+"/"+prefix+"-mirror/"+url.PathEscape(it.name), &doc) == nil && doc.Rev == it.rev {
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

// replicate loads the packuments into an upstream CouchDB and times
// couchnpm's replicate mode copying them.
func replicate(out io.Writer, up *upstream.Server, prefix, upURL string) {
	src := strings.TrimRight(*flagReplicate, "/") + "/" + prefix + "-upstream"
	must(do(http.MethodPut, src, nil, nil))
	names := up.Names()
	start := time.Now()
	for i := 0; i < len(names); i += 200 {
		var docs []json.RawMessage
		for _, n := range names[i:min(i+200, len(names))] {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(up.Doc(n), &m)
			delete(m, "_rev")
			b, _ := json.Marshal(m)
			docs = append(docs, b)
		}
		must(do(http.MethodPost, src+"/_bulk_docs", map[string]any{"docs": docs}, nil))
	}
	fmt.Fprintf(out, "| replicate mode: %d packuments loaded into the upstream CouchDB by _bulk_docs | %.1f s |\n", len(names), time.Since(start).Seconds())

	c := &couchnpm{prefix: prefix + "r"}
	defer func() {
		c.stop()
		if !*flagKeep {
			_ = do(http.MethodDelete, src, nil, nil)
			dropDBs(prefix + "r")
		}
	}()
	u, _ := url.Parse(src)
	u.User = url.UserPassword(*flagUser, *flagPassword)
	if err := c.start([]string{"--mirror", "replicate", "--upstream", upURL, "--upstream-couchdb", u.String()}); err != nil {
		fail(err)
	}
	replID := "couchnpm-" + c.prefix + "-mirror"
	var info struct {
		State string `json:"state"`
		Info  struct {
			DocsWritten int64 `json:"docs_written"`
			DocsRead    int64 `json:"docs_read"`
		} `json:"info"`
	}
	deadline := time.Now().Add(20 * time.Minute)
	for {
		if getJSON(*flagCouch+"/_scheduler/docs/_replicator/"+replID, &info) == nil && info.Info.DocsWritten >= int64(len(names)) {
			break
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("replication did not finish: %+v", info))
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(c.started)
	fmt.Fprintf(out, "| replicate mode: %d docs written by CouchDB's _replicator (from couchnpm's start) | %.1f s, **%.0f docs/s** |\n",
		info.Info.DocsWritten, elapsed.Seconds(), float64(info.Info.DocsWritten)/elapsed.Seconds())
	var doc map[string]any
	_ = getJSON(*flagCouch+"/_replicator/"+replID, &doc)
	var params []string
	for _, k := range []string{"continuous", "worker_processes", "worker_batch_size", "http_connections", "connection_timeout", "checkpoint_interval", "use_checkpoints", "selector"} {
		if v, ok := doc[k]; ok {
			b, _ := json.Marshal(v)
			params = append(params, k+"="+string(b))
		}
	}
	fmt.Fprintf(out, "| replicate mode: the _replicator document's parameters | `%s` |\n", strings.Join(params, " "))
	var cfg map[string]any
	if getJSON(*flagCouch+"/_node/_local/_config/replicator", &cfg) == nil {
		var keys []string
		for _, k := range []string{"worker_processes", "worker_batch_size", "http_connections", "connection_timeout", "checkpoint_interval"} {
			if v, ok := cfg[k]; ok {
				keys = append(keys, k+"="+fmt.Sprint(v))
			}
		}
		fmt.Fprintf(out, "| replicate mode: the node's [replicator] settings (explicit ones; others default) | `%s` |\n", strings.Join(keys, " "))
	}
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

type couchnpm struct {
	prefix  string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{}
	started time.Time
}

func (c *couchnpm) start(args []string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.addr = ln.Addr().String()
	ln.Close()
	all := append([]string{"serve", "--listen", c.addr, "--db-prefix", c.prefix, "--log-level", "warn", "--instance-id", "bench"}, args...)
	all = append(all, strings.Fields(*flagExtra)...)
	c.cmd = exec.Command(*flagBin, all...)
	c.cmd.Env = append(os.Environ(), "COUCHDB_URL="+*flagCouch, "COUCHDB_USER="+*flagUser, "COUCHDB_PASSWORD="+*flagPassword)
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		return err
	}
	c.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(c.cmd, c.exited)
	return nil
}

func (c *couchnpm) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// waitStatus polls /-/mirror/status until done says so.
func (c *couchnpm) waitStatus(limit time.Duration, done func(status) bool) (status, time.Duration, error) {
	deadline := time.Now().Add(limit)
	var st status
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return st, 0, errors.New("couchnpm exited")
		default:
		}
		var raw map[string]json.RawMessage
		if getJSON("http://"+c.addr+"/-/mirror/status", &raw) == nil {
			b, _ := json.Marshal(raw)
			_ = json.Unmarshal(b, &st)
			// The unchanged count lives in the checkpoint document.
			var cp struct {
				Unchanged int64 `json:"packuments_unchanged"`
			}
			if getJSON(*flagCouch+"/"+c.prefix+"-system/follower:checkpoint", &cp) == nil {
				st.Unchanged = cp.Unchanged
			}
			if done(st) {
				return st, time.Since(c.started), nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return st, 0, fmt.Errorf("gave up after %s: %+v", limit, st)
}

var client = &http.Client{Timeout: 30 * time.Second}

func do(method, target string, body any, v any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(target, *flagCouch) || (*flagReplicate != "" && strings.HasPrefix(target, *flagReplicate)) {
		req.SetBasicAuth(*flagUser, *flagPassword)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %d %s", method, target, resp.StatusCode, b)
	}
	if v != nil {
		return json.NewDecoder(resp.Body).Decode(v)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func getJSON(target string, v any) error { return do(http.MethodGet, target, nil, v) }

func deleteDoc(db, id string) error {
	var d struct {
		Rev string `json:"_rev"`
	}
	target := *flagCouch + "/" + db + "/" + url.PathEscape(id)
	if err := getJSON(target, &d); err != nil {
		return err
	}
	return do(http.MethodDelete, target+"?rev="+d.Rev, nil, nil)
}

func dropDBs(prefix string) {
	var all []string
	if getJSON(*flagCouch+"/_all_dbs", &all) != nil {
		return
	}
	for _, db := range all {
		if db == prefix || strings.HasPrefix(db, prefix+"-") {
			_ = do(http.MethodDelete, *flagCouch+"/"+db, nil, nil)
		}
	}
}

func must(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "follower bench:", err)
	os.Exit(1)
}
