//go:build integration

package integration

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file proves the promises about CouchDB faults under load: requests
// fail fast with 503 while CouchDB is away, everything works again without
// a restart once it is back, no publish leaves partial state, and nothing
// leaks.

// sample is one request of the load.
type sample struct {
	kind       string // "packument", "corgi", "tarball", "publish"
	version    string // publish: the version sent
	start, end time.Time
	status     int // 0 on a transport error
	err        error
}

func (s sample) dur() time.Duration { return s.end.Sub(s.start) }

// loadGen runs readers (packuments, abbreviated packuments, tarballs of the
// seeded versions) and publishers (each its own series of new versions)
// against reg until stop is closed.
type loadGen struct {
	reg      *registry
	pkg      string
	token    string
	seeded   []string // versions whose tarballs the readers fetch
	tarballs map[string][]byte

	mu      sync.Mutex
	samples []sample
	wg      sync.WaitGroup
}

func (l *loadGen) record(s sample) {
	l.mu.Lock()
	l.samples = append(l.samples, s)
	l.mu.Unlock()
}

func (l *loadGen) request(kind, version, method, path string, body []byte, accept string) {
	s := sample{kind: kind, version: version, start: time.Now()}
	h, err := l.reg.tryDoAccept(method, path, l.token, body, accept, 30*time.Second)
	s.end, s.status, s.err = time.Now(), h.Status, err
	l.record(s)
}

// run starts readers and publishers; publisher p publishes
// <series>.<p>.<i> for i = 0, 1, ... with tarballs kept in l.tarballs.
func (l *loadGen) run(readers, publishers, series int, stop <-chan struct{}) {
	for r := 0; r < readers; r++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch i % 3 {
				case 0:
					l.request("packument", "", "GET", "/"+l.pkg, nil, "application/json")
				case 1:
					l.request("corgi", "", "GET", "/"+l.pkg, nil, "application/vnd.npm.install-v1+json")
				case 2:
					v := l.seeded[i%len(l.seeded)]
					l.request("tarball", v, "GET", fmt.Sprintf("/%s/-/%s-%s.tgz", l.pkg, l.pkg, v), nil, "*/*")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	for p := 0; p < publishers; p++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("%d.%d.%d", series, p, i)
				tb := markedTarball(nil, l.pkg, v, "load "+v)
				l.mu.Lock()
				l.tarballs[v] = tb
				l.mu.Unlock()
				l.request("publish", v, "PUT", "/"+l.pkg, publishBodyWith(l.reg, l.pkg, v, tb), "application/json")
				time.Sleep(150 * time.Millisecond)
			}
		}()
	}
}

func (l *loadGen) wait() { l.wg.Wait() }

// fdCount is the number of open file descriptors of reg's process.
func fdCount(t *testing.T, reg *registry) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", reg.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("counting couchnpm's file descriptors: %v", err)
	}
	return len(ents)
}

var goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\d+)`)

// goroutines reads go_goroutines from GET /-/metrics; -1 when the binary
// serves no metrics.
func goroutines(reg *registry) int {
	h, err := reg.tryDo("GET", "/-/metrics", "", nil, 10*time.Second)
	if err != nil || h.Status != 200 {
		return -1
	}
	m := goroutinesRE.FindSubmatch(h.Body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// steady polls count until two readings 100ms apart agree (within 5s) and
// returns the last one.
func steady(count func() int) int {
	deadline := time.Now().Add(5 * time.Second)
	last := count()
	for {
		time.Sleep(100 * time.Millisecond)
		n := count()
		if n == last || time.Now().After(deadline) {
			return n
		}
		last = n
	}
}

// settled polls count until it is at most limit (within 15s) and returns the
// last value.
func settled(count func() int, limit int) int {
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := count()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Promise: with CouchDB unreachable (the fault proxy stopped) under a load
// of installs and publishes, every request is answered quickly (503, never
// a hang); once CouchDB is back everything works without restarting
// couchnpm; every acknowledged publish is stored with its tarball; an
// errored publish left the version either complete or absent, and
// publishing it again either succeeds or says it exists; file descriptors
// (and goroutines, when the binary serves /-/metrics) return to their level
// before the outage.
func TestFaultsCouchDBOutageUnderLoad(t *testing.T) {
	t.Parallel()
	const couchTimeout = 3 * time.Second
	const bound = couchTimeout + 2*time.Second // no request may take longer
	// The tarball memory cache off: every tarball streams from CouchDB,
	// the path an outage can hit.
	reg := startRegistry(t, registryOpts{ExtraArgs: []string{"--couchdb-timeout", couchTimeout.String(), "--tarball-cache-bytes", "0"}})
	_, tok := rawAddUser(t, reg, "faulty")
	const pkg = "faultpkg"
	l := &loadGen{reg: reg, pkg: pkg, token: tok, tarballs: map[string][]byte{}}
	for i := 0; i < 3; i++ {
		v := fmt.Sprintf("1.0.%d", i)
		l.tarballs[v] = markedTarball(t, pkg, v, "seed "+v)
		if h := reg.do("PUT", "/"+pkg, tok, publishBodyWith(reg, pkg, v, l.tarballs[v])); !is2xx(h.Status) {
			t.Fatalf("seed publish %s: %s", v, h)
		}
		l.seeded = append(l.seeded, v)
	}
	const readers, publishers = 6, 2

	// Warm up with the same load, so that connection pools are filled
	// before the baseline is taken.
	warm := &loadGen{reg: reg, pkg: pkg, token: tok, seeded: l.seeded, tarballs: map[string][]byte{}}
	stop := make(chan struct{})
	warm.run(readers, 0, 0, stop)
	time.Sleep(time.Second) // the scenario: one second of warm-up load
	close(stop)
	warm.wait()
	// The baseline once the warm-up's connections are at rest.
	fdBefore := steady(func() int { return fdCount(t, reg) })
	grBefore := goroutines(reg)

	stop = make(chan struct{})
	l.run(readers, publishers, 2, stop)
	time.Sleep(1500 * time.Millisecond) // the scenario: load before the outage
	// The outage begins when Stop starts closing connections: a request
	// cut while Stop runs must not count as "before the outage".
	tStop := time.Now()
	reg.Proxy.Stop()
	time.Sleep(couchTimeout + time.Second) // longer than the timeout: a hang would show
	if err := reg.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
	tStart := time.Now()
	if h, ok := reg.waitStatus("/-/ping", "", 200, 30*time.Second); !ok {
		t.Fatalf("GET /-/ping after CouchDB came back: %s, want 200 within 30s (no restart)", h)
	}
	tUp := time.Now()
	time.Sleep(2 * time.Second) // the scenario: load after CouchDB is back
	close(stop)
	l.wait()

	// Every request finished within the bound; during the outage with 503.
	var during, after, before, errs, cutAtOutage int
	var maxDuring time.Duration
	statuses := map[string]int{}
	for _, s := range l.samples {
		statuses[fmt.Sprintf("%s:%d", s.kind, s.status)]++
		if s.dur() > bound {
			t.Errorf("%s %s took %v (started %v after the outage began), more than %v", s.kind, s.version, s.dur().Round(time.Millisecond), s.start.Sub(tStop).Round(time.Millisecond), bound)
		}
		if s.err != nil {
			if s.kind == "tarball" && s.start.Before(tStop) && s.end.After(tStop) {
				// A tarball in flight when CouchDB went away: once its
				// status went out, a cut connection is the only honest
				// answer. (Tiny tarballs are read whole before the status.
				// Before a cache miss cost one CouchDB request instead of a
				// stat and a read, about one run in two on CouchDB 3.5
				// showed one such cut; none in 9 runs since, 2026-12-02.)
				cutAtOutage++
				t.Logf("%s %s in flight when the outage began: cut (%v) after %v", s.kind, s.version, s.err, s.dur().Round(time.Millisecond))
				continue
			}
			errs++
			t.Errorf("%s %s: transport error %v after %v", s.kind, s.version, s.err, s.dur().Round(time.Millisecond))
			continue
		}
		switch {
		case s.start.After(tStop.Add(200*time.Millisecond)) && s.end.Before(tStart):
			during++
			maxDuring = max(maxDuring, s.dur())
			// 503; a read may also be served from the packument cache
			// (200), never a 404 or a 500. A publish cannot succeed.
			if s.status != 503 && (s.kind == "publish" || s.status != 200) {
				t.Errorf("%s %s while CouchDB is down: status %d, want 503", s.kind, s.version, s.status)
			}
		case s.start.After(tUp):
			after++
			if !is2xx(s.status) {
				t.Errorf("%s %s after CouchDB came back: status %d, want 2xx", s.kind, s.version, s.status)
			}
		case s.end.Before(tStop):
			before++
			if !is2xx(s.status) {
				t.Errorf("%s %s before the outage: status %d, want 2xx", s.kind, s.version, s.status)
			}
		}
	}
	keys := make([]string, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var tally []string
	for _, k := range keys {
		tally = append(tally, fmt.Sprintf("%s×%d", k, statuses[k]))
	}
	t.Logf("tarballs in flight at the outage and cut: %d", cutAtOutage)
	t.Logf("load: %d readers + %d publishers, %d requests (%d before the outage, %d during it, %d after CouchDB was back, the rest straddling); outage %v, couchnpm answered again %v after the proxy restarted; slowest answer during the outage %v (bound %v); statuses %s",
		readers, publishers, len(l.samples), before, during, after, tStart.Sub(tStop).Round(time.Millisecond),
		tUp.Sub(tStart).Round(time.Millisecond), maxDuring.Round(time.Millisecond), bound, strings.Join(tally, " "))
	if during < 20 {
		t.Errorf("only %d requests ran entirely during the outage; the load did not hold", during)
	}
	if after < 10 {
		t.Errorf("only %d requests ran after CouchDB came back", after)
	}

	// No partial state: each publish is stored completely or not at all.
	doc := couchPackument(t, reg.Prefix, pkg)
	if doc == nil {
		t.Fatalf("CouchDB has no document %s", pkg)
	}
	p := getPackument(t, reg, pkg, "")
	checkPackumentValid(t, p, "packument after the outage")
	for att := range doc.Attachments {
		v := strings.TrimSuffix(strings.TrimPrefix(att, pkg+"-"), ".tgz")
		if doc.Versions[v] == nil {
			t.Errorf("CouchDB keeps tarball %s of no version (partial state)", att)
		}
	}
	var acked, committedAnyway, absent int
	for _, s := range l.samples {
		if s.kind != "publish" {
			continue
		}
		v := s.version
		file := fmt.Sprintf("%s-%s.tgz", pkg, v)
		inVersions, inAtts, inTime := doc.Versions[v] != nil, doc.Attachments[file] != nil, doc.Time[v] != ""
		if s.err == nil && is2xx(s.status) {
			acked++
			if !inVersions || !inAtts || !inTime {
				t.Errorf("acknowledged publish %s is not complete in CouchDB (version %v, tarball %v, time %v): lost", v, inVersions, inAtts, inTime)
				continue
			}
			checkTarball(t, reg, p, pkg, v, l.tarballs[v])
			continue
		}
		if inVersions != inAtts || inVersions != inTime {
			t.Errorf("errored publish %s (status %d) left partial state: version %v, tarball %v, time %v", v, s.status, inVersions, inAtts, inTime)
			continue
		}
		// Publish it again: a stored version is refused as existing, an
		// absent one is accepted.
		h := reg.do("PUT", "/"+pkg, tok, publishBodyWith(reg, pkg, v, l.tarballs[v]))
		if inVersions {
			committedAnyway++
			checkTarball(t, reg, p, pkg, v, l.tarballs[v])
			if h.Status != 403 || !strings.Contains(string(h.Body), "previously published") {
				t.Errorf("re-publish of %s, stored although its publish got status %d: %s, want 403 (exists)", v, s.status, h)
			}
		} else {
			absent++
			if !is2xx(h.Status) {
				t.Errorf("re-publish of %s, absent after its publish got status %d: %s, want 2xx", v, s.status, h)
			}
		}
	}
	t.Logf("publishes: %d acknowledged and present with their tarballs; of the errored ones %d were committed anyway (complete, re-publish says it exists) and %d left nothing (re-publish succeeded)", acked, committedAnyway, absent)
	if p := getPackument(t, reg, pkg, ""); true {
		checkPackumentValid(t, p, "packument after the re-publishes")
	}

	// Nothing leaked: after the same warm-up load, descriptors (and
	// goroutines) are back to their level before the outage.
	stop = make(chan struct{})
	warm.run(readers, 0, 0, stop)
	time.Sleep(time.Second) // the scenario: the same warm-up load as before
	close(stop)
	warm.wait()
	const fdSlack, grSlack = 12, 20
	fdAfter := settled(func() int { return fdCount(t, reg) }, fdBefore+fdSlack)
	t.Logf("couchnpm's open file descriptors: %d before the outage, %d after (tolerance %d)", fdBefore, fdAfter, fdSlack)
	if fdAfter > fdBefore+fdSlack {
		t.Errorf("file descriptors grew from %d to %d across the outage (leak)", fdBefore, fdAfter)
	}
	if grBefore < 0 {
		t.Logf("goroutines: the binary serves no /-/metrics; file descriptors only")
	} else {
		grAfter := settled(func() int { return goroutines(reg) }, grBefore+grSlack)
		t.Logf("couchnpm's goroutines: %d before the outage, %d after (tolerance %d)", grBefore, grAfter, grSlack)
		if grAfter > grBefore+grSlack {
			t.Errorf("goroutines grew from %d to %d across the outage (leak)", grBefore, grAfter)
		}
	}
}

// stallProxy is a TCP proxy whose Stall makes CouchDB hang instead of
// refusing: connections are accepted and bytes in flight are held, nothing
// is answered, until Resume.
type stallProxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	stalled bool
	resume  chan struct{} // closed by Resume
	conns   map[net.Conn]struct{}
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{target: target, ln: ln, resume: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.resume)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.Resume()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *stallProxy) URL() string { return "http://" + p.ln.Addr().String() }

// gate blocks while the proxy is stalled.
func (p *stallProxy) gate() {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	<-ch
}

func (p *stallProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *stallProxy) handle(client net.Conn) {
	p.track(client)
	defer client.Close()
	p.gate()
	upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.track(upstream)
	defer upstream.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.gate() // hold bytes in flight while stalled
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				if err != io.EOF {
					break
				}
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				break
			}
		}
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	<-done
}

// Stall makes every connection hang.
func (p *stallProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled, p.resume = true, make(chan struct{})
	}
}

// Resume lets traffic through again.
func (p *stallProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
}

// Promise: a CouchDB that hangs (accepts connections, answers nothing)
// costs each request at most about --couchdb-timeout: packuments,
// tarballs, authenticated requests and publishes all answer 503 within
// the bound, and the registry recovers by itself when CouchDB answers
// again.
func TestFaultsCouchDBHangsBoundedByTimeout(t *testing.T) {
	t.Parallel()
	const couchTimeout = 2 * time.Second
	const bound = couchTimeout*2 + 2*time.Second // token check and one store call may each wait the timeout
	couch, err := url.Parse(suite.couchURL)
	if err != nil {
		t.Fatal(err)
	}
	stall := newStallProxy(t, couch.Host)
	// The authentication cache off: a warm token would be served from
	// memory for up to its staleness bound while the feeds hang, and this
	// test is about the token check that reaches CouchDB.
	reg := startRegistry(t, registryOpts{ExtraArgs: []string{"--couchdb-url", stall.URL(), "--couchdb-timeout", couchTimeout.String(), "--auth-cache-entries", "0"}})
	_, tok := rawAddUser(t, reg, "hung")
	const pkg = "hungpkg"
	tb := markedTarball(t, pkg, "1.0.0", "hung")
	if h := reg.do("PUT", "/"+pkg, tok, publishBodyWith(reg, pkg, "1.0.0", tb)); !is2xx(h.Status) {
		t.Fatalf("seed publish: %s", h)
	}

	stall.Stall()
	type req struct {
		what, method, path, token string
		body                      []byte
	}
	reqs := []req{
		{"ping", "GET", "/-/ping", "", nil},
		{"packument", "GET", "/" + pkg, "", nil},
		{"tarball", "GET", "/" + pkg + "/-/" + pkg + "-1.0.0.tgz", "", nil},
		{"whoami (token check)", "GET", "/-/whoami", tok, nil},
		{"publish", "PUT", "/" + pkg, tok, publishBodyWith(reg, pkg, "1.0.1", markedTarball(t, pkg, "1.0.1", "hung"))},
	}
	var wg sync.WaitGroup
	results := make([]string, len(reqs))
	for i, rq := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			h, err := reg.tryDo(rq.method, rq.path, rq.token, rq.body, 30*time.Second)
			d := time.Since(start)
			results[i] = fmt.Sprintf("%s %v", rq.what, d.Round(time.Millisecond))
			if err != nil {
				t.Errorf("%s while CouchDB hangs: %v after %v", rq.what, err, d.Round(time.Millisecond))
				return
			}
			if h.Status != 503 {
				t.Errorf("%s while CouchDB hangs: %s after %v, want 503", rq.what, h, d.Round(time.Millisecond))
			}
			if d > bound {
				t.Errorf("%s while CouchDB hangs took %v, more than %v (--couchdb-timeout %v)", rq.what, d.Round(time.Millisecond), bound, couchTimeout)
			}
		}()
	}
	wg.Wait()
	t.Logf("while CouchDB hung (--couchdb-timeout %v): %s", couchTimeout, strings.Join(results, ", "))
	stall.Resume()

	if h, ok := reg.waitStatus("/"+pkg, "", 200, 30*time.Second); !ok {
		t.Fatalf("GET /%s after CouchDB answers again: %s", pkg, h)
	}
	// The publish that timed out either landed completely or not at all;
	// publishing it again settles it.
	doc := couchPackument(t, reg.Prefix, pkg)
	in, att := doc.Versions["1.0.1"] != nil, doc.Attachments[pkg+"-1.0.1.tgz"] != nil
	if in != att {
		t.Errorf("the timed-out publish left partial state: version %v, tarball %v", in, att)
	}
	h := reg.do("PUT", "/"+pkg, tok, reqs[4].body)
	if in && h.Status != 403 || !in && !is2xx(h.Status) {
		t.Errorf("re-publish of 1.0.1 (stored: %v): %s", in, h)
	}
	p := getPackument(t, reg, pkg, "")
	checkPackumentValid(t, p, "after the hang")
	checkTarball(t, reg, p, pkg, "1.0.1", nil)
}
