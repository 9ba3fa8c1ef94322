//go:build integration

package integration

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file proves the promises about concurrent writers on several
// instances; faults_test.go and backup_test.go reuse its helpers.

// sharedPrefix is a new db prefix for several instances; on an external
// CouchDB its databases and accounts are dropped at the end (startRegistry
// leaves a prefix it was given alone).
func sharedPrefix(t *testing.T) string {
	prefix := newPrefix()
	if !suite.ownCouch {
		t.Cleanup(func() {
			dropDatabases(t, prefix)
			dropUsers(t, prefix)
		})
	}
	return prefix
}

// rawAddUser creates an account with npm's legacy adduser request and returns
// its name and token (both registered as secrets).
func rawAddUser(t *testing.T, reg *registry, base string) (name, token string) {
	t.Helper()
	name = reg.user(base)
	password := "Pw-" + base + "-" + randomHex(6)
	reg.addSecret(password)
	h := reg.do("PUT", "/-/user/org.couchdb.user:"+name, "", mustJSON(map[string]string{
		"name": name, "password": password, "email": base + "@example.com",
	}))
	var out struct{ Token string }
	if h.Status != 201 || json.Unmarshal(h.Body, &out) != nil || out.Token == "" {
		t.Fatalf("adduser %s: %s, want 201 with a token", name, h)
	}
	reg.addSecret(out.Token)
	return name, out.Token
}

// markedTarball is a package tarball whose index.js carries marker, so two
// tarballs of one name and version can differ.
func markedTarball(t testing.TB, name, version, marker string) []byte {
	if t != nil {
		t.Helper()
	}
	return makeTarballBytes(name, version, marker)
}

// sri is the sha512 Subresource Integrity string of b.
func sri(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

// publishBodyWith is the body npm sends to publish name@version (tarball
// attached, latest pointing at it).
func publishBodyWith(reg *registry, name, version string, tarball []byte) []byte {
	return publishBodyDigests(reg, name, version, tarball, tarball)
}

// publishBodyDigests is publishBodyWith whose dist.shasum and
// dist.integrity describe digested (other bytes, for refusal tests).
func publishBodyDigests(reg *registry, name, version string, tarball, digested []byte) []byte {
	s1 := sha1.Sum(digested)
	file := fmt.Sprintf("%s-%s.tgz", name, version)
	return mustJSON(map[string]any{
		"_id":       name,
		"name":      name,
		"dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{
			version: map[string]any{
				"_id": name + "@" + version, "name": name, "version": version,
				"main": "index.js", "license": "MIT",
				"dist": map[string]any{
					"shasum":    hex.EncodeToString(s1[:]),
					"integrity": sri(digested),
					"tarball":   fmt.Sprintf("%s/%s/-/%s", reg.URL, name, file),
				},
			},
		},
		"access": nil,
		"_attachments": map[string]any{
			file: map[string]any{
				"content_type": "application/octet-stream",
				"data":         base64.StdEncoding.EncodeToString(tarball),
				"length":       len(tarball),
			},
		},
	})
}

// packumentView is what the checks read of a packument.
type packumentView struct {
	Rev         string                     `json:"_rev"`
	Name        string                     `json:"name"`
	DistTags    map[string]string          `json:"dist-tags"`
	Versions    map[string]json.RawMessage `json:"versions"`
	Time        map[string]string          `json:"time"`
	Maintainers []struct{ Name string }    `json:"maintainers"`
	Attachments map[string]json.RawMessage `json:"_attachments"` // CouchDB documents only
}

func (p *packumentView) manifest(v string) (m struct {
	Deprecated string `json:"deprecated"`
	Dist       struct{ Integrity, Shasum, Tarball string }
}) {
	_ = json.Unmarshal(p.Versions[v], &m)
	return m
}

// getPackument reads name through reg (with token, if set) and checks for
// duplicate keys in versions, time and dist-tags on the way.
func getPackument(t *testing.T, reg *registry, name, token string) *packumentView {
	t.Helper()
	h := reg.do("GET", "/"+name, token, nil)
	if h.Status != 200 {
		t.Fatalf("GET /%s on %s: %s", name, reg.URL, h)
	}
	return decodePackument(t, h.Body, "GET /"+name+" on "+reg.URL)
}

