package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file starts Apache CouchDB nodes of its own — a three-node cluster,
// two single-node sites — from the release that scripts/test.sh names in
// its CouchDB pass (COUCHNPM_IT_COUCHDB_HOME). Without it the tests skip:
// PouchDB Server has no clustering.

// couchNode is an Apache CouchDB node started by a test.
type couchNode struct {
	t    *testing.T
	Port int
	URL  string // http://127.0.0.1:PORT, no credentials
	Dir  string
	env  []string
}

// couchHome is the unpacked CouchDB release, or skips the test.
func couchHome(t *testing.T) string {
	t.Helper()
	home := os.Getenv("COUCHNPM_IT_COUCHDB_HOME")
	if home == "" {
		t.Skip("needs an Apache CouchDB release: scripts/test.sh sets COUCHNPM_IT_COUCHDB_HOME in its CouchDB pass (COUCHDB_HOME or COUCHDB_RELEASE)")
	}
	if suite.couchUser == "" {
		t.Skip("needs the suite's CouchDB admin credentials (COUCHDB_USER, COUCHDB_PASSWORD) for the nodes it starts")
	}
	return home
}

// startCouchNodes starts n nodes with the suite's admin credentials. With
// cluster set they are joined into one cluster (n=3 copies of every
// shard); otherwise each is a single-node CouchDB of its own (a site).
func startCouchNodes(t *testing.T, n int, cluster bool) []*couchNode {
	t.Helper()
	home := couchHome(t)
	shared := []string{
		"COUCHDB_HOME=" + home,
		"COUCHDB_USER=" + suite.couchUser,
		"COUCHDB_PASSWORD=" + suite.couchPass,
		// One cookie per cluster: nodes of other tests never join it.
		"COUCHDB_COOKIE=couchnpm-" + randomHex(6),
	}
	if cluster {
		shared = append(shared, "CLUSTER=1", "COUCHDB_UUID="+randomHex(16), "COUCHDB_SECRET="+randomHex(16))
	}
	nodes := make([]*couchNode, n)
	for i := range nodes {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		nd := &couchNode{t: t, Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port),
			Dir: filepath.Join(t.TempDir(), "node"+strconv.Itoa(i+1)), env: shared}
		nodes[i] = nd
		t.Cleanup(nd.stop)
		if err := nd.start(); err != nil {
			t.Fatal(err)
		}
	}
	if !cluster {
		return nodes
	}
	for _, nd := range nodes[1:] {
		path := "/_node/_local/_nodes/" + url.PathEscape(fmt.Sprintf("couchdb_%d@127.0.0.1", nd.Port))
		if st, body, err := couchDoAt(nodes[0].URL, "PUT", path, []byte(`{}`), true); err != nil || st/100 != 2 {
			t.Fatalf("join node %d: %d %s %v", nd.Port, st, body, err)
		}
	}
	if st, body, err := couchDoAt(nodes[0].URL, "POST", "/_cluster_setup", []byte(`{"action":"finish_cluster"}`), true); err != nil || st/100 != 2 {
		t.Fatalf("finish_cluster: %d %s %v", st, body, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, nd := range nodes {
		for {
			_, body, err := couchDoAt(nd.URL, "GET", "/_membership", nil, true)
			var m struct {
				ClusterNodes []string `json:"cluster_nodes"`
			}
			if err == nil && json.Unmarshal(body, &m) == nil && len(m.ClusterNodes) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d does not see %d cluster nodes: %s %v", nd.Port, n, body, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nodes
}

// start starts (or restarts, on its data) the node and waits for /_up.
func (n *couchNode) start() error {
	cmd := exec.Command("bash", filepath.Join(suite.repoRoot, "scripts", "couchdb.sh"), "start", strconv.Itoa(n.Port), n.Dir)
	cmd.Env = append(envWithout(os.Environ(), "COUCHDB_", "CLUSTER"), n.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start CouchDB node on %d: %v\n%s", n.Port, err, out)
	}
	return nil
}

// stop stops the node (SIGTERM) and waits until it has exited.
func (n *couchNode) stop() {
	cmd := exec.Command("bash", filepath.Join(suite.repoRoot, "scripts", "couchdb.sh"), "stop", n.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Logf("stop CouchDB node on %d: %v\n%s", n.Port, err, out)
	}
}

// openConflicts counts the documents with open conflicts in the packages
// database of prefix on the CouchDB at base (the conflicts view).
func openConflicts(t *testing.T, base, prefix string) int {
	t.Helper()
	st, body, err := couchDoAt(base, "GET", "/"+url.PathEscape(prefix)+"/_design/couchnpm/_view/conflicts", nil, true)
	var v struct {
		Rows []json.RawMessage `json:"rows"`
	}
	if err != nil || st != 200 || json.Unmarshal(body, &v) != nil {
		t.Fatalf("conflicts view: %d %s %v", st, body, err)
	}
	return len(v.Rows)
}

// conflictCounts reads an instance's GET /-/conflicts/status.
func conflictCounts(t *testing.T, reg *registry) (resolved, dropped int) {
	t.Helper()
	h := reg.do("GET", "/-/conflicts/status", "", nil)
	var st struct {
		Resolved        int `json:"resolved"`
		DroppedVersions int `json:"dropped_versions"`
	}
	if h.Status != 200 || json.Unmarshal(h.Body, &st) != nil {
		t.Fatalf("GET /-/conflicts/status: %s", h)
	}
	return st.Resolved, st.DroppedVersions
}

// Promise: on a three-node CouchDB 3 cluster, two couchnpm instances in
// front of two different nodes acknowledge 50 of 50 concurrent publishes of
// one package while the third node is stopped and started again; no
// acknowledged version is lost, no conflict stays open, every read is
// answered throughout, and npm installs through either instance.
func TestClusterPublishesWhileANodeRestarts(t *testing.T) {
	nodes := startCouchNodes(t, 3, true)
	prefix := newPrefix()
	a := startRegistry(t, registryOpts{Prefix: prefix, CouchURL: nodes[0].URL})
	b := startRegistry(t, registryOpts{Prefix: prefix, CouchURL: nodes[1].URL})
	regs := []*registry{a, b}
	_, tok := rawAddUser(t, a, "clu")

	const pkg = "clusterpkg"
	const n = 50
	seed := markedTarball(t, pkg, "1.0.0", "v1.0.0")
	if h := a.do("PUT", "/"+pkg, tok, publishBodyWith(a, pkg, "1.0.0", seed)); !is2xx(h.Status) {
		t.Fatalf("seed publish: %s", h)
	}
	tarballs := map[string][]byte{"1.0.0": seed}
	bodies := map[string][]byte{}
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("1.%d.0", i)
		tarballs[v] = markedTarball(t, pkg, v, "v"+v)
		bodies[v] = publishBodyWith(a, pkg, v, tarballs[v])
	}

	var (
		mu       sync.Mutex
		acked    = map[string]bool{"1.0.0": true}
		failures []string
		pubs     statusCounts
		reads    statusCounts
		badReads []string
	)
	done := make(chan struct{})
	var readers sync.WaitGroup
	for i, reg := range regs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				h, err := reg.tryDo("GET", "/"+pkg, "", nil, 30*time.Second)
				reads.add(h, err)
				if err != nil || h.Status != 200 {
					mu.Lock()
					badReads = append(badReads, fmt.Sprintf("reader %d: %v %s", i, err, h))
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	// Node 3 goes down after the first ten acknowledgements and comes back
	// after thirty.
	ackCount := make(chan int, n)
	var nodeEvents []string
	var chaos sync.WaitGroup
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		stopped := false
		for c := range ackCount {
			if c == 10 && !stopped {
				nodes[2].stop()
				stopped = true
				nodeEvents = append(nodeEvents, fmt.Sprintf("node 3 stopped after %d acks", c))
			}
			if c == 30 && stopped {
				if err := nodes[2].start(); err != nil {
					t.Error(err)
				}
				nodeEvents = append(nodeEvents, fmt.Sprintf("node 3 started after %d acks", c))
			}
		}
	}()

	begin := time.Now()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("1.%d.0", i)
		reg := regs[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Stagger the starts over a few seconds so that the node's
			// stop and start fall inside the run.
			time.Sleep(time.Duration(i) * 60 * time.Millisecond)
			h, err := reg.tryDo("PUT", "/"+pkg, tok, bodies[v], 90*time.Second)
			pubs.add(h, err)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && is2xx(h.Status) {
				acked[v] = true
				ackCount <- len(acked) - 1
			} else {
				failures = append(failures, fmt.Sprintf("%s: %v %s", v, err, h))
			}
		}()
	}
	close(start)
	wg.Wait()
	close(ackCount)
	chaos.Wait()
	publishTime := time.Since(begin)

	// An install while the cluster settles, through the other instance.
	u := newNPMUser(t, b, "clu-install")
	proj := writeProject(t, map[string]string{pkg: "1.50.0"})
	if len(acked) == n+1 {
		u.mustRunIn(proj, "install", "--no-audit", "--no-fund")
		mustRequire(t, proj, pkg, "1.50.0", "v1.50.0")
	}

	// Convergence: both instances serve every acknowledged version and no
	// conflict stays open.
	var lost []string
	var open int
	converge := time.Now()
	for {
		lost = lost[:0]
		for _, reg := range regs {
			p := getPackument(t, reg, pkg, "")
			for v := range acked {
				if _, ok := p.Versions[v]; !ok {
					lost = append(lost, reg.URL+":"+v)
				}
			}
		}
		open = openConflicts(t, nodes[0].URL, prefix)
		if (len(lost) == 0 && open == 0) || time.Since(converge) > 60*time.Second {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	settle := time.Since(converge)
	close(done)
	readers.Wait()

	ra, da := conflictCounts(t, a)
	rb, db := conflictCounts(t, b)
	t.Logf("cluster: %d of %d publishes acknowledged in %s (%s); %s; reads %s; conflicts merged: %d (instance on node 1) + %d (node 2), versions dropped %d; lost %d; open conflicts %d, settled %s after the last publish",
		len(acked)-1, n, publishTime.Round(time.Millisecond), pubs.String(), strings.Join(nodeEvents, ", "), reads.String(),
		ra, rb, da+db, len(lost), open, settle.Round(time.Millisecond))

	if len(acked)-1 != n {
		t.Errorf("%d of %d publishes acknowledged; failures: %v", len(acked)-1, n, failures)
	}
	if len(lost) > 0 {
		t.Errorf("acknowledged versions missing after 60 s: %v", lost)
	}
	if open > 0 {
		t.Errorf("%d documents still have open conflicts after 60 s", open)
	}
	if len(badReads) > 0 {
		t.Errorf("%d reads were not answered with 200, e.g. %v", len(badReads), badReads[:min(5, len(badReads))])
	}
	if da+db > 0 {
		t.Errorf("%d versions reported as dropped: every publish here was of a distinct version", da+db)
	}
	// Every acknowledged tarball is served, with its bytes, by both.
	p := getPackument(t, b, pkg, "")
	for _, v := range []string{"1.0.0", "1.10.0", "1.25.0", "1.49.0"} {
		if acked[v] {
			checkTarball(t, regs[len(v)%2], p, pkg, v, tarballs[v])
		}
	}
}
