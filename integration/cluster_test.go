//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

	// While node 3 is down, the real npm publishes two versions through
	// instance A and installs through instance B, beside the raw publishes.
	npmPub := withToken(t, a, "clu-npm-publish", tok)
	npmPkgs := map[string]string{}
	for _, v := range []string{"2.0.0", "2.1.0"} {
		npmPkgs[v] = writePackage(t, pkg, v, "v"+v)
	}
	npmInst := newNPMUser(t, b, "clu-npm-install")
	npmProj := writeProject(t, map[string]string{pkg: "1.0.0"})
	npmResults := make(chan npmResult, 3)
	var npmRuns sync.WaitGroup

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
				time.Sleep(20 * time.Millisecond) // the scenario: a reader's pace, not a wait
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
				npmRuns.Add(1)
				go func() {
					defer npmRuns.Done()
					for _, v := range []string{"2.0.0", "2.1.0"} {
						res := npmPub.runIn(npmPkgs[v], "publish", "--tag", "next")
						if res.Err == nil {
							mu.Lock()
							acked[v] = true
							mu.Unlock()
						}
						npmResults <- res
					}
					npmResults <- npmInst.runIn(npmProj, "install", "--no-audit", "--no-fund")
				}()
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
	npmRuns.Wait()
	close(npmResults)
	publishTime := time.Since(begin)
	npmRunsOK := 0
	for res := range npmResults {
		if res.Err != nil {
			t.Errorf("npm while node 3 was down: %s", res)
		} else {
			npmRunsOK++
		}
	}
	if npmRunsOK == 3 {
		mustRequire(t, npmProj, pkg, "1.0.0", "v1.0.0")
	}

	// An install while the cluster settles, through the other instance.
	u := newNPMUser(t, b, "clu-install")
	proj := writeProject(t, map[string]string{pkg: "1.50.0"})
	if len(acked) == n+3 {
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
	t.Logf("cluster: %d of %d publishes acknowledged in %s (raw: %s; npm publish ×2 and npm install while node 3 was down: %d of 3 ok); %s; reads %s; conflicts merged: %d (instance on node 1) + %d (node 2), versions dropped %d; lost %d; open conflicts %d, settled %s after the last publish",
		len(acked)-1, n+2, publishTime.Round(time.Millisecond), pubs.String(), npmRunsOK, strings.Join(nodeEvents, ", "), reads.String(),
		ra, rb, da+db, len(lost), open, settle.Round(time.Millisecond))

	if len(acked)-1 != n+2 {
		t.Errorf("%d of %d publishes acknowledged (%d raw, 2 through npm); failures: %v", len(acked)-1, n+2, n, failures)
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

// withCredentials returns base with the suite's admin credentials in it,
// as a --peer URL carries them.
func withCredentials(base string) string {
	u, _ := url.Parse(base)
	u.User = url.UserPassword(suite.couchUser, suite.couchPass)
	return u.String()
}

// waitFor polls cond every 50 ms until it holds or limit passes, and
// returns how long it took (limit+ when it never held).
func waitFor(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Promise: two sites, each a CouchDB with a couchnpm in front naming the
// other as --peer, act as one registry: accounts, tokens and packages
// travel both ways within seconds; different versions published at both
// sites at the same moment all end up at both; the same version published
// at both converges to one winner at both, with the other reported; no
// conflict stays open.
func TestTwoSitesActiveActive(t *testing.T) {
	nodes := startCouchNodes(t, 2, false)
	prefix := newPrefix()
	site := func(self, peer *couchNode) *registry {
		return startRegistry(t, registryOpts{Prefix: prefix, CouchURL: self.URL,
			ExtraArgs: []string{"--peer", withCredentials(peer.URL), "--replication-target", self.URL}})
	}
	a := site(nodes[0], nodes[1])
	b := site(nodes[1], nodes[0])

	// Every link runs at both sites.
	for _, reg := range []*registry{a, b} {
		if d, ok := waitFor(60*time.Second, func() bool {
			h := reg.do("GET", "/-/replication/status", "", nil)
			var st struct {
				Peers []struct{ DB, State string }
			}
			if json.Unmarshal(h.Body, &st) != nil || len(st.Peers) != 3 {
				return false
			}
			for _, p := range st.Peers {
				if p.State != "running" {
					return false
				}
			}
			return true
		}); !ok {
			t.Fatalf("%s: the peer replications are not all running after %s: %s", reg.URL, d, reg.do("GET", "/-/replication/status", "", nil))
		}
	}
	out, err := exec.Command(suite.bin, "replication", "status", "--url", a.URL).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "running") || !strings.Contains(string(out), "_users") {
		t.Errorf("couchnpm replication status: %v\n%s", err, out)
	}

	// An account and its token made at A work at B.
	user, tok := rawAddUser(t, a, "site")
	tokenLag, ok := waitFor(30*time.Second, func() bool {
		h, err := b.tryDo("GET", "/-/whoami", tok, nil, 5*time.Second)
		return err == nil && h.Status == 200 && strings.Contains(string(h.Body), user)
	})
	if !ok {
		t.Fatalf("a token created at site A does not work at site B after %s", tokenLag)
	}

	// A package published at A installs at B.
	const pkg = "sitepkg"
	var tarballsMu sync.Mutex // both sites publish at once below
	tarballs := map[string][]byte{}
	publish := func(reg *registry, v, marker string) httpResult {
		tgz := markedTarball(t, pkg, v, marker)
		tarballsMu.Lock()
		tarballs[reg.URL+v] = tgz
		tarballsMu.Unlock()
		h, err := reg.tryDo("PUT", "/"+pkg, tok, publishBodyWith(reg, pkg, v, tgz), 60*time.Second)
		if err != nil {
			t.Fatalf("publish %s at %s: %v", v, reg.URL, err)
		}
		return h
	}
	if h := publish(a, "1.0.0", "v1.0.0"); !is2xx(h.Status) {
		t.Fatalf("publish 1.0.0 at A: %s", h)
	}
	has := func(reg *registry, versions ...string) bool {
		h, err := reg.tryDo("GET", "/"+pkg, "", nil, 5*time.Second)
		if err != nil || h.Status != 200 {
			return false
		}
		var p packumentView
		if json.Unmarshal(h.Body, &p) != nil {
			return false
		}
		for _, v := range versions {
			if _, ok := p.Versions[v]; !ok {
				return false
			}
		}
		return true
	}
	publishLag, ok := waitFor(30*time.Second, func() bool { return has(b, "1.0.0") })
	if !ok {
		t.Fatalf("1.0.0 published at A is not at B after %s", publishLag)
	}
	// The cross-site lag, measured on five more packages published at A.
	var lags []time.Duration
	for i := range 5 {
		name := fmt.Sprintf("sitelag%d", i)
		if h := a.do("PUT", "/"+name, tok, publishBodyWith(a, name, "1.0.0", markedTarball(t, name, "1.0.0", "x"))); !is2xx(h.Status) {
			t.Fatalf("publish %s at A: %s", name, h)
		}
		lag, ok := waitFor(30*time.Second, func() bool {
			h, err := b.tryDo("GET", "/"+name, "", nil, 5*time.Second)
			return err == nil && h.Status == 200
		})
		if !ok {
			t.Fatalf("%s published at A is not at B after %s", name, lag)
		}
		lags = append(lags, lag.Round(time.Millisecond))
	}
	slices.Sort(lags)
	u := newNPMUser(t, b, "site-install")
	proj := writeProject(t, map[string]string{pkg: "1.0.0"})
	u.mustRunIn(proj, "install", "--no-audit", "--no-fund")
	mustRequire(t, proj, pkg, "1.0.0", "v1.0.0")

	// Different versions at both sites at the same moment: all at both.
	var wg sync.WaitGroup
	var ha, hb httpResult
	wg.Add(2)
	go func() { defer wg.Done(); ha = publish(a, "1.1.0", "v1.1.0") }()
	go func() { defer wg.Done(); hb = publish(b, "1.2.0", "v1.2.0") }()
	wg.Wait()
	if !is2xx(ha.Status) || !is2xx(hb.Status) {
		t.Fatalf("concurrent publishes: A %s, B %s", ha, hb)
	}
	bothLag, ok := waitFor(30*time.Second, func() bool {
		return has(a, "1.0.0", "1.1.0", "1.2.0") && has(b, "1.0.0", "1.1.0", "1.2.0")
	})
	if !ok {
		t.Fatalf("1.1.0 (A) and 1.2.0 (B) are not both at both sites after %s", bothLag)
	}

	// The same version at both sites at the same moment, with different
	// content: one winner at both, the other reported. (Should replication
	// win the race, one publish is refused as a republish: then try the
	// next number.)
	var same string
	for i := 3; i < 8 && same == ""; i++ {
		v := fmt.Sprintf("1.%d.0", i)
		wg.Add(2)
		go func() { defer wg.Done(); ha = publish(a, v, "A"+v) }()
		go func() { defer wg.Done(); hb = publish(b, v, "B"+v) }()
		wg.Wait()
		if is2xx(ha.Status) && is2xx(hb.Status) {
			same = v
		} else {
			t.Logf("%s: A %d, B %d (replication was faster); trying the next version", v, ha.Status, hb.Status)
		}
	}
	if same == "" {
		t.Fatal("no same-version race happened in five tries")
	}
	integrity := func(reg *registry) string {
		p := getPackument(t, reg, pkg, "")
		return p.manifest(same).Dist.Integrity
	}
	convergeLag, ok := waitFor(30*time.Second, func() bool {
		ia, ib := integrity(a), integrity(b)
		return ia != "" && ia == ib && openConflicts(t, nodes[0].URL, prefix) == 0 && openConflicts(t, nodes[1].URL, prefix) == 0
	})
	if !ok {
		for _, nd := range nodes {
			_, body, _ := couchDoAt(nd.URL, "GET", "/"+prefix+"/_design/couchnpm/_view/conflicts", nil, true)
			t.Logf("conflicts view at %s: %s", nd.URL, body)
		}
		for _, reg := range []*registry{a, b} {
			t.Logf("%s, log lines other than requests:\n%s", reg.URL, strings.Join(reg.logLinesExcept(`"message":"request"`), "\n"))
		}
		t.Fatalf("%s does not converge to one winner at both sites after %s: A %s, B %s", same, convergeLag, integrity(a), integrity(b))
	}
	winner := integrity(a)
	var kept []byte
	for _, reg := range []*registry{a, b} {
		if sri(tarballs[reg.URL+same]) == winner {
			kept = tarballs[reg.URL+same]
		}
	}
	if kept == nil {
		t.Fatalf("the winner's integrity %s is neither site's publish", winner)
	}
	for _, reg := range []*registry{a, b} {
		checkTarball(t, reg, getPackument(t, reg, pkg, ""), pkg, same, kept)
	}
	var dropped, resolved int
	if _, ok := waitFor(10*time.Second, func() bool {
		ra, da := conflictCounts(t, a)
		rb, db := conflictCounts(t, b)
		resolved, dropped = ra+rb, da+db
		return dropped > 0
	}); !ok {
		t.Errorf("the losing publish of %s is not reported by either site", same)
	}
	t.Logf("two sites: token usable at B %s after its creation at A; 1.0.0 visible at B %s after its publish at A, five more packages after %v (median %s); concurrent 1.1.0/1.2.0 at both after %s; same version %s converged after %s; conflicts merged %d, versions reported dropped %d",
		tokenLag.Round(time.Millisecond), publishLag.Round(time.Millisecond), lags, lags[len(lags)/2], bothLag.Round(time.Millisecond), same, convergeLag.Round(time.Millisecond), resolved, dropped)
}

// logLinesExcept returns the instance's log lines that do not contain
// skip, secrets redacted.
func (r *registry) logLinesExcept(skip string) []string {
	var out []string
	for _, l := range r.Stderr.Lines() {
		if !strings.Contains(l, skip) {
			out = append(out, r.redact(l))
		}
	}
	return out
}