// couchPackument reads the stored document of name straight from CouchDB
// (attachments as stubs); nil when absent.
func couchPackument(t *testing.T, db, name string) *packumentView {
	t.Helper()
	st, body, err := couchDo("GET", "/"+urlPathEscape(db)+"/"+urlPathEscape(name), nil, true)
	if err != nil {
		t.Fatalf("reading %s/%s from CouchDB: %v", db, name, err)
	}
	if st == 404 {
		return nil
	}
	if st != 200 {
		t.Fatalf("reading %s/%s from CouchDB: status %d: %s", db, name, st, body)
	}
	return decodePackument(t, body, "CouchDB "+db+"/"+name)
}

func decodePackument(t *testing.T, body []byte, what string) *packumentView {
	t.Helper()
	for _, field := range []string{"versions", "time", "dist-tags", "_attachments"} {
		if d := duplicateKeys(body, field); len(d) > 0 {
			t.Errorf("%s: %q has duplicate keys %v", what, field, d)
		}
	}
	var p packumentView
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return &p
}

// duplicateKeys returns the keys that occur more than once in the top-level
// object field of doc.
func duplicateKeys(doc []byte, field string) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(doc, &top) != nil || top[field] == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(top[field]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen, dups := map[string]bool{}, []string(nil)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dups
		}
		k, _ := tok.(string)
		if seen[k] {
			dups = append(dups, k)
		}
		seen[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return dups
		}
	}
	return dups
}

// checkPackumentValid checks the invariants every packument keeps: dist-tags
// point to existing versions (latest among them), every version has a time
// entry.
func checkPackumentValid(t *testing.T, p *packumentView, what string) {
	t.Helper()
	if len(p.Versions) > 0 && p.DistTags["latest"] == "" {
		t.Errorf("%s: no latest dist-tag (dist-tags %v)", what, p.DistTags)
	}
	for tag, v := range p.DistTags {
		if p.Versions[v] == nil {
			t.Errorf("%s: dist-tag %s points to %s, which does not exist", what, tag, v)
		}
	}
	for v := range p.Versions {
		if p.Time[v] == "" {
			t.Errorf("%s: version %s has no time entry", what, v)
		}
	}
	if p.Time["created"] == "" || p.Time["modified"] == "" {
		t.Errorf("%s: time lacks created/modified: %v", what, p.Time)
	}
}

// checkTarball GETs name@version's tarball through reg and compares it with
// want (nil: only with the manifest's integrity).
func checkTarball(t *testing.T, reg *registry, p *packumentView, name, version string, want []byte) {
	t.Helper()
	m := p.manifest(version)
	path := fmt.Sprintf("/%s/-/%s-%s.tgz", name, name, version)
	h, err := reg.tryDo("GET", path, "", nil, 30*time.Second)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return
	}
	if h.Status != 200 {
		t.Errorf("GET %s: status %d, want 200", path, h.Status)
		return
	}
	if got := sri(h.Body); got != m.Dist.Integrity {
		t.Errorf("GET %s: sha512 %s, the manifest says %s", path, got, m.Dist.Integrity)
	}
	if want != nil && !bytes.Equal(h.Body, want) {
		t.Errorf("GET %s: %d bytes that differ from the %d published", path, len(h.Body), len(want))
	}
}

// couchConflicts counts PouchDB Server's logged refusals of writes of doc in
// db: 409, or 403 from validate_doc_update, which PouchDB Server runs before
// the revision check (see couch.Packuments.PutPackument). Each one is a
// re-read and re-merge inside couchnpm when no other refusal is expected.
// -1 when the log is not available (an external CouchDB).
func couchConflicts(db, doc string) int {
	if !suite.ownCouch {
		return -1
	}
	b, ok := pouchLogFlushed()
	if !ok {
		return -1
	}
	needle := " PUT /" + urlPathEscape(db) + "/" + urlPathEscape(doc)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, needle); i >= 0 {
			rest := line[i+len(needle):]
			f := strings.Fields(rest)
			if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '?') && len(f) > 0 && (f[len(f)-1] == "409" || f[len(f)-1] == "403") {
				n++
			}
		}
	}
	return n
}

