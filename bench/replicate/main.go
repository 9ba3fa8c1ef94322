// Command replicate measures couchnpm's replicate mode: how fast CouchDB's
// own _replicator, set up by couchnpm with the parameters couchnpm gives
// it, copies the fake upstream's packuments (bench/upstream: the follower's
// data set, many small and ten over 5 MB) from an upstream CouchDB into
// the mirror database. It loads the upstream database by _bulk_docs (that
// load is the ceiling row: the same documents written straight into a
// CouchDB node), starts a couchnpm of its own with --mirror replicate, and
// polls the mirror database's doc_count until it holds them all.
// bench/scenarios/replicate.sh runs it against a second private node.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/bench/benchkit"
	"github.com/couchnpm/couchnpm/bench/upstream"
)

var (
	common     = benchkit.RegisterFlags()
	flagUp     = flag.String("upstream-couchdb", "", "base URL of the upstream CouchDB node (required; the same admin credentials)")
	flagN      = flag.Int("n", 10000, "packuments")
	flagBig    = flag.Int("big", 10, "packuments over 5 MB")
	flagLimit  = flag.Duration("limit", 10*time.Minute, "give up when the mirror does not hold every packument by then")
	flagUpDesc = flag.String("upstream-label", "Apache CouchDB 3.5", "the upstream node's label in the report")
)

const prog = "replicate bench"

// replicatorKeys are the _replicator document fields that tune a
// replication; the ones couchnpm does not set take the node's [replicator]
// settings.
var replicatorKeys = []string{"continuous", "create_target", "selector", "filter", "doc_ids", "since_seq",
	"worker_processes", "worker_batch_size", "http_connections", "connection_timeout", "retries_per_request",
	"checkpoint_interval", "use_checkpoints", "use_bulk_get"}

// nodeKeys are the [replicator] settings that apply where the document
// sets nothing, with CouchDB 3.5's defaults (default.ini).
var nodeKeys = []struct{ key, def string }{
	{"worker_processes", "4"}, {"worker_batch_size", "500"}, {"http_connections", "20"},
	{"connection_timeout", "30000"}, {"retries_per_request", "5"}, {"checkpoint_interval", "30000"},
	{"use_checkpoints", "true"}, {"use_bulk_get", "true"}, {"startup_jitter", "5000"}, {"interval", "60000"},
}