// sentinels numbers the requests pouchLogFlushed marks the log with.
var sentinels atomic.Int64

// pouchLogFlushed reads PouchDB Server's request log once every request
// made before the call is in it: it sends a request of its own (a GET of a
// database that does not exist, named for this call) and waits for that
// line, which the log writes after the earlier ones.
func pouchLogFlushed() ([]byte, bool) {
	marker := fmt.Sprintf("couchnpm-log-sentinel-%d-%d", os.Getpid(), sentinels.Add(1))
	if resp, err := http.Get(suite.couchURL + "/" + marker); err == nil {
		resp.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(suite.tmp, "pouchdb", "log.txt"))
		if err == nil && bytes.Contains(b, []byte("/"+marker)) {
			return b, true
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusCounts tallies answers ("201", "409", "error") under a lock.
type statusCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *statusCounts) add(h httpResult, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	if err != nil {
		c.m["transport-error"]++
		return
	}
	c.m[fmt.Sprint(h.Status)]++
}

func (c *statusCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, c.m[k]))
	}
	return strings.Join(parts, " ")
}

func is2xx(s int) bool { return s >= 200 && s < 300 }

// Promise: two instances on one CouchDB accept 50 concurrent publishes of
// distinct versions of one package, interleaved with dist-tag changes and
// deprecations, and lose nothing: every acknowledged version is there once,
// with its tarball; every acknowledged tag change and deprecation stays
// (none is undone by a writer that read an older revision); the packument
// stays valid.
func TestConcurrencyPublishTwoInstances(t *testing.T) {
	t.Parallel()
	prefix := sharedPrefix(t)
	a := startRegistry(t, registryOpts{Prefix: prefix})
	b := startRegistry(t, registryOpts{Prefix: prefix})
	regs := []*registry{a, b}
	_, tok := rawAddUser(t, a, "conc")

	const pkg = "concpkg"
	const n = 50
	seed := markedTarball(t, pkg, "1.0.0", "seed")
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
		mu        sync.Mutex
		acked     = map[string]bool{"1.0.0": true} // versions with a 2xx
		published = []string{"1.0.0"}              // the same, in ack order
		pubCounts statusCounts
		failures  []string
	)
	start := make(chan struct{})
	done := make(chan struct{})
	var pubs sync.WaitGroup
	begin := time.Now()
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("1.%d.0", i)
		reg := regs[i%2]
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			<-start
			h, err := reg.tryDo("PUT", "/"+pkg, tok, bodies[v], 60*time.Second)
			pubCounts.add(h, err)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && is2xx(h.Status) {
				acked[v] = true
				published = append(published, v)
			} else if err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", v, err))
			} else {
				failures = append(failures, fmt.Sprintf("%s: %s", v, h))
			}
		}()
	}
	pick := func(k int) string { // an acknowledged version
		mu.Lock()
		defer mu.Unlock()
		return published[k%len(published)]
	}

	// One writer moves the "stable" tag, one deprecates 1.0.0 the way npm
	// does (read with ?write=true on one instance, PUT the document back
	// with its revision on the other). Each is sequential, so its last
	// acknowledged change must be what stays.
	var tagCounts, depCounts statusCounts
	var lastTag, lastDep string
	var side sync.WaitGroup
	side.Add(2)
	go func() {
		defer side.Done()
		<-start
		after := 0
		for k := 0; ; k++ {
			select {
			case <-done:
				if (k >= 5 && lastTag != "") || after >= 40 {
					return
				}
				after++
			default:
			}
			v := pick(k * 7)
			h, err := regs[k%2].tryDo("PUT", "/-/package/"+pkg+"/dist-tags/stable", tok, mustJSON(v), 60*time.Second)
			tagCounts.add(h, err)
			if err == nil && is2xx(h.Status) {
				lastTag = v
			} else if err != nil || h.Status != 409 {
				t.Errorf("dist-tag add stable %s: %v %s", v, err, h)
			}
		}
	}()
	go func() {
		defer side.Done()
		<-start
		after := 0 // attempts since the publishes stopped
		for k := 0; ; k++ {
			select {
			case <-done:
				// Once the publishes stop, deprecations read fresh
				// documents and land (the tag writer may still race a
				// few of them).
				if (k >= 5 && lastDep != "") || after >= 40 {
					return
				}
				after++
			default:
			}
			h, err := regs[k%2].tryDo("GET", "/"+pkg+"?write=true", tok, nil, 60*time.Second)
			if err != nil || h.Status != 200 {
				t.Errorf("GET ?write=true: %v %s", err, h)
				continue
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(h.Body, &doc); err != nil {
				t.Errorf("GET ?write=true: %v", err)
				continue
			}
			var versions map[string]map[string]any
			var rev string
			_ = json.Unmarshal(doc["versions"], &versions)
			_ = json.Unmarshal(doc["_rev"], &rev)
			msg := fmt.Sprintf("deprecated, round %d", k)
			versions["1.0.0"]["deprecated"] = msg
			doc["versions"] = mustJSON(versions)
			h, err = regs[(k+1)%2].tryDo("PUT", "/"+pkg+"/-rev/"+rev, tok, mustJSON(doc), 60*time.Second)
			depCounts.add(h, err)
			if err == nil && is2xx(h.Status) {
				lastDep = msg
			} else if err != nil || h.Status != 409 {
				// 409: the document changed since it was read (npm
				// reports it; running the command again works).
				t.Errorf("deprecate (PUT /%s/-rev/%s): %v %s", pkg, rev, err, h)
			}
		}
	}()

	close(start)
	pubs.Wait()
	elapsed := time.Since(begin)
	close(done)
	side.Wait()

	t.Logf("%d concurrent publishes over 2 instances in %v: %s; dist-tag changes: %s; deprecations: %s",
		n, elapsed.Round(time.Millisecond), pubCounts.String(), tagCounts.String(), depCounts.String())
	if c := couchConflicts(prefix, pkg); c >= 0 {
		t.Logf("CouchDB refused %d stale writes of %s (409, or 403 from PouchDB's validate_doc_update): each one a re-read and re-merge inside couchnpm", c, pkg)
	}
	if lastTag == "" || lastDep == "" {
		t.Errorf("no dist-tag change (%q) or no deprecation (%q) was acknowledged: the concurrent writers proved nothing", lastTag, lastDep)
	}
	for _, f := range failures {
		t.Errorf("publish not acknowledged (the retry loop should absorb write conflicts): %s", f)
	}

	// Both instances, and CouchDB itself, see the same complete document:
	// CouchDB at once, the instance that did not take the last write
	// within the packument cache's staleness bound (3 s).
	if doc := couchPackument(t, prefix, pkg); doc != nil {
		if got := doc.manifest("1.0.0").Deprecated; got != lastDep {
			t.Errorf("CouchDB: 1.0.0 deprecated = %q, the last acknowledged deprecation said %q (lost)", got, lastDep)
		}
	}
	for _, reg := range regs {
		waitFor(5*time.Second, func() bool {
			p := getPackument(t, reg, pkg, "")
			return p.manifest("1.0.0").Deprecated == lastDep && (lastTag == "" || p.DistTags["stable"] == lastTag)
		})
	}
	for _, reg := range regs {
		p := getPackument(t, reg, pkg, "")
		what := "packument via " + reg.URL
		checkPackumentValid(t, p, what)
		for v := range acked {
			if p.Versions[v] == nil {
				t.Errorf("%s: acknowledged version %s is missing (lost)", what, v)
			}
		}
		for v := range p.Versions {
			if !acked[v] {
				t.Errorf("%s: version %s is present but was never acknowledged", what, v)
			}
		}
		if p.DistTags["stable"] != lastTag && lastTag != "" {
			t.Errorf("%s: dist-tag stable = %q, but the last acknowledged change set it to %q (a tag change was undone)", what, p.DistTags["stable"], lastTag)
		}
		if got := p.manifest("1.0.0").Deprecated; got != lastDep {
			t.Errorf("%s: 1.0.0 deprecated = %q, the last acknowledged deprecation said %q", what, got, lastDep)
		}
	}
	doc := couchPackument(t, prefix, pkg)
	if doc == nil {
		t.Fatalf("CouchDB has no document %s", pkg)
	}
	if len(doc.Attachments) != len(acked) {
		t.Errorf("CouchDB document has %d attachments for %d versions", len(doc.Attachments), len(acked))
	}
	for v := range acked {
		if doc.Attachments[fmt.Sprintf("%s-%s.tgz", pkg, v)] == nil {
			t.Errorf("CouchDB document lacks the tarball of %s", v)
		}
	}
	// Every tarball, alternately through each instance, is the published one.
	p := getPackument(t, a, pkg, "")
	i := 0
	for v := range acked {
		checkTarball(t, regs[i%2], p, pkg, v, tarballs[v])
		i++
	}
	t.Logf("checked %d versions, %d tarballs (sha512) and %d dist-tags: nothing lost, nothing duplicated", len(p.Versions), len(acked), len(p.DistTags))
}

// Promise: two users racing to publish the same new name on two instances
// get exactly one owner: one publish succeeds, the other is refused with
// 403, and the package has the winner as its only maintainer and the
// winner's tarball.
func TestConcurrencyFirstPublishOneOwner(t *testing.T) {
	t.Parallel()
	prefix := sharedPrefix(t)
	a := startRegistry(t, registryOpts{Prefix: prefix})
	b := startRegistry(t, registryOpts{Prefix: prefix})
	userA, tokA := rawAddUser(t, a, "racer1")
	userB, tokB := rawAddUser(t, b, "racer2")

	const rounds = 8
	wins := map[string]int{}
	for r := 0; r < rounds; r++ {
		name := fmt.Sprintf("race-%d", r)
		type side struct {
			reg         *registry
			user, token string
			tarball     []byte
			res         httpResult
			err         error
		}
		sides := []*side{
			{reg: a, user: userA, token: tokA, tarball: markedTarball(t, name, "1.0.0", userA)},
			{reg: b, user: userB, token: tokB, tarball: markedTarball(t, name, "1.0.0", userB)},
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, s := range sides {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := publishBodyWith(s.reg, name, "1.0.0", s.tarball)
				<-start
				s.res, s.err = s.reg.tryDo("PUT", "/"+name, s.token, body, 60*time.Second)
			}()
		}
		close(start)
		wg.Wait()
		var winner *side
		for _, s := range sides {
			switch {
			case s.err != nil:
				t.Errorf("%s: publish by %s: %v", name, s.user, s.err)
			case is2xx(s.res.Status):
				if winner != nil {
					t.Errorf("%s: both publishes succeeded (%s and %s)", name, winner.user, s.user)
				}
				winner = s
			case s.res.Status != 403:
				t.Errorf("%s: losing publish by %s: %s, want 403", name, s.user, s.res)
			}
		}
		if winner == nil {
			t.Errorf("%s: neither publish succeeded: %s / %s", name, sides[0].res, sides[1].res)
			continue
		}
		wins[winner.user]++
		for _, reg := range []*registry{a, b} {
			p := getPackument(t, reg, name, "")
			if len(p.Maintainers) != 1 || p.Maintainers[0].Name != winner.user {
				t.Errorf("%s via %s: maintainers %v, want only %s", name, reg.URL, p.Maintainers, winner.user)
			}
			checkPackumentValid(t, p, name)
			checkTarball(t, reg, p, name, "1.0.0", winner.tarball)
		}
		// The loser stays locked out.
		loser := sides[0]
		if loser == winner {
			loser = sides[1]
		}
		body := publishBodyWith(loser.reg, name, "1.0.1", markedTarball(t, name, "1.0.1", loser.user))
		if h := loser.reg.do("PUT", "/"+name, loser.token, body); h.Status != 403 {
			t.Errorf("%s: a later publish by the loser %s: %s, want 403", name, loser.user, h)
		}
	}
	t.Logf("%d races of two first publishes on two instances: wins %v; every race had one owner", rounds, wins)
}