func main() {
	flag.Parse()
	common.Check(prog)
	if *flagUp == "" {
		fail(errors.New("-upstream-couchdb is required"))
	}
	store := common.Store
	upNode := benchkit.Store{URL: strings.TrimRight(*flagUp, "/"), User: store.User, Password: store.Password}

	up := upstream.New(upstream.Config{Packages: *flagN, Big: *flagBig, Seed: 7})
	// couchnpm needs an upstream registry URL in every mirror mode (tarballs
	// of packuments not yet replicated); the fake serves it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	upURL := "http://" + ln.Addr().String()
	up.Bind(upURL)
	go func() { _ = http.Serve(ln, up) }()
	total, largest := up.TotalBytes()

	out := os.Stdout
	fmt.Fprintf(out, "Data set: the follower's, %d packuments, %.0f MB in all, mean %.1f KB, largest %.1f MB (%d over 5 MB). "+
		"Upstream: a second private %s node on this machine holding them; couchnpm in `--mirror replicate --upstream-couchdb <that database>` on %s.\n\n",
		*flagN, float64(total)/1e6, float64(total)/float64(*flagN)/1e3, float64(largest)/1e6, *flagBig, *flagUpDesc, common.Label)

	prefix := fmt.Sprintf("bench-repl-%d", rand.IntN(1e6))
	srcDB := prefix + "-upstream"
	must(upNode.Do(http.MethodPut, "/"+srcDB, nil, nil))
	onExit(func() { _ = upNode.Do(http.MethodDelete, "/"+srcDB, nil, nil) })
	defer cleanUp()
	loaded, err := benchkit.BulkLoad(upNode, srcDB, up, 100, 4)
	must(err)
	fmt.Fprintf(out, "| measure | value |\n|---|---:|\n")
	fmt.Fprintf(out, "| ceiling: the same %d documents written straight into the upstream node by _bulk_docs (100 per request, 4 at once) | %.1f s, %.0f docs/s |\n",
		*flagN, loaded.Seconds(), float64(*flagN)/loaded.Seconds())

	c := &benchkit.Couchnpm{Bin: common.Bin, Store: store, Prefix: prefix}
	onExit(func() {
		c.Stop()
		// couchnpm's _replicator document outlives it: without this the
		// node would go on replicating into a deleted database.
		deleteDoc(store, "_replicator", replicationID(prefix))
		c.Drop()
	})
	src, _ := url.Parse(upNode.URL + "/" + srcDB)
	src.User = url.UserPassword(upNode.User, upNode.Password)
	if err := c.Start([]string{"--mirror", "replicate", "--upstream", upURL, "--upstream-couchdb", src.String()}); err != nil {
		fail(err)
	}
	mirrorDB := "/" + prefix + "-mirror"
	var first time.Duration
	deadline := time.Now().Add(*flagLimit)
	var count int64
	for {
		if n, err := packuments(store, mirrorDB); err == nil {
			count = n
			if count > 0 && first == 0 {
				first = time.Since(c.Started)
			}
			if count >= int64(*flagN) {
				break
			}
		}
		if c.Exited() {
			fail(errors.New("couchnpm exited"))
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("the mirror holds %d of %d packuments after %s", count, *flagN, *flagLimit))
		}
		time.Sleep(100 * time.Millisecond)
	}
	all := time.Since(c.Started)
	fmt.Fprintf(out, "| replicate mode: the mirror database holds all %d packuments (from couchnpm's start) | %.1f s, **%.0f docs/s** |\n",
		count, all.Seconds(), float64(count)/all.Seconds())
	if first > 0 && all > first {
		fmt.Fprintf(out, "| replicate mode: from the first document in the mirror to the last (without the set-up and the replicator's start-up jitter) | %.1f s after %.1f s, %.0f docs/s |\n",
			(all - first).Seconds(), first.Seconds(), float64(count)/(all-first).Seconds())
	}
	fmt.Fprintf(out, "| replicate mode throughput | %.1f MB/s |\n", float64(total)/1e6/all.Seconds())

	var sched struct {
		State string `json:"state"`
		Info  struct {
			DocsRead         int64 `json:"docs_read"`
			DocsWritten      int64 `json:"docs_written"`
			DocWriteFailures int64 `json:"doc_write_failures"`
		} `json:"info"`
	}
	if store.Get("/_scheduler/docs/_replicator/"+url.PathEscape(replicationID(prefix)), &sched) == nil {
		fmt.Fprintf(out, "| the replication's state (/_scheduler/docs) | %s: %d read, %d written, %d write failures |\n",
			sched.State, sched.Info.DocsRead, sched.Info.DocsWritten, sched.Info.DocWriteFailures)
	}
	var doc map[string]json.RawMessage
	if err := store.Get("/_replicator/"+url.PathEscape(replicationID(prefix)), &doc); err != nil {
		fail(fmt.Errorf("couchnpm's _replicator document: %w", err))
	}
	fmt.Fprintf(out, "| the parameters couchnpm sets in its _replicator document | `%s` |\n", docParams(doc))
	var cfg map[string]string
	_ = store.Get("/_node/_local/_config/replicator", &cfg)
	fmt.Fprintf(out, "| the rest: this node's [replicator] settings | `%s` |\n", nodeParams(cfg))
	fmt.Fprintf(out, "\nOne continuous pull replication run by the mirror's node; couchnpm sets no worker, batch or checkpoint parameter, so CouchDB's defaults apply (a job starts after up to `startup_jitter` ms).\n")
}

// docParams lists the tuning fields of a _replicator document that are set.
func docParams(doc map[string]json.RawMessage) string {
	var ps []string
	for _, k := range replicatorKeys {
		if v, ok := doc[k]; ok {
			ps = append(ps, k+"="+string(v))
		}
	}
	if len(ps) == 0 {
		return "none"
	}
	return strings.Join(ps, " ")
}

// nodeParams lists the node's [replicator] settings that tune a replication,
// marking the ones that are CouchDB's defaults (not set in any ini file).
func nodeParams(cfg map[string]string) string {
	var ps []string
	for _, k := range nodeKeys {
		if v, ok := cfg[k.key]; ok {
			ps = append(ps, k.key+"="+v)
		} else {
			ps = append(ps, k.key+"="+k.def+" (default)")
		}
	}
	return strings.Join(ps, " ")
}

// packuments is the number of documents in db that are not design
// documents (couchnpm puts its own into the mirror database).
func packuments(s benchkit.Store, db string) (int64, error) {
	var info struct {
		DocCount int64 `json:"doc_count"`
	}
	if err := s.Get(db, &info); err != nil {
		return 0, err
	}
	var ddocs struct {
		Rows []json.RawMessage `json:"rows"`
	}
	if err := s.Get(db+"/_design_docs", &ddocs); err != nil {
		return 0, err
	}
	return info.DocCount - int64(len(ddocs.Rows)), nil
}

// replicationID is the _replicator document id couchnpm uses for the mirror
// of an instance with this --db-prefix.
func replicationID(prefix string) string { return "couchnpm-" + prefix + "-mirror" }

func deleteDoc(s benchkit.Store, db, id string) {
	var d struct {
		Rev string `json:"_rev"`
	}
	path := "/" + db + "/" + url.PathEscape(id)
	if s.Get(path, &d) == nil {
		_ = s.Do(http.MethodDelete, path+"?rev="+d.Rev, nil, nil)
	}
}

// cleanups run at the end, last first, also when the program fails.
var cleanups []func()

func onExit(f func()) { cleanups = append(cleanups, f) }

func cleanUp() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func must(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	cleanUp()
	benchkit.Fail(prog, err)
}
